"""The hot path: searches as compiled statements on psycopg connections.

A search is the hot path: SQLAlchemy's per-call work (the statement's cache key, an
execution context, result rows) costs about as much as an HNSW scan itself, and its
pool's checkout and check-in (events, reset on return, a queue and its condition)
more than everything else around the statement. So a search statement is compiled
once by SQLAlchemy (:class:`DriverStatement`) and run on a psycopg connection with
binary results: the store's own connection for searches, outside the pool
(:class:`ReadConnection`), or a pooled one when that is busy. A read is a generator of
:class:`Step` s (the planner's) that :func:`read` and :func:`aread` drive.

Also here: what every connection gets when it is made or handed out: pgvector's
binary types (:func:`register`), the check that the server has not closed it (one
``poll()`` of its socket), and whether it goes through a pooler (then psycopg
prepares nothing on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from psycopg.types.json import set_json_dumps
from sqlalchemy import Connection, Dialect, Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from ._errors import Access, translate_errors
from ._validate import json_dumps

_T = TypeVar("_T")
_REGISTERED = "langchain_pgvec.vector_registered"


def register(conn: Connection | PoolProxiedConnection) -> None:
    pooled = conn.connection if isinstance(conn, Connection) else conn
    if not pooled.info.get(_REGISTERED):
        register_vector(pooled.driver_connection)
        set_json_dumps(json_dumps, pooled.driver_connection)
        pooled.info[_REGISTERED] = True


async def aregister(conn: AsyncConnection) -> None:
    if not conn.info.get(_REGISTERED):
        raw = await conn.get_raw_connection()
        await register_vector_async(raw.driver_connection)
        set_json_dumps(json_dumps, raw.driver_connection)
        conn.info[_REGISTERED] = True


_POLLER = "langchain_pgvec.poller"


def _socket_readable(fd: int, info: dict[str, Any]) -> bool:
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        return bool(select.select([fd], [], [], 0)[0])
    known = info.get(_POLLER)  # one per pooled connection (info goes with it)
    if known is None or known[0] != fd:
        known = info[_POLLER] = (fd, select.poll())  # no FD_SETSIZE limit, unlike select()
        known[1].register(fd, select.POLLIN)
    return bool(known[1].poll(0))


def check_alive(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool checkout check: discard a connection the server has closed.

    ``pool_pre_ping`` costs a round trip per checkout, a quarter of a top-k search under
    HNSW. An idle connection has nothing to read; one whose server restarted, or whose
    backend was terminated, has the server's goodbye or end-of-file waiting on its
    socket. That costs one ``poll()``; a connection with anything to read is replaced.
    """
    driver = proxy.driver_connection
    if driver.broken or _stale(driver, record.info):
        raise DisconnectionError("the server closed this pooled connection")


# ------------------------------------------------------------------ prepared statements
#
# psycopg prepares a statement after five runs on a connection, under a name that is
# unique on that connection only (_pg3_0, _pg3_1, ...). Behind a pooler in transaction
# mode, server connections are shared by clients: another client's _pg3_0 may be a
# different statement, and running it returns that statement's rows (another
# collection's documents) or fails. On a connection that goes through a pooler (or when
# told), the store turns preparation off.

#: a connection's record keys: whether it goes through a pooler or proxy, and whether
#: (and why) preparation was turned off on it
BEHIND_POOLER = "langchain_pgvec.behind_pooler"
PREPARE_OFF = "langchain_pgvec.prepare_off"
POOLED = "a pooler or proxy between the store and PostgreSQL"
_ENDPOINT = "SELECT current_setting('port'), inet_server_port()"


def proxied(host: str | None, port: int | None, server: tuple[Any, Any] | None) -> bool:
    """Whether a connection to ``host``:``port`` reaches a server that says it listens
    on (``port`` setting, port of this connection) = ``server`` through something in
    between: the server sees another kind of socket (TCP against a Unix socket) or
    another port than the one connected to."""
    if server is None:
        return False
    setting, server_port = server
    unix = bool(host) and (host.startswith("/") or host.startswith("@"))  # type: ignore[union-attr]
    if unix:
        return server_port is not None or (port is not None and str(port) != str(setting))
    return server_port is None or (port is not None and int(server_port) != int(port))


