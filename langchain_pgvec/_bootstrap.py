"""Bringing a database to the store's schema: extension, tables, collection row; what
the store then knows of it (its State), and when to read that again.

``ensure`` is written once against a sync ``Connection``; the async store runs the
same function through ``AsyncConnection.run_sync`` (SQLAlchemy's greenlet bridge, no
thread), so the two can never disagree about the schema.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import URL, Connection, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, CreateSchema

from . import _partitions, _sql, _terms
from ._catalog import (
    IndexInfo,
    approx_rows,
    extension_version,
    has_column,
    is_partitioned,
    may_analyze,
    owns,
    read_indexes,
    read_settings,
    schema_exists,
    table_grants,
    term_triggers,
    vector_column,
)
from ._errors import DimensionMismatchError, ExtensionError, SchemaError
from ._schema import (
    TSV_COLUMN,
    AddColumn,
    LockTable,
    MainStorage,
    Tables,
    TableSpec,
    mapped_tables,
)


@dataclass(frozen=True)
class State:
    """What a store learns from the database once and then caches.

    ``approx_rows`` (the planner's estimate, 0 when unknown) and ``indexes`` are a
    snapshot taken at ``read_at`` (``time.monotonic()``) with the rest; the store reads
    them again a minute later, and at once after creating or dropping an index.
    ``can_analyze``: the role may ``ANALYZE`` the embedding table. ``full_text``: the
    table has the full-text column the store asked for. ``epoch``: the
    table's :func:`epoch` when the state was read; a store of this process that
    changes an index or the statistics moves it on, and every store's state is read
    again.
    """

    tables: Tables
    collection_id: uuid.UUID | None
    extension_version: str
    approx_rows: int = 0
    indexes: tuple[IndexInfo, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()
    can_analyze: bool = False
    full_text: bool = False
    read_at: float = dataclasses.field(default_factory=time.monotonic)
    epoch: int = 0


TableKey = tuple[str, str | None, str]
_EPOCHS: dict[TableKey, int] = {}
_EPOCHS_LOCK = threading.Lock()


def table_key(url: URL, spec: TableSpec) -> TableKey:
    """What identifies one embedding table to the stores of this process."""
    return (url.render_as_string(hide_password=True), spec.schema, spec.embedding_table)


def epoch(key: TableKey) -> int:
    """How many times stores of this process changed the table's indexes or statistics."""
    return _EPOCHS.get(key, 0)


def changed(key: TableKey) -> None:
    """A store changed the table's indexes or statistics: the others read them again."""
    with _EPOCHS_LOCK:
        _EPOCHS[key] = _EPOCHS.get(key, 0) + 1


def analyze(
    conn: Connection,
    tables: Tables,
    scope: Literal["table", "planner"],
    cid: uuid.UUID | None = None,
) -> None:
    """Bring the embedding table's statistics up to date (see :func:`_sql.analyze`).

    Of a partitioned table, for the ``"planner"`` scope with ``cid``, only collection
    ``cid``'s partition: its searches read that partition, planned by its statistics.
    """
    partition = None
    if tables.spec.partitioned and cid is not None and scope == "planner":
        partition = _partitions.of(conn, tables, cid)
    conn.execute(_sql.analyze(tables, scope, partition))


def tidy_text(conn: Connection, tables: Tables, cid: uuid.UUID, *, pending: bool) -> None:
    """Fold one collection's term statistics (:func:`_terms.compact`).

    With ``pending`` (the table's owner, after a large write), the full-text GIN
    index's pending list is merged too; it otherwise waits for autovacuum while every
    search scans it.
    """
    conn.execute(_terms.compact(tables, cid))
    if pending:
        if not tables.spec.partitioned:
            conn.execute(_terms.clean_pending(tables))
        elif (partition := _partitions.of(conn, tables, cid)) is not None:
            conn.execute(_terms.clean_pending(tables, partition.name))


def dimension_error(
    spec: TableSpec, table_dim: int, given: int, what: str
) -> DimensionMismatchError:
    """The error for a vector length that differs from the table's dimension."""
    return DimensionMismatchError(
        f"table {spec.qualified_embedding_table!r} stores {table_dim}-dimensional vectors, "
        f"but {what} has {given}. Use the embedding model the table was built with, or "
        f"keep these vectors in another table: PGVecStore(..., embedding_table="
        f"'{spec.embedding_table}_{given}')."
    )


def lock_collection(
    conn: Connection,
    tables: Tables,
    name: str,
    metadata: dict[str, Any] | None = None,
    known: uuid.UUID | None = None,
) -> uuid.UUID:
    """The id of collection ``name`` for a write in this transaction (created if missing).

    Looked up inside the write's own transaction rather than trusted from a cache, so
    a collection deleted (or recreated) by another store meanwhile is handled. Of a
    partitioned table, a collection other than ``known`` (the one the store's state
    has, whose partition :func:`ensure` saw to) is checked for its partition.
    """
    cid: uuid.UUID | None = conn.execute(_sql.lock_collection(tables, name)).scalar()
    if cid is None:
        create_collection(conn, tables, name, metadata)
        cid = conn.execute(_sql.lock_collection(tables, name)).scalar_one()
    elif tables.spec.partitioned and cid != known:
        ensure_partition(conn, tables, name, cid)
    return cid


def ensure_partition(conn: Connection, tables: Tables, name: str, cid: uuid.UUID) -> None:
    """Give collection ``name`` (id ``cid``) of a partitioned table its partition when it
    has none: it was created for another embedding table sharing the collection table."""
    if _partitions.of(conn, tables, cid) is not None:
        return
    _partitions.check_owner(conn, tables.spec, f"writing to collection {name!r}")
    conn.execute(LockTable(tables.collection))
    if _partitions.of(conn, tables, cid) is None:
        _partitions.create(conn, tables, cid)


def create_collection(
    conn: Connection, tables: Tables, name: str, metadata: dict[str, Any] | None
) -> uuid.UUID:
    """Create collection ``name`` unless it exists (a concurrent creator wins), with its
    partition when the table is partitioned; its id."""
    if tables.spec.partitioned:
        # one creator at a time, each taking the collection table's lock before the
        # embedding table's (as deleting does): attaching a partition adds its foreign
        # key, which locks the collection table against the inserts of other creators
        _partitions.check_owner(conn, tables.spec, f"creating collection {name!r}")
        conn.execute(LockTable(tables.collection))
    created: uuid.UUID | None = conn.execute(
        _sql.create_collection(tables, name, metadata)
    ).scalar()
    if created is None:  # it exists: made meanwhile by another store
        existing: uuid.UUID = conn.execute(_sql.collection_id(tables, name)).scalar_one()
        if tables.spec.partitioned:
            ensure_partition(conn, tables, name, existing)
        return existing
    if tables.spec.partitioned:
        _partitions.create(conn, tables, created)
    return created


def drop_collection(conn: Connection, tables: Tables, name: str) -> int:
    """Delete collection ``name`` and its documents; how many documents went (of a
    partitioned table 0: they go with their partition, uncounted).

    The collection row is locked first (``FOR UPDATE``), as writers lock it (``FOR KEY
    SHARE``) before their rows: a write in flight commits before the delete begins, and
    a write that comes after waits, then creates the collection anew.
    """
    if tables.spec.partitioned:
        _partitions.check_owner(conn, tables.spec, f"deleting collection {name!r}")
        # the collection table's lock first, as creators take theirs (no deadlock)
        conn.execute(LockTable(tables.collection, "ROW EXCLUSIVE"))
    cid = conn.execute(_sql.collection_id(tables, name).with_for_update()).scalar()
    if cid is None:
        return 0
    removed = 0
    if tables.spec.partitioned:
        _partitions.drop(conn, tables, cid)
    else:
        removed = conn.execute(_sql.delete_where(tables, cid, None)).rowcount
    conn.execute(_sql.delete_collection(tables, name))
    if tables.spec.text_search_config is not None and term_triggers(conn, tables.spec):
        conn.execute(_terms.forget(tables, cid))  # the deltas the delete just appended too
    return int(removed)


def _ensure_full_text(conn: Connection, tables: Tables) -> bool:
    """Give an existing table what full-text search needs, when this role owns it:
    the generated tsvector column and its GIN index, then the term statistics BM25
    ranks by (their table, the triggers that keep them, and the statistics of the rows
    already there). Whether the table has all of it now.

    ``ADD COLUMN ... GENERATED ALWAYS AS (...) STORED`` computes the column for every
    row already there; nothing is lost. The statistics are created under a ``SHARE ROW
    EXCLUSIVE`` lock (readers go on, writers wait for the commit), so no write falls
    between the backfill and the triggers. A role that does not own the table never
    tries (a store on an application role issues no DDL): full-text search then says
    who can run it.
    """
    spec = tables.spec
    column = has_column(conn, spec, TSV_COLUMN)
    if column and term_triggers(conn, spec) == len(_terms.EVENTS):
        return True
    if not owns(conn, spec):
        return False
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(spec.qualified_embedding_table))))
    table = tables.embedding
    if not column:
        conn.execute(AddColumn(table, table.c[TSV_COLUMN]))
        conn.execute(MainStorage(table, TSV_COLUMN))
        for index in table.indexes:
            if TSV_COLUMN in index.columns:
                conn.execute(CreateIndex(index, if_not_exists=True))
    if term_triggers(conn, spec) != len(_terms.EVENTS):
        _create_terms(conn, tables)
    return True


