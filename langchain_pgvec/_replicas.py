"""Read replicas: which server serves a read, and whether it has this store's writes.

A store made with ``read_replicas=[url, ...]`` sends its searches and reads (``get``,
``get_by_ids``, ``count``, the similarity, MMR, hybrid and full-text searches,
``explain``) to PostgreSQL streaming replicas, in turn (round robin), and everything
else to the primary: writes, DDL, ``store.transaction()`` blocks (one pinned
connection, which sees its own writes), the record managers' statements, and the
store's reads of its own state (the tables, the indexes, the collection: the primary
is the authority on what exists).

**A replica that fails is skipped for a while.** A connection that cannot be had, or
is lost during the read (:class:`ConnectError`, :class:`ConnectionLostError`), marks
the replica down for :data:`BACKOFF_FIRST` seconds, doubled at each failure in a row
up to :data:`BACKOFF_MAX`; the read is retried at once on the next replica, and on
the primary last. The first read after the pause tries the replica again (one
connection attempt); a success forgets its failures. A replica that cannot serve one
read (a query cancelled by a recovery conflict, a table or pgvector's types it has not
replayed yet, a statement a hot standby refuses) is passed over for that read only. Other errors
(a bad filter, ``statement_timeout``) are the read's own, and are raised. Set
``connect_timeout`` in a replica's URL (``?connect_timeout=2``) if an unreachable
host could hold a connection attempt for long.

**Read your writes** (``read_your_writes=True``, the default). After each write of
this store commits (``add_*``, ``delete``, ``delete_collection``, and each
``transaction()`` block), the store asks the primary for ``pg_current_wal_lsn()``:
one statement more per write, and only when replicas are configured. That is the
position up to which the primary has written its WAL, so it covers the commit
(under ``synchronous_commit`` on, ``local`` or ``remote_*``, the commit is written
before it returns; under ``off`` a read may wait for the WAL writer, within the
bound). ``pg_current_wal_insert_lsn()`` would cover the commit under ``off`` too, but
on an idle server it can point past a page header that a replica never reports as
replayed (seen here: ``0/3000028`` against a replay position of ``0/3000000``), and
reads would wait the whole bound for nothing. DDL is not waited for: a replica that
has not replayed a new table fails the read, which the next server serves.

A later read then needs a replica whose ``pg_last_wal_replay_lsn()`` is at that
position or past it: it asks the chosen replica (on the connection that then serves
the read), every :data:`POLL` seconds, until the store's ``replica_wait`` runs out,
and past it reads on the primary. What a replica was seen to have replayed is
remembered, so the reads after the first pay nothing more; a replica that made a
read wait in vain is asked once, without waiting, by the reads of the next
:data:`BACKOFF_FIRST` seconds. A server that was never in recovery
(``pg_last_wal_replay_lsn()`` is NULL: a primary listed as a replica) cannot say what
it has, so reads after a write go past it. Writes of other stores and processes are
not waited for.

The pure parts (URLs and settings checked, LSNs parsed, the order replicas are tried
in, backoff, the waiting decisions) are :func:`check_replicas`, :func:`check_wait`,
:func:`parse_lsn`, :class:`Health` and :class:`Route`; the sync and async readers
(:func:`read`, :func:`aread`, :func:`execute`, :func:`aexecute`) are thin loops over
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg
from sqlalchemy import URL, Connection, Engine, Text, cast, func, select
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable

from ._driver import (
    DriverStatement,
    Step,
    adrive,
    adriver_read,
    afetch,
    drive,
    driver_read,
    fetch,
)
from ._errors import Access, ConnectError, ConnectionLostError, InvalidInputError, PGVecError

_log = logging.getLogger("langchain_pgvec")
_T = TypeVar("_T")

#: seconds a failed replica is skipped after its first failure in a row; doubled at
#: each further one, up to BACKOFF_MAX
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
#: seconds between two asks of a replica's replay position while a read waits for it
POLL = 0.002
#: the default and the largest ``replica_wait``, in seconds
DEFAULT_WAIT = 0.5
MAX_WAIT = 60.0
#: the written position, when a write committed but the primary could not tell it
UNKNOWN = -1

#: the primary's WAL position after a commit, and a replica's replay position
#: (as text: psycopg has no pg_lsn type; NULL on a server not in recovery)
WRITTEN = select(cast(func.pg_current_wal_lsn(), Text))
REPLAYED = select(cast(func.pg_last_wal_replay_lsn(), Text))

#: errors of a replica that cannot serve one read, which the next server may: a
#: query cancelled by a recovery conflict (40001), a relation, column or function it
#: has not replayed yet, a statement a hot standby refuses
_NOT_HERE = (
    pg.SerializationFailure,
    pg.UndefinedTable,
    pg.UndefinedColumn,
    pg.UndefinedFunction,
    pg.UndefinedObject,
    pg.ReadOnlySqlTransaction,
)


# ------------------------------------------------------------------ pure: checks


def check_replicas(replicas: object, to_url: Callable[[Any], URL]) -> list[Any]:
    """The replicas as given (URLs checked by ``to_url``); InvalidInputError naming
    ``read_replicas`` for anything but a list or tuple of distinct PostgreSQL URLs."""
    if replicas is None:
        return []
    if not isinstance(replicas, (list, tuple)):
        one = " (one replica is a list of one URL)" if isinstance(replicas, (str, URL)) else ""
        raise InvalidInputError(
            "read_replicas must be a list of URLs such as "
            f"['postgresql://user:pass@replica1/db'], got {type(replicas).__name__}{one}"
        )
    seen: dict[str, int] = {}
    for position, replica in enumerate(replicas):
        if not isinstance(replica, (str, URL)):
            raise InvalidInputError(
                f"read_replicas[{position}] must be a URL string or a sqlalchemy URL, got "
                f"{type(replica).__name__}"
            )
        try:
            url = to_url(replica)
        except InvalidInputError as exc:
            raise InvalidInputError(f"read_replicas[{position}]: {exc}") from exc
        key = url.render_as_string(hide_password=False)
        if key in seen:
            raise InvalidInputError(
                f"read_replicas[{position}] is read_replicas[{seen[key]}] again; list each "
                "replica once"
            )
        seen[key] = position
    return list(replicas)


def check_wait(seconds: object) -> float:
    """``replica_wait`` in seconds: a number from 0 to :data:`MAX_WAIT`."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or not 0 <= seconds <= MAX_WAIT
    ):
        raise InvalidInputError(
            f"replica_wait must be a number of seconds from 0 to {MAX_WAIT:g} (how long a "
            f"read after a write waits for a replica to replay it), got {seconds!r}"
        )
    return float(seconds)


