"""Faults: a server that stops and restarts, connections killed mid-write, timeouts.

A dedicated embedded server (its own data directory) is stopped, restarted and has
its backends terminated here, so the rest of the suite never notices.

- after a restart, or after its idle backends are terminated, the next calls of a
  store succeed without any user action (its pools discard connections the server
  closed, checked at checkout without a round trip), sync and async;
- a write in flight when its connection dies (the server stops, or its backend is
  terminated during COPY or during the upsert from staging) either fully happened or
  not at all: the table holds all of the old rows or all of the new ones;
- ``statement_timeout`` cancels a slow search, a blocked write or read with
  ``QueryTimeoutError``, and the store serves the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool
from support.twins import call

from langchain_pgvec import ConnectionLostError, PGVecStore, QueryTimeoutError, embedded
from langchain_pgvec._driver import check_alive
from langchain_pgvec.embeddings import HashingEmbeddings

DIM = 8
EMB, COL = "rel_fault_emb_8", "rel_fault_col_8"
APP = "rel_fault_writer"
BIG = 30_000  # rows of an in-flight write: long enough to be caught mid-COPY


class Server:
    """The dedicated embedded server, with a stop/start that keeps its data directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.handle = embedded.start(directory)
        self.url = embedded.url(directory)
        self.admin: Engine = create_engine(self.url, poolclass=NullPool)

    def stop(self) -> None:
        self.handle.stop()

    def start(self) -> None:
        # embedded.start(directory) hands back the cached, stopped handle without
        # starting it (see test_embedded_url_restarts_a_server_stopped_in_process)
        self.handle.ensure_postgres_running()

    def restart(self) -> None:
        self.stop()
        self.start()

    def rows(self, collection: str) -> list[Any]:
        with self.admin.connect() as conn:
            return list(
                conn.execute(
                    text(
                        f'SELECT e.id, e.content FROM "{EMB}" e JOIN "{COL}" c '
                        "ON c.id = e.collection_id WHERE c.name = :name"
                    ),
                    {"name": collection},
                ).all()
            )

    def writer_pid(self, statement: str, timeout: float = 20.0) -> int | None:
        """The pid of the store's backend while it runs ``statement`` (a prefix)."""
        deadline = time.monotonic() + timeout
        # autocommit: pg_stat_activity is a snapshot taken once per transaction
        with self.admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while time.monotonic() < deadline:
                pid = conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = :app "
                        "AND state = 'active' AND query ILIKE :statement"
                    ),
                    {"app": APP, "statement": statement + "%"},
                ).scalar()
                if pid is not None:
                    return int(pid)
                time.sleep(0.002)
        return None

    def terminate(self, pid: int) -> None:
        with self.admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    result = Server(tmp_path_factory.mktemp("faults") / "pgdata")
    try:
        yield result
    finally:
        result.admin.dispose()
        result.handle.cleanup()


@pytest.fixture
async def make_store(server: Server, request: pytest.FixtureRequest) -> Any:
    made: list[PGVecStore] = []

    def factory(name: str = "", **kwargs: Any) -> PGVecStore:
        kwargs.setdefault(
            "engine_kwargs", {"connect_args": {"application_name": APP}, "pool_size": 4}
        )
        store = PGVecStore(
            HashingEmbeddings(dimension=DIM),
            connection=server.url,
            collection_name=f"{request.node.name[:40]}{name}",
            embedding_table=EMB,
            collection_table=COL,
            **kwargs,
        )
        made.append(store)
        return store

    yield factory
    for store in made:
        with contextlib.suppress(Exception):
            store.delete_collection()
        await store.aclose()


def matrix(n: int, seed: int | str = 0) -> np.ndarray:
    if isinstance(seed, str):
        seed = zlib.crc32(seed.encode())
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32) + 0.01


