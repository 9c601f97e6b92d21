"""PGVecRecordManager: LangChain's ``RecordManager`` in the store's database.

A record manager is bound to a store: its statements run on the store's engines,
with the store's ``statement_timeout``, and inside ``store.transaction()`` on that
transaction's connection, so that the records and the vectors of an indexing run
commit together. The statements are built by ``_records`` (pure); the methods here
are thin sync and async shells around them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from langchain_core.indexing import RecordManager
from psycopg import errors as pg
from sqlalchemy import Connection, Select, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateSchema

from . import _records, _sql
from ._catalog import schema_exists
from ._driver import DriverStatement, afetch, fetch
from ._engine import aretrying, retrying
from ._errors import Access, DatabaseError, InvalidInputError, SchemaError
from ._records import DEFAULT_RECORD_TABLE
from ._store import PGVecStore


def _create(conn: Connection, table: Table) -> None:
    """Create the record table (and its schema) unless it exists.

    Once, however many callers try at the same time.
    """
    conn.execute(_records.create_lock(table))
    if table.schema and not schema_exists(conn, table.schema):
        conn.execute(CreateSchema(table.schema, if_not_exists=True))
    table.metadata.create_all(conn, checkfirst=True)


def _undefined_table(error: BaseException) -> bool:
    cause = error.__cause__
    return isinstance(cause.orig if isinstance(cause, DBAPIError) else cause, pg.UndefinedTable)


def _unprepared(statement: Select[Any], conn: Connection | AsyncConnection) -> DriverStatement:
    """``statement`` for psycopg, never prepared (its values are fixed parameters).

    A listing's best plan depends on its values: how many records are older than
    ``before``, which groups. Prepared (psycopg does so from a statement's fifth run on a
    connection), it soon runs one generic plan for all values, and during an indexing
    run over a table of records loaded in one go, that plan scanned every record older
    than ``before`` for each batch.
    """
    return DriverStatement.compile(statement, conn.dialect, _sql.QUERY)


def _keys_unprepared(conn: Connection, statement: Select[Any]) -> list[str]:
    """The keys ``statement`` selects, on the transaction's psycopg connection."""
    driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    return [row[0] for row in fetch(driver, _unprepared(statement, conn), None)]


async def _akeys_unprepared(conn: AsyncConnection, statement: Select[Any]) -> list[str]:
    """Async twin of :func:`_keys_unprepared`."""
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    return [row[0] for row in await afetch(driver, _unprepared(statement, conn), None)]


def _check_clock(rows: int, time_at_least: float | None) -> None:
    """An update that wrote nothing found the server's clock behind ``time_at_least``."""
    if rows == 0 and time_at_least is not None:
        raise InvalidInputError(
            f"the database server's clock reads earlier than time_at_least={time_at_least!r}, "
            "so nothing was written: pass a time that get_time() returned (the server's "
            "clock), not one of another clock"
        )


