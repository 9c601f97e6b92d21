"""Maximal marginal relevance: agreement with langchain-core, edge cases, validation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from langchain_core.vectorstores.utils import (
    maximal_marginal_relevance as core_mmr,
)

from langchain_pgvec._errors import InvalidInputError
from langchain_pgvec._mmr import maximal_marginal_relevance as mmr


def _mmr_scores64(
    query: npt.NDArray[np.float64],
    candidates: npt.NDArray[np.float64],
    selected: list[int],
    lambda_mult: float,
) -> npt.NDArray[np.float64]:
    """The MMR scores of the next step in float64, given the picks so far."""
    unit = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    relevance: npt.NDArray[np.float64] = unit @ (query / np.linalg.norm(query))
    if not selected:
        return relevance
    redundancy = (unit @ unit[selected].T).max(axis=1)
    scores: npt.NDArray[np.float64] = lambda_mult * relevance - (1 - lambda_mult) * redundancy
    return scores


def _assert_same_up_to_near_ties(
    ours: list[int],
    theirs: list[int],
    query: npt.NDArray[np.float64],
    candidates: npt.NDArray[np.float64],
    lambda_mult: float,
) -> None:
    """Equal selections, except where float32 and float64 rounding split a near tie."""
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            scores = _mmr_scores64(query, candidates, ours[:step], lambda_mult)
            assert abs(scores[a] - scores[b]) <= 1e-5, (step, ours, theirs)
            return  # the selections legitimately part ways from here


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("lambda_mult", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_matches_langchain_core_on_random_data(seed: int, lambda_mult: float) -> None:
    rng = np.random.default_rng(seed)
    n, dim = int(rng.integers(1, 60)), int(rng.integers(2, 48))
    candidates = rng.standard_normal((n, dim)).astype(np.float32)
    query = rng.standard_normal(dim).astype(np.float32)
    k = int(rng.integers(1, n + 3))

    ours = mmr(query, candidates, k=k, lambda_mult=lambda_mult)
    theirs = core_mmr(
        query.astype(np.float64), candidates.astype(np.float64).tolist(), lambda_mult, k
    )
    assert ours == theirs


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 25),
    dim=st.integers(1, 12),
    k=st.integers(0, 30),
    lambda_mult=st.floats(0, 1),
)
def test_matches_langchain_core_property(
    data: st.DataObject, n: int, dim: int, k: int, lambda_mult: float
) -> None:
    elements = st.floats(-10, 10, allow_subnormal=False, width=32)
    candidates = data.draw(hnp.arrays(np.float32, (n, dim), elements=elements))
    query = data.draw(hnp.arrays(np.float32, (dim,), elements=elements))
    # langchain-core cannot handle zero vectors (NaN similarities); that case is ours alone.
    assume(np.linalg.norm(query) > 1e-3)
    assume(bool((np.linalg.norm(candidates, axis=1) > 1e-3).all()))
    q64, c64 = query.astype(np.float64), candidates.astype(np.float64)

    ours = mmr(query, candidates, k=k, lambda_mult=lambda_mult)
    theirs = core_mmr(q64, c64.tolist(), lambda_mult, k)
    _assert_same_up_to_near_ties(ours, theirs, q64, c64, lambda_mult)
    assert len(ours) == min(k, n)
    assert len(set(ours)) == len(ours)


def test_lambda_one_is_pure_relevance_order() -> None:
    rng = np.random.default_rng(7)
    candidates = rng.standard_normal((40, 16))
    query = rng.standard_normal(16)
    relevance = _mmr_scores64(query, candidates, [], 1.0)
    expected = np.argsort(-relevance, kind="stable").tolist()

    assert mmr(query, candidates, k=40, lambda_mult=1.0) == expected
    assert mmr(query, candidates, k=5, lambda_mult=1.0) == expected[:5]


def test_lambda_zero_picks_most_relevant_then_most_dissimilar() -> None:
    e0, e1 = np.eye(2)
    candidates = [e0, e0 + 0.1 * e1, e1, -e0]
    # First the most relevant (e0); then the least similar to it, however irrelevant
    # (-e0); then e1, orthogonal to both; the near-duplicate of e0 comes last.
    assert mmr(e0, candidates, k=4, lambda_mult=0.0) == [0, 3, 2, 1]


def test_duplicates_are_skipped_for_diverse_items() -> None:
    query = np.array([1.0, 1.0, 0.0])
    a = np.array([1.0, 0.3, 0.0])
    b = np.array([0.2, 1.0, 0.0])
    candidates = [a, a, a * 2.0, b]  # a, an exact duplicate, a scaled duplicate, b
    assert mmr(query, candidates, k=2) == [0, 3]
    # Pure relevance keeps the duplicates (ties broken by lowest index).
    assert mmr(query, candidates, k=2, lambda_mult=1.0) == [0, 1]


def test_ties_go_to_the_lowest_index() -> None:
    candidates = np.ones((5, 3), dtype=np.float32)
    assert mmr(np.ones(3), candidates, k=5) == [0, 1, 2, 3, 4]


def test_zero_candidate_vectors_have_similarity_zero() -> None:
    e0 = np.array([1.0, 0.0])
    candidates = [[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]
    # After e0: the zero vector scores 0.5*0 - 0.5*0 = 0 and -e0 scores
    # 0.5*(-1) - 0.5*(-1) = 0; the tie goes to the zero vector's lower index.
    assert mmr(e0, candidates, k=3) == [1, 0, 2]


def test_zero_query_gives_a_deterministic_order_without_nan() -> None:
    e0, e1 = np.eye(2)
    candidates = [e0, e0, e1]
    # Every relevance is 0, so diversity alone decides after index 0.
    assert mmr([0.0, 0.0], candidates, k=3) == [0, 2, 1]
    assert mmr([0.0, 0.0], np.zeros((4, 2)), k=4) == [0, 1, 2, 3]


def test_k_larger_than_n_returns_every_candidate_once() -> None:
    rng = np.random.default_rng(3)
    candidates = rng.standard_normal((6, 5))
    result = mmr(rng.standard_normal(5), candidates, k=50)
    assert sorted(result) == list(range(6))


@pytest.mark.parametrize("candidates", [[], np.empty((0, 3)), np.empty((0,))])
def test_empty_candidates(candidates: npt.ArrayLike) -> None:
    assert mmr([1.0, 2.0, 3.0], candidates, k=4) == []


def test_k_zero() -> None:
    assert mmr([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], k=0) == []


def test_float64_input_agrees_with_float32_and_returns_python_ints() -> None:
    rng = np.random.default_rng(11)
    candidates = rng.standard_normal((30, 24))
    query = rng.standard_normal(24)
    assert candidates.dtype == np.float64

    result = mmr(query, candidates, k=10, lambda_mult=0.3)
    assert result == mmr(
        query.astype(np.float32), candidates.astype(np.float32), k=10, lambda_mult=0.3
    )
    assert all(type(i) is int for i in result)
    # Scaling does not change cosine similarity, even near float32's limits.
    assert mmr(query * 1e30, candidates * 1e30, k=10, lambda_mult=0.3) == result
    assert mmr(query * 1e-30, candidates * 1e-30, k=10, lambda_mult=0.3) == result


def test_query_may_be_a_single_row_matrix() -> None:
    rng = np.random.default_rng(5)
    candidates = rng.standard_normal((8, 4))
    query = rng.standard_normal(4)
    assert mmr(query[np.newaxis, :], candidates, k=3) == mmr(query, candidates, k=3)


@pytest.mark.parametrize("lambda_mult", [-0.01, 1.01, float("nan"), float("inf")])
def test_rejects_lambda_outside_unit_interval(lambda_mult: float) -> None:
    with pytest.raises(InvalidInputError, match="lambda_mult must be between 0 and 1"):
        mmr([1.0], [[1.0]], lambda_mult=lambda_mult)


def test_rejects_negative_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 0"):
        mmr([1.0], [[1.0]], k=-1)


@pytest.mark.parametrize("k", [1.5, "3", True])
def test_rejects_non_integer_k(k: object) -> None:
    with pytest.raises(InvalidInputError, match="k must be an integer"):
        mmr([1.0], [[1.0]], k=k)  # type: ignore[arg-type]


def test_rejects_non_numeric_lambda() -> None:
    with pytest.raises(InvalidInputError, match="lambda_mult must be a number"):
        mmr([1.0], [[1.0]], lambda_mult="0.5")  # type: ignore[arg-type]


def test_accepts_numpy_scalars_for_k_and_lambda() -> None:
    k, lambda_mult = np.int64(1), np.float32(0.5)
    assert mmr([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], k=k, lambda_mult=lambda_mult) == [0]


def test_rejects_dimension_mismatch() -> None:
    with pytest.raises(InvalidInputError, match="query has 3 dimensions but the candidates have 2"):
        mmr([1.0, 2.0, 3.0], [[1.0, 2.0]])


@pytest.mark.parametrize(
    ("query", "candidates", "message"),
    [
        ([1.0, 2.0], [1.0, 2.0], r"candidates must be a matrix of shape \(n, d\)"),
        ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0]], r"query must be a non-empty vector"),
        ([], [[1.0]], r"query must be a non-empty vector"),
        ([1.0, 2.0], [[1.0, 2.0], [1.0]], "candidates must be numeric vectors"),
        ([1.0, 2.0], [["a", "b"]], "candidates must be numeric vectors"),
        ([1.0, float("nan")], [[1.0, 2.0]], "NaN or infinite"),
        ([1.0, 2.0], [[1.0, float("inf")]], "NaN or infinite"),
        ([1.0, 2.0], np.array([[1e300, 1.0]]), "too large for float32"),
    ],
)
def test_rejects_malformed_vectors(
    query: npt.ArrayLike, candidates: npt.ArrayLike, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        mmr(query, candidates)
