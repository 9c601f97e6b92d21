"""Read replicas against a real streaming replica (``tests/support/replica.py``).

The replica is a second PostgreSQL server made from the test server with
``pg_basebackup -R``, on 127.0.0.1. The tests see where a read ran in the replica's
own ``pg_stat_activity`` and in the store's counters (``Replica.served``,
``Replicas.primary_served``), inject lag with ``pg_wal_replay_pause()``, and stop and
start the replica under a store that is reading. Sync and async (``run``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests
from psycopg import sql
from support.replica import Replica, conninfo, start_replica
from support.twins import Runner

from langchain_pgvec import HashingEmbeddings, PGVecStore, _replicas

DIM = 32
TABLE = "rep_emb_32"
TEXTS = [f"replicated document {i} about {'cats' if i % 2 else 'dogs'}" for i in range(20)]
IDS = [f"doc-{i}" for i in range(len(TEXTS))]


@pytest.fixture(scope="module")
def replica(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """The replica, copied from a primary that has pgvector already (a connection
    registers the extension's types before a read can wait for a write: a replica that
    has not replayed CREATE EXTENSION yet sends the first reads to the primary)."""
    with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    made = start_replica(pg_url, Path(tmp_path_factory.mktemp("replica")) / "server")
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture(autouse=True)
def _replica_running(replica: Replica) -> Iterator[None]:
    """Every test starts and ends with the replica up, replaying, and caught up."""
    if not replica.running():
        replica.start()
    replica.resume()
    yield
    if not replica.running():
        replica.start()
    replica.resume()


def make(pg_url: str, replica: Replica, collection: str, **kwargs: Any) -> PGVecStore:
    return PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=pg_url,
        collection_name=collection,
        embedding_table=TABLE,
        collection_table=f"{TABLE}_c",
        full_text=True,
        read_replicas=[replica.url],
        **kwargs,
    )


@pytest.fixture
def store(pg_url: str, replica: Replica, collection_name: str) -> Iterator[PGVecStore]:
    made = make(pg_url, replica, collection_name)
    made.add_texts(TEXTS, ids=IDS, metadatas=[{"n": i} for i in range(len(TEXTS))])
    # the replica has replayed the tables (and, for the session's first store, the
    # extension, whose types a connection registers before any read can wait)
    replica.wait_streaming()
    yield made
    made.delete_collection()
    made.close()


def served(store: PGVecStore) -> tuple[int, int]:
    """(reads the replica served, reads the primary served) so far."""
    return store._replicas.replicas[0].served, store._replicas.primary_served


def wait_until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---------------------------------------------------------------------- routing


async def test_every_read_runs_on_the_replica(
    run: Runner, store: PGVecStore, replica: Replica
) -> None:
    before = served(store)
    reads: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("similarity_search", ("cats",), {"k": 3}),
        ("similarity_search_with_score", ("dogs",), {"k": 3, "filter": {"n": {"$lt": 10}}}),
        ("max_marginal_relevance_search", ("cats",), {"k": 2, "fetch_k": 6}),
        ("hybrid_search", ("replicated cats",), {"k": 3}),
        ("full_text_search", ("dogs",), {"k": 3}),
        ("get_by_ids", (["doc-1", "doc-2"],), {}),
        ("get", ({"n": {"$gte": 15}},), {}),
        ("count", (), {}),
        ("explain", ("cats",), {}),
    ]
    for name, args, kwargs in reads:
        assert await run(store, name, *args, **kwargs), name
    assert await run(store, "count") == len(TEXTS)
    assert [d.id for d in await run(store, "get_by_ids", ["doc-3"])] == ["doc-3"]
    on_replica, on_primary = served(store)
    assert (on_replica - before[0], on_primary - before[1]) == (len(reads) + 2, 0)
    # the replica's own view: a client backend of the store ran the store's statements
    rows = replica.query(
        "SELECT count(*), bool_and(pg_is_in_recovery()) FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
        "AND query LIKE %s",
        f"%{TABLE}%",
    )
    assert rows[0][0] >= 1 and rows[0][1] is True


async def test_replicas_take_turns(run: Runner, pg_url: str, replica: Replica) -> None:
    """Two entries for the same server (one with another spelling of its URL) are two
    replicas: reads alternate between them."""
    collection = f"turns_{uuid.uuid4().hex[:8]}"
    other = replica.url.replace("127.0.0.1", "localhost")
    store = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=pg_url,
        collection_name=collection,
        embedding_table=TABLE,
        collection_table=f"{TABLE}_c",
        read_replicas=[replica.url, other],
    )
    try:
        await run(store, "add_texts", TEXTS[:4])
        for _ in range(6):
            assert len(await run(store, "similarity_search", "cats", k=2)) == 2
        assert [r.served for r in store._replicas.replicas] == [3, 3]
        assert store._replicas.primary_served == 0
    finally:
        await run(store, "delete_collection")
        await run(store, "close")


async def test_writes_and_transactions_stay_on_the_primary(run: Runner, store: PGVecStore) -> None:
    """A replica refuses writes (read-only), so writes working is them on the primary;
    a search inside transaction() sees the block's write, on its pinned connection."""
    before = served(store)
    await run(store, "add_texts", ["a brand new text"], ids=["new"])
    await run(store, "delete", ["doc-0"])
    if run.mode == "sync":
        with store.transaction():
            store.add_texts(["inside the block"], ids=["inside"])
            assert [d.id for d in store.get_by_ids(["inside"])] == ["inside"]
            assert store.count() == len(TEXTS) + 1
    else:
        async with store.atransaction():
            await store.aadd_texts(["inside the block"], ids=["inside"])
            assert [d.id for d in await store.aget_by_ids(["inside"])] == ["inside"]
            assert await store.acount() == len(TEXTS) + 1
    assert served(store) == before  # no read so far left the primary's connection
    assert await run(store, "count") == len(TEXTS) + 1
    assert served(store)[0] == before[0] + 1