def _create_terms(conn: Connection, tables: Tables) -> None:
    """The statistics table, its function and triggers, and the backfill (from nothing:
    a partial earlier attempt is dropped first)."""
    terms = _terms.terms_table(tables.spec)
    conn.execute(LockTable(tables.embedding))
    conn.execute(MainStorage(tables.embedding, TSV_COLUMN))  # rows written from now on
    for event in _terms.EVENTS:
        conn.execute(_terms.DropTrigger(tables.embedding, event))
    terms.drop(conn, checkfirst=True)
    terms.create(conn)
    conn.execute(_terms.CreateFunction(tables.spec.schema))
    for event in _terms.EVENTS:
        conn.execute(_terms.CreateTrigger(tables.embedding, terms, event))
    conn.execute(_terms.backfill(tables))
    # the roles that use the table already: the triggers write the statistics as the
    # writing role, and keyword searches read them, so each gets there what it has on
    # the embedding table
    for role, privileges in table_grants(conn, tables.spec).items():
        conn.execute(_sql.Grant(privileges, [terms], role))


def partition_mismatch(spec: TableSpec, partitioned: bool) -> str:
    """The message for a store whose ``partitioned`` differs from its existing table's."""
    table = spec.qualified_embedding_table
    if partitioned:
        return (
            f"table {table!r} is partitioned by collection, but the store was made with "
            "partitioned=False; pass partitioned=True (or leave it unset to follow the "
            "table), or use another embedding_table"
        )
    return (
        f"table {table!r} is not partitioned, but the store was made with partitioned=True; "
        "a table is partitioned when it is created: leave partitioned unset to use this one, "
        "or pass another embedding_table for a partitioned one (`pgvec migrate` copies "
        "collections between tables)"
    )


