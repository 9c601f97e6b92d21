"""Partitioned collections on a real PostgreSQL: the embedding table ``PARTITION BY LIST
(collection_id)``, each collection a partition of its own.

What a user of a partitioned store relies on: a collection is created with its
partition and deleted by dropping it; the vector index has one graph per partition
and a collection created later gets its own; a search reads only its collection's
partition; everything else (upserts, filters, MMR, hybrid, deletes, the CLI) works as
on a plain table; the option is recorded by the table itself; a role that does not own
the table uses the collections that exist and is told why it cannot make new ones;
and a thousand collections in one table behave.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from sqlalchemy import Engine, create_engine, make_url, text
from support.modes import PARTITIONED
from support.twins import Runner

from langchain_pgvec import (
    HNSW,
    HashingEmbeddings,
    InvalidInputError,
    IVFFlat,
    PGVecError,
    PGVecStore,
    PrivilegeError,
    SchemaError,
)
from langchain_pgvec.cli import main as pgvec

#: every store here says partitioned=True (or False) itself: the partitioned pass of
#: the suite (tests/support/modes.py) would run the same tests again
pytestmark = pytest.mark.skipif(PARTITIONED, reason="runs in the default pass")

DIM = 16


def unit(rows: np.ndarray) -> np.ndarray:
    normed: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normed.astype(np.float32)


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, DIM))
    return unit(centres[rng.integers(0, 8, n)] + rng.normal(0, 0.3, (n, DIM)))


class Tables:
    """One partitioned table pair of the test, and the stores made on it."""

    def __init__(self, engine: Engine) -> None:
        tag = uuid.uuid4().hex[:8]
        self.engine = engine
        self.embedding, self.collection = f"part_emb_{tag}", f"part_col_{tag}"
        self.made: list[PGVecStore] = []

    def store(self, name: str, **kwargs: Any) -> PGVecStore:
        kwargs.setdefault("connection", self.engine)
        kwargs.setdefault("partitioned", True)
        kwargs.setdefault("embedding_length", DIM)
        kwargs.setdefault("embedding_table", self.embedding)
        store = PGVecStore(
            DeterministicFakeEmbedding(size=DIM),
            collection_name=name,
            collection_table=self.collection,
            **kwargs,
        )
        self.made.append(store)
        return store

    def partitions(self) -> dict[str, str]:
        """Partition name -> its bound, as the catalog has them."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                    "to_regclass(:t)"
                ),
                {"t": self.embedding},
            ).all()
        return {name: bound for name, bound in rows}

    def partition_of(self, store: PGVecStore) -> str:
        with self.engine.connect() as conn:
            cid = conn.execute(
                text(f'SELECT id FROM "{self.collection}" WHERE name = :n'),
                {"n": store.collection_name},
            ).scalar_one()
        names = [name for name, bound in self.partitions().items() if str(cid) in bound]
        assert len(names) == 1, (cid, self.partitions())
        return names[0]

    def drop(self) -> None:
        for store in self.made:
            store.close()
        # a partition at a time: dropping a thousand with their parent in one
        # transaction takes more locks than a default server has room for
        for partition in self.partitions():
            with self.engine.begin() as conn:
                conn.execute(text(f'DROP TABLE "{partition}"'))
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "{self.embedding}_terms"'))
            conn.execute(text(f'DROP TABLE IF EXISTS "{self.embedding}" CASCADE'))
            conn.execute(text(f'DROP TABLE IF EXISTS "{self.collection}" CASCADE'))


@pytest.fixture
def tables(engine: Engine) -> Iterator[Tables]:
    made = Tables(engine)
    yield made
    made.drop()


async def load(run: Runner, store: PGVecStore, n: int, seed: int) -> np.ndarray:
    vectors = clustered(n, seed)
    await run(
        store,
        "add_embeddings",
        [f"{store.collection_name} doc {i}" for i in range(n)],
        vectors,
        [{"g": i % 10, "i": i} for i in range(n)],
        [f"d{i}" for i in range(n)],
    )
    return vectors


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> list[str]:
    order = np.argsort(1.0 - vectors @ query, kind="stable")[:k]
    return [f"d{i}" for i in order]