def _endpoint(dbapi_connection: Any) -> tuple[Any, Any] | None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_ENDPOINT)
        row = cursor.fetchone()
    finally:
        cursor.close()
    dbapi_connection.rollback()
    return None if row is None else (row[0], row[1])


def _driver(dbapi_connection: Any) -> Any:
    return getattr(dbapi_connection, "driver_connection", dbapi_connection)


def _detect_pooler(dbapi_connection: Any, record: Any) -> None:
    info = _driver(dbapi_connection).info
    record.info[BEHIND_POOLER] = proxied(info.host, info.port, _endpoint(dbapi_connection))


def _prepare_never(dbapi_connection: Any, record: Any) -> None:
    _driver(dbapi_connection).prepare_threshold = None
    record.info[PREPARE_OFF] = "prepared_statements=False"


def _prepare_unless_pooled(dbapi_connection: Any, record: Any) -> None:
    if record.info.get(BEHIND_POOLER):
        _driver(dbapi_connection).prepare_threshold = None
        record.info.setdefault(PREPARE_OFF, POOLED)


def guard_prepared(engine: Engine, prepared_statements: bool | None) -> None:
    """Tell the engine's new connections that go through a pooler (their record's
    :data:`BEHIND_POOLER`), and turn psycopg's statement preparation off on those
    (``None``), on all of them (``False``), or on none (``True``)."""
    if not event.contains(engine, "connect", _detect_pooler):
        event.listen(engine, "connect", _detect_pooler, insert=True)
    if prepared_statements is True:
        return
    listener = _prepare_never if prepared_statements is False else _prepare_unless_pooled
    if not event.contains(engine, "connect", listener):
        event.listen(engine, "connect", listener)


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled once to psycopg's SQL, its fixed parameters already bound.

    ``param`` names the one parameter given per call (the query vector), or is a tuple
    of names given per call together (a tuple of values, in that order). A statement
    with other parameters (a filter's values) is never prepared: a prepared statement
    soon runs a generic plan, which cannot see how selective the filter is (the
    planner would pick the HNSW scan for a filter that matches 2% of rows, where the
    GIN index and an exact sort are both faster and exact).
    """

    sql: str
    fixed: dict[str, Any]
    param: str | tuple[str, ...]
    process: Callable[[Any], Any] | None
    processes: tuple[Callable[[Any], Any] | None, ...] = ()

    @property
    def prepare(self) -> bool | None:
        """psycopg's ``prepare``: never with fixed parameters, else its default."""
        return False if self.fixed else None

    @classmethod
    def compile(
        cls, statement: ClauseElement, dialect: Dialect, param: str | tuple[str, ...]
    ) -> DriverStatement:
        """Compile ``statement`` for ``dialect`` (literal-execute values rendered inline)."""
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        escaped: dict[str, str] = dict(compiled.escaped_bind_names or {})
        processors: dict[str, Callable[[Any], Any] | None] = {}
        for key, bind in compiled.binds.items():
            impl = bind.type.dialect_impl(dialect)
            processors[escaped.get(key, key)] = impl.bind_processor(dialect)
        per_call = (param,) if isinstance(param, str) else param
        fixed: dict[str, Any] = {}
        for name, value in (compiled.construct_params() or {}).items():
            process = processors.get(name)
            if name not in per_call:
                fixed[name] = process(value) if process is not None and value is not None else value
        if isinstance(param, str):
            return cls(compiled.string, fixed, param, processors.get(param))
        return cls(compiled.string, fixed, param, None, tuple(processors.get(p) for p in param))

    def params(self, value: Any) -> dict[str, Any]:
        """The parameters of one execution, ``value`` bound to :attr:`param` (a tuple of
        values to a tuple of names)."""
        if isinstance(self.param, str):
            return {**self.fixed, self.param: self.process(value) if self.process else value}
        bound = dict(self.fixed)
        for name, process, item in zip(self.param, self.processes, value, strict=True):
            bound[name] = process(item) if process is not None and item is not None else item
        return bound


def _checkout(engine: Engine) -> tuple[PoolProxiedConnection, psycopg.Connection[Any], bool]:
    """A pooled connection (no SQLAlchemy Connection around it) switched to
    autocommit, its psycopg connection, and the autocommit mode to give it back in."""
    pooled = engine.raw_connection()
    try:
        register(pooled)
        driver: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
        autocommit = driver.autocommit
        driver.autocommit = True
    except BaseException:
        pooled.close()
        raise
    return pooled, driver, autocommit


def _give_back(
    pooled: PoolProxiedConnection, driver: psycopg.Connection[Any], autocommit: bool
) -> None:
    """Return the connection to the pool as it was found, or drop it if it broke."""
    try:
        if not driver.broken:
            driver.autocommit = autocommit
    except psycopg.Error:
        pass
    if driver.broken or driver.autocommit != autocommit:
        pooled.invalidate()
    pooled.close()


class _OwnConnection:
    """What the sync and async own search connections share: one psycopg connection,
    a lock that callers try and never wait for, and closing that only the process
    that opened the connection does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._driver: Any = None
        self._info: dict[str, Any] = {}  # the socket's poller (see _socket_readable)
        self._pid = 0
        self._held: list[tuple[int, Any]] = []  # (pid, connection): what the finalizer closes
        self._inherited: list[Any] = []  # a parent's connection: never used, never closed
        weakref.finalize(self, _finish_all, self._held)

    def _ready(self) -> Any:
        """The connection if it can serve this call (call with the lock held)."""
        driver = self._driver
        if driver is None or self._pid != os.getpid() or _stale(driver, self._info):
            return None
        return driver

    def _adopt(self, driver: Any) -> None:
        """Make ``driver`` the connection (the previous one was dropped first)."""
        self._driver, self._pid, self._info = driver, os.getpid(), {}
        self._held.append((self._pid, driver))

    def _release(self, driver: Any, drop: bool = False) -> None:
        """Give the connection back; one that broke or is not idle is closed."""
        try:
            if drop or driver.broken or driver.pgconn.transaction_status != _IDLE:
                self._drop()
        finally:
            self._lock.release()

    def _drop(self) -> None:
        if self._driver is not None and self._pid != os.getpid():
            self._inherited.append(self._driver)  # forked: the parent talks over its socket
        self._driver = None
        _finish_all(self._held)


class ReadConnection(_OwnConnection):
    """A connection of an engine's own for its searches, outside the engine's pool.

    Taking a connection from SQLAlchemy's pool and giving it back (events, reset on
    return, the queue and its condition, two autocommit switches) is more Python than
    everything else a top-k search does around its statement. An engine the store
    created keeps one autocommit psycopg connection for searches instead; a search
    that finds it busy (another thread's) takes a pooled connection as before. The
    connection is made by the pool (the engine's connect arguments and events apply)
    and detached from it, so the engine holds at most one connection more than its
    pool's size.

    Before each use it gets the check the pool's checkout gets (a server that
    restarted or ended the backend left something to read on its socket), and after a
    ``fork()`` the child opens its own rather than share the parent's socket.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine

    def take(self) -> psycopg.Connection[Any] | None:
        """The connection, the caller's until :meth:`give_back`; None when it is busy."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            driver: psycopg.Connection[Any] | None = self._ready()
            if driver is None:
                self._drop()
                pooled, driver, _ = _checkout(self._engine)
                pooled.detach()  # now ours, closed by closing the psycopg connection
                self._adopt(driver)
            return driver
        except BaseException:
            self._lock.release()
            raise

    def give_back(self, driver: psycopg.Connection[Any]) -> None:
        """Release the connection; one that broke, or is not idle, is closed."""
        self._release(driver)

    def close(self) -> None:
        """Close the connection (the next search opens another)."""
        with self._lock:
            self._drop()


_IDLE = psycopg.pq.TransactionStatus.IDLE


class AsyncReadConnection(_OwnConnection):
    """Async twin of :class:`ReadConnection`, bound to the event loop that opened it.

    A search from another loop that is still running (another thread's) takes a
    pooled connection; once the opening loop has closed (one ``asyncio.run`` after
    another), the next search replaces the connection. ``close()`` never waits: a
    connection in use is closed when its search gives it back.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    async def take(self) -> psycopg.AsyncConnection[Any] | None:
        """The connection, the caller's until :meth:`give_back`; None when it is busy or
        belongs to another running loop."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            loop = asyncio.get_running_loop()
            opener = self._loop
            if opener is not None and opener is not loop and not opener.is_closed():
                self._lock.release()  # another running loop's
                return None
            driver: psycopg.AsyncConnection[Any] | None = self._ready()
            if driver is None or opener is not loop:
                driver = await self._open(loop)
            return driver
        except BaseException:
            self._lock.release()
            raise

    def give_back(self, driver: psycopg.AsyncConnection[Any]) -> None:
        """Release the connection; one that broke, is not idle, or was closed meanwhile
        by :meth:`close`, is closed."""
        closing, self._closing = self._closing, False
        self._release(driver, drop=closing)

    def close(self) -> None:
        """Close the connection now, or when its search in flight gives it back."""
        if self._lock.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._lock.release()
        else:
            self._closing = True

    async def _open(self, loop: asyncio.AbstractEventLoop) -> psycopg.AsyncConnection[Any]:
        self._drop()
        conn, driver, _ = await _acheckout(self._engine)
        # detached, the SQLAlchemy connection around it is left unclosed: closing it
        # would now close the psycopg connection too
        (await conn.get_raw_connection()).detach()
        self._adopt(driver)
        self._loop = loop
        return driver


def _stale(
    driver: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], info: dict[str, Any]
) -> bool:
    """Whether the server closed the connection (it left something on the socket)."""
    try:
        return driver.closed or _socket_readable(driver.pgconn.socket, info)
    except (psycopg.Error, OSError, ValueError):
        return True


def _finish_all(connections: list[tuple[int, Any]]) -> None:
    """Close psycopg connections opened by this process, without awaiting (closing one
    is libpq's ``PQfinish``, also for an async connection, whose loop may be gone)."""
    for pid, driver in connections:
        if pid == os.getpid():
            with contextlib.suppress(Exception):
                driver.pgconn.finish()
    connections.clear()


@contextmanager
def driver_read(
    engine: Engine, *, own: ReadConnection | None = None, access: Access | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """The psycopg connection for one read, in autocommit (no BEGIN/COMMIT round trips).

    ``own``: the engine's own read connection, used unless another thread has it.
    """
    with translate_errors(access):
        driver = own.take() if own is not None else None
        pooled = None
        if driver is None:
            pooled, driver, autocommit = _checkout(engine)
        try:
            yield driver
        finally:
            if pooled is not None:
                _give_back(pooled, driver, autocommit)
            elif own is not None:
                own.give_back(driver)


class Step(NamedTuple):
    """One statement of a read: run ``settings`` (if any) and ``statement`` in one
    transaction, ``value`` bound to the statement's per-call parameter.

    ``source`` is the SQLAlchemy statement of a search (what ``explain`` explains);
    None for the probes that come before it.
    """

    statement: DriverStatement
    value: Any
    settings: DriverStatement | None
    source: Any


def run_step(driver: psycopg.Connection[Any], step: Step) -> list[Any]:
    """The rows of one step."""
    if step.settings is None:
        return fetch(driver, step.statement, step.value)
    with driver.transaction():
        fetch(driver, step.settings, None)
        return fetch(driver, step.statement, step.value)


def drive(driver: psycopg.Connection[Any], steps: Generator[Step, list[Any], _T]) -> _T:
    """Run every step ``steps`` yields, sending each one's rows back; its result (a
    search that needs no statement, such as a query without searchable words, yields
    none)."""
    try:
        step = next(steps)
        while True:
            step = steps.send(run_step(driver, step))
    except StopIteration as done:
        result: _T = done.value
        return result


def read(
    engine: Engine,
    own: ReadConnection | None,
    steps: Generator[Step, list[Any], _T],
    access: Access | None = None,
) -> _T:
    """Drive ``steps`` on the engine's own read connection (or a pooled one)."""
    with driver_read(engine, own=own, access=access) as driver:
        return drive(driver, steps)


def read_inside(conn: Connection, steps: Generator[Step, list[Any], _T]) -> _T:
    """Drive ``steps`` on the connection of a transaction in progress (it sees what the
    transaction wrote), in a savepoint rolled back afterwards: a search writes nothing,
    and the ``SET LOCAL`` settings of its steps end with the savepoint instead of
    lasting to the end of the transaction."""
    driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    with conn.begin_nested() as savepoint:
        result = drive(driver, steps)
        savepoint.rollback()
    return result


async def aread_inside(conn: AsyncConnection, steps: Generator[Step, list[Any], _T]) -> _T:
    """Async twin of :func:`read_inside`."""
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    async with conn.begin_nested() as savepoint:
        result = await adrive(driver, steps)
        await savepoint.rollback()
    return result


async def _acheckout(
    engine: AsyncEngine,
) -> tuple[AsyncConnection, psycopg.AsyncConnection[Any], bool]:
    """Async twin of :func:`_checkout` (async pools hand out SQLAlchemy connections)."""
    conn = await engine.connect()
    try:
        await aregister(conn)
        raw = await conn.get_raw_connection()
        driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
        autocommit = driver.autocommit
        await driver.set_autocommit(True)
    except BaseException:
        await conn.close()
        raise
    return conn, driver, autocommit


async def _agive_back(
    conn: AsyncConnection, driver: psycopg.AsyncConnection[Any], autocommit: bool
) -> None:
    """Async twin of :func:`_give_back`."""
    try:
        if not driver.broken:
            await driver.set_autocommit(autocommit)
    except psycopg.Error:
        pass
    if driver.broken or driver.autocommit != autocommit:
        await conn.invalidate()
    await conn.close()


@asynccontextmanager
async def adriver_read(
    engine: AsyncEngine, *, own: AsyncReadConnection | None = None, access: Access | None = None
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Async twin of :func:`driver_read`."""
    with translate_errors(access):
        driver = await own.take() if own is not None else None
        conn = None
        if driver is None:
            conn, driver, autocommit = await _acheckout(engine)
        try:
            yield driver
        finally:
            if conn is not None:
                await _agive_back(conn, driver, autocommit)
            elif own is not None:
                own.give_back(driver)


async def arun_step(driver: psycopg.AsyncConnection[Any], step: Step) -> list[Any]:
    """Async twin of :func:`run_step`."""
    if step.settings is None:
        return await afetch(driver, step.statement, step.value)
    async with driver.transaction():
        await afetch(driver, step.settings, None)
        return await afetch(driver, step.statement, step.value)


async def adrive(driver: psycopg.AsyncConnection[Any], steps: Generator[Step, list[Any], _T]) -> _T:
    """Async twin of :func:`drive` (the steps are the same generator)."""
    try:
        step = next(steps)
        while True:
            step = steps.send(await arun_step(driver, step))
    except StopIteration as done:
        result: _T = done.value
        return result


async def aread(
    engine: AsyncEngine,
    own: AsyncReadConnection | None,
    steps: Generator[Step, list[Any], _T],
    access: Access | None = None,
) -> _T:
    """Async twin of :func:`read`."""
    async with adriver_read(engine, own=own, access=access) as driver:
        return await adrive(driver, steps)


def fetch(driver: psycopg.Connection[Any], statement: DriverStatement, value: Any) -> list[Any]:
    """Run ``statement`` with ``value`` on a psycopg connection: its rows, as tuples."""
    params = statement.params(value)
    return driver.execute(statement.sql, params, binary=True, prepare=statement.prepare).fetchall()


async def afetch(
    driver: psycopg.AsyncConnection[Any], statement: DriverStatement, value: Any
) -> list[Any]:
    """Async twin of :func:`fetch`."""
    params = statement.params(value)
    cursor = await driver.execute(statement.sql, params, binary=True, prepare=statement.prepare)
    return await cursor.fetchall()
