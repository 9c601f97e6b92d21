"""The search planner on a real PostgreSQL: every collection of a shared table gets
``min(k, matching rows)`` rows, close to the exact ones, whatever its share of the
index, right after a load or an index build, after another collection outgrew it,
after most of it was deleted; with and without a filter, sync and async, under HNSW
and IVFFlat.

Each scenario builds its own table of clustered vectors: one collection's data and
queries drawn like it ("like": near a document of the collection) are close to each
other and far from the other collections'; random directions ("unlike") are near no
collection. Recall is measured against numpy's exact ranking; for unlike queries it
is compared with raw SQL's on the same index and settings, written as pgvector's README
advises for filtered searches (an iterative scan, then a sort by exact distance).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from sqlalchemy import Engine, Index, MetaData, Table, make_url, select, text
from sqlalchemy.schema import DropTable
from support.modes import shared_index_only
from support.twins import Runner

from langchain_pgvec import HNSW, IVFFlat, PGVecStore, SearchSettings, TableSpec, mapped_tables

#: every test here is about collections sharing one index
pytestmark = shared_index_only

DIM = 16
K = 10
#: exact_below for these tables: a collection (or collection + filter) of at most this
#: many rows is ranked exactly; more go through the index
THRESHOLD = 400
SETTINGS = SearchSettings(exact_below=THRESHOLD)
INDEXES: dict[str, HNSW | IVFFlat] = {
    "hnsw": HNSW(m=8, ef_construction=40),
    "ivfflat": IVFFlat(lists=10),
}
QUERIES = 12


@dataclass
class Collection:
    """A collection of the shared table, its data, and queries like it."""

    name: str
    store: PGVecStore
    vectors: np.ndarray
    groups: np.ndarray  # metadata "g" of each document
    like: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), np.float32))
    alive: np.ndarray | None = None  # documents not deleted

    def truth(self, query: np.ndarray, group: int | None) -> list[str]:
        keep = np.ones(len(self.vectors), bool) if self.alive is None else self.alive.copy()
        if group is not None:
            keep &= self.groups == group
        rows = np.flatnonzero(keep)
        order = rows[np.argsort(1.0 - self.vectors[rows] @ query, kind="stable")]
        return [f"{self.name}-{i}" for i in order[:K]]


def _unit(vectors: np.ndarray) -> np.ndarray:
    normed: np.ndarray = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(
        np.float32
    )
    return normed


def clustered(n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors around ``n / 50`` centres of their own."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((max(2, n // 50), DIM)))
    picks = rng.integers(0, len(centres), n)
    return _unit(centres[picks] + rng.normal(0, 0.15, (n, DIM)))


def unlike_queries(seed: int = 99) -> np.ndarray:
    return _unit(np.random.default_rng(seed).standard_normal((QUERIES, DIM)))


class Table_:
    """Stores on one table of their own, dropped when the test ends."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        suffix = uuid.uuid4().hex[:8]
        self.names = (f"pl_e_{suffix}", f"pl_c_{suffix}")

    def store(self, name: str, **kwargs: Any) -> PGVecStore:
        kwargs.setdefault("search_settings", SETTINGS)
        kwargs.setdefault("connection", self.engine)
        return PGVecStore(
            DeterministicFakeEmbedding(size=DIM),
            collection_name=name,
            embedding_table=self.names[0],
            collection_table=self.names[1],
            **kwargs,
        )

    async def add(self, run: Runner, name: str, n: int, seed: int, **kwargs: Any) -> Collection:
        store = self.store(name, **kwargs)
        vectors = clustered(n, seed)
        groups = np.random.default_rng(seed + 3).integers(0, 10, n)
        ids = [f"{name}-{i}" for i in range(n)]
        metadatas = [{"g": int(g), "name": name} for g in groups]
        await run(store, "add_embeddings", [f"doc {i}" for i in ids], vectors, metadatas, ids)
        picks = np.random.default_rng(seed + 1).choice(n, QUERIES, replace=False)
        like = _unit(
            vectors[picks] + np.random.default_rng(seed + 2).normal(0, 0.05, (QUERIES, DIM))
        )
        return Collection(name, store, vectors, groups, like)

    def drop(self) -> None:
        with self.engine.begin() as conn:
            for name in self.names:
                conn.execute(DropTable(Table(name, MetaData()), if_exists=True))


@pytest.fixture
def table(engine: Engine) -> Iterator[Table_]:
    made = Table_(engine)
    yield made
    made.drop()