def check_flag(value: object, name: str) -> bool:
    """A bool argument; InvalidInputError naming it for anything else."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return value


def parse_lsn(text: str | None) -> int | None:
    """A PostgreSQL LSN (``"16/B374D848"``: two hex halves of 32 bits) as an int.

    None for NULL (a server not in recovery has no replay position).
    """
    if text is None:
        return None
    high, sep, low = text.partition("/")
    try:
        if not sep or not high or not low:
            raise ValueError(text)
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise InvalidInputError(f"{text!r} is not a PostgreSQL LSN such as '16/B374D848'") from None


def backoff(failures: int) -> float:
    """Seconds a replica is skipped after ``failures`` failures in a row (>= 1)."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, failures - 1)))


def _cause(exc: BaseException) -> BaseException | None:
    """The driver error under a PGVecError (a DBAPIError's ``orig``, if that)."""
    cause = exc.__cause__
    return getattr(cause, "orig", None) or cause


def verdict(exc: BaseException) -> str | None:
    """What a read's error on a replica says: ``"down"`` (the replica failed: skip it
    for a while), ``"pass"`` (it cannot serve this read: try the next), or None (the
    read's own error: raise it)."""
    if isinstance(exc, (ConnectError, ConnectionLostError)):
        return "down"
    cause = _cause(exc)
    if isinstance(exc, PGVecError) and isinstance(cause, _NOT_HERE):
        return "pass"
    if isinstance(cause, psycopg.ProgrammingError) and cause.sqlstate is None:
        # raised on the client, not by the server: pgvector's "vector type not found in
        # the database" when a connection's types are registered on a replica that has
        # not replayed CREATE EXTENSION yet (that comes before the wait for a write)
        return "pass"
    return None