async def every_kind_of_call(store: PGVecStore, mode: str, tag: str) -> None:
    """One of each call the store makes, checked."""
    ids = [f"{tag}-{i}" for i in range(5)]
    vectors = matrix(5, tag)
    await call(store, mode, "add_embeddings", ids, vectors, None, ids)  # multi-row
    bulk = [f"{tag}-bulk-{i}" for i in range(300)]
    await call(store, mode, "add_embeddings", bulk, matrix(300, tag + "bulk"), None, bulk)  # COPY
    await call(store, mode, "add_texts", [f"{tag} text"], ids=[f"{tag}-text"])
    assert [d.id for d in await call(store, mode, "get_by_ids", ids[:2])] == ids[:2]
    found = await call(store, mode, "similarity_search_by_vector", vectors[3].tolist(), k=1)
    assert found[0].id == ids[3]
    assert await call(store, mode, "max_marginal_relevance_search", "x", k=2, fetch_k=5)
    await call(store, mode, "delete", [f"{tag}-text"])
    assert await call(store, mode, "count") >= 305


# ---------------------------------------------------------------------------- restarts


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_calls_after_a_server_restart_succeed(
    server: Server, make_store: Any, mode: str
) -> None:
    store = make_store()
    await every_kind_of_call(store, mode, "before")

    # several pooled connections, all of which the restart kills
    async def hold() -> None:
        await call(store, mode, "count")

    if mode == "sync":
        threads = [threading.Thread(target=store.count) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        await asyncio.gather(*(hold() for _ in range(3)))
    await asyncio.to_thread(server.restart)
    for round_ in range(2):  # the first call meets the stale pool, the second a fresh one
        await every_kind_of_call(store, mode, f"after{round_}")
    assert await call(store, mode, "count") == 3 * 305
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert store.async_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def idle_pids(server: Server) -> list[int]:
    with server.admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return [
            int(pid)
            for pid in conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :app"),
                {"app": APP},
            ).scalars()
        ]


