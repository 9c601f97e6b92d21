"""BM25 keyword search on a real PostgreSQL: the term statistics stay exact under every
write path (upserts, deletes, delete_collection, a user's own SQL, concurrent writers,
folding), the ranking is BM25 over the database's own tsvectors, and the query syntax
keeps its meaning."""

from __future__ import annotations

import contextlib
import math
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support.twins import Runner

from langchain_pgvec import HashingEmbeddings, PGVecError, PGVecStore
from langchain_pgvec._bootstrap import tidy_text
from langchain_pgvec._schema import mapped_tables
from langchain_pgvec._terms import terms_table

DIM = 16
TABLE = "bm_emb"

WORDS = [
    "postgres",
    "vector",
    "index",
    "search",
    "query",
    "table",
    "row",
    "column",
    "planner",
    "statistics",
    "lexeme",
    "stemming",
    "phrase",
    "ranking",
    "retrieval",
    "document",
    "collection",
    "filter",
    "metadata",
    "replica",
    "partition",
    "tenant",
    "cluster",
    "backup",
    "restore",
    "network",
    "latency",
    "throughput",
    "memory",
]


def texts(n: int, seed: int = 0) -> list[str]:
    """Realistic-ish sentences: a Zipf-like draw of the words above, stop words between."""
    out = []
    for i in range(n):
        picked = [WORDS[(i * 7 + j * j * (seed + 3)) % len(WORDS) // (1 + j % 3)] for j in range(9)]
        out.append(f"The {picked[0]} and the {' of the '.join(picked[1:])} {i}")
    return out


@pytest.fixture
def store(engine: Engine, collection_name: str) -> Iterator[PGVecStore]:
    result = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        collection_name=collection_name,
        embedding_table=TABLE,
        collection_table="bm_col",
        full_text=True,
    )
    yield result
    with contextlib.suppress(PGVecError):
        result.delete_collection()


def cid_of(engine: Engine, store: PGVecStore) -> uuid.UUID:
    with engine.begin() as conn:
        cid: uuid.UUID = conn.execute(
            text("SELECT id FROM bm_col WHERE name = :n"), {"n": store.collection_name}
        ).scalar_one()
    return cid


def kept(engine: Engine, cid: uuid.UUID) -> dict[str, tuple[int, int]]:
    """The statistics as the store keeps them: lexeme -> (df, len), zero sums dropped."""
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT lexeme, sum(df), sum(len) FROM bm_emb_terms WHERE collection_id = :c "
                "GROUP BY lexeme HAVING sum(df) <> 0 OR sum(len) <> 0"
            ),
            {"c": cid},
        )
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def truth(engine: Engine, cid: uuid.UUID) -> dict[str, tuple[int, int]]:
    """The statistics computed from the rows themselves."""
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT lexeme, count(*), 0 FROM bm_emb, unnest(tsvector_to_array(content_tsv)) "
                "AS lexeme WHERE collection_id = :c GROUP BY lexeme "
                "UNION ALL SELECT '', count(*), sum(length(content_tsv)) FROM bm_emb "
                "WHERE collection_id = :c HAVING count(*) > 0"
            ),
            {"c": cid},
        )
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def assert_exact(engine: Engine, cid: uuid.UUID) -> None:
    expected = truth(engine, cid)
    assert kept(engine, cid) == expected
    assert expected or not kept(engine, cid)


