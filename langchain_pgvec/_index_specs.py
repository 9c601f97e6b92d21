"""Vector and metadata index specifications, their names, checks and DDL; pure.

Index specs are small frozen dataclasses that render to ``sqlalchemy.Index``, with
the operator class the store's :class:`~._schema.DistanceStrategy` needs. Everything
here is pure: statements (``CREATE INDEX``, ``DROP INDEX``), names, checks and
messages. ``_index_admin`` runs them.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Index, MetaData, Select, Table, func, select, text
from sqlalchemy.schema import CreateIndex, DropIndex

from . import _quantize
from ._catalog import IndexInfo
from ._errors import InvalidInputError, SchemaError
from ._filters import IndexKind, metadata_index_expression
from ._quantize import Quantization
from ._schema import MAX_NAME_BYTES, DistanceStrategy, VectorType, _digest, fit_name
from ._validate import check_int


@dataclass(frozen=True)
class HNSW:
    """An HNSW index: better speed/recall trade-off, slower to build, no training.

    Args:
        m: Maximum connections per layer, 2 to 100 (pgvector default 16).
        ef_construction: Candidate list size while building, 4 to 1000 and at least
            ``2 * m`` (pgvector default 64).
        quantization: None indexes the vectors as stored. ``"halfvec"`` indexes
            ``embedding::halfvec(n)`` (half precision: about half the size, up to
            4,000 dimensions; for a ``vector`` column) and ``"binary"`` indexes
            ``binary_quantize(embedding)::bit(n)`` (one bit per dimension, hamming
            distance, up to 64,000 dimensions). Searches through a quantized index ask
            it for ``overfetch * k`` candidates and rank them by the exact distance
            on the stored vectors. Needs pgvector 0.7.

    Raises:
        InvalidInputError: ``m`` or ``ef_construction`` is out of its range, or
            ``quantization`` is not one of its three values.
    """

    m: int = 16
    ef_construction: int = 64
    quantization: Quantization | None = None

    method = "hnsw"

    def __post_init__(self) -> None:
        _quantize.check(self.quantization)
        check_int(self.m, "HNSW m", 2, 100)
        check_int(self.ef_construction, "HNSW ef_construction", 4, 1000)
        if self.ef_construction < 2 * self.m:
            raise InvalidInputError(
                f"HNSW ef_construction must be at least 2*m ({2 * self.m}), "
                f"got {self.ef_construction}"
            )

    def with_options(self, row_count: int) -> dict[str, int]:
        """The ``WITH (...)`` storage parameters of the index.

        Args:
            row_count: The rows the index is built over (unused by HNSW).

        Returns:
            ``{"m": ..., "ef_construction": ...}``.
        """
        return {"m": self.m, "ef_construction": self.ef_construction}


@dataclass(frozen=True)
class IVFFlat:
    """An IVFFlat index: fast to build, needs data first (it trains on the rows present).

    Args:
        lists: Number of inverted lists, 1 to 32768; ``None`` picks rows/1000 up to 1M
            rows and sqrt(rows) above (at least 1), as pgvector recommends.

    Raises:
        InvalidInputError: ``lists`` is out of its range.
    """

    lists: int | None = None

    method = "ivfflat"
    quantization = None

    def __post_init__(self) -> None:
        if self.lists is not None:
            check_int(self.lists, "IVFFlat lists", 1, 32768)

    def with_options(self, row_count: int) -> dict[str, int]:
        """The ``WITH (...)`` storage parameters of the index.

        Args:
            row_count: The rows the index is built over; sizes ``lists`` when it is None.

        Returns:
            ``{"lists": ...}``.
        """
        return {"lists": self.lists or default_lists(row_count)}


def default_lists(row_count: int) -> int:
    """The number of IVFFlat lists pgvector recommends for ``row_count`` rows (at least 1)."""
    if row_count <= 1_000_000:
        return max(1, row_count // 1000)
    return max(1, int(math.sqrt(row_count)))


IndexSpec = HNSW | IVFFlat


# --------------------------------------------------------------------------- limits and names

INDEXABLE_DIMENSIONS: Mapping[str, int] = {"vector": 2000, "halfvec": 4000}
"""The most dimensions pgvector's HNSW and IVFFlat indexes take, per vector type."""

UNINDEXED_ROWS = 50_000
"""Above this many rows (``pg_class.reltuples``) a search without a vector index warns."""

_MEMORY = re.compile(r"\s*\d+\s*(kB|MB|GB|TB)?\s*")
_DISTANCE_TAG: Mapping[DistanceStrategy, str] = {
    DistanceStrategy.COSINE: "cosine",
    DistanceStrategy.EUCLIDEAN: "l2",
    DistanceStrategy.INNER_PRODUCT: "ip",
}