def _rows(conn: Connection, tables: Tables, cid: uuid.UUID | None) -> int:
    """The planner's row estimate of what the collection's searches read: the table,
    or of a partitioned table the collection's partition."""
    if tables.spec.partitioned and cid is not None:
        partition = _partitions.of(conn, tables, cid)
        return 0 if partition is None else approx_rows(conn, tables.spec, partition.name)
    return approx_rows(conn, tables.spec)


def version_of(extension_version: str) -> tuple[int, ...]:
    """``"0.8.5"`` as ``(0, 8, 5)`` (a part that is not a number ends it)."""
    parts: list[int] = []
    for part in extension_version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


#: what each feature needs of pgvector
NEEDS = {
    "halfvec": (0, 7, 0),
    "iterative scans": (0, 8, 0),
    "HNSW": (0, 5, 0),
    "quantized indexes": (0, 7, 0),
}


def require(feature: str, extension_version: str, fix: str) -> None:
    """Raise ExtensionError unless this pgvector has ``feature`` (see :data:`NEEDS`)."""
    wanted = NEEDS[feature]
    if version_of(extension_version) < wanted:
        needed = ".".join(map(str, wanted))
        raise ExtensionError(
            f"{feature} need{'' if feature.endswith('s') else 's'} pgvector {needed} or newer, "
            f"and this database has pgvector {extension_version}. Install a newer pgvector "
            f"on the server and run ALTER EXTENSION vector UPDATE; {fix}"
        )


def _missing_extension(conn: Connection, cause: str) -> ExtensionError:
    major = (conn.dialect.server_version_info or (17,))[0]
    return ExtensionError(
        f"the pgvector extension is not installed in this database ({cause}). Install "
        f"pgvector on the server (e.g. the pgvector/pgvector Docker image, or `apt install "
        f"postgresql-{major}-pgvector` for this PostgreSQL {major}), then run "
        "`CREATE EXTENSION vector;` in this database as a superuser: pgvector is not a "
        "trusted extension, so only a superuser can create it"
    )


