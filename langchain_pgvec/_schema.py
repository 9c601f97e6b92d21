"""The tables as SQLAlchemy 2.0 mapped classes, their vector types, the distance strategies.

``mapped_tables(TableSpec(...))`` returns the collection and embedding classes for one
(schema, table names, dimension, vector type, text search configuration). Each key
gets its own declarative base and ``MetaData``, so stores with different settings
never share (or freeze) classes; the same key returns the same classes (for the 64
keys used last), so users can map their own tables to ours.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pgvector.sqlalchemy import HALFVEC, VECTOR
from sqlalchemy import (
    Column,
    Computed,
    Float,
    ForeignKey,
    Index,
    MetaData,
    Table,
    Text,
    cast,
    event,
    literal,
)
from sqlalchemy.dialects.postgresql import JSONB, REGCONFIG, TSVECTOR, UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import ExecutableDDLElement
from sqlalchemy.sql import ColumnElement, func
from sqlalchemy.types import TypeEngine

from ._errors import SchemaError
from ._validate import check_string

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
    ``DistanceStrategy("cosine")`` (or ``"euclidean"``, ``"inner_product"``) is the
    member of that value; another string raises ``ValueError``.
    """

    COSINE = "cosine"
    EUCLIDEAN = "euclidean"
    INNER_PRODUCT = "inner_product"

    @property
    def operator(self) -> str:
        """The pgvector operator, e.g. ``<=>``."""
        return _OPERATORS[self]

    def distance(self, column: Any, query: Any) -> ColumnElement[float]:
        """The distance expression between a vector column and a query vector.

        Args:
            column: The vector column (or any pgvector expression).
            query: The query vector.

        Returns:
            The operator expression (``<=>``, ``<->`` or ``<#>``), which a vector index
            with the matching operator class can serve.
        """
        method = {
            DistanceStrategy.COSINE: "cosine_distance",
            DistanceStrategy.EUCLIDEAN: "l2_distance",
            DistanceStrategy.INNER_PRODUCT: "max_inner_product",
        }[self]
        expression: ColumnElement[float] = getattr(column, method)(query)
        return expression

    def function(self, column: Any, query: Any, vector_type: VectorType = "vector") -> Any:
        """The same distance as a function call (``cosine_distance(a, b)``, ...).

        Equal to the operator's, but no index serves an ORDER BY of it, which is how
        the exact route ranks rows while a vector index exists.

        Args:
            column: The vector column.
            query: The query vector.
            vector_type: ``"vector"`` or ``"halfvec"`` (names the inner product's
                function).

        Returns:
            The function call, typed as a float.
        """
        name = {
            DistanceStrategy.COSINE: "cosine_distance",
            DistanceStrategy.EUCLIDEAN: "l2_distance",
            DistanceStrategy.INNER_PRODUCT: f"{vector_type}_negative_inner_product",
        }[self]
        return getattr(func, name)(column, query, type_=Float())

    def opclass(self, vector_type: VectorType = "vector") -> str:
        """The index operator class that serves this distance, e.g. ``vector_cosine_ops``.

        Args:
            vector_type: ``"vector"`` or ``"halfvec"``.

        Returns:
            The operator class's name.
        """
        return f"{vector_type}_{_OPCLASS_SUFFIX[self]}"

    @property
    def relevance(self) -> Callable[[float], float]:
        """Map a distance to a relevance score in [0, 1], higher is closer.

        ``1 - d/2`` for cosine, ``1/(1+d)`` for euclidean, ``(1 - d)/2`` for the negative
        inner product ``d``; cosine and inner product are clamped to [0, 1].
        """
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


MAX_NAME_BYTES = 63
"""PostgreSQL truncates longer identifiers (NAMEDATALEN - 1)."""


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


DEFAULT_COLLECTION_TABLE = "pgvec_collection"
DEFAULT_EMBEDDING_TABLE = "pgvec_embedding"
MAX_DIMENSION = {"vector": 16000, "halfvec": 16000}
_MAX_NAME = 48  # leaves room for index-name suffixes within PostgreSQL's 63 bytes
_CONFIG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
#: the generated full-text column, present when a store enables text search
TSV_COLUMN = "content_tsv"


def _to_text(value: Any, dim: int | None) -> str:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {array.shape}")
    if dim is not None and array.shape[0] != dim:
        raise ValueError(f"expected {dim} dimensions, not {array.shape[0]}")
    return "[" + ",".join(map(repr, array.tolist())) + "]"