def raw_top_k(
    engine: Engine, names: tuple[str, str], collection: str, query: np.ndarray, group: int | None
) -> list[str]:
    """The ids raw SQL finds on the same index, written as pgvector's README advises for a
    filtered search: an iterative scan in relaxed order, then a sort by exact distance."""
    tables = mapped_tables(
        TableSpec(embedding_table=names[0], collection_table=names[1], dimension=DIM)
    )
    emb, col = tables.embedding, tables.collection
    distance = emb.c.embedding.cosine_distance(query.tolist()).label("d")
    cid = select(col.c.id).where(col.c.name == collection).scalar_subquery()
    inner = select(emb.c.id, distance).where(emb.c.collection_id == cid)
    if group is not None:
        inner = inner.where(emb.c.metadata.contains({"g": group}))
    nearest = inner.order_by(distance).limit(K).subquery()
    statement = select(nearest.c.id).order_by(nearest.c.d + 0)
    with engine.begin() as conn:
        version = conn.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).scalar_one()
        if tuple(int(p) for p in version.split(".")[:2]) >= (0, 8):  # pgvector has them
            conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            conn.execute(text("SET LOCAL ivfflat.iterative_scan = relaxed_order"))
        return [row[0] for row in conn.execute(statement)]


def recall(found: list[str], truth: list[str]) -> float:
    return len(set(found) & set(truth)) / len(truth) if truth else 1.0


Search = Callable[[Collection, np.ndarray, int | None], Any]


async def check(
    run: Runner,
    table: Table_,
    collection: Collection,
    *,
    store: PGVecStore | None = None,
    raw: bool = True,
) -> None:
    """k rows (or every matching one) for every query, filtered or not; recall at least
    0.95 for queries like the collection, and no worse than raw SQL's for the others."""
    store = store or collection.store
    for group in (None, 3):
        for queries, like in ((collection.like, True), (unlike_queries(), False)):
            ours, theirs = [], []
            for query in queries:
                truth = collection.truth(query, group)
                where = None if group is None else {"g": group}
                docs = await run(store, "similarity_search_by_vector", query.tolist(), K, where)
                assert len(docs) == len(truth), (collection.name, group, like)
                if group is not None:
                    assert {d.metadata["g"] for d in docs} == {group}
                assert {d.metadata["name"] for d in docs} <= {collection.name}
                ours.append(recall([d.id for d in docs], truth))
                if raw and not like:
                    found = raw_top_k(table.engine, table.names, collection.name, query, group)
                    theirs.append(recall(found, truth))
            label = f"{collection.name} filter={group} like={like}"
            if like:
                assert np.mean(ours) >= 0.95, (label, np.mean(ours))
            elif theirs:
                assert np.mean(ours) >= np.mean(theirs), (label, np.mean(ours), np.mean(theirs))


def assert_iterative(plan: str, name: str, kind: str) -> None:
    """The plan of the iterative route: 2k rows asked for (overfetch), sorted again by
    exact distance. Under HNSW the database takes the index for it; under IVFFlat, with
    as many probes as a minority collection gets, it may rank the collection's rows
    itself, which is exact too."""
    assert re.search(r"Limit  \(cost=\S+ rows=20 ", plan), plan
    assert "Sort Key: ((nearest.distance" in plan, plan
    if kind == "hnsw":
        assert f"Index Scan using {name}" in plan, plan


# ---------------------------------------------------------------------- shared table


@pytest.mark.parametrize("kind", list(INDEXES))
async def test_collections_of_very_different_sizes_share_one_index(
    table: Table_, run: Runner, kind: str
) -> None:
    """1%, 10% and 89% of one table under one index: each gets its k rows."""
    small = await table.add(run, "small", 100, seed=1)
    medium = await table.add(run, "medium", 1_000, seed=2)
    large = await table.add(run, "large", 8_900, seed=3)
    name = await run(large.store, "create_index", INDEXES[kind])
    for collection in (small, medium, large):
        await check(run, table, collection)

    vector = large.like[0].tolist()
    # the large collection is (nearly) all the index holds: the plain index scan
    assert f"Index Scan using {name}" in await run(large.store, "explain", vector, K)
    # a minority of the index: the search asks for 2k rows (iterative scan, overfetch)
    # and sorts them again; under HNSW the database takes the index for it (under
    # IVFFlat it may rank the collection's rows itself, with probes this high)
    assert_iterative(await run(medium.store, "explain", vector, K), name, kind)
    # few rows: ranked exactly, without the vector index
    assert name not in await run(small.store, "explain", vector, K)
    # a filter narrowing the large collection to 890 rows takes the iterative route
    # (through the index under HNSW; IVFFlat's probes for a 9% share are enough for
    # PostgreSQL to price ranking those rows itself lower, depending on its statistics),
    # the medium collection's 100 are ranked exactly
    assert_iterative(await run(large.store, "explain", vector, K, {"g": 3}), name, kind)
    assert name not in await run(medium.store, "explain", vector, K, {"g": 3})


