"""The search planner's decisions, without a database: routes, probes, settings, caches,
and the steps it yields for canned answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from langchain_pgvec import _search
from langchain_pgvec._bootstrap import State
from langchain_pgvec._catalog import IndexInfo
from langchain_pgvec._driver import Step
from langchain_pgvec._schema import DistanceStrategy, TableSpec, mapped_tables
from langchain_pgvec._search import Cache, Facts, Planner, make_plan, route
from langchain_pgvec._tuning import SearchSettings, default_probes

DIM = 4
CID = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")
TABLES = mapped_tables(
    TableSpec(embedding_table="plan_e", collection_table="plan_c", dimension=DIM)
)


def index(
    name: str = "ix",
    method: str = "hnsw",
    opclass: str = "vector_cosine_ops",
    collection: uuid.UUID | None = None,
    options: tuple[str, ...] = ("m=16", "ef_construction=64"),
) -> IndexInfo:
    predicate = None if collection is None else f"(collection_id = '{collection}'::uuid)"
    return IndexInfo(
        name=name,
        method=method,
        columns=("embedding",),
        opclass=opclass,
        size_bytes=1,
        definition="CREATE INDEX ...",
        partial=predicate is not None,
        predicate=predicate,
        options=options,
    )


def state(*indexes: IndexInfo, version: str = "0.8.5") -> State:
    return State(tables=TABLES, collection_id=CID, extension_version=version, indexes=indexes)


# ---------------------------------------------------------------------- routes

SHARED = index()
OWN = index("own", collection=CID)


@pytest.mark.parametrize(
    ("index_", "filtered", "facts", "expected"),
    [
        (None, False, None, "exact"),  # nothing to scan: rank the rows
        (None, True, None, "exact"),
        (OWN, False, None, "index"),  # its own partial index, as it is
        (SHARED, False, Facts(90_000, "about", 0.9), "index"),  # nearly all of it
        (SHARED, False, Facts(9_000, "about", 0.09), "iterative"),  # a minority
        (SHARED, False, Facts(300, "exactly", 0.003), "exact"),  # few rows
        (SHARED, True, Facts(90_000, "about", 0.9), "iterative"),  # filtered: always
        (SHARED, True, Facts(40, "exactly", 0.9), "exact"),
        (OWN, True, Facts(40, "exactly", 1.0), "exact"),
        (OWN, True, Facts(40_000, "about", 1.0), "iterative"),
    ],
)
def test_routes(
    index_: IndexInfo | None, filtered: bool, facts: Facts | None, expected: str
) -> None:
    assert route(index_, filtered, facts, 5_000) == expected


def test_threshold_zero_never_takes_the_exact_route_when_an_index_serves() -> None:
    assert route(SHARED, True, Facts(3, "exactly", 0.0), 0) == "iterative"
    assert route(None, True, None, 0) == "exact"


def test_facts_decide_only_what_they_can() -> None:
    assert Facts(100, "exactly", 0.1).few(100) is True
    assert Facts(101, "exactly", 0.1).few(100) is False
    # a count that stopped at its cap of 1,001 says "more than 1,000"
    assert Facts(1_001, "at least", 0.1).few(1_000) is False
    assert Facts(1_001, "at least", 0.1).few(5_000) is None
    # an estimate decides only far from the threshold
    assert Facts(20_001, "about", 0.1).few(5_000) is False
    assert Facts(20_000, "about", 0.1).few(5_000) is None
    assert Facts(10, "about", 0.1).few(5_000) is None


def test_counting_is_needed_only_where_it_decides() -> None:
    close = Facts(4_000, "about", 0.04)
    assert _search.needs_count(SHARED, True, close, 5_000)
    assert not _search.needs_count(SHARED, True, close, 0)  # no exact route at all
    # nearly all of a shared index, unfiltered: the plain scan, whatever the count
    assert not _search.needs_count(SHARED, False, Facts(4_000, "about", 0.95), 5_000)
    assert not _search.needs_count(SHARED, True, Facts(90_000, "about", 0.9), 5_000)


def test_the_serving_index_is_the_collections_own_first() -> None:
    strategy = DistanceStrategy.COSINE
    assert _search.serving(state(), strategy) is None
    assert _search.serving(state(SHARED), strategy) == SHARED
    assert _search.serving(state(SHARED, OWN), strategy) == OWN
    # another collection's partial index, or another opclass, serves nothing here
    foreign = index("foreign", collection=OTHER)
    euclid = index("l2", opclass="vector_l2_ops")
    assert _search.serving(state(foreign, euclid), strategy) is None
    assert _search.serving(state(euclid), DistanceStrategy.EUCLIDEAN) == euclid
    # an IVFFlat index serves too
    ivf = index("ivf", method="ivfflat", options=("lists=100",))
    assert _search.serving(state(ivf), strategy) == ivf


def test_needs_probe() -> None:
    assert not _search.needs_probe(None, True)
    assert not _search.needs_probe(OWN, False)
    assert _search.needs_probe(OWN, True)
    assert _search.needs_probe(SHARED, False)


# ---------------------------------------------------------------------- probes


def plan_json(matching: int, total: int) -> list[Any]:
    children = [{"Node Type": "Index Only Scan", "Plan Rows": matching}, {"Plan Rows": total}]
    return [([{"Plan": {"Node Type": "Append", "Plans": children}}],)]


def test_a_probe_gives_the_matching_rows_and_their_share() -> None:
    facts = _search.learnt(plan_json(2_500, 100_000))
    assert facts == Facts(2_500, "about", 0.025)
    assert _search.estimates(
        [('[{"Plan": {"Plans": [{"Plan Rows": 3}, {"Plan Rows": 6}]}}]',)]
    ) == (
        3,
        6,
    )


def test_an_unreadable_probe_asks_for_a_count() -> None:
    facts = _search.learnt([("not a plan",)])
    assert facts.kind == "about" and facts.few(5_000) is None and facts.share == 0.0
    assert _search.learnt([]).few(5_000) is None


def test_a_capped_count() -> None:
    estimate = Facts(3_000, "about", 0.03)
    assert _search.counted(estimate, [(2_999,)], 5_001) == Facts(2_999, "exactly", 0.03)
    assert _search.counted(estimate, [(5_001,)], 5_001) == Facts(5_001, "at least", 0.03)


# ---------------------------------------------------------------------- plans


def test_the_exact_route_sends_only_a_statement_timeout() -> None:
    plain = make_plan("exact", 10, SearchSettings(ef_search=200), state(SHARED))
    assert plain.gucs == () and plain.fetch == 10 and not plain.resort
    timed = make_plan("exact", 10, SearchSettings(statement_timeout_ms=500), state(SHARED))
    assert timed.gucs == (("statement_timeout", "500"),)


def test_the_index_route_sends_nothing_for_a_plain_top_k() -> None:
    plan = make_plan("index", 10, SearchSettings(), state(SHARED), SHARED)
    assert plan == _search.Plan("index", 10, False, ())
    wide = make_plan("index", 100, SearchSettings(), state(SHARED), SHARED)
    assert wide.gucs == (("hnsw.ef_search", "100"),)


def test_the_iterative_route_overfetches_and_sorts_again() -> None:
    plan = make_plan("iterative", 10, SearchSettings(), state(SHARED), SHARED, 0.1)
    gucs = dict(plan.gucs)
    assert plan.fetch == 20 and plan.resort
    assert gucs["hnsw.iterative_scan"] == "relaxed_order"
    assert gucs["ivfflat.iterative_scan"] == "relaxed_order"
    strict = make_plan(
        "iterative", 10, SearchSettings(iterative_scan="strict_order"), state(SHARED), SHARED
    )
    assert not strict.resort and dict(strict.gucs)["hnsw.iterative_scan"] == "strict_order"


def test_without_iterative_scans_the_index_is_still_overfetched() -> None:
    old = state(SHARED, version="0.6.2")
    plan = make_plan("iterative", 10, SearchSettings(), old, SHARED)
    assert plan.fetch == 20 and not plan.resort
    assert "hnsw.iterative_scan" not in dict(plan.gucs)


def test_ivfflat_probes_follow_the_lists_and_the_share() -> None:
    ivf = index("ivf", method="ivfflat", options=("lists=100",))
    assert (
        dict(make_plan("index", 10, SearchSettings(), state(ivf), ivf).gucs)["ivfflat.probes"]
        == "20"
    )
    minority = make_plan("iterative", 10, SearchSettings(), state(ivf), ivf, 0.25)
    assert dict(minority.gucs)["ivfflat.probes"] == "40"
    given = make_plan("iterative", 10, SearchSettings(probes=3), state(ivf), ivf, 0.25)
    assert dict(given.gucs)["ivfflat.probes"] == "3"
    assert default_probes(10) == 7 and default_probes(10, 0.0) == 10 and default_probes(1) == 1


# ---------------------------------------------------------------------- caches


def test_cache_is_bounded_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("langchain_pgvec._search.time.monotonic", lambda: now[0])
    cache: Cache[str, int] = Cache(size=2, ttl=60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1 and len(cache) == 2
    cache.put("c", 3)  # full: emptied first
    assert len(cache) == 1 and cache.get("a") is None and cache.get("c") == 3
    now[0] += 61
    assert cache.get("c") is None and len(cache) == 0
    forever: Cache[str, int] = Cache(size=2)
    forever.put("x", 1)
    now[0] += 10_000
    assert forever.get("x") == 1


# ---------------------------------------------------------------------- steps

Answer = Callable[[Step], list[Any]]


def drive(planner: Planner, request: _search.Request, answer: Answer) -> tuple[list[Step], Any]:
    """Run the planner's steps against ``answer``; the steps seen and the result."""
    seen: list[Step] = []
    steps = planner.steps(request)
    step = next(steps)
    while True:
        seen.append(step)
        try:
            step = steps.send(answer(step))
        except StopIteration as done:
            return seen, done.value


