"""Every read of PostgreSQL's catalogs: indexes, row estimates, settings, privileges.

The statements are text over ``pg_catalog`` (and ``pg_stat_progress_create_index``),
except :func:`collections`, which counts each collection's documents; the functions
run them on a sync ``Connection``, which the async store drives through
``AsyncConnection.run_sync``. :class:`IndexInfo` is what ``list_indexes()`` returns.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, text

from . import _quantize, _tuning
from ._errors import SchemaError
from ._quantize import Quantization
from ._schema import Tables, TableSpec

_PARTIAL_COLLECTION = re.compile(
    r"^\(*collection_id = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'"
    r"::uuid\)*$"
)

_TABLE_WHERE = "t.relname = :table AND n.nspname = coalesce(:schema, current_schema())"

LIST_INDEXES = text(
    "SELECT i.relname AS name, am.amname AS method, "
    "ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) "
    "      FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS columns, "
    "(SELECT o.opcname FROM pg_opclass o WHERE o.oid = x.indclass[0]) AS opclass, "
    # a partitioned index is empty itself: its partitions' indexes hold the data
    "CASE WHEN i.relkind = 'I' THEN (SELECT coalesce(sum(pg_relation_size(p.relid)), 0) "
    "FROM pg_partition_tree(i.oid) AS p WHERE p.isleaf) "
    "ELSE pg_relation_size(i.oid) END AS size_bytes, "
    "i.relkind = 'I' AS partitioned, "
    "pg_get_indexdef(x.indexrelid) AS definition, "
    "pg_get_expr(x.indpred, x.indrelid) AS predicate, "
    "x.indexprs IS NOT NULL AS expression, "
    "x.indisunique AS is_unique, x.indisprimary AS is_primary, x.indisvalid AS valid, "
    "coalesce(i.reloptions, '{}') AS options "
    "FROM pg_index x "
    "JOIN pg_class i ON i.oid = x.indexrelid "
    "JOIN pg_class t ON t.oid = x.indrelid "
    "JOIN pg_namespace n ON n.oid = t.relnamespace "
    "JOIN pg_am am ON am.oid = i.relam "
    "WHERE " + _TABLE_WHERE + " ORDER BY i.relname"
)
"""Every index on the table ``:table`` in ``:schema`` (None: the current schema)."""

TABLE_ROWS = text(
    "SELECT t.reltuples FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace "
    "WHERE " + _TABLE_WHERE
)
"""The planner's row estimate of the table (-1 before its first VACUUM or ANALYZE)."""

RELATION = text(
    "SELECT c.relkind AS kind, t.relname AS table_name FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_index x ON x.indexrelid = c.oid "
    "LEFT JOIN pg_class t ON t.oid = x.indrelid "
    "WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema())"
)
"""The relation called ``:name`` in ``:schema`` and, for an index, its table."""

PROGRESS = text(
    "SELECT phase, blocks_total, blocks_done, tuples_total, tuples_done, "
    "partitions_total, partitions_done "
    "FROM pg_stat_progress_create_index WHERE pid = :pid"
)
"""The progress of the index build running in backend ``:pid``."""


