"""Distance strategies and vector index specifications.

A :class:`DistanceStrategy` member carries everything that must agree between a
query and an index: the SQL operator, the comparator on the column type, the index
operator class (per vector type) and the mapping of a distance to a relevance score.
Index specs are small frozen dataclasses that render to ``sqlalchemy.Index``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Index
from sqlalchemy.sql.elements import ColumnElement

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

    def opclass(self, vector_type: VectorType = "vector") -> str:
        """The index operator class that serves this distance, e.g. ``vector_cosine_ops``."""
        return f"{vector_type}_{_OPCLASS_SUFFIX[self]}"

    @property
    def relevance(self) -> Callable[[float], float]:
        """Map a distance to a relevance score in [0, 1], higher is closer."""
        return _RELEVANCE[self]

    def similarity(self, distance: float) -> float:
        """The raw similarity that a distance stands for (cosine similarity, -L2, IP)."""
        if self is DistanceStrategy.INNER_PRODUCT:
            return -distance
        if self is DistanceStrategy.COSINE:
            return 1.0 - distance
        return -distance


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
        if not 2 <= self.m <= 100:
            raise ValueError(f"HNSW m must be between 2 and 100, got {self.m}")
        if not 4 <= self.ef_construction <= 1000 or self.ef_construction < 2 * self.m:
            raise ValueError(
                f"HNSW ef_construction must be in [4, 1000] and at least 2*m ({2 * self.m}), "
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
        if self.lists is not None and not 1 <= self.lists <= 32768:
            raise ValueError(f"IVFFlat lists must be between 1 and 32768, got {self.lists}")

    def with_options(self, row_count: int) -> dict[str, int]:
        """The ``WITH (...)`` storage parameters, ``lists`` derived from ``row_count``."""
        return {"lists": self.lists or default_lists(row_count)}


def default_lists(row_count: int) -> int:
    """pgvector's recommended number of IVFFlat lists for a table of ``row_count`` rows."""
    if row_count <= 1_000_000:
        return max(1, row_count // 1000)
    return max(1, int(math.sqrt(row_count)))


IndexSpec = HNSW | IVFFlat


def vector_index(
    name: str,
    column: Any,
    spec: IndexSpec,
    strategy: DistanceStrategy,
    vector_type: VectorType,
    *,
    row_count: int = 0,
    where: ColumnElement[bool] | None = None,
) -> Index:
    """Render an index spec to a ``sqlalchemy.Index`` whose opclass matches the distance."""
    kwargs: dict[str, Any] = {
        "postgresql_using": spec.method,
        "postgresql_with": spec.with_options(row_count),
        "postgresql_ops": {column.key: strategy.opclass(vector_type)},
    }
    if where is not None:
        kwargs["postgresql_where"] = where
    return Index(name, column, **kwargs)