def test_checkout_check_tells_a_closed_connection_from_a_live_one(server: Server) -> None:
    engine = create_engine(server.url, connect_args={"application_name": APP})
    checked: list[bool] = []

    def record(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        try:
            check_alive(dbapi_connection, record, proxy)
            checked.append(True)
        except DisconnectionError:
            checked.append(False)
            raise

    event.listen(engine, "checkout", record)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as conn:  # idle and alive: kept, no statement sent
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
        assert checked == [True, True]
        server.terminate(pid)
        deadline = time.monotonic() + 10
        while pid in idle_pids(server) and time.monotonic() < deadline:
            time.sleep(0.01)
        with engine.connect() as conn:  # the closed one is replaced, silently
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
        assert checked[2:] == [False, True]
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_calls_after_idle_backends_are_terminated_succeed(
    server: Server, make_store: Any, mode: str
) -> None:
    store = make_store()
    await every_kind_of_call(store, mode, "before")
    pids = idle_pids(server)
    assert pids
    for pid in pids:
        server.terminate(pid)
    deadline = time.monotonic() + 10
    while set(pids) & set(idle_pids(server)) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await every_kind_of_call(store, mode, "after")  # no error: the pool replaced them
    assert await call(store, mode, "count") == 2 * 305


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_call_while_the_server_is_down_fails_fast_then_recovers(
    server: Server, make_store: Any, mode: str
) -> None:
    store = make_store()
    await call(store, mode, "add_embeddings", ["a"], matrix(1), None, ["a"])
    await asyncio.to_thread(server.stop)
    try:
        started = time.monotonic()
        with pytest.raises(ConnectionLostError, match="check that the server is running"):
            await call(store, mode, "add_embeddings", ["b"], matrix(1), None, ["b"])
        with pytest.raises(ConnectionLostError) as caught:
            await call(store, mode, "similarity_search_by_vector", matrix(1)[0].tolist())
        assert isinstance(caught.value, ConnectionError)
        assert time.monotonic() - started < 10
    finally:
        await asyncio.to_thread(server.start)
    await call(store, mode, "add_embeddings", ["c"], matrix(1), None, ["c"])
    assert sorted(d.id for d in await call(store, mode, "get_by_ids", ["a", "b", "c"])) == [
        "a",
        "c",
    ]


def test_embedded_url_restarts_a_server_stopped_in_process(server: Server) -> None:
    """``embedded.url()`` promises to start the server when it is not running.

    After ``embedded.stop(path)`` in the same process, ``get_server`` returns its
    cached handle without starting it, so the URL points at a dead server.
    """
    embedded.stop(server.directory)
    try:
        url = embedded.url(server.directory)
        probe = create_engine(url, poolclass=NullPool)
        try:
            with probe.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        finally:
            probe.dispose()
    finally:
        server.start()


# ---------------------------------------------------------------------------- in-flight writes


def _all_or_nothing(rows: list[Any], before: str | None, after: str) -> str:
    """'old', 'new' or 'none' for a table that holds one whole write; fail otherwise."""
    contents = Counter(r.content.split("|")[0] for r in rows)
    if not rows:
        assert before is None, "the rows written before the failed call are gone"
        return "none"
    assert len(rows) == BIG, f"{len(rows)} rows of {BIG}: a partial write"
    assert len(contents) == 1, f"a mix of writes: {dict(contents)}"
    (which,) = contents
    assert which in (before, after), which
    return "old" if which == before else "new"


async def _in_flight(
    server: Server,
    store: PGVecStore,
    mode: str,
    before: str | None,
    after: str,
    kill: Callable[[], bool],
) -> tuple[str, BaseException | None]:
    """Write BIG rows tagged ``after`` while ``kill`` runs; the outcome and the error."""
    ids = [f"id-{i}" for i in range(BIG)]
    contents = [f"{after}|{i}" for i in ids]
    vectors = matrix(BIG, 7)
    error: BaseException | None = None

    def write() -> None:
        nonlocal error
        try:
            store.add_embeddings(contents, vectors, None, ids)
        except Exception as exc:
            error = exc

    async def awrite() -> None:
        nonlocal error
        try:
            await store.aadd_embeddings(contents, vectors, None, ids)
        except Exception as exc:
            error = exc

    if mode == "sync":
        thread = threading.Thread(target=write)
        thread.start()
        killed = await asyncio.to_thread(kill)
        await asyncio.to_thread(thread.join, 60)
    else:
        task = asyncio.ensure_future(awrite())
        killed = await asyncio.to_thread(kill)
        await task
    assert killed, "the write was never seen in flight"
    outcome = _all_or_nothing(server.rows(store.collection_name), before, after)
    if error is None:
        assert outcome == "new", "the call returned but its rows are not there"
    return outcome, error


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_write_in_flight_when_the_server_stops_is_all_or_nothing(
    server: Server, make_store: Any, mode: str
) -> None:
    store = make_store()
    await call(store, mode, "add_embeddings", ["warm"], matrix(1), None, ["warm-up"])
    await call(store, mode, "delete", ["warm-up"])

    def stop_mid_copy() -> bool:
        pid = server.writer_pid("COPY")
        if pid is not None:
            server.stop()  # fast shutdown: sessions are terminated, transactions aborted
        server.start()
        return pid is not None

    outcome, error = await _in_flight(server, store, mode, None, "v1", stop_mid_copy)
    assert outcome == "none" and error is not None, (outcome, error)
    # the store recovers by itself, and the next write lands whole
    await call(store, mode, "add_embeddings", ["x"], matrix(1), None, ["x"])
    await call(store, mode, "delete", ["x"])
    assert await _in_flight(server, store, mode, None, "v2", lambda: True) == ("new", None)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_write_whose_backend_is_terminated_is_all_or_nothing(
    server: Server, make_store: Any, mode: str
) -> None:
    """Terminate the writer's backend during COPY (new ids, then existing ids: the
    staging path) or during the upsert from staging, or after a random delay."""
    store = make_store()
    rng = random.Random(8)
    outcomes: list[str] = []
    before: str | None = None
    # into an empty collection (the direct COPY), no fault (a baseline), then over
    # existing ids (COPY into staging, then INSERT ... ON CONFLICT from it)
    for round_, stage in enumerate(["COPY", None, "COPY", "INSERT", "random", "random"]):
        tag = f"r{round_}"

        def kill(stage: str | None = stage) -> bool:
            if stage is None:
                return True
            if stage == "random":
                pid = server.writer_pid("")
                time.sleep(rng.uniform(0, 0.4))
            else:
                pid = server.writer_pid(stage)
            if pid is not None:
                server.terminate(pid)
            return pid is not None

        outcome, _ = await _in_flight(server, store, mode, before, tag, kill)
        outcomes.append(outcome)
        if outcome == "new":
            before = tag
        # the next call on the same store works without any user action
        assert await call(store, mode, "count") == (0 if before is None else BIG)
    assert outcomes[:4] == ["none", "new", "old", "old"], outcomes
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- statement_timeout


@contextlib.contextmanager
def table_locked(server: Server) -> Iterator[None]:
    """Another session holds an ACCESS EXCLUSIVE lock on the embedding table."""
    with server.admin.connect() as conn:
        conn.execute(text(f'LOCK TABLE "{EMB}" IN ACCESS EXCLUSIVE MODE'))
        yield
        conn.rollback()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_statement_timeout_cancels_blocked_calls(
    server: Server, make_store: Any, mode: str
) -> None:
    store = make_store(statement_timeout=0.05)
    ids = [f"t-{i}" for i in range(300)]
    await call(store, mode, "add_embeddings", ids, matrix(300), None, ids)
    blocked: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("similarity_search_by_vector", ([0.5] * DIM,), {"k": 3}),
        ("max_marginal_relevance_search_by_vector", ([0.5] * DIM,), {"k": 2}),
        ("get_by_ids", (ids[:3],), {}),
        ("get", (), {"filter": {}}),
        ("count", (), {}),
        ("delete", (ids[:3],), {}),
        ("add_embeddings", (["n"], matrix(1), None, ["new"]), {}),  # multi-row
        ("add_embeddings", (ids, matrix(300, 2), None, ids), {}),  # COPY via staging
    ]
    for name, args, kwargs in blocked:
        with table_locked(server):
            started = time.monotonic()
            with pytest.raises(QueryTimeoutError, match="statement_timeout") as caught:
                await call(store, mode, name, *args, **kwargs)
            assert time.monotonic() - started < 5, name
        assert isinstance(caught.value, TimeoutError)
        # nothing changed, and the next call works
        assert await call(store, mode, "count") == 300, name
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert store.async_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_statement_timeout_cancels_a_slow_search(
    server: Server, make_store: Any, mode: str
) -> None:
    """A filter of 100 unindexable LIKE clauses over 30,000 rows takes about a second."""
    seed = make_store()
    slow = make_store(statement_timeout=0.05)
    seed.add_embeddings(["seed"], matrix(1), [{"k": "seed"}], ["seed"])
    with server.admin.begin() as conn:
        conn.execute(
            text(
                f'INSERT INTO "{EMB}" (collection_id, id, content, metadata, embedding) '
                "SELECT e.collection_id, 'g' || g, 'x', jsonb_build_object('k', 'value ' || g), "
                f'e.embedding FROM "{EMB}" e JOIN "{COL}" c ON c.id = e.collection_id, '
                "generate_series(1, 30000) g WHERE e.id = 'seed' AND c.name = :name"
            ),
            {"name": seed.collection_name},
        )
    slow_filter = {"$or": [{"k": {"$like": f"%{n}x%"}} for n in range(100)]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice to index a large unindexed table
        started = time.monotonic()
        with pytest.raises(QueryTimeoutError, match="statement_timeout"):
            await call(
                slow, mode, "similarity_search_by_vector", [0.5] * DIM, k=3, filter=slow_filter
            )
        elapsed = time.monotonic() - started
        assert elapsed < 2, f"cancelled after {elapsed:.2f} s, not 0.05 s"
        # the same store serves the next (fast) call; a store without the timeout
        # runs the slow query to the end
        assert await call(slow, mode, "count") == 30_001
        assert await call(slow, mode, "get_by_ids", ["g7"])
        assert (
            await call(
                seed, mode, "similarity_search_by_vector", [0.5] * DIM, k=3, filter=slow_filter
            )
            == []
        )