@dataclass(frozen=True)
class IndexInfo:
    """One index on the embedding table, as ``PGVecStore.list_indexes()`` reports it.

    Attributes:
        name: The index name.
        method: The access method: ``hnsw``, ``ivfflat``, ``btree``, ``gin``, ...
        columns: The key columns; an expression key appears as its SQL text.
        opclass: The operator class of the first key column, e.g. ``vector_cosine_ops``.
        size_bytes: The size on disk.
        definition: The ``CREATE INDEX`` statement, as PostgreSQL prints it.
        partial: Whether the index has a ``WHERE`` predicate.
        predicate: That predicate's SQL, or None.
        expression: Whether a key is an expression rather than a column.
        unique: Whether the index enforces uniqueness.
        primary: Whether it is the primary key.
        valid: False for the leftover of a failed ``CREATE INDEX CONCURRENTLY``, which
            queries never use; drop it and build it again.
        options: The storage parameters, e.g. ``("m=16", "ef_construction=64")``.
        partitioned: Whether it is the index of a partitioned table: one index per
            partition (collection), ``size_bytes`` their sum.
        quantization: ``"halfvec"`` for an index over ``embedding::halfvec(n)``,
            ``"binary"`` for one over ``binary_quantize(embedding)::bit(n)`` (see
            ``HNSW(quantization=...)``); None for any other index.
    """

    name: str
    method: str
    columns: tuple[str, ...]
    opclass: str | None
    size_bytes: int
    definition: str
    partial: bool
    predicate: str | None = None
    expression: bool = False
    unique: bool = False
    primary: bool = False
    valid: bool = True
    options: tuple[str, ...] = ()
    partitioned: bool = False
    quantization: Quantization | None = None

    @classmethod
    def from_row(cls, row: Any) -> IndexInfo:
        """Build from a row of :data:`LIST_INDEXES`.

        Args:
            row: A row of :data:`LIST_INDEXES`.

        Returns:
            The index's description.
        """
        columns = tuple(row.columns)
        quantized = _quantize.parse(columns[0]) if row.expression and len(columns) == 1 else None
        return cls(
            name=row.name,
            method=row.method,
            columns=columns,
            opclass=row.opclass,
            size_bytes=int(row.size_bytes),
            definition=row.definition,
            partial=row.predicate is not None,
            predicate=row.predicate,
            expression=bool(row.expression),
            unique=bool(row.is_unique),
            primary=bool(row.is_primary),
            valid=bool(row.valid),
            options=tuple(row.options),
            partitioned=bool(row.partitioned),
            quantization=None if quantized is None else quantized[0],
        )

    @property
    def is_vector(self) -> bool:
        """Whether this is a pgvector index (HNSW or IVFFlat)."""
        return self.method in ("hnsw", "ivfflat")

    @property
    def collection_id(self) -> uuid.UUID | None:
        """The collection of a per-collection partial index, else None."""
        match = _PARTIAL_COLLECTION.match(self.predicate or "")
        return uuid.UUID(match.group(1)) if match else None

    @property
    def parameters(self) -> dict[str, str]:
        """The storage parameters as a dict, e.g. ``{"m": "16", "ef_construction": "64"}``."""
        return dict(option.split("=", 1) for option in self.options if "=" in option)

    @property
    def per_collection(self) -> bool:
        """Whether a collection has the index to itself.

        A partial index over the collection, or the index of its own partition.
        """
        return self.partial or self.partitioned

    def serves(self, opclass: str, collection_id: uuid.UUID | None) -> bool:
        """Whether searches of ``collection_id`` with this opclass's operator can use it.

        Args:
            opclass: The operator class the search's distance needs, e.g.
                ``vector_cosine_ops``.
            collection_id: The collection searched (a partial index serves only its
                own).

        Returns:
            True for a valid vector index of that operator class on the ``embedding``
            column (not a quantized expression) over the whole table or over that
            collection.
        """
        return (
            self.is_vector
            and not self.expression
            and self.valid
            and self.opclass == opclass
            and (not self.partial or self.collection_id == collection_id)
        )

    @property
    def quantized_dimension(self) -> int | None:
        """The dimension of a quantized index's expression (``bit(n)``), else None."""
        if self.quantization is None or not self.columns:
            return None
        parsed = _quantize.parse(self.columns[0])
        return None if parsed is None else parsed[1]

    def serves_quantized(
        self,
        kind: Quantization,
        opclass: str,
        collection_id: uuid.UUID | None,
        dimension: int | None = None,
    ) -> bool:
        """Whether searches of ``collection_id`` can find candidates in this quantized index.

        Args:
            kind: ``"halfvec"`` or ``"binary"``.
            opclass: The operator class the quantized search needs (``halfvec_cosine_ops``,
                ``bit_hamming_ops``, ...).
            collection_id: The collection searched (a partial index serves only its
                own).
            dimension: The table's dimension, which the index's expression must have
                (None: not checked).

        Returns:
            True for a valid HNSW index of that quantization and operator class over
            the whole table or over that collection.
        """
        return (
            self.method == "hnsw"
            and self.quantization == kind
            and self.valid
            and self.opclass == opclass
            and (dimension is None or self.quantized_dimension == dimension)
            and (not self.partial or self.collection_id == collection_id)
        )


