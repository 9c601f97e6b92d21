"""Search settings: their checks, merging, per-call keywords, and the set_config
settings each route sends."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from langchain_pgvec import _tuning
from langchain_pgvec._errors import InvalidInputError
from langchain_pgvec._tuning import (
    PGVECTOR_DEFAULTS,
    SearchSettings,
    changes,
    default_probes,
    exact_below,
    fetch_size,
    from_kwargs,
    resolve,
    set_local,
    timeout,
)
from langchain_pgvec._validate import MAX_ROWS

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
INT32 = 2**31 - 1


def settings_with(field: str, value: object) -> SearchSettings:
    fields: dict[str, Any] = {field: value}
    return SearchSettings(**fields)


# ---------------------------------------------------------------------- validation

BOUNDS = [
    ("ef_search", "ef_search", 1, 1000),
    ("probes", "probes", 1, 32768),
    ("max_scan_tuples", "max_scan_tuples", 1, INT32),
    ("max_probes", "max_probes", 1, 32768),
    ("statement_timeout_ms", "statement_timeout_ms", 1, INT32),
    ("overfetch", "overfetch", 1, 100),
    ("exact_below", "exact_below (0: never)", 0, MAX_ROWS),
]


@pytest.mark.parametrize(("field", "label", "low", "high"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_every_field_accepts_its_bounds(field: str, label: str, low: int, high: int) -> None:
    assert getattr(settings_with(field, low), field) == low
    assert getattr(settings_with(field, high), field) == high


@pytest.mark.parametrize(("field", "label", "low", "high"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_every_field_rejects_what_is_out_of_bounds(
    field: str, label: str, low: int, high: int
) -> None:
    for value in (low - 1, high + 1, True, 2.0, "10"):
        with pytest.raises(InvalidInputError) as error:
            settings_with(field, value)
        assert str(error.value) == (
            f"{label} must be an integer from {low:,} to {high:,}, got {value!r}"
        )


def test_the_messages_read_well() -> None:
    with pytest.raises(InvalidInputError, match=r"^ef_search must be an integer from 1 to 1,000"):
        SearchSettings(ef_search=1001)
    with pytest.raises(InvalidInputError, match=r"from 1 to 2,147,483,647, got -5$"):
        SearchSettings(statement_timeout_ms=-5)


@pytest.mark.parametrize("mode", ["off", "relaxed_order", "strict_order"])
def test_the_iterative_scan_modes(mode: Any) -> None:
    assert SearchSettings(iterative_scan=mode).iterative_scan == mode


@pytest.mark.parametrize("mode", ["on", "relaxed", "", "RELAXED_ORDER", 1])
def test_an_unknown_iterative_scan_mode(mode: Any) -> None:
    with pytest.raises(InvalidInputError) as error:
        SearchSettings(iterative_scan=mode)
    assert str(error.value) == (
        f"iterative_scan must be one of off, relaxed_order, strict_order, got {mode!r}"
    )


def test_settings_are_frozen_and_all_none_by_default() -> None:
    settings = SearchSettings()
    assert all(getattr(settings, f.name) is None for f in dataclasses.fields(settings))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.ef_search = 10  # type: ignore[misc]


def test_an_invalid_setting_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        SearchSettings(overfetch=0)


# ---------------------------------------------------------------------- merged, from_kwargs


def test_merged_replaces_what_the_override_sets() -> None:
    base = SearchSettings(ef_search=100, probes=5, statement_timeout_ms=1_000)
    assert base.merged(None) is base
    assert base.merged(SearchSettings()) == base
    merged = base.merged(SearchSettings(probes=9, overfetch=3))
    assert merged == SearchSettings(
        ef_search=100, probes=9, statement_timeout_ms=1_000, overfetch=3
    )
    assert base == SearchSettings(ef_search=100, probes=5, statement_timeout_ms=1_000)
    # 0 is a value, not "unset"
    assert SearchSettings(exact_below=5).merged(SearchSettings(exact_below=0)).exact_below == 0


def test_from_kwargs_without_keywords() -> None:
    assert from_kwargs({}) is None
    other = {"fetch_k": 20, "lambda_mult": 0.5}
    assert from_kwargs(other) is None
    assert other == {"fetch_k": 20, "lambda_mult": 0.5}  # not ours: left alone


def test_from_kwargs_pops_the_fields_it_knows() -> None:
    kwargs: dict[str, Any] = {"ef_search": 80, "statement_timeout_ms": 500, "fetch_k": 20}
    assert from_kwargs(kwargs) == SearchSettings(ef_search=80, statement_timeout_ms=500)
    assert kwargs == {"fetch_k": 20}


def test_from_kwargs_takes_a_settings_object_and_fields_over_it() -> None:
    explicit = SearchSettings(ef_search=80, probes=4)
    kwargs: dict[str, Any] = {"search_settings": explicit, "other": 1}
    assert from_kwargs(kwargs) is explicit
    assert kwargs == {"other": 1}
    kwargs = {"search_settings": explicit, "probes": 7, "iterative_scan": "strict_order"}
    assert from_kwargs(kwargs) == SearchSettings(
        ef_search=80, probes=7, iterative_scan="strict_order"
    )
    assert kwargs == {}
    assert from_kwargs({"search_settings": None}) is None


def test_from_kwargs_checks_what_it_is_given() -> None:
    with pytest.raises(
        InvalidInputError, match="search_settings must be a SearchSettings, got dict"
    ):
        from_kwargs({"search_settings": {"ef_search": 10}})
    with pytest.raises(InvalidInputError, match="ef_search must be an integer"):
        from_kwargs({"ef_search": 0})


# ---------------------------------------------------------------------- sizes


def test_exact_below_and_fetch_size() -> None:
    assert exact_below(SearchSettings()) == _tuning.DEFAULT_EXACT_BELOW == 5_000
    assert exact_below(SearchSettings(exact_below=0)) == 0
    assert exact_below(SearchSettings(exact_below=123)) == 123
    assert fetch_size(SearchSettings(overfetch=5), 10, filtered=False) == 10
    assert fetch_size(SearchSettings(), 10, filtered=True) == 20
    assert fetch_size(SearchSettings(overfetch=5), 10, filtered=True) == 50


@pytest.mark.parametrize(
    ("lists", "share", "expected"),
    [
        (1, 1.0, 1),
        (4, 1.0, 4),  # 2 * sqrt(4) = 4
        (10, 1.0, 7),  # ceil(6.32)
        (100, 1.0, 20),
        (1_000, 1.0, 64),  # ceil(63.2)
        (100, 0.25, 40),  # a quarter of the rows: twice the probes
        (100, 0.5, 29),  # ceil(28.28)
        (100, 0.01, 100),  # capped at the lists
        (100, 0.0, 100),
        (100, 2.0, 20),  # a share above 1 counts as 1
        (10_000, 1e-9, 10_000),
    ],
)
def test_default_probes(lists: int, share: float, expected: int) -> None:
    assert default_probes(lists, share) == expected


def test_default_probes_is_twice_the_square_root() -> None:
    for lists in (2, 50, 317, 4_096):
        assert default_probes(lists) == min(lists, math.ceil(2 * math.sqrt(lists)))


# ---------------------------------------------------------------------- resolve


def test_the_index_route_raises_ef_search_to_the_candidates() -> None:
    plain = SearchSettings()
    assert resolve(plain, candidates=10, filtered=False, iterative_supported=True) == {
        "hnsw.ef_search": "40"  # never below pgvector's default
    }
    wide = resolve(plain, candidates=300, filtered=False, iterative_supported=True)
    assert wide == {"hnsw.ef_search": "300"}
    huge = resolve(plain, candidates=50_000, filtered=False, iterative_supported=True)
    assert huge == {"hnsw.ef_search": "1000"}  # pgvector's maximum
    given = resolve(
        SearchSettings(ef_search=7), candidates=300, filtered=False, iterative_supported=True
    )
    assert given == {"hnsw.ef_search": "7"}


def test_the_iterative_route_is_relaxed_when_supported() -> None:
    gucs = resolve(SearchSettings(), candidates=20, filtered=True, iterative_supported=True)
    assert gucs == {
        "hnsw.ef_search": "40",
        "hnsw.iterative_scan": "relaxed_order",
        "ivfflat.iterative_scan": "relaxed_order",
    }
    old = resolve(SearchSettings(), candidates=20, filtered=True, iterative_supported=False)
    assert old == {"hnsw.ef_search": "40"}


def test_strict_order_is_hnsw_only() -> None:
    settings = SearchSettings(iterative_scan="strict_order")
    gucs = resolve(settings, candidates=20, filtered=True, iterative_supported=True)
    assert gucs["hnsw.iterative_scan"] == "strict_order"
    assert gucs["ivfflat.iterative_scan"] == "off"  # IVFFlat has no strict order


def test_an_explicit_mode_is_sent_filtered_or_not() -> None:
    settings = SearchSettings(iterative_scan="off")
    gucs = resolve(settings, candidates=20, filtered=True, iterative_supported=True)
    assert gucs["hnsw.iterative_scan"] == gucs["ivfflat.iterative_scan"] == "off"
    relaxed = SearchSettings(iterative_scan="relaxed_order")
    gucs = resolve(relaxed, candidates=20, filtered=False, iterative_supported=True)
    assert gucs["hnsw.iterative_scan"] == "relaxed_order"


def test_scan_bounds_only_with_iterative_scans() -> None:
    bounded = SearchSettings(max_scan_tuples=50_000, max_probes=30)
    gucs = resolve(bounded, candidates=20, filtered=True, iterative_supported=True)
    assert gucs["hnsw.max_scan_tuples"] == "50000"
    assert gucs["ivfflat.max_probes"] == "30"
    for filtered, supported in ((False, True), (True, False)):
        gucs = resolve(bounded, candidates=20, filtered=filtered, iterative_supported=supported)
        assert "hnsw.max_scan_tuples" not in gucs and "ivfflat.max_probes" not in gucs


def test_probes_follow_the_lists_and_the_share() -> None:
    settings = SearchSettings()
    gucs = resolve(settings, candidates=10, filtered=False, iterative_supported=True, lists=100)
    assert gucs["ivfflat.probes"] == "20"
    gucs = resolve(
        settings, candidates=10, filtered=True, iterative_supported=True, lists=100, share=0.25
    )
    assert gucs["ivfflat.probes"] == str(default_probes(100, 0.25)) == "40"
    # no IVFFlat index: no probes
    assert "ivfflat.probes" not in resolve(
        settings, candidates=10, filtered=False, iterative_supported=True
    )
    given = SearchSettings(probes=3)
    gucs = resolve(given, candidates=10, filtered=False, iterative_supported=True, lists=100)
    assert gucs["ivfflat.probes"] == "3"
    # given probes are sent even without a known IVFFlat index
    assert (
        resolve(given, candidates=10, filtered=False, iterative_supported=True)["ivfflat.probes"]
        == "3"
    )


def test_the_statement_timeout() -> None:
    assert timeout(SearchSettings()) == {}
    assert timeout(SearchSettings(statement_timeout_ms=250)) == {"statement_timeout": "250"}
    gucs = resolve(
        SearchSettings(statement_timeout_ms=250),
        candidates=10,
        filtered=True,
        iterative_supported=True,
    )
    assert gucs["statement_timeout"] == "250"
    assert list(gucs)[-1] == "statement_timeout"


# ---------------------------------------------------------------------- changes, set_local


def test_changes_sends_only_what_differs() -> None:
    plain = resolve(SearchSettings(), candidates=10, filtered=False, iterative_supported=True)
    assert changes(plain, {}) == {}  # pgvector's default ef_search: nothing to send
    assert changes({"hnsw.ef_search": "100"}, {}) == {"hnsw.ef_search": "100"}
    # the session changed it: sending pgvector's default is a change
    assert changes({"hnsw.ef_search": "40"}, {"hnsw.ef_search": "64"}) == {"hnsw.ef_search": "40"}
    assert changes({"hnsw.ef_search": "64"}, {"hnsw.ef_search": "64"}) == {}
    gucs = {
        "hnsw.ef_search": "40",
        "hnsw.iterative_scan": "relaxed_order",
        "ivfflat.iterative_scan": "off",
        "ivfflat.probes": "1",
        "statement_timeout": "100",
    }
    assert changes(gucs, {}) == {
        "hnsw.iterative_scan": "relaxed_order",
        "statement_timeout": "100",
    }
    assert changes(gucs, {"statement_timeout": "100"}) == {"hnsw.iterative_scan": "relaxed_order"}


def test_pgvector_defaults() -> None:
    assert PGVECTOR_DEFAULTS == {
        "hnsw.ef_search": "40",
        "hnsw.iterative_scan": "off",
        "ivfflat.probes": "1",
        "ivfflat.iterative_scan": "off",
    }


def test_set_local_is_one_select_of_set_config_per_setting() -> None:
    statement = set_local({"hnsw.ef_search": "100", "statement_timeout": "250"})
    assert statement is not None
    compiled = statement.compile(dialect=DIALECT)
    assert compiled.string == (
        "SELECT set_config(%(set_config_2)s::VARCHAR, %(set_config_3)s::VARCHAR, "
        "%(set_config_4)s) AS set_config_1, "
        "set_config(%(set_config_6)s::VARCHAR, %(set_config_7)s::VARCHAR, "
        "%(set_config_8)s) AS set_config_5"
    )
    assert compiled.params == {
        "set_config_2": "hnsw.ef_search",
        "set_config_3": "100",
        "set_config_4": True,  # is_local: for this transaction only
        "set_config_6": "statement_timeout",
        "set_config_7": "250",
        "set_config_8": True,
    }


def test_set_local_of_nothing_is_none() -> None:
    assert set_local({}) is None
    assert set_local([]) is None


def test_set_local_takes_pairs_and_reuses_its_statements() -> None:
    pairs = (("hnsw.ef_search", "100"), ("hnsw.iterative_scan", "relaxed_order"))
    statement = set_local(pairs)
    assert statement is not None
    assert set_local(dict(pairs)) is statement  # built once per combination
    assert set_local(list(pairs)) is statement
    assert len(statement.selected_columns) == 2
    reordered = set_local(tuple(reversed(pairs)))
    assert reordered is not statement
    assert reordered is not None
    params = list(reordered.compile(dialect=DIALECT).params.values())
    assert params == ["hnsw.iterative_scan", "relaxed_order", True, "hnsw.ef_search", "100", True]
