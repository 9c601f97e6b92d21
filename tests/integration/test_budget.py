"""The connection budget: stores of one process made from one URL share their engines,
sync and async together hold at most 12 connections, and a server with no slot left
says so.

The test runs as a role of its own with a connection limit, so that what the stores
hold is counted exactly (``pg_stat_activity``) and a limit is really met.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url, text

from langchain_pgvec import ConnectError, HashingEmbeddings, PGVecStore
from langchain_pgvec._engine import POOL_DEFAULTS

BUDGET = 2 * POOL_DEFAULTS["pool_size"] + 2  # two pools and a search connection each


@pytest.fixture
def limited(engine: Engine, pg_url: str) -> Iterator[tuple[str, str]]:
    """A role that may hold BUDGET + 2 connections, its URL, and a table for it."""
    role = f"bg_{uuid.uuid4().hex[:6]}"
    table = f"bg_{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))  # only a superuser can
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {BUDGET + 2}'))
        conn.execute(text(f'GRANT CREATE ON SCHEMA public TO "{role}"'))
    url = make_url(pg_url).set(username=role, password=None).render_as_string(False)
    yield url, table
    with engine.begin() as conn:
        conn.execute(text(f'DROP TABLE IF EXISTS "{table}", "{table}_c" CASCADE'))
        conn.execute(text(f'REVOKE ALL ON SCHEMA public FROM "{role}"'))
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))


def held(engine: Engine, url: str) -> int:
    role = make_url(url).username
    with engine.begin() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE usename = :r"), {"r": role}
            ).scalar_one()
        )


async def test_ten_stores_forty_threads_and_tasks_within_one_budget(
    limited: tuple[str, str], engine: Engine
) -> None:
    url, table = limited
    stores = [
        PGVecStore(
            HashingEmbeddings(dimension=16),
            connection=url,
            collection_name=f"c{n}",
            embedding_table=table,
            collection_table=f"{table}_c",
        )
        for n in range(10)
    ]
    assert len({id(store.engine) for store in stores}) == 1  # one URL, one engine pair
    for n, store in enumerate(stores):
        store.add_texts([f"store {n} document {i}" for i in range(30)])
    errors: list[BaseException] = []
    peak = [0]

    def sync_worker(n: int) -> None:
        for i in range(15):
            try:
                assert len(stores[n % 10].similarity_search(f"document {i}", 3)) == 3
            except BaseException as exc:
                errors.append(exc)
        peak[0] = max(peak[0], held(engine, url))

    async def async_worker(n: int) -> None:
        for i in range(15):
            try:
                assert len(await stores[n % 10].asimilarity_search(f"document {i}", 3)) == 3
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=sync_worker, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    await asyncio.wait_for(asyncio.gather(*(async_worker(n) for n in range(40))), 120)
    for thread in threads:
        thread.join(120)
    peak[0] = max(peak[0], held(engine, url))
    try:
        assert errors == [], [f"{type(e).__name__}: {e}" for e in errors[:3]]
        assert 0 < peak[0] <= BUDGET
    finally:
        for store in stores[:-1]:
            store.close()
        assert held(engine, url) > 0  # the last store still holds the shared engines
        await stores[-1].aclose()
    # the last close disposed of them (a closed backend leaves pg_stat_activity a moment later)
    deadline = time.monotonic() + 5
    while held(engine, url) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert held(engine, url) == 0


def test_stores_with_engines_of_their_own(limited: tuple[str, str], engine: Engine) -> None:
    url, table = limited
    shared = PGVecStore(HashingEmbeddings(), connection=url, embedding_table=table)
    alone = PGVecStore(
        HashingEmbeddings(), connection=url, embedding_table=table, share_engines=False
    )
    other = PGVecStore(
        HashingEmbeddings(),
        connection=url,
        embedding_table=table,
        engine_kwargs={"pool_size": 2},
    )
    try:
        assert alone.engine is not shared.engine and other.engine is not shared.engine
        assert other.engine.pool.size() == 2  # type: ignore[attr-defined]
    finally:
        for store in (shared, alone, other):
            store.close()


def test_no_slot_left_says_so(limited: tuple[str, str], engine: Engine) -> None:
    url, table = limited
    hogs: list[Any] = []
    store = PGVecStore(HashingEmbeddings(), connection=url, embedding_table=table)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
    try:
        for _ in range(BUDGET + 2):  # the role's every slot
            hogs.append(psycopg.connect(conninfo))
        with pytest.raises(ConnectError, match="no connection slot left") as full:
            store.similarity_search("anything")
        assert "reconnects" not in str(full.value)
    finally:
        for hog in hogs:
            hog.close()
        store.close()
