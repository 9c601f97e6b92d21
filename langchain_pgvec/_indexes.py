"""Distance strategies, vector and metadata index specifications, and index catalog facts.

A :class:`DistanceStrategy` member carries everything that must agree between a
query and an index: the SQL operator, the comparator on the column type, the index
operator class (per vector type) and the mapping of a distance to a relevance score.
Index specs are small frozen dataclasses that render to ``sqlalchemy.Index``.

Everything here is pure: statements (``CREATE INDEX``, ``DROP INDEX``, catalog
queries), names, checks and messages. ``_index_methods`` runs them.
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Column, Float, Index, MetaData, Select, Table, func, select, text
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlalchemy.sql.elements import ColumnElement

from ._errors import InvalidInputError, SchemaError
from ._filters import IndexKind, metadata_index_expression
from ._input import check_int

VectorType = Literal["vector", "halfvec"]


def _cosine_relevance(distance: float) -> float:
    # cosine distance lies in [0, 2] for any pair of vectors
    return max(0.0, min(1.0, 1.0 - distance / 2.0))


def _euclidean_relevance(distance: float) -> float:
    # any euclidean distance in [0, inf) maps into (0, 1], monotonically
    return 1.0 / (1.0 + distance)


def _inner_product_relevance(distance: float) -> float:
    # pgvector's <#> is the *negative* inner product; for normalised vectors the
    # inner product lies in [-1, 1]; clamp what falls outside
    return max(0.0, min(1.0, (1.0 - distance) / 2.0))


class DistanceStrategy(str, enum.Enum):
    """How similarity is measured; each member knows its SQL and its index opclass.

    Scores returned by ``similarity_search_with_score`` are distances, lower is
    closer: cosine distance, euclidean distance, or the negative inner product.
    """

    COSINE = "cosine"
    EUCLIDEAN = "euclidean"
    INNER_PRODUCT = "inner_product"

    @property
    def operator(self) -> str:
        """The pgvector operator, e.g. ``<=>``."""
        return _OPERATORS[self]

    def distance(self, column: Any, query: Any) -> ColumnElement[float]:
        """The distance expression between a vector column and a query vector."""
        method = {
            DistanceStrategy.COSINE: "cosine_distance",
            DistanceStrategy.EUCLIDEAN: "l2_distance",
            DistanceStrategy.INNER_PRODUCT: "max_inner_product",
        }[self]
        expression: ColumnElement[float] = getattr(column, method)(query)
        return expression

    def function(self, column: Any, query: Any, vector_type: VectorType = "vector") -> Any:
        """The same distance as a function call (``cosine_distance(a, b)``, ...): equal
        to the operator's, but no index serves an ORDER BY of it, which is how the
        exact route ranks rows while a vector index exists."""
        name = {
            DistanceStrategy.COSINE: "cosine_distance",
            DistanceStrategy.EUCLIDEAN: "l2_distance",
            DistanceStrategy.INNER_PRODUCT: f"{vector_type}_negative_inner_product",
        }[self]
        return getattr(func, name)(column, query, type_=Float())

    def opclass(self, vector_type: VectorType = "vector") -> str:
        """The index operator class that serves this distance, e.g. ``vector_cosine_ops``."""
        return f"{vector_type}_{_OPCLASS_SUFFIX[self]}"

    @property
    def relevance(self) -> Callable[[float], float]:
        """Map a distance to a relevance score in [0, 1], higher is closer."""
        return _RELEVANCE[self]


_OPERATORS: Mapping[DistanceStrategy, str] = {
    DistanceStrategy.COSINE: "<=>",
    DistanceStrategy.EUCLIDEAN: "<->",
    DistanceStrategy.INNER_PRODUCT: "<#>",
}
_OPCLASS_SUFFIX: Mapping[DistanceStrategy, str] = {
    DistanceStrategy.COSINE: "cosine_ops",
    DistanceStrategy.EUCLIDEAN: "l2_ops",
    DistanceStrategy.INNER_PRODUCT: "ip_ops",
}
_RELEVANCE: Mapping[DistanceStrategy, Callable[[float], float]] = {
    DistanceStrategy.COSINE: _cosine_relevance,
    DistanceStrategy.EUCLIDEAN: _euclidean_relevance,
    DistanceStrategy.INNER_PRODUCT: _inner_product_relevance,
}


@dataclass(frozen=True)
class HNSW:
    """An HNSW index: better speed/recall trade-off, slower to build, no training.

    Args:
        m: Maximum connections per layer (pgvector default 16).
        ef_construction: Candidate list size while building (pgvector default 64).
    """

    m: int = 16
    ef_construction: int = 64

    method = "hnsw"

    def __post_init__(self) -> None:
        check_int(self.m, "HNSW m", 2, 100)
        check_int(self.ef_construction, "HNSW ef_construction", 4, 1000)
        if self.ef_construction < 2 * self.m:
            raise InvalidInputError(
                f"HNSW ef_construction must be at least 2*m ({2 * self.m}), "
                f"got {self.ef_construction}"
            )

    def with_options(self, row_count: int) -> dict[str, int]:
        """The ``WITH (...)`` storage parameters of the index."""
        return {"m": self.m, "ef_construction": self.ef_construction}


@dataclass(frozen=True)
class IVFFlat:
    """An IVFFlat index: fast to build, needs data first (it trains on the rows present).

    Args:
        lists: Number of inverted lists; ``None`` picks rows/1000 up to 1M rows and
            sqrt(rows) above, as pgvector recommends.
    """

    lists: int | None = None

    method = "ivfflat"

    def __post_init__(self) -> None:
        if self.lists is not None:
            check_int(self.lists, "IVFFlat lists", 1, 32768)

    def with_options(self, row_count: int) -> dict[str, int]:
        """The ``WITH (...)`` storage parameters, ``lists`` derived from ``row_count``."""
        return {"lists": self.lists or default_lists(row_count)}


def default_lists(row_count: int) -> int:
    """pgvector's recommended number of IVFFlat lists for a table of ``row_count`` rows."""
    if row_count <= 1_000_000:
        return max(1, row_count // 1000)
    return max(1, int(math.sqrt(row_count)))


IndexSpec = HNSW | IVFFlat


# --------------------------------------------------------------------------- limits and names

INDEXABLE_DIMENSIONS: Mapping[str, int] = {"vector": 2000, "halfvec": 4000}
"""The most dimensions pgvector's HNSW and IVFFlat indexes take, per vector type."""

MAX_NAME_BYTES = 63
"""PostgreSQL truncates longer identifiers (NAMEDATALEN - 1)."""

UNINDEXED_ROWS = 50_000
"""Above this many rows (``pg_class.reltuples``) a search without a vector index warns."""

_MEMORY = re.compile(r"\s*\d+\s*(kB|MB|GB|TB)?\s*")
_DISTANCE_TAG: Mapping[DistanceStrategy, str] = {
    DistanceStrategy.COSINE: "cosine",
    DistanceStrategy.EUCLIDEAN: "l2",
    DistanceStrategy.INNER_PRODUCT: "ip",
}
_PARTIAL_COLLECTION = re.compile(
    r"^\(*collection_id = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'"
    r"::uuid\)*$"
)


def _digest(value: str) -> str:
    return hashlib.blake2s(value.encode(), digest_size=4).hexdigest()


def fit_name(name: str) -> str:
    """``name`` cut to PostgreSQL's 63 bytes, kept distinct by a short hash of the whole."""
    raw = name.encode()
    if len(raw) <= MAX_NAME_BYTES:
        return name
    digest = _digest(name)
    head = raw[: MAX_NAME_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{head}_{digest}"


def vector_index_name(
    table: str,
    spec: IndexSpec,
    strategy: DistanceStrategy,
    collection_id: uuid.UUID | None = None,
) -> str:
    """The default name of a vector index: ``<table>_<method>_<distance>[_<collection>]``."""
    parts = [table, spec.method, _DISTANCE_TAG[strategy]]
    if collection_id is not None:
        parts.append(collection_id.hex[:12])
    return fit_name("_".join(parts))


def metadata_index_name(table: str, field: str, kind: str) -> str:
    """The default name of a metadata index: ``<table>_meta_<field>_<kind>``.

    A field that is not a plain lower-case identifier gets a hash of itself appended,
    so that ``"a.b"`` and ``"a_b"`` never share an index name.
    """
    slug = re.sub(r"[^0-9a-z]+", "_", field.lower()).strip("_") or "field"
    name = f"{table}_meta_{slug}_{kind}"
    if slug != field:
        name = f"{name}_{_digest(field)}"
    return fit_name(name)


def check_index_name(name: object) -> str:
    """Return a user-given index name, or raise ``InvalidInputError`` for a bad one."""
    if (
        not isinstance(name, str)
        or not name
        or "\x00" in name
        or len(name.encode()) > MAX_NAME_BYTES
    ):
        raise InvalidInputError(
            f"an index name must be a non-empty string of at most {MAX_NAME_BYTES} bytes "
            f"without NUL characters, got {name!r}; or leave name=None for the default"
        )
    return name


def check_spec(spec: object) -> IndexSpec:
    """Return ``spec`` if it is an index spec instance, else raise ``InvalidInputError``."""
    if isinstance(spec, (HNSW, IVFFlat)):
        return spec
    if spec in (HNSW, IVFFlat):
        raise InvalidInputError(
            f"pass an index spec instance, e.g. create_index({spec.__name__}()), not the class"
        )
    raise InvalidInputError(
        f"create_index() takes HNSW(...) or IVFFlat(...), got {type(spec).__name__}"
    )


def check_memory(value: object) -> str | None:
    """Return a ``maintenance_work_mem`` value such as ``"1GB"``, or raise for a bad one."""
    if value is None:
        return None
    if not isinstance(value, str) or not _MEMORY.fullmatch(value):
        raise InvalidInputError(
            f"maintenance_work_mem must be a PostgreSQL memory size such as '512MB' or "
            f"'2GB' (units kB, MB, GB, TB), got {value!r}"
        )
    return value.strip()


def check_indexable(
    table: str, vector_type: VectorType, dimension: int | None, method: str
) -> None:
    """Raise ``SchemaError`` when pgvector cannot index the table's vectors."""
    if dimension is None:
        raise SchemaError(
            f"table {table!r} has an embedding column without a fixed dimension, and pgvector "
            f"indexes only {vector_type}(n) columns; recreate the table with embedding_length=n "
            "(or alter the column to a fixed dimension)"
        )
    limit = INDEXABLE_DIMENSIONS[vector_type]
    if dimension <= limit:
        return
    if vector_type == "vector":
        fix = (
            "store the vectors as halfvec, which pgvector indexes up to 4,000 dimensions "
            "(PGVecStore(..., vector_type='halfvec', embedding_table='<a new table>'), then add "
            "the documents again), or reduce the dimensions to at most 2,000 (a smaller model, "
            "or the `dimensions` setting of models that can shorten their embeddings)"
        )
    else:
        fix = (
            "reduce the dimensions to at most 4,000 (a smaller model, or the `dimensions` "
            "setting of models that can shorten their embeddings)"
        )
    raise SchemaError(
        f"cannot build a {method} index on table {table!r}: its {vector_type} column has "
        f"{dimension:,} dimensions and pgvector indexes {vector_type} columns of at most "
        f"{limit:,}. To fix: {fix}."
    )


# --------------------------------------------------------------------------- DDL


def detached(table: Table) -> Table:
    """A copy of ``table``'s columns in a throwaway ``MetaData``.

    A ``sqlalchemy.Index`` attaches itself to the table of its columns; built on the
    shared mapped table it would join ``table.indexes`` and be created again by every
    later ``create_all`` of that metadata.
    """
    return Table(
        table.name,
        MetaData(),
        *(Column(c.name, c.type) for c in table.columns),
        schema=table.schema,
    )


def vector_index(
    name: str,
    table: Table,
    spec: IndexSpec,
    strategy: DistanceStrategy,
    vector_type: VectorType,
    *,
    row_count: int = 0,
    collection_id: uuid.UUID | None = None,
    concurrently: bool = False,
) -> Index:
    """Render an index spec to a ``sqlalchemy.Index`` whose opclass matches the distance.

    With ``collection_id`` the index is partial, ``WHERE collection_id = '<uuid>'``:
    the predicate is rendered as a literal, which the planner needs to match it
    against a search's ``collection_id = $1``.
    """
    own = detached(table)
    column = own.c.embedding
    kwargs: dict[str, Any] = {
        "postgresql_using": spec.method,
        "postgresql_with": spec.with_options(row_count),
        "postgresql_ops": {column.key: strategy.opclass(vector_type)},
        "postgresql_concurrently": concurrently,
    }
    if collection_id is not None:
        kwargs["postgresql_where"] = own.c.collection_id == collection_id
    return Index(name, column, **kwargs)


def metadata_index(
    name: str, table: Table, field: str, kind: IndexKind, *, concurrently: bool = False
) -> Index:
    """A btree index on exactly the expression range filters on ``field`` compare."""
    own = detached(table)
    expression = metadata_index_expression(own.c.metadata, field, kind)
    return Index(name, expression, postgresql_concurrently=concurrently)


def create_statement(index: Index) -> CreateIndex:
    """``CREATE INDEX [CONCURRENTLY] IF NOT EXISTS ...``."""
    return CreateIndex(index, if_not_exists=True)


def drop_statement(
    schema: str | None, table: str, name: str, *, concurrently: bool = False
) -> DropIndex:
    """``DROP INDEX [CONCURRENTLY] IF EXISTS <schema>.<name>``."""
    own = Table(table, MetaData(), Column("embedding"), schema=schema)
    return DropIndex(
        Index(name, own.c.embedding, postgresql_concurrently=concurrently), if_exists=True
    )


def set_memory(value: str, *, local: bool) -> Select[Any]:
    """``set_config('maintenance_work_mem', value, local)``: transaction or session scope."""
    return select(func.set_config("maintenance_work_mem", value, local))


RESET_MEMORY = text("RESET maintenance_work_mem")
BACKEND_PID = select(func.pg_backend_pid())


# --------------------------------------------------------------------------- the catalog

_TABLE_WHERE = "t.relname = :table AND n.nspname = coalesce(:schema, current_schema())"

LIST_INDEXES = text(
    "SELECT i.relname AS name, am.amname AS method, "
    "ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) "
    "      FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS columns, "
    "(SELECT o.opcname FROM pg_opclass o WHERE o.oid = x.indclass[0]) AS opclass, "
    "pg_relation_size(i.oid) AS size_bytes, "
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
    "SELECT phase, blocks_total, blocks_done, tuples_total, tuples_done "
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

    @classmethod
    def from_row(cls, row: Any) -> IndexInfo:
        """Build from a row of :data:`LIST_INDEXES`."""
        return cls(
            name=row.name,
            method=row.method,
            columns=tuple(row.columns),
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

    def serves(self, opclass: str, collection_id: uuid.UUID | None) -> bool:
        """Whether searches of ``collection_id`` with this opclass's operator can use it."""
        return (
            self.is_vector
            and self.valid
            and self.opclass == opclass
            and (not self.partial or self.collection_id == collection_id)
        )


@dataclass(frozen=True)
class Wanted:
    """What an index about to be created must look like, to compare with one that exists."""

    method: str
    opclass: str | None = None
    options: Mapping[str, int] | None = None
    collection_id: uuid.UUID | None = None


def relation_problem(name: str, table: str, row: Any) -> SchemaError | None:
    """The error for a name taken by something other than an index on ``table``."""
    if row is None or (row.kind == "i" and row.table_name == table):
        return None
    what = f"an index on table {row.table_name!r}" if row.kind == "i" else "another relation"
    return SchemaError(
        f"the name {name!r} belongs to {what}, not to an index on table {table!r}; "
        "pass another name=..."
    )


def already_built(existing: IndexInfo | None, wanted: Wanted, table: str) -> bool:
    """True when ``existing`` is the index wanted (nothing to do), False when none exists.

    Raises:
        SchemaError: An index of that name exists but is invalid or different.
    """
    if existing is None:
        return False
    fix = f"drop it with store.drop_index({existing.name!r}) and create it again"
    if not existing.valid:
        raise SchemaError(
            f"index {existing.name!r} on table {table!r} exists but is invalid (the leftover "
            f"of a CREATE INDEX CONCURRENTLY that failed or was interrupted); {fix}"
        )
    parameters = existing.parameters
    same = (
        existing.method == wanted.method
        and (wanted.opclass is None or existing.opclass == wanted.opclass)
        and all(parameters.get(k) == str(v) for k, v in (wanted.options or {}).items())
        and existing.partial == (wanted.collection_id is not None)
        and existing.collection_id == wanted.collection_id
    )
    if not same:
        raise SchemaError(
            f"index {existing.name!r} on table {table!r} already exists with another "
            f"definition: {existing.definition}. To replace it, {fix}; to keep both, pass "
            "another name=..."
        )
    return True


# --------------------------------------------------------------------------- guidance


def _describe_opclass(opclass: str | None) -> str:
    for strategy in DistanceStrategy:
        for vector_type in ("vector", "halfvec"):
            if opclass == strategy.opclass(vector_type):
                return (
                    f"{opclass}, which serves only {strategy.value} distance "
                    f"({strategy.operator}) on {vector_type}"
                )
    return str(opclass)


def unindexed_advice(
    *,
    table: str,
    approx_rows: int,
    indexes: Sequence[IndexInfo],
    strategy: DistanceStrategy,
    vector_type: VectorType,
    collection_id: uuid.UUID | None,
) -> str | None:
    """The :class:`PerformanceWarning` message for a large table no vector index serves.

    None when the table is small or has an index with the opclass that the store's
    distance strategy and vector type need.
    """
    needed = strategy.opclass(vector_type)
    if approx_rows <= UNINDEXED_ROWS or any(i.serves(needed, collection_id) for i in indexes):
        return None
    message = (
        f"table {table!r} holds about {approx_rows:,} rows and no vector index serves this "
        f"store's {strategy.value} distance ({strategy.operator}) on {vector_type}, so every "
        "search reads the whole table. "
    )
    others = [
        i
        for i in indexes
        if i.is_vector and i.valid and (not i.partial or i.collection_id == collection_id)
    ]
    if others:
        found = "; ".join(f"{i.name!r} has {_describe_opclass(i.opclass)}" for i in others)
        message += (
            f"Its vector index cannot be used: {found} (an index serves only the operator "
            "of its operator class). "
        )
    return message + (
        f"Create one with operator class {needed}: store.create_index(HNSW()) (or "
        "await store.acreate_index(HNSW())); store.explain(query) shows the index a "
        "search uses."
    )


def progress_of(row: Any) -> tuple[str, int, int | None, str]:
    """(phase, done, total, unit) of a :data:`PROGRESS` row: blocks if known, else tuples."""
    if row.blocks_total:
        return row.phase, int(row.blocks_done or 0), int(row.blocks_total), "block"
    if row.tuples_total:
        return row.phase, int(row.tuples_done or 0), int(row.tuples_total), "tuple"
    return row.phase, 0, None, "block"
