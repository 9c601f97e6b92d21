"""Index administration: create, drop and list the embedding table's indexes.

What to build is decided by pure functions (``_index_specs``): a :class:`Plan` is a
``CREATE INDEX`` decided up to what only the database can tell (an IVFFlat index's
row count, whether an index of that name exists). The catalog reads and the build
itself are sync functions of a ``Connection`` that the async twins run through
``AsyncConnection.run_sync``, so the twins differ only in ``await`` and in how they
watch a build's progress (a thread, or a task).

Index builds ignore the store's ``statement_timeout``: it bounds searches, and a
build that takes minutes is expected. A build in a transaction also lifts the
session's own ``statement_timeout`` (a role's, or the engine's connect options) for
that transaction; a concurrent build, which runs outside one, is bounded by it.
``CREATE INDEX CONCURRENTLY`` cannot run in a transaction block, so it runs on an
AUTOCOMMIT connection with a session-level ``maintenance_work_mem`` that is reset
afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Index, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable

from . import _index_specs, _partitions, _progress, _quantize
from ._bootstrap import State, require
from ._catalog import PROGRESS, find_index
from ._driver import BEHIND_POOLER
from ._engine import Engines, abegin, begin
from ._errors import (
    Access,
    InvalidInputError,
    SchemaError,
    translate_errors,
)
from ._filters import IndexKind
from ._index_specs import BACKEND_PID, RESET_MEMORY, IndexSpec, IVFFlat, Wanted
from ._schema import DistanceStrategy, TableSpec, mapped_tables

if TYPE_CHECKING:
    pass

_log = logging.getLogger("langchain_pgvec")

POLL_SECONDS = 0.2
_STOP_SECONDS = 5.0
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True)
class Plan:
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
    partitioned: bool = False  # the index of a partitioned table: its partitions get names


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
        conn.execute(_index_specs.set_memory(memory, local=not build.concurrently))
    if not build.concurrently:
        conn.execute(_index_specs.NO_TIMEOUT)
    try:
        conn.execute(build.statement)
        if build.partitioned:
            _partitions.name_leaves(conn, mapped_tables(build.spec), build.name)
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


def _prepare(conn: Connection, plan: Plan) -> _Build | None:
    """The build of ``plan``, or None when an index of that name and shape exists."""
    table = plan.spec.qualified_embedding_table
    if _index_specs.already_built(find_index(conn, plan.spec, plan.name), plan.wanted, table):
        return None
    rows = 0 if plan.count is None else int(conn.execute(plan.count).scalar_one())
    cleanup = None
    if plan.concurrently:
        cleanup = _index_specs.drop_statement(
            plan.spec.schema, plan.spec.embedding_table, plan.name, concurrently=True
        )
    return _Build(
        name=plan.name,
        statement=_index_specs.create_statement(plan.make_index(rows)),
        spec=plan.spec,
        concurrently=plan.concurrently,
        maintenance_work_mem=plan.maintenance_work_mem,
        cleanup=cleanup,
        partitioned=bool(plan.spec.partitioned),
    )


def _drop(conn: Connection, spec: TableSpec, name: str, concurrently: bool) -> _Build | None:
    """The ``DROP INDEX`` of ``name``, or None when it does not exist."""
    existing = find_index(conn, spec, name)
    if existing is None:
        return None
    if existing.partitioned and concurrently:
        raise InvalidInputError(
            f"index {name!r} is the index of a partitioned table, which PostgreSQL cannot "
            "drop CONCURRENTLY; pass concurrently=False"
        )
    if existing.primary:
        raise SchemaError(
            f"index {name!r} is the primary key of table {spec.qualified_embedding_table!r}, "
            "which keeps document ids unique per collection; it cannot be dropped"
        )
    statement = _index_specs.drop_statement(
        spec.schema, spec.embedding_table, name, concurrently=concurrently
    )
    return _Build(name=name, statement=statement, spec=spec, concurrently=concurrently)


def existing(state: State | None, spec: TableSpec, what: str) -> State:
    """``state``, or the SchemaError of a table that does not exist yet."""
    if state is None:
        raise SchemaError(
            f"table {spec.qualified_embedding_table!r} does not exist yet; add documents (or "
            f"call create_tables() with embedding_length set) before {what}"
        )
    return state


class _ThreadWatcher:
    """Polls a build's progress from a second connection, in a thread (the sync path)."""

    def __init__(self, engine: Engine, pid: int, bar: _progress.BuildBar) -> None:
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

    def __init__(self, engine: AsyncEngine, pid: int, bar: _progress.BuildBar) -> None:
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