def rows(n: int) -> list[Any]:
    return [(f"d{i}", "", {}, float(i)) for i in range(n)]


def canned(*, matching: int, total: int, count: int | None = None, found: int = 10) -> Answer:
    def answer(step: Step) -> list[Any]:
        sql = step.statement.sql
        if sql.startswith("EXPLAIN"):
            return plan_json(matching, total)
        if "count(*)" in sql:
            assert count is not None, "a count nobody expected"
            return [(count,)]
        exact = "cosine_distance(" in sql
        return rows(10 if exact else found)

    return answer


def planner_and_request(
    st: State, filter: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[Planner, _search.Request]:
    planner = Planner(PGDialect_psycopg(), DistanceStrategy.COSINE)  # type: ignore[no-untyped-call]
    settings = SearchSettings()
    vector = np.ones(DIM, np.float32)
    return planner, planner.request(st, vector, 10, filter, kwargs, settings)


def kinds(seen: list[Step]) -> list[str]:
    def kind(step: Step) -> str:
        sql = step.statement.sql
        if sql.startswith("EXPLAIN"):
            return "probe"
        if "count(*)" in sql:
            return "count"
        if "cosine_distance(" in sql:
            return "exact"
        return "iterative" if "nearest" in sql else "index"

    return [kind(step) for step in seen]


def test_no_index_means_one_exact_statement() -> None:
    planner, request = planner_and_request(state())
    seen, result = drive(planner, request, canned(matching=0, total=0))
    assert kinds(seen) == ["exact"] and len(result) == 10
    assert seen[0].settings is None and seen[0].source is not None


def test_a_collection_that_is_all_of_the_index_probes_once_then_scans_plainly() -> None:
    planner, request = planner_and_request(state(SHARED))
    answer = canned(matching=100_000, total=100_000)
    seen, _ = drive(planner, request, answer)
    assert kinds(seen) == ["probe", "index"] and seen[1].settings is None
    again, _ = drive(planner, request, answer)  # remembered: the search alone
    assert kinds(again) == ["index"]
    planner.forget()  # the store wrote: probe again
    assert kinds(drive(planner, request, answer)[0]) == ["probe", "index"]


def test_a_minority_collection_is_counted_then_scanned_iteratively() -> None:
    planner, request = planner_and_request(state(SHARED))
    seen, _ = drive(planner, request, canned(matching=9_000, total=100_000, count=5_001))
    assert kinds(seen) == ["probe", "count", "iterative"]
    assert seen[-1].settings is not None  # the iterative scan's settings


def test_a_small_collection_is_ranked_exactly() -> None:
    planner, request = planner_and_request(state(SHARED))
    seen, _ = drive(planner, request, canned(matching=800, total=100_000, count=812))
    assert kinds(seen) == ["probe", "count", "exact"]


def test_a_short_index_answer_is_completed_exactly() -> None:
    planner, request = planner_and_request(state(SHARED), {"g": 1})
    answer = canned(matching=50_000, total=100_000, found=3)
    seen, result = drive(planner, request, answer)
    assert kinds(seen) == ["probe", "iterative", "exact"] and len(result) == 10
    # the plain route too, remembered or not
    planner, request = planner_and_request(state(SHARED))
    answer = canned(matching=100_000, total=100_000, found=7)
    assert kinds(drive(planner, request, answer)[0]) == ["probe", "index", "exact"]
    assert kinds(drive(planner, request, answer)[0]) == ["index", "exact"]


def test_a_filter_that_is_not_json_is_probed_every_time() -> None:
    planner, request = planner_and_request(state(SHARED), {"g": 1})
    request = _search.Request(  # as a filter JSON cannot hold would be: no cache key
        request.state, request.vector, 10, request.settings, request.where, None, False, False
    )
    answer = canned(matching=50_000, total=100_000)
    assert kinds(drive(planner, request, answer)[0]) == ["probe", "iterative"]
    assert kinds(drive(planner, request, answer)[0]) == ["probe", "iterative"]


def test_explain_steps_stop_at_the_search() -> None:
    planner, request = planner_and_request(state(SHARED), {"g": 1})
    steps = planner.explain_steps(request, analyze=False)
    step = next(steps)
    assert step.statement.sql.startswith("EXPLAIN (FORMAT JSON)")
    step = steps.send(plan_json(50_000, 100_000))
    assert step.statement.sql.startswith("EXPLAIN SELECT") and step.settings is not None
    with pytest.raises(StopIteration) as done:
        steps.send([("Limit ...",)])
    assert done.value.value == [("Limit ...",)]