# ------------------------------------------------------------------ pure: health and routes


@dataclass
class Health:
    """What the store knows of one replica: failures in a row, the time (monotonic)
    until which it is skipped, the furthest replay position it was seen at, and until
    when it is known to lag (a read waited for it in vain)."""

    failures: int = 0
    down_until: float = 0.0
    replayed: int = 0
    lagging_until: float = 0.0

    def up(self, now: float) -> bool:
        return now >= self.down_until

    def failed(self, now: float) -> None:
        self.failures += 1
        self.down_until = now + backoff(self.failures)

    def served(self) -> None:
        self.failures = 0

    def saw(self, replayed: int | None) -> None:
        if replayed is not None and replayed > self.replayed:
            self.replayed = replayed


@dataclass
class Route:
    """One read's way through the replicas: the order they are tried in (round robin
    from ``start``, skipping those down), and the wait for the position ``needed``
    (0: none; :data:`UNKNOWN`: the primary, whose position is unknown), shared by
    every replica tried, until ``deadline`` (monotonic)."""

    order: list[int]
    needed: int
    deadline: float

    @classmethod
    def plan(
        cls, health: Sequence[Health], start: int, needed: int, wait: float, now: float
    ) -> Route:
        count = len(health)
        ring = [(start + offset) % count for offset in range(count)] if count else []
        up = [index for index in ring if health[index].up(now)]
        return cls(up if needed != UNKNOWN else [], needed, now + wait)

    def ready(self, health: Health) -> bool:
        """Whether the replica is known to have what the read needs (no ask needed)."""
        return self.needed <= 0 or health.replayed >= self.needed

    def pause(self, health: Health, replayed: int | None, now: float) -> float | None:
        """After an ask answered ``replayed``: seconds to wait before asking again, 0
        when the replica has what the read needs, None to give up on it (past the
        deadline, a server not in recovery, or a replica known to lag)."""
        health.saw(replayed)
        if self.ready(health):
            return 0.0
        if replayed is None or now >= self.deadline or now < health.lagging_until:
            if replayed is not None and now >= self.deadline:
                health.lagging_until = now + BACKOFF_FIRST
            return None
        return min(POLL, self.deadline - now)


# ------------------------------------------------------------------ the replicas of a store


@dataclass
class Replica:
    """One replica: its engines (a sync and an async one, as the primary's) and health."""

    name: str
    engines: Any  # _engine.Engines (imported there: _engine imports nothing of here)
    health: Health = field(default_factory=Health)
    #: reads this replica served (for tests and the curious)
    served: int = 0


