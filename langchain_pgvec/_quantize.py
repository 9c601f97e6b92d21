"""Quantized HNSW indexes: the expressions an index and a search share; pure.

A quantized index is an expression index over the full-precision ``embedding``
column: ``embedding::halfvec(n)`` (half precision, about half the size) or
``binary_quantize(embedding)::bit(n)`` (one bit per dimension, about 1/32). A search
through one asks it for ``overfetch * k`` candidates, ordered by the quantized
distance, and ranks those again by the exact distance on the stored vectors.

PostgreSQL uses an expression index only for an ``ORDER BY`` of the very same
expression, so both the index (``_index_specs``) and the search (``_sql``) build it
here, from the same function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pgvector.sqlalchemy import BIT, HALFVEC
from sqlalchemy import cast, func
from sqlalchemy.sql import ColumnElement

from ._errors import InvalidInputError
from ._schema import DistanceStrategy

Quantization = Literal["halfvec", "binary"]
QUANTIZATIONS: tuple[Quantization, ...] = ("halfvec", "binary")

MAX_DIMENSIONS: Mapping[Quantization, int] = {"halfvec": 4000, "binary": 64000}
"""The most dimensions pgvector's HNSW indexes take of each quantized type."""

DEFAULT_OVERFETCH: Mapping[Quantization, int] = {"halfvec": 2, "binary": 10}
"""Candidates asked of a quantized index per result, when ``overfetch`` is not set."""

MIN_CANDIDATES: Mapping[Quantization, int] = {"halfvec": 0, "binary": 100}
"""The fewest candidates asked of a quantized index when ``overfetch`` is not set.

The hamming distance of bits ranks a query's true neighbours among its first hundred
or so candidates whatever ``k`` is: 10 per result would be 40 for LangChain's default
``k=4``, and miss a quarter of them on clustered 384-dimension vectors.
"""

FILTERED = 2
"""How many times the default candidates a search on the iterative route asks for.

A filter (or a collection that is a minority of a shared index) leaves the nearest
matching rows further from the query, where a quantized distance tells them apart
less well: binary with 10 per result found 88% of them under a 2% filter, with 20 97%.
"""

HAMMING_OPCLASS = "bit_hamming_ops"

#: the key of an expression index as ``pg_get_indexdef(oid, 1, true)`` prints it
_PRINTED: Mapping[Quantization, re.Pattern[str]] = {
    "halfvec": re.compile(r"^\(*embedding\)*::halfvec\((\d+)\)\)*$"),
    "binary": re.compile(r"^\(*binary_quantize\(embedding\)\)*::bit\((\d+)\)\)*$"),
}


def check(value: object) -> Quantization | None:
    """Return ``value`` if it is a quantization (or None), else raise ``InvalidInputError``."""
    if value is None or value in QUANTIZATIONS:
        return value
    raise InvalidInputError(
        f"HNSW quantization must be None (full precision), 'halfvec' or 'binary', got {value!r}"
    )


def expression(kind: Quantization, vector: Any, dimension: int) -> ColumnElement[Any]:
    """The quantized form of ``vector`` (the column, or the query vector typed as one).

    ``CAST(vector AS HALFVEC(n))`` or ``CAST(binary_quantize(vector) AS BIT(n))``.
    """
    if kind == "halfvec":
        return cast(vector, HALFVEC(dimension))
    return cast(func.binary_quantize(vector), BIT(dimension))


def opclass(kind: Quantization, strategy: DistanceStrategy) -> str:
    """The operator class of a quantized index for the store's distance.

    ``halfvec_<distance>_ops``, or ``bit_hamming_ops`` for binary (whatever the distance:
    the exact distance ranks its candidates).
    """
    return strategy.opclass("halfvec") if kind == "halfvec" else HAMMING_OPCLASS


def distance(
    kind: Quantization, strategy: DistanceStrategy, column: Any, query: Any, dimension: int
) -> ColumnElement[float]:
    """The distance the quantized index orders by, between the column and the query.

    The store's own operator on halfvecs, or the hamming distance (``<~>``) of bits.
    """
    left = expression(kind, column, dimension)
    right = expression(kind, query, dimension)
    if kind == "halfvec":
        return strategy.distance(left, right)
    hamming: ColumnElement[float] = left.hamming_distance(right)
    return hamming


def parse(key: str) -> tuple[Quantization, int] | None:
    """(quantization, dimension) of an index key printed by PostgreSQL; None otherwise."""
    for kind, pattern in _PRINTED.items():
        match = pattern.match(key)
        if match:
            return kind, int(match.group(1))
    return None


def candidates(kind: Quantization, k: int, overfetch: int | None, iterative: bool) -> int:
    """The candidates to ask of a ``kind`` index for ``k`` results.

    ``overfetch * k`` when the setting is given. Else the default overfetch times ``k``,
    and at least :data:`MIN_CANDIDATES`; both times :data:`FILTERED` on the iterative
    route.
    """
    if overfetch is not None:
        return overfetch * k
    factor = FILTERED if iterative else 1
    return factor * max(DEFAULT_OVERFETCH[kind] * k, MIN_CANDIDATES[kind])
