"""PGVecStore: the LangChain ``VectorStore`` over PostgreSQL + pgvector.

Each public method is a thin shell: validate the input (pure), learn the tables and
the collection (cached for a minute), build the statements (``_sql``, ``_search``;
pure), run them on the sync or the async engine, map rows to Documents (shared
helpers). Sync and async twins differ only in ``await``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import os
import sys
import time
import uuid
import warnings
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from types import FrameType
from typing import Any, ClassVar, Literal, TypeVar, cast

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import IndexingResult, RecordManager
from langchain_core.indexing import aindex as _aindex
from langchain_core.indexing import index as _index
from langchain_core.vectorstores import VectorStore
from sqlalchemy import URL, Connection, Engine
from sqlalchemy.engine import Result, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from . import (
    _hybrid,
    _index_admin,
    _index_specs,
    _ingest,
    _mmr,
    _progress,
    _replicas,
    _sql,
    _terms,
    _tuning,
)
from ._bootstrap import (
    State,
    analyze,
    changed,
    drop_collection,
    ensure,
    epoch,
    lock_collection,
    table_key,
    tidy_text,
)
from ._catalog import IndexInfo, read_indexes
from ._driver import aread, aread_inside, read, read_inside
from ._engine import (
    Connectable,
    Engines,
    Transactions,
    abegin,
    aretrying,
    begin,
    normalise_url,
    retrying,
)
from ._errors import Access, InvalidInputError, PerformanceWarning, PGVecError, SchemaError
from ._filters import IndexKind, compile_filter, validate_filter
from ._index_specs import IndexSpec
from ._mmr import check_lambda
from ._retriever import PGVecRetriever
from ._schema import MAX_DIMENSION, DistanceStrategy, Tables, TableSpec, VectorType, mapped_tables
from ._search import Planner, Request, Steps
from ._tuning import SearchSettings
from ._validate import (
    Batch,
    brief,
    check_full_text,
    check_ids,
    check_int,
    check_key,
    check_query,
    check_string,
    lookup_ids,
    prepare,
)

Filter = Mapping[str, Any]
_R = TypeVar("_R")
#: what :meth:`PGVecStore.index` and :meth:`PGVecStore.aindex` index: a LangChain document
#: loader or an iterable of Documents (or, for ``aindex`` only, an async iterable)
DocumentSource = BaseLoader | Iterable[Document] | AsyncIterable[Document]
#: the keywords of langchain-core's ``index()`` that the store's ``index()`` passes on
_INDEX_KEYWORDS = frozenset(inspect.signature(_index).parameters) - {
    "docs_source",
    "record_manager",
    "vector_store",
}
_CLEANUPS = (None, "incremental", "full", "scoped_full")
#: seconds the store trusts what it read of the tables (indexes, row estimate, ...)
STATE_TTL = 60.0
#: statistics are refreshed after this store wrote or deleted this share of the
#: table's rows, and at least ANALYZE_MIN_ROWS
ANALYZE_SHARE = 0.2
ANALYZE_MIN_ROWS = 1000
#: write calls of a full-text store after which it folds its collection's term
#: statistics (see :mod:`._terms`); a statistics refresh folds them too
COMPACT_EVERY = 100


def _documents(rows: Iterable[Row[Any]]) -> list[Document]:
    return [Document(id=r.id, page_content=r.content or "", metadata=r.metadata) for r in rows]


def _scored(rows: Iterable[Sequence[Any]]) -> list[tuple[Document, float]]:
    """(Document, distance) pairs from ``(id, content, metadata, distance, ...)`` rows."""
    return [(Document(id=r[0], page_content=r[1] or "", metadata=r[2]), float(r[3])) for r in rows]


def _fused(rows: Iterable[Sequence[Any]]) -> list[tuple[Document, float]]:
    """(Document, score) pairs from ``(id, content, metadata, score, ...)`` rows."""
    return _scored(rows)


def _in_order(documents: list[Document], ids: Sequence[str]) -> list[Document]:
    by_id = {doc.id: doc for doc in documents}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def _first_then(steps: Steps, make: Callable[[], Steps]) -> Callable[[], Steps]:
    """``steps`` at the first call, fresh ones from ``make`` at the next."""
    made = [steps]
    return lambda: made.pop() if made else make()


def _writable(state: State | None) -> State:
    if state is None:  # pragma: no cover - ensure(create=True) always returns a state
        raise SchemaError("the tables could not be created")
    return state


_log = logging.getLogger("langchain_pgvec")
_ORPHAN_DROP_FAILED = "dropping index %s of the deleted collection failed: %s"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _stacklevel() -> int:
    """The ``warnings.warn`` stacklevel, for its caller, of the first frame outside this package."""
    level, frame = 2, sys._getframe(2)
    current: FrameType | None = frame
    while current is not None and current.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, current = level + 1, current.f_back
    return level


def _plan_text(rows: Sequence[Sequence[Any]]) -> str:
    return "\n".join(str(row[0]) for row in rows)


def _strategy(value: object) -> DistanceStrategy:
    try:
        return DistanceStrategy(value)
    except ValueError:
        names = ", ".join(repr(s.value) for s in DistanceStrategy)
        raise InvalidInputError(
            f"distance_strategy must be a DistanceStrategy or one of {names}, got {value!r}"
        ) from None


def _timeout_ms(seconds: object) -> int:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise InvalidInputError(
            f"statement_timeout must be a positive number of seconds (or None), got {seconds!r}"
        )
    return max(1, int(seconds * 1000))


def _check_k(k: int, name: str = "k") -> None:
    check_int(k, name)


class PGVecStore(VectorStore):
    """A LangChain vector store on PostgreSQL + pgvector.

    Documents live in one embedding table shared by many collections; ids are scoped
    to their collection. Every method has a native async twin that works on the same
    instance, whatever ``connection`` was given.

    Args:
        embeddings: Any LangChain ``Embeddings``.
        connection: A URL (``postgresql://...``; URLs naming another PostgreSQL driver
            are switched to psycopg 3), a SQLAlchemy ``Engine`` or ``AsyncEngine`` on
            psycopg 3, or None for ``$PGVEC_URL``, else the embedded server
            (``langchain_pgvec.embedded``, started when needed).
        collection_name: The collection this store reads and writes.
        distance_strategy: A :class:`DistanceStrategy` or its value: cosine (default),
            euclidean or inner product.
        embedding_length: The vectors' dimension; when None it is read from the
            existing table or taken from the first vectors written.
        vector_type: ``"vector"`` (float32) or ``"halfvec"`` (float16: half the
            memory, indexable up to 4,000 dimensions).
        schema: The PostgreSQL schema of the tables (None: the search path's first).
        collection_table: Name of the collection table.
        embedding_table: Name of the embedding table.
        collection_metadata: Metadata stored with a collection this store creates.
        relevance_score_fn: Override the distance-to-relevance mapping.
        search_settings: Defaults for approximate search (``ef_search``, iterative
            scans, ...); each search call may override them with keyword arguments.
        statement_timeout: Seconds after which PostgreSQL cancels a statement of this
            store's searches, reads and writes (``QueryTimeoutError``); index builds,
            ``ANALYZE`` and the store's catalog reads are not bounded by it. None for
            the server's setting.
        full_text: Enable full-text and hybrid search: True for the ``english`` text
            search configuration, or a configuration's name. Adds a generated
            ``tsvector`` column and a GIN index (to an existing table too, when this
            role owns it).
        create_extension: Run ``CREATE EXTENSION vector`` when a call that creates the
            tables finds the extension missing (it needs a superuser). False for
            servers where it is managed elsewhere: such a call then raises
            ``ExtensionError``.
        engine_kwargs: Extra ``create_engine`` arguments for the engines this store
            makes (from a URL, or the twin of a given engine); each pool holds
            ``pool_size`` connections, 5 by default, and no overflow.
        prepared_statements: Whether psycopg may prepare statements on the server.
            None (default): yes, except on connections that go through a pooler or
            proxy (the server listens on another port or socket than the one
            connected to); False: never (a pooler in transaction mode that this
            cannot see, such as one on the server's own port); True: always
            (PgBouncer 1.21+ with ``max_prepared_statements``, or a session pooler).
        share_engines: Share the engines (and their connections) of this process's
            other stores made from the same URL and arguments (default); False for
            engines of this store's own.
        read_replicas: URLs of PostgreSQL streaming replicas of ``connection``'s
            server. Searches and reads (``get``, ``get_by_ids``, ``count``, every
            search, ``explain``) go to them in turn; writes, DDL, ``transaction()``
            blocks and the store's reads of its tables' state go to the primary. A
            replica that fails is skipped for a while (1 s, doubling to 30 s) and the
            read is retried on the next, the primary last. Each replica gets engines
            as the primary's (``engine_kwargs``, ``prepared_statements``).
        read_your_writes: After this store's write commits, a read waits (up to
            ``replica_wait``) until the chosen replica has replayed it, else reads on
            the primary; one ``pg_current_wal_lsn()`` more per write. True by
            default: add-then-search is how a vector store is used, and without it a
            lagging replica silently misses what was just added. False for stores
            that may read slightly stale data.
        replica_wait: Seconds a read after a write waits for a replica to replay it
            (0 to 60; default 0.5: a healthy replica replays in milliseconds, and one
            further behind is slower than reading on the primary).
        partitioned: Whether the embedding table is partitioned by collection (``PARTITION
            BY LIST (collection_id)``): each collection is a partition of its own, with
            its own graph of each vector index; deleting one drops its partition. Chosen
            when the table is created; None (default) follows the existing table (a new
            one is not partitioned), and True or False on a table made the other way is
            a ``SchemaError``. Only the table's owner creates and deletes collections
            of a partitioned table.

    Raises:
        InvalidInputError: ``collection_name`` is not a non-empty string PostgreSQL can
            store, or is over 2,000 bytes; ``statement_timeout`` is too large;
            ``read_replicas`` is not a list of distinct PostgreSQL URLs,
            ``read_your_writes`` not a bool, or ``replica_wait`` not from 0 to 60.
        SchemaError: A schema or table name, ``vector_type``, ``embedding_length`` or
            text search configuration that cannot be used.
        ValueError: ``distance_strategy`` is not a :class:`DistanceStrategy` value.
        PGVecError: ``connection`` is not a PostgreSQL URL, is an engine on another
            driver than psycopg 3, or is of another type.
        EmbeddedServerError: ``connection`` is None, ``$PGVEC_URL`` is not set, and the
            embedded server is not installed or does not start.

    Example:
        .. code-block:: python

            from langchain_pgvec import PGVecStore, HashingEmbeddings

            store = PGVecStore(HashingEmbeddings(), collection_name="docs")
            store.add_texts(["PostgreSQL stores vectors"], metadatas=[{"year": 2024}])
            store.similarity_search("vectors", k=1, filter={"year": {"$gte": 2020}})
    """

    _DEFAULT_BATCH: ClassVar[int] = 1000
    _unindexed_warned: bool = False
    _advised: State | None = None
    _closed: bool = False

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        connection: Connectable = None,
        collection_name: str = "langchain",
        distance_strategy: DistanceStrategy | str = DistanceStrategy.COSINE,
        embedding_length: int | None = None,
        vector_type: VectorType = "vector",
        schema: str | None = None,
        collection_table: str = "pgvec_collection",
        embedding_table: str = "pgvec_embedding",
        collection_metadata: dict[str, Any] | None = None,
        relevance_score_fn: Callable[[float], float] | None = None,
        search_settings: SearchSettings | None = None,
        statement_timeout: float | None = None,
        full_text: bool | str = False,
        create_extension: bool = True,
        engine_kwargs: dict[str, Any] | None = None,
        prepared_statements: bool | None = None,
        share_engines: bool = True,
        read_replicas: Sequence[str | URL] | None = None,
        read_your_writes: bool = True,
        replica_wait: float = _replicas.DEFAULT_WAIT,
        partitioned: bool | None = None,
    ) -> None:
        if not isinstance(collection_name, str) or not collection_name:
            raise InvalidInputError(
                f"collection_name must be a non-empty string, got {collection_name!r}"
            )
        check_string(collection_name, "collection_name")
        check_key(collection_name, "collection_name")
        replica_urls = _replicas.check_replicas(read_replicas, normalise_url)
        ryw = _replicas.check_flag(read_your_writes, "read_your_writes")
        wait = _replicas.check_wait(replica_wait)
        self._embeddings = embeddings
        self.collection_name = collection_name
        self.distance_strategy = _strategy(distance_strategy)
        self.override_relevance_score_fn = relevance_score_fn
        if embedding_length is not None:
            check_int(
                embedding_length, "embedding_length", 1, MAX_DIMENSION.get(vector_type, 16000)
            )
        self._spec = TableSpec(
            schema=schema,
            collection_table=collection_table,
            embedding_table=embedding_table,
            dimension=embedding_length,
            vector_type=vector_type,
            text_search_config="english" if full_text is True else (full_text or None),
            partitioned=partitioned,
        )
        self._collection_metadata = dict(collection_metadata or {})
        self._create_extension = bool(create_extension)
        timeout_ms = None if statement_timeout is None else _timeout_ms(statement_timeout)
        self.search_settings = (search_settings or SearchSettings()).merged(
            SearchSettings(statement_timeout_ms=timeout_ms)
        )
        self._engines = Engines.open(
            connection, engine_kwargs, prepared_statements, share=share_engines
        )
        #: the replicas searches and reads go to (none: the primary)
        self._replicas = _replicas.Replicas(
            [
                Engines.open(url, engine_kwargs, prepared_statements, share=share_engines)
                for url in replica_urls
            ],
            ryw,
            wait,
        )
        self._table_key = table_key(self._engines.url, self._spec)
        role = self._engines.url.username
        names: tuple[str, ...] = (
            self._spec.qualified_embedding_table,
            self._spec.qualified_collection_table,
        )
        if self._spec.text_search_config is not None:  # the term statistics, too
            terms = _terms.terms_table(self._spec).name
            names += (terms if schema is None else f"{schema}.{terms}",)
        self._read_access = Access("SELECT", names, role, schema)
        self._write_access = Access("SELECT, INSERT, UPDATE, DELETE", names, role, schema)
        #: the store's transactions: one per call, or the one transaction() pins
        self._tx = Transactions()
        #: what the store knows of its tables (see _state), as committed
        self._committed_state: State | None = None
        self._planner_made: Planner | None = None
        #: rows this store wrote or deleted since the table's statistics were last
        #: refreshed (by this store, or when the state was read)
        self._changed = 0
        self._text_writes = 0

    # ------------------------------------------------------------------ plumbing

    @property
    def embeddings(self) -> Embeddings:
        """The embeddings model."""
        return self._embeddings

    @property
    def _state(self) -> State | None:
        """What the store knows of its tables and collection (cached for a minute).

        Inside :meth:`transaction`, the transaction's own view (it may have created
        the tables or the collection), which becomes the store's at the commit and is
        dropped at a rollback; elsewhere, what was committed.
        """
        pinned = self._tx.current()
        return self._committed_state if pinned is None else cast("State | None", pinned.state)

    @_state.setter
    def _state(self, state: State | None) -> None:
        pinned = self._tx.current()
        if pinned is None:
            self._committed_state = state
        else:
            pinned.state = state

    @property
    def table_spec(self) -> TableSpec:
        """The tables this store reads and writes.

        Schema, table names, dimension, vector type and text search configuration. The
        dimension is the table's once the store has read it, else ``embedding_length``
        as given (None when it was not).
        """
        state = self._state
        return state.tables.spec if state is not None else self._spec

    def refresh(self) -> None:
        """Read the tables' state again on the next call, and forget what searches learnt.

        The state is the indexes, the row estimate and the collection; what searches
        learnt is how many rows match a filter. For changes made outside this store
        (another process's index, rows written by another tool); the store reads the
        state again by itself a minute after it last did.
        """
        self._state = None
        if self._planner_made is not None:
            self._planner_made.forget()

    @property
    def engine(self) -> Engine:
        """The sync SQLAlchemy engine, made on first use.

        When only an ``AsyncEngine`` was given, it is derived from that engine's URL.
        """
        return self._engines.sync

    @property
    def async_engine(self) -> AsyncEngine:
        """The async SQLAlchemy engine, made on first use.

        When only an ``Engine`` was given, it is derived from that engine's URL.
        """
        return self._engines.async_

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return self.override_relevance_score_fn or self.distance_strategy.relevance

    def _known(
        self, state: State | None, dimension: int | None, create: bool, full_text: bool = False
    ) -> bool:
        if state is None or time.monotonic() - state.read_at > STATE_TTL:
            return False
        if full_text and not state.full_text:  # its owner may have added the column since
            return False
        if state.epoch != epoch(self._table_key):
            return False
        if create and state.collection_id is None:
            return False
        table_dim = state.tables.spec.dimension
        return dimension is None or table_dim is None or table_dim == dimension

    def _keep(self, state: State | None, seen: int) -> State | None:
        if state is not None:
            state = dataclasses.replace(state, epoch=seen)
            if state.collection_id is not None:
                self._state = state
        return state

    def _ensure(
        self, dimension: int | None = None, *, create: bool = False, full_text: bool = False
    ) -> State | None:
        if self._known(self._state, dimension, create, full_text):
            return self._state
        seen = epoch(self._table_key)
        access = self._write_access if create else self._read_access
        with self._tx.begin(self._engines.sync, vectors=False, access=access) as conn:
            state = ensure(
                conn,
                self._spec,
                self.collection_name,
                dimension=dimension,
                create=create,
                collection_metadata=self._collection_metadata,
                create_extension=self._create_extension,
            )
        return self._keep(state, seen)

    async def _aensure(
        self, dimension: int | None = None, *, create: bool = False, full_text: bool = False
    ) -> State | None:
        if self._known(self._state, dimension, create, full_text):
            return self._state
        seen = epoch(self._table_key)
        access = self._write_access if create else self._read_access
        async with self._tx.abegin(self._engines.async_, vectors=False, access=access) as conn:
            state = await conn.run_sync(
                ensure,
                self._spec,
                self.collection_name,
                dimension=dimension,
                create=create,
                collection_metadata=self._collection_metadata,
                create_extension=self._create_extension,
            )
        return self._keep(state, seen)

    def _prelude(self) -> Any:
        """Settings for a call that is not a search (only the statement timeout)."""
        timeout = self.search_settings.statement_timeout_ms
        return None if timeout is None else _tuning.set_local({"statement_timeout": str(timeout)})

    def _writing(self) -> AbstractContextManager[Connection]:
        """The transaction of a write call (the pinned one inside :meth:`transaction`)."""
        return self._tx.begin(
            self._engines.sync, prelude=self._prelude(), access=self._write_access
        )

    def _awriting(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """Async twin of :meth:`_writing`."""
        return self._tx.abegin(
            self._engines.async_, prelude=self._prelude(), access=self._write_access
        )

    def _reading(self) -> AbstractContextManager[Connection]:
        """The transaction of a read call that is not a search."""
        return self._tx.begin(self._engines.sync, prelude=self._prelude(), access=self._read_access)

    def _areading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """Async twin of :meth:`_reading`."""
        return self._tx.abegin(
            self._engines.async_, prelude=self._prelude(), access=self._read_access
        )

    def _select(self, statement: Any, use: Callable[[Result[Any]], _R]) -> _R:
        """``use`` the result of a read that is not a search.

        On a replica (see :mod:`._replicas`), else on the primary; inside
        :meth:`transaction`, on its connection.
        """

        def on_primary() -> _R:
            with self._reading() as conn:
                return use(conn.execute(statement))

        if not self._replicas or self._tx.current() is not None:
            return on_primary()
        return _replicas.execute(
            self._replicas,
            self._engines,
            statement,
            use,
            lambda engine: begin(engine, prelude=self._prelude(), access=self._read_access),
            on_primary,
        )

    async def _aselect(self, statement: Any, use: Callable[[Result[Any]], _R]) -> _R:
        """Async twin of :meth:`_select`."""

        async def on_primary() -> _R:
            async with self._areading() as conn:
                return use(await conn.execute(statement))

        if not self._replicas or self._tx.current() is not None:
            return await on_primary()
        return await _replicas.aexecute(
            self._replicas,
            self._engines,
            statement,
            use,
            lambda engine: abegin(engine, prelude=self._prelude(), access=self._read_access),
            on_primary,
        )

    def _connection(self, access: Access) -> AbstractContextManager[Connection]:
        """A transaction for the statements of this store's record managers.

        The pinned one inside :meth:`transaction`, else one of their own.
        """
        return self._tx.begin(
            self._engines.sync, vectors=False, prelude=self._prelude(), access=access
        )

    def _aconnection(self, access: Access) -> AbstractAsyncContextManager[AsyncConnection]:
        """Async twin of :meth:`_connection`."""
        return self._tx.abegin(
            self._engines.async_, vectors=False, prelude=self._prelude(), access=access
        )

    def _changes(self, added: int = 0, removed: int = 0) -> Tables | None:
        """Count rows this store changed; the tables whose statistics are due.

        Changed rows are those inserted, updated or deleted. The row estimate follows
        the count (for the unindexed-table warning). The statistics are due after
        changes to :data:`ANALYZE_SHARE` of the rows, and at least
        :data:`ANALYZE_MIN_ROWS`, when the role may analyze the table; else None.
        """
        if self._planner_made is not None:
            self._planner_made.forget()
        state = self._state
        if state is None:
            return None
        self._changed += added + removed
        rows = max(0, state.approx_rows + added - removed)
        self._state = dataclasses.replace(state, approx_rows=rows)
        if not state.can_analyze or self._changed < max(ANALYZE_MIN_ROWS, ANALYZE_SHARE * rows):
            return None
        return state.tables

    def _wrote(self, added: int = 0, removed: int = 0) -> None:
        """After a write committed, refresh the statistics when it changed enough.

        The state, row estimate included, is then read again. Inside
        :meth:`transaction` the rows are counted when it commits (see :meth:`_deferred`).
        With read replicas, the primary's WAL position is recorded for reads to wait
        for (:func:`_replicas.record_write`).
        A full-text store also folds its collection's term statistics, with the refresh
        or every :data:`COMPACT_EVERY` writes.
        """
        if self._deferred(added, removed):
            return
        _replicas.record_write(self._replicas, self._engines)
        tables = self._changes(added, removed)
        if tables is not None and self._refresh_statistics(tables, "planner"):
            self._changed = 0
            self._tidy(pending=True)
        elif self._compact_due(added, removed):
            self._tidy(pending=False)

    async def _awrote(self, added: int = 0, removed: int = 0) -> None:
        """Async twin of :meth:`_wrote`."""
        if self._deferred(added, removed):
            return
        await _replicas.arecord_write(self._replicas, self._engines)
        tables = self._changes(added, removed)
        if tables is not None and await self._arefresh_statistics(tables, "planner"):
            self._changed = 0
            await self._atidy(pending=True)
        elif self._compact_due(added, removed):
            await self._atidy(pending=False)

    def _compact_due(self, added: int, removed: int) -> bool:
        if not (added or removed) or self._spec.text_search_config is None:
            return False
        self._text_writes += 1
        return self._text_writes >= COMPACT_EVERY

    def _tidy(self, *, pending: bool) -> None:
        """Fold the collection's term statistics; with ``pending``, merge the index's.

        With ``pending``, the full-text GIN index's pending list is merged too. A
        failure is logged, never raised.
        """
        state = self._state
        if state is None or not state.full_text or state.collection_id is None:
            return
        self._text_writes = 0
        try:
            with begin(self._engines.sync, vectors=False, access=self._write_access) as conn:
                tidy_text(conn, state.tables, state.collection_id, pending=pending)
        except PGVecError as exc:
            _log.warning("folding the term statistics failed: %s", exc)

    async def _atidy(self, *, pending: bool) -> None:
        """Async twin of :meth:`_tidy`."""
        state = self._state
        if state is None or not state.full_text or state.collection_id is None:
            return
        self._text_writes = 0
        try:
            async with abegin(
                self._engines.async_, vectors=False, access=self._write_access
            ) as conn:
                await conn.run_sync(tidy_text, state.tables, state.collection_id, pending=pending)
        except PGVecError as exc:
            _log.warning("folding the term statistics failed: %s", exc)

    def _deferred(self, added: int, removed: int) -> bool:
        """Inside a pinned transaction, keep a write's row counts for its commit.

        A rollback counts none, and ``ANALYZE`` runs after the commit, on committed rows.
        Returns whether it kept them; what searches learnt is forgotten either way.
        """
        pinned = self._tx.current()
        if pinned is None:
            return False
        pinned.added += added
        pinned.removed += removed
        if self._planner_made is not None:
            self._planner_made.forget()
        return True

    def _prepared(self, batch: Batch) -> Batch:
        """``batch``, checked for what this store's schema adds (a full-text index)."""
        if self._spec.text_search_config is not None:
            check_full_text(batch.texts)
        return batch

    def _writable(self, dimension: int) -> State:
        return _writable(self._ensure(dimension, create=True))

    async def _awritable(self, dimension: int) -> State:
        return _writable(await self._aensure(dimension, create=True))

    def _lock(self, conn: Connection, tables: Tables) -> uuid.UUID:
        """Lock (or create) the collection inside a write transaction; refresh the cache."""
        cid = lock_collection(
            conn, tables, self.collection_name, self._collection_metadata, self._collection_id()
        )
        if self._state is not None and self._state.collection_id != cid:
            self._state = dataclasses.replace(self._state, collection_id=cid)
        return cid

    def _where(self, state: State, filter: Filter | None) -> ColumnElement[bool] | None:
        if not filter:
            return None
        return compile_filter(filter, state.tables.embedding.c.metadata)

    def create_tables(self) -> None:
        """Create the extension, tables and collection now rather than on first write.

        Needs ``embedding_length`` (or an existing table) to know the dimension. What
        exists already is left as it is.

        Raises:
            InvalidInputError: The tables do not exist and ``embedding_length`` is None.
            DimensionMismatchError: ``embedding_length`` differs from the existing
                table's dimension.
            SchemaError: The existing table stores another vector type than
                ``vector_type``.
            ExtensionError: pgvector is missing and cannot be created
                (``create_extension=False``, or the role is not a superuser), or is
                older than ``vector_type="halfvec"`` needs.
            PrivilegeError: The role may not create the schema or the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        if self._ensure(self._spec.dimension, create=True) is None:
            raise InvalidInputError(
                "cannot create the tables without a dimension: pass embedding_length"
            )

    async def acreate_tables(self) -> None:
        """Async twin of :meth:`create_tables`."""
        if await self._aensure(self._spec.dimension, create=True) is None:
            raise InvalidInputError(
                "cannot create the tables without a dimension: pass embedding_length"
            )

    def grant(self, role: str, *, write: bool = True) -> None:
        """Let another database role use this store's tables; run as their owner.

        The least-privilege setup: the owner makes the tables (:meth:`create_tables`)
        and grants an application role what it needs, and that role's stores then
        issue no DDL (see the README's production section).

        Args:
            role: The role to grant to.
            write: ``SELECT, INSERT, UPDATE, DELETE`` on both tables (an application
                that adds and deletes documents); False: ``SELECT`` only (searches).
                With a ``schema``, ``USAGE`` on it too.

        Raises:
            InvalidInputError: ``role`` is not a non-empty string PostgreSQL can store.
            SchemaError: The tables do not exist yet.
            PrivilegeError: This store's role does not own the tables.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        statements = self._grants(self._ensure(), role, write)
        with self._writing() as conn:
            for statement in statements:
                conn.execute(statement)

    async def agrant(self, role: str, *, write: bool = True) -> None:
        """Async twin of :meth:`grant`."""
        statements = self._grants(await self._aensure(), role, write)
        async with self._awriting() as conn:
            for statement in statements:
                await conn.execute(statement)

    def _grants(self, state: State | None, role: str, write: bool) -> list[Any]:
        if not isinstance(role, str) or not role:
            raise InvalidInputError(f"role must be a role's name, got {role!r}")
        check_string(role, "role")
        if state is None:
            raise SchemaError(
                f"table {self._spec.qualified_embedding_table!r} does not exist yet: call "
                "create_tables() (with embedding_length) first"
            )
        return _sql.grants(state.tables, role, "write" if write else "read")

    # ------------------------------------------------------------------ writing

    def add_embeddings(
        self,
        texts: Iterable[str],
        embeddings: Any,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Upsert texts with precomputed embeddings, in one transaction.

        Everything is validated before anything is written. An id that exists in the
        collection has its content, metadata and vector replaced.

        Args:
            texts: The contents.
            embeddings: One vector per text: a list of lists or a 2-D numpy array.
            metadatas: One dict (JSON-serialisable) or None per text, or None for all.
            ids: One id (or None, generated) per text, or None to generate all; unique
                within the call.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            The ids, in input order.

        Raises:
            InvalidInputError: The texts, metadata or ids cannot be stored as given
                (lengths that disagree, duplicate ids, metadata that is not a JSON
                object, NUL characters, ids over 2,000 bytes, a text too large for the
                full-text index), or embeddings that are not one finite vector per text.
            DimensionMismatchError: The vectors' length differs from the table's
                dimension (or from ``embedding_length``).
            SchemaError: The existing table stores another vector type than the store's.
            ExtensionError: pgvector is missing and cannot be created here, or is older
                than ``vector_type="halfvec"`` needs.
            PrivilegeError: The role lacks a privilege the write needs (``INSERT``,
                ``UPDATE``; ``TEMPORARY`` for upserts of 200 rows or more over existing
                ids; ``CREATE`` to make the tables).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        batch = self._prepared(prepare(texts, embeddings, metadatas, ids))
        if not len(batch):
            return []
        state = self._writable(batch.vectors.shape[1])
        _ingest.check_dimension(state.tables, batch)
        with self._writing() as conn:
            written = _ingest.write(conn, state.tables, self._lock(conn, state.tables), batch)
        self._wrote(added=written)
        return batch.ids

    async def aadd_embeddings(
        self,
        texts: Iterable[str],
        embeddings: Any,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of :meth:`add_embeddings`."""
        batch = self._prepared(prepare(texts, embeddings, metadatas, ids))
        if not len(batch):
            return []
        state = await self._awritable(batch.vectors.shape[1])
        _ingest.check_dimension(state.tables, batch)
        async with self._awriting() as conn:
            cid = await conn.run_sync(self._lock, state.tables)
            written = await _ingest.awrite(conn, state.tables, cid, batch)
        await self._awrote(added=written)
        return batch.ids

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts, all in one transaction.

        Everything is validated before the first embedding call. Texts are embedded
        ``batch_size`` at a time; while one batch is written, the next is embedded
        (in a worker thread, one embedding call at a time). An error of the embedding
        model propagates as it is, and nothing of the call is committed.

        Args:
            texts: The contents.
            metadatas: One dict (JSON-serialisable) or None per text, or None for all.
            ids: One id (or None, generated) per text, or None to generate all; unique
                within the call.
            batch_size: Texts per embedding call (default 1,000).
            show_progress: A progress bar on stderr; None shows one for 1,000+ texts
                when stderr is a terminal.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            The ids, in input order.

        Raises:
            InvalidInputError: The texts, metadata or ids cannot be stored as given
                (lengths that disagree, duplicate ids, metadata that is not a JSON
                object, NUL characters, ids over 2,000 bytes, a text too large for the
                full-text index), ``batch_size`` below 1, or an embedding model that
                does not return one finite vector per text.
            DimensionMismatchError: The vectors' length differs from the table's
                dimension (or from ``embedding_length``).
            SchemaError: The existing table stores another vector type than the store's.
            ExtensionError: pgvector is missing and cannot be created here, or is older
                than ``vector_type="halfvec"`` needs.
            PrivilegeError: The role lacks a privilege the write needs (``INSERT``,
                ``UPDATE``; ``TEMPORARY`` for upserts of 200 rows or more over existing
                ids; ``CREATE`` to make the tables).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        rows = self._prepared(_ingest.plan(texts, metadatas, ids))
        if not len(rows):
            return []
        spans = _ingest.spans(len(rows), self._DEFAULT_BATCH if batch_size is None else batch_size)
        embed = self._embeddings.embed_documents
        with _progress.rows_bar(len(rows), show_progress) as bar, ThreadPoolExecutor(1) as pool:
            vectors = embed(rows.texts[slice(*spans[0])])
            state = self._writable(len(vectors[0]) if vectors else 0)
            written = 0
            with self._writing() as conn:
                cid = self._lock(conn, state.tables)
                for number, span in enumerate(spans):
                    following = spans[number + 1] if number + 1 < len(spans) else None
                    ahead = following and pool.submit(embed, rows.texts[slice(*following)])
                    batch = _ingest.with_vectors(rows, span, vectors, state.tables)
                    written += _ingest.write(conn, state.tables, cid, batch)
                    bar.update(len(batch))
                    vectors = ahead.result() if ahead else []
        self._wrote(added=written)
        return rows.ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of :meth:`add_texts` (the next batch embeds in a task)."""
        rows = self._prepared(_ingest.plan(texts, metadatas, ids))
        if not len(rows):
            return []
        spans = _ingest.spans(len(rows), self._DEFAULT_BATCH if batch_size is None else batch_size)
        embed = self._embeddings.aembed_documents
        with _progress.rows_bar(len(rows), show_progress) as bar:
            vectors = await embed(rows.texts[slice(*spans[0])])
            state = await self._awritable(len(vectors[0]) if vectors else 0)
            ahead: asyncio.Future[list[list[float]]] | None = None
            written = 0
            try:
                async with self._awriting() as conn:
                    cid = await conn.run_sync(self._lock, state.tables)
                    for number, span in enumerate(spans):
                        if number + 1 < len(spans):
                            following = rows.texts[slice(*spans[number + 1])]
                            ahead = asyncio.ensure_future(embed(following))
                        batch = _ingest.with_vectors(rows, span, vectors, state.tables)
                        written += await _ingest.awrite(conn, state.tables, cid, batch)
                        bar.update(len(batch))
                        vectors, ahead = (await ahead if ahead else []), None
            finally:
                if ahead is not None:  # a write failed: the next batch's embedding stops too
                    ahead.cancel()
                    await asyncio.gather(ahead, return_exceptions=True)
        await self._awrote(added=written)
        return rows.ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Upsert documents; ``Document.id`` is honoured (generated where None).

        Args:
            documents: LangChain ``Document`` objects.
            **kwargs: ``ids`` (overrides the documents' ids), and the keywords of
                :meth:`add_texts` (``batch_size``, ``show_progress``).

        Returns:
            The ids, in input order.

        Raises:
            InvalidInputError: An item is not a ``Document``, or the documents cannot be
                stored as given (as in :meth:`add_texts`).
            PGVecError: The other errors of :meth:`add_texts`.
        """
        texts, metadatas, ids = self._unpack(documents, kwargs.pop("ids", None))
        return self.add_texts(texts, metadatas, ids=ids, **kwargs)

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Async twin of :meth:`add_documents`."""
        texts, metadatas, ids = self._unpack(documents, kwargs.pop("ids", None))
        return await self.aadd_texts(texts, metadatas, ids=ids, **kwargs)

    @staticmethod
    def _unpack(
        documents: Sequence[Document], ids: Sequence[str | None] | None
    ) -> tuple[list[str], list[dict[str, Any]], list[str]]:
        documents = list(documents)
        for position, document in enumerate(documents):
            if not isinstance(document, Document):
                raise InvalidInputError(
                    f"documents[{position}] is a {type(document).__name__}, not a LangChain "
                    "Document; pass Document(page_content=..., metadata=...) objects"
                )
        if ids is None:
            ids = [doc.id for doc in documents]
        return (
            [doc.page_content for doc in documents],
            [doc.metadata for doc in documents],
            check_ids(ids, len(documents)),
        )

    # ------------------------------------------------------------------ reading

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of the collection with these ids, in the order asked.

        Ids that do not exist are skipped; an id asked for twice is returned once.

        Args:
            ids: The ids: a sequence of strings (not one string).

        Returns:
            The documents found; empty when the collection does not exist.

        Raises:
            InvalidInputError: ``ids`` is a string, or holds a non-string or an id that
                PostgreSQL cannot store.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        ids = lookup_ids(ids)
        state = self._ensure()
        if not ids or state is None or state.collection_id is None:
            return []
        statement = _sql.get_by_ids(state.tables, state.collection_id, ids)
        return self._select(statement, lambda rows: _in_order(_documents(rows), ids))

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async twin of :meth:`get_by_ids`."""
        ids = lookup_ids(ids)
        state = await self._aensure()
        if not ids or state is None or state.collection_id is None:
            return []
        statement = _sql.get_by_ids(state.tables, state.collection_id, ids)
        return await self._aselect(statement, lambda rows: _in_order(_documents(rows), ids))

    def get(
        self, filter: Filter | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[Document]:
        """Documents of the collection that match a metadata filter, in id order.

        Args:
            filter: A metadata filter (FILTERS.md); None or ``{}`` for every document.
            limit: The most documents to return; None for all.
            offset: How many matching documents to skip first.

        Returns:
            The documents; empty when the collection does not exist.

        Raises:
            InvalidInputError: ``limit`` or ``offset`` is not an integer from 0 to
                2,147,483,647.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        self._check_page(limit, offset)
        state = self._ensure()
        if state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        statement = _sql.get_where(
            state.tables,
            state.collection_id,
            self._where(state, filter),
            limit=limit,
            offset=offset,
        )
        return self._select(statement, _documents)

    async def aget(
        self, filter: Filter | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[Document]:
        """Async twin of :meth:`get`."""
        self._check_page(limit, offset)
        state = await self._aensure()
        if state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        statement = _sql.get_where(
            state.tables,
            state.collection_id,
            self._where(state, filter),
            limit=limit,
            offset=offset,
        )
        return await self._aselect(statement, _documents)

    @staticmethod
    def _check_page(limit: int | None, offset: int) -> None:
        if limit is not None:
            check_int(limit, "limit")
        check_int(offset, "offset")

    def count(self, filter: Filter | None = None) -> int:
        """How many documents of the collection match a metadata filter.

        Args:
            filter: A metadata filter (FILTERS.md); None or ``{}`` for every document.

        Returns:
            The number of documents; 0 when the collection does not exist.

        Raises:
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        state = self._ensure()
        if state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return 0
        statement = _sql.count(state.tables, state.collection_id, self._where(state, filter))
        return self._select(statement, lambda result: int(result.scalar_one()))

    async def acount(self, filter: Filter | None = None) -> int:
        """Async twin of :meth:`count`."""
        state = await self._aensure()
        if state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return 0
        statement = _sql.count(state.tables, state.collection_id, self._where(state, filter))
        return await self._aselect(statement, lambda result: int(result.scalar_one()))

    # ------------------------------------------------------------------ deleting

    def delete(
        self, ids: Sequence[str] | None = None, *, filter: Filter | None = None, **kwargs: Any
    ) -> bool:
        """Delete documents by id, by metadata filter, or both, in one transaction.

        With both, the documents with these ids that match the filter are deleted.

        Args:
            ids: Ids to delete (ids that do not exist are ignored).
            filter: A metadata filter; every matching document of the collection goes
                (``{}``: every document).
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            True, also when nothing matched or the collection does not exist.

        Raises:
            InvalidInputError: Neither ``ids`` nor ``filter`` is given, or ``ids`` is a
                string or holds a non-string or an id that PostgreSQL cannot store.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            PrivilegeError: The role may not ``DELETE`` from the tables.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        self._check_delete(ids, filter)
        state = self._ensure()
        if state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return True
        statement = self._delete_statement(state, ids, filter)
        with self._writing() as conn:
            removed = retrying(conn, lambda: conn.execute(statement)).rowcount
        self._wrote(removed=removed)
        return True

    async def adelete(
        self, ids: Sequence[str] | None = None, *, filter: Filter | None = None, **kwargs: Any
    ) -> bool:
        """Async twin of :meth:`delete`."""
        self._check_delete(ids, filter)
        state = await self._aensure()
        if state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return True
        statement = self._delete_statement(state, ids, filter)
        async with self._awriting() as conn:
            removed = (await aretrying(conn, lambda: conn.execute(statement))).rowcount
        await self._awrote(removed=removed)
        return True

    @staticmethod
    def _check_delete(ids: Sequence[str] | None, filter: Filter | None) -> None:
        if ids is None and filter is None:
            raise InvalidInputError(
                "delete() needs ids or a filter; to remove the whole collection call "
                "delete_collection(), to remove every document pass filter={}"
            )
        if ids is not None:
            lookup_ids(ids)

    def _delete_statement(
        self, state: State, ids: Sequence[str] | None, filter: Filter | None
    ) -> Any:
        assert state.collection_id is not None
        where = self._where(state, filter) if filter is not None else None
        if ids is not None:
            statement = _sql.delete_ids(state.tables, state.collection_id, list(ids))
            return statement if where is None else statement.where(where)
        return _sql.delete_where(state.tables, state.collection_id, where)

    def delete_collection(self) -> None:
        """Delete this store's collection and all its documents, in one transaction.

        Nothing happens when the collection does not exist. A write of the collection
        in flight commits first; a later write creates the collection again. Of a
        partitioned table, the collection's partition is detached and dropped (by the
        table's owner only). The collection's own partial indexes (``create_index(...,
        per_collection=True)``) are dropped afterwards, ``CONCURRENTLY``, when this role
        owns the table and the call is not inside :meth:`transaction`; otherwise a
        warning names them.

        Raises:
            PrivilegeError: The role may not ``DELETE`` from the tables (or, of a
                partitioned table, is not its owner).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        state = self._ensure()
        if state is not None:
            with self._writing() as conn:
                removed = drop_collection(conn, state.tables, self.collection_name)
            self._wrote(removed=removed)
            leftovers = self._partial_indexes(state, self.list_indexes())
            for name in leftovers:
                try:
                    _index_admin.drop(self._engines, self._write_access, self._spec, name, True)
                except PGVecError as exc:
                    _log.warning(_ORPHAN_DROP_FAILED, name, exc)
            if leftovers:
                self._indexes_changed()
        self._state = None

    async def adelete_collection(self) -> None:
        """Async twin of :meth:`delete_collection`."""
        state = await self._aensure()
        if state is not None:
            async with self._awriting() as conn:
                removed = await conn.run_sync(drop_collection, state.tables, self.collection_name)
            await self._awrote(removed=removed)
            leftovers = self._partial_indexes(state, await self.alist_indexes())
            for name in leftovers:
                try:
                    await _index_admin.adrop(
                        self._engines, self._write_access, self._spec, name, True
                    )
                except PGVecError as exc:
                    _log.warning(_ORPHAN_DROP_FAILED, name, exc)
            if leftovers:
                self._indexes_changed()
        self._state = None

    def _partial_indexes(self, state: State, indexes: list[IndexInfo]) -> list[str]:
        """The partial indexes of the collection just deleted that this store may drop.

        Inside :meth:`transaction`, or for a role that does not own the table, none:
        a warning names them instead.
        """
        cid = state.collection_id
        names = [i.name for i in indexes if i.partial and cid and i.collection_id == cid]
        if names and (self._tx.current() is not None or not state.can_analyze):
            _log.warning(
                "collection %r was deleted; its partial indexes %s remain: drop them as the "
                "table's owner, outside store.transaction() (store.drop_index(name))",
                self.collection_name,
                ", ".join(names),
            )
            return []
        return names

    # ------------------------------------------------------------------ transactions

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction for every call of this store made inside the block.

        The store's writes (``add_*``, ``delete``, ``delete_collection``), reads and
        searches, and the statements of the record managers bound to it
        (:class:`PGVecRecordManager`), made inside the block in this thread or task
        (and in tasks started inside it, one call at a time), run on one connection in
        one transaction, committed once when the block ends. If the block raises, or a
        call inside it failed, nothing of the block is committed. Reads and searches
        inside the block see its writes. Other threads and tasks using the store
        meanwhile keep transactions of their own, and see the block's writes once it
        has committed. A block inside another of the same store joins it.

        The writes' row locks are held to the end of the block: another writer of the
        same ids waits for it, and a write that loses a deadlock fails the block (it is
        not retried: the block's earlier locks would still be held). After large
        writes, the statistics are refreshed (``ANALYZE``) once the block has
        committed. Index builds and drops cannot run inside the block.

        Returns:
            A context manager. Its value is the transaction's SQLAlchemy ``Connection``:
            statements of your own run on it commit or roll back with the block (do not
            commit or close it yourself).

        Raises:
            InvalidInputError: Inside the block, a sync method of the store is called
                inside ``atransaction()``, or an async one inside ``transaction()``; or
                an index is built or dropped.
            DatabaseError: At the end of the block, when a call inside it failed and
                its exception was caught: the transaction was rolled back.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``
                (which bounds every statement of the transaction).
            ConnectError: No connection could be had.
            ConnectionLostError: The server went away during the block (nothing of it
                was committed) or during its commit.

        Example:
            .. code-block:: python

                with store.transaction():
                    store.delete(["old"])
                    store.add_texts(["new"], ids=["new"])
        """
        return self._pinned()

    def atransaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """Async twin of :meth:`transaction`: ``async with store.atransaction() as conn``.

        Inside it, call the async methods; the value is the ``AsyncConnection``.
        """
        return self._apinned()

    @contextmanager
    def _pinned(self) -> Iterator[Connection]:
        joined = self._tx.current() is not None
        try:
            with self._tx.pin(
                self._engines.sync,
                prelude=self._prelude(),
                access=self._write_access,
                state=self._state,
            ) as pinned:
                yield pinned.sync_connection()
        except BaseException:
            if not joined:
                self.refresh()  # nothing the transaction taught the store stays
            raise
        if not joined:
            self._state = pinned.state
            self._wrote(added=pinned.added, removed=pinned.removed)

    @asynccontextmanager
    async def _apinned(self) -> AsyncIterator[AsyncConnection]:
        joined = self._tx.current() is not None
        try:
            async with self._tx.apin(
                self._engines.async_,
                prelude=self._prelude(),
                access=self._write_access,
                state=self._state,
            ) as pinned:
                yield pinned.async_connection()
        except BaseException:
            if not joined:
                self.refresh()
            raise
        if not joined:
            self._state = pinned.state
            await self._awrote(added=pinned.added, removed=pinned.removed)

    def index(
        self, docs_source: DocumentSource, record_manager: RecordManager, **kwargs: Any
    ) -> IndexingResult:
        """LangChain's indexing API on this store: the records and the vectors in one transaction.

        Runs ``langchain_core.indexing.index(docs_source, record_manager, self,
        **kwargs)`` inside :meth:`transaction`. The record manager's updates and the
        store's writes and deletes commit together when the run ends; if the run fails
        anywhere (the source raises, the embedding model fails, the connection is
        lost), nothing of it is committed, and the records and the vectors stay as
        they were.

        Args:
            docs_source: A LangChain document loader, or an iterable of Documents.
            record_manager: A :class:`PGVecRecordManager` of this store
                (``PGVecRecordManager(namespace, store=store)``), whose table exists
                (its ``create_schema()``).
            **kwargs: The keywords of ``langchain_core.indexing.index``: ``cleanup``
                (None, ``"incremental"``, ``"full"`` or ``"scoped_full"``),
                ``source_id_key``, ``batch_size``, ``cleanup_batch_size``,
                ``force_update``, ``key_encoder``, ``upsert_kwargs``.

        Returns:
            LangChain's ``IndexingResult``: ``num_added``, ``num_updated``,
            ``num_skipped`` and ``num_deleted``.

        Raises:
            InvalidInputError: Before anything is written: ``record_manager`` is not a
                PGVecRecordManager of this store; a keyword ``index()`` does not take;
                ``cleanup`` is none of its values, or is ``"incremental"`` or
                ``"scoped_full"`` without ``source_id_key``; ``batch_size`` or
                ``cleanup_batch_size`` is not a positive integer; ``docs_source`` is
                neither a loader nor an iterable (an async iterable needs ``aindex``).
            SchemaError: The record manager's table does not exist.
            ValueError: langchain-core's, for a document without a source id under
                ``"incremental"`` or ``"scoped_full"`` cleanup; nothing is committed.
            PGVecError: The errors of :meth:`add_documents` and :meth:`delete`, and
                those of :meth:`transaction`; nothing is committed.
        """
        self._indexing(docs_source, record_manager, kwargs, sync=True)
        source = cast("BaseLoader | Iterable[Document]", docs_source)
        with self.transaction():
            return _index(source, record_manager, self, **kwargs)

    async def aindex(
        self, docs_source: DocumentSource, record_manager: RecordManager, **kwargs: Any
    ) -> IndexingResult:
        """Async twin of :meth:`index` (``docs_source`` may also be an async iterable)."""
        self._indexing(docs_source, record_manager, kwargs, sync=False)
        source = cast("BaseLoader | Iterable[Document] | AsyncIterator[Document]", docs_source)
        async with self.atransaction():
            return await _aindex(source, record_manager, self, **kwargs)

    def _indexing(
        self, docs_source: object, record_manager: object, kwargs: dict[str, Any], *, sync: bool
    ) -> None:
        """Check :meth:`index`'s arguments before anything is written."""
        bound = getattr(record_manager, "store", None)
        if bound is not self:
            given = type(record_manager).__name__
            given += " of another store" if isinstance(bound, VectorStore) else ""
            raise InvalidInputError(
                "store.index() commits the records with the vectors, in one transaction, "
                "which needs a PGVecRecordManager of this store (PGVecRecordManager("
                f"namespace, store=store)), got a {given}. With another record manager, "
                "call langchain_core.indexing.index(docs, record_manager, store)"
            )
        unknown = sorted(set(kwargs) - _INDEX_KEYWORDS)
        if unknown:
            raise InvalidInputError(
                f"index() takes no keyword {unknown[0]!r}; langchain_core.indexing.index "
                f"takes {', '.join(sorted(_INDEX_KEYWORDS))}"
            )
        cleanup = kwargs.get("cleanup")
        if cleanup not in _CLEANUPS:
            raise InvalidInputError(
                "cleanup must be None, 'incremental', 'full' or 'scoped_full', got "
                f"{brief(cleanup)}"
            )
        if cleanup in ("incremental", "scoped_full") and kwargs.get("source_id_key") is None:
            raise InvalidInputError(
                f"cleanup={cleanup!r} needs source_id_key: the metadata key (or a function "
                "of the Document) that names each document's source"
            )
        for name in ("batch_size", "cleanup_batch_size"):
            if name in kwargs:
                check_int(kwargs[name], name, 1)
        if isinstance(docs_source, (BaseLoader, Iterable)) and not isinstance(docs_source, str):
            return
        if not sync and isinstance(docs_source, AsyncIterable):
            return
        asynchronous = isinstance(docs_source, AsyncIterable)
        hint = "; for an async iterable, call aindex()" if sync and asynchronous else ""
        raise InvalidInputError(
            "docs_source must be a LangChain document loader or an iterable of Documents"
            f"{'' if sync else ' (or an async iterable of them)'}, got "
            f"{type(docs_source).__name__}{hint}"
        )

    # ------------------------------------------------------------------ searching

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents to a vector, with their distance (lower is closer).

        A search returns min(``k``, matching documents): an index answer that comes
        back short is completed by exact ranking.

        Args:
            embedding: The query vector.
            k: How many documents to return.
            filter: A metadata filter (FILTERS.md).
            **kwargs: Per-call search settings: the fields of :class:`SearchSettings`
                (``ef_search=``, ``probes=``, ``iterative_scan=``, ``overfetch=``,
                ``exact_below=``, ...) or ``search_settings=SearchSettings(...)``; other
                keywords are ignored.

        Returns:
            (document, distance) pairs, nearest first; empty when the collection does
            not exist.

        Raises:
            InvalidInputError: ``k`` is not an integer from 0 to 2,147,483,647, the
                vector is not a flat sequence of finite numbers, or a search setting is
                out of range.
            DimensionMismatchError: The vector's length differs from the table's
                dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        _check_k(k)
        state = self._ensure(len(embedding))
        if not k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        return _scored(self._run(lambda: self._steps(state, embedding, k, filter, kwargs)))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score_by_vector`."""
        _check_k(k)
        state = await self._aensure(len(embedding))
        if not k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        return _scored(await self._arun(lambda: self._steps(state, embedding, k, filter, kwargs)))

    def _run(self, make: Callable[[], Steps]) -> list[Any]:
        """The rows of a search's steps (the same generator for both runners).

        ``make`` makes the steps: once before any I/O (it checks the request), and
        again for each further server a read is tried on (a replica that failed, see
        :mod:`._replicas`). Inside :meth:`transaction`, on its connection: a search
        sees what the transaction wrote.
        """
        steps = make()
        engine = self._engines.sync  # made first: it makes the store's own connection
        if self._tx.current() is not None:
            with self._tx.begin(engine, access=self._read_access) as conn:
                return read_inside(conn, steps)
        if not self._replicas:
            return read(engine, self._engines.reads, steps, self._read_access)
        return _replicas.read(
            self._replicas,
            self._engines,
            _first_then(steps, make),
            self._read_access,
            lambda again: read(engine, self._engines.reads, again, self._read_access),
        )

    async def _arun(self, make: Callable[[], Steps]) -> list[Any]:
        """Async twin of :meth:`_run`."""
        steps = make()
        engine = self._engines.async_  # made first: it makes the store's own connection
        if self._tx.current() is not None:
            async with self._tx.abegin(engine, access=self._read_access) as conn:
                return await aread_inside(conn, steps)
        if not self._replicas:
            return await aread(engine, self._engines.areads, steps, self._read_access)
        return await _replicas.aread(
            self._replicas,
            self._engines,
            _first_then(steps, make),
            self._read_access,
            lambda again: aread(engine, self._engines.areads, again, self._read_access),
        )

    @property
    def _planner(self) -> Planner:
        planner = self._planner_made
        if planner is None:
            planner = self._planner_made = Planner(self._engines.dialect, self.distance_strategy)
        return planner

    def _request(
        self,
        state: State,
        embedding: Sequence[float],
        k: int,
        filter: Filter | None,
        kwargs: dict[str, Any],
        *,
        with_vectors: bool = False,
    ) -> Request:
        """One search, validated (before any I/O); warns once about a missing index."""
        self._warn_if_unindexed(state)
        settings = self.search_settings
        return self._planner.request(
            state, embedding, k, filter, kwargs, settings, with_vectors=with_vectors
        )

    def _steps(
        self,
        state: State,
        embedding: Sequence[float],
        k: int,
        filter: Filter | None,
        kwargs: dict[str, Any],
        *,
        with_vectors: bool = False,
    ) -> Steps:
        """The statements of one search (see ``_search``), for either runner."""
        request = self._request(state, embedding, k, filter, kwargs, with_vectors=with_vectors)
        return self._planner.steps(request)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` nearest documents to a vector.

        Args:
            embedding: The query vector.
            k: How many documents to return.
            filter: A metadata filter (FILTERS.md).
            **kwargs: Per-call search settings: the fields of :class:`SearchSettings`
                (``ef_search=``, ``probes=``, ``iterative_scan=``, ``overfetch=``,
                ``exact_below=``, ...) or ``search_settings=SearchSettings(...)``; other
                keywords are ignored.

        Returns:
            The documents, nearest first.

        Raises:
            InvalidInputError: ``k`` is not an integer from 0 to 2,147,483,647, the
                vector is not a flat sequence of finite numbers, or a search setting is
                out of range.
            DimensionMismatchError: The vector's length differs from the table's
                dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        pairs = self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`similarity_search_by_vector`."""
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents to a query, with their distance (lower is closer).

        Args:
            query: The query text, embedded with the store's embeddings.
            k: How many documents to return.
            filter: A metadata filter (FILTERS.md).
            **kwargs: Per-call search settings: the fields of :class:`SearchSettings`
                (``ef_search=``, ``probes=``, ``iterative_scan=``, ``overfetch=``,
                ``exact_below=``, ...) or ``search_settings=SearchSettings(...)``; other
                keywords are ignored.

        Returns:
            (document, distance) pairs, nearest first.

        Raises:
            InvalidInputError: ``k`` is not an integer from 0 to 2,147,483,647, the
                query is not a string PostgreSQL can hold, or a search setting is out of
                range.
            DimensionMismatchError: The query's embedding has another length than the
                table's dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        vector = self._embeddings.embed_query(check_query(query))
        return self.similarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score`."""
        vector = await self._embeddings.aembed_query(check_query(query))
        return await self.asimilarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    def similarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to a query, optionally filtered by metadata.

        Args:
            query: The query text, embedded with the store's embeddings.
            k: How many documents to return.
            filter: A metadata filter (FILTERS.md).
            **kwargs: Per-call search settings: the fields of :class:`SearchSettings`
                (``ef_search=``, ``probes=``, ``iterative_scan=``, ``overfetch=``,
                ``exact_below=``, ...) or ``search_settings=SearchSettings(...)``; other
                keywords are ignored.

        Returns:
            The documents, nearest first.

        Raises:
            InvalidInputError: ``k`` is not an integer from 0 to 2,147,483,647, the
                query is not a string PostgreSQL can hold, or a search setting is out of
                range.
            DimensionMismatchError: The query's embedding has another length than the
                table's dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`similarity_search`."""
        pairs = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        relevance = self._select_relevance_score_fn()
        pairs = self.similarity_search_with_score(query, k, **kwargs)
        return [(doc, relevance(score)) for doc, score in pairs]

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        relevance = self._select_relevance_score_fn()
        pairs = await self.asimilarity_search_with_score(query, k, **kwargs)
        return [(doc, relevance(score)) for doc, score in pairs]

    # ------------------------------------------------------------------ MMR

    def max_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Maximal marginal relevance over the ``fetch_k`` nearest documents, with distances.

        The candidates and their vectors come back in one query; MMR (by cosine
        similarity of the vectors) then picks documents relevant to ``embedding`` and
        diverse among themselves.

        Args:
            embedding: The query vector.
            k: How many documents to return (at most ``fetch_k``).
            fetch_k: How many nearest candidates MMR chooses from.
            lambda_mult: From 0 (diversity only) to 1 (relevance only).
            filter: A metadata filter (FILTERS.md), applied to the candidates.
            **kwargs: Per-call search settings for the candidates' search, as
                :meth:`similarity_search_with_score_by_vector` takes them.

        Returns:
            (document, distance) pairs, in the order MMR picks them.

        Raises:
            InvalidInputError: ``k`` or ``fetch_k`` is not an integer from 0 to
                2,147,483,647, ``lambda_mult`` is not a number from 0 to 1, the vector
                is not a flat sequence of finite numbers, or a search setting is out of
                range.
            DimensionMismatchError: The vector's length differs from the table's
                dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        check_lambda(lambda_mult)
        state = self._ensure(len(embedding))
        if not k or not fetch_k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        rows = self._run(
            lambda: self._steps(state, embedding, fetch_k, filter, kwargs, with_vectors=True)
        )
        return _scored(_mmr.chosen(embedding, rows, k, lambda_mult, state.tables.spec.vector_type))

    async def amax_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`max_marginal_relevance_search_with_score_by_vector`."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        check_lambda(lambda_mult)
        state = await self._aensure(len(embedding))
        if not k or not fetch_k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        rows = await self._arun(
            lambda: self._steps(state, embedding, fetch_k, filter, kwargs, with_vectors=True)
        )
        return _scored(_mmr.chosen(embedding, rows, k, lambda_mult, state.tables.spec.vector_type))

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Documents for a vector by maximal marginal relevance, in the order MMR picks them.

        Args:
            embedding: The query vector.
            k: How many documents to return (at most ``fetch_k``).
            fetch_k: How many nearest candidates MMR chooses from.
            lambda_mult: From 0 (diversity only) to 1 (relevance only).
            filter: A metadata filter (FILTERS.md), applied to the candidates.
            **kwargs: Per-call search settings for the candidates' search, as
                :meth:`similarity_search_with_score_by_vector` takes them.

        Returns:
            The documents, in the order MMR picks them.

        Raises:
            InvalidInputError: As in
                :meth:`max_marginal_relevance_search_with_score_by_vector`.
            DimensionMismatchError: The vector's length differs from the table's
                dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        pairs = self.max_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )
        return [doc for doc, _ in pairs]

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search_by_vector`."""
        pairs = await self.amax_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )
        return [doc for doc, _ in pairs]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Documents for a query by maximal marginal relevance: relevant and diverse.

        Args:
            query: The query text, embedded with the store's embeddings.
            k: How many documents to return (at most ``fetch_k``).
            fetch_k: How many nearest candidates MMR chooses from.
            lambda_mult: From 0 (diversity only) to 1 (relevance only).
            filter: A metadata filter (FILTERS.md), applied to the candidates.
            **kwargs: Per-call search settings for the candidates' search, as
                :meth:`similarity_search_with_score_by_vector` takes them.

        Returns:
            The documents, in the order MMR picks them.

        Raises:
            InvalidInputError: The query is not a string PostgreSQL can hold, or another
                argument is out of range (as in
                :meth:`max_marginal_relevance_search_with_score_by_vector`).
            DimensionMismatchError: The query's embedding has another length than the
                table's dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        vector = self._embeddings.embed_query(check_query(query))
        return self.max_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, **kwargs
        )

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search`."""
        vector = await self._embeddings.aembed_query(check_query(query))
        return await self.amax_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, **kwargs
        )

    # ------------------------------------------------------------------ full text, hybrid

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        fetch_k: int | None = None,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        fusion: str = "convex",
        k1: float = _hybrid.K1,
        b: float = _hybrid.B,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Keyword (BM25) and vector search, each ``fetch_k`` deep, fused.

        Needs ``full_text`` enabled on the store. The keyword leg is
        :meth:`full_text_search_with_score`'s; a query with no searchable words falls
        back to the vector leg alone. Both legs apply the filter. The default fusion,
        ``"convex"``, standardises each leg's scores over its own results (z-scores)
        and adds them with the weights; ``"rrf"`` is reciprocal rank fusion.

        Args:
            query: The query text (embedded for the vector leg).
            k: Documents to return.
            filter: A metadata filter, applied inside both legs.
            fetch_k: Candidates each leg ranks (default ``max(20, 4 * k)``).
            rrf_k: The RRF constant (``fusion="rrf"``): larger values flatten the rank
                contributions.
            weights: (vector weight, full-text weight), both finite and non-negative.
            fusion: ``"convex"`` (standardised scores, weighted) or ``"rrf"``.
            k1: BM25's term-frequency saturation (finite, >= 0).
            b: BM25's document-length normalisation (0 to 1).
            **kwargs: Per-call search settings for the vector leg, as
                :meth:`similarity_search_with_score_by_vector` takes them.

        Returns:
            (document, fused score) pairs, highest score first; empty when the
            collection does not exist.

        Raises:
            InvalidInputError: The query is not a string PostgreSQL can hold; ``k``,
                ``fetch_k`` or ``rrf_k`` is not an integer from 0 to 2,147,483,647;
                ``weights`` is not two non-negative numbers; ``k1`` or ``b`` is out of
                range; ``fusion`` is neither ``"convex"`` nor ``"rrf"``; or a search
                setting is out of range.
            SchemaError: The store was made without ``full_text``, or the table has no
                full-text column and this role may not add it (it does not own the
                table).
            DimensionMismatchError: The query's embedding has another length than the
                table's dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        bm25 = self._hybrid_args(query, k, fetch_k, rrf_k, weights, fusion, k1, b)
        vector = self._embeddings.embed_query(check_query(query))
        state = self._ensure(len(vector), full_text=True)
        if not k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        return _fused(
            self._run(
                lambda: self._hybrid_steps(
                    state, vector, query, k, filter, fetch_k, rrf_k, weights, fusion, bm25, kwargs
                )
            )
        )

    async def ahybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        fetch_k: int | None = None,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        fusion: str = "convex",
        k1: float = _hybrid.K1,
        b: float = _hybrid.B,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`hybrid_search_with_score`."""
        bm25 = self._hybrid_args(query, k, fetch_k, rrf_k, weights, fusion, k1, b)
        vector = await self._embeddings.aembed_query(check_query(query))
        state = await self._aensure(len(vector), full_text=True)
        if not k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        return _fused(
            await self._arun(
                lambda: self._hybrid_steps(
                    state, vector, query, k, filter, fetch_k, rrf_k, weights, fusion, bm25, kwargs
                )
            )
        )

    def _hybrid_args(
        self,
        query: str,
        k: int,
        fetch_k: int | None,
        rrf_k: int,
        weights: tuple[float, float],
        fusion: str,
        k1: float,
        b: float,
    ) -> tuple[float, float]:
        """Raise before any I/O (and before embedding) for bad arguments; BM25's (k1, b)."""
        check_query(query)
        _check_k(k)
        if fetch_k is not None:
            _check_k(fetch_k, "fetch_k")
        _check_k(rrf_k, "rrf_k")
        if (
            not isinstance(weights, tuple | list)
            or len(weights) != 2
            or not all(
                isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w)
                for w in weights
            )
            or not all(w >= 0 for w in weights)
        ):
            raise InvalidInputError(
                f"weights must be two non-negative numbers (vector, text), got {weights!r}"
            )
        if fusion not in _hybrid.FUSIONS:
            raise InvalidInputError(
                f"fusion must be one of {', '.join(map(repr, _hybrid.FUSIONS))}, got {fusion!r}"
            )
        bm25 = _hybrid.check_bm25(k1, b)
        if self._spec.text_search_config is None:
            _hybrid.check_search(mapped_tables(self._spec), query)
        return bm25

    def _hybrid_steps(
        self,
        state: State,
        embedding: Sequence[float],
        query: str,
        k: int,
        filter: Filter | None,
        fetch_k: int | None,
        rrf_k: int,
        weights: tuple[float, float],
        fusion: str,
        bm25: tuple[float, float],
        kwargs: dict[str, Any],
    ) -> Steps:
        """The statements of one hybrid search (its arguments checked by _hybrid_args)."""
        candidates = max(20, 4 * k) if fetch_k is None else fetch_k
        _hybrid.check_search(state.tables, query, present=state.full_text)
        request = self._request(state, embedding, candidates, filter, kwargs)
        pair = (float(weights[0]), float(weights[1]))
        return self._planner.hybrid_steps(request, query, k, rrf_k, pair, bm25, fusion)

    def hybrid_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents from :meth:`hybrid_search_with_score`, without the scores.

        Args:
            query: The query text (embedded for the vector leg).
            k: How many documents to return.
            filter: A metadata filter, applied inside both legs.
            **kwargs: ``fetch_k``, ``rrf_k``, ``weights`` and per-call search settings,
                as :meth:`hybrid_search_with_score` takes them.

        Returns:
            The documents, highest fused score first.

        Raises:
            InvalidInputError: As in :meth:`hybrid_search_with_score`.
            SchemaError: The store has no full-text search (as in
                :meth:`hybrid_search_with_score`).
            DimensionMismatchError: The query's embedding has another length than the
                table's dimension.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        return [doc for doc, _ in self.hybrid_search_with_score(query, k, filter, **kwargs)]

    async def ahybrid_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`hybrid_search`."""
        pairs = await self.ahybrid_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def full_text_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        k1: float = _hybrid.K1,
        b: float = _hybrid.B,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Keyword search only, ranked by BM25; no embedding is computed.

        Needs ``full_text`` enabled on the store. The query's words are OR'ed (after the
        text search configuration's stemming and stop words) and each weighted by its
        IDF in the collection, from term statistics that triggers keep exact in every
        transaction. The query takes ``websearch_to_tsquery`` syntax: a ``"quoted
        phrase"`` must occur as a phrase, a ``-word`` (or ``-"phrase"``) must not occur.

        Args:
            query: The query text.
            k: How many documents to return.
            filter: A metadata filter (FILTERS.md), applied before ranking.
            k1: BM25's term-frequency saturation (finite, >= 0).
            b: BM25's document-length normalisation (0 to 1).
            **kwargs: Unused; accepted so that retrievers can pass search keywords.

        Returns:
            (document, BM25 score) pairs, highest first; empty for a query with no
            searchable words, or when the collection does not exist.

        Raises:
            InvalidInputError: The query is not a string PostgreSQL can hold, ``k``
                is not an integer from 0 to 2,147,483,647, or ``k1`` or ``b`` is out of
                range.
            SchemaError: The store was made without ``full_text``, or the table has no
                full-text column and this role may not add it (it does not own the
                table).
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        _check_k(k)
        bm25 = _hybrid.check_bm25(k1, b)
        state = self._ensure(full_text=True)
        if not k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        return _fused(self._run(lambda: self._full_text_steps(state, query, k, filter, bm25)))

    async def afull_text_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        k1: float = _hybrid.K1,
        b: float = _hybrid.B,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`full_text_search_with_score`."""
        _check_k(k)
        bm25 = _hybrid.check_bm25(k1, b)
        state = await self._aensure(full_text=True)
        if not k or state is None or state.collection_id is None:
            validate_filter(filter)  # a bad filter is an error even with nothing to search
            return []
        return _fused(
            await self._arun(lambda: self._full_text_steps(state, query, k, filter, bm25))
        )

    def _full_text_steps(
        self, state: State, query: str, k: int, filter: Filter | None, bm25: tuple[float, float]
    ) -> Steps:
        _hybrid.check_search(state.tables, query, present=state.full_text)
        where, shape = self._planner.scoped(state, filter)
        return self._planner.keyword_steps(
            state, where, shape, query, k, bm25, self.search_settings
        )

    def full_text_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents from :meth:`full_text_search_with_score`, without the ranks.

        Args:
            query: The query, in ``websearch_to_tsquery`` syntax.
            k: How many documents to return.
            filter: A metadata filter (FILTERS.md).
            **kwargs: Unused; accepted so that retrievers can pass search keywords.

        Returns:
            The documents, highest rank first.

        Raises:
            InvalidInputError: As in :meth:`full_text_search_with_score`.
            SchemaError: The store has no full-text search (as in
                :meth:`full_text_search_with_score`).
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        return [doc for doc, _ in self.full_text_search_with_score(query, k, filter, **kwargs)]

    async def afull_text_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`full_text_search`."""
        pairs = await self.afull_text_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def as_retriever(self, **kwargs: Any) -> PGVecRetriever:
        """A LangChain retriever over this store.

        Args:
            **kwargs: The retriever's fields: ``search_type`` (``"similarity"``, the
                default, ``"mmr"``, ``"similarity_score_threshold"``, ``"hybrid"`` or
                ``"full_text"``), ``search_kwargs`` (for the matching search method:
                ``k``, ``filter``, ``fetch_k``, ``ef_search``, ...), ``tags`` (default:
                the store's and the embeddings' class names), ...

        Returns:
            A :class:`PGVecRetriever`.

        Raises:
            ValueError: ``search_type`` is not one of those, or is
                ``"similarity_score_threshold"`` without a float ``score_threshold`` in
                ``search_kwargs`` (pydantic's ``ValidationError``).
        """
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return PGVecRetriever(vectorstore=self, tags=tags, **kwargs)

    # ------------------------------------------------------------------ indexes

    def create_index(
        self,
        spec: IndexSpec,
        *,
        name: str | None = None,
        concurrently: bool = False,
        per_collection: bool = False,
        maintenance_work_mem: str | None = None,
        show_progress: bool | None = None,
    ) -> str:
        """Build a vector index whose operator class serves this store's distance.

        Build it after loading: HNSW builds faster into an existing table than it grows
        row by row, and IVFFlat trains its lists on the rows present. An index of the
        same name and shape that exists already is left as it is. The build ignores
        ``statement_timeout``; after a build, the table is analyzed (a failure of that
        is logged, not raised).

        Args:
            spec: ``HNSW(m, ef_construction)`` or ``IVFFlat(lists)``; IVFFlat without
                ``lists`` is sized from the row count (rows / 1000, or sqrt(rows) above
                1M rows). ``HNSW(quantization="halfvec" | "binary")`` indexes the vectors
                in half precision or as bits; searches re-rank its candidates by exact
                distance (``overfetch``).
            name: The index name; by default ``<table>_<method>_<distance>``, plus the
                collection for ``per_collection``; a quantized index has its
                quantization after the method (``<table>_hnsw_halfvec_cosine``,
                ``<table>_hnsw_binary``).
            concurrently: ``CREATE INDEX CONCURRENTLY``: writes go on during the build
                (slower; runs outside a transaction).
            per_collection: A partial index over this store's collection only
                (``WHERE collection_id = '<id>'``), for tables shared by collections.
            maintenance_work_mem: Memory for this build, e.g. ``"1GB"``; an HNSW build
                is much faster when the graph fits in it.
            show_progress: Show a progress bar on stderr (None: when stderr is a terminal).

        Returns:
            The index name.

        Raises:
            InvalidInputError: ``spec`` is not an ``HNSW`` or ``IVFFlat`` instance,
                ``name`` is empty or over 63 bytes, ``maintenance_work_mem`` is not a
                memory size, ``concurrently`` and ``maintenance_work_mem`` are asked
                for on a connection through a pooler, or ``quantization="halfvec"`` is
                asked for on a halfvec table.
            SchemaError: The table does not exist; with ``per_collection``, the
                collection does not; its vectors have no fixed dimension, or more
                dimensions than pgvector indexes (2,000 for vector, 4,000 for halfvec
                and for a halfvec quantization, 64,000 for a binary one); or the name
                is taken by an index with another definition, an invalid index, or
                another relation.
            ExtensionError: An HNSW index on pgvector older than 0.5, or a quantized
                one on pgvector older than 0.7.
            PrivilegeError: The role does not own the table.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        self._outside_transaction("create_index()")
        plan = self._vector_plan(
            self._ensure(), spec, name, concurrently, per_collection, maintenance_work_mem
        )
        if _index_admin.create(self._engines, self._write_access, plan, show_progress):
            self._refresh_statistics(mapped_tables(plan.spec), "table")
        self._indexes_changed()
        return plan.name

    async def acreate_index(
        self,
        spec: IndexSpec,
        *,
        name: str | None = None,
        concurrently: bool = False,
        per_collection: bool = False,
        maintenance_work_mem: str | None = None,
        show_progress: bool | None = None,
    ) -> str:
        """Async twin of :meth:`create_index`."""
        self._outside_transaction("acreate_index()")
        plan = self._vector_plan(
            await self._aensure(), spec, name, concurrently, per_collection, maintenance_work_mem
        )
        if await _index_admin.acreate(self._engines, self._write_access, plan, show_progress):
            await self._arefresh_statistics(mapped_tables(plan.spec), "table")
        self._indexes_changed()
        return plan.name

    def _vector_plan(
        self,
        state: State | None,
        spec: IndexSpec,
        name: str | None,
        concurrently: bool,
        per_collection: bool,
        maintenance_work_mem: str | None,
    ) -> _index_admin.Plan:
        spec = _index_specs.check_spec(spec)
        name = None if name is None else _index_specs.check_index_name(name)
        memory = _index_specs.check_memory(maintenance_work_mem)
        return _index_admin.vector_plan(
            _index_admin.existing(state, self._spec, "create_index()"),
            spec,
            self.distance_strategy,
            self.collection_name,
            name,
            concurrently,
            per_collection,
            memory,
        )

    def create_metadata_index(
        self,
        field: str,
        kind: IndexKind,
        *,
        name: str | None = None,
        concurrently: bool = False,
    ) -> str:
        """Index a metadata field for range filters (``$gt``, ``$lte``, ``$between``, ``$like``).

        The index is a btree on exactly the expression the filter compiler compares, so
        ``filter={"year": {"$gte": 2020}}`` can use ``create_metadata_index("year",
        "number")``. Equality filters (``$eq``, ``$in``, ``$contains``) need no such
        index: the GIN index on ``metadata`` serves them.

        Args:
            field: The metadata field; ``"a.b"`` is the key ``b`` inside ``a``.
            kind: ``"number"`` or ``"text"``: the type of the filter operands it serves.
            name: The index name; by default ``<table>_meta_<field>_<kind>``.
            concurrently: ``CREATE INDEX CONCURRENTLY`` (writes go on during the build).

        Returns:
            The index name.

        Raises:
            InvalidInputError: ``name`` is empty or over 63 bytes.
            FilterError: ``field`` is not a field name, or ``kind`` is not ``"number"``
                or ``"text"``.
            SchemaError: The table does not exist, or the name is taken by an index with
                another definition, an invalid index, or another relation.
            PrivilegeError: The role does not own the table.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        self._outside_transaction("create_metadata_index()")
        plan = self._metadata_plan(self._ensure(), field, kind, name, concurrently)
        if _index_admin.create(self._engines, self._write_access, plan, False):
            self._refresh_statistics(mapped_tables(plan.spec), "table")
        self._indexes_changed()
        return plan.name

    async def acreate_metadata_index(
        self,
        field: str,
        kind: IndexKind,
        *,
        name: str | None = None,
        concurrently: bool = False,
    ) -> str:
        """Async twin of :meth:`create_metadata_index`."""
        self._outside_transaction("acreate_metadata_index()")
        plan = self._metadata_plan(await self._aensure(), field, kind, name, concurrently)
        if await _index_admin.acreate(self._engines, self._write_access, plan, False):
            await self._arefresh_statistics(mapped_tables(plan.spec), "table")
        self._indexes_changed()
        return plan.name

    def _metadata_plan(
        self, state: State | None, field: str, kind: IndexKind, name: str | None, concurrently: bool
    ) -> _index_admin.Plan:
        name = None if name is None else _index_specs.check_index_name(name)
        state = _index_admin.existing(state, self._spec, "create_metadata_index()")
        return _index_admin.metadata_plan(state, field, kind, name, concurrently)

    def list_indexes(self) -> list[IndexInfo]:
        """Every index on the embedding table: primary key, GIN, vector and expression indexes.

        Returns:
            One :class:`IndexInfo` per index, by name; empty when the table does not exist.

        Raises:
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        with self._tx.begin(self._engines.sync, vectors=False, access=self._read_access) as conn:
            return read_indexes(conn, self._spec)

    async def alist_indexes(self) -> list[IndexInfo]:
        """Async twin of :meth:`list_indexes`."""
        async with self._tx.abegin(
            self._engines.async_, vectors=False, access=self._read_access
        ) as conn:
            return await conn.run_sync(read_indexes, self._spec)

    def drop_index(self, name: str, *, concurrently: bool = False) -> None:
        """Drop an index of the embedding table; a name that does not exist is ignored.

        Args:
            name: The index name, as :meth:`create_index` returned it or
                :meth:`list_indexes` shows it.
            concurrently: ``DROP INDEX CONCURRENTLY``: does not block searches and writes.

        Raises:
            InvalidInputError: ``name`` is empty or over 63 bytes.
            SchemaError: The name belongs to another table's index or another relation,
                or to the primary key.
            PrivilegeError: The role does not own the table.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        self._outside_transaction("drop_index()")
        name = _index_specs.check_index_name(name)
        _index_admin.drop(self._engines, self._write_access, self._spec, name, concurrently)
        self._indexes_changed()

    async def adrop_index(self, name: str, *, concurrently: bool = False) -> None:
        """Async twin of :meth:`drop_index`."""
        self._outside_transaction("adrop_index()")
        name = _index_specs.check_index_name(name)
        await _index_admin.adrop(self._engines, self._write_access, self._spec, name, concurrently)
        self._indexes_changed()

    def _outside_transaction(self, what: str) -> None:
        """Refuse an index build or drop inside :meth:`transaction`, before any I/O."""
        if self._tx.current() is not None:
            raise InvalidInputError(
                f"{what} cannot run inside store.transaction(): it runs on a connection of "
                "its own, which would wait for the locks of the transaction's writes; call "
                "it before or after the block"
            )

    def _indexes_changed(self) -> None:
        """Read the indexes (and statistics) again before the next search plans.

        In every store of this process on the table.
        """
        self.refresh()
        changed(self._table_key)

    def _collection_id(self) -> uuid.UUID | None:
        return None if self._state is None else self._state.collection_id

    def _refresh_statistics(self, tables: Tables, scope: Literal["table", "planner"]) -> bool:
        """``ANALYZE`` the embedding table (see :func:`_bootstrap.analyze`); whether it did.

        A failure is logged, never raised: the call that asked for it has committed.
        """
        try:
            with begin(self._engines.sync, vectors=False, access=self._write_access) as conn:
                analyze(conn, tables, scope, self._collection_id())
        except PGVecError as exc:
            _log.warning("ANALYZE of %s failed: %s", tables.spec.qualified_embedding_table, exc)
            return False
        changed(self._table_key)  # every store of the table reads the new statistics
        return True

    async def _arefresh_statistics(
        self, tables: Tables, scope: Literal["table", "planner"]
    ) -> bool:
        """Async twin of :meth:`_refresh_statistics`."""
        try:
            async with abegin(
                self._engines.async_, vectors=False, access=self._write_access
            ) as conn:
                await conn.run_sync(analyze, tables, scope, self._collection_id())
        except PGVecError as exc:
            _log.warning("ANALYZE of %s failed: %s", tables.spec.qualified_embedding_table, exc)
            return False
        changed(self._table_key)
        return True

    # ------------------------------------------------------------------ explain

    def explain(
        self,
        query: str | Sequence[float],
        k: int = 4,
        filter: Filter | None = None,
        *,
        analyze: bool = False,
        mmr: bool = False,
        fetch_k: int = 20,
        **search_kwargs: Any,
    ) -> str:
        """PostgreSQL's plan of the exact query a search would run.

        The search statement is built as the search builds it, with the same per-query
        settings (``hnsw.ef_search``, iterative scans, ...) applied in the same
        transaction, and its parameters bound by the driver; only ``EXPLAIN`` is put in
        front. Look for ``Index Scan using <index>`` (an index serves the search) or
        ``Seq Scan`` (every row is read).

        Args:
            query: A text (embedded with the store's embeddings) or a vector.
            k: The number of results of the search to explain.
            filter: A metadata filter (FILTERS.md).
            analyze: Run the query too (``EXPLAIN (ANALYZE, BUFFERS)``): actual times,
                rows and buffers.
            mmr: Explain the candidate query of max_marginal_relevance_search instead.
            fetch_k: The MMR candidates fetched (with ``mmr``).
            **search_kwargs: Per-call search settings, as the search methods take them
                (``ef_search``, ``iterative_scan``, ...); ``lambda_mult`` is ignored.

        Returns:
            The plan, one line per plan row.

        Raises:
            InvalidInputError: ``query`` is neither a string nor a vector, ``k`` (or
                ``fetch_k`` with ``mmr``) is not an integer from 1 to 2,147,483,647, the
                vector is not a flat sequence of finite numbers, or a search setting is
                out of range.
            DimensionMismatchError: The vector's length differs from the table's
                dimension.
            SchemaError: The table or the collection does not exist.
            FilterError: ``filter`` breaks the filter language (FILTERS.md).
            ExtensionError: ``iterative_scan`` is asked for (on the store or the call)
                and pgvector is older than 0.8.
            QueryTimeoutError: A statement ran past the store's ``statement_timeout``.
            PrivilegeError: The role may not ``SELECT`` from the tables.
            ConnectError: No connection could be had.
            ConnectionLostError: The server could not be reached, or went away during
                the call.
            DatabaseError: The server refused a statement for another reason.
        """
        self._explain_args(query, k, mmr, fetch_k)
        vector = (
            self._embeddings.embed_query(check_query(query)) if isinstance(query, str) else query
        )
        state = self._ensure(len(vector))
        return _plan_text(
            self._run(
                lambda: self._explained(
                    state, vector, k, filter, mmr, fetch_k, search_kwargs, analyze
                )
            )
        )

    async def aexplain(
        self,
        query: str | Sequence[float],
        k: int = 4,
        filter: Filter | None = None,
        *,
        analyze: bool = False,
        mmr: bool = False,
        fetch_k: int = 20,
        **search_kwargs: Any,
    ) -> str:
        """Async twin of :meth:`explain`."""
        self._explain_args(query, k, mmr, fetch_k)
        vector = (
            await self._embeddings.aembed_query(check_query(query))
            if isinstance(query, str)
            else query
        )
        state = await self._aensure(len(vector))
        return _plan_text(
            await self._arun(
                lambda: self._explained(
                    state, vector, k, filter, mmr, fetch_k, search_kwargs, analyze
                )
            )
        )

    @staticmethod
    def _explain_args(query: object, k: int, mmr: bool, fetch_k: int) -> None:
        if not isinstance(query, str) and not hasattr(query, "__len__"):
            raise InvalidInputError(
                "query must be a string or a vector (a sequence of floats), got "
                f"{type(query).__name__}"
            )
        check_int(k, "k", 1)
        if mmr:
            check_int(fetch_k, "fetch_k", 1)

    def _explained(
        self,
        state: State | None,
        vector: Sequence[float],
        k: int,
        filter: Filter | None,
        mmr: bool,
        fetch_k: int,
        search_kwargs: dict[str, Any],
        analyze: bool,
    ) -> Steps:
        """The steps of the search an explained call would run, its search explained."""
        state = _index_admin.existing(state, self._spec, "explain()")
        if state.collection_id is None:
            raise SchemaError(
                f"collection {self.collection_name!r} does not exist in table "
                f"{state.tables.spec.qualified_embedding_table!r}, so a search runs no SQL; "
                "add documents before explain()"
            )
        kwargs = dict(search_kwargs)
        kwargs.pop("lambda_mult", None)
        size = fetch_k if mmr else k
        request = self._request(state, vector, size, filter, kwargs, with_vectors=mmr)
        return self._planner.explain_steps(request, analyze=analyze)

    def _warn_if_unindexed(self, state: State) -> None:
        """Warn once per store when a large table has no index for its distance; no I/O."""
        if self._unindexed_warned or state is self._advised:
            return
        self._advised = state
        spec = state.tables.spec
        advice = _index_specs.unindexed_advice(
            table=spec.qualified_embedding_table,
            approx_rows=state.approx_rows,
            indexes=state.indexes,
            strategy=self.distance_strategy,
            vector_type=spec.vector_type,
            collection_id=state.collection_id,
        )
        if advice is not None:
            self._unindexed_warned = True
            warnings.warn(advice, PerformanceWarning, stacklevel=_stacklevel())

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Make a store and add ``texts`` to it.

        Args:
            texts: The contents.
            embedding: The embeddings model (the constructor's ``embeddings``).
            metadatas: One dict (or None) per text, or None.
            ids: One id (or None, generated) per text, or None to generate all.
            **kwargs: The constructor's keyword arguments (``connection``,
                ``collection_name``, ...).

        Returns:
            The store.

        Raises:
            PGVecError: The errors of the constructor and of :meth:`add_texts`.
        """
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Async twin of :meth:`from_texts`."""
        store = cls(embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_embeddings(
        cls,
        text_embeddings: Sequence[tuple[str, Sequence[float]]],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Make a store and add (text, vector) pairs computed elsewhere to it.

        Args:
            text_embeddings: (text, vector) pairs.
            embedding: The embeddings model (the constructor's ``embeddings``), used for
                queries.
            metadatas: One dict (or None) per pair, or None.
            ids: One id (or None, generated) per pair, or None to generate all.
            **kwargs: The constructor's keyword arguments (``connection``,
                ``collection_name``, ...).

        Returns:
            The store.

        Raises:
            PGVecError: The errors of the constructor and of :meth:`add_embeddings`.
        """
        store = cls(embedding, **kwargs)
        texts = [text for text, _ in text_embeddings]
        store.add_embeddings(texts, [vector for _, vector in text_embeddings], metadatas, ids)
        return store

    @classmethod
    async def afrom_embeddings(
        cls,
        text_embeddings: Sequence[tuple[str, Sequence[float]]],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Async twin of :meth:`from_embeddings`."""
        store = cls(embedding, **kwargs)
        texts = [text for text, _ in text_embeddings]
        vectors = [vector for _, vector in text_embeddings]
        await store.aadd_embeddings(texts, vectors, metadatas, ids)
        return store

    def close(self) -> None:
        """Release this store's engines.

        The pools (and search connections) of the engines it made are closed when the
        last store sharing them closes; an engine you passed, and the twin derived from
        it, stay open. Closing a store twice releases its engines once (and closes what
        using it after the first close opened, if no other store shares the engines).
        """
        self._engines.dispose(store_done=not self._closed)
        if not self._closed:
            self._replicas.close()
        self._closed = True

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await self._engines.adispose(store_done=not self._closed)
        if not self._closed:
            await self._replicas.aclose()
        self._closed = True

    def __repr__(self) -> str:
        return (
            f"PGVecStore(collection_name={self.collection_name!r}, "
            f"table={self._spec.qualified_embedding_table!r}, "
            f"distance_strategy={self.distance_strategy.value!r})"
        )