async def test_statistics_follow_every_write_path(
    store: PGVecStore, engine: Engine, run: Runner
) -> None:
    docs = texts(300)
    ids = [f"d{i}" for i in range(300)]
    await run(store, "add_texts", docs, [{"n": i} for i in range(300)], ids=ids)  # COPY
    cid = cid_of(engine, store)
    assert_exact(engine, cid)
    # an upsert that changes only metadata leaves them; one that changes text moves them
    await run(store, "add_texts", docs, [{"n": i, "v": 2} for i in range(300)], ids=ids)
    assert_exact(engine, cid)
    changed = texts(120, seed=5)
    await run(store, "add_texts", changed, ids=ids[:120])
    assert_exact(engine, cid)
    await run(store, "add_texts", texts(3, seed=9), ids=["s1", "s2", "s3"])  # multi-row path
    assert_exact(engine, cid)
    await run(store, "delete", ids[:50])
    assert_exact(engine, cid)
    await run(store, "delete", filter={"n": {"$gte": 250}})
    assert_exact(engine, cid)
    # a user's own SQL is counted too
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE bm_emb SET content = 'restore the backup' WHERE collection_id = :c "
                "AND id = 'd60'"
            ),
            {"c": cid},
        )
        conn.execute(text("DELETE FROM bm_emb WHERE collection_id = :c AND id = 'd61'"), {"c": cid})
    assert_exact(engine, cid)
    # a rolled-back write leaves no trace
    with contextlib.suppress(RuntimeError), engine.begin() as conn:
        conn.execute(text("DELETE FROM bm_emb WHERE collection_id = :c"), {"c": cid})
        raise RuntimeError("roll back")
    assert_exact(engine, cid)
    # folding keeps the sums and leaves one row per lexeme
    state = store._ensure()
    assert state is not None
    with engine.begin() as conn:
        tidy_text(conn, state.tables, cid, pending=True)
        rows, lexemes = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT lexeme) FROM bm_emb_terms WHERE collection_id = :c"
            ),
            {"c": cid},
        ).one()
    assert rows == lexemes
    assert_exact(engine, cid)
    await run(store, "delete_collection")
    assert kept(engine, cid) == {}
    with engine.begin() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM bm_emb_terms WHERE collection_id = :c"), {"c": cid}
        ).scalar_one()
    assert left == 0


async def test_collections_keep_their_own_statistics(
    store: PGVecStore, engine: Engine, run: Runner
) -> None:
    other = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        collection_name=f"{store.collection_name}_other",
        embedding_table=TABLE,
        collection_table="bm_col",
        full_text=True,
    )
    try:
        await run(store, "add_texts", ["postgres replica"] * 5 + ["backup"] * 5)
        await run(other, "add_texts", ["postgres"] * 50)
        first = cid_of(engine, store)
        assert_exact(engine, first)
        assert_exact(engine, cid_of(engine, other))
        assert kept(engine, first)["postgr"] == (5, 0)
        # IDF is the collection's: "backup" is rarer than "postgres" only in the first
        found = await run(store, "full_text_search_with_score", "postgres backup", 10)
        scores = {doc.page_content: score for doc, score in found}
        assert scores["backup"] > 0 and scores["postgres replica"] > 0
    finally:
        other.delete_collection()


def test_two_racing_folds_keep_a_length_only_delta(store: PGVecStore, engine: Engine) -> None:
    """The interleaving the concurrent-writers test once lost six units of length to.

    Fold A deletes every delta, uncommitted; an upsert then changes a text's length but
    not the document count (a totals delta of df 0, len != 0); fold B starts, waits on
    A's rows, and after A commits sees only that delta. B must keep it.
    """
    store.add_texts(["postgres backup"], ids=["a"])
    cid = cid_of(engine, store)
    tables = mapped_tables(store._spec)
    first = engine.connect()
    try:
        first.begin()
        tidy_text(first, tables, cid, pending=False)
        store.add_texts(["postgres backup restore replica"], ids=["a"])  # len +2, df 0
        errors: list[BaseException] = []

        def second_fold() -> None:
            try:
                with engine.begin() as conn:
                    tidy_text(conn, tables, cid, pending=False)
            except BaseException as exc:
                errors.append(exc)

        racing = threading.Thread(target=second_fold)
        racing.start()
        with engine.connect() as watch:  # until B waits on A's row locks
            for _ in range(500):
                waiting = watch.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%_terms%'"
                    )
                ).scalar_one()
                if waiting:
                    break
                threading.Event().wait(0.01)
        assert waiting, "the second fold never waited on the first"
        first.commit()
        racing.join(timeout=30)
        assert not errors
    finally:
        first.close()
    assert_exact(engine, cid)
    assert kept(engine, cid)[""] == (1, 4)


