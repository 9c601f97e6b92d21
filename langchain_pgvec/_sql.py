"""Pure statement builders: every query the store runs, built once, run by both runners.

Nothing here touches a connection. Each function takes the mapped tables and plain
values and returns a SQLAlchemy Core statement; the sync and async shells execute the
very same object.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import (
    ARRAY,
    Delete,
    Insert,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import Insert as PGInsert
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from . import _quantize, _terms
from ._quantize import Quantization
from ._schema import DistanceStrategy, Tables, send_function, vector_column_type


class Explain(Executable, ClauseElement):
    """``EXPLAIN [(ANALYZE, BUFFERS)] <statement>``, with the statement's own bound
    parameters; ``json`` asks for ``FORMAT JSON`` (one row: the plan as a document).

    Not cached (``inherit_cache = False``): the plan text depends on the wrapped
    statement only, and a cached wrapper would map its result rows by the wrapped
    SELECT's columns.
    """

    inherit_cache = False

    def __init__(self, statement: ClauseElement, *, analyze: bool = False, json: bool = False):
        self.statement = statement
        self.analyze = analyze
        self.json = json


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    options = [o for o, on in (("ANALYZE", element.analyze), ("BUFFERS", element.analyze)) if on]
    if element.json:
        options.append("FORMAT JSON")
    head = "EXPLAIN (" + ", ".join(options) + ") " if options else "EXPLAIN "
    return head + compiler.process(element.statement, **kw)


class Analyze(Executable, ClauseElement):
    """``ANALYZE <table> [(<columns>)]``: fresh statistics for the planner."""

    inherit_cache = False

    def __init__(self, table: Any, columns: Sequence[str] = ()) -> None:
        self.table = table
        self.columns = tuple(columns)


@compiles(Analyze, "postgresql")
def _compile_analyze(element: Analyze, compiler: SQLCompiler, **kw: Any) -> str:
    preparer = compiler.preparer
    text = "ANALYZE " + preparer.format_table(element.table)
    if element.columns:
        text += " (" + ", ".join(preparer.quote(c) for c in element.columns) + ")"
    return text


#: what a role is granted: an application that writes, one that only searches
GRANTS: dict[str, tuple[str, ...]] = {
    "write": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "read": ("SELECT",),
}


class Grant(Executable, ClauseElement):
    """``GRANT <privileges> ON <tables> TO <role>`` (or ``USAGE ON SCHEMA``)."""

    inherit_cache = False

    def __init__(
        self, privileges: Sequence[str], tables: Sequence[Any], role: str, schema: str | None = None
    ):
        self.privileges = tuple(privileges)
        self.tables = tuple(tables)
        self.role = role
        self.schema = schema


@compiles(Grant, "postgresql")
def _compile_grant(element: Grant, compiler: SQLCompiler, **kw: Any) -> str:
    preparer = compiler.preparer
    role = preparer.quote(element.role)
    if element.schema is not None:
        return "GRANT USAGE ON SCHEMA " + preparer.quote_schema(element.schema) + " TO " + role
    targets = ", ".join(preparer.format_table(table) for table in element.tables)
    # the privileges are keywords from GRANTS, never user input
    return "GRANT " + ", ".join(element.privileges) + " ON TABLE " + targets + " TO " + role


def grants(tables: Tables, role: str, access: str) -> list[Grant]:
    """The statements that let ``role`` use the tables: ``access`` is ``"write"`` (an
    application's role) or ``"read"`` (one that only searches)."""
    targets = [tables.embedding, tables.collection]
    if tables.spec.text_search_config is not None:
        # the term statistics: triggers append to them as the role writes, the role
        # folds them, and keyword searches read them
        targets.append(_terms.terms_table(tables.spec))
    statements = [Grant(GRANTS[access], targets, role)]
    if tables.spec.schema is not None:
        statements.insert(0, Grant((), (), role, tables.spec.schema))
    return statements


def analyze(
    tables: Tables, scope: Literal["table", "planner"] = "table", partition: Any = None
) -> Analyze:
    """``ANALYZE`` of the embedding table (or of ``partition``, one of its partitions):
    every column and index expression (``"table"``), or only the columns searches are
    planned by (``"planner"``: the collection, the metadata and the full-text column; a
    fraction of the time, as it skips the vectors, ids, texts and expression indexes)."""
    table = tables.embedding
    if scope == "table":
        return Analyze(table if partition is None else partition)
    wanted = ("collection_id", "metadata", "content_tsv")
    return Analyze(table if partition is None else partition, [c for c in wanted if c in table.c])


def collection_id(tables: Tables, name: str) -> Select[Any]:
    """The id of the collection called ``name`` (no row if it does not exist)."""
    collection = tables.collection
    return select(collection.c.id).where(collection.c.name == name)


def lock_collection(tables: Tables, name: str) -> Select[Any]:
    """The collection's id, locked FOR KEY SHARE until the transaction ends.

    The lock a foreign-key check takes: writers never block each other, and a
    concurrent ``delete_collection`` waits for the write to commit.
    """
    return collection_id(tables, name).with_for_update(read=True, key_share=True)


def create_collection(tables: Tables, name: str, metadata: dict[str, Any] | None = None) -> Insert:
    """Insert the collection unless it exists (a concurrent creator wins quietly); its
    id comes back when this statement inserted it, no row when it existed."""
    collection = tables.collection
    return (
        insert(collection)
        .values(id=uuid.uuid4(), name=name, metadata=metadata or {})
        .on_conflict_do_nothing(index_elements=[collection.c.name])
        .returning(collection.c.id)
    )


def delete_collection(tables: Tables, name: str) -> Delete:
    """Delete a collection; its documents go with it (ON DELETE CASCADE)."""
    collection = tables.collection
    return delete(collection).where(collection.c.name == name)


def upsert(tables: Tables) -> PGInsert:
    """Insert rows, replacing content, metadata and embedding of ids that exist.

    Run with a list of parameter dicts (``collection_id``, ``id``, ``content``,
    ``metadata``, ``embedding``): SQLAlchemy batches them into multi-row VALUES.
    """
    return on_conflict_update(tables, insert(tables.embedding))


def on_conflict_update(tables: Tables, statement: PGInsert) -> PGInsert:
    """Add ``ON CONFLICT (collection_id, id) DO UPDATE`` replacing the row's values,
    for rows whose values differ.

    A row written again unchanged (re-running an ingestion) is left alone: no new row
    version, no index entries, no TOAST rewrite of its vector. "Unchanged" is exact:
    after the cheap comparisons (evaluated first, so a changed row stops there),
    metadata is compared as text (jsonb equality takes 1 and 1.0 as equal, which would
    keep the old number's type) and vectors as their binary form (``=`` takes -0.0 and
    0.0 as equal).
    """
    table, new = statement.table, statement.excluded
    vector_type = tables.spec.vector_type
    changed = or_(
        table.c.content.is_distinct_from(new.content),
        table.c.embedding.is_distinct_from(new.embedding),
        table.c.metadata.is_distinct_from(new.metadata),
        cast(table.c.metadata, Text).is_distinct_from(cast(new.metadata, Text)),
        send_function(vector_type, table.c.embedding).is_distinct_from(
            send_function(vector_type, new.embedding)
        ),
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[table.c.collection_id, table.c.id],
        set_={"content": new.content, "metadata": new.metadata, "embedding": new.embedding},
        where=changed,
    )
    # the rows inserted or changed: what the store counts towards refreshing statistics
    return upsert.execution_options(preserve_rowcount=True)


def _ids_param(ids: Sequence[str]) -> Any:
    return bindparam("ids", value=list(ids), type_=ARRAY(Text))


def inline(value: Any, type_: Any = None) -> Any:
    """A value rendered into the SQL text at execution (still cached by SQLAlchemy).

    For the collection id and LIMIT of searches: psycopg prepares a statement after a
    few runs, and a prepared generic plan knows neither a bound LIMIT nor a bound
    collection id, so it can neither cost the index scan for ``k`` rows nor match a
    per-collection partial index (``WHERE collection_id = '...'``).
    """
    return bindparam(None, value, type_=type_, literal_execute=True)


def scope(tables: Tables, cid: uuid.UUID, where: ColumnElement[bool] | None) -> Any:
    """The collection's rows (the id inline, see :func:`inline`), and ``where``."""
    table = tables.embedding
    scoped = table.c.collection_id == inline(cid, table.c.collection_id.type)
    return scoped if where is None else and_(scoped, where)


#: the name of the query vector's parameter, the one value bound per search call
QUERY = "query"


def query_vector(tables: Tables, vector: np.ndarray) -> Any:
    """The query vector as a bound parameter of the column's type (cast for halfvec)."""
    spec = tables.spec
    param = bindparam(QUERY, value=vector, type_=vector_column_type("vector", spec.dimension))
    if spec.vector_type == "halfvec":
        return cast(param, vector_column_type("halfvec", spec.dimension))
    return param


def search(
    tables: Tables,
    cid: uuid.UUID,
    strategy: DistanceStrategy,
    vector: np.ndarray,
    k: int,
    where: ColumnElement[bool] | None = None,
    *,
    with_vectors: bool = False,
    resort: bool = False,
    fetch: int | None = None,
    exact: bool = False,
    documents: bool = True,
    quantization: Quantization | None = None,
) -> Select[Any]:
    """The ``k`` nearest documents: id, content, metadata, distance (and embedding bytes).

    The distance is computed once, labelled, and ordered by its label, which is the
    form a vector index serves. With ``resort``, the ``k`` rows are sorted again by
    exact distance (an iterative scan in relaxed order may return them slightly out
    of order). With ``with_vectors``, embeddings are encoded (``vector_send``) in an
    outer query, for the ``k`` rows only rather than for every row scanned. With
    ``fetch`` > ``k``, the index is asked for ``fetch`` rows and the ``k`` nearest of
    them by exact distance are kept. With ``exact``, the distance is the function
    (``cosine_distance(...)``) rather than the operator, which no vector index serves:
    the rows matching ``where`` (found by their own indexes) are ranked by exact
    distance, each computed once. Without ``documents``, only ids and distances (a
    hybrid search's vector leg). With ``quantization`` (not with ``exact``), the inner
    query orders by the quantized distance, the expression of a quantized index
    (:func:`._quantize.distance`), takes ``fetch`` candidates with their exact
    distance, and the outer query keeps the ``k`` nearest by that exact distance.
    """
    table = tables.embedding
    query = query_vector(tables, vector)
    if exact:  # one computation, by a function no vector index orders by
        measure = strategy.function(table.c.embedding, query, tables.spec.vector_type)
    else:  # the operator, which the index serves
        measure = strategy.distance(table.c.embedding, query)
    distance = measure.label("distance")
    order: Any = distance
    if quantization is not None and not exact:
        dimension = tables.spec.dimension
        if dimension is None:
            raise ValueError("a search through a quantized index needs the table's dimension")
        typed = query
        if tables.spec.vector_type == "vector":  # binary_quantize() has a halfvec twin
            typed = cast(query, vector_column_type("vector", dimension))
        order = _quantize.distance(quantization, strategy, table.c.embedding, typed, dimension)
        resort = True  # the candidates, in quantized order, ranked by exact distance
    columns: list[Any] = [table.c.id, table.c.content, table.c.metadata, distance]
    if not documents:
        columns = [table.c.id, distance]
    if with_vectors:
        columns.append(table.c.embedding)
    fetch = k if exact else max(k, fetch or k)
    nearest = select(*columns).where(scope(tables, cid, where)).order_by(order).limit(inline(fetch))
    if exact and not with_vectors:
        return nearest
    if not (resort or with_vectors or fetch > k):
        return nearest
    inner = nearest.subquery("nearest")
    outer: list[Any] = [inner.c[c.name] for c in columns if c.name != "embedding"]
    if with_vectors:
        outer.append(send_function(tables.spec.vector_type, inner.c.embedding).label("vec"))
    # "+ 0": the planner would otherwise trust the inner ORDER BY and skip this sort,
    # which a relaxed iterative scan needs (pgvector's documented form)
    ranked = select(*outer).order_by(inner.c.distance + inline(0.0))
    return ranked if fetch == k else ranked.limit(inline(k))


@dataclass(frozen=True)
class Leg:
    """How the vector leg of a hybrid search reads its rows (the planner's route):
    ``fetch`` rows asked of the index, sorted again (``resort``), or ranked exactly."""

    fetch: int
    resort: bool = False
    exact: bool = False


def probe(tables: Tables, cid: uuid.UUID, where: ColumnElement[bool] | None) -> Explain:
    """``EXPLAIN (FORMAT JSON)`` of the collection's rows matching ``where``, then of the
    table's rows: the planner's estimates of both, in one round trip and no rows read."""
    table = tables.embedding
    matching = select(literal(1)).where(scope(tables, cid, where))
    # what the serving index holds: the table, or of a partitioned one the partition
    held = select(literal(1)).select_from(table)
    if tables.spec.partitioned:
        held = held.where(scope(tables, cid, None))
    return Explain(matching.union_all(held), json=True)


def get_by_ids(tables: Tables, cid: uuid.UUID, ids: Sequence[str]) -> Select[Any]:
    """Documents of the collection whose id is in ``ids``."""
    table = tables.embedding
    return select(table.c.id, table.c.content, table.c.metadata).where(
        scope(tables, cid, table.c.id == any_(_ids_param(ids)))
    )


def get_where(
    tables: Tables,
    cid: uuid.UUID,
    where: ColumnElement[bool] | None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> Select[Any]:
    """Documents of the collection that match ``where``, in id order."""
    table = tables.embedding
    statement = (
        select(table.c.id, table.c.content, table.c.metadata)
        .where(scope(tables, cid, where))
        .order_by(table.c.id)
        .offset(offset)
    )
    return statement if limit is None else statement.limit(limit)


def existing_ids(tables: Tables, cid: uuid.UUID, ids: Sequence[str]) -> Select[Any]:
    """Which of ``ids`` the collection holds (one index probe per id)."""
    table = tables.embedding
    return select(table.c.id).where(scope(tables, cid, table.c.id == any_(_ids_param(ids))))


def any_row(tables: Tables, cid: uuid.UUID) -> Select[Any]:
    """One row of the collection, if it has any (a single index probe)."""
    return select(tables.embedding.c.id).where(scope(tables, cid, None)).limit(1)


def delete_ids(tables: Tables, cid: uuid.UUID, ids: Sequence[str]) -> Delete:
    """Delete the collection's documents whose id is in ``ids``."""
    table = tables.embedding
    return delete(table).where(scope(tables, cid, table.c.id == any_(_ids_param(ids))))


def delete_where(tables: Tables, cid: uuid.UUID, where: ColumnElement[bool] | None) -> Delete:
    """Delete the collection's documents that match ``where``."""
    return delete(tables.embedding).where(scope(tables, cid, where))


def count(
    tables: Tables,
    cid: uuid.UUID,
    where: ColumnElement[bool] | None = None,
    *,
    cap: int | None = None,
) -> Select[Any]:
    """How many of the collection's documents match ``where`` (counting no further
    than ``cap``, when given)."""
    if cap is None:
        return select(func.count()).select_from(tables.embedding).where(scope(tables, cid, where))
    matching = select(literal(1)).where(scope(tables, cid, where)).limit(inline(cap))
    return select(func.count()).select_from(matching.subquery("matching"))