# ---------------------------------------------------------------------- read your writes


async def test_a_read_after_a_write_sees_it_on_the_primary_past_the_bound(
    run: Runner, pg_url: str, replica: Replica, store: PGVecStore
) -> None:
    stale = make(pg_url, replica, store.collection_name, read_your_writes=False)
    store._replicas.wait = 0.3
    try:
        replica.pause()
        await run(store, "add_texts", ["written while the replica lags"], ids=["lagged"])
        # the replica really lags: a store that does not wait reads there, without it
        assert await run(stale, "get_by_ids", ["lagged"]) == []
        assert served(stale) == (1, 0)
        before = served(store)
        started = time.monotonic()
        found = await run(store, "get_by_ids", ["lagged"])
        waited = time.monotonic() - started
        assert [d.id for d in found] == ["lagged"]
        assert waited >= 0.3
        assert served(store) == (before[0], before[1] + 1)
        # a search too; the replica known to lag is asked once, without waiting again
        started = time.monotonic()
        hits = await run(store, "similarity_search", "written while the replica lags", k=1)
        assert [d.id for d in hits] == ["lagged"]
        assert time.monotonic() - started < 0.3
        assert served(store) == (before[0], before[1] + 2)
        replica.resume()
        wait_until(lambda: stale.get_by_ids(["lagged"]) != [])
        assert [d.id for d in await run(store, "get_by_ids", ["lagged"])] == ["lagged"]
        assert served(store)[0] == before[0] + 1
    finally:
        replica.resume()
        stale.close()


async def test_a_read_after_a_write_waits_for_the_replica_then_reads_there(
    run: Runner, store: PGVecStore, replica: Replica
) -> None:
    store._replicas.wait = 20.0
    replica.pause()
    await run(store, "delete", ["doc-5"])
    before = served(store)
    timer = threading.Timer(0.3, replica.resume)
    timer.start()
    try:
        started = time.monotonic()
        found = await run(store, "get_by_ids", ["doc-5", "doc-6"])
        assert [d.id for d in found] == ["doc-6"]  # the delete, replayed
        assert 0.25 <= time.monotonic() - started < 20.0
    finally:
        timer.join()
    assert served(store) == (before[0] + 1, before[1])


async def test_other_stores_writes_are_not_waited_for(
    run: Runner, pg_url: str, store: PGVecStore, replica: Replica
) -> None:
    """Read your writes is this store's: another store's write, which the lagging
    replica has not replayed, does not hold this store's reads back."""
    assert await run(store, "count") == len(TEXTS)  # the replica has this store's writes
    other = make(pg_url, replica, store.collection_name)
    try:
        replica.pause()
        await run(other, "add_texts", ["another store's text"], ids=["other"])
        before = served(store)
        started = time.monotonic()
        assert await run(store, "count") == len(TEXTS)  # the replica's (stale) count
        assert time.monotonic() - started < 0.3
        assert served(store) == (before[0] + 1, before[1])
        assert await run(other, "count") == len(TEXTS) + 1  # the writer's: the primary's
    finally:
        replica.resume()
        other.close()


