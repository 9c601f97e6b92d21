"""PGVecStore: the LangChain ``VectorStore`` over PostgreSQL + pgvector.

Each public method is a thin shell: validate the input (pure), learn the tables and
the collection id once (cached), build the statement (``_sql``, pure), run it on the
sync or the async engine, map rows to Documents (shared helpers). Sync and async
twins differ only in ``await``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, NamedTuple

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ColumnElement

from . import _hybrid, _ingest, _sql, _tuning
from ._engine import (
    Connectable,
    DriverStatement,
    Engines,
    abegin,
    adriver_read,
    afetch,
    aretrying,
    begin,
    driver_read,
    fetch,
    retrying,
)
from ._errors import InvalidInputError, SchemaError
from ._filters import compile_filter
from ._index_methods import IndexMethods
from ._indexes import DistanceStrategy, VectorType
from ._input import as_vector, check_ids, check_string, lookup_ids, prepare
from ._mmr import maximal_marginal_relevance
from ._retriever import PGVecRetriever
from ._schema import Tables, TableSpec, decode_vectors
from ._setup import State, ensure, lock_collection
from ._tuning import SearchSettings

Filter = Mapping[str, Any]


def _documents(rows: Iterable[Row[Any]]) -> list[Document]:
    return [Document(id=r.id, page_content=r.content or "", metadata=r.metadata) for r in rows]


def _scored(rows: Iterable[Sequence[Any]]) -> list[tuple[Document, float]]:
    """(Document, distance) pairs from ``(id, content, metadata, distance, ...)`` rows."""
    return [(Document(id=r[0], page_content=r[1] or "", metadata=r[2]), float(r[3])) for r in rows]


def _fused(rows: Iterable[Row[Any]]) -> list[tuple[Document, float]]:
    return [
        (Document(id=r.id, page_content=r.content or "", metadata=r.metadata), float(r.score))
        for r in rows
    ]


def _in_order(documents: list[Document], ids: Sequence[str]) -> list[Document]:
    by_id = {doc.id: doc for doc in documents}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def _writable(state: State | None) -> State:
    if state is None:  # pragma: no cover - ensure(create=True) always returns a state
        raise SchemaError("the tables could not be created")
    return state


_STATEMENT_CACHE = 256


class _Search(NamedTuple):
    prelude: Any  # SET LOCAL statement, or None
    statement: Any  # the SQLAlchemy statement (for explain)
    driver: DriverStatement  # the same, compiled for psycopg
    vector: np.ndarray
    # a filter not judged lately: the query to run first (the planner's estimate of
    # its rows, then, if that is within reach of the threshold, their capped count),
    # the key to remember the answer by, and the exact search to run if they are few
    probe: DriverStatement | None = None
    tally: DriverStatement | None = None
    estimate_key: Any = None
    exact: tuple[Any, DriverStatement] | None = None
    threshold: int = 0
    settings: DriverStatement | None = None  # ``prelude`` compiled for psycopg


def _filter_key(filter: Filter | None) -> str | None:
    """The filter as canonical JSON ("" for none; None: not JSON, never cached)."""
    try:
        return json.dumps(filter, sort_keys=True, allow_nan=False) if filter else ""
    except (TypeError, ValueError):
        return None  # let the filter compiler say what is wrong


#: seconds a filter's judged row count is trusted
_ESTIMATE_TTL = 60.0
#: a planner's estimate up to this many times the threshold is checked by counting:
#: for containment its statistics resolve about 1% of the table (a 2% filter on
#: 100,000 rows is estimated anywhere from 1,000 to 6,000 rows, from run to run)
_REACH = 4
_ROWS = re.compile(r"rows=(\d+)")


def _few(rows: int, kind: str, threshold: int) -> bool | None:
    """Whether a filter matching ``rows`` (``kind``: "exactly", "at least" for a count
    that hit its cap, "about" for the planner's estimate) matches at most
    ``threshold`` rows; None when only counting can tell."""
    if kind == "exactly":
        return rows <= threshold
    if kind == "at least":
        return False if rows > threshold else None
    return False if rows > _REACH * threshold else None


def _check_k(k: int, name: str = "k") -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise InvalidInputError(f"{name} must be a non-negative integer, got {k!r}")


class PGVecStore(IndexMethods, VectorStore):
    """A LangChain vector store on PostgreSQL + pgvector.

    Documents live in one embedding table shared by many collections; ids are scoped
    to their collection. Every method has a native async twin that works on the same
    instance, whatever ``connection`` was given.

    Args:
        embeddings: Any LangChain ``Embeddings``.
        connection: A URL (``postgresql://...`` or ``postgresql+psycopg://...``), a
            SQLAlchemy ``Engine`` or ``AsyncEngine`` on psycopg 3, or None for
            ``$PGVEC_URL``, else the embedded server (``langchain_pgvec.embedded``).
        collection_name: The collection this store reads and writes.
        distance_strategy: Cosine (default), euclidean or inner product.
        embedding_length: The vectors' dimension; when None it is read from the
            existing table or taken from the first vectors written.
        vector_type: ``"vector"`` (float32) or ``"halfvec"`` (float16: half the
            memory, indexable up to 4,000 dimensions).
        schema: The PostgreSQL schema of the tables (None: the search path's first).
        collection_table: Name of the collection table.
        embedding_table: Name of the embedding table.
        collection_metadata: Metadata stored with a collection this store creates.
        relevance_score_fn: Override the distance-to-relevance mapping.
        search_settings: Defaults for approximate search (``ef_search``, iterative
            scans, ...); each search call may override them with keyword arguments.
        statement_timeout: Seconds after which PostgreSQL cancels any statement of
            this store (``QueryTimeoutError``); None for the server's setting.
        full_text: Enable full-text and hybrid search: True for the ``english`` text
            search configuration, or a configuration's name. Adds a generated
            ``tsvector`` column and a GIN index (to an existing table too).
        engine_kwargs: Extra arguments for engines this store creates from a URL.

    Example:
        .. code-block:: python

            from langchain_pgvec import PGVecStore, HashingEmbeddings

            store = PGVecStore(HashingEmbeddings(), collection_name="docs")
            store.add_texts(["PostgreSQL stores vectors"], metadatas=[{"year": 2024}])
            store.similarity_search("vectors", k=1, filter={"year": {"$gte": 2020}})
    """

    _DEFAULT_BATCH: ClassVar[int] = 1000

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        connection: Connectable = None,
        collection_name: str = "langchain",
        distance_strategy: DistanceStrategy | str = DistanceStrategy.COSINE,
        embedding_length: int | None = None,
        vector_type: VectorType = "vector",
        schema: str | None = None,
        collection_table: str = "pgvec_collection",
        embedding_table: str = "pgvec_embedding",
        collection_metadata: dict[str, Any] | None = None,
        relevance_score_fn: Callable[[float], float] | None = None,
        search_settings: SearchSettings | None = None,
        statement_timeout: float | None = None,
        full_text: bool | str = False,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(collection_name, str) or not collection_name:
            raise InvalidInputError(
                f"collection_name must be a non-empty string, got {collection_name!r}"
            )
        check_string(collection_name, "collection_name")
        self._embeddings = embeddings
        self.collection_name = collection_name
        self.distance_strategy = DistanceStrategy(distance_strategy)
        self.override_relevance_score_fn = relevance_score_fn
        self._spec = TableSpec(
            schema=schema,
            collection_table=collection_table,
            embedding_table=embedding_table,
            dimension=embedding_length,
            vector_type=vector_type,
            text_search_config="english" if full_text is True else (full_text or None),
        )
        self._collection_metadata = dict(collection_metadata or {})
        timeout_ms = None if statement_timeout is None else max(1, int(statement_timeout * 1000))
        self.search_settings = (search_settings or SearchSettings()).merged(
            SearchSettings(statement_timeout_ms=timeout_ms)
        )
        self._engines = Engines(connection, engine_kwargs)
        self._state: State | None = None
        self._statements: dict[tuple[Any, ...], Any] = {}
        self._estimates: dict[tuple[Any, ...], tuple[float, int, str]] = {}
        self._settings: dict[Any, DriverStatement] = {}
        # unfiltered searches without per-call settings, by (k, flags): the state they
        # were made for and the search; valid while search_settings is the object they
        # were resolved with
        self._plain: dict[tuple[Any, ...], tuple[State, _Search]] = {}
        self._plain_settings = self.search_settings

    # ------------------------------------------------------------------ plumbing

    @property
    def embeddings(self) -> Embeddings:
        """The embeddings model."""
        return self._embeddings

    @property
    def engine(self) -> Engine:
        """The sync SQLAlchemy engine (created on first use when only async was given)."""
        return self._engines.sync

    @property
    def async_engine(self) -> AsyncEngine:
        """The async SQLAlchemy engine (created on first use when only sync was given)."""
        return self._engines.async_

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return self.override_relevance_score_fn or self.distance_strategy.relevance

    def _known(self, state: State | None, dimension: int | None, create: bool) -> bool:
        if state is None:
            return False
        if create and state.collection_id is None:
            return False
        table_dim = state.tables.spec.dimension
        return dimension is None or table_dim is None or table_dim == dimension

    def _keep(self, state: State | None) -> State | None:
        if state is not None and state.collection_id is not None:
            self._state = state
        return state

    def _ensure(self, dimension: int | None = None, *, create: bool = False) -> State | None:
        if self._known(self._state, dimension, create):
            return self._state
        with begin(self._engines.sync, vectors=False) as conn:
            state = ensure(
                conn,
                self._spec,
                self.collection_name,
                dimension=dimension,
                create=create,
                collection_metadata=self._collection_metadata,
            )
        return self._keep(state)

    async def _aensure(self, dimension: int | None = None, *, create: bool = False) -> State | None:
        if self._known(self._state, dimension, create):
            return self._state
        async with abegin(self._engines.async_, vectors=False) as conn:
            state = await conn.run_sync(
                ensure,
                self._spec,
                self.collection_name,
                dimension=dimension,
                create=create,
                collection_metadata=self._collection_metadata,
            )
        return self._keep(state)

    def _prelude(self) -> Any:
        """Settings for a call that is not a search (only the statement timeout)."""
        timeout = self.search_settings.statement_timeout_ms
        return None if timeout is None else _tuning.set_local({"statement_timeout": str(timeout)})

    def _grew(self, rows: int) -> None:
        """Add rows this store wrote to its cached row estimate, so that the warning
        about a large unindexed table also sees a table that grew after ensure()."""
        state = self._state
        if state is not None:
            self._state = dataclasses.replace(state, approx_rows=state.approx_rows + rows)

    def _writable(self, dimension: int) -> State:
        return _writable(self._ensure(dimension, create=True))

    async def _awritable(self, dimension: int) -> State:
        return _writable(await self._aensure(dimension, create=True))

    def _lock(self, conn: Connection, tables: Tables) -> uuid.UUID:
        """Lock (or create) the collection inside a write transaction; refresh the cache."""
        cid = lock_collection(conn, tables, self.collection_name, self._collection_metadata)
        if self._state is not None and self._state.collection_id != cid:
            self._state = dataclasses.replace(self._state, collection_id=cid)
        return cid

    def _where(self, state: State, filter: Filter | None) -> ColumnElement[bool] | None:
        if not filter:
            return None
        return compile_filter(filter, state.tables.embedding.c.metadata)

    def create_tables(self) -> None:
        """Create the extension, tables and collection now rather than on first write.

        Needs ``embedding_length`` (or an existing table) to know the dimension.
        """
        if self._ensure(self._spec.dimension, create=True) is None:
            raise InvalidInputError(
                "cannot create the tables without a dimension: pass embedding_length"
            )

    async def acreate_tables(self) -> None:
        """Async twin of :meth:`create_tables`."""
        if await self._aensure(self._spec.dimension, create=True) is None:
            raise InvalidInputError(
                "cannot create the tables without a dimension: pass embedding_length"
            )

    # ------------------------------------------------------------------ writing

    def add_embeddings(
        self,
        texts: Iterable[str],
        embeddings: Any,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Upsert texts with precomputed embeddings, in one transaction.

        Args:
            texts: The contents.
            embeddings: One vector per text: a list of lists or a 2-D numpy array.
            metadatas: One dict per text (JSON-serialisable), or None.
            ids: One id per text (None entries are generated), or None to generate all.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            The ids, in input order.
        """
        batch = prepare(texts, embeddings, metadatas, ids)
        if not len(batch):
            return []
        state = self._writable(batch.vectors.shape[1])
        _ingest.check_dimension(state.tables, batch)
        with begin(self._engines.sync, prelude=self._prelude()) as conn:
            _ingest.write(conn, state.tables, self._lock(conn, state.tables), batch)
        self._grew(len(batch))
        return batch.ids

    async def aadd_embeddings(
        self,
        texts: Iterable[str],
        embeddings: Any,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of :meth:`add_embeddings`."""
        batch = prepare(texts, embeddings, metadatas, ids)
        if not len(batch):
            return []
        state = await self._awritable(batch.vectors.shape[1])
        _ingest.check_dimension(state.tables, batch)
        async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
            cid = await conn.run_sync(self._lock, state.tables)
            await _ingest.awrite(conn, state.tables, cid, batch)
        self._grew(len(batch))
        return batch.ids

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts, all in one transaction.

        Everything is validated before the first embedding call. Texts are embedded
        ``batch_size`` at a time; while one batch is written, the next is embedded
        (in a worker thread, one embedding call at a time).

        Args:
            texts: The contents.
            metadatas: One dict per text, or None.
            ids: One id per text (None entries are generated), or None to generate all.
            batch_size: Texts per embedding call (default 1,000).
            show_progress: A progress bar on stderr; None shows one for 1,000+ texts
                when stderr is a terminal.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            The ids, in input order.
        """
        rows = _ingest.plan(texts, metadatas, ids)
        if not len(rows):
            return []
        spans = _ingest.spans(len(rows), self._DEFAULT_BATCH if batch_size is None else batch_size)
        embed = self._embeddings.embed_documents
        with _ingest.progress(len(rows), show_progress) as bar, ThreadPoolExecutor(1) as pool:
            vectors = embed(rows.texts[slice(*spans[0])])
            state = self._writable(len(vectors[0]) if vectors else 0)
            with begin(self._engines.sync, prelude=self._prelude()) as conn:
                cid = self._lock(conn, state.tables)
                for number, span in enumerate(spans):
                    following = spans[number + 1] if number + 1 < len(spans) else None
                    ahead = following and pool.submit(embed, rows.texts[slice(*following)])
                    batch = _ingest.with_vectors(rows, span, vectors, state.tables)
                    _ingest.write(conn, state.tables, cid, batch)
                    bar.update(len(batch))
                    vectors = ahead.result() if ahead else []
        self._grew(len(rows))
        return rows.ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of :meth:`add_texts` (the next batch embeds in a task)."""
        rows = _ingest.plan(texts, metadatas, ids)
        if not len(rows):
            return []
        spans = _ingest.spans(len(rows), self._DEFAULT_BATCH if batch_size is None else batch_size)
        embed = self._embeddings.aembed_documents
        with _ingest.progress(len(rows), show_progress) as bar:
            vectors = await embed(rows.texts[slice(*spans[0])])
            state = await self._awritable(len(vectors[0]) if vectors else 0)
            async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
                cid = await conn.run_sync(self._lock, state.tables)
                for number, span in enumerate(spans):
                    following = spans[number + 1] if number + 1 < len(spans) else None
                    ahead = following and asyncio.ensure_future(
                        embed(rows.texts[slice(*following)])
                    )
                    batch = _ingest.with_vectors(rows, span, vectors, state.tables)
                    await _ingest.awrite(conn, state.tables, cid, batch)
                    bar.update(len(batch))
                    vectors = await ahead if ahead else []
        self._grew(len(rows))
        return rows.ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Upsert documents; ``Document.id`` is honoured (generated where None).

        Args:
            documents: The documents.
            **kwargs: ``ids`` overrides the documents' ids.

        Returns:
            The ids, in input order.
        """
        texts, metadatas, ids = self._unpack(documents, kwargs.pop("ids", None))
        return self.add_texts(texts, metadatas, ids=ids, **kwargs)

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Async twin of :meth:`add_documents`."""
        texts, metadatas, ids = self._unpack(documents, kwargs.pop("ids", None))
        return await self.aadd_texts(texts, metadatas, ids=ids, **kwargs)

    @staticmethod
    def _unpack(
        documents: Sequence[Document], ids: Sequence[str | None] | None
    ) -> tuple[list[str], list[dict[str, Any]], list[str]]:
        documents = list(documents)
        if ids is None:
            ids = [doc.id for doc in documents]
        return (
            [doc.page_content for doc in documents],
            [doc.metadata for doc in documents],
            check_ids(ids, len(documents)),
        )

    # ------------------------------------------------------------------ reading

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order asked (missing ids are skipped)."""
        ids = lookup_ids(ids)
        state = self._ensure()
        if not ids or state is None or state.collection_id is None:
            return []
        with begin(self._engines.sync, prelude=self._prelude()) as conn:
            rows = conn.execute(_sql.get_by_ids(state.tables, state.collection_id, ids))
            return _in_order(_documents(rows), ids)

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async twin of :meth:`get_by_ids`."""
        ids = lookup_ids(ids)
        state = await self._aensure()
        if not ids or state is None or state.collection_id is None:
            return []
        async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
            rows = await conn.execute(_sql.get_by_ids(state.tables, state.collection_id, ids))
            return _in_order(_documents(rows), ids)

    def get(
        self, filter: Filter | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[Document]:
        """Documents matching a metadata filter, in id order (all when no filter)."""
        state = self._ensure()
        if state is None or state.collection_id is None:
            return []
        statement = _sql.get_where(
            state.tables,
            state.collection_id,
            self._where(state, filter),
            limit=limit,
            offset=offset,
        )
        with begin(self._engines.sync, prelude=self._prelude()) as conn:
            return _documents(conn.execute(statement))

    async def aget(
        self, filter: Filter | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[Document]:
        """Async twin of :meth:`get`."""
        state = await self._aensure()
        if state is None or state.collection_id is None:
            return []
        statement = _sql.get_where(
            state.tables,
            state.collection_id,
            self._where(state, filter),
            limit=limit,
            offset=offset,
        )
        async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
            return _documents(await conn.execute(statement))

    def count(self, filter: Filter | None = None) -> int:
        """How many documents of the collection match the filter (all when no filter)."""
        state = self._ensure()
        if state is None or state.collection_id is None:
            return 0
        statement = _sql.count(state.tables, state.collection_id, self._where(state, filter))
        with begin(self._engines.sync, prelude=self._prelude()) as conn:
            return int(conn.execute(statement).scalar_one())

    async def acount(self, filter: Filter | None = None) -> int:
        """Async twin of :meth:`count`."""
        state = await self._aensure()
        if state is None or state.collection_id is None:
            return 0
        statement = _sql.count(state.tables, state.collection_id, self._where(state, filter))
        async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
            return int((await conn.execute(statement)).scalar_one())

    # ------------------------------------------------------------------ deleting

    def delete(
        self, ids: Sequence[str] | None = None, *, filter: Filter | None = None, **kwargs: Any
    ) -> bool:
        """Delete documents by id, or by metadata filter.

        Args:
            ids: Ids to delete (ids that do not exist are ignored).
            filter: A metadata filter; every matching document of the collection goes.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            True.
        """
        self._check_delete(ids, filter)
        state = self._ensure()
        if state is None or state.collection_id is None:
            return True
        statement = self._delete_statement(state, ids, filter)
        with begin(self._engines.sync, prelude=self._prelude()) as conn:
            retrying(conn, lambda: conn.execute(statement))
        return True

    async def adelete(
        self, ids: Sequence[str] | None = None, *, filter: Filter | None = None, **kwargs: Any
    ) -> bool:
        """Async twin of :meth:`delete`."""
        self._check_delete(ids, filter)
        state = await self._aensure()
        if state is None or state.collection_id is None:
            return True
        statement = self._delete_statement(state, ids, filter)
        async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
            await aretrying(conn, lambda: conn.execute(statement))
        return True

    @staticmethod
    def _check_delete(ids: Sequence[str] | None, filter: Filter | None) -> None:
        if ids is None and filter is None:
            raise InvalidInputError(
                "delete() needs ids or a filter; to remove the whole collection call "
                "delete_collection(), to remove every document pass filter={}"
            )
        if ids is not None:
            lookup_ids(ids)

    def _delete_statement(
        self, state: State, ids: Sequence[str] | None, filter: Filter | None
    ) -> Any:
        assert state.collection_id is not None
        where = self._where(state, filter) if filter is not None else None
        if ids is not None:
            statement = _sql.delete_ids(state.tables, state.collection_id, list(ids))
            return statement if where is None else statement.where(where)
        return _sql.delete_where(state.tables, state.collection_id, where)

    def delete_collection(self) -> None:
        """Delete this store's collection and all its documents."""
        state = self._ensure()
        self._state = None
        if state is not None:
            with begin(self._engines.sync, prelude=self._prelude()) as conn:
                conn.execute(_sql.delete_collection(state.tables, self.collection_name))

    async def adelete_collection(self) -> None:
        """Async twin of :meth:`delete_collection`."""
        state = await self._aensure()
        self._state = None
        if state is not None:
            async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
                await conn.execute(_sql.delete_collection(state.tables, self.collection_name))

    # ------------------------------------------------------------------ searching

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents with their distance (lower is closer)."""
        _check_k(k)
        state = self._ensure(len(embedding))
        if not k or state is None or state.collection_id is None:
            return []
        return _scored(self._read(self._search(state, embedding, k, filter, kwargs)))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score_by_vector`."""
        _check_k(k)
        state = await self._aensure(len(embedding))
        if not k or state is None or state.collection_id is None:
            return []
        return _scored(await self._aread(self._search(state, embedding, k, filter, kwargs)))

    def _read(self, search: _Search) -> list[Any]:
        """The rows of a search. One statement (no settings, the filter already judged)
        runs straight on the store's own connection when it is free; otherwise the
        settings, the probes :meth:`_judged` reads and the search share one connection."""
        engines = self._engines
        engine = engines.sync  # made first: it makes the store's own connection
        own = engines.reads
        if own is not None and search.probe is None and search.settings is None:
            rows = own.fetch(search.driver, search.vector)
            if rows is not None:
                return rows
        with driver_read(engine, settings=search.settings, own=own) as driver:
            while search.probe is not None:
                search = self._judged(search, fetch(driver, search.probe, None))
            return fetch(driver, search.driver, search.vector)

    async def _aread(self, search: _Search) -> list[Any]:
        """Async twin of :meth:`_read`."""
        engines = self._engines
        async_engine = engines.async_  # made first: it makes the store's own connection
        own = engines.areads
        if own is not None and search.probe is None and search.settings is None:
            rows = await own.fetch(search.driver, search.vector)
            if rows is not None:
                return rows
        async with adriver_read(async_engine, settings=search.settings, own=own) as driver:
            while search.probe is not None:
                search = self._judged(search, await afetch(driver, search.probe, None))
            return await afetch(driver, search.driver, search.vector)

    def _search(
        self,
        state: State,
        embedding: Sequence[float],
        k: int,
        filter: Filter | None,
        kwargs: dict[str, Any],
        *,
        with_vectors: bool = False,
    ) -> _Search:
        """The settings statement, the search statement and the query vector.

        Statements are built and compiled once per shape (k, filter, flags): the query
        vector is the only parameter that changes between calls. The settings
        statement is sent only for settings that differ from the session's (the plain
        top-k sends none). A filtered search is exact, without settings, when the
        filter is known to match few rows; when that is not known (or was learnt over
        a minute ago), the search carries the EXPLAIN that tells, see :meth:`_judged`.
        """
        assert state.collection_id is not None
        self._warn_if_unindexed(state)
        vector = as_vector(embedding, state.tables.spec.dimension)
        plain = None if filter or kwargs else (k, with_vectors)
        if plain is not None:  # the common call: all but the vector known from the last one
            if self.search_settings is not self._plain_settings:  # reassigned: start over
                self._plain.clear()
                self._plain_settings = self.search_settings
            last = self._plain.get(plain)
            if last is not None and last[0] is state:
                return last[1]._replace(vector=vector)
        settings = self.search_settings.merged(_tuning.from_kwargs(kwargs))
        shape = _filter_key(filter)
        # compiled (and validated) only when a statement is built: a cached shape was
        # built from a filter with the same JSON, which compiles the same
        where = functools.cache(lambda: self._where(state, filter))
        threshold = _tuning.exact_below(settings) if filter else 0
        estimate_key = (state.tables.spec, state.collection_id, shape)
        known = self._estimates.get(estimate_key) if threshold and shape is not None else None
        decided = None
        if known is not None and time.monotonic() - known[0] < _ESTIMATE_TTL:
            decided = _few(known[1], known[2], threshold)
        if decided:
            exact = self._statement(state, vector, k, where, shape, with_vectors, True)
            return _Search(None, exact[0], exact[1], vector)

        iterative = _tuning.supports_iterative(state.extension_version)
        fetch_rows = _tuning.fetch_size(settings, k, bool(filter))
        gucs = _tuning.resolve(
            settings, candidates=fetch_rows, filtered=bool(filter), iterative_supported=iterative
        )
        resort = gucs.get("hnsw.iterative_scan") == "relaxed_order"
        approx = self._statement(
            state, vector, (k, fetch_rows, resort), where, shape, with_vectors, False
        )
        prelude = _tuning.set_local(_tuning.changes(gucs, dict(state.settings)))
        gucs_sql = None if prelude is None else self._compiled_settings(prelude)
        if not threshold or decided is not None:
            search = _Search(prelude, approx[0], approx[1], vector, settings=gucs_sql)
            if plain is not None:
                if len(self._plain) >= _STATEMENT_CACHE:
                    self._plain.clear()
                self._plain[plain] = (state, search)
            return search
        tables, cid = state.tables, state.collection_id
        plan = _sql.matching_rows_plan(tables, cid, where())
        count = _sql.count(tables, cid, where(), cap=threshold + 1)
        return _Search(
            prelude,
            approx[0],
            approx[1],
            vector,
            probe=self._compiled(plan),
            tally=self._compiled(count),
            estimate_key=estimate_key if shape is not None else None,
            exact=self._statement(state, vector, k, where, shape, with_vectors, True),
            threshold=threshold,
            settings=gucs_sql,
        )

    def _statement(
        self,
        state: State,
        vector: np.ndarray,
        size: Any,
        where: Callable[[], ColumnElement[bool] | None],
        shape: str | None,
        with_vectors: bool,
        exact: bool,
    ) -> tuple[Any, DriverStatement]:
        """A search statement and its compiled form, cached by shape.

        ``size`` is ``k`` for an exact search, ``(k, fetch, resort)`` for an index one.
        """
        assert state.collection_id is not None
        key: tuple[Any, ...] | None = None
        if shape is not None:
            spec, cid = state.tables.spec, state.collection_id
            key = (spec, cid, size, shape, with_vectors, exact)
        cached = self._statements.get(key) if key is not None else None
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        k, fetch_rows, resort = (size, size, False) if exact else size
        statement = _sql.search(
            state.tables,
            state.collection_id,
            self.distance_strategy,
            vector,
            k,
            where(),
            with_vectors=with_vectors,
            resort=resort,
            fetch=fetch_rows,
            exact=exact,
        )
        compiled = statement, self._compiled(statement)
        if key is not None:
            if len(self._statements) >= _STATEMENT_CACHE:
                self._statements.clear()
            self._statements[key] = compiled
        return compiled

    def _compiled_settings(self, prelude: Any) -> DriverStatement:
        # the few settings statements recur (_tuning builds each once): compile each once
        compiled = self._settings.get(prelude)
        if compiled is None:
            if len(self._settings) >= _STATEMENT_CACHE:
                self._settings.clear()
            compiled = self._settings[prelude] = self._compiled(prelude)
        return compiled

    def _compiled(self, statement: Any) -> DriverStatement:
        # psycopg's sync and async dialects compile alike: one form serves both runners
        return DriverStatement.compile(statement, self._engines.dialect, _sql.QUERY)

    def _judged(self, search: _Search, answer: Sequence[Sequence[Any]]) -> _Search:
        """The search once its probe has answered: the planner's estimate (EXPLAIN
        lines) may call for the capped count next; the count decides. The exact search
        runs when the filter matches at most the threshold's rows."""
        if search.probe is search.tally:
            rows: int | None = int(answer[0][0])
            kind = "at least" if rows == search.threshold + 1 else "exactly"
        else:
            found = _ROWS.search(str(answer[0][0])) if answer else None
            rows, kind = (int(found.group(1)) if found else None), "about"
            if rows is not None and _few(rows, kind, search.threshold) is None:
                return search._replace(probe=search.tally)  # close: count them
        search = search._replace(probe=None)
        if rows is None or search.exact is None:
            return search
        if search.estimate_key is not None:
            if len(self._estimates) >= _STATEMENT_CACHE:
                self._estimates.clear()
            self._estimates[search.estimate_key] = (time.monotonic(), rows, kind)
        if not _few(rows, kind, search.threshold):
            return search
        return search._replace(statement=search.exact[0], driver=search.exact[1])

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` nearest documents to a vector."""
        pairs = self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`similarity_search_by_vector`."""
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents to a query with their distance (lower is closer)."""
        vector = self._embeddings.embed_query(query)
        return self.similarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score`."""
        vector = await self._embeddings.aembed_query(query)
        return await self.asimilarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    def similarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to a query, optionally filtered by metadata."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`similarity_search`."""
        pairs = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        relevance = self._select_relevance_score_fn()
        pairs = self.similarity_search_with_score(query, k, **kwargs)
        return [(doc, relevance(score)) for doc, score in pairs]

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        relevance = self._select_relevance_score_fn()
        pairs = await self.asimilarity_search_with_score(query, k, **kwargs)
        return [(doc, relevance(score)) for doc, score in pairs]

    # ------------------------------------------------------------------ MMR

    def max_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """MMR over the ``fetch_k`` nearest candidates, in MMR's selection order."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        state = self._ensure(len(embedding))
        if not k or not fetch_k or state is None or state.collection_id is None:
            return []
        search = self._search(state, embedding, fetch_k, filter, kwargs, with_vectors=True)
        rows = self._read(search)
        return self._mmr(state, embedding, rows, k, lambda_mult)

    async def amax_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`max_marginal_relevance_search_with_score_by_vector`."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        state = await self._aensure(len(embedding))
        if not k or not fetch_k or state is None or state.collection_id is None:
            return []
        search = self._search(state, embedding, fetch_k, filter, kwargs, with_vectors=True)
        rows = await self._aread(search)
        return self._mmr(state, embedding, rows, k, lambda_mult)

    @staticmethod
    def _mmr(
        state: State,
        embedding: Sequence[float],
        rows: Sequence[Sequence[Any]],
        k: int,
        lambda_mult: float,
    ) -> list[tuple[Document, float]]:
        if not rows:
            return []
        candidates = decode_vectors([r[4] for r in rows], state.tables.spec.vector_type)
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), candidates, k=k, lambda_mult=lambda_mult
        )
        return _scored([rows[i] for i in chosen])  # Documents for the k chosen only

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR documents for a vector, in MMR's selection order."""
        pairs = self.max_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )
        return [doc for doc, _ in pairs]

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search_by_vector`."""
        pairs = await self.amax_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )
        return [doc for doc, _ in pairs]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR documents for a query: relevant to it and diverse among themselves."""
        vector = self._embeddings.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, **kwargs
        )

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search`."""
        vector = await self._embeddings.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, **kwargs
        )

    # ------------------------------------------------------------------ full text, hybrid

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        fetch_k: int | None = None,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Full-text and vector search fused by reciprocal rank fusion, in one statement.

        Needs ``full_text`` enabled on the store. The query takes ``websearch_to_tsquery``
        syntax (``"quoted phrase"``, ``or``, ``-excluded``); a query with no searchable
        words falls back to the vector leg alone.

        Args:
            query: The query text (embedded for the vector leg).
            k: Documents to return.
            filter: A metadata filter, applied inside both legs.
            fetch_k: Candidates each leg ranks (default ``max(20, 4 * k)``).
            rrf_k: The RRF constant: larger values flatten the rank contributions.
            weights: (vector weight, full-text weight).
            **kwargs: Per-call search settings (``ef_search=`` ...).

        Returns:
            (document, fused score) pairs, highest score first.
        """
        vector = self._embeddings.embed_query(query)
        state = self._ensure(len(vector))
        if not k or state is None or state.collection_id is None:
            return []
        prelude, statement = self._hybrid(
            state, vector, query, k, filter, fetch_k, rrf_k, weights, kwargs
        )
        with begin(self._engines.sync, prelude=prelude) as conn:
            return _fused(conn.execute(statement))

    async def ahybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        fetch_k: int | None = None,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`hybrid_search_with_score`."""
        vector = await self._embeddings.aembed_query(query)
        state = await self._aensure(len(vector))
        if not k or state is None or state.collection_id is None:
            return []
        prelude, statement = self._hybrid(
            state, vector, query, k, filter, fetch_k, rrf_k, weights, kwargs
        )
        async with abegin(self._engines.async_, prelude=prelude) as conn:
            return _fused(await conn.execute(statement))

    def _hybrid(
        self,
        state: State,
        embedding: Sequence[float],
        query: str,
        k: int,
        filter: Filter | None,
        fetch_k: int | None,
        rrf_k: int,
        weights: tuple[float, float],
        kwargs: dict[str, Any],
    ) -> tuple[Any, Any]:
        """The settings statement and the fused statement of one hybrid search."""
        assert state.collection_id is not None
        _check_k(k)
        candidates = max(20, 4 * k) if fetch_k is None else fetch_k
        _check_k(candidates, "fetch_k")
        _check_k(rrf_k, "rrf_k")
        if len(weights) != 2 or not all(math.isfinite(w) and w >= 0 for w in weights):
            raise InvalidInputError(
                f"weights must be two non-negative numbers (vector, text), got {weights!r}"
            )
        where = self._where(state, filter)
        settings = self.search_settings.merged(_tuning.from_kwargs(kwargs))
        gucs = _tuning.resolve(
            settings,
            candidates=candidates,
            filtered=where is not None,
            iterative_supported=_tuning.supports_iterative(state.extension_version),
        )
        statement = _hybrid.hybrid(
            state.tables,
            state.collection_id,
            self.distance_strategy,
            as_vector(embedding, state.tables.spec.dimension),
            query,
            k=k,
            fetch_k=candidates,
            rrf_k=rrf_k,
            weights=(float(weights[0]), float(weights[1])),
            where=where,
        )
        return _tuning.set_local(_tuning.changes(gucs, dict(state.settings))), statement

    def hybrid_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents from :meth:`hybrid_search_with_score`, without the scores."""
        return [doc for doc, _ in self.hybrid_search_with_score(query, k, filter, **kwargs)]

    async def ahybrid_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`hybrid_search`."""
        pairs = await self.ahybrid_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def full_text_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Keyword search only (``websearch_to_tsquery``), ranked by ``ts_rank_cd``.

        Returns:
            (document, rank) pairs, highest first; empty for a query with no
            searchable words.
        """
        _check_k(k)
        state = self._ensure()
        if not k or state is None or state.collection_id is None:
            return []
        statement = _hybrid.full_text(
            state.tables, state.collection_id, query, k, self._where(state, filter)
        )
        with begin(self._engines.sync, prelude=self._prelude()) as conn:
            return _fused(conn.execute(statement))

    async def afull_text_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`full_text_search_with_score`."""
        _check_k(k)
        state = await self._aensure()
        if not k or state is None or state.collection_id is None:
            return []
        statement = _hybrid.full_text(
            state.tables, state.collection_id, query, k, self._where(state, filter)
        )
        async with abegin(self._engines.async_, prelude=self._prelude()) as conn:
            return _fused(await conn.execute(statement))

    def full_text_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents from :meth:`full_text_search_with_score`, without the ranks."""
        return [doc for doc, _ in self.full_text_search_with_score(query, k, filter, **kwargs)]

    async def afull_text_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`full_text_search`."""
        pairs = await self.afull_text_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def as_retriever(self, **kwargs: Any) -> PGVecRetriever:
        """A LangChain retriever over this store.

        ``search_type`` is ``"similarity"`` (default), ``"mmr"``,
        ``"similarity_score_threshold"``, ``"hybrid"`` or ``"full_text"``;
        ``search_kwargs`` go to the matching search method (``k``, ``filter``,
        ``fetch_k``, ``ef_search``, ...).
        """
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return PGVecRetriever(vectorstore=self, tags=tags, **kwargs)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Make a store (``kwargs`` go to the constructor) and add ``texts`` to it."""
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Async twin of :meth:`from_texts`."""
        store = cls(embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_embeddings(
        cls,
        text_embeddings: Sequence[tuple[str, Sequence[float]]],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Make a store from (text, vector) pairs computed elsewhere."""
        store = cls(embedding, **kwargs)
        texts = [text for text, _ in text_embeddings]
        store.add_embeddings(texts, [vector for _, vector in text_embeddings], metadatas, ids)
        return store

    def close(self) -> None:
        """Close the connection pools this store created (never an engine you passed)."""
        self._engines.dispose()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await self._engines.adispose()

    def __repr__(self) -> str:
        return (
            f"PGVecStore(collection_name={self.collection_name!r}, "
            f"table={self._spec.qualified_embedding_table!r}, "
            f"distance_strategy={self.distance_strategy.value!r})"
        )