def vector_plan(
    state: State,
    spec: IndexSpec,
    strategy: DistanceStrategy,
    collection_name: str,
    name: str | None,
    concurrently: bool,
    per_collection: bool,
    maintenance_work_mem: str | None,
) -> Plan:
    """The plan of a vector index on the store's table (raising before any I/O)."""
    tables = state.tables
    table_spec = tables.spec
    collection_id: uuid.UUID | None = None
    if table_spec.partitioned:
        _partitioned_build(table_spec, concurrently, per_collection)
    if per_collection:
        if state.collection_id is None:
            raise SchemaError(
                f"collection {collection_name!r} does not exist in table "
                f"{table_spec.qualified_embedding_table!r} yet; add its documents before "
                "create_index(..., per_collection=True)"
            )
        collection_id = state.collection_id
    if spec.method == "hnsw":
        require("HNSW", state.extension_version, "or build an IVFFlat() index")
    _index_specs.check_indexable(
        table_spec.qualified_embedding_table,
        table_spec.vector_type,
        table_spec.dimension,
        spec.method,
        spec.quantization,
    )
    if spec.quantization is not None:
        require(
            "quantized indexes",
            state.extension_version,
            "or build an HNSW() index without quantization",
        )
    vector_type = table_spec.vector_type
    if name is None:
        name = _index_specs.vector_index_name(
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
        return _index_specs.vector_index(
            index_name,
            tables.embedding,
            spec,
            strategy,
            vector_type,
            row_count=rows,
            collection_id=collection_id,
            concurrently=concurrently,
            dimension=table_spec.dimension,
        )

    opclass = strategy.opclass(vector_type)
    if spec.quantization is not None:
        opclass = _quantize.opclass(spec.quantization, strategy)
    return Plan(
        name=name,
        spec=table_spec,
        wanted=Wanted(
            method=spec.method,
            opclass=opclass,
            options={} if sized else spec.with_options(0),
            collection_id=collection_id,
            quantization=spec.quantization,
        ),
        make_index=make_index,
        count=count,
        concurrently=concurrently,
        maintenance_work_mem=maintenance_work_mem,
    )


def _partitioned_build(spec: TableSpec, concurrently: bool, per_collection: bool) -> None:
    """Refuse what an index of a partitioned table cannot be, before any I/O."""
    table = spec.qualified_embedding_table
    if concurrently:
        raise InvalidInputError(
            f"table {table!r} is partitioned by collection: its index is built one "
            "partition after another in one statement, which PostgreSQL cannot run "
            "CONCURRENTLY; pass concurrently=False (the build blocks writes, not searches)"
        )
    if per_collection:
        raise InvalidInputError(
            f"table {table!r} is partitioned by collection: every index has one graph per "
            "collection already; create_index() without per_collection"
        )


def metadata_plan(
    state: State, field: str, kind: IndexKind, name: str | None, concurrently: bool
) -> Plan:
    """The plan of a btree index on a metadata field's typed expression."""
    tables = state.tables
    if tables.spec.partitioned:
        _partitioned_build(tables.spec, concurrently, False)
    # validates field and kind (FilterError) before anything runs
    _index_specs.metadata_index("_", tables.embedding, field, kind)
    if name is None:
        name = _index_specs.metadata_index_name(tables.spec.embedding_table, field, kind)
    index_name = name

    def make_index(rows: int) -> Index:
        return _index_specs.metadata_index(
            index_name, tables.embedding, field, kind, concurrently=concurrently
        )

    return Plan(
        name=name,
        spec=tables.spec,
        wanted=Wanted(method="btree"),
        make_index=make_index,
        count=None,
        concurrently=concurrently,
        maintenance_work_mem=None,
    )


def create(engines: Engines, access: Access, plan: Plan, show_progress: bool | None) -> bool:
    """Build ``plan`` unless its index exists; whether it was built."""
    with begin(engines.sync, vectors=False, access=access) as conn:
        build = _prepare(conn, plan)
    if build is None:
        return False
    execute(engines.sync, access, build, _progress.shown(show_progress))
    return True


async def acreate(engines: Engines, access: Access, plan: Plan, show_progress: bool | None) -> bool:
    """Async twin of :func:`create`."""
    async with abegin(engines.async_, vectors=False, access=access) as conn:
        build = await conn.run_sync(_prepare, plan)
    if build is None:
        return False
    await aexecute(engines.async_, access, build, _progress.shown(show_progress))
    return True


def drop(engines: Engines, access: Access, spec: TableSpec, name: str, concurrently: bool) -> None:
    """Drop index ``name`` of the table, if it exists."""
    with begin(engines.sync, vectors=False, access=access) as conn:
        build = _drop(conn, spec, name, concurrently)
    if build is not None:
        execute(engines.sync, access, build, False)


async def adrop(
    engines: Engines, access: Access, spec: TableSpec, name: str, concurrently: bool
) -> None:
    """Async twin of :func:`drop`."""
    async with abegin(engines.async_, vectors=False, access=access) as conn:
        build = await conn.run_sync(_drop, spec, name, concurrently)
    if build is not None:
        await aexecute(engines.async_, access, build, False)


def execute(engine: Engine, access: Access, build: _Build, progress: bool) -> None:
    """Run a build on a connection of its own, watching its progress when asked."""
    with translate_errors(access), engine.connect() as conn:
        if build.concurrently:
            conn.execution_options(isolation_level="AUTOCOMMIT")
        watcher = None
        if progress:
            pid = conn.execute(BACKEND_PID).scalar_one()
            watcher = _ThreadWatcher(engine, pid, _progress.BuildBar(build.name))
        ok = False
        try:
            _run_build(conn, build)
            ok = True
        finally:
            if watcher is not None:
                watcher.stop(ok)


async def aexecute(engine: AsyncEngine, access: Access, build: _Build, progress: bool) -> None:
    """Async twin of :func:`execute`."""
    with translate_errors(access):
        async with engine.connect() as conn:
            if build.concurrently:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            watcher = None
            if progress:
                pid = (await conn.execute(BACKEND_PID)).scalar_one()
                watcher = _TaskWatcher(engine, pid, _progress.BuildBar(build.name))
            ok = False
            try:
                await conn.run_sync(_run_build, build)
                ok = True
            finally:
                if watcher is not None:
                    await watcher.stop(ok)
