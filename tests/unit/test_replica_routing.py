"""The pure parts of read replicas: argument checks, LSNs, backoff, the order replicas
are tried in, when a read waits for one, and which errors send a read elsewhere. No
database: the replica tests in tests/integration run the real thing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors as pg

from langchain_pgvec import (
    ConnectError,
    ConnectionLostError,
    DatabaseError,
    HashingEmbeddings,
    InvalidInputError,
    PGVecStore,
    QueryTimeoutError,
    SchemaError,
)
from langchain_pgvec._engine import normalise_url
from langchain_pgvec._replicas import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    POLL,
    UNKNOWN,
    Health,
    Route,
    backoff,
    check_replicas,
    check_wait,
    parse_lsn,
    verdict,
)

URL = "postgresql://u@primary/db"


def store(**kwargs: Any) -> PGVecStore:
    return PGVecStore(HashingEmbeddings(dimension=8), connection=URL, **kwargs)


# ---------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"read_replicas": "postgresql://u@replica/db"}, "one replica is a list of one URL"),
        ({"read_replicas": {"a": 1}}, "read_replicas must be a list"),
        ({"read_replicas": [42]}, "read_replicas[0] must be a URL"),
        ({"read_replicas": ["mysql://u@replica/db"]}, "read_replicas[0]: connection must be"),
        ({"read_replicas": ["not a url"]}, "read_replicas[0]"),
        (
            {"read_replicas": ["postgresql://u@r1/db", "postgresql+psycopg://u@r1/db"]},
            "read_replicas[1] is read_replicas[0] again",
        ),
        ({"read_your_writes": "yes"}, "read_your_writes must be True or False"),
        ({"read_your_writes": 1}, "read_your_writes must be True or False"),
        ({"replica_wait": -1}, "replica_wait must be a number of seconds from 0 to 60"),
        ({"replica_wait": 61}, "replica_wait"),
        ({"replica_wait": float("nan")}, "replica_wait"),
        ({"replica_wait": True}, "replica_wait"),
        ({"replica_wait": "1"}, "replica_wait"),
    ],
)
def test_bad_replica_arguments_are_refused_up_front(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        store(**kwargs)
    assert named in str(raised.value)


def test_good_replica_arguments() -> None:
    assert check_replicas(None, normalise_url) == []
    assert check_replicas((), normalise_url) == []
    assert check_replicas(["postgresql://a/db", "postgresql://b/db"], normalise_url) == [
        "postgresql://a/db",
        "postgresql://b/db",
    ]
    assert check_wait(0) == 0.0 and check_wait(60) == 60.0 and check_wait(0.25) == 0.25
    made = store(read_replicas=["postgresql://u@r1/db", "postgresql://u@r2/db"], replica_wait=2)
    try:
        assert len(made._replicas.replicas) == 2
        assert made._replicas.read_your_writes is True  # the default
        assert made._replicas.wait == 2.0
        assert "r1" in made._replicas.replicas[0].name
    finally:
        made.close()
    plain = store()
    try:
        assert not plain._replicas  # no replicas: every read on the primary, as before
    finally:
        plain.close()


# ---------------------------------------------------------------------- LSNs


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0/0", 0),
        ("0/3000000", 0x3000000),
        ("16/B374D848", (0x16 << 32) | 0xB374D848),
        ("FFFFFFFF/FFFFFFFF", 2**64 - 1),
        (None, None),
    ],
)
def test_lsns_parse_as_two_hex_halves(text: str | None, value: int | None) -> None:
    assert parse_lsn(text) == value


def test_lsns_compare_as_numbers_not_as_text() -> None:
    # as strings, "0/A0000000" < "0/B" and "9/0" > "10/0": as positions, the other way
    assert parse_lsn("0/A0000000") > parse_lsn("0/B")  # type: ignore[operator]
    assert parse_lsn("10/0") > parse_lsn("9/FFFFFFFF")  # type: ignore[operator]


@pytest.mark.parametrize("text", ["", "0", "/1", "1/", "x/1", "1/2/3"])
def test_a_malformed_lsn_is_an_error(text: str) -> None:
    with pytest.raises(InvalidInputError, match="LSN"):
        parse_lsn(text)


# ---------------------------------------------------------------------- backoff and order


def test_backoff_doubles_up_to_its_bound() -> None:
    assert backoff(1) == BACKOFF_FIRST
    assert backoff(2) == 2 * BACKOFF_FIRST
    assert backoff(3) == 4 * BACKOFF_FIRST
    assert backoff(100) == BACKOFF_MAX


def test_health_goes_down_for_the_backoff_and_a_success_forgets_failures() -> None:
    health = Health()
    assert health.up(0.0)
    health.failed(10.0)
    assert not health.up(10.0 + BACKOFF_FIRST / 2)
    assert health.up(10.0 + BACKOFF_FIRST)
    health.failed(20.0)
    assert health.failures == 2 and not health.up(20.0 + BACKOFF_FIRST)
    health.served()
    assert health.failures == 0
    health.saw(5)
    health.saw(3)  # a position never moves back
    health.saw(None)
    assert health.replayed == 5


def test_replicas_are_tried_in_turn_skipping_those_down() -> None:
    health = [Health(), Health(), Health()]
    assert [Route.plan(health, start, 0, 1.0, 0.0).order for start in range(4)] == [
        [0, 1, 2],
        [1, 2, 0],
        [2, 0, 1],
        [0, 1, 2],
    ]
    health[1].failed(0.0)
    assert Route.plan(health, 0, 0, 1.0, 0.0).order == [0, 2]
    assert Route.plan(health, 1, 0, 1.0, BACKOFF_FIRST).order == [1, 2, 0]
    assert Route.plan([], 7, 0, 1.0, 0.0).order == []
    # the position of the last write unknown: the primary only
    assert Route.plan(health, 0, UNKNOWN, 1.0, 0.0).order == []


# ---------------------------------------------------------------------- waiting for a write


def test_a_read_with_no_write_to_wait_for_asks_nothing() -> None:
    route = Route.plan([Health()], 0, 0, 1.0, 0.0)
    assert route.ready(Health())


def test_a_replica_seen_past_the_write_is_asked_nothing() -> None:
    health = Health(replayed=200)
    assert Route.plan([health], 0, 150, 1.0, 0.0).ready(health)
    assert not Route.plan([health], 0, 250, 1.0, 0.0).ready(health)


def test_a_read_waits_until_the_replica_replays_the_write_or_the_bound_passes() -> None:
    health = Health()
    route = Route.plan([health], 0, 100, 0.5, 0.0)
    assert route.pause(health, 50, 0.0) == POLL  # behind: ask again soon
    assert route.pause(health, 99, 0.499) == pytest.approx(0.001)  # never past the bound
    assert route.pause(health, 100, 0.2) == 0.0  # caught up: read there
    assert health.replayed == 100

    late = Health()
    route = Route.plan([late], 0, 100, 0.5, 0.0)
    assert route.pause(late, 50, 0.5) is None  # the bound passed: the next, or the primary
    assert late.lagging_until == 0.5 + BACKOFF_FIRST
    # the next reads ask a lagging replica once, without waiting
    again = Route.plan([late], 0, 100, 0.5, 1.0)
    assert again.pause(late, 60, 1.0) is None
    assert again.pause(late, 100, 1.0) == 0.0


def test_a_server_not_in_recovery_is_not_waited_for() -> None:
    health = Health()
    route = Route.plan([health], 0, 100, 5.0, 0.0)
    assert route.pause(health, None, 0.0) is None


# ---------------------------------------------------------------------- errors


def caused(error: Exception, by: BaseException) -> Exception:
    error.__cause__ = by
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectError("refused"), "down"),
        (ConnectionLostError("gone"), "down"),
        (caused(DatabaseError("x"), pg.SerializationFailure("conflict with recovery")), "pass"),
        (caused(SchemaError("x"), pg.UndefinedTable("no such table")), "pass"),
        (caused(DatabaseError("x"), pg.ReadOnlySqlTransaction("read-only")), "pass"),
        (caused(DatabaseError("x"), pg.SyntaxError("bug")), None),
        (QueryTimeoutError("statement_timeout"), None),
        (InvalidInputError("bad k"), None),
        (caused(DatabaseError("x"), psycopg.DataError("bad")), None),
        # pgvector's registration on a replica that has not replayed CREATE EXTENSION
        (caused(DatabaseError("x"), psycopg.ProgrammingError("vector type not found")), "pass"),
    ],
)
def test_which_errors_send_a_read_elsewhere(error: Exception, expected: str | None) -> None:
    assert verdict(error) == expected