class Replicas:
    """The replicas of one store, and the position its last write needs them to have.

    ``engines``: one ``Engines`` per replica URL (opened by the store).
    """

    def __init__(self, engines: Sequence[Any], read_your_writes: bool, wait: float) -> None:
        self.replicas = [Replica(e.url.render_as_string(hide_password=True), e) for e in engines]
        self.read_your_writes = read_your_writes
        self.wait = wait
        self._turn = itertools.count()
        self._lock = threading.Lock()
        #: the primary's WAL position after this store's last write (0: none yet)
        self.written = 0
        #: reads the primary served (no replica could)
        self.primary_served = 0
        dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
        self.written_sql = DriverStatement.compile(WRITTEN, dialect, ())
        self.replayed_sql = DriverStatement.compile(REPLAYED, dialect, ())

    def __bool__(self) -> bool:
        return bool(self.replicas)

    def route(self) -> Route:
        health = [replica.health for replica in self.replicas]
        needed = self.written if self.read_your_writes else 0
        return Route.plan(health, next(self._turn), needed, self.wait, time.monotonic())

    def tried(self, route: Route) -> Iterator[Replica]:
        for index in route.order:
            replica = self.replicas[index]
            if replica.health.up(time.monotonic()):
                yield replica

    def wrote(self, lsn: int) -> None:
        """Record the primary's position after a write (never moves back, but from
        :data:`UNKNOWN`)."""
        with self._lock:
            if lsn == UNKNOWN or self.written == UNKNOWN or lsn > self.written:
                self.written = lsn

    def failed(self, replica: Replica, exc: BaseException) -> bool:
        """Whether the next server should try the read that failed on ``replica``."""
        what = verdict(exc)
        if what == "down":
            replica.health.failed(time.monotonic())
            _log.warning(
                "read replica %s failed (%s); skipping it for %.0f s",
                replica.name,
                exc,
                backoff(replica.health.failures),
            )
        return what is not None

    def close(self) -> None:
        for replica in self.replicas:
            replica.engines.dispose()

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.engines.adispose()


# ------------------------------------------------------------------ recording a write


def record_write(replicas: Replicas, primary: Any) -> None:
    """After a write committed: the primary's WAL position, for reads to wait for.

    A failure here is logged, never raised (the write has committed): reads then go to
    the primary until a position is known again (see :func:`_known`)."""
    if not replicas or not replicas.read_your_writes:
        return
    try:
        replicas.wrote(_position(replicas, primary))
    except PGVecError as exc:
        _log.warning("the primary's WAL position could not be read after a write: %s", exc)
        replicas.wrote(UNKNOWN)


async def arecord_write(replicas: Replicas, primary: Any) -> None:
    """Async twin of :func:`record_write`."""
    if not replicas or not replicas.read_your_writes:
        return
    try:
        replicas.wrote(await _aposition(replicas, primary))
    except PGVecError as exc:
        _log.warning("the primary's WAL position could not be read after a write: %s", exc)
        replicas.wrote(UNKNOWN)


def _position(replicas: Replicas, primary: Any) -> int:
    with driver_read(primary.sync, own=primary.reads) as driver:
        rows = fetch(driver, replicas.written_sql, ())
    return parse_lsn(rows[0][0]) or 0


async def _aposition(replicas: Replicas, primary: Any) -> int:
    async with adriver_read(primary.async_, own=primary.areads) as driver:
        rows = await afetch(driver, replicas.written_sql, ())
    return parse_lsn(rows[0][0]) or 0


def _known(replicas: Replicas, primary: Any) -> None:
    """A position unknown since a write: ask the primary again (it may answer now;
    else the read goes to the primary, see :meth:`Route.plan`)."""
    if replicas.written == UNKNOWN:
        with contextlib.suppress(PGVecError):
            replicas.wrote(_position(replicas, primary))


async def _aknown(replicas: Replicas, primary: Any) -> None:
    """Async twin of :func:`_known`."""
    if replicas.written == UNKNOWN:
        with contextlib.suppress(PGVecError):
            replicas.wrote(await _aposition(replicas, primary))


# ------------------------------------------------------------------ waiting for a position


def _replayed_driver(replicas: Replicas, driver: psycopg.Connection[Any]) -> int | None:
    return parse_lsn(fetch(driver, replicas.replayed_sql, ())[0][0])


async def _areplayed_driver(replicas: Replicas, driver: psycopg.AsyncConnection[Any]) -> int | None:
    return parse_lsn((await afetch(driver, replicas.replayed_sql, ()))[0][0])


def _caught_up(route: Route, health: Health, ask: Callable[[], int | None]) -> bool:
    """Whether the replica has what the read needs, asking (``ask``) until it has or
    the route gives up on it."""
    while not route.ready(health):
        pause = route.pause(health, ask(), time.monotonic())
        if pause is None:
            return False
        if pause:
            time.sleep(pause)
    return True


