"""Many writers, readers and deleters at once: no lost, duplicated or torn rows.

The workload is designed so that the final table is determinable:

- every worker owns a range of ids (``own-<worker>-<slot>``) that only it writes and
  deletes; it keeps a model of them and checks every read of them (``get_by_ids``,
  filtered ``count`` and searches) against that model while the others write;
- ``shared-<n>`` ids are upserted by every worker of a collection, in a random order
  per call, and never deleted: each must end up present exactly once, holding one of
  the values written to it;
- ``fresh-<block>-<n>`` ids come in blocks of COPY size that every worker writes in
  the same sequence, so several race to insert the same new ids on the direct COPY
  path (the loser's savepoint rolls back and its rows take the staging upsert);
- each row's content names its writer and operation, its metadata repeats them, and
  its vector is a hash of its content, so a row mixing two writes is detected.

Small batches go through the multi-row upsert, batches of more than 200 rows through
COPY. 8 threads use the sync methods and 8 asyncio tasks the async ones, on one
store and on several stores over the same tables (same and different collections),
with connection pools of 4 + 2 overflow to prove that no connection leaks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from langchain_pgvec import PGVecStore, _engine

DIM = 8
THREADS = 8
TASKS = 8
DURATION = 3.5  # seconds of load per scenario
OWN = 300  # ids per worker and collection
SHARED = 150  # ids every worker of a collection writes
FRESH_ROWS = 240  # a fresh block: above the COPY threshold (200)
POOL = {"pool_size": 4, "max_overflow": 2, "pool_timeout": 30}


def vec(content: str) -> list[float]:
    """A deterministic vector of a content; exact in float32 (multiples of 1/256)."""
    digest = hashlib.blake2b(content.encode(), digest_size=DIM).digest()
    return [(b + 1) / 256 for b in digest]


class ContentEmbeddings(Embeddings):
    """Embeds a text as :func:`vec` of it, so a stored vector proves its content."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return vec(text)


def content_of(id_: str, worker: int, seq: int) -> str:
    return f"{id_}|w{worker}|s{seq}|" + "x" * (seq % 7)


def metadata_of(id_: str, worker: int, seq: int, kind: str, slot: int) -> dict[str, Any]:
    return {"id": id_, "w": worker, "seq": seq, "kind": kind, "slot": slot}


def consistent(doc: Document) -> bool:
    """A row whose content, metadata and id all come from one write."""
    m = doc.metadata
    return doc.id == m.get("id") and doc.page_content == content_of(m["id"], m["w"], m["seq"])


# ---------------------------------------------------------------------------- the model


class Registry:
    """Every value ever written to a shared or fresh id, per (collection, id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.written: dict[tuple[str, str], set[str]] = {}

    def add(self, collection: str, pairs: list[tuple[str, str]]) -> None:
        with self._lock:
            for id_, content in pairs:
                self.written.setdefault((collection, id_), set()).add(content)


@dataclasses.dataclass
class Op:
    """One call: the sync method name (the async twin is ``"a" + name``) and a check."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    rows: int
    check: Callable[[Any], None]


