"""Connections: URLs, sync and async engines, pgvector type registration.

Whatever the user passes (a URL, an ``Engine``, an ``AsyncEngine`` or nothing), the
store gets both a sync and an async engine on the psycopg 3 driver; the missing one
is derived from the other's URL on first use.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from psycopg.types.json import set_json_dumps
from sqlalchemy import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable

from ._errors import PGVecError, QueryTimeoutError
from ._input import json_dumps

Connectable = str | URL | Engine | AsyncEngine | None

_DRIVERS_TO_NORMALISE = {
    "postgres",
    "postgresql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "postgresql+psycopg_async",
    "postgresql+asyncpg",
    "postgresql+pg8000",
}
_REGISTERED = "langchain_pgvec.vector_registered"

# The twin derived from a user's engine, shared by every store given that engine, so
# that many stores on one Engine share one async pool (and vice versa). Entries go
# with the user's engine.
_DERIVED: weakref.WeakKeyDictionary[Engine | AsyncEngine, Engine | AsyncEngine] = (
    weakref.WeakKeyDictionary()
)
_DERIVED_LOCK = threading.Lock()


def normalise_url(url: str | URL) -> URL:
    """Return ``url`` with the psycopg 3 driver (``postgresql+psycopg://``).

    Raises:
        PGVecError: For a URL that is not PostgreSQL.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername not in _DRIVERS_TO_NORMALISE:
        raise PGVecError(
            f"connection must be a PostgreSQL URL such as 'postgresql://user:pass@host/db', "
            f"got driver {parsed.drivername!r}"
        )
    return parsed.set(drivername="postgresql+psycopg")


def default_url() -> URL:
    """``$PGVEC_URL`` when set, otherwise the embedded server (started on demand)."""
    configured = os.environ.get("PGVEC_URL")
    if configured:
        return normalise_url(configured)
    from . import embedded

    return normalise_url(embedded.url())


class Engines:
    """A sync and an async engine over one database, each created when first needed."""

    def __init__(self, connection: Connectable, engine_kwargs: dict[str, Any] | None = None):
        self._kwargs = {"pool_pre_ping": True, **(engine_kwargs or {})}
        self._lock = threading.Lock()
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._owned: list[Engine | AsyncEngine] = []
        self._given: Engine | AsyncEngine | None = None
        if isinstance(connection, Engine):
            _require_psycopg(connection.dialect.driver, "Engine")
            self._sync = self._given = connection
            self.url = connection.url
        elif isinstance(connection, AsyncEngine):
            _require_psycopg(connection.dialect.driver, "AsyncEngine")
            self._async = self._given = connection
            self.url = connection.url
        elif connection is None:
            self.url = default_url()
        elif isinstance(connection, (str, URL)):
            self.url = normalise_url(connection)
        else:
            raise PGVecError(
                "connection must be a URL string, a sqlalchemy URL, Engine or AsyncEngine, "
                f"or None for $PGVEC_URL / the embedded server; got {type(connection).__name__}"
            )

    @property
    def sync(self) -> Engine:
        """The sync engine (derived from the async engine's URL if only that was given)."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = self._derive(create_engine)
        return self._sync

    @property
    def async_(self) -> AsyncEngine:
        """The async engine (derived from the sync engine's URL if only that was given)."""
        if self._async is None:
            with self._lock:
                if self._async is None:
                    self._async = self._derive(create_async_engine)
        return self._async

    def _derive(self, factory: Any) -> Any:
        if self._given is None:
            engine = factory(self.url, **self._kwargs)
            self._owned.append(engine)
            return engine
        with _DERIVED_LOCK:
            engine = _DERIVED.get(self._given)
            if engine is None:
                engine = _DERIVED[self._given] = factory(self.url, **self._kwargs)
            return engine

    def dispose(self) -> None:
        """Close the pools of the engines this object created (never the user's)."""
        for engine in self._owned:
            if isinstance(engine, Engine):
                engine.dispose()

    async def adispose(self) -> None:
        """Async twin of :meth:`dispose`, also closing owned async engines."""
        for engine in self._owned:
            if isinstance(engine, AsyncEngine):
                await engine.dispose()
            else:
                engine.dispose()


def _require_psycopg(driver: str, kind: str) -> None:
    if driver not in ("psycopg", "psycopg_async"):
        raise PGVecError(
            f"the {kind} uses the {driver!r} driver; langchain-pgvec needs psycopg 3: "
            "create it from a 'postgresql+psycopg://' URL"
        )


def _register(conn: Connection) -> None:
    if not conn.info.get(_REGISTERED):
        register_vector(conn.connection.driver_connection)
        set_json_dumps(json_dumps, conn.connection.driver_connection)
        conn.info[_REGISTERED] = True


async def _aregister(conn: AsyncConnection) -> None:
    if not conn.info.get(_REGISTERED):
        raw = await conn.get_raw_connection()
        await register_vector_async(raw.driver_connection)
        set_json_dumps(json_dumps, raw.driver_connection)
        conn.info[_REGISTERED] = True


#: attempts of a statement that loses a deadlock (each after a short, growing pause)
DEADLOCK_ATTEMPTS = 5
_T = TypeVar("_T")


def _deadlocked(exc: BaseException) -> bool:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(cause, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))


def _pause(attempt: int) -> float:
    return float(0.01 * 2**attempt * (1 + random.random()))


def retrying(conn: Connection, work: Callable[[], _T]) -> _T:
    """Run ``work`` in a savepoint; if PostgreSQL picks it as a deadlock victim, roll
    back to the savepoint (releasing its locks, keeping the rest of the transaction)
    and run it again."""
    for attempt in range(DEADLOCK_ATTEMPTS):
        try:
            with conn.begin_nested():
                return work()
        except (DBAPIError, psycopg.Error) as exc:
            if not _deadlocked(exc) or attempt == DEADLOCK_ATTEMPTS - 1:
                raise
            time.sleep(_pause(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


async def aretrying(conn: AsyncConnection, work: Callable[[], Awaitable[_T]]) -> _T:
    """Async twin of :func:`retrying`."""
    for attempt in range(DEADLOCK_ATTEMPTS):
        try:
            async with conn.begin_nested():
                return await work()
        except (DBAPIError, psycopg.Error) as exc:
            if not _deadlocked(exc) or attempt == DEADLOCK_ATTEMPTS - 1:
                raise
            await asyncio.sleep(_pause(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _timeouts() -> Iterator[None]:
    """Turn a statement cancelled by ``statement_timeout`` into QueryTimeoutError."""
    try:
        yield
    except (DBAPIError, psycopg.errors.QueryCanceled) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        if not isinstance(cause, psycopg.errors.QueryCanceled):
            raise
        raise QueryTimeoutError(
            f"the statement was cancelled by statement_timeout ({cause}); raise the store's "
            "statement_timeout, add a vector index, or narrow the filter"
        ) from exc


@contextmanager
def begin(
    engine: Engine, *, vectors: bool = True, prelude: Executable | None = None
) -> Iterator[Connection]:
    """A connection in a transaction, with pgvector's binary types registered on it.

    ``prelude`` (per-transaction settings) runs first; a statement cancelled by
    ``statement_timeout`` surfaces as :class:`QueryTimeoutError`.
    """
    with _timeouts(), engine.begin() as conn:
        if vectors:
            _register(conn)
        if prelude is not None:
            conn.execute(prelude)
        yield conn


@contextmanager
def read(engine: Engine, *, prelude: Executable | None = None) -> Iterator[Connection]:
    """A connection for one read: in autocommit (no BEGIN/COMMIT round trips) unless
    per-transaction settings must apply, then a transaction as :func:`begin`."""
    if prelude is not None:
        with begin(engine, prelude=prelude) as conn:
            yield conn
        return
    with _timeouts(), engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        _register(conn)
        yield conn


@asynccontextmanager
async def aread(
    engine: AsyncEngine, *, prelude: Executable | None = None
) -> AsyncIterator[AsyncConnection]:
    """Async twin of :func:`read`."""
    if prelude is not None:
        async with abegin(engine, prelude=prelude) as conn:
            yield conn
        return
    with _timeouts():
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await _aregister(conn)
            yield conn


@asynccontextmanager
async def abegin(
    engine: AsyncEngine, *, vectors: bool = True, prelude: Executable | None = None
) -> AsyncIterator[AsyncConnection]:
    """Async twin of :func:`begin`."""
    with _timeouts():
        async with engine.begin() as conn:
            if vectors:
                await _aregister(conn)
            if prelude is not None:
                await conn.execute(prelude)
            yield conn
