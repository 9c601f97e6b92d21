"""Maximal marginal relevance (MMR) over numpy float32 arrays; pure, no I/O.

MMR picks, one at a time, the candidate that is most relevant to the query while
least similar to what has already been picked::

    score(i) = lambda_mult * cos(query, c_i) - (1 - lambda_mult) * max_{j picked} cos(c_i, c_j)

The first pick is simply the most relevant candidate. Each later step costs one
matrix-vector product: the newly picked vector against every candidate, folded into a
running "max similarity to the selection" array, so the whole selection is O(k * n * d)
with no Python loop over the candidates.

The selection matches ``langchain_core.vectorstores.utils.maximal_marginal_relevance``
(ties go to the lowest index), but works in float32, treats zero vectors as having
similarity 0 to everything instead of producing NaN, and validates its arguments.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import InvalidInputError
from ._schema import decode_vectors

__all__ = ["maximal_marginal_relevance"]


def maximal_marginal_relevance(
    query: npt.ArrayLike,
    candidates: npt.ArrayLike,
    *,
    k: int = 4,
    lambda_mult: float = 0.5,
) -> list[int]:
    """Indices into ``candidates`` in the order MMR selects them (at most ``min(k, n)``).

    ``query`` is a vector of length ``d`` (or a ``(1, d)`` matrix); ``candidates`` is an
    ``(n, d)`` matrix. ``lambda_mult`` 1 ranks by relevance alone, 0 by diversity alone.
    Raises ``InvalidInputError`` (a ``ValueError``) for a ``lambda_mult`` outside [0, 1],
    a negative ``k``, shapes that disagree, or NaN/infinite values.
    """
    k = _check_k(k)
    lambda_mult = check_lambda(lambda_mult)

    # Values beyond float32's range become inf here and are rejected below, with
    # our message rather than numpy's overflow warning.
    with np.errstate(over="ignore"):
        q = _as_float32(query, "query")
        c = _as_float32(candidates, "candidates")
    if q.ndim == 2 and q.shape[0] == 1:
        q = q[0]
    if q.ndim != 1 or q.shape[0] == 0:
        raise InvalidInputError(
            f"MMR query must be a non-empty vector of shape (d,) or (1, d); got shape {q.shape}."
        )
    if c.size == 0:
        return []
    if c.ndim != 2:
        raise InvalidInputError(
            f"MMR candidates must be a matrix of shape (n, d); got shape {c.shape}. "
            "Wrap a single vector in a list."
        )
    if c.shape[1] != q.shape[0]:
        raise InvalidInputError(
            f"MMR dimension mismatch: the query has {q.shape[0]} dimensions but the "
            f"candidates have {c.shape[1]}. Embed them with the same model."
        )
    if not (np.isfinite(q).all() and np.isfinite(c).all()):
        raise InvalidInputError(
            "MMR inputs contain NaN or infinite values (or values too large for float32); "
            "check the embedding model's output."
        )

    n = c.shape[0]
    k = min(k, n)
    if k == 0:
        return []

    unit = _unit_rows(c)
    relevance = unit @ _unit_rows(q[np.newaxis, :])[0]  # (n,)
    # Weighted once; the per-step score is then one fused subtraction.
    weighted_relevance = np.float32(lambda_mult) * relevance
    redundancy_weight = np.float32(1.0 - lambda_mult)

    selected = [int(np.argmax(relevance))]  # argmax: the lowest index wins ties
    max_similarity = unit @ unit[selected[0]]
    taken = np.zeros(n, dtype=bool)
    taken[selected[0]] = True
    scores = np.empty(n, dtype=np.float32)
    while len(selected) < k:
        np.multiply(max_similarity, redundancy_weight, out=scores)
        np.subtract(weighted_relevance, scores, out=scores)
        scores[taken] = -np.inf
        best = int(np.argmax(scores))
        selected.append(best)
        taken[best] = True
        np.maximum(max_similarity, unit @ unit[best], out=max_similarity)
    return selected


def _unit_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length; zero rows stay zero (similarity 0, never NaN).

    Each row is first divided by its largest absolute value, so squaring cannot
    overflow (or underflow) float32 for very large (or tiny) components.
    """
    peak = np.max(np.abs(matrix), axis=1, keepdims=True)
    nonzero = peak > 0
    scaled = np.zeros_like(matrix)
    np.divide(matrix, peak, out=scaled, where=nonzero)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    np.divide(scaled, norms, out=scaled, where=nonzero)
    return scaled


def _as_float32(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"MMR {name} must be numeric vectors of equal length: {exc}"
        ) from exc


def _check_k(k: int) -> int:
    if isinstance(k, bool):
        raise InvalidInputError(f"MMR k must be an integer, not {k!r}.")
    try:
        value = operator.index(k)
    except TypeError:
        raise InvalidInputError(
            f"MMR k must be an integer, not {type(k).__name__} {k!r}."
        ) from None
    if value < 0:
        raise InvalidInputError(f"MMR k must be >= 0; got {value}.")
    return value


def check_lambda(lambda_mult: float) -> float:
    """``lambda_mult`` as a float in [0, 1], or ``InvalidInputError``."""
    if isinstance(lambda_mult, bool) or not isinstance(lambda_mult, numbers.Real):
        raise InvalidInputError(f"MMR lambda_mult must be a number, not {lambda_mult!r}.")
    value = float(lambda_mult)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(
            f"MMR lambda_mult must be between 0 and 1 (1 = relevance only, "
            f"0 = diversity only); got {lambda_mult!r}."
        )
    return value


def chosen(
    query: Sequence[float],
    rows: Sequence[Sequence[Any]],
    k: int,
    lambda_mult: float,
    vector_type: str,
) -> list[Sequence[Any]]:
    """The rows MMR selects, in its order, of search rows ``(id, content, metadata,
    distance, vector bytes)`` (the bytes are ``vector_send``'s, decoded here)."""
    if not rows:
        return []
    candidates = decode_vectors([row[4] for row in rows], vector_type)  # type: ignore[arg-type]
    picked = maximal_marginal_relevance(
        np.asarray(query, dtype=np.float32), candidates, k=k, lambda_mult=lambda_mult
    )
    return [rows[i] for i in picked]