class PGVecRecordManager(RecordManager):
    """A LangChain ``RecordManager`` whose records live in the store's database.

    For LangChain's indexing API (``langchain_core.indexing.index``): one row per
    indexed document in its own table, ``pgvec_record`` by default, in the store's
    schema, keyed by (namespace, key), with the document's source (``group_id``) and
    when it was last indexed (``updated_at``, the database server's clock).

    Bound to a store: through :meth:`PGVecStore.index`, or inside
    :meth:`PGVecStore.transaction`, its updates commit in one transaction with the
    store's writes, so an indexing run that fails midway leaves both as they were.
    Elsewhere each call is a transaction of its own, as with any record manager.

    Args:
        namespace: The namespace of the records (e.g. ``"pgvec/docs"``); record
            managers of different namespaces share the table and never see each
            other's records.
        store: The :class:`PGVecStore` whose database, schema, connections,
            ``statement_timeout`` and transactions the record manager uses.
        table: The record table's name.

    Raises:
        InvalidInputError: ``store`` is not a PGVecStore, or ``namespace`` is not a
            non-empty string PostgreSQL can store, of at most 500 bytes.
        SchemaError: ``table`` is not a name of at most 48 bytes PostgreSQL can store,
            or is one of the store's own tables.

    Example:
        .. code-block:: python

            from langchain_pgvec import PGVecRecordManager

            records = PGVecRecordManager("pgvec/docs", store=store)
            records.create_schema()
            store.index(docs, records, cleanup="incremental", source_id_key="source")
    """

    def __init__(
        self, namespace: str, *, store: PGVecStore, table: str = DEFAULT_RECORD_TABLE
    ) -> None:
        if not isinstance(store, PGVecStore):
            raise InvalidInputError(f"store must be a PGVecStore, got {type(store).__name__}")
        super().__init__(_records.check_namespace(namespace))
        spec = store._spec
        self._store = store
        self._table = _records.record_table(spec.schema, _records.check_table_name(table, spec))
        self._access = Access(
            "SELECT, INSERT, UPDATE, DELETE",
            (_records.qualified(self._table),),
            store._engines.url.username,
            spec.schema,
        )

    @property
    def store(self) -> PGVecStore:
        """The store this record manager is bound to."""
        return self._store

    @property
    def table(self) -> Table:
        """The record table (a SQLAlchemy ``Table``, for queries of your own)."""
        return self._table

    @contextmanager
    def _session(self) -> Iterator[Connection]:
        """A transaction of its own, or the store's pinned one."""
        with self._missing_table(), self._store._connection(self._access) as conn:
            yield conn

    @asynccontextmanager
    async def _asession(self) -> AsyncIterator[AsyncConnection]:
        """Async twin of :meth:`_session`."""
        with self._missing_table():
            async with self._store._aconnection(self._access) as conn:
                yield conn

    @contextmanager
    def _missing_table(self) -> Iterator[None]:
        try:
            yield
        except DatabaseError as exc:
            if not _undefined_table(exc):
                raise
            raise SchemaError(
                f"the record table {_records.qualified(self._table)!r} does not exist: call "
                "the record manager's create_schema() once (as a role that may create "
                "tables)"
            ) from exc

    def create_schema(self) -> None:
        """Create the record table and its indexes (and the store's schema) if missing.

        A table that exists is left as it is, so a role that may not create tables can
        call this once the table's owner has.

        Raises:
            PrivilegeError: The role may not create the table (or the schema).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        with self._session() as conn:
            _create(conn, self._table)

    async def acreate_schema(self) -> None:
        """Async twin of :meth:`create_schema`."""
        async with self._asession() as conn:
            await conn.run_sync(_create, self._table)

    def get_time(self) -> float:
        """The database server's clock (``clock_timestamp()``), in seconds since the epoch.

        The time every update stamps its records with, whichever client writes them.

        Returns:
            The time, to the microsecond.

        Raises:
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused the statement.
        """
        with self._session() as conn:
            return float(conn.execute(_records.server_time()).scalar_one())

    async def aget_time(self) -> float:
        """Async twin of :meth:`get_time`."""
        async with self._asession() as conn:
            return float((await conn.execute(_records.server_time())).scalar_one())

    def update(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        """Insert or refresh records, all stamped with the server's clock now.

        Args:
            keys: The record keys (for the indexing API, the documents' ids).
            group_ids: One group id (the document's source) or None per key, or None.
            time_at_least: When given, the server's clock must read at least this (a
                time :meth:`get_time` returned); otherwise nothing is written.

        Raises:
            InvalidInputError: ``keys`` is not a list of strings PostgreSQL can store in
                at most 2,000 bytes, ``group_ids`` not one such string (or None) per
                key, ``time_at_least`` not a number; or the server's clock reads
                earlier than ``time_at_least`` (nothing was written).
            SchemaError: The record table does not exist (:meth:`create_schema`).
            PrivilegeError: The role may not write the record table.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused the statement for another reason.
        """
        statement = _records.update(self._table, self.namespace, keys, group_ids, time_at_least)
        if statement is None:
            return
        with self._session() as conn:
            rows = retrying(conn, lambda: conn.execute(statement)).rowcount
        _check_clock(rows, time_at_least)

    async def aupdate(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        """Async twin of :meth:`update`."""
        statement = _records.update(self._table, self.namespace, keys, group_ids, time_at_least)
        if statement is None:
            return
        async with self._asession() as conn:
            rows = (await aretrying(conn, lambda: conn.execute(statement))).rowcount
        _check_clock(rows, time_at_least)

    def exists(self, keys: Sequence[str]) -> list[bool]:
        """Which of the keys have a record in the namespace.

        Args:
            keys: The record keys.

        Returns:
            One boolean per key, in order.

        Raises:
            InvalidInputError: ``keys`` is not a list of strings PostgreSQL can store in
                at most 2,000 bytes.
            SchemaError: The record table does not exist (:meth:`create_schema`).
            PrivilegeError: The role may not read the record table.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused the statement for another reason.
        """
        checked = _records.check_keys(keys)
        if not checked:
            return []
        statement = _records.existing(self._table, self.namespace, checked)
        with self._session() as conn:
            found = set(conn.execute(statement).scalars())
        return _records.flags(checked, found)

    async def aexists(self, keys: Sequence[str]) -> list[bool]:
        """Async twin of :meth:`exists`."""
        checked = _records.check_keys(keys)
        if not checked:
            return []
        statement = _records.existing(self._table, self.namespace, checked)
        async with self._asession() as conn:
            found = set((await conn.execute(statement)).scalars())
        return _records.flags(checked, found)

    def list_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """The keys of the namespace's records that match all the filters given.

        As LangChain's own record managers read them: the bounds are strict, an empty
        ``group_ids`` lists every group, and ``limit=0`` lists every key.

        Args:
            before: Records updated before this time (a time :meth:`get_time` returned).
            after: Records updated after this time.
            group_ids: Records of these groups (sources) only.
            limit: The most keys to return.

        Returns:
            The keys, in no particular order.

        Raises:
            InvalidInputError: A time that is not a finite number, ``group_ids`` that
                is not a list of strings, or ``limit`` not an integer from 0 to
                2,147,483,647.
            SchemaError: The record table does not exist (:meth:`create_schema`).
            PrivilegeError: The role may not read the record table.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused the statement for another reason.
        """
        statement = _records.listing(
            self._table,
            self.namespace,
            before=before,
            after=after,
            group_ids=group_ids,
            limit=limit,
        )
        with self._session() as conn:
            return _keys_unprepared(conn, statement)

    async def alist_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Async twin of :meth:`list_keys`."""
        statement = _records.listing(
            self._table,
            self.namespace,
            before=before,
            after=after,
            group_ids=group_ids,
            limit=limit,
        )
        async with self._asession() as conn:
            return await _akeys_unprepared(conn, statement)

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete the namespace's records of these keys (keys without one are ignored).

        Args:
            keys: The record keys.

        Raises:
            InvalidInputError: ``keys`` is not a list of strings PostgreSQL can store in
                at most 2,000 bytes.
            SchemaError: The record table does not exist (:meth:`create_schema`).
            PrivilegeError: The role may not delete from the record table.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused the statement for another reason.
        """
        checked = _records.check_keys(keys)
        if not checked:
            return
        statement = _records.deletion(self._table, self.namespace, checked)
        with self._session() as conn:
            retrying(conn, lambda: conn.execute(statement))

    async def adelete_keys(self, keys: Sequence[str]) -> None:
        """Async twin of :meth:`delete_keys`."""
        checked = _records.check_keys(keys)
        if not checked:
            return
        statement = _records.deletion(self._table, self.namespace, checked)
        async with self._asession() as conn:
            await aretrying(conn, lambda: conn.execute(statement))

    def __repr__(self) -> str:
        return (
            f"PGVecRecordManager(namespace={self.namespace!r}, "
            f"table={_records.qualified(self._table)!r}, store={self._store!r})"
        )