def _ensure_extension(conn: Connection, create: bool, allowed: bool = True) -> str | None:
    """pgvector's version in this database; with ``create``, created when missing
    (unless not ``allowed``: then a missing extension is an ExtensionError)."""
    version = extension_version(conn)
    if version is not None or not create:
        return version
    if not allowed:
        raise _missing_extension(conn, "the store was made with create_extension=False")
    # concurrent first calls on a fresh database: one creates, the others wait and see it
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("langchain_pgvec.extension"))))
    version = extension_version(conn)
    if version is not None:
        return version
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as exc:
        raise _missing_extension(conn, f"creating it failed: {exc.orig}") from exc
    return extension_version(conn)


def ensure(
    conn: Connection,
    spec: TableSpec,
    collection: str,
    *,
    dimension: int | None,
    create: bool,
    collection_metadata: dict[str, Any] | None = None,
    create_extension: bool = True,
) -> State | None:
    """Check (and with ``create``, make) the extension, tables and collection.

    Args:
        conn: A connection inside a transaction.
        spec: The configured tables; ``spec.dimension`` may be None (not yet known).
        collection: The collection name.
        dimension: The length of the vectors about to be written or searched with.
        create: Create what is missing; otherwise return None when tables are missing.
        collection_metadata: Metadata of a collection created here.
        create_extension: Whether ``create`` may run ``CREATE EXTENSION vector``.

    Returns:
        The state, or None when the tables do not exist and ``create`` is false (or no
        dimension is known yet to create them with).

    Raises:
        DimensionMismatchError: The table's dimension differs from the configured or
            given one.
        SchemaError: The table stores another vector type than configured.
    """
    version = _ensure_extension(conn, create, create_extension)
    if version is None:
        return None
    if spec.vector_type == "halfvec":
        require("halfvec", version, "or store vector_type='vector'")
    row = vector_column(conn, spec)
    full_text = spec.text_search_config is not None
    if row is None:
        dim = spec.dimension or dimension
        if not create or dim is None:
            return None
        if spec.dimension is not None and dimension is not None and dimension != spec.dimension:
            raise DimensionMismatchError(
                f"the store was configured with embedding_length={spec.dimension}, but the "
                f"vectors given have {dimension} dimensions; pass the right embedding_length"
            )
        tables = mapped_tables(
            dataclasses.replace(spec, dimension=dim, partitioned=bool(spec.partitioned))
        )
        conn.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(spec.qualified_embedding_table)))
        )
        if spec.schema and not schema_exists(conn, spec.schema):
            conn.execute(CreateSchema(spec.schema, if_not_exists=True))
        tables.metadata.create_all(conn, checkfirst=True)
        if full_text:
            _ensure_full_text(conn, tables)
    else:
        typname, typmod = row
        if typname != spec.vector_type:
            raise SchemaError(
                f"table {spec.qualified_embedding_table!r} stores {typname} embeddings, but the "
                f"store was configured with vector_type={spec.vector_type!r}; pass "
                f"vector_type={typname!r} or use another embedding_table"
            )
        table_dim = typmod if typmod > 0 else None
        if table_dim is not None:
            if spec.dimension is not None and spec.dimension != table_dim:
                raise dimension_error(
                    spec, table_dim, spec.dimension, "embedding_length given to the store"
                )
            if dimension is not None and dimension != table_dim:
                raise dimension_error(spec, table_dim, dimension, "the embedding")
        partitioned = is_partitioned(conn, spec)
        if spec.partitioned is not None and spec.partitioned != partitioned:
            raise SchemaError(partition_mismatch(spec, partitioned))
        tables = mapped_tables(
            dataclasses.replace(spec, dimension=table_dim, partitioned=partitioned)
        )
        if spec.text_search_config is not None:
            full_text = _ensure_full_text(conn, tables)
    cid: uuid.UUID | None = conn.execute(_sql.collection_id(tables, collection)).scalar()
    if cid is None and create:
        cid = create_collection(conn, tables, collection, collection_metadata)
    elif cid is not None and create and tables.spec.partitioned:
        ensure_partition(conn, tables, collection, cid)
    return State(
        tables=tables,
        collection_id=cid,
        extension_version=version,
        approx_rows=_rows(conn, tables, cid),
        indexes=tuple(read_indexes(conn, spec)),
        settings=read_settings(conn),
        can_analyze=may_analyze(conn, spec),
        full_text=full_text,
    )