class _BinaryBinding:
    """Bind numpy arrays as they are, anything else as text.

    psycopg sends the arrays binary once pgvector's dumpers are registered on the
    connection, which the store does.
    """

    dim: int | None

    def bind_processor(self, dialect: Dialect) -> Any:
        dim = self.dim

        def process(value: Any) -> Any:
            if value is None or isinstance(value, np.ndarray):
                return value
            return _to_text(value, dim)

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        def process(value: Any) -> Any:
            if value is None or isinstance(value, np.ndarray):
                return value
            if isinstance(value, str):
                return np.array(value[1:-1].split(","), dtype=np.float32)
            if hasattr(value, "to_numpy"):  # pgvector HalfVector
                return np.asarray(value.to_numpy(), dtype=np.float32)
            return np.asarray(value, dtype=np.float32)

        return process


class Vector(_BinaryBinding, VECTOR):  # type: ignore[misc]
    """``vector(n)``: pgvector's type, binding numpy arrays in binary."""

    cache_ok = True


class HalfVector(_BinaryBinding, HALFVEC):  # type: ignore[misc]
    """``halfvec(n)``: 16-bit floats, half the memory, up to 4,000 indexed dimensions."""

    cache_ok = True


def vector_column_type(vector_type: VectorType, dimension: int | None) -> TypeEngine[Any]:
    """The column type for ``vector_type`` with ``dimension`` (None: any dimension)."""
    if vector_type == "vector":
        return Vector(dimension)
    if vector_type == "halfvec":
        return HalfVector(dimension)
    raise SchemaError(f"vector_type must be 'vector' or 'halfvec', got {vector_type!r}")


def send_function(vector_type: VectorType, column: Any) -> ColumnElement[bytes]:
    """``vector_send(col)``: the binary form, read back with :func:`decode_vector`."""
    fn = func.halfvec_send if vector_type == "halfvec" else func.vector_send
    result: ColumnElement[bytes] = fn(column)
    return result


def decode_vectors(blobs: list[bytes], vector_type: VectorType) -> np.ndarray:
    """Decode ``vector_send`` results (2-byte dim, 2 unused, big-endian floats)."""
    dtype = ">f2" if vector_type == "halfvec" else ">f4"
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    joined = b"".join(bytes(blob)[4:] for blob in blobs)
    return np.frombuffer(joined, dtype=dtype).astype(np.float32).reshape(len(blobs), -1)


def full_text_column(config: str, content: Any) -> Column[Any]:
    """``content_tsv tsvector GENERATED ALWAYS AS (to_tsvector(config, content)) STORED``."""
    vector = func.to_tsvector(cast(literal(config), REGCONFIG), func.coalesce(content, literal("")))
    return Column(TSV_COLUMN, TSVECTOR, Computed(vector, persisted=True))


class AddColumn(ExecutableDDLElement):
    """``ALTER TABLE t ADD COLUMN IF NOT EXISTS <column spec>`` (no lost data)."""

    inherit_cache = False

    def __init__(self, table: Table, column: Column[Any]) -> None:
        self.table = table
        self.column = column


@compiles(AddColumn)
def _compile_add_column(element: AddColumn, compiler: Any, **kw: Any) -> str:
    # both parts come from SQLAlchemy's compiler: the quoted table name and the column DDL
    table: str = compiler.preparer.format_table(element.table)
    column: str = compiler.get_column_specification(element.column)
    return "ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS " + column


class MainStorage(ExecutableDDLElement):
    """``ALTER TABLE t ALTER COLUMN <column> SET STORAGE MAIN`` (the embedding by default).

    A compiled construct rather than ``DDL("ALTER TABLE %(fullname)s ...")``: DDL text
    doubles the "%" of a quoted name a second time, so a table or schema whose name
    holds "%" fails to be created.
    """

    inherit_cache = False

    def __init__(self, table: Table, column: str = "embedding") -> None:
        self.table = table
        self.column = column


@compiles(MainStorage)
def _compile_main_storage(element: MainStorage, compiler: Any, **kw: Any) -> str:
    table: str = compiler.preparer.format_table(element.table)
    column: str = compiler.preparer.quote(element.column)
    return "ALTER TABLE " + table + " ALTER COLUMN " + column + " SET STORAGE MAIN"


LockMode = Literal["ROW EXCLUSIVE", "SHARE ROW EXCLUSIVE"]