# ------------------------------------------------------------------ the schema option


async def test_each_collection_is_a_partition_of_its_own(tables: Tables, run: Runner) -> None:
    stores = [tables.store(name) for name in ("alpha", "beta", "gamma")]
    for seed, store in enumerate(stores):
        await load(run, store, 30, seed)
    with tables.engine.connect() as conn:
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": tables.embedding},
        ).scalar_one()
        rows = {
            part: conn.execute(text(f'SELECT count(*) FROM "{part}"')).scalar_one()
            for part in tables.partitions()
        }
    assert kind == "p"
    assert sorted(rows.values()) == [30, 30, 30]
    # ids are scoped per collection, rows stay in their own partition
    for store in stores:
        assert await run(store, "get_by_ids", ["d0"]) != []
        assert len(await run(store, "get_by_ids", [f"d{i}" for i in range(30)])) == 30
        docs = await run(store, "similarity_search", "doc", k=50)
        assert {d.page_content.split()[0] for d in docs} == {store.collection_name}
    # an empty collection is a partition too, made when the collection is
    empty = tables.store("delta")
    await run(empty, "create_tables")
    assert len(tables.partitions()) == 4
    assert await run(empty, "similarity_search", "doc", k=3) == []


async def test_the_table_records_the_choice(tables: Tables, run: Runner) -> None:
    first = tables.store("one")
    await load(run, first, 10, 1)
    # a later store follows the table without being told
    follower = tables.store("two", partitioned=None)
    await load(run, follower, 10, 2)
    assert len(tables.partitions()) == 2
    # and one told otherwise is refused, naming the table and the fix
    with pytest.raises(SchemaError, match=r"is partitioned by collection.*partitioned=True"):
        await run(tables.store("three", partitioned=False), "similarity_search", "x")


async def test_a_plain_table_is_not_partitioned_later(engine: Engine, run: Runner) -> None:
    tag = uuid.uuid4().hex[:8]
    plain = PGVecStore(
        DeterministicFakeEmbedding(size=DIM),
        connection=engine,
        collection_name="c",
        embedding_table=f"plain_emb_{tag}",
        collection_table=f"plain_col_{tag}",
        embedding_length=DIM,
        partitioned=False,
    )
    try:
        await run(plain, "create_tables")
        partitioned = PGVecStore(
            DeterministicFakeEmbedding(size=DIM),
            connection=engine,
            collection_name="c",
            embedding_table=f"plain_emb_{tag}",
            collection_table=f"plain_col_{tag}",
            partitioned=True,
        )
        with pytest.raises(SchemaError, match=r"is not partitioned.*when it is created"):
            await run(partitioned, "add_texts", ["x"])
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "plain_emb_{tag}", "plain_col_{tag}"'))


