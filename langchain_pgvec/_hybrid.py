"""Full-text and hybrid (full-text + vector) search statements; pure builders.

Hybrid search is one statement: a CTE ranks the ``fetch_k`` nearest vectors, another
ranks the ``fetch_k`` best full-text matches (``websearch_to_tsquery`` syntax, ranked
by ``ts_rank_cd``), both scoped to the collection and the metadata filter, and they
are fused by reciprocal rank fusion::

    score(d) = w_vector / (rrf_k + rank_vector(d)) + w_text / (rrf_k + rank_text(d))

with a missing rank contributing 0. A query without searchable words (only stop
words or punctuation) makes the text leg empty, so the result is the vector leg's.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlalchemy import Select, and_, bindparam, cast, func, literal, select
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.sql import ColumnElement

from . import _validate
from ._errors import SchemaError
from ._schema import TSV_COLUMN, DistanceStrategy, Tables
from ._sql import Leg, inline, scope, search


def _tsv(tables: Tables) -> Any:
    config = tables.spec.text_search_config
    if config is None or TSV_COLUMN not in tables.embedding.c:
        raise SchemaError(
            "full-text search is not enabled on this store: create it with "
            "PGVecStore(..., full_text=True) (or full_text='<config>'), which adds the "
            f"generated column {TSV_COLUMN!r} and its GIN index to "
            f"{tables.spec.qualified_embedding_table!r}"
        )
    return tables.embedding.c[TSV_COLUMN], config


def check_search(tables: Tables, text: object, *, present: bool = True) -> None:
    """Raise before any I/O unless the store has full-text search and ``text`` is a
    string; ``present``: the table has the full-text column."""
    _tsv(tables)
    if not present:
        raise SchemaError(
            f"table {tables.spec.qualified_embedding_table!r} has no full-text column "
            f"({TSV_COLUMN!r}), and this role does not own the table, so it may not add "
            "it: have the table's owner run PGVecStore(..., full_text=True).create_tables() "
            "(or `pgvec init --full-text`) once"
        )
    _validate.check_query(text)


def _tsquery(config: str, text: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery(cast(literal(config), REGCONFIG), bindparam("text", text))


def _text_ranked(
    tables: Tables, cid: uuid.UUID, text: str, limit: int, where: ColumnElement[bool] | None
) -> Any:
    tsv, config = _tsv(tables)
    table = tables.embedding
    query = _tsquery(config, text)
    score = func.ts_rank_cd(tsv, query).label("score")
    return (
        select(table.c.id, score)
        .where(scope(tables, cid, where), tsv.op("@@")(query))
        .order_by(score.desc(), table.c.id)
        .limit(inline(limit))
    )


def full_text(
    tables: Tables, cid: uuid.UUID, text: str, k: int, where: ColumnElement[bool] | None
) -> Select[Any]:
    """The ``k`` best full-text matches: id, content, metadata, score (higher is better)."""
    return _documents(tables, cid, _text_ranked(tables, cid, text, k, where).subquery("ranked"))


def _documents(
    tables: Tables, cid: uuid.UUID, ranked: Any, *extra: ColumnElement[Any]
) -> Select[Any]:
    """The documents of ``ranked`` (``id``, ``score`` rows), best score first."""
    table = tables.embedding
    return (
        select(table.c.id, table.c.content, table.c.metadata, ranked.c.score, *extra)
        .join_from(
            ranked,
            table,
            and_(
                table.c.collection_id == inline(cid, table.c.collection_id.type),
                table.c.id == ranked.c.id,
            ),
        )
        .order_by(ranked.c.score.desc(), table.c.id)
    )


def hybrid(
    tables: Tables,
    cid: uuid.UUID,
    strategy: DistanceStrategy,
    vector: np.ndarray,
    text: str,
    *,
    k: int,
    fetch_k: int,
    rrf_k: int,
    weights: tuple[float, float],
    where: ColumnElement[bool] | None,
    leg: Leg | None = None,
) -> Select[Any]:
    """Reciprocal rank fusion of the vector and full-text legs, in one statement.

    The vector leg is the search statement for ``fetch_k`` rows, read as ``leg`` says
    (the index as it is by default). Each row also carries how many rows the vector
    leg found (``vector_rows``), so that a leg that came back short can be completed.
    """
    leg = leg or Leg(fetch=fetch_k)
    nearest = search(
        tables,
        cid,
        strategy,
        vector,
        fetch_k,
        where,
        resort=leg.resort,
        fetch=leg.fetch,
        exact=leg.exact,
        documents=False,
    ).subquery("nearest")
    vector_leg = select(
        nearest.c.id,
        func.row_number().over(order_by=(nearest.c.distance, nearest.c.id)).label("rank"),
    ).cte("vector_leg")
    matched = _text_ranked(tables, cid, text, fetch_k, where).subquery("matched")
    text_leg = select(
        matched.c.id,
        func.row_number().over(order_by=(matched.c.score.desc(), matched.c.id)).label("rank"),
    ).cte("text_leg")
    rrf = literal(float(rrf_k))
    vector_weight, text_weight = (literal(float(w)) for w in weights)
    score = (
        func.coalesce(vector_weight / (rrf + vector_leg.c.rank), 0.0)
        + func.coalesce(text_weight / (rrf + text_leg.c.rank), 0.0)
    ).label("score")
    doc_id = func.coalesce(vector_leg.c.id, text_leg.c.id).label("id")
    fused = (
        select(doc_id, score)
        .select_from(vector_leg.join(text_leg, vector_leg.c.id == text_leg.c.id, full=True))
        .order_by(score.desc(), doc_id)
        .limit(inline(k))
        .subquery("fused")
    )
    found = select(func.count()).select_from(vector_leg).scalar_subquery().label("vector_rows")
    return _documents(tables, cid, fused, found)