class LockTable(ExecutableDDLElement):
    """``LOCK TABLE t IN <mode> MODE``, until the transaction ends.

    ``SHARE ROW EXCLUSIVE`` (the default): writers wait, readers go on, and no two
    holders at once. ``ROW EXCLUSIVE``: what a write takes anyway, taken first.
    """

    inherit_cache = False

    def __init__(self, table: Table, mode: LockMode = "SHARE ROW EXCLUSIVE") -> None:
        self.table = table
        self.mode = mode


@compiles(LockTable)
def _compile_lock(element: LockTable, compiler: Any, **kw: Any) -> str:
    table: str = compiler.preparer.format_table(element.table)
    # the mode is one of LockMode's keywords, never user input
    return "LOCK TABLE " + table + " IN " + element.mode + " MODE"


def cast_table(table: Any) -> Table:
    """A declarative class's ``__table__``, typed as the Table it is."""
    if not isinstance(table, Table):  # pragma: no cover - declarative always makes one
        raise SchemaError(f"expected a Table, got {type(table).__name__}")
    return table


@dataclass(frozen=True)
class TableSpec:
    """What identifies one set of mapped classes: the tables and their vectors.

    Args:
        schema: The PostgreSQL schema (None: the search path's first).
        collection_table: The collection table's name.
        embedding_table: The embedding table's name.
        dimension: The vectors' dimension, 1 to 16,000; None for a column of any
            dimension (which pgvector cannot index).
        vector_type: ``"vector"`` (float32) or ``"halfvec"`` (float16).
        text_search_config: A text search configuration (``"english"``, ...) for the
            full-text column, or None for none.
        partitioned: Whether the embedding table is ``PARTITION BY LIST
            (collection_id)``, one partition per collection; None: as the existing
            table is (a new one is not partitioned).

    Raises:
        SchemaError: A name that is not a non-empty string of at most 48 bytes, or
            holds characters PostgreSQL cannot store; the two table names are equal;
            ``vector_type`` is neither value; ``dimension`` is out of range; or
            ``text_search_config`` is not a configuration's name.
    """

    schema: str | None = None
    collection_table: str = DEFAULT_COLLECTION_TABLE
    embedding_table: str = DEFAULT_EMBEDDING_TABLE
    dimension: int | None = None
    vector_type: VectorType = "vector"
    text_search_config: str | None = None
    partitioned: bool | None = None

    def __post_init__(self) -> None:
        for label, name in (
            ("schema", self.schema),
            ("collection_table", self.collection_table),
            ("embedding_table", self.embedding_table),
        ):
            if name is None and label == "schema":
                continue
            if isinstance(name, str):
                check_string(name, label, SchemaError)
            if not isinstance(name, str) or not name or len(name.encode()) > _MAX_NAME:
                raise SchemaError(
                    f"{label} must be a non-empty string of at most {_MAX_NAME} bytes, got {name!r}"
                )
        config = self.text_search_config
        if config is not None and not _CONFIG_NAME.fullmatch(config):
            raise SchemaError(
                "text_search_config must name a PostgreSQL text search configuration such "
                f"as 'english' or 'simple' (letters, digits, '_'), got {config!r}"
            )
        if self.collection_table == self.embedding_table:
            raise SchemaError(
                "collection_table and embedding_table must differ, "
                f"both are {self.collection_table!r}"
            )
        if self.partitioned not in (None, True, False):
            raise SchemaError(f"partitioned must be True, False or None, got {self.partitioned!r}")
        if self.vector_type not in ("vector", "halfvec"):
            raise SchemaError(
                f"vector_type must be 'vector' or 'halfvec', got {self.vector_type!r}"
            )
        if self.dimension is not None and not (
            1 <= self.dimension <= MAX_DIMENSION[self.vector_type]
        ):
            raise SchemaError(
                f"a {self.vector_type} column takes 1 to {MAX_DIMENSION[self.vector_type]} "
                f"dimensions, got {self.dimension}"
            )

    @property
    def qualified_embedding_table(self) -> str:
        """``schema.table`` for messages."""
        return f"{self.schema}.{self.embedding_table}" if self.schema else self.embedding_table

    @property
    def qualified_collection_table(self) -> str:
        """``schema.table`` of the collections, for messages."""
        return f"{self.schema}.{self.collection_table}" if self.schema else self.collection_table