def test_bad_partitioned_values_are_refused_before_io() -> None:
    with pytest.raises(SchemaError, match="partitioned must be True, False or None"):
        PGVecStore(HashingEmbeddings(), connection="postgresql://nowhere/x", partitioned="yes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ delete_collection


async def test_delete_collection_drops_its_partition(tables: Tables, run: Runner) -> None:
    keep, gone = tables.store("keep"), tables.store("gone")
    await load(run, keep, 40, 1)
    await load(run, gone, 40, 2)
    partition = tables.partition_of(gone)
    await run(gone, "delete_collection")
    assert partition not in tables.partitions()
    with tables.engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass(:p)"), {"p": partition}).scalar() is None
    assert len(await run(keep, "similarity_search", "doc", k=100)) == 40
    assert await run(gone, "similarity_search", "doc", k=5) == []
    # written again, the collection gets a new partition
    await load(run, gone, 5, 3)
    assert len(tables.partitions()) == 2
    assert len(await run(gone, "get_by_ids", [f"d{i}" for i in range(40)])) == 5


# ------------------------------------------------------------------ indexes


@pytest.mark.parametrize("kind", ["hnsw", "ivfflat"])
async def test_one_index_one_graph_per_partition(tables: Tables, run: Runner, kind: str) -> None:
    sizes = {"small": 200, "large": 3_000}
    stores = {name: tables.store(name) for name in sizes}
    data = {
        name: await load(run, stores[name], n, seed) for seed, (name, n) in enumerate(sizes.items())
    }
    spec = HNSW(m=8, ef_construction=40) if kind == "hnsw" else IVFFlat(lists=8)
    name = await run(stores["large"], "create_index", spec)
    listed = {i.name: i for i in await run(stores["small"], "list_indexes")}
    assert listed[name].partitioned and listed[name].method == kind
    assert listed[name].size_bytes > 0  # the partitions' graphs
    with tables.engine.connect() as conn:
        per_partition = conn.execute(
            text(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = CAST(:ix AS regclass)"
            ),
            {"ix": name},
        ).scalar_one()
    assert per_partition == 2
    # a collection made after the index gets its graph when it is created
    late = tables.store("late")
    await load(run, late, 50, 7)
    with tables.engine.connect() as conn:
        methods = (
            conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE tablename = :p"),
                {"p": tables.partition_of(late)},
            )
            .scalars()
            .all()
        )
    assert any(f"USING {kind}" in definition for definition in methods), methods
    # each partition's index is named after the index it is a partition of
    with tables.engine.connect() as conn:
        leaves = (
            conn.execute(
                text(
                    "SELECT inhrelid::regclass::text FROM pg_inherits "
                    "WHERE inhparent = CAST(:ix AS regclass)"
                ),
                {"ix": name},
            )
            .scalars()
            .all()
        )
    assert len(leaves) == 3 and all(leaf.startswith(f"{name}_") for leaf in leaves), leaves

    # a search reads only its collection's partition, through that partition's graph
    large = stores["large"]
    query = data["large"][5]
    plan = await run(large, "explain", query.tolist(), 10)
    partition = tables.partition_of(large)
    assert partition in plan
    for other in tables.partitions():
        if other != partition:
            assert other not in plan, plan
    if kind == "hnsw":
        assert f"Index Scan using {name}_" in plan, plan
    # the recall of the partition's own graph: at least what raw SQL gets through it
    # (like queries, the exact answer from numpy)
    rng = np.random.default_rng(11)
    hits = raw_hits = 0
    raw = text(
        f'SELECT id FROM "{tables.embedding}" WHERE collection_id = '
        f"(SELECT id FROM \"{tables.collection}\" WHERE name = 'large') "
        "ORDER BY embedding <=> CAST(:q AS vector) LIMIT 10"
    )
    for i in rng.choice(3_000, 20, replace=False):
        q = unit(data["large"][i : i + 1] + rng.normal(0, 0.05, (1, DIM)))[0]
        truth = set(exact_top(data["large"], q, 10))
        got = await run(large, "similarity_search_by_vector", q.tolist(), k=10)
        hits += len({d.id for d in got} & truth)
        with tables.engine.connect() as conn:
            raw_ids = conn.execute(raw, {"q": str(q.tolist())}).scalars().all()
        raw_hits += len(set(raw_ids) & truth)
    assert hits >= raw_hits and hits / 200 >= 0.9, (hits, raw_hits)
    # filters and the small collection: k rows, all the collection's own
    for store, rows in ((large, 3_000), (stores["small"], 200)):
        got = await run(store, "similarity_search_by_vector", query.tolist(), k=10, filter={"g": 3})
        assert len(got) == 10 and all(d.metadata["g"] == 3 for d in got)
        assert len(await run(store, "similarity_search_by_vector", query.tolist(), k=10)) == 10
        assert await run(store, "count") == rows
        assert await run(store, "count", {"g": 3}) == rows // 10


async def test_what_a_partitioned_index_cannot_be_is_refused(tables: Tables, run: Runner) -> None:
    store = tables.store("c")
    await load(run, store, 20, 1)
    with pytest.raises(InvalidInputError, match="cannot run CONCURRENTLY"):
        await run(store, "create_index", HNSW(), concurrently=True)
    with pytest.raises(InvalidInputError, match="one graph per collection already"):
        await run(store, "create_index", HNSW(), per_collection=True)
    name = await run(store, "create_index", HNSW(m=8, ef_construction=32))
    with pytest.raises(InvalidInputError, match="cannot drop CONCURRENTLY"):
        await run(store, "drop_index", name, concurrently=True)
    await run(store, "drop_index", name)
    assert name not in {i.name for i in await run(store, "list_indexes")}


