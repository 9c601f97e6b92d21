"""PGVecStore's index methods: vector indexes, metadata indexes, EXPLAIN, guidance.

The statements and checks are pure (``_indexes``); the catalog reads and the build
itself are sync functions of a ``Connection`` that the async twins run through
``AsyncConnection.run_sync``, so the twins differ only in ``await`` and in how they
watch a build's progress (a thread, or a task).

Index builds ignore the store's ``statement_timeout``: it bounds searches, and a
build that takes minutes is expected. ``CREATE INDEX CONCURRENTLY`` cannot run in a
transaction block, so it runs on an AUTOCOMMIT connection with a session-level
``maintenance_work_mem`` that is reset afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, Index, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable
from tqdm import tqdm

from . import _indexes
from ._engine import BEHIND_POOLER, Engines, abegin, begin
from ._errors import (
    Access,
    InvalidInputError,
    PerformanceWarning,
    PGVecError,
    SchemaError,
    translate_errors,
)
from ._filters import IndexKind
from ._indexes import (
    BACKEND_PID,
    PROGRESS,
    RESET_MEMORY,
    DistanceStrategy,
    IndexInfo,
    IndexSpec,
    IVFFlat,
    Wanted,
)
from ._input import check_int
from ._schema import Tables, TableSpec, mapped_tables
from ._setup import State, TableKey, analyze, changed, find_index, read_indexes, require

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from ._search import Planner, Request, Steps

_log = logging.getLogger("langchain_pgvec")

POLL_SECONDS = 0.2
_STOP_SECONDS = 5.0
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True)
class _Plan:
    """A ``CREATE INDEX`` decided up to what only the database can tell."""

    name: str
    spec: TableSpec
    wanted: Wanted
    make_index: Callable[[int], Index]  # row count -> the index
    count: Executable | None  # the rows an IVFFlat index without ``lists`` is sized by
    concurrently: bool
    maintenance_work_mem: str | None


@dataclass(frozen=True)
class _Build:
    """One ``CREATE INDEX`` or ``DROP INDEX`` and how to run it."""

    name: str
    statement: Executable
    spec: TableSpec
    concurrently: bool = False
    maintenance_work_mem: str | None = None
    cleanup: Executable | None = None  # drops the invalid leftover of a failed concurrent build


def _run_build(conn: Connection, build: _Build) -> None:
    """Run a build on ``conn`` (in a transaction, or AUTOCOMMIT when concurrent) and commit."""
    memory = build.maintenance_work_mem
    if build.concurrently and memory is not None and conn.connection.info.get(BEHIND_POOLER):
        raise InvalidInputError(
            "create_index(concurrently=True, maintenance_work_mem=...) sets maintenance_work_mem "
            "for the session (a concurrent build cannot run in a transaction), and this "
            "connection goes through a pooler, which would hand that setting to other "
            "clients: build the index on a direct connection to PostgreSQL, or leave "
            "maintenance_work_mem unset"
        )
    if memory is not None:
        conn.execute(_indexes.set_memory(memory, local=not build.concurrently))
    try:
        conn.execute(build.statement)
    except BaseException:
        if build.cleanup is not None:
            with contextlib.suppress(Exception):
                _drop_if_invalid(conn, build)
        raise
    finally:
        if build.concurrently and memory is not None:
            try:
                conn.execute(RESET_MEMORY)
            except Exception:
                conn.invalidate()  # never hand a connection with our setting back to the pool
    conn.commit()


def _drop_if_invalid(conn: Connection, build: _Build) -> None:
    leftover = find_index(conn, build.spec, build.name)
    if build.cleanup is not None and leftover is not None and not leftover.valid:
        conn.execute(build.cleanup)


def _prepare(conn: Connection, plan: _Plan) -> _Build | None:
    """The build of ``plan``, or None when an index of that name and shape exists."""
    table = plan.spec.qualified_embedding_table
    if _indexes.already_built(find_index(conn, plan.spec, plan.name), plan.wanted, table):
        return None
    rows = 0 if plan.count is None else int(conn.execute(plan.count).scalar_one())
    cleanup = None
    if plan.concurrently:
        cleanup = _indexes.drop_statement(
            plan.spec.schema, plan.spec.embedding_table, plan.name, concurrently=True
        )
    return _Build(
        name=plan.name,
        statement=_indexes.create_statement(plan.make_index(rows)),
        spec=plan.spec,
        concurrently=plan.concurrently,
        maintenance_work_mem=plan.maintenance_work_mem,
        cleanup=cleanup,
    )


def _drop(conn: Connection, spec: TableSpec, name: str, concurrently: bool) -> _Build | None:
    """The ``DROP INDEX`` of ``name``, or None when it does not exist."""
    existing = find_index(conn, spec, name)
    if existing is None:
        return None
    if existing.primary:
        raise SchemaError(
            f"index {name!r} is the primary key of table {spec.qualified_embedding_table!r}, "
            "which keeps document ids unique per collection; it cannot be dropped"
        )
    statement = _indexes.drop_statement(
        spec.schema, spec.embedding_table, name, concurrently=concurrently
    )
    return _Build(name=name, statement=statement, spec=spec, concurrently=concurrently)


def _existing_state(state: State | None, spec: TableSpec, what: str) -> State:
    if state is None:
        raise SchemaError(
            f"table {spec.qualified_embedding_table!r} does not exist yet; add documents (or "
            f"call create_tables() with embedding_length set) before {what}"
        )
    return state


def _plan_text(rows: Sequence[Sequence[Any]]) -> str:
    return "\n".join(str(row[0]) for row in rows)


def _wants_progress(show_progress: bool | None) -> bool:
    if show_progress is not None:
        return show_progress
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def _stacklevel() -> int:
    """The ``warnings.warn`` stacklevel, for its caller, of the first frame outside this package."""
    level, frame = 2, sys._getframe(2)
    current: FrameType | None = frame
    while current is not None and current.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, current = level + 1, current.f_back
    return level


class _Bar:
    """A tqdm bar on stderr fed with ``pg_stat_progress_create_index`` rows."""

    def __init__(self, name: str) -> None:
        self._bar = tqdm(desc=f"CREATE INDEX {name}", unit="block", file=sys.stderr, leave=True)
        self._phase: str | None = None

    def show(self, row: Any) -> None:
        phase, done, total, unit = _indexes.progress_of(row)
        bar = self._bar
        if total is not None and (bar.total != total or bar.unit != unit):
            bar.unit = unit
            bar.reset(total=total)
        if phase != self._phase:
            self._phase = phase
            bar.set_postfix_str(phase, refresh=False)
        done = min(done, total) if total else done
        if done < bar.n:  # a new phase counts again from zero
            bar.reset(total=bar.total)
        if done > bar.n:
            bar.update(done - bar.n)
        else:
            bar.refresh()

    def close(self, ok: bool) -> None:
        bar = self._bar
        if ok and bar.total and bar.n < bar.total:
            bar.update(bar.total - bar.n)
        bar.set_postfix_str("done" if ok else "failed", refresh=False)
        bar.close()


class _ThreadWatcher:
    """Polls a build's progress from a second connection, in a thread (the sync path)."""

    def __init__(self, engine: Engine, pid: int, bar: _Bar) -> None:
        self._engine, self._pid, self._bar = engine, pid, bar
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="pgvec-index-progress", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                while not self._stop.wait(POLL_SECONDS):
                    row = conn.execute(PROGRESS, {"pid": self._pid}).first()
                    if row is not None:
                        self._bar.show(row)
        except Exception:  # the bar is cosmetic; the build reports its own errors
            return

    def stop(self, ok: bool) -> None:
        self._stop.set()
        self._thread.join(_STOP_SECONDS)
        self._bar.close(ok)