def relation_problem(name: str, table: str, row: Any) -> SchemaError | None:
    """The error for a name taken by something other than an index on ``table``."""
    index = row is not None and row.kind in ("i", "I")
    if row is None or (index and row.table_name == table):
        return None
    what = f"an index on table {row.table_name!r}" if index else "another relation"
    return SchemaError(
        f"the name {name!r} belongs to {what}, not to an index on table {table!r}; "
        "pass another name=..."
    )


_EXTENSION = text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
_VECTOR_COLUMN = text(
    "SELECT t.typname, a.atttypmod FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema()) "
    "AND a.attname = 'embedding' AND NOT a.attisdropped"
)


def extension_version(conn: Connection) -> str | None:
    """The version of pgvector in this database; None when the extension is not installed."""
    version = conn.execute(_EXTENSION).scalar()
    return None if version is None else str(version)


def vector_column(conn: Connection, spec: TableSpec) -> tuple[str, int] | None:
    """The embedding column's type name and typmod (its dimension, or -1).

    None when the table (or the column) does not exist.
    """
    row = conn.execute(_VECTOR_COLUMN, _table_params(spec)).first()
    return None if row is None else (str(row[0]), int(row[1]))


_SETTINGS = text(
    "SELECT name, current_setting(name, true) FROM unnest(CAST(:names AS text[])) AS name"
)


def read_settings(conn: Connection) -> tuple[tuple[str, str], ...]:
    """The server's values of the search settings the store may change (None: default)."""
    rows = conn.execute(_SETTINGS, {"names": list(_tuning.PGVECTOR_DEFAULTS)})
    return tuple((name, value) for name, value in rows if value is not None)


def _table_params(spec: TableSpec) -> dict[str, Any]:
    return {"table": spec.embedding_table, "schema": spec.schema}


def read_indexes(conn: Connection, spec: TableSpec) -> list[IndexInfo]:
    """Every index on the embedding table (none when the table does not exist)."""
    return [IndexInfo.from_row(row) for row in conn.execute(LIST_INDEXES, _table_params(spec))]


def approx_rows(conn: Connection, spec: TableSpec, table: str | None = None) -> int:
    """The planner's row estimate of the embedding table; 0 before its first ANALYZE.

    Of ``table`` instead, when given: a partition beside it.
    """
    params = _table_params(spec) if table is None else {"table": table, "schema": spec.schema}
    rows = conn.execute(TABLE_ROWS, params).scalar()
    return max(0, int(rows or 0))


_PARTITIONED = text(
    "SELECT t.relkind = 'p' FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace "
    "WHERE " + _TABLE_WHERE
)
_PARTITION = text(
    "SELECT c.relname FROM pg_inherits i "
    "JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_class t ON t.oid = i.inhparent "
    "JOIN pg_namespace n ON n.oid = t.relnamespace "
    "WHERE " + _TABLE_WHERE + " AND pg_get_expr(c.relpartbound, c.oid) = :bound"
)


_PARTITION_INDEXES = text(
    "SELECT leaf.relname, parent.relname FROM pg_index x "
    "JOIN pg_class t ON t.oid = x.indrelid "
    "JOIN pg_namespace n ON n.oid = t.relnamespace "
    "JOIN pg_inherits i ON i.inhrelid = x.indexrelid "
    "JOIN pg_class leaf ON leaf.oid = x.indexrelid "
    "JOIN pg_class parent ON parent.oid = i.inhparent "
    "WHERE t.relname = :partition AND n.nspname = coalesce(:schema, current_schema())"
)
_INDEX_LEAVES = text(
    "SELECT leaf.relname, pg_get_expr(t.relpartbound, t.oid) FROM pg_class parent "
    "JOIN pg_namespace n ON n.oid = parent.relnamespace "
    "JOIN pg_inherits i ON i.inhparent = parent.oid "
    "JOIN pg_class leaf ON leaf.oid = i.inhrelid "
    "JOIN pg_index x ON x.indexrelid = leaf.oid "
    "JOIN pg_class t ON t.oid = x.indrelid "
    "WHERE parent.relname = :index AND n.nspname = coalesce(:schema, current_schema())"
)