def test_the_build_bar_counts_partitions(
    tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = [tables.store(f"c{i}") for i in range(6)]
    for i, store in enumerate(stores):
        store.add_embeddings([f"t{j}" for j in range(2_000)], clustered(2_000, i))
    stores[0].create_index(HNSW(m=16, ef_construction=200), show_progress=True)
    err = capsys.readouterr().err
    assert "CREATE INDEX" in err and "done" in err
    assert "partition" in err, err


# ------------------------------------------------------------------ everything else


async def test_writes_reads_and_searches_as_on_a_plain_table(tables: Tables, run: Runner) -> None:
    store = tables.store("docs", full_text=True)
    other = tables.store("other", full_text=True)
    await run(other, "add_texts", ["postgres partitions are tables"], ids=["o1"])
    ids = await run(
        store,
        "add_texts",
        ["the cat sat", "a dog barked", "postgres stores vectors", "cats and dogs"],
        metadatas=[{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}],
        ids=["1", "2", "3", "4"],
    )
    assert ids == ["1", "2", "3", "4"]
    # upserts: unchanged, changed text, changed metadata
    await run(store, "add_texts", ["the cat sat"], metadatas=[{"a": 1}], ids=["1"])
    await run(store, "add_texts", ["a dog barked loudly"], metadatas=[{"a": 2}], ids=["2"])
    await run(store, "add_texts", ["postgres stores vectors"], metadatas=[{"a": 30}], ids=["3"])
    got = {d.id: d for d in await run(store, "get_by_ids", ["1", "2", "3", "4"])}
    assert got["2"].page_content == "a dog barked loudly" and got["3"].metadata == {"a": 30}
    assert [d.id for d in await run(store, "similarity_search", "x", k=4, filter={"a": 30})] == [
        "3"
    ]
    mmr = await run(store, "max_marginal_relevance_search", "cat", k=2, fetch_k=4)
    assert len(mmr) == 2
    keyword = await run(store, "full_text_search", "postgres vectors", k=5)
    assert [d.id for d in keyword] == ["3"]  # the other collection's row is not seen
    hybrid = {d.id for d in await run(store, "hybrid_search", "postgres", k=10)}
    assert hybrid == {"1", "2", "3", "4"}  # both legs read this collection's partition only
    await run(store, "delete", ["1"])
    await run(store, "delete", filter={"a": 4})
    assert sorted(d.id for d in await run(store, "similarity_search", "x", k=10)) == ["2", "3"]
    # the term statistics stay exact per collection through all of it
    with tables.engine.connect() as conn:
        cid = conn.execute(
            text(f'SELECT id FROM "{tables.collection}" WHERE name = :n'), {"n": "docs"}
        ).scalar_one()
        docs = conn.execute(
            text(
                f'SELECT coalesce(sum(df), 0) FROM "{tables.embedding}_terms" '
                "WHERE collection_id = :c AND lexeme = ''"
            ),
            {"c": cid},
        ).scalar_one()
    assert docs == 2
    await run(store, "delete_collection")
    with tables.engine.connect() as conn:
        left = conn.execute(
            text(f'SELECT count(*) FROM "{tables.embedding}_terms" WHERE collection_id = :c'),
            {"c": cid},
        ).scalar_one()
    assert left == 0
    assert [d.id for d in await run(other, "full_text_search", "partitions", k=3)] == ["o1"]


def test_the_cli_makes_and_describes_a_partitioned_table(
    tables: Tables, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--url", pg_url, "--embedding-table", tables.embedding]
    common += ["--collection-table", tables.collection]
    assert pgvec([*common, "init", "--dimension", str(DIM), "-c", "first", "--partitioned"]) == 0
    store = tables.store("first", partitioned=None)
    store.add_embeddings(["a", "b"], clustered(2, 1))
    assert pgvec([*common, "info"]) == 0
    out = capsys.readouterr().out
    assert "first" in out and "2 documents" in out
    # a partition is not listed as an embedding table of its own
    assert tables.partition_of(store) not in out
    assert len(tables.partitions()) == 1


# ------------------------------------------------------------------ a role that is not the owner


def test_a_role_that_does_not_own_the_table(tables: Tables, engine: Engine, pg_url: str) -> None:
    owner = tables.store("shared")
    owner.add_embeddings(["a", "b"], clustered(2, 1), ids=["a", "b"])
    role = f"part_app_{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    owner.grant(role)
    app_engine = create_engine(make_url(pg_url).set(username=role, password=None))
    try:
        app = tables.store("shared", connection=app_engine, partitioned=None)
        app.add_embeddings(["c"], clustered(1, 2), ids=["c"])
        assert {d.id for d in app.similarity_search("x", k=5)} == {"a", "b", "c"}
        stranger = tables.store("new one", connection=app_engine, partitioned=None)
        with pytest.raises(
            PrivilegeError, match=r"creating collection 'new one'.*only the table's owner"
        ):
            stranger.add_embeddings(["d"], clustered(1, 3))
        assert len(tables.partitions()) == 1  # nothing was left behind
        with pytest.raises(PrivilegeError, match="deleting collection 'shared'"):
            app.delete_collection()
        assert len(owner.similarity_search("x", k=5)) == 3
    finally:
        for store in tables.made:
            with contextlib.suppress(PGVecError):
                store.close()
        app_engine.dispose()
        with engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


# ------------------------------------------------------------------ a thousand collections


def test_a_thousand_collections(tables: Tables) -> None:
    n = 1_000
    stores = [tables.store(f"tenant {i}") for i in range(n)]
    rng = np.random.default_rng(5)
    data = {}
    for i, store in enumerate(stores):
        data[i] = unit(rng.normal(size=(4, DIM)))
        store.add_embeddings([f"tenant {i} row {j}" for j in range(4)], data[i], ids=list("abcd"))
    assert len(tables.partitions()) == n
    name = stores[0].create_index(HNSW(m=8, ef_construction=32))
    with tables.engine.connect() as conn:
        graphs = conn.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST(:ix AS regclass)"),
            {"ix": name},
        ).scalar_one()
    assert graphs == n
    # every tenant sees only its own rows, nearest first
    for i in rng.choice(n, 100, replace=False):
        got = stores[i].similarity_search_by_vector(data[i][2].tolist(), k=10)
        assert [d.id for d in got][:1] == ["c"] and len(got) == 4
        assert all(d.page_content.startswith(f"tenant {i} ") for d in got)
    plan = stores[7].explain(data[7][0].tolist(), 4)
    assert [p for p in tables.partitions() if p in plan] == [tables.partition_of(stores[7])]
    # half of them go, each by dropping its partition; the rest are untouched
    for store in stores[::2]:
        store.delete_collection()
    assert len(tables.partitions()) == n // 2
    for i in range(1, n, 98):  # odd: kept
        assert len(stores[i].similarity_search_by_vector(data[i][0].tolist(), k=10)) == 4
    # and a new one gets its partition and its graph
    fresh = tables.store("tenant new")
    fresh.add_embeddings(["x"], unit(rng.normal(size=(1, DIM))), ids=["x"])
    assert len(tables.partitions()) == n // 2 + 1


async def test_a_collection_table_shared_with_another_embedding_table(
    tables: Tables, run: Runner
) -> None:
    """A collection made for another embedding table (the collection table is shared)
    gets its partition here when this table is first written for it."""
    plain = tables.store("shared", embedding_table=f"{tables.embedding}_plain", partitioned=False)
    await load(run, plain, 5, 1)
    partitioned = tables.store("shared")
    await load(run, partitioned, 7, 2)
    assert len(tables.partitions()) == 1
    assert await run(partitioned, "count") == 7 and await run(plain, "count") == 5
    await run(plain, "delete_collection")
    with tables.engine.begin() as conn:
        conn.execute(text(f'DROP TABLE "{tables.embedding}_plain"'))