@pytest.mark.parametrize("kind", list(INDEXES))
async def test_statistics_nobody_refreshed(
    table: Table_, run: Runner, engine: Engine, kind: str
) -> None:
    """Rows loaded and indexed by hand, never analyzed: the database planner knows nothing
    of the collections' sizes, and every search still returns its k rows."""
    collections = []
    for name, n, seed in (("small", 100, 1), ("medium", 1_000, 2), ("large", 8_900, 3)):
        # stores that each write fewer rows than make the store refresh statistics
        whole = clustered(n, seed)
        for start in range(0, n, 900):
            store = table.store(name)
            rows = range(start, min(n, start + 900))
            await run(
                store,
                "add_embeddings",
                [f"doc {i}" for i in rows],
                whole[start : start + len(rows)],
                [{"g": i % 10, "name": name} for i in rows],
                [f"{name}-{i}" for i in rows],
            )
        picks = np.random.default_rng(seed + 1).choice(n, QUERIES, replace=False)
        like = _unit(whole[picks] + np.random.default_rng(seed + 2).normal(0, 0.05, (QUERIES, DIM)))
        collections.append(Collection(name, table.store(name), whole, np.arange(n) % 10, like))
    embedding = Table(table.names[0], MetaData(), autoload_with=engine)
    index = Index(
        f"{table.names[0]}_by_hand",
        embedding.c.embedding,
        postgresql_using=kind,
        postgresql_with=INDEXES[kind].with_options(0),
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    with engine.begin() as conn:
        quoted = conn.dialect.identifier_preparer.quote(table.names[0])
        conn.execute(text("ALTER TABLE " + quoted + " SET (autovacuum_enabled = false)"))
        index.create(conn)
        stats = conn.execute(
            text(
                "SELECT count(*) FROM pg_stats WHERE tablename = :t AND attname = 'collection_id'"
            ),
            {"t": table.names[0]},
        ).scalar_one()
    assert stats == 0  # nothing analyzed the table
    for collection in collections:
        await check(run, table, collection)


# ---------------------------------------------------------------------- right after a load


@pytest.mark.parametrize("kind", list(INDEXES))
async def test_index_built_right_after_a_load_serves_the_next_search(
    table: Table_, run: Runner, kind: str
) -> None:
    only = await table.add(run, "only", 6_000, seed=4)
    name = await run(only.store, "create_index", INDEXES[kind])
    # no ANALYZE by anyone but the store: the very next search uses the index
    assert f"Index Scan using {name}" in await run(only.store, "explain", only.like[0].tolist(), K)
    await check(run, table, only)


# ---------------------------------------------------------------------- outgrown


@pytest.mark.parametrize("kind", list(INDEXES))
async def test_collection_outgrown_tenfold_after_the_index(
    table: Table_, run: Runner, kind: str, pg_url: str
) -> None:
    first = await table.add(run, "first", 1_000, seed=5)
    name = await run(first.store, "create_index", INDEXES[kind])
    assert f"Index Scan using {name}" in await run(first.store, "explain", first.like[0].tolist())
    # another process loads a collection ten times as large (engines of its own: the
    # first store is not told)
    url = make_url(pg_url).update_query_dict({"application_name": "elsewhere"})
    second = await table.add(run, "second", 10_000, seed=6, connection=url)
    await run(second.store, "close")
    # the first store has not looked since: its plain index scans come back short for
    # queries far from its data, and are completed
    assert f"Index Scan using {name}" in await run(first.store, "explain", first.like[0].tolist())
    await check(run, table, first)
    # a store that looks now (as another process would) sees a minority of the index
    fresh = table.store("first")
    plan = await run(fresh, "explain", first.like[0].tolist(), K)
    assert_iterative(plan, name, kind)
    await check(run, table, first, store=fresh)


# ---------------------------------------------------------------------- deleted


@pytest.mark.parametrize("kind", list(INDEXES))
async def test_collection_with_most_rows_deleted(table: Table_, run: Runner, kind: str) -> None:
    big = await table.add(run, "big", 8_000, seed=7)
    other = await table.add(run, "other", 2_000, seed=8)
    name = await run(big.store, "create_index", INDEXES[kind])
    doomed = [f"big-{i}" for i in range(8_000) if i % 20]
    await run(big.store, "delete", doomed)  # 95% of its rows; the index keeps their entries
    big.alive = np.arange(8_000) % 20 == 0
    big.like = _unit(
        big.vectors[big.alive][:QUERIES] + np.random.default_rng(9).normal(0, 0.05, (QUERIES, DIM))
    )
    # 400 rows are left, no more than the threshold: ranked exactly
    assert name not in await run(big.store, "explain", big.like[0].tolist(), K)
    await check(run, table, big)
    await check(run, table, other)


# ---------------------------------------------------------------------- MMR and hybrid


@pytest.mark.parametrize("kind", list(INDEXES))
async def test_mmr_and_hybrid_never_come_back_short(table: Table_, run: Runner, kind: str) -> None:
    """MMR's candidates and hybrid search's vector leg are planned like a search."""
    sizes = {"small": 100, "medium": 1_000, "large": 8_900}
    stores = {}
    for seed, (name, n) in enumerate(sizes.items()):
        store = table.store(name, full_text=True)
        vectors = clustered(n, seed)
        ids = [f"{name}-{i}" for i in range(n)]
        texts = [f"{name} document number {i}" for i in range(n)]
        metadatas = [{"g": i % 10, "name": name} for i in range(n)]
        await run(store, "add_embeddings", texts, vectors, metadatas, ids)
        stores[name] = store
    await run(stores["large"], "create_index", INDEXES[kind])
    for name, store in stores.items():
        for query in unlike_queries()[:4]:
            for where in (None, {"g": 3}):
                matches = sizes[name] // (1 if where is None else 10)
                wanted = min(40, matches)
                picked = await run(
                    store,
                    "max_marginal_relevance_search_by_vector",
                    query.tolist(),
                    wanted,
                    40,
                    0.5,
                    where,
                )
                assert len(picked) == wanted and {d.metadata["name"] for d in picked} == {name}
        # a text no document holds: the fused ranking is the vector leg's alone
        for text_query in ("xylophone quartz", "nothing here matches"):
            for where in (None, {"g": 3}):
                found = await run(store, "hybrid_search", text_query, 10, where, fetch_k=40)
                assert len(found) == 10 and {d.metadata["name"] for d in found} == {name}


# ---------------------------------------------------------------------- statistics


def analyses(engine: Engine, table: str) -> int:
    """How many times ANALYZE ran on ``table`` (not counting autovacuum's)."""
    with engine.begin() as conn:
        count = conn.execute(
            text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"),
            {"t": table},
        ).scalar()
    return int(count or 0)


async def test_large_changes_refresh_the_statistics(
    table: Table_, run: Runner, engine: Engine
) -> None:
    name = table.names[0]
    first = await table.add(run, "first", 2_000, seed=11)  # a first load: analyzed
    assert analyses(engine, name) == 1
    again = [f"first-{i}" for i in range(2_000)]  # the same load again changes no row
    metadatas = [{"g": int(g), "name": "first"} for g in first.groups]
    texts = [f"doc {i}" for i in again]
    await run(first.store, "add_embeddings", texts, first.vectors, metadatas, again)
    assert analyses(engine, name) == 1
    await table.add(run, "small", 300, seed=12)  # 13% more rows: not yet
    assert analyses(engine, name) == 1
    more = table.store("first")  # another store of the same collection
    vectors = clustered(400, seed=13)
    ids = [f"more-{i}" for i in range(400)]
    await run(more, "add_embeddings", ids, vectors, [{"g": 0}] * 400, ids)
    assert analyses(engine, name) == 1  # each store counts its own writes
    changed = -vectors  # the other store's rows, every vector changed by this one
    await run(first.store, "add_embeddings", ids, changed, [{"g": 0}] * 400, ids)
    assert analyses(engine, name) == 1  # 400 of 2,700 rows by this store
    await run(first.store, "delete", [f"first-{i}" for i in range(1_000)])
    assert analyses(engine, name) == 2  # 1,400 rows changed by this store: 20% and more
    await run(first.store, "delete_collection")  # 1,400 more
    assert analyses(engine, name) == 3
    with engine.begin() as conn:
        estimate = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": name}
        ).scalar_one()
    assert estimate == 300  # what is left: the "small" collection


async def test_create_index_refreshes_every_statistic(
    table: Table_, run: Runner, engine: Engine
) -> None:
    only = await table.add(run, "only", 500, seed=14)  # too few rows to analyze
    assert analyses(engine, table.names[0]) == 0
    await run(only.store, "create_index", INDEXES["hnsw"])
    assert analyses(engine, table.names[0]) == 1
    with engine.begin() as conn:
        columns = conn.execute(
            text("SELECT attname FROM pg_stats WHERE tablename = :t ORDER BY attname"),
            {"t": table.names[0]},
        ).scalars()
        assert {"collection_id", "metadata", "embedding", "id"} <= set(columns)