class _TaskWatcher:
    """Polls a build's progress from a second connection, in a task (the async path)."""

    def __init__(self, engine: AsyncEngine, pid: int, bar: _Bar) -> None:
        self._engine, self._pid, self._bar = engine, pid, bar
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        try:
            async with self._engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                while True:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), POLL_SECONDS)
                        return
                    row = (await conn.execute(PROGRESS, {"pid": self._pid})).first()
                    if row is not None:
                        self._bar.show(row)
        except Exception:  # the bar is cosmetic; the build reports its own errors
            return

    async def stop(self, ok: bool) -> None:
        self._stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._task, _STOP_SECONDS)
        self._bar.close(ok)


class IndexMethods:
    """Index management for :class:`PGVecStore` (mixed into it)."""

    _engines: Engines
    _spec: TableSpec
    _state: State | None
    _planner_made: Planner | None
    _table_key: TableKey
    _read_access: Access
    _write_access: Access
    distance_strategy: DistanceStrategy
    collection_name: str
    _unindexed_warned: bool = False

    if TYPE_CHECKING:

        @property
        def embeddings(self) -> Embeddings: ...

        @property
        def _planner(self) -> Planner: ...

        def _run(self, steps: Steps) -> list[Any]: ...

        async def _arun(self, steps: Steps) -> list[Any]: ...

        def _ensure(
            self, dimension: int | None = None, *, create: bool = False
        ) -> State | None: ...

        async def _aensure(
            self, dimension: int | None = None, *, create: bool = False
        ) -> State | None: ...

        def _request(
            self,
            state: State,
            embedding: Sequence[float],
            k: int,
            filter: Mapping[str, Any] | None,
            kwargs: dict[str, Any],
            *,
            with_vectors: bool = False,
        ) -> Request: ...

    # ------------------------------------------------------------------ vector indexes

    def _vector_plan(
        self,
        state: State | None,
        spec: IndexSpec,
        name: str | None,
        concurrently: bool,
        per_collection: bool,
        maintenance_work_mem: str | None,
    ) -> _Plan:
        state = _existing_state(state, self._spec, "create_index()")
        tables = state.tables
        table_spec = tables.spec
        collection_id: uuid.UUID | None = None
        if per_collection:
            if state.collection_id is None:
                raise SchemaError(
                    f"collection {self.collection_name!r} does not exist in table "
                    f"{table_spec.qualified_embedding_table!r} yet; add its documents before "
                    "create_index(..., per_collection=True)"
                )
            collection_id = state.collection_id
        if spec.method == "hnsw":
            require("HNSW", state.extension_version, "or build an IVFFlat() index")
        _indexes.check_indexable(
            table_spec.qualified_embedding_table,
            table_spec.vector_type,
            table_spec.dimension,
            spec.method,
        )
        strategy, vector_type = self.distance_strategy, table_spec.vector_type
        if name is None:
            name = _indexes.vector_index_name(
                table_spec.embedding_table, spec, strategy, collection_id
            )
        sized = isinstance(spec, IVFFlat) and spec.lists is None
        count = None
        if sized:
            count = select(func.count()).select_from(tables.embedding)
            if collection_id is not None:
                count = count.where(tables.embedding.c.collection_id == collection_id)
        index_name = name

        def make_index(rows: int) -> Index:
            return _indexes.vector_index(
                index_name,
                tables.embedding,
                spec,
                strategy,
                vector_type,
                row_count=rows,
                collection_id=collection_id,
                concurrently=concurrently,
            )

        return _Plan(
            name=name,
            spec=table_spec,
            wanted=Wanted(
                method=spec.method,
                opclass=strategy.opclass(vector_type),
                options={} if sized else spec.with_options(0),
                collection_id=collection_id,
            ),
            make_index=make_index,
            count=count,
            concurrently=concurrently,
            maintenance_work_mem=maintenance_work_mem,
        )

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
        same name and shape that exists already is left as it is.

        Args:
            spec: ``HNSW(m, ef_construction)`` or ``IVFFlat(lists)``; IVFFlat without
                ``lists`` is sized from the row count (rows / 1000, or sqrt(rows) above
                1M rows).
            name: The index name; by default ``<table>_<method>_<distance>``, plus the
                collection for ``per_collection``.
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
            SchemaError: The table does not exist, its vectors have more dimensions than
                pgvector indexes (2,000 for vector, 4,000 for halfvec), or an index of
                that name exists with another definition.
        """
        spec = _indexes.check_spec(spec)
        name = None if name is None else _indexes.check_index_name(name)
        memory = _indexes.check_memory(maintenance_work_mem)
        plan = self._vector_plan(self._ensure(), spec, name, concurrently, per_collection, memory)
        return self._create(plan, show_progress)

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
        spec = _indexes.check_spec(spec)
        name = None if name is None else _indexes.check_index_name(name)
        memory = _indexes.check_memory(maintenance_work_mem)
        plan = self._vector_plan(
            await self._aensure(), spec, name, concurrently, per_collection, memory
        )
        return await self._acreate(plan, show_progress)

    # ------------------------------------------------------------------ metadata indexes

    def _metadata_plan(
        self, state: State | None, field: str, kind: IndexKind, name: str | None, concurrently: bool
    ) -> _Plan:
        state = _existing_state(state, self._spec, "create_metadata_index()")
        tables = state.tables
        # validates field and kind (FilterError) before anything runs
        _indexes.metadata_index("_", tables.embedding, field, kind)
        if name is None:
            name = _indexes.metadata_index_name(tables.spec.embedding_table, field, kind)
        index_name = name

        def make_index(rows: int) -> Index:
            return _indexes.metadata_index(
                index_name, tables.embedding, field, kind, concurrently=concurrently
            )

        return _Plan(
            name=name,
            spec=tables.spec,
            wanted=Wanted(method="btree"),
            make_index=make_index,
            count=None,
            concurrently=concurrently,
            maintenance_work_mem=None,
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
        """
        name = None if name is None else _indexes.check_index_name(name)
        plan = self._metadata_plan(self._ensure(), field, kind, name, concurrently)
        return self._create(plan, False)

    async def acreate_metadata_index(
        self,
        field: str,
        kind: IndexKind,
        *,
        name: str | None = None,
        concurrently: bool = False,
    ) -> str:
        """Async twin of :meth:`create_metadata_index`."""
        name = None if name is None else _indexes.check_index_name(name)
        plan = self._metadata_plan(await self._aensure(), field, kind, name, concurrently)
        return await self._acreate(plan, False)

    # ------------------------------------------------------------------ building

    def _create(self, plan: _Plan, show_progress: bool | None) -> str:
        with begin(self._engines.sync, vectors=False, access=self._write_access) as conn:
            build = _prepare(conn, plan)
        if build is not None:
            self._execute(build, _wants_progress(show_progress))
            self._refresh_statistics(mapped_tables(plan.spec), "table")
        self._indexes_changed()
        return plan.name

    async def _acreate(self, plan: _Plan, show_progress: bool | None) -> str:
        async with abegin(self._engines.async_, vectors=False, access=self._write_access) as conn:
            build = await conn.run_sync(_prepare, plan)
        if build is not None:
            await self._aexecute(build, _wants_progress(show_progress))
            await self._arefresh_statistics(mapped_tables(plan.spec), "table")
        self._indexes_changed()
        return plan.name

    def _indexes_changed(self) -> None:
        """Read the indexes (and statistics) again before the next search plans, in
        every store of this process on the table."""
        self._state = None
        if self._planner_made is not None:
            self._planner_made.forget()
        changed(self._table_key)

    # ------------------------------------------------------------------ statistics

    def _refresh_statistics(self, tables: Tables, scope: Literal["table", "planner"]) -> bool:
        """``ANALYZE`` the embedding table (see :func:`_setup.analyze`); whether it did.
        A failure is logged, never raised: the call that asked for it has committed."""
        try:
            with begin(self._engines.sync, vectors=False, access=self._write_access) as conn:
                analyze(conn, tables, scope)
        except (DBAPIError, PGVecError) as exc:
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
                await conn.run_sync(analyze, tables, scope)
        except (DBAPIError, PGVecError) as exc:
            _log.warning("ANALYZE of %s failed: %s", tables.spec.qualified_embedding_table, exc)
            return False
        changed(self._table_key)
        return True

    def _execute(self, build: _Build, progress: bool) -> None:
        engine = self._engines.sync
        with translate_errors(self._write_access), engine.connect() as conn:
            if build.concurrently:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            watcher = None
            if progress:
                pid = conn.execute(BACKEND_PID).scalar_one()
                watcher = _ThreadWatcher(engine, pid, _Bar(build.name))
            ok = False
            try:
                _run_build(conn, build)
                ok = True
            finally:
                if watcher is not None:
                    watcher.stop(ok)

    async def _aexecute(self, build: _Build, progress: bool) -> None:
        engine = self._engines.async_
        with translate_errors(self._write_access):
            await self._aexecute_on(engine, build, progress)

    async def _aexecute_on(self, engine: AsyncEngine, build: _Build, progress: bool) -> None:
        async with engine.connect() as conn:
            if build.concurrently:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            watcher = None
            if progress:
                pid = (await conn.execute(BACKEND_PID)).scalar_one()
                watcher = _TaskWatcher(engine, pid, _Bar(build.name))
            ok = False
            try:
                await conn.run_sync(_run_build, build)
                ok = True
            finally:
                if watcher is not None:
                    await watcher.stop(ok)

    # ------------------------------------------------------------------ listing, dropping

    def list_indexes(self) -> list[IndexInfo]:
        """Every index on the embedding table: primary key, GIN, vector and expression indexes.

        Returns:
            One :class:`IndexInfo` per index, by name; empty when the table does not exist.
        """
        with begin(self._engines.sync, vectors=False, access=self._write_access) as conn:
            return read_indexes(conn, self._spec)

    async def alist_indexes(self) -> list[IndexInfo]:
        """Async twin of :meth:`list_indexes`."""
        async with abegin(self._engines.async_, vectors=False, access=self._write_access) as conn:
            return await conn.run_sync(read_indexes, self._spec)

    def drop_index(self, name: str, *, concurrently: bool = False) -> None:
        """Drop an index of the embedding table; a name that does not exist is ignored.

        Args:
            name: The index name, as :meth:`create_index` returned it or
                :meth:`list_indexes` shows it.
            concurrently: ``DROP INDEX CONCURRENTLY``: does not block searches and writes.

        Raises:
            SchemaError: The name belongs to another table's index or relation, or to the
                primary key.
        """
        name = _indexes.check_index_name(name)
        with begin(self._engines.sync, vectors=False, access=self._write_access) as conn:
            build = _drop(conn, self._spec, name, concurrently)
        if build is not None:
            self._execute(build, False)
        self._indexes_changed()

    async def adrop_index(self, name: str, *, concurrently: bool = False) -> None:
        """Async twin of :meth:`drop_index`."""
        name = _indexes.check_index_name(name)
        async with abegin(self._engines.async_, vectors=False, access=self._write_access) as conn:
            build = await conn.run_sync(_drop, self._spec, name, concurrently)
        if build is not None:
            await self._aexecute(build, False)
        self._indexes_changed()

    # ------------------------------------------------------------------ EXPLAIN

    def _explained(
        self,
        state: State | None,
        vector: Sequence[float],
        k: int,
        filter: Mapping[str, Any] | None,
        mmr: bool,
        fetch_k: int,
        search_kwargs: dict[str, Any],
        analyze: bool,
    ) -> Steps:
        """The steps of the search an explained call would run, its search explained."""
        state = _existing_state(state, self._spec, "explain()")
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

    def explain(
        self,
        query: str | Sequence[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
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
                (``ef_search``, ``iterative_scan``, ...).

        Returns:
            The plan, one line per plan row.
        """
        self._explain_args(query, k, mmr, fetch_k)
        vector = self.embeddings.embed_query(query) if isinstance(query, str) else query
        state = self._ensure(len(vector))
        steps = self._explained(state, vector, k, filter, mmr, fetch_k, search_kwargs, analyze)
        return _plan_text(self._run(steps))

    async def aexplain(
        self,
        query: str | Sequence[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        *,
        analyze: bool = False,
        mmr: bool = False,
        fetch_k: int = 20,
        **search_kwargs: Any,
    ) -> str:
        """Async twin of :meth:`explain`."""
        self._explain_args(query, k, mmr, fetch_k)
        vector = await self.embeddings.aembed_query(query) if isinstance(query, str) else query
        state = await self._aensure(len(vector))
        steps = self._explained(state, vector, k, filter, mmr, fetch_k, search_kwargs, analyze)
        return _plan_text(await self._arun(steps))

    # ------------------------------------------------------------------ guidance

    _advised: State | None = None

    def _warn_if_unindexed(self, state: State) -> None:
        """Warn once per store when a large table has no index for its distance; no I/O."""
        if self._unindexed_warned or state is self._advised:
            return
        self._advised = state
        spec = state.tables.spec
        advice = _indexes.unindexed_advice(
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