async def _acaught_up(
    route: Route, health: Health, ask: Callable[[], Awaitable[int | None]]
) -> bool:
    """Async twin of :func:`_caught_up`."""
    while not route.ready(health):
        pause = route.pause(health, await ask(), time.monotonic())
        if pause is None:
            return False
        if pause:
            await asyncio.sleep(pause)
    return True


# ------------------------------------------------------------------ the readers

Steps = Generator[Step, list[Any], _T]


def read(
    replicas: Replicas,
    primary: Any,
    make: Callable[[], Steps[_T]],
    access: Access | None,
    fallback: Callable[[Steps[_T]], _T],
) -> _T:
    """Drive a search's steps (``make`` makes them afresh for each server tried) on a
    replica, else on the primary (``fallback``)."""
    _known(replicas, primary)
    route = replicas.route()
    for replica in replicas.tried(route):
        engines = replica.engines
        try:
            with driver_read(engines.sync, own=engines.reads, access=access) as driver:
                if not _caught_up(
                    route, replica.health, lambda: _replayed_driver(replicas, driver)
                ):
                    continue
                result = drive(driver, make())
        except PGVecError as exc:
            if not replicas.failed(replica, exc):
                raise
            continue
        replica.health.served()
        replica.served += 1
        return result
    replicas.primary_served += 1
    return fallback(make())


async def aread(
    replicas: Replicas,
    primary: Any,
    make: Callable[[], Steps[_T]],
    access: Access | None,
    fallback: Callable[[Steps[_T]], Awaitable[_T]],
) -> _T:
    """Async twin of :func:`read`."""
    await _aknown(replicas, primary)
    route = replicas.route()
    for replica in replicas.tried(route):
        engines = replica.engines
        try:
            async with adriver_read(engines.async_, own=engines.areads, access=access) as driver:
                if not await _acaught_up(
                    route, replica.health, lambda: _areplayed_driver(replicas, driver)
                ):
                    continue
                result = await adrive(driver, make())
        except PGVecError as exc:
            if not replicas.failed(replica, exc):
                raise
            continue
        replica.health.served()
        replica.served += 1
        return result
    replicas.primary_served += 1
    return await fallback(make())


def _replayed_sa(conn: Connection) -> int | None:
    return parse_lsn(conn.execute(REPLAYED).scalar())


async def _areplayed_sa(conn: AsyncConnection) -> int | None:
    return parse_lsn((await conn.execute(REPLAYED)).scalar())


def execute(
    replicas: Replicas,
    primary: Any,
    statement: Executable,
    use: Callable[[Result[Any]], _T],
    begin: Callable[[Engine], Any],
    fallback: Callable[[], _T],
) -> _T:
    """``use`` the result of a read statement run on a replica (in a transaction of
    ``begin``: the store's settings), else ``fallback()`` (on the primary)."""
    _known(replicas, primary)
    route = replicas.route()
    for replica in replicas.tried(route):
        try:
            with begin(replica.engines.sync) as conn:
                if not _caught_up(route, replica.health, lambda: _replayed_sa(conn)):
                    continue
                result = use(conn.execute(statement))
        except PGVecError as exc:
            if not replicas.failed(replica, exc):
                raise
            continue
        replica.health.served()
        replica.served += 1
        return result
    replicas.primary_served += 1
    return fallback()


async def aexecute(
    replicas: Replicas,
    primary: Any,
    statement: Executable,
    use: Callable[[Result[Any]], _T],
    begin: Callable[[AsyncEngine], Any],
    fallback: Callable[[], Awaitable[_T]],
) -> _T:
    """Async twin of :func:`execute`."""
    await _aknown(replicas, primary)
    route = replicas.route()
    for replica in replicas.tried(route):
        try:
            async with begin(replica.engines.async_) as conn:
                if not await _acaught_up(route, replica.health, lambda: _areplayed_sa(conn)):
                    continue
                result = use(await conn.execute(statement))
        except PGVecError as exc:
            if not replicas.failed(replica, exc):
                raise
            continue
        replica.health.served()
        replica.served += 1
        return result
    replicas.primary_served += 1
    return await fallback()
