"""Stores on tables of their own, dropped when the test ends, and what the index tests
ask of them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding
from sqlalchemy import Engine, MetaData, Table, text
from sqlalchemy.schema import DropTable

from langchain_pgvec import IndexInfo, PGVecStore


def drop_tables(engine: Engine, names: list[tuple[str, str]]) -> None:
    """Drop each (embedding table, collection table) pair, if it exists."""
    with engine.begin() as conn:
        for embedding_table, collection_table in names:
            for name in (embedding_table, collection_table):
                conn.execute(DropTable(Table(name, MetaData()), if_exists=True))


@contextmanager
def own_tables(
    engine: Engine, collection_name: str, prefix: str, dim: int
) -> Iterator[Callable[..., PGVecStore]]:
    """``make(dim=dim, *, tables=None, **kwargs)``: a store on tables named
    ``<prefix>_e<dim>_<tables>`` / ``<prefix>_c<dim>_<tables>`` (a random suffix when
    ``tables`` is None); every table made is dropped at the end."""
    made: list[tuple[str, str]] = []

    def make(dim: int = dim, *, tables: str | None = None, **kwargs: Any) -> PGVecStore:
        suffix = tables or uuid.uuid4().hex[:8]
        names = (f"{prefix}_e{dim}_{suffix}", f"{prefix}_c{dim}_{suffix}")
        if names not in made:
            made.append(names)
        kwargs.setdefault("connection", engine)
        kwargs.setdefault("collection_name", collection_name)
        return PGVecStore(
            DeterministicFakeEmbedding(size=dim),
            embedding_table=names[0],
            collection_table=names[1],
            **kwargs,
        )

    try:
        yield make
    finally:
        drop_tables(engine, made)


def analyze(engine: Engine, store: PGVecStore) -> None:
    """ANALYZE the store's embedding table, and make the store read its state again."""
    table = store.engine.dialect.identifier_preparer.quote(store._spec.embedding_table)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE " + table))
    store._state = None


def vector_indexes(indexes: list[IndexInfo]) -> list[IndexInfo]:
    """The vector indexes among ``indexes``."""
    return [i for i in indexes if i.is_vector]