class Worker:
    """Plans one worker's random operations and checks what it reads of its own ids."""

    def __init__(self, number: int, collection: str, registry: Registry) -> None:
        self.number = number
        self.collection = collection
        self.registry = registry
        self.rng = random.Random(1000 + number)
        self.seq = 0
        self.fresh_block = 0
        self.own: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (content, metadata)
        self.ops: Counter[str] = Counter()
        self.rows = 0

    def _own_id(self, slot: int) -> str:
        return f"own-{self.number}-{slot}"

    def _rows(
        self, own_slots: list[int], shared: list[int]
    ) -> tuple[list[str], list[str], list[dict[str, Any]], list[tuple[str, str, dict[str, Any]]]]:
        self.seq += 1
        entries: list[tuple[str, str, dict[str, Any]]] = []
        for slot in own_slots:
            id_ = self._own_id(slot)
            entries.append((id_, "own", metadata_of(id_, self.number, self.seq, "own", slot)))
        for n in shared:
            id_ = f"shared-{n}"
            entries.append((id_, "shared", metadata_of(id_, self.number, self.seq, "shared", n)))
        self.rng.shuffle(entries)  # callers pass ids in any order
        ids = [e[0] for e in entries]
        contents = [content_of(e[0], self.number, self.seq) for e in entries]
        metas = [e[2] for e in entries]
        written = [(i, c, m) for i, c, m in zip(ids, contents, metas, strict=True)]
        self.registry.add(self.collection, [(i, c) for i, c, m in written if m["kind"] != "own"])
        return ids, contents, metas, written

    def _upsert(self, own_count: int, shared_count: int) -> Op:
        own_slots = self.rng.sample(range(OWN), own_count)
        shared = self.rng.sample(range(SHARED), shared_count)
        ids, contents, metas, written = self._rows(own_slots, shared)

        def check(result: Any) -> None:
            assert result == ids
            for id_, content, meta in written:
                if meta["kind"] == "own":
                    self.own[id_] = (content, meta)

        if self.rng.random() < 0.5:
            vectors = np.array([vec(c) for c in contents], dtype=np.float32)
            return Op("add_embeddings", (contents, vectors, metas, ids), {}, len(ids), check)
        return Op("add_texts", (contents, metas), {"ids": ids}, len(ids), check)

    def _fresh(self) -> Op:
        block = self.fresh_block
        self.fresh_block += 1
        self.seq += 1
        ids = [f"fresh-{block}-{n}" for n in range(FRESH_ROWS)]
        self.rng.shuffle(ids)
        metas = [metadata_of(i, self.number, self.seq, "fresh", block) for i in ids]
        contents = [content_of(i, self.number, self.seq) for i in ids]
        self.registry.add(self.collection, list(zip(ids, contents, strict=True)))
        vectors = np.array([vec(c) for c in contents], dtype=np.float32)

        def check(result: Any) -> None:
            assert result == ids

        return Op("add_embeddings", (contents, vectors, metas, ids), {}, len(ids), check)

    def _delete(self) -> Op:
        slots = self.rng.sample(range(OWN), self.rng.randint(1, 30))
        ids = [self._own_id(s) for s in slots]

        def check(result: Any) -> None:
            assert result is True
            for id_ in ids:
                self.own.pop(id_, None)

        if self.rng.random() < 0.5:
            return Op("delete", (ids,), {}, len(ids), check)
        where = {"w": self.number, "kind": "own", "slot": {"$in": slots}}
        return Op("delete", (), {"filter": where}, len(ids), check)

    def _read_own(self) -> Op:
        ids = [self._own_id(s) for s in self.rng.sample(range(OWN), 40)]

        def check(result: Any) -> None:
            expected = [
                Document(id=i, page_content=self.own[i][0], metadata=self.own[i][1])
                for i in ids
                if i in self.own
            ]
            assert result == expected, "a read of this worker's own ids differs from its writes"

        return Op("get_by_ids", (ids,), {}, len(ids), check)

    def _count_own(self) -> Op:
        def check(result: Any) -> None:
            assert result == len(self.own), "count(own filter) differs from this worker's writes"

        return Op("count", ({"w": self.number, "kind": "own"},), {}, 0, check)

    def _search(self) -> Op:
        query = vec(f"query-{self.rng.random()}")
        own_only = self.rng.random() < 0.5
        where = {"w": self.number, "kind": "own"} if own_only else None

        def check(result: Any) -> None:
            docs = [d[0] if isinstance(d, tuple) else d for d in result]
            assert len(docs) <= 5
            for doc in docs:
                assert consistent(doc), f"torn row {doc!r}"
                if own_only:
                    assert self.own.get(doc.id, (None,))[0] == doc.page_content
                elif doc.metadata["kind"] != "own":
                    assert (self.collection, doc.id) in self.registry.written

        if self.rng.random() < 0.3:
            return Op(
                "max_marginal_relevance_search_by_vector",
                (query,),
                {"k": 5, "fetch_k": 20, "filter": where},
                0,
                check,
            )
        return Op("similarity_search_with_score_by_vector", (query, 5, where), {}, 0, check)

    def next(self) -> Op:
        roll = self.rng.random()
        if roll < 0.30:
            op = self._upsert(self.rng.randint(1, 25), self.rng.randint(0, 15))  # multi-row
        elif roll < 0.42:
            op = self._upsert(self.rng.randint(130, 200), self.rng.randint(80, 120))  # COPY
        elif roll < 0.50:
            op = self._fresh()  # COPY of new ids, racing the other workers
        elif roll < 0.62:
            op = self._delete()
        elif roll < 0.75:
            op = self._read_own()
        elif roll < 0.82:
            op = self._count_own()
        else:
            op = self._search()
        self.ops[op.name] += 1
        self.rows += op.rows
        return op