def partition_indexes(conn: Connection, spec: TableSpec, partition: str) -> list[tuple[str, str]]:
    """Each index of the partition ``partition``, with the index it is a partition of.

    Pairs (the partition's index, the embedding table's index).
    """
    params = {"partition": partition, "schema": spec.schema}
    return [(leaf, parent) for leaf, parent in conn.execute(_PARTITION_INDEXES, params)]


def index_leaves(conn: Connection, spec: TableSpec, index: str) -> list[tuple[str, str]]:
    """Each partition of the partitioned index ``index``, with its table's bound.

    Pairs (the partition's index, the bound of the partition it indexes).
    """
    params = {"index": index, "schema": spec.schema}
    return [(leaf, bound) for leaf, bound in conn.execute(_INDEX_LEAVES, params)]


def is_partitioned(conn: Connection, spec: TableSpec) -> bool:
    """Whether the embedding table is a partitioned table."""
    return bool(conn.execute(_PARTITIONED, _table_params(spec)).scalar())


def partition_of(conn: Connection, spec: TableSpec, bound: str) -> str | None:
    """The name of the embedding table's partition of bound ``bound``; None if none.

    ``bound`` as PostgreSQL prints it: ``FOR VALUES IN ('<uuid>')``.
    """
    params = {**_table_params(spec), "bound": bound}
    name = conn.execute(_PARTITION, params).scalar()
    return None if name is None else str(name)


_MAY_ANALYZE = text(
    "SELECT pg_has_role(c.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_database d ON d.datname = current_database() "
    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema())"
)
# PostgreSQL 17 grants ANALYZE with the MAINTAIN privilege (the owner has it)
_MAY_MAINTAIN = text(
    "SELECT has_table_privilege(c.oid, 'MAINTAIN') OR pg_has_role(d.datdba, 'USAGE') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_database d ON d.datname = current_database() "
    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema())"
)


def may_analyze(conn: Connection, spec: TableSpec) -> bool:
    """Whether this role may ANALYZE the embedding table.

    As the table's owner, the database's owner or a superuser, and on PostgreSQL 17
    and newer as a holder of the MAINTAIN privilege.
    """
    version = conn.dialect.server_version_info or (0,)
    query = _MAY_MAINTAIN if version >= (17,) else _MAY_ANALYZE
    return bool(conn.execute(query, _table_params(spec)).scalar())


def find_index(conn: Connection, spec: TableSpec, name: str) -> IndexInfo | None:
    """The index called ``name`` on the embedding table; None when no relation has the name.

    Raises:
        SchemaError: The name belongs to another relation of the schema.
    """
    row = conn.execute(RELATION, {"name": name, "schema": spec.schema}).first()
    problem = relation_problem(name, spec.embedding_table, row)
    if problem is not None:
        raise problem
    if row is None:
        return None
    return next((i for i in read_indexes(conn, spec) if i.name == name), None)


#: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists
_SCHEMA = text("SELECT 1 FROM pg_namespace WHERE nspname = :schema")

_HAS_COLUMN = text(
    "SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema()) "
    "AND a.attname = :column AND NOT a.attisdropped"
)


_OWNS = text(
    "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema())"
)


_TERM_TRIGGERS = text(
    "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema()) "
    "AND t.tgname LIKE 'pgvec\\_terms\\_%' AND NOT t.tgisinternal"
)


def term_triggers(conn: Connection, spec: TableSpec) -> int:
    """How many of the term-statistics triggers the embedding table has.

    Four (one per event) when BM25's statistics are kept.
    """
    return int(conn.execute(_TERM_TRIGGERS, _table_params(spec)).scalar() or 0)


_TABLE_GRANTS = text(
    "SELECT pg_get_userbyid(a.grantee), a.privilege_type "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a "
    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema()) "
    "AND a.grantee <> 0 AND a.grantee <> c.relowner "
    "AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') "
    "ORDER BY 1, 2"
)


def table_grants(conn: Connection, spec: TableSpec) -> dict[str, list[str]]:
    """Who, besides the owner and PUBLIC, may read or write the embedding table.

    Each role, with which of ``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE`` it has.
    """
    grants: dict[str, list[str]] = {}
    for role, privilege in conn.execute(_TABLE_GRANTS, _table_params(spec)):
        grants.setdefault(role, []).append(privilege)
    return grants