# ---------------------------------------------------------------------- failures


async def test_a_replica_stopped_mid_use_then_restarted(
    run: Runner, store: PGVecStore, replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_replicas, "BACKOFF_FIRST", 0.3)
    assert await run(store, "count") == len(TEXTS)
    on_replica, on_primary = served(store)
    replica.stop()
    # every read is answered (by the primary), none raises
    for _ in range(5):
        hits = await run(store, "similarity_search", "cats", k=2)
        assert len(hits) == 2
        assert await run(store, "count") == len(TEXTS)
        assert len(await run(store, "get", {"n": 3})) == 1
    assert served(store) == (on_replica, on_primary + 15)
    health = store._replicas.replicas[0].health
    assert health.failures >= 1
    replica.start()

    async def back() -> bool:
        await run(store, "count")
        return served(store)[0] > on_replica

    deadline = time.monotonic() + 20
    while not await back():
        assert time.monotonic() < deadline, "the replica was not used again"
        time.sleep(0.1)
    assert store._replicas.replicas[0].health.failures == 0
    assert len(await run(store, "similarity_search", "dogs", k=3)) == 3


async def test_a_table_the_replica_has_not_replayed_is_read_on_the_primary(
    run: Runner, pg_url: str, replica: Replica, collection_name: str
) -> None:
    """Without read_your_writes, a read of a table created while the replica lags finds
    no table there (UndefinedTable): the primary serves that read, with no error, and
    the replica is not marked down for it."""
    table = f"rep_new_{uuid.uuid4().hex[:8]}"
    store = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=pg_url,
        collection_name=collection_name,
        embedding_table=table,
        collection_table=f"{table}_c",
        read_replicas=[replica.url],
        read_your_writes=False,
    )
    try:
        replica.pause()
        await run(store, "add_texts", TEXTS[:5])
        assert len(await run(store, "similarity_search", "cats", k=3)) == 3
        assert await run(store, "count") == 5
        assert served(store) == (0, 2)
        assert store._replicas.replicas[0].health.failures == 0
        replica.resume()
        wait_until(lambda: replica.query("SELECT to_regclass(%s) IS NOT NULL", table)[0][0])
        assert await run(store, "count") == 5
        assert served(store) == (1, 2)
    finally:
        replica.resume()
        await run(store, "delete_collection")
        await run(store, "close")
        with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
            for name in (table, f"{table}_c"):
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


async def test_a_replica_that_never_answers_costs_one_attempt(
    run: Runner, pg_url: str, replica: Replica, collection_name: str
) -> None:
    """A replica URL nothing listens on: the read runs on the primary, and later reads
    skip the replica (no second connection attempt) while it is marked down."""
    store = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=pg_url,
        collection_name=collection_name,
        embedding_table=TABLE,
        collection_table=f"{TABLE}_c",
        read_replicas=["postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"],
    )
    try:
        await run(store, "add_texts", TEXTS[:3])
        for _ in range(3):
            assert await run(store, "count") == 3
        health = store._replicas.replicas[0].health
        assert health.failures == 1 and health.down_until > time.monotonic()
        assert store._replicas.primary_served == 3
    finally:
        await run(store, "delete_collection")
        await run(store, "close")


# ---------------------------------------------------------------------- the standard suite


class TestStandardSuiteWithAReplica(VectorStoreIntegrationTests):
    """langchain-tests' vector store suite, sync and async, on a store whose reads go
    to the replica: it writes and reads back at once, everywhere, so every test of it
    is also one of read-your-writes."""

    @pytest.fixture
    def vectorstore(
        self, pg_url: str, replica: Replica, collection_name: str
    ) -> Iterator[PGVecStore]:
        store = PGVecStore(
            self.get_embeddings(),
            connection=pg_url,
            collection_name=collection_name,
            embedding_table="rep_std_embedding",
            collection_table="rep_std_collection",
            read_replicas=[replica.url],
            replica_wait=10,
        )
        try:
            yield store
        finally:
            store.delete_collection()
            store.close()
        # the suite's reads after its writes ran on the replica, none past the bound
        health = store._replicas.replicas[0].health
        assert store._replicas.primary_served == 0, health