@dataclass(frozen=True)
class Tables:
    """The mapped classes and tables for one :class:`TableSpec` (see :func:`mapped_tables`).

    Attributes:
        spec: The spec the classes were built for.
        metadata: The ``MetaData`` both tables belong to.
        Collection: The declarative class of the collection table.
        Embedding: The declarative class of the embedding table.
    """

    spec: TableSpec
    metadata: MetaData
    Collection: Any
    Embedding: Any

    @property
    def collection(self) -> Table:
        """The collection table."""
        table: Table = self.Collection.__table__
        return table

    @property
    def embedding(self) -> Table:
        """The embedding table."""
        table: Table = self.Embedding.__table__
        return table


#: vectors up to this size are kept in the row (STORAGE MAIN); PostgreSQL starts to
#: TOAST rows above ~2,032 bytes, and the rest of a row needs some room
_INLINE_VECTOR_BYTES = 1600


def _vector_bytes(spec: TableSpec) -> int:
    width = 2 if spec.vector_type == "halfvec" else 4
    return 8 + width * (spec.dimension or 0)


@functools.lru_cache(maxsize=64)
def mapped_tables(spec: TableSpec) -> Tables:
    """The declarative classes for the collection and embedding tables of ``spec``.

    The classes are cached: the same spec returns the same classes (for the 64 specs
    used last). Both classes map the JSONB column ``metadata`` to the attribute
    ``cmetadata`` (``metadata`` is reserved by SQLAlchemy's declarative base). With a
    ``text_search_config``, the embedding table has the generated ``content_tsv``
    column and its GIN index.

    Args:
        spec: The tables.

    Returns:
        The classes, their tables and their ``MetaData``.
    """

    class Base(DeclarativeBase):
        metadata = MetaData(schema=spec.schema)

    class Collection(Base):
        __tablename__ = spec.collection_table

        id: Mapped[uuid.UUID] = mapped_column(
            UUID(as_uuid=True), primary_key=True, default=uuid.uuid4
        )
        name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
        cmetadata: Mapped[dict[str, Any]] = mapped_column(
            "metadata", JSONB, nullable=False, default=dict
        )

    class Embedding(Base):
        __tablename__ = spec.embedding_table
        __table_args__ = (
            Index(
                fit_name(f"{spec.embedding_table}_metadata_gin"),
                "metadata",
                postgresql_using="gin",
                postgresql_ops={"metadata": "jsonb_path_ops"},
            ),
            {"postgresql_partition_by": "LIST (collection_id)"} if spec.partitioned else {},
        )

        collection_id: Mapped[uuid.UUID] = mapped_column(
            ForeignKey(Collection.id, ondelete="CASCADE"), primary_key=True
        )
        id: Mapped[str] = mapped_column(Text, primary_key=True)
        content: Mapped[str | None] = mapped_column(Text)
        cmetadata: Mapped[dict[str, Any]] = mapped_column(
            "metadata", JSONB, nullable=False, default=dict
        )
        embedding: Mapped[Any] = mapped_column(
            vector_column_type(spec.vector_type, spec.dimension), nullable=False
        )

    if spec.text_search_config is not None:
        embedding_table = cast_table(Embedding.__table__)
        column = full_text_column(spec.text_search_config, embedding_table.c.content)
        embedding_table.append_column(column)
        Index(fit_name(f"{spec.embedding_table}_{TSV_COLUMN}_gin"), column, postgresql_using="gin")
        # keyword search reads each candidate's tsvector: kept in the row (compressed),
        # it is read with the row instead of from TOAST, several times faster
        event.listen(embedding_table, "after_create", MainStorage(embedding_table, TSV_COLUMN))

    # Keep small vectors in the row: with the default EXTENDED storage, a row over
    # ~2 kB (a long text, a tsvector) has its embedding moved to TOAST first, and every
    # distance computation then fetches it from there, which makes exact scans several
    # times slower. MAIN makes TOAST move content and metadata out before the vector. A
    # vector that alone exceeds the threshold is TOASTed either way; there MAIN would
    # only push the small columns out too, which slows ingestion for no gain.
    if spec.dimension is not None and _vector_bytes(spec) <= _INLINE_VECTOR_BYTES:
        event.listen(
            cast_table(Embedding.__table__),
            "after_create",
            MainStorage(cast_table(Embedding.__table__)),
        )
    Collection.__name__ = Collection.__qualname__ = "PGVecCollection"
    Embedding.__name__ = Embedding.__qualname__ = "PGVecEmbedding"
    return Tables(spec=spec, metadata=Base.metadata, Collection=Collection, Embedding=Embedding)