def vector_index_name(
    table: str,
    spec: IndexSpec,
    strategy: DistanceStrategy,
    collection_id: uuid.UUID | None = None,
) -> str:
    """The default name of a vector index: ``<table>_<method>_<distance>[_<collection>]``.

    A quantized index has its quantization after the method: ``<table>_hnsw_halfvec_cosine``,
    and ``<table>_hnsw_binary`` (no distance: hamming serves every one).
    """
    parts = [table, spec.method]
    if spec.quantization is not None:
        parts.append(spec.quantization)
    if spec.quantization != "binary":
        parts.append(_DISTANCE_TAG[strategy])
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
    table: str,
    vector_type: VectorType,
    dimension: int | None,
    method: str,
    quantization: Quantization | None = None,
) -> None:
    """Raise ``SchemaError`` when pgvector cannot index the table's vectors.

    And ``InvalidInputError`` for a ``halfvec`` quantization of a ``halfvec`` column.
    """
    if quantization == "halfvec" and vector_type == "halfvec":
        raise InvalidInputError(
            f"table {table!r} stores its vectors as halfvec already, so HNSW() indexes them "
            "in half precision as they are; quantization='halfvec' is for vector columns. "
            "Use HNSW() (the same size, exact distances) or HNSW(quantization='binary')"
        )
    if dimension is None:
        raise SchemaError(
            f"table {table!r} has an embedding column without a fixed dimension, and pgvector "
            f"indexes only {vector_type}(n) columns; recreate the table with embedding_length=n "
            "(or alter the column to a fixed dimension)"
        )
    if quantization is not None:
        _check_quantizable(table, vector_type, dimension, quantization)
        return
    limit = INDEXABLE_DIMENSIONS[vector_type]
    if dimension <= limit:
        return
    if vector_type == "vector":
        fix = (
            "index them in half precision, HNSW(quantization='halfvec') (up to 4,000 "
            "dimensions; searches rank its candidates by the exact distance), or "
            "HNSW(quantization='binary'); or store the vectors as halfvec, which pgvector "
            "indexes up to 4,000 dimensions "
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


def _check_quantizable(
    table: str, vector_type: VectorType, dimension: int, quantization: Quantization
) -> None:
    limit = _quantize.MAX_DIMENSIONS[quantization]
    if dimension <= limit:
        return
    what = "halfvec" if quantization == "halfvec" else "bit"
    fix = "HNSW(quantization='binary') (up to 64,000), or " if quantization == "halfvec" else ""
    raise SchemaError(
        f"cannot build a {quantization}-quantized hnsw index on table {table!r}: its "
        f"{vector_type} column has {dimension:,} dimensions and pgvector's HNSW indexes "
        f"{what} values of at most {limit:,} dimensions. To fix: {fix}reduce the dimensions "
        f"to at most {limit:,} (a smaller model, or the `dimensions` setting of models that "
        "can shorten their embeddings)."
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
    dimension: int | None = None,
) -> Index:
    """Render an index spec to a ``sqlalchemy.Index`` whose opclass matches the distance.

    With ``collection_id`` the index is partial, ``WHERE collection_id = '<uuid>'``:
    the predicate is rendered as a literal, which the planner needs to match it
    against a search's ``collection_id = $1``. A quantized spec indexes the
    expression of :func:`._quantize.expression` (``dimension`` is then required),
    with the operator class of :func:`._quantize.opclass`.
    """
    own = detached(table)
    key: Any = own.c.embedding
    opclass = strategy.opclass(vector_type)
    if spec.quantization is not None:
        if dimension is None:
            raise SchemaError("a quantized index needs the table's dimension")
        expression = _quantize.expression(spec.quantization, own.c.embedding, dimension)
        # postgresql_ops names an expression by its label
        key = expression.label("quantized")
        opclass = _quantize.opclass(spec.quantization, strategy)
    kwargs: dict[str, Any] = {
        "postgresql_using": spec.method,
        "postgresql_with": spec.with_options(row_count),
        "postgresql_ops": {key.name: opclass},
        "postgresql_concurrently": concurrently,
    }
    if collection_id is not None:
        kwargs["postgresql_where"] = own.c.collection_id == collection_id
    return Index(name, key, **kwargs)


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
#: a build in a transaction runs until done, whatever the session's statement_timeout
NO_TIMEOUT = select(func.set_config("statement_timeout", "0", True))
BACKEND_PID = select(func.pg_backend_pid())


@dataclass(frozen=True)
class Wanted:
    """What an index about to be created must look like, to compare with one that exists."""

    method: str
    opclass: str | None = None
    options: Mapping[str, int] | None = None
    collection_id: uuid.UUID | None = None
    quantization: Quantization | None = None


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
        and existing.quantization == wanted.quantization
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
    if opclass == _quantize.HAMMING_OPCLASS:
        return f"{opclass}, which serves only the hamming distance (<~>) on bit"
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
    if approx_rows <= UNINDEXED_ROWS or any(
        i.serves(needed, collection_id)
        or any(
            i.serves_quantized(kind, _quantize.opclass(kind, strategy), collection_id)
            for kind in _quantize.QUANTIZATIONS
        )
        for i in indexes
    ):
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
    """(phase, done, total, unit) of a :data:`PROGRESS` row.

    Partitions for the index of a partitioned table (one build per partition), else
    blocks if known, else tuples.
    """
    if row.partitions_total:
        return row.phase, int(row.partitions_done or 0), int(row.partitions_total), "partition"
    if row.blocks_total:
        return row.phase, int(row.blocks_done or 0), int(row.blocks_total), "block"
    if row.tuples_total:
        return row.phase, int(row.tuples_done or 0), int(row.tuples_total), "tuple"
    return row.phase, 0, None, "block"