def schema_exists(conn: Connection, schema: str) -> bool:
    """Whether the schema exists."""
    return conn.execute(_SCHEMA, {"schema": schema}).first() is not None


def has_column(conn: Connection, spec: TableSpec, column: str) -> bool:
    """Whether the embedding table has ``column``."""
    params = {**_table_params(spec), "column": column}
    return conn.execute(_HAS_COLUMN, params).first() is not None


def owns(conn: Connection, spec: TableSpec) -> bool:
    """Whether this role owns the embedding table (or is a member of its owner)."""
    return bool(conn.execute(_OWNS, _table_params(spec)).scalar())


# --------------------------------------------------------------------------- inspection

_EMBEDDING_TABLES = text(
    "SELECT c.relname AS name, t.typname AS vector_type, a.atttypmod AS dimension, "
    "EXISTS (SELECT 1 FROM pg_attribute d WHERE d.attrelid = c.oid AND d.attname = 'document' "
    "AND NOT d.attisdropped) AS langchain_postgres "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding' "
    "AND NOT a.attisdropped "
    "JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE n.nspname = coalesce(:schema, current_schema()) AND c.relkind IN ('r', 'p') "
    "AND NOT c.relispartition "
    "AND t.typname IN ('vector', 'halfvec') "
    "AND EXISTS (SELECT 1 FROM pg_attribute k WHERE k.attrelid = c.oid "
    "AND k.attname = 'collection_id' AND NOT k.attisdropped) "
    "ORDER BY c.relname"
)
_TABLE_SIZE = text(
    "SELECT (SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(c.oid) AS p) "
    "FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = coalesce(:schema, current_schema()) AND c.relname = :table"
)
_CURRENT_SCHEMA = text("SELECT current_schema()")
_COLUMN_TYPES = text(
    "SELECT column_name, udt_name FROM information_schema.columns "
    "WHERE table_schema = coalesce(:schema, current_schema()) AND table_name = :table"
)
_COLUMN_TYPMOD = text(
    "SELECT a.atttypmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = coalesce(:schema, current_schema()) AND c.relname = :table "
    "AND a.attname = :column"
)


def embedding_tables(conn: Connection, schema: str | None) -> list[Any]:
    """The schema's tables with an ``embedding`` vector column and a ``collection_id``.

    Rows of (name, vector_type, dimension, langchain_postgres), by name.
    """
    return list(conn.execute(_EMBEDDING_TABLES, {"schema": schema}).all())


def table_size(conn: Connection, spec: TableSpec) -> int:
    """The embedding table's size on disk with its indexes and TOAST, in bytes."""
    size = conn.execute(_TABLE_SIZE, _table_params(spec)).scalar()
    return int(size or 0)


def current_schema(conn: Connection) -> str:
    """The search path's first schema."""
    return str(conn.execute(_CURRENT_SCHEMA).scalar_one())


def collections(conn: Connection, tables: Tables) -> list[tuple[Any, str, int]]:
    """(collection id, name, documents in this table) for every collection, by name."""
    collection, embedding = tables.collection, tables.embedding
    statement = (
        select(collection.c.id, collection.c.name, func.count(embedding.c.id))
        .select_from(collection)
        .outerjoin(embedding, embedding.c.collection_id == collection.c.id)
        .group_by(collection.c.id, collection.c.name)
        .order_by(collection.c.name)
    )
    return [(row[0], row[1], int(row[2])) for row in conn.execute(statement)]


def column_types(conn: Connection, schema: str | None, table: str) -> dict[str, str]:
    """Column name to type name of ``schema.table``; empty when there is no such table."""
    rows = conn.execute(_COLUMN_TYPES, {"schema": schema, "table": table}).all()
    return {name: udt for name, udt in rows}


def declared_dimension(conn: Connection, schema: str | None, table: str, column: str) -> int | None:
    """The dimension a vector column declares (``vector(384)``), or None when it has none."""
    params = {"schema": schema, "table": table, "column": column}
    value = conn.execute(_COLUMN_TYPMOD, params).scalar()
    return int(value) if value is not None and value > 0 else None