def test_statistics_stay_exact_under_concurrent_writers(store: PGVecStore, engine: Engine) -> None:
    store.add_texts(texts(50), ids=[f"seed{i}" for i in range(50)])
    cid = cid_of(engine, store)
    tables = mapped_tables(store._spec)
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def writer(w: int) -> None:
        try:
            start.wait()
            for r in range(12):
                ids = [f"w{w}-{(r * 7 + j) % 40}" for j in range(25)]  # overlapping upserts
                store.add_texts(texts(25, seed=w * 100 + r), ids=ids)
                if r % 3 == 2:
                    store.delete([f"w{w}-{(r + j) % 40}" for j in range(5)])
        except BaseException as exc:
            errors.append(exc)

    def folder() -> None:
        try:
            start.wait()
            for _ in range(15):
                with engine.begin() as conn:
                    tidy_text(conn, tables, cid, pending=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    threads.append(threading.Thread(target=folder))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    assert_exact(engine, cid)


def bm25_reference(
    engine: Engine, cid: uuid.UUID, query: str, k1: float = 1.2, b: float = 0.75
) -> dict[str, float]:
    """BM25 of every document, from the database's own tsvectors (no candidate bound)."""
    with engine.begin() as conn:
        terms = set(
            conn.execute(
                text("SELECT unnest(tsvector_to_array(to_tsvector('english', :q)))"), {"q": query}
            ).scalars()
        )
        rows = conn.execute(
            text(
                "SELECT id, content_tsv::text, length(content_tsv) FROM bm_emb "
                "WHERE collection_id = :c"
            ),
            {"c": cid},
        ).all()
    docs = len(rows)
    avgdl = sum(row[2] for row in rows) / docs
    tfs = {row[0]: dict(_positions(row[1])) for row in rows}
    df = Counter(term for tf in tfs.values() for term in tf if term in terms)
    scores = {}
    for row in rows:
        tf, length = tfs[row[0]], row[2]
        score = 0.0
        for term in terms & set(tf):
            idf = math.log(1 + (docs - df[term] + 0.5) / (df[term] + 0.5))
            freq = tf[term]
            score += idf * freq * (k1 + 1) / (freq + k1 * (1 - b + b * length / avgdl))
        if score > 0:
            scores[row[0]] = score
    return scores


def _positions(tsvector: str) -> Iterator[tuple[str, int]]:
    for match in re.finditer(r"'((?:[^']|'')*)':([0-9,]+)", tsvector):
        yield match.group(1).replace("''", "'"), match.group(2).count(",") + 1


@pytest.mark.parametrize(
    "query", ["postgres replica latency", "the planner statistics", "backup restore network 7"]
)
async def test_scores_are_bm25(store: PGVecStore, engine: Engine, run: Runner, query: str) -> None:
    docs = texts(400)
    await run(
        store, "add_texts", docs, [{"n": i} for i in range(400)], ids=[str(i) for i in range(400)]
    )
    cid = cid_of(engine, store)
    expected = bm25_reference(engine, cid, query)
    found = await run(store, "full_text_search_with_score", query, 10)
    best = sorted(expected.items(), key=lambda pair: (-pair[1], pair[0]))[:10]
    assert [doc.id for doc, _ in found] == [doc_id for doc_id, _ in best]
    for (_doc, score), (_, want) in zip(found, best, strict=True):
        assert score == pytest.approx(want, rel=1e-9)
    # k1 and b are the call's
    tuned = await run(store, "full_text_search_with_score", query, 5, k1=2.0, b=0.3)
    tuned_expected = bm25_reference(engine, cid, query, 2.0, 0.3)
    for doc, score in tuned:
        assert score == pytest.approx(tuned_expected[doc.id], rel=1e-9)
    # the filter applies before ranking: every result matches it, and none is missing
    narrowed = await run(store, "full_text_search_with_score", query, 10, {"n": {"$lt": 40}})
    inside = sorted(
        ((i, s) for i, s in expected.items() if int(i) < 40), key=lambda p: (-p[1], p[0])
    )[:10]
    assert [doc.id for doc, _ in narrowed] == [doc_id for doc_id, _ in inside]


async def test_the_query_syntax_keeps_its_meaning(store: PGVecStore, run: Runner) -> None:
    corpus = {
        "fox": "the quick brown fox jumps",
        "brown": "a brown quick dog",
        "dog": "lazy dog sleeps all day",
        "both": "quick brown fox and a lazy dog",
    }
    await run(store, "add_texts", list(corpus.values()), ids=list(corpus))

    async def ids(query: str) -> set[str]:
        return {doc.id for doc in await run(store, "full_text_search", query, 10)}  # type: ignore[misc]

    assert await ids("jumps sleeps") == {"fox", "dog"}  # OR'ed
    assert await ids('"quick brown"') == {"fox", "both"}  # a phrase, in order
    assert await ids("quick -dog") == {"fox"}  # an exclusion
    assert await ids('dog -"lazy dog"') == {"brown"}  # an excluded phrase
    assert await ids("fox or sleeps") == {"fox", "both", "dog"}
    assert await ids("the and of") == set()  # stop words only
    assert await ids("-dog") == set()  # nothing to rank
    assert await ids("unicorn") == set()
    # hybrid falls back to the vector leg for a query without searchable words
    assert len(await run(store, "hybrid_search", "the and of", 3)) == 3  # type: ignore[arg-type]


async def test_hybrid_filters_both_legs(store: PGVecStore, run: Runner) -> None:
    docs = texts(200)
    await run(store, "add_texts", docs, [{"n": i} for i in range(200)])
    found = await run(store, "hybrid_search", "postgres replica", 10, {"n": {"$lt": 30}})
    assert len(found) == 10
    assert all(doc.metadata["n"] < 30 for doc in found)


async def test_an_existing_full_text_table_gains_the_statistics(
    engine: Engine, run: Runner, collection_name: str
) -> None:
    table = f"bm_old_{uuid.uuid4().hex[:6]}"

    def make(**kwargs: Any) -> PGVecStore:
        return PGVecStore(
            HashingEmbeddings(dimension=DIM),
            connection=engine,
            collection_name=collection_name,
            embedding_table=table,
            collection_table=f"{table}_c",
            full_text=True,
            **kwargs,
        )

    store = make()
    await run(store, "add_texts", texts(100), ids=[f"o{i}" for i in range(100)])
    # the table as an earlier release left it: the column and its index, no statistics
    terms = terms_table(mapped_tables(store._spec).spec)
    with engine.begin() as conn:
        for event in ("insert", "update", "delete", "truncate"):
            conn.execute(text(f'DROP TRIGGER "pgvec_terms_{event}" ON "{table}"'))
        conn.execute(text(f'DROP TABLE "{terms.name}"'))
    await run(store, "close")
    upgraded = make()
    await run(upgraded, "create_tables")  # by the owner: the documented call
    with engine.begin() as conn:
        cid = conn.execute(
            text(f'SELECT id FROM "{table}_c" WHERE name = :n'), {"n": collection_name}
        ).scalar_one()
        count = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
        computed: dict[str, int] = dict(
            conn.execute(
                text(
                    f'SELECT lexeme, count(*) FROM "{table}", '
                    "unnest(tsvector_to_array(content_tsv)) AS lexeme GROUP BY lexeme"
                )
            ).all()
        )
        stored: dict[str, int] = dict(
            conn.execute(
                text(
                    f"SELECT lexeme, sum(df) FROM \"{terms.name}\" WHERE lexeme <> '' "
                    "AND collection_id = :c GROUP BY lexeme"
                ),
                {"c": cid},
            ).all()
        )
    assert count == 100  # nothing lost
    assert stored == computed
    assert await run(upgraded, "full_text_search", "postgres", 3)
    await run(upgraded, "delete_collection")
    await run(upgraded, "close")
