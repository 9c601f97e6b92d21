"""Migration from langchain-postgres ``PGVector`` tables into ours.

``migrate_from_langchain_postgres`` copies collections of ``langchain_pg_collection`` /
``langchain_pg_embedding`` (ids, contents, metadata and embeddings, unchanged) into a
store's tables:

- The source is read in one ``REPEATABLE READ READ ONLY`` transaction (a consistent
  snapshot of every collection), through a named server-side cursor in binary
  format, ``chunk_size`` rows per fetch; embeddings travel as ``vector_send`` bytes
  and are decoded into a float32 matrix per chunk, never parsed value by value.
- Each chunk is validated like any ``add_embeddings`` call and written as the store
  writes (a multi-row upsert below 200 rows; else COPY BINARY, or an upsert from a
  staging table when ids exist).
- Everything is written in ONE target transaction: a migration that fails (a bad
  row, a dimension that does not fit, a lost connection) leaves the target as it
  was, with no half-copied collection. Rows are upserted by id, so running the same
  migration again is idempotent; documents already in a target collection under
  other ids are kept.

The source tables are only read, never changed.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import psycopg
from sqlalchemy import URL, Connection, Engine, column, func, select, table
from sqlalchemy.ext.asyncio import AsyncEngine

from . import _catalog, _ingest, _progress
from ._bootstrap import ensure, lock_collection
from ._engine import Engines, begin
from ._errors import InvalidInputError, MigrationError, translate_errors
from ._schema import TableSpec, decode_vectors
from ._validate import check_int, prepare

if TYPE_CHECKING:
    from ._store import PGVecStore

__all__ = [
    "CollectionReport",
    "MigrationError",
    "MigrationReport",
    "migrate_from_langchain_postgres",
]

SOURCE_COLLECTION_TABLE = "langchain_pg_collection"
SOURCE_EMBEDDING_TABLE = "langchain_pg_embedding"
DEFAULT_CHUNK = 5000

_REQUIRED = {
    SOURCE_COLLECTION_TABLE: {"uuid", "name", "cmetadata"},
    SOURCE_EMBEDDING_TABLE: {"id", "collection_id", "embedding", "document", "cmetadata"},
}


@dataclass(frozen=True)
class CollectionReport:
    """What happened to one collection.

    Attributes:
        source: The collection's name in ``langchain_pg_collection``.
        target: The collection it was copied into.
        rows: Documents copied.
        dimension: The embeddings' dimension: the source column's declared one, else
            that of the collection's first row; None for an empty collection in a
            column of no declared dimension.
    """

    source: str
    target: str
    rows: int
    dimension: int | None


@dataclass(frozen=True)
class MigrationReport:
    """The outcome of :func:`migrate_from_langchain_postgres`.

    Attributes:
        collections: One entry per migrated collection, in name order.
        table: The target embedding table (``schema.table`` when a schema was given).
        seconds: Wall-clock duration.
    """

    collections: tuple[CollectionReport, ...]
    table: str
    seconds: float

    @property
    def rows(self) -> int:
        """Documents copied in total."""
        return sum(c.rows for c in self.collections)

    def __str__(self) -> str:
        lines = [
            f"migrated {self.rows} documents in {len(self.collections)} collection(s) into "
            f"{self.table!r} in {self.seconds:.1f}s"
        ]
        for c in self.collections:
            arrow = c.source if c.source == c.target else f"{c.source} -> {c.target}"
            dim = "" if c.dimension is None else f", {c.dimension} dimensions"
            lines.append(f"  {arrow}: {c.rows} documents{dim}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Source:
    uuid: uuid.UUID
    name: str
    metadata: dict[str, Any]
    rows: int
    dimension: int | None


def _source_tables(schema: str | None) -> tuple[Any, Any]:
    collection = table(
        SOURCE_COLLECTION_TABLE, column("uuid"), column("name"), column("cmetadata"), schema=schema
    )
    embedding = table(
        SOURCE_EMBEDDING_TABLE,
        column("id"),
        column("collection_id"),
        column("embedding"),
        column("document"),
        column("cmetadata"),
        schema=schema,
    )
    return collection, embedding


def _check_source(conn: Connection, schema: str | None) -> int | None:
    """Raise MigrationError unless both tables exist with the expected columns.

    Returns the embedding column's declared dimension (None when unconstrained).
    """
    where = f"schema {schema!r}" if schema else "the current schema"
    for name, required in _REQUIRED.items():
        columns = _catalog.column_types(conn, schema, name)
        if not columns:
            raise MigrationError(
                f"no table {name!r} in {where} of the source database: is this the database "
                "langchain-postgres' PGVector wrote to (pass source_schema= if it used another "
                "schema)?"
            )
        missing = required - set(columns)
        if missing:
            hint = (
                " It looks like the older langchain-community PGVector schema (custom_id, "
                "uuid), which is not supported."
                if "custom_id" in columns
                else ""
            )
            raise MigrationError(
                f"table {name!r} lacks the column(s) {', '.join(sorted(missing))} that "
                f"langchain-postgres' PGVector creates.{hint}"
            )
        if name == SOURCE_EMBEDDING_TABLE and columns["embedding"] != "vector":
            raise MigrationError(
                f"{name}.embedding is of type {columns['embedding']!r}, expected pgvector's "
                "'vector'"
            )
    return _catalog.declared_dimension(conn, schema, SOURCE_EMBEDDING_TABLE, "embedding")


def _sources(conn: Connection, schema: str | None, name: str | None) -> list[_Source]:
    declared = _check_source(conn, schema)
    collection, embedding = _source_tables(schema)
    query = select(collection.c.uuid, collection.c.name, collection.c.cmetadata).order_by(
        collection.c.name
    )
    if name is not None:
        query = query.where(collection.c.name == name)
    found = conn.execute(query).all()
    if name is not None and not found:
        names = conn.execute(select(collection.c.name).order_by(collection.c.name)).scalars()
        listed = ", ".join(repr(n) for n in names) or "none"
        raise MigrationError(
            f"no collection {name!r} in {SOURCE_COLLECTION_TABLE} (collections: {listed})"
        )
    counts: dict[uuid.UUID, int] = dict(
        conn.execute(
            select(embedding.c.collection_id, func.count())
            .where(embedding.c.collection_id.in_([row.uuid for row in found]))
            .group_by(embedding.c.collection_id)
        ).all()
    )
    sources = []
    for row in found:
        dimension = (
            declared
            or conn.execute(
                select(func.vector_dims(embedding.c.embedding))
                .where(embedding.c.collection_id == row.uuid)
                .limit(1)
            ).scalar()
        )
        metadata = row.cmetadata if isinstance(row.cmetadata, dict) else {}
        sources.append(_Source(row.uuid, row.name, metadata, counts.get(row.uuid, 0), dimension))
    return sources


def _check_dimensions(sources: Sequence[_Source], spec: TableSpec) -> None:
    dims = {s.dimension for s in sources if s.dimension is not None}
    if spec.dimension is not None:
        dims.add(spec.dimension)
    if len(dims) > 1:
        listed = ", ".join(f"{s.name!r}: {s.dimension}" for s in sources if s.dimension)
        raise InvalidInputError(
            f"the collections to migrate have embeddings of different dimensions ({listed})"
            + (f" and the target is configured for {spec.dimension}" if spec.dimension else "")
            + f", but the table {spec.qualified_embedding_table!r} holds one dimension. "
            "Migrate them one at a time into a table per dimension (e.g. "
            f"embedding_table='{spec.embedding_table}_<dimension>')."
        )


def _rows_query(schema: str | None, collection_id: uuid.UUID, dialect: Any) -> Any:
    _, embedding = _source_tables(schema)
    statement = select(
        embedding.c.id,
        embedding.c.document,
        embedding.c.cmetadata,
        func.vector_send(embedding.c.embedding),
    ).where(embedding.c.collection_id == collection_id)
    return statement.compile(dialect=dialect)


def _batch(rows: Sequence[tuple[Any, ...]], source: _Source) -> Any:
    """Validate one fetched chunk and turn it into a Batch (vectors decoded in one go)."""
    blobs = [row[3] for row in rows]
    width = len(blobs[0])
    for row, blob in zip(rows, blobs, strict=True):
        if len(blob) != width:
            raise InvalidInputError(
                f"collection {source.name!r} mixes embedding dimensions: document {row[0]!r} "
                f"has {(len(blob) - 4) // 4}, others {(width - 4) // 4}; a table holds one "
                "dimension"
            )
    metadatas = []
    for row in rows:
        meta = row[2]
        if meta is not None and not isinstance(meta, dict):
            raise InvalidInputError(
                f"document {row[0]!r} of collection {source.name!r} has metadata that is not "
                f"a JSON object ({type(meta).__name__}); fix it in the source first"
            )
        metadatas.append(meta)
    return prepare(
        [row[1] or "" for row in rows],
        decode_vectors(blobs, "vector"),
        metadatas,
        [row[0] for row in rows],
    )


def migrate_from_langchain_postgres(
    source: str | URL | Engine,
    target: PGVecStore | str | URL | Engine | AsyncEngine | None = None,
    collection: str | None = None,
    *,
    show_progress: bool | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    source_schema: str | None = None,
) -> MigrationReport:
    """Copy collections of langchain-postgres' ``PGVector`` into this package's tables.

    Ids, contents, metadata and embeddings are kept as they are; the embeddings are
    copied, not recomputed, so no embedding model is called. The source tables
    (``langchain_pg_collection``, ``langchain_pg_embedding``) are only read.

    Where the documents go:

    - ``target`` is a :class:`PGVecStore` and ``collection`` is given: into the
      store's own collection (``target.collection_name``), so a collection can be
      renamed on the way.
    - otherwise each collection keeps its name, in the target's tables: the store's
      tables (schema, table names, vector type) when ``target`` is a store, the
      default tables when it is a URL, an engine or None (``$PGVEC_URL``, else the
      embedded server).

    The whole migration is one transaction on the target: it happens completely or
    not at all. Documents are upserted by id, so running it again is idempotent.

    Args:
        source: The database langchain-postgres wrote to (URL or psycopg ``Engine``).
        target: Where to write: a store, a URL, an ``Engine``/``AsyncEngine``, or None.
        collection: The collection to migrate; None migrates every collection.
        show_progress: A progress bar on stderr; None shows one for 1,000+ documents
            when stderr is a terminal.
        chunk_size: Rows fetched, validated and written at a time.
        source_schema: The schema of the source tables (None: the search path's).

    Returns:
        A report with the number of documents copied per collection.

    Raises:
        MigrationError: The source tables or the collection do not exist, or do not
            look like langchain-postgres' tables (columns, an embedding column that is
            not ``vector``).
        InvalidInputError: ``source`` is None or an ``AsyncEngine``; ``chunk_size`` is
            not a positive integer; a row cannot be stored (e.g. metadata that is not
            an object); or the collections' embeddings have different dimensions (from
            each other, or from the target store's ``embedding_length``).
        DimensionMismatchError: The embeddings' dimension differs from the existing
            target table's.
        SchemaError: The target table stores another vector type than the store's.
        ExtensionError: pgvector is missing on the target and cannot be created there.
        PrivilegeError: The target's role may not create or write the tables.
        ConnectError: No connection to the target could be had.
        ConnectionLostError: A database could not be reached, or went away while the
            rows were copied.
        DatabaseError: The target (or the source, while its rows are read) refused a
            statement for another reason.

    Example:
        .. code-block:: python

            from langchain_pgvec import PGVecStore, migrate_from_langchain_postgres

            store = PGVecStore(embeddings, connection=url, collection_name="docs")
            report = migrate_from_langchain_postgres(url, store, "docs")
            print(report)
    """
    check_int(chunk_size, "chunk_size", 1)
    if source is None:
        raise InvalidInputError("source must be the URL or Engine of langchain-postgres' database")
    if isinstance(source, AsyncEngine):
        raise InvalidInputError("source must be a URL or a sync Engine, not an AsyncEngine")
    from ._store import PGVecStore

    started = time.perf_counter()
    store = target if isinstance(target, PGVecStore) else None
    source_engines = Engines(source)
    target_engines = None if store is not None else Engines(cast(Any, target))
    spec: TableSpec = store.table_spec if store is not None else TableSpec()
    target_engine = store.engine if store is not None else cast(Engines, target_engines).sync
    try:
        with translate_errors(), source_engines.sync.connect() as read:
            read = read.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with read.begin():
                sources = _sources(read, source_schema, collection)
                _check_dimensions(sources, spec)
                reports = _copy_all(
                    read,
                    target_engine,
                    spec,
                    sources,
                    store,
                    collection,
                    chunk_size=chunk_size,
                    show_progress=show_progress,
                    schema=source_schema,
                )
    finally:
        source_engines.dispose()
        if target_engines is not None:
            target_engines.dispose()
    if store is not None:
        store.refresh()
    return MigrationReport(
        tuple(reports), spec.qualified_embedding_table, time.perf_counter() - started
    )


def _copy_all(
    read: Connection,
    target_engine: Engine,
    spec: TableSpec,
    sources: Sequence[_Source],
    store: PGVecStore | None,
    collection: str | None,
    *,
    chunk_size: int,
    show_progress: bool | None,
    schema: str | None,
) -> list[CollectionReport]:
    driver = cast(psycopg.Connection[Any], read.connection.driver_connection)
    reports: list[CollectionReport] = []
    total = sum(s.rows for s in sources)
    with (
        _progress.rows_bar(total, show_progress, "pgvec migrate") as bar,
        begin(target_engine) as write,
    ):
        for source in sources:
            name = store.collection_name if store is not None and collection else source.name
            state = ensure(
                write,
                spec,
                name,
                dimension=source.dimension,
                create=True,
                collection_metadata=source.metadata,
            )
            if state is None or state.collection_id is None:
                # an empty collection, and no table yet to create it in (no dimension)
                reports.append(CollectionReport(source.name, name, 0, None))
                continue
            spec = dataclasses.replace(spec, dimension=state.tables.spec.dimension)
            # hold the collection (FOR KEY SHARE) until commit, as every write does: a
            # concurrent delete_collection waits instead of orphaning the rows
            cid = lock_collection(write, state.tables, name, source.metadata)
            compiled = _rows_query(schema, source.uuid, read.dialect)
            copied = 0
            with driver.cursor(name=f"pgvec_migrate_{uuid.uuid4().hex}", binary=True) as cursor:
                cursor.execute(str(compiled), compiled.params)
                while rows := cursor.fetchmany(chunk_size):
                    batch = _batch(rows, source)
                    _ingest.check_dimension(state.tables, batch)
                    _ingest.write(write, state.tables, cid, batch)
                    copied += len(batch)
                    bar.update(len(batch))
            reports.append(CollectionReport(source.name, name, copied, source.dimension))
    return reports