# ---------------------------------------------------------------------------- the drivers


@dataclasses.dataclass
class Load:
    """The outcome of a run: errors (worker, exception) and the workers' models."""

    workers: list[Worker]
    errors: list[tuple[int, BaseException]]


def _thread_worker(
    store: PGVecStore, worker: Worker, deadline: float, errors: list[Any], start: threading.Event
) -> None:
    start.wait()
    try:
        while time.monotonic() < deadline:
            op = worker.next()
            op.check(getattr(store, op.name)(*op.args, **op.kwargs))
    except BaseException as exc:
        errors.append((worker.number, exc))


async def _task_worker(
    store: PGVecStore, worker: Worker, deadline: float, errors: list[Any]
) -> None:
    try:
        while time.monotonic() < deadline:
            op = worker.next()
            op.check(await getattr(store, "a" + op.name)(*op.args, **op.kwargs))
    except BaseException as exc:
        errors.append((worker.number, exc))


async def run_load(stores: list[PGVecStore], collections: list[str]) -> Load:
    """THREADS sync workers and TASKS async workers; worker n uses stores[n % len]."""
    registry = Registry()
    workers = [
        Worker(n, collections[n % len(collections)], registry) for n in range(THREADS + TASKS)
    ]
    errors: list[tuple[int, BaseException]] = []
    start = threading.Event()
    deadline = time.monotonic() + DURATION
    threads = [
        threading.Thread(
            target=_thread_worker,
            args=(stores[n % len(stores)], workers[n], deadline, errors, start),
        )
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    start.set()
    await asyncio.gather(
        *(
            _task_worker(stores[n % len(stores)], workers[n], deadline, errors)
            for n in range(THREADS, THREADS + TASKS)
        )
    )
    for thread in threads:
        await asyncio.to_thread(thread.join, 60)
        assert not thread.is_alive(), "a sync worker is stuck"
    return Load(workers, errors)


# ---------------------------------------------------------------------------- checking


class PoolWatch:
    """The most connections a pool ever had checked out at once, and how many left it
    for good (detached: the store's own read connection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = 0
        self.peak = 0
        self.detached = 0
        self._lock = threading.Lock()
        event.listen(engine, "checkout", self._out)
        event.listen(engine, "checkin", self._in)
        event.listen(engine, "detach", self._detach)

    def _out(self, *args: Any) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def _in(self, *args: Any) -> None:
        with self._lock:
            self.now -= 1

    def _detach(self, *args: Any) -> None:
        with self._lock:
            self.now -= 1
            self.detached += 1

    def close(self) -> None:
        event.remove(self.engine, "checkout", self._out)
        event.remove(self.engine, "checkin", self._in)
        event.remove(self.engine, "detach", self._detach)


def check_no_errors(load: Load) -> None:
    if load.errors:
        kinds = Counter(type(getattr(e, "orig", e)).__name__ for _, e in load.errors)
        worker, first = load.errors[0]
        raise AssertionError(
            f"{len(load.errors)} worker(s) failed ({dict(kinds)}); worker {worker}: {first!r}"
        ) from first


def table_rows(engine: Engine, emb_table: str, col_table: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    f"SELECT c.name, e.id, e.content, e.metadata, e.embedding::text AS vec "
                    f'FROM "{emb_table}" e JOIN "{col_table}" c ON c.id = e.collection_id'
                )
            ).all()
        )


def check_final_state(load: Load, rows: list[Any]) -> int:
    """Exactly the expected rows, each whole; returns how many rows were checked."""
    keys = [(r.name, r.id) for r in rows]
    assert len(keys) == len(set(keys)), "duplicated (collection, id) rows"
    got = {(r.name, r.id): r for r in rows}
    expected_own = {
        (w.collection, id_): value for w in load.workers for id_, value in w.own.items()
    }
    registry = load.workers[0].registry
    expected_ids = set(expected_own) | set(registry.written)
    missing = expected_ids - set(got)
    extra = set(got) - expected_ids
    assert not missing, f"{len(missing)} rows lost, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected rows, e.g. {sorted(extra)[:5]}"
    for key, row in got.items():
        doc = Document(id=row.id, page_content=row.content, metadata=row.metadata)
        assert consistent(doc), f"torn row {key}: {row.content!r} / {row.metadata!r}"
        assert json.loads(row.vec) == vec(row.content), f"vector of another write in {key}"
        if key in expected_own:
            assert (row.content, row.metadata) == expected_own[key], f"stale own row {key}"
        else:
            assert row.content in registry.written[key], f"a value nobody wrote in {key}"
    return len(rows)


@pytest.fixture
def tables(engine: Engine) -> Iterator[tuple[str, str]]:
    """Fresh table names (so the first calls race to create them), dropped afterwards.

    The extension is created beforehand: racing first calls on a database without it
    are the subject of test_first_calls_on_a_fresh_database_race_safely.
    """
    suffix = uuid.uuid4().hex[:8]
    names = (f"rel_conc_emb_{suffix}", f"rel_conc_col_{suffix}")
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    yield names
    with engine.begin() as conn:
        conn.execute(text(f'DROP TABLE IF EXISTS "{names[0]}", "{names[1]}"'))


def make_store(connection: Any, collection: str, tables: tuple[str, str]) -> PGVecStore:
    return PGVecStore(
        ContentEmbeddings(),
        connection=connection,
        collection_name=collection,
        embedding_table=tables[0],
        collection_table=tables[1],
        engine_kwargs=POOL,
    )


def summary(load: Load) -> str:
    ops = sum((w.ops for w in load.workers), Counter())
    return f"{sum(ops.values())} calls {dict(ops)}, {sum(w.rows for w in load.workers)} rows"


# ---------------------------------------------------------------------------- the tests


async def test_one_store_threads_and_tasks(
    pg_url: str, engine: Engine, tables: tuple[str, str]
) -> None:
    store = make_store(pg_url, "rel_one", tables)
    sync_watch = PoolWatch(store.engine)
    async_watch = PoolWatch(store.async_engine.sync_engine)
    try:
        load = await run_load([store], ["rel_one"])
        check_no_errors(load)
        checked = check_final_state(load, table_rows(engine, *tables))
        print(summary(load), f"{checked} rows checked")
        for watch in (sync_watch, async_watch):
            pool = watch.engine.pool
            assert pool.checkedout() == 0, f"connections leaked: {pool.status()}"  # type: ignore[attr-defined]
            assert watch.now == 0
            assert 1 <= watch.peak <= 6, f"the pool grew past its limit: {watch.peak}"
        # the store's own search connections, one per engine, made once, are the only
        # connections past the pools
        assert (sync_watch.detached, async_watch.detached) == (1, 1)
        assert sum(w.ops["add_embeddings"] for w in load.workers) > 0
    finally:
        sync_watch.close()
        async_watch.close()
        await store.aclose()


async def test_many_stores_sharing_tables_and_collections(
    pg_url: str, engine: Engine, tables: tuple[str, str]
) -> None:
    shared_engine = create_engine(pg_url, pool_pre_ping=True, **POOL)
    collections = ["rel_many_a", "rel_many_b", "rel_many_c"]
    stores = [make_store(shared_engine, collections[n % 3], tables) for n in range(16)]
    async_engine: AsyncEngine = stores[0].async_engine  # derived once, shared by all
    assert all(s.async_engine is async_engine for s in stores)
    sync_watch = PoolWatch(shared_engine)
    async_watch = PoolWatch(async_engine.sync_engine)
    try:
        # worker n uses stores[n] and collections[n % 3]: stores share collections too
        load = await run_load(stores, collections)
        check_no_errors(load)
        checked = check_final_state(load, table_rows(engine, *tables))
        print(summary(load), f"{checked} rows checked")
        # the same ids live in every collection, never mixed
        names = {name for name, _ in load.workers[0].registry.written}
        assert names == set(collections)
        for watch in (sync_watch, async_watch):
            pool = watch.engine.pool
            assert pool.checkedout() == 0, f"connections leaked: {pool.status()}"  # type: ignore[attr-defined]
            assert 1 <= watch.peak <= 6, f"the pool grew past its limit: {watch.peak}"
            assert watch.detached == 0  # a given engine's pool is all the stores use
    finally:
        sync_watch.close()
        async_watch.close()
        derived = _engine._DERIVED.pop(shared_engine, None)
        if derived is not None:
            await derived.dispose()  # type: ignore[misc]
        shared_engine.dispose()


# ---------------------------------------------------------------------------- minimal cases


@pytest.mark.parametrize("rows", [40, 300], ids=["multi-row", "copy"])
async def test_same_ids_in_different_orders_do_not_deadlock(
    pg_url: str, engine: Engine, tables: tuple[str, str], rows: int
) -> None:
    """Concurrent upserts of one id set, each call listing the ids in its own order.

    Row locks are taken in the order rows are written; two transactions writing the
    same ids in different orders deadlock in PostgreSQL unless the store writes them
    in one canonical order.
    """
    store = make_store(pg_url, "rel_order", tables)
    store.add_texts(["warm-up"], ids=["warm-up"])
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def write(number: int) -> None:
        rng = random.Random(number)
        start.wait()
        for round_ in range(6):
            ids = [f"same-{n}" for n in range(rows)]
            rng.shuffle(ids)
            contents = [f"{i}|{number}|{round_}" for i in ids]
            try:
                store.add_embeddings(contents, [vec(c) for c in contents], None, ids)
            except Exception as exc:
                errors.append(exc)

    try:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join, 60)
        kinds = Counter(type(getattr(e, "orig", e)).__name__ for e in errors)
        assert not errors, f"{len(errors)} of {THREADS * 6} upserts failed: {dict(kinds)}"
        assert store.count() == rows + 1
    finally:
        await store.aclose()


async def test_add_texts_upserts_existing_ids_over_several_batches(
    pg_url: str, tables: tuple[str, str]
) -> None:
    """add_texts writes batch after batch in one transaction; each may take the staging path."""
    store = make_store(pg_url, "rel_batches", tables)
    try:
        ids = [f"b-{n}" for n in range(700)]
        store.add_texts([f"first {i}" for i in ids], ids=ids, batch_size=250)
        store.add_texts([f"second {i}" for i in ids], ids=ids, batch_size=250)
        await store.aadd_texts([f"third {i}" for i in ids], ids=ids, batch_size=250)
        assert store.count() == 700
        got = store.get_by_ids(ids)
        assert [d.page_content for d in got] == [f"third {i}" for i in ids]
    finally:
        await store.aclose()


async def test_first_calls_on_a_fresh_database_race_safely(pg_url: str, engine: Engine) -> None:
    """16 first calls at once on a database without the extension, tables or collections."""
    database = f"rel_cold_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = engine.url.set(database=database)
    stores = [make_store(url, f"cold_{n % 3}", ("rel_cold_emb", "rel_cold_col")) for n in range(16)]
    errors: list[BaseException] = []

    def first_call(store: PGVecStore, n: int) -> None:
        try:
            contents = [f"cold {n} {i}" for i in range(5)]
            store.add_embeddings(contents, [vec(c) for c in contents], None, None)
        except Exception as exc:
            errors.append(exc)

    async def afirst_call(store: PGVecStore, n: int) -> None:
        try:
            await store.aadd_texts([f"acold {n} {i}" for i in range(5)])
        except Exception as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=first_call, args=(stores[n], n)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        await asyncio.gather(*(afirst_call(stores[n], n) for n in range(THREADS, 16)))
        for thread in threads:
            await asyncio.to_thread(thread.join, 60)
        assert not errors, f"{len(errors)} of 16 first calls failed, e.g. {errors[0]!r}"
        assert sum(s.count() for s in stores[:3]) == 16 * 5
    finally:
        for store in stores:
            await store.aclose()
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
