"""Connections: URLs, the sync and async engine pair, transactions, deadlock retry.

Whatever the user passes (a URL, an ``Engine``, an ``AsyncEngine`` or nothing), the
store gets both a sync and an async engine on the psycopg 3 driver; the missing one
is derived from the other's URL on first use.

A store's calls each run in a transaction of their own, except inside
``store.transaction()``: :class:`Transactions` then hands every call of that store in
the same context (thread, or task) one pinned transaction (:class:`Pinned`), committed
once at the end of the block. The pin lives in a context variable, so other threads
and tasks using the store meanwhile keep their own transactions.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar

import psycopg
from sqlalchemy import URL, Connection, Dialect, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.base import Executable

from ._driver import (
    AsyncReadConnection,
    ReadConnection,
    aregister,
    check_alive,
    guard_prepared,
    register,
)
from ._errors import Access, DatabaseError, InvalidInputError, translate_errors
from ._validate import brief

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
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise InvalidInputError(
            f"connection is not a URL such as 'postgresql://user:pass@host/db' ({exc})"
        ) from exc
    if parsed.drivername not in _DRIVERS_TO_NORMALISE:
        raise InvalidInputError(
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


#: what each pool of the engines a store makes holds by default: ``pool_size``
#: connections and no overflow, so that the stores of one process made from one URL
#: hold at most 2 * 5 + 2 connections (sync pool, async pool, one search connection each)
POOL_DEFAULTS = {"pool_size": 5, "max_overflow": 0}
_SHARED: dict[tuple[Any, ...], Engines] = {}
_SHARED_LOCK = threading.Lock()


class Engines:
    """A sync and an async engine over one database, each created when first needed.

    :meth:`open` hands stores made from the same URL (and engine arguments) one
    instance, counted: the last store to close it disposes of its pools.
    """

    def __init__(
        self,
        connection: Connectable,
        engine_kwargs: dict[str, Any] | None = None,
        prepared_statements: bool | None = None,
    ):
        self._kwargs = dict(engine_kwargs or {})
        self._prepared = prepared_statements
        self._lock = threading.Lock()
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._owned: list[Engine | AsyncEngine] = []
        self._given: Engine | AsyncEngine | None = None
        self._key: tuple[Any, ...] | None = None
        self._users = 0
        #: the sync engine's own connection for searches (see ReadConnection): only
        #: on an engine this object created, with a queue pool (not, say, NullPool)
        self.reads: ReadConnection | None = None
        self.areads: AsyncReadConnection | None = None  # the async engine's, likewise
        if isinstance(connection, Engine):
            _require_psycopg(connection.dialect.driver, "Engine")
            self._sync = self._given = connection
            self.url = connection.url
            guard_prepared(connection, prepared_statements)
        elif isinstance(connection, AsyncEngine):
            _require_psycopg(connection.dialect.driver, "AsyncEngine")
            self._async = self._given = connection
            self.url = connection.url
            guard_prepared(connection.sync_engine, prepared_statements)
        elif connection is None:
            self.url = default_url()
        elif isinstance(connection, (str, URL)):
            self.url = normalise_url(connection)
        else:
            raise InvalidInputError(
                "connection must be a URL string, a sqlalchemy URL, Engine or AsyncEngine, "
                f"or None for $PGVEC_URL / the embedded server; got {type(connection).__name__}"
            )

    @classmethod
    def open(
        cls,
        connection: Connectable,
        engine_kwargs: dict[str, Any] | None = None,
        prepared_statements: bool | None = None,
        *,
        share: bool = True,
    ) -> Engines:
        """The engines of a new store: those of the process's other stores made from the
        same URL, engine arguments and prepared-statement choice (unless not ``share``),
        else new ones. Given engines are the user's to share: never pooled here."""
        if not share or not isinstance(connection, (str, URL, type(None))):
            made = cls(connection, engine_kwargs, prepared_statements)
            made._users = 1
            return made
        url = default_url() if connection is None else normalise_url(connection)
        key = (
            url.render_as_string(hide_password=False),
            repr(sorted((engine_kwargs or {}).items())),
            prepared_statements,
        )
        with _SHARED_LOCK:
            engines = _SHARED.get(key)
            if engines is None:
                engines = _SHARED[key] = cls(url, engine_kwargs, prepared_statements)
                engines._key = key
            engines._users += 1
            return engines

    def _release(self, store_done: bool) -> bool:
        """Whether no store uses these engines any more, after one is done with them
        (``store_done``), or without that (a closed store that was used again)."""
        with _SHARED_LOCK:
            if store_done:
                self._users = max(0, self._users - 1)
            if self._users:
                return False
            if self._key is not None and _SHARED.get(self._key) is self:
                del _SHARED[self._key]
            return True

    @property
    def sync(self) -> Engine:
        """The sync engine (derived from the async engine's URL if only that was given)."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    engine = self._derive(create_engine)
                    if self._given is None and isinstance(engine.pool, QueuePool):
                        self.reads = ReadConnection(engine)
                    self._sync = engine
        return self._sync

    @property
    def async_(self) -> AsyncEngine:
        """The async engine (derived from the sync engine's URL if only that was given)."""
        if self._async is None:
            with self._lock:
                if self._async is None:
                    engine = self._derive(create_async_engine)
                    if self._given is None and isinstance(engine.pool, QueuePool):
                        self.areads = AsyncReadConnection(engine)
                    self._async = engine
        return self._async

    @property
    def dialect(self) -> Dialect:
        """The SQLAlchemy dialect statements are compiled for (the given engine's)."""
        return (self._given or self.sync).dialect

    def _derive(self, factory: Any) -> Any:
        if self._given is None:
            engine = self._create(factory)
            self._owned.append(engine)
            return engine
        with _DERIVED_LOCK:
            engine = _DERIVED.get(self._given)
            if engine is None:
                engine = _DERIVED[self._given] = self._create(factory)
        sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        guard_prepared(sync_engine, self._prepared)
        return engine

    def _create(self, factory: Any) -> Any:
        kwargs = dict(self._kwargs)
        if "poolclass" not in kwargs:
            for name, value in POOL_DEFAULTS.items():
                kwargs.setdefault(name, value)
        try:
            engine = factory(self.url, **kwargs)
        except (TypeError, ValueError, ArgumentError) as exc:
            raise InvalidInputError(
                f"engine_kwargs {sorted(self._kwargs)} are not arguments SQLAlchemy's "
                f"create_engine takes for this URL ({exc})"
            ) from exc
        sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        if "pool_pre_ping" not in self._kwargs:  # the user's choice, when made, stands
            event.listen(sync_engine, "checkout", check_alive)
        guard_prepared(sync_engine, self._prepared)
        return engine

    def dispose(self, store_done: bool = True) -> None:
        """Close the pools of the engines this object created (never the user's), once
        the last store using them is done with them.

        ``store_done=False``: a store closed already closes again (it was used after
        closing, which opened connections): the pools close if no other store uses them.

        An async pool is closed on a thread of its own, with an event loop of its own:
        this may be called from inside a running loop, and closing a psycopg
        connection does not need the loop that opened it.
        """
        if not self._release(store_done):
            return
        for reads in (self.reads, self.areads):
            if reads is not None:
                reads.close()
        for engine in self._owned:
            if isinstance(engine, Engine):
                engine.dispose()
            else:
                closer = threading.Thread(target=asyncio.run, args=(engine.dispose(),))
                closer.start()
                closer.join()

    async def adispose(self, store_done: bool = True) -> None:
        """Async twin of :meth:`dispose`."""
        if not self._release(store_done):
            return
        for reads in (self.reads, self.areads):
            if reads is not None:
                reads.close()
        for engine in self._owned:
            if isinstance(engine, AsyncEngine):
                await engine.dispose()
            else:
                engine.dispose()


def _require_psycopg(driver: str, kind: str) -> None:
    if driver not in ("psycopg", "psycopg_async"):
        raise InvalidInputError(
            f"the {kind} uses the {driver!r} driver; langchain-pgvec needs psycopg 3: "
            "create it from a 'postgresql+psycopg://' URL"
        )


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
    and run it again.

    Not on a pinned transaction's connection (:class:`Transactions`): the locks of its
    earlier calls stay held across a retry, so the same cycle would form again, after
    another ``deadlock_timeout``. There ``work`` runs once, and a deadlock fails the
    block, which rolls back whole (and may be run again whole).
    """
    if _pinned_on(conn):
        return work()
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
    if _pinned_on(conn):
        return await work()
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
def begin(
    engine: Engine,
    *,
    vectors: bool = True,
    prelude: Executable | None = None,
    access: Access | None = None,
) -> Iterator[Connection]:
    """A connection in a transaction, with pgvector's binary types registered on it.

    ``prelude`` (per-transaction settings) runs first. Driver errors surface as
    PGVecErrors (:func:`translate_errors`; ``access`` says what the call needed).
    """
    with translate_errors(access), engine.begin() as conn:
        if vectors:
            register(conn)
        if prelude is not None:
            conn.execute(prelude)
        yield conn


@asynccontextmanager
async def abegin(
    engine: AsyncEngine,
    *,
    vectors: bool = True,
    prelude: Executable | None = None,
    access: Access | None = None,
) -> AsyncIterator[AsyncConnection]:
    """Async twin of :func:`begin`."""
    with translate_errors(access):
        async with engine.begin() as conn:
            if vectors:
                await aregister(conn)
            if prelude is not None:
                await conn.execute(prelude)
            yield conn


# ------------------------------------------------------------------ one transaction, many calls


class Pinned:
    """The transaction that :meth:`Transactions.pin` holds open for its block.

    Every call of the owner in the block's context runs on :attr:`connection`, one call
    at a time (:attr:`lock`). A call that fails inside it leaves the transaction
    unusable (:attr:`failure`): later calls raise, and the block rolls back.

    The owner keeps what it learns during the transaction here, so that nothing
    outside sees it before the commit, and nothing of a rollback stays: :attr:`state`
    (its cache, as this transaction sees it), :attr:`added` and :attr:`removed` (rows
    changed, counted towards statistics once committed).
    """

    def __init__(self, connection: Connection | AsyncConnection, state: Any) -> None:
        self.connection = connection
        self.lock: Any = (
            asyncio.Lock() if isinstance(connection, AsyncConnection) else threading.RLock()
        )
        self.failure: BaseException | None = None
        self.ended = False
        self.state = state
        self.added = 0
        self.removed = 0

    def sync_connection(self) -> Connection:
        """The connection, for a sync call; ``InvalidInputError`` in an async block."""
        if not isinstance(self.connection, Connection):
            raise InvalidInputError(
                "this store is inside `async with store.atransaction()` here, whose "
                "connection is async: call the async methods (aadd_documents, adelete, "
                "asimilarity_search, ...) inside that block"
            )
        return self.connection

    def async_connection(self) -> AsyncConnection:
        """The connection, for an async call; ``InvalidInputError`` in a sync block."""
        if not isinstance(self.connection, AsyncConnection):
            raise InvalidInputError(
                "this store is inside `with store.transaction()` here, whose connection "
                "is sync: call the sync methods inside that block, or use `async with "
                "store.atransaction()`"
            )
        return self.connection

    def check(self) -> None:
        """Raise when a call failed inside the transaction (which then rolls back)."""
        if self.failure is not None:
            raise DatabaseError(
                f"a call inside this store transaction failed ({brief(self.failure)}), so "
                "the transaction was rolled back: nothing of it was committed"
            ) from self.failure

    @contextmanager
    def using(self, access: Access | None) -> Iterator[None]:
        """One call on the connection (the lock held): driver errors translated, and any
        error recorded as the transaction's failure."""
        if self.ended:
            raise InvalidInputError(
                "the store transaction this call was started in has ended; make the call "
                "outside it, or inside a new one"
            )
        self.check()
        try:
            with translate_errors(access):
                yield
        except BaseException as exc:
            self.failure = exc
            raise


_UNPINNED: Mapping[Transactions, Pinned] = MappingProxyType({})
#: the transactions pinned in this context, by owner (copied on change, never mutated)
_PINNED: ContextVar[Mapping[Transactions, Pinned]] = ContextVar(
    "langchain_pgvec_pinned", default=_UNPINNED
)


def _pinned_on(conn: Connection | AsyncConnection) -> bool:
    """Whether ``conn`` is the connection of a transaction pinned in this context."""
    return any(pinned.connection is conn for pinned in _PINNED.get().values())


class Transactions:
    """The transactions of one owner (a store, and the record managers bound to it).

    :meth:`begin` gives a call its own transaction, or the pinned one when the call
    runs inside :meth:`pin` (in the same thread or task, or one started from it).
    """

    def current(self) -> Pinned | None:
        """The transaction pinned for this owner in this context, if any."""
        pinned = _PINNED.get().get(self)
        return None if pinned is None or pinned.ended else pinned

    @contextmanager
    def begin(
        self,
        engine: Engine,
        *,
        vectors: bool = True,
        prelude: Executable | None = None,
        access: Access | None = None,
    ) -> Iterator[Connection]:
        """:func:`begin`, or the pinned transaction's connection (whose settings were
        made when it began: ``prelude`` is not run again)."""
        pinned = self.current()
        if pinned is None:
            with begin(engine, vectors=vectors, prelude=prelude, access=access) as conn:
                yield conn
            return
        conn = pinned.sync_connection()
        with pinned.lock, pinned.using(access):
            if vectors:
                register(conn)
            yield conn

    @asynccontextmanager
    async def abegin(
        self,
        engine: AsyncEngine,
        *,
        vectors: bool = True,
        prelude: Executable | None = None,
        access: Access | None = None,
    ) -> AsyncIterator[AsyncConnection]:
        """Async twin of :meth:`begin`."""
        pinned = self.current()
        if pinned is None:
            async with abegin(engine, vectors=vectors, prelude=prelude, access=access) as conn:
                yield conn
            return
        conn = pinned.async_connection()
        async with pinned.lock:
            with pinned.using(access):
                if vectors:
                    await aregister(conn)
                yield conn

    @contextmanager
    def pin(
        self,
        engine: Engine,
        *,
        prelude: Executable | None,
        access: Access | None,
        state: Any,
    ) -> Iterator[Pinned]:
        """Pin one transaction for the block: committed at its end, rolled back if the
        block raises or a call inside it failed.

        Inside a block of the same owner, joins it (one commit, at the outer end); a
        nested block that raises leaves the outer one to roll back. ``state``: the
        owner's cache, as the transaction starts with it.
        """
        outer = self.current()
        if outer is not None:
            outer.sync_connection()
            try:
                yield outer
            except BaseException as exc:
                outer.failure = outer.failure or exc
                raise
            return
        # no vector types yet: the block's first call may be the one that creates the
        # extension; each call registers them when it needs them (begin above)
        with begin(engine, vectors=False, prelude=prelude, access=access) as conn:
            pinned = Pinned(conn, state)
            token = _PINNED.set({**_PINNED.get(), self: pinned})
            try:
                yield pinned
            finally:
                _PINNED.reset(token)
                with pinned.lock:  # a call of a thread started inside ends first
                    pinned.ended = True
            pinned.check()

    @asynccontextmanager
    async def apin(
        self,
        engine: AsyncEngine,
        *,
        prelude: Executable | None,
        access: Access | None,
        state: Any,
    ) -> AsyncIterator[Pinned]:
        """Async twin of :meth:`pin`."""
        outer = self.current()
        if outer is not None:
            outer.async_connection()
            try:
                yield outer
            except BaseException as exc:
                outer.failure = outer.failure or exc
                raise
            return
        async with abegin(engine, vectors=False, prelude=prelude, access=access) as conn:
            pinned = Pinned(conn, state)
            token = _PINNED.set({**_PINNED.get(), self: pinned})
            try:
                yield pinned
            finally:
                _PINNED.reset(token)
                async with pinned.lock:  # a call of a task started inside ends first
                    pinned.ended = True
            pinned.check()
