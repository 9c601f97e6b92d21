"""Query benchmark (issue 5): latency and recall of search, filtered search and MMR.

The same N vectors (default 100,000, dim 384, cosine distance) are loaded once into
each system's own tables: a raw table (the baseline, queried with hand-written SQL over
psycopg), langchain-postgres ``PGVector``'s tables, ``PGVectorStore``'s table, and ours
(through ``add_embeddings``). Each system then answers the same queries, first by exact
search (no vector index, phase ``exact``), then after building an HNSW index (m=16,
ef_construction=64, phase ``hnsw``): unfiltered top-k, top-k under a 2%-selective
metadata filter (``tag == "rare"``), and MMR (k=10, fetch_k=100). Recall@k is measured
against numpy brute force.

Two more phases, each on a database of its own, recreated for it:

- ``fresh``: the user's world right after a load. The same N rows go into new tables;
  autovacuum is held off, and the harness analyzes only the raw baseline's table, so
  each store plans its searches on whatever statistics it gathered itself. Unfiltered
  top-k by exact search, then again right after each system built its HNSW index.
- ``ef_search``: right after ``hnsw``, on its indexes: unfiltered and filtered top-k at
  each HNSW ``ef_search`` of a sweep, for raw SQL (the filter with an iterative scan,
  re-sorted), ``PGVectorStore`` (``HNSWQueryOptions``) and ours (the per-call setting);
  ``PGVector`` has no setting, so its default is one point. ``--plot`` draws recall
  against latency from it.
- ``shared``: one table holding three collections of 90%, 9% and 1% of N rows, each
  with data of its own (a corpus per collection, from its own seed). Unfiltered and
  filtered top-k per collection, with queries like that collection's data, and
  unfiltered top-k with random queries like no collection's data. Ours and
  ``PGVector`` keep collections in one shared table by design; raw SQL gets one table
  with three ``collection_id`` values, queried as pgvector's README advises for
  filtering (iterative scan, re-sorted) and plainly.
- ``text``: real text (``text_speed.py``): ``--text-n`` paragraphs of Debian's English
  package descriptions (synthetic vectors, ``make_corpus``'), loaded into ours with
  ``full_text=False`` and ``True`` and into raw tables without and with a generated
  ``tsvector`` column and GIN index (vectors/s, and the full-text / without ratio); then,
  with HNSW on ours and on raw, package summaries as known-item queries: ours
  ``full_text_search`` and ``hybrid_search`` against raw SQL's ``websearch_to_tsquery``
  ranked by ``ts_rank_cd`` and an RRF of it and the HNSW top-k in one statement, p50/p95.

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/query.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import psycopg
from _common import (
    RAW_COLLECTION,
    RAW_COLUMNS,
    RAW_TABLE,
    RAW_TYPES,
    VOCAB,
    BenchEmbeddings,
    Corpus,
    Report,
    SqlCapture,
    Stats,
    autovacuum_held,
    base_parser,
    brute_force_topk,
    connect_raw,
    conninfo,
    copy_binary,
    create_raw_table,
    doc_id,
    doc_index,
    environment,
    error_note,
    fmt_ms,
    fmt_ratio,
    fmt_seconds,
    fresh_database,
    hold_autovacuum,
    import_ours,
    maintenance,
    make_corpus,
    mmr_select,
    raw_rows,
    start_server,
    stopwatch,
    summarize_plan,
    table_statistics,
)
from psycopg import sql
from psycopg.types.json import Json, Jsonb
from text_speed import DEFAULT_TEXT_N, MIN_CHUNK, QUICK_TEXT_N, run_text

SYSTEMS = ("raw", "pgvector", "pgvectorstore", "ours")
PHASES = ("exact", "hnsw", "ef_search", "fresh", "shared", "text")
INDEXED_PHASES = ("exact", "hnsw", "ef_search")  # on one database, loaded once
EF_SWEEP = (10, 20, 40, 80, 160, 320)  # the ef_search phase's settings
V1_COLLECTION = "bench"
V2_TABLE = "bench_lcpg_v2"
FILTER = {"tag": "rare"}
# the shared phase: each collection's share of the N rows, and the id stride that keeps
# ids unique across collections (collection i's document j is doc_id(i * stride + j))
SHARES = (0.90, 0.09, 0.01)
ID_STRIDE = 10**7
README_ADVICE = "iterative_scan=relaxed_order, re-sorted (pgvector README)"

SearchFn = Callable[[int], list[int]]  # query number -> result document indices


def parse_args() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="documents")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--fetch-k", type=int, default=100, help="MMR candidates asked for")
    parser.add_argument("--lambda-mult", type=float, default=0.5, help="MMR diversity")
    parser.add_argument("--rare", type=float, default=0.02, help='share of tag="rare" rows')
    parser.add_argument("--m", type=int, default=16, help="HNSW m")
    parser.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction")
    parser.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="untimed warm-up queries per shape, not among the timed ones",
    )
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {SYSTEMS}"
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated subset of {PHASES}"
    )
    parser.add_argument(
        "--text-n",
        type=int,
        default=None,
        help=f"paragraphs of the text phase (default {DEFAULT_TEXT_N:,}; "
        f"{QUICK_TEXT_N:,} with --quick)",
    )
    parser.add_argument(
        "--text-min-chars",
        type=int,
        default=MIN_CHUNK,
        help="the text phase drops paragraphs shorter than this",
    )
    parser.add_argument(
        "--plot",
        default="benchmarks/results/query_recall_latency.png",
        help="where the ef_search phase's recall-against-latency plot goes ('' for none)",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.queries, args.warmup = 5_000, 20, 3
    if args.text_n is None:
        args.text_n = QUICK_TEXT_N if args.quick else DEFAULT_TEXT_N
    args.systems = _subset(parser, args.systems, SYSTEMS)
    args.phases = _subset(parser, args.phases, PHASES)
    return args


def _subset(parser: argparse.ArgumentParser, value: str, allowed: tuple[str, ...]) -> list[str]:
    picked = [s.strip() for s in value.split(",") if s.strip()]
    unknown = set(picked) - set(allowed)
    if unknown:
        parser.error(f"unknown {sorted(unknown)}; pick from {allowed}")
    return [s for s in allowed if s in picked]


# ---------------------------------------------------------------------- workload


@dataclass
class Workload:
    """The corpus, the queries and their exact answers."""

    corpus: Corpus
    queries: np.ndarray
    query_lists: list[list[float]]
    truth: dict[str, np.ndarray]
    args: argparse.Namespace
    keywords: list[str]  # one two-word keyword query per vector query (hybrid search)

    @classmethod
    def build(cls, args: argparse.Namespace) -> Workload:
        corpus = make_corpus(args.n, args.dim, seed=args.seed, rare_fraction=args.rare)
        # the timed queries, then --warmup more that only warm up (no answers needed)
        queries = corpus.queries(args.queries + args.warmup)
        timed = queries[: args.queries]
        rare = np.array([m["tag"] == "rare" for m in corpus.metadatas])
        truth = {
            "unfiltered": brute_force_topk(corpus.vectors, timed, args.k),
            "filtered": brute_force_topk(corpus.vectors, timed, args.k, rare),
        }
        rng = np.random.default_rng(args.seed + 1)
        keywords = [" ".join(rng.choice(VOCAB, size=2, replace=False)) for _ in queries]
        return cls(corpus, queries, queries.tolist(), truth, args, keywords)


@dataclass
class Config:
    """One measured query shape of one system."""

    kind: str  # "unfiltered", "filtered" or "mmr": picks the truth and the ratio baseline
    label: str
    search: SearchFn | None
    note: str = ""
    baseline: bool = False  # the raw row other systems' ratios divide by
    ef_search: int | None = None  # the ef_search phase's setting (None: the default)


@dataclass
class Probe:
    """What one call sent: statement count, rows its search statement returned, plan."""

    statements: int | None = None
    rows: int | None = None
    plan: str = ""


@dataclass
class Result:
    phase: str
    system: str
    config: Config
    stats: Stats | None = None
    mean_results: float | None = None
    recall: float | None = None
    probe: Probe = field(default_factory=Probe)
    note: str = ""


@dataclass
class SharedCollection:
    """One collection of the shared phase, with data of its own."""

    position: int
    share: float
    name: str  # the collection name the stores get
    raw_id: uuid.UUID  # its collection_id in the raw table
    corpus: Corpus  # ids offset by position * ID_STRIDE
    queries: np.ndarray  # like its data: the timed ones, then --warmup more
    rare: np.ndarray  # mask of its tag="rare" rows

    @property
    def label(self) -> str:
        return f"{self.share:.0%}"

    def globals(self, local: np.ndarray) -> np.ndarray:
        """Document indices (as doc_index reads them) of the corpus' positions."""
        return local + self.position * ID_STRIDE


@dataclass
class Shape:
    """One query kind of the shared phase: a collection, with or without the filter,
    and the queries it is asked."""

    collection: SharedCollection
    query: str  # the table's label
    kind: str  # the key of its exact answers in the phase's Workload.truth
    filtered: bool
    queries: np.ndarray
    query_lists: list[list[float]]


@dataclass
class SharedWorkload:
    """The shared phase's collections, its query kinds by phase, and a Workload holding
    every kind's exact answers (for measure_phase)."""

    collections: list[SharedCollection]
    shapes: dict[str, list[Shape]]
    work: Workload

    @classmethod
    def build(cls, args: argparse.Namespace) -> SharedWorkload:
        count, k = args.queries + args.warmup, args.k
        collections = []
        for i, share in enumerate(SHARES):
            n = max(1, round(args.n * share))
            if n >= ID_STRIDE:
                raise SystemExit(f"the shared phase takes at most {ID_STRIDE - 1:,} rows")
            corpus = make_corpus(n, args.dim, seed=args.seed + 10 + i, rare_fraction=args.rare)
            corpus.ids = [doc_id(i * ID_STRIDE + j) for j in range(n)]
            collections.append(
                SharedCollection(
                    position=i,
                    share=share,
                    name=f"bench-{round(share * 100)}pct",
                    raw_id=uuid.UUID(int=RAW_COLLECTION.int + 1 + i),
                    corpus=corpus,
                    queries=corpus.queries(count),
                    rare=np.array([m["tag"] == "rare" for m in corpus.metadatas]),
                )
            )
        # queries like no collection's data: uniform random unit vectors
        unlike = np.random.default_rng(args.seed + 5).standard_normal(
            (count, args.dim), dtype=np.float32
        )
        unlike /= np.linalg.norm(unlike, axis=1, keepdims=True)
        truth: dict[str, np.ndarray] = {}
        shapes: dict[str, list[Shape]] = {"shared": [], "shared, unlike": []}
        for c in collections:
            timed = c.queries[: args.queries]
            for query, mask in (("top-k", None), ("top-k, filter", c.rare)):
                kind = f"{c.label} {query}"
                truth[kind] = c.globals(brute_force_topk(c.corpus.vectors, timed, k, mask))
                shape = Shape(c, query, kind, mask is not None, c.queries, c.queries.tolist())
                shapes["shared"].append(shape)
            if c.position > 0:
                kind = f"{c.label} top-k, unlike"
                answers = brute_force_topk(c.corpus.vectors, unlike[: args.queries], k)
                truth[kind] = c.globals(answers)
                shape = Shape(c, "top-k, random query", kind, False, unlike, unlike.tolist())
                shapes["shared, unlike"].append(shape)
        # measure_phase reads the answers by kind, and the query count from ``queries``
        work = Workload(
            corpus=collections[0].corpus,
            queries=unlike,
            query_lists=[],
            truth=truth,
            args=args,
            keywords=[],
        )
        return cls(collections, shapes, work)


# ------------------------------------------------------------------- plan probing


def explain(url: str, main: str, params: Any, settings: Sequence[tuple[str, Any]] = ()) -> str:
    """EXPLAIN a statement with its parameters after replaying the call's SET statements."""
    with connect_raw(url) as conn:
        try:
            for statement, values in settings:
                conn.execute(statement, values)  # type: ignore[arg-type]
            lines = [r[0] for r in conn.execute("EXPLAIN " + main, params)]  # type: ignore[arg-type]
            return summarize_plan(conn, lines)
        except psycopg.Error as exc:
            return f"explain failed: {type(exc).__name__}"
        finally:
            conn.rollback()


_VECTOR_OPS = ("<=>", "<->", "<#>", "cosine_distance")


def probe_calls(url: str, call: Callable[[], object]) -> Probe:
    """Run ``call`` once while recording the statements it sends through psycopg."""
    with SqlCapture() as capture:
        call()
    statements = capture.statements
    if not statements:
        return Probe(plan="no statements seen")
    searches = [i for i, s in enumerate(statements) if any(op in s.sql for op in _VECTOR_OPS)]
    main = (
        searches[-1]
        if searches
        else max(range(len(statements)), key=lambda i: statements[i].rowcount)
    )
    settings = [
        (s.sql, s.parameters)
        for s in statements[:main]
        if s.sql.lstrip().upper().startswith("SET") or "set_config" in s.sql
    ]
    stmt = statements[main]
    return Probe(len(statements), stmt.rowcount, explain(url, stmt.sql, stmt.parameters, settings))


# ---------------------------------------------------------------------- systems


class System:
    """One system under test: how it loads, indexes and answers queries."""

    name = ""
    #: keep autovacuum from the tables from the moment they exist (the fresh phase on a
    #: server this benchmark does not reconfigure)
    no_autovacuum = False

    def __init__(self, url: str, work: Workload) -> None:
        self.url = url
        self.work = work
        self.args = work.args

    def created(self) -> None:
        """The system's tables exist, still empty: hold autovacuum off them if asked."""
        if self.no_autovacuum:
            hold_autovacuum(self.url)

    def load(self) -> str:
        """Load the corpus; return a note on how."""
        raise NotImplementedError

    def build_hnsw(self) -> str:
        """Build the HNSW index; return a note on how."""
        raise NotImplementedError

    def configs(self, phase: str) -> list[Config]:
        raise NotImplementedError

    def sweep(self, ef_search: int) -> list[Config]:
        """The ef_search phase's top-k and filtered top-k at ``ef_search`` (none: no
        such setting)."""
        return []

    def probe(self, config: Config) -> Probe:
        assert config.search is not None
        search = config.search
        return probe_calls(self.url, lambda: search(0))

    def close(self) -> None:
        """Release connections."""


def _indices(docs: Sequence[Any]) -> list[int]:
    return [doc_index(d.id) for d in docs]


def store_configs(store: Any, work: Workload, queries: Sequence[Any] | None = None) -> list[Config]:
    """The measured calls of a LangChain VectorStore (the same for every store).

    ``queries``: the query vectors as the store is given them (default: the
    ``list[float]`` an Embeddings model returns).
    """
    q = work.query_lists if queries is None else queries
    k, fetch_k, lam = work.args.k, work.args.fetch_k, work.args.lambda_mult

    def top_k(i: int) -> list[int]:
        return _indices(store.similarity_search_by_vector(q[i], k=k))

    def filtered(i: int) -> list[int]:
        return _indices(store.similarity_search_by_vector(q[i], k=k, filter=FILTER))

    def mmr(i: int) -> list[int]:
        return _indices(
            store.max_marginal_relevance_search_by_vector(
                q[i], k=k, fetch_k=fetch_k, lambda_mult=lam
            )
        )

    return [
        Config("unfiltered", "top-k", top_k),
        Config("filtered", "top-k, filter", filtered),
        Config("mmr", f"MMR fetch_k={fetch_k}", mmr),
    ]


class RawSystem(System):
    """Hand-written SQL over one psycopg connection: the baseline."""

    name = "raw psycopg"

    def __init__(self, url: str, work: Workload) -> None:
        super().__init__(url, work)
        self.conn = connect_raw(url)
        self.table = sql.Identifier(RAW_TABLE)
        self.last: tuple[list[tuple[str, Any]], str, Any, int] | None = None

    def load(self) -> str:
        create_raw_table(self.url, RAW_TABLE, self.args.dim)
        self.created()
        copy_binary(
            self.conn, RAW_TABLE, RAW_COLUMNS, RAW_TYPES, raw_rows(self.work.corpus, RAW_COLLECTION)
        )
        self.conn.commit()
        return "COPY BINARY"

    def build_hnsw(self) -> str:
        self.conn.execute(
            sql.SQL(
                "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) "
                "WITH (m = {}, ef_construction = {})"
            ).format(
                sql.Identifier(f"{RAW_TABLE}_hnsw"),
                self.table,
                sql.Literal(self.args.m),
                sql.Literal(self.args.ef_construction),
            )
        )
        self.conn.commit()
        return "CREATE INDEX ... USING hnsw (embedding vector_cosine_ops)"

    def _select(self, filtered: bool, limit: int, vectors: bool, tag: str) -> str:
        # Each variant gets its own statement text (the tag comment), so psycopg's
        # prepared statements never carry one variant's cached plan into another.
        cols = "id, content, metadata, embedding <=> %(q)b AS distance"
        if vectors:
            cols += ", embedding"
        where = "collection_id = %(c)s" + (" AND metadata @> %(f)s" if filtered else "")
        return (
            sql.SQL(
                "/* {tag} */ SELECT {cols} FROM {t} WHERE {where} "
                "ORDER BY embedding <=> %(q)b LIMIT {k}"
            )
            .format(
                tag=sql.SQL(tag.replace("*/", "").replace("%", "%%")),
                cols=sql.SQL(cols),
                t=self.table,
                where=sql.SQL(where),
                k=sql.Literal(limit),
            )
            .as_string(self.conn)
        )

    def _run(
        self,
        sets: list[str],
        statement: str,
        vector: np.ndarray,
        filtered: bool,
        collection: uuid.UUID = RAW_COLLECTION,
    ) -> list[Any]:
        params: dict[str, Any] = {"q": vector, "c": collection}
        if filtered:
            params["f"] = Jsonb(FILTER)
        for s in sets:
            self.conn.execute(s)  # type: ignore[arg-type]
        rows = self.conn.execute(statement, params, binary=True).fetchall()  # type: ignore[arg-type]
        self.conn.commit()
        self.last = ([(s, None) for s in sets], statement, params, len(rows))
        return rows

    def _search(
        self,
        tag: str,
        filtered: bool,
        sets: Sequence[str] = (),
        relaxed: bool = False,
        queries: np.ndarray | None = None,
        collection: uuid.UUID = RAW_COLLECTION,
    ) -> SearchFn:
        stmt = self._select(filtered, self.args.k, False, tag)
        if relaxed:  # relaxed_order may return rows slightly out of order: re-sort them
            stmt = f"WITH r AS MATERIALIZED ({stmt}) SELECT * FROM r ORDER BY distance"
        sets = list(sets)
        vectors = self.work.queries if queries is None else queries

        def search(q: int) -> list[int]:
            rows = self._run(sets, stmt, vectors[q], filtered, collection)
            return [doc_index(r[0]) for r in rows]

        return search

    def _mmr(self, tag: str, sets: Sequence[str] = ()) -> SearchFn:
        stmt = self._select(False, self.args.fetch_k, True, tag)
        sets = list(sets)

        def search(q: int) -> list[int]:
            rows = self._run(sets, stmt, self.work.queries[q], False)
            if not rows:
                return []
            cand = np.stack([r[4] for r in rows])
            chosen = mmr_select(self.work.queries[q], cand, self.args.k, self.args.lambda_mult)
            return [doc_index(rows[i][0]) for i in chosen]

        return search

    def configs(self, phase: str) -> list[Config]:
        fetch_k = self.args.fetch_k
        relaxed = "SET LOCAL hnsw.iterative_scan = relaxed_order"
        # The planner may answer the filter from the GIN (or primary key) index and a
        # sort: exact, no HNSW. With sorts disabled, only the HNSW scan gives the order.
        forced = "SET LOCAL enable_sort = off"
        ef_search = f"SET LOCAL hnsw.ef_search = {int(fetch_k)}"

        def search(kind: str, label: str, sets: Sequence[str] = (), **kw: Any) -> Config:
            filtered = kind == "filtered"
            fn = self._search(label, filtered, sets, relaxed=relaxed in sets)
            return Config(kind, label, fn, **kw)

        def mmr(label: str, sets: Sequence[str] = (), **kw: Any) -> Config:
            return Config("mmr", label, self._mmr(label, sets), **kw)

        out = [
            search("unfiltered", "top-k", baseline=True),
            search("filtered", "top-k, filter", baseline=True),
        ]
        if phase == "hnsw":
            out += [
                search("filtered", "top-k, filter, iterative_scan=relaxed_order", [relaxed]),
                search("filtered", "top-k, filter, HNSW forced (enable_sort=off)", [forced]),
                search(
                    "filtered",
                    "top-k, filter, HNSW forced + iterative_scan=relaxed_order",
                    [forced, relaxed],
                ),
            ]
        out.append(mmr(f"MMR fetch_k={fetch_k}", baseline=True))
        if phase == "hnsw":
            out.append(mmr(f"MMR fetch_k={fetch_k}, ef_search={fetch_k}", [ef_search]))
        return out

    def sweep(self, ef_search: int) -> list[Config]:
        ef = f"SET LOCAL hnsw.ef_search = {int(ef_search)}"
        relaxed = "SET LOCAL hnsw.iterative_scan = relaxed_order"
        top_k = f"top-k, ef_search={ef_search}"
        filtered = f"top-k, filter, ef_search={ef_search}, {README_ADVICE}"
        return [
            Config("unfiltered", top_k, self._search(top_k, False, [ef]), ef_search=ef_search),
            Config(
                "filtered",
                filtered,
                self._search(filtered, True, [ef, relaxed], relaxed=True),
                ef_search=ef_search,
            ),
        ]

    def probe(self, config: Config) -> Probe:
        assert config.search is not None
        config.search(0)
        assert self.last is not None
        sets, statement, params, rows = self.last
        statements = len(sets) + 1
        return Probe(statements, rows, explain(self.url, statement, params, sets))

    def close(self) -> None:
        self.conn.close()


class PGVectorSystem(System):
    """langchain_postgres.PGVector (v1 API), sync, psycopg 3 driver."""

    name = "langchain-postgres PGVector"

    def load(self) -> str:
        self.store = self._store(V1_COLLECTION)
        self.created()
        self._copy(V1_COLLECTION, self.work.corpus)
        return "PGVector() made the tables; rows by COPY BINARY"

    def _store(self, collection: str) -> Any:
        from langchain_postgres import PGVector

        return PGVector(
            BenchEmbeddings(self.args.dim),
            connection=self.url,
            collection_name=collection,
            embedding_length=self.args.dim,
            use_jsonb=True,
        )

    def _copy(self, collection_name: str, corpus: Corpus) -> None:
        """COPY the corpus into the collection's rows of langchain_pg_embedding."""
        with connect_raw(self.url) as conn:
            collection = conn.execute(
                "SELECT uuid FROM langchain_pg_collection WHERE name = %s", (collection_name,)
            ).fetchone()[0]
            rows = (
                (corpus.ids[i], collection, v, corpus.texts[i], Jsonb(corpus.metadatas[i]))
                for i, v in enumerate(corpus.vectors)
            )
            copy_binary(
                conn,
                "langchain_pg_embedding",
                ("id", "collection_id", "embedding", "document", "cmetadata"),
                ("text", "uuid", "vector", "text", "jsonb"),
                rows,
            )
            conn.commit()

    def build_hnsw(self) -> str:
        # PGVector has no index API: the index its docs leave to the user, by hand.
        with connect_raw(self.url) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE INDEX lcpg_v1_hnsw ON langchain_pg_embedding USING hnsw "
                    "(embedding vector_cosine_ops) WITH (m = {}, ef_construction = {})"
                ).format(sql.Literal(self.args.m), sql.Literal(self.args.ef_construction))
            )
            conn.commit()
        return "no index API: CREATE INDEX by hand"

    def configs(self, phase: str) -> list[Config]:
        return store_configs(self.store, self.work)

    def close(self) -> None:
        engine = getattr(self.store, "_engine", None) if hasattr(self, "store") else None
        if engine is not None:
            engine.dispose()


class PGVectorStoreSystem(System):
    """langchain_postgres.PGVectorStore (v2 API): PGEngine over psycopg's async driver."""

    name = "langchain-postgres PGVectorStore"

    def load(self) -> str:
        from langchain_postgres import PGEngine, PGVectorStore

        self.engine = PGEngine.from_connection_string(url=self.url)
        self.engine.init_vectorstore_table(V2_TABLE, self.args.dim, overwrite_existing=True)
        self.created()
        self.store = PGVectorStore.create_sync(
            self.engine, embedding_service=BenchEmbeddings(self.args.dim), table_name=V2_TABLE
        )
        corpus = self.work.corpus
        with connect_raw(self.url) as conn:
            rows = (
                (uuid.UUID(corpus.ids[i]), corpus.texts[i], v, Json(corpus.metadatas[i]))
                for i, v in enumerate(corpus.vectors)
            )
            copy_binary(
                conn,
                V2_TABLE,
                ("langchain_id", "content", "embedding", "langchain_metadata"),
                ("uuid", "text", "vector", "json"),
                rows,
            )
            conn.commit()
        return "init_vectorstore_table() made the table; rows by COPY BINARY"

    def build_hnsw(self) -> str:
        from langchain_postgres.v2.indexes import HNSWIndex

        self.store.apply_vector_index(
            HNSWIndex(m=self.args.m, ef_construction=self.args.ef_construction)
        )
        return "apply_vector_index(HNSWIndex(...))"

    def configs(self, phase: str) -> list[Config]:
        return store_configs(self.store, self.work)

    def sweep(self, ef_search: int) -> list[Config]:
        from langchain_postgres import PGVectorStore
        from langchain_postgres.v2.indexes import HNSWQueryOptions

        store = PGVectorStore.create_sync(
            self.engine,
            embedding_service=BenchEmbeddings(self.args.dim),
            table_name=V2_TABLE,
            index_query_options=HNSWQueryOptions(ef_search=ef_search),
        )
        return [
            replace(c, label=f"{c.label}, ef_search={ef_search}", ef_search=ef_search)
            for c in store_configs(store, self.work)
            if c.kind in ("unfiltered", "filtered")
        ]

    def default_mmr_probe(self) -> Probe:
        """MMR without fetch_k: how many candidates does its default fetch?"""
        q, k = self.work.query_lists, self.args.k
        return probe_calls(
            self.url, lambda: self.store.max_marginal_relevance_search_by_vector(q[0], k=k)
        )

    def close(self) -> None:
        if hasattr(self, "engine"):
            asyncio.run(self.engine.close())


class OursSystem(System):
    """langchain_pgvec.PGVecStore, loaded through add_embeddings."""

    name = "ours PGVecStore"

    def load(self) -> str:
        ours = import_ours()
        if ours.missing:
            raise RuntimeError(f"n/a: {ours.missing}")
        self.ours = ours
        self.store = ours.PGVecStore(
            BenchEmbeddings(self.args.dim),
            connection=self.url,
            collection_name="bench",
            embedding_length=self.args.dim,
            full_text=True,  # for the hybrid row: a generated tsvector column + GIN index
        )
        if self.no_autovacuum:
            self.store.create_tables()  # so that the table exists before its rows
            self.created()
        corpus = self.work.corpus
        self.store.add_embeddings(
            corpus.texts, corpus.vectors, metadatas=corpus.metadatas, ids=corpus.ids
        )
        return "add_embeddings(numpy), with full_text=True"

    def build_hnsw(self) -> str:
        if not hasattr(self.store, "create_index"):
            raise RuntimeError("n/a: PGVecStore.create_index does not exist yet")
        self.store.create_index(
            self.ours.HNSW(m=self.args.m, ef_construction=self.args.ef_construction)
        )
        return "create_index(HNSW(...))"

    def configs(self, phase: str) -> list[Config]:
        store, k = self.store, self.args.k
        words = self.work.keywords

        def hybrid(i: int) -> list[int]:
            return _indices(store.hybrid_search(words[i], k=k, fetch_k=4 * k))

        note = "RRF of the vector leg and a websearch_to_tsquery leg, one statement"
        return [
            # the float32 arrays raw SQL gets too: the ratio is the store's own cost,
            # not that of turning a list of Python floats into a vector
            *store_configs(store, self.work, list(self.work.queries)),
            Config("hybrid", f"hybrid (2 keywords, fetch_k={4 * k})", hybrid, note=note),
        ]

    def sweep(self, ef_search: int) -> list[Config]:
        store, k, q = self.store, self.args.k, list(self.work.queries)

        def top_k(i: int) -> list[int]:
            return _indices(store.similarity_search_by_vector(q[i], k=k, ef_search=ef_search))

        def filtered(i: int) -> list[int]:
            return _indices(
                store.similarity_search_by_vector(q[i], k=k, filter=FILTER, ef_search=ef_search)
            )

        return [
            Config("unfiltered", f"top-k, ef_search={ef_search}", top_k, ef_search=ef_search),
            Config(
                "filtered", f"top-k, filter, ef_search={ef_search}", filtered, ef_search=ef_search
            ),
        ]

    def close(self) -> None:
        close = getattr(getattr(self, "store", None), "close", None)
        if close is not None:
            close()


def shape_configs(
    store: Any, work: Workload, shape: Shape, queries: Sequence[Any] | None = None
) -> list[Config]:
    """A store's call for one query kind of the shared phase (store_configs' top-k or
    filtered top-k), under that kind; ``queries`` as in store_configs."""
    wanted = "filtered" if shape.filtered else "unfiltered"
    q = shape.query_lists if queries is None else queries
    return [
        replace(c, kind=shape.kind, label="")
        for c in store_configs(store, work, q)
        if c.kind == wanted
    ]


class SharedRawSystem(RawSystem):
    """Raw SQL on one table holding the shared phase's three collections."""

    def __init__(self, url: str, work: Workload, shared: SharedWorkload) -> None:
        super().__init__(url, work)
        self.shared = shared

    def load(self) -> str:
        create_raw_table(self.url, RAW_TABLE, self.args.dim)
        collections = sql.Identifier(f"{RAW_TABLE}_collection")
        with self.conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} VALUES (%s)").format(collections),
                [(c.raw_id,) for c in self.shared.collections],
            )
        for c in self.shared.collections:
            rows = raw_rows(c.corpus, c.raw_id)
            copy_binary(self.conn, RAW_TABLE, RAW_COLUMNS, RAW_TYPES, rows)
        self.conn.commit()
        return "COPY BINARY into one table, one collection_id per collection"

    def configs(self, phase: str) -> list[Config]:
        relaxed = "SET LOCAL hnsw.iterative_scan = relaxed_order"
        out = []
        for shape in self.shared.shapes[phase]:
            for label, sets, baseline in (
                (README_ADVICE, [relaxed], True),
                ("plain, no iterative scan", [], False),
            ):
                # a statement text per collection and variant (the tag), as in configs()
                fn = self._search(
                    f"{shape.kind}, {label}",
                    shape.filtered,
                    sets,
                    relaxed=bool(sets),
                    queries=shape.queries,
                    collection=shape.collection.raw_id,
                )
                out.append(Config(shape.kind, label, fn, baseline=baseline))
        return out


class SharedPGVectorSystem(PGVectorSystem):
    """langchain_postgres.PGVector with the three collections in langchain_pg_embedding."""

    def __init__(self, url: str, work: Workload, shared: SharedWorkload) -> None:
        super().__init__(url, work)
        self.shared = shared
        self.stores: dict[str, Any] = {}

    def load(self) -> str:
        for c in self.shared.collections:
            self.stores[c.name] = self._store(c.name)
            self._copy(c.name, c.corpus)
        return "a PGVector() per collection; rows by COPY BINARY"

    def configs(self, phase: str) -> list[Config]:
        return [
            config
            for shape in self.shared.shapes[phase]
            for config in shape_configs(self.stores[shape.collection.name], self.work, shape)
        ]

    def close(self) -> None:
        for store in self.stores.values():
            engine = getattr(store, "_engine", None)
            if engine is not None:
                engine.dispose()


class SharedOursSystem(OursSystem):
    """A PGVecStore per collection, all on the default table; one index for them all."""

    def __init__(self, url: str, work: Workload, shared: SharedWorkload) -> None:
        super().__init__(url, work)
        self.shared = shared
        self.stores: dict[str, Any] = {}

    def load(self) -> str:
        ours = import_ours()
        if ours.missing:
            raise RuntimeError(f"n/a: {ours.missing}")
        self.ours = ours
        for c in self.shared.collections:
            store = ours.PGVecStore(
                BenchEmbeddings(self.args.dim),
                connection=self.url,
                collection_name=c.name,
                embedding_length=self.args.dim,
            )
            self.stores[c.name] = store
            corpus = c.corpus
            store.add_embeddings(
                corpus.texts, corpus.vectors, metadatas=corpus.metadatas, ids=corpus.ids
            )
        # build_hnsw: one create_index on the shared table, through any one store
        self.store = self.stores[self.shared.collections[0].name]
        return "a PGVecStore per collection, add_embeddings(numpy)"

    def configs(self, phase: str) -> list[Config]:
        return [
            config
            for shape in self.shared.shapes[phase]
            for config in shape_configs(
                self.stores[shape.collection.name], self.work, shape, list(shape.queries)
            )
        ]

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


SHARED_CLASSES: dict[str, Callable[[str, Workload, SharedWorkload], System]] = {
    "raw": SharedRawSystem,
    "pgvector": SharedPGVectorSystem,
    "ours": SharedOursSystem,
}

SYSTEM_CLASSES: dict[str, type[System]] = {
    "raw": RawSystem,
    "pgvector": PGVectorSystem,
    "pgvectorstore": PGVectorStoreSystem,
    "ours": OursSystem,
}


# -------------------------------------------------------------------- measuring


def measure_phase(items: list[tuple[System, Config]], phase: str, work: Workload) -> list[Result]:
    """Time every (system, query shape) of a phase, interleaved.

    In round ``r`` every shape runs one query, in an order shuffled anew each round,
    so that a change in machine load during the phase falls on all systems alike
    rather than on whichever was measured then, and no shape always follows the same
    other shape (whose caches, threads or garbage it would inherit). Shape ``s`` runs
    query ``(r + s * stride) % n`` in round ``r``: every shape answers every query once, and
    two shapes of one system never run the same query within ``stride`` rounds. A
    search leaves the index pages its query visited in the CPU's caches; a shape
    that ran the same query right after its own system's other shape would be timed
    warm, and a system with more shapes would be warmed more often.
    """
    results = [Result(phase, system.name, config, note=config.note) for system, config in items]
    live = [j for j, (_, config) in enumerate(items) if config.search is not None]
    n = work.args.queries
    stride = max(1, n // max(1, len(live)))
    samples: dict[int, list[float]] = {j: [] for j in live}
    answers: dict[int, dict[int, list[int]]] = {j: {} for j in live}

    def run(j: int, i: int) -> None:
        search = items[j][1].search
        assert search is not None
        start = time.perf_counter()
        answer = search(i)
        samples[j].append(time.perf_counter() - start)
        answers[j][i] = answer

    failed: set[int] = set()
    # the harness's own objects (a corpus of N documents, the exact answers, every
    # system's state) leave the collector's generations, so that a collection
    # triggered by one system's allocations does not traverse them: each system then
    # pays for its own garbage only
    gc.collect()
    gc.freeze()
    for j in live:
        try:
            for i in range(n, len(work.queries)):  # the warm-up queries, never timed
                items[j][1].search(i)  # type: ignore[misc]
        except Exception as exc:
            results[j].note = error_note(exc)
            failed.add(j)
    order = np.random.default_rng(work.args.seed)
    for r in range(n):
        for s in order.permutation(len(live)).tolist():
            j = live[s]
            if j in failed:
                continue
            try:
                run(j, (r + s * stride) % n)
            except Exception as exc:
                results[j].note = error_note(exc)
                failed.add(j)
    gc.unfreeze()
    for j in live:
        if j in failed:
            continue
        result, kind = results[j], items[j][1].kind
        result.stats = Stats(samples[j])
        result.mean_results = float(np.mean([len(a) for a in answers[j].values()]))
        if kind in work.truth:
            truth = work.truth[kind]
            hits = [
                len(set(a[: work.args.k]) & set(truth[i].tolist())) / len(truth[i])
                for i, a in answers[j].items()
            ]
            result.recall = float(np.mean(hits))
        try:
            result.probe = items[j][0].probe(items[j][1])
        except Exception as exc:
            result.note = error_note(exc)
    return results


def ratio_of(result: Result, results: list[Result]) -> float | None:
    for base in results:
        if (
            base.system == RawSystem.name
            and base.phase == result.phase
            and base.config.kind == result.config.kind
            and base.config.baseline
            and base.stats is not None
            and result.stats is not None
        ):
            return result.stats.median / base.stats.median
    return None


def index_sizes(url: str) -> list[list[str]]:
    with psycopg.connect(conninfo(url)) as conn:
        rows = conn.execute(
            "SELECT c.relname, t.relname, pg_size_pretty(pg_relation_size(c.oid)) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am am ON am.oid = c.relam "
            "WHERE am.amname IN ('hnsw', 'ivfflat') ORDER BY 2"
        ).fetchall()
    return [list(r) for r in rows]


def _note(exc: BaseException) -> str:
    return str(exc) if str(exc).startswith("n/a") else error_note(exc)


def load_systems(candidates: list[System], report: Report) -> tuple[list[System], list[list[str]]]:
    """Load each system; return the loaded ones and the Load table's rows."""
    systems: list[System] = []
    loads: list[list[str]] = []
    for system in candidates:
        report.progress(f"loading {system.name}")
        try:
            with stopwatch() as t:
                how = system.load()
            systems.append(system)
            loads.append([system.name, how, fmt_seconds(t[0])])
        except Exception as exc:
            loads.append([system.name, _note(exc), "n/a"])
            system.close()
    return systems, loads


def build_index(system: System, report: Report, builds: list[list[str]]) -> bool:
    """Build the system's HNSW index, adding a row to ``builds``; whether it got one."""
    report.progress(f"building HNSW for {system.name}")
    try:
        with stopwatch() as t:
            how = system.build_hnsw()
    except Exception as exc:
        builds.append([system.name, _note(exc), "n/a"])
        return False
    builds.append([system.name, how, fmt_seconds(t[0])])
    return True


def query_table(report: Report, results: list[Result], k: int) -> None:
    """The Queries table: one row per system, phase and query shape."""
    rows = []
    for r in results:
        rows.append(
            [
                r.phase,
                r.system,
                r.config.label,
                fmt_ms(r.stats.median if r.stats else None),
                fmt_ms(r.stats.p95 if r.stats else None),
                fmt_ratio(ratio_of(r, results)),
                _mean(r.mean_results),
                _recall(r.recall),
                "n/a" if r.probe.rows is None else r.probe.rows,
                "n/a" if r.probe.statements is None else r.probe.statements,
                r.probe.plan,
                r.note,
            ]
        )
    report.table(
        [
            "phase",
            "system",
            "query",
            "median ms",
            "p95 ms",
            "ratio",
            "results",
            f"recall@{k}",
            "rows fetched",
            "stmts",
            "plan",
            "note",
        ],
        rows,
        "lllrrrrrrrll",
    )


def _mean(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _recall(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


STATISTICS_HEADERS = (
    "table",
    "reltuples",
    "column statistics",
    "ANALYZE runs",
    "autoanalyze runs",
    "VACUUM runs",
    "autovacuum runs",
    "options",
)


def run_indexed(args: argparse.Namespace, url: str, work: Workload, report: Report) -> None:
    """The exact and hnsw phases: every system loaded once, VACUUM ANALYZE, then each
    phase's query shapes (the HNSW builds first for hnsw)."""
    systems: list[System] = []
    try:
        candidates = [SYSTEM_CLASSES[key](url, work) for key in args.systems]
        systems, loads = load_systems(candidates, report)
        maintenance(url, "VACUUM ANALYZE")
        report.add("## Load", "")
        report.table(["system", "how", "seconds"], loads, "llr")

        results: list[Result] = []
        builds: list[list[str]] = []
        indexed: set[str] = set()  # systems whose HNSW index is built
        for phase in (p for p in args.phases if p in INDEXED_PHASES):
            measured: list[tuple[System, Config]] = []
            for system in systems:
                if phase != "exact" and system.name not in indexed:
                    if not build_index(system, report, builds):
                        for config in system.configs(phase):
                            results.append(Result(phase, system.name, config, note="no index"))
                        continue
                    indexed.add(system.name)
                    maintenance(url, "ANALYZE")
                measured += [(system, config) for config in phase_configs(system, phase)]
            report.progress(f"{phase}: {len(measured)} query shapes, interleaved")
            results += measure_phase(measured, phase, work)

        if builds:
            report.add("## HNSW build", "")
            report.table(["system", "how", "seconds"], builds, "llr")
            report.table(["index", "table", "size"], index_sizes(url))

        report.add("## Queries", "")
        query_table(report, results, args.k)
        if "ef_search" in args.phases and args.plot:
            plot_recall_latency(results, args.plot, report)
        report.add(
            "ratio = median latency / raw psycopg's median for the same phase and query kind "
            "(its first row of that kind). results = mean documents returned; rows fetched = "
            "rows the search statement returned for the first query (for MMR: the candidates "
            "actually fetched); stmts = statements sent per call; plan = the scans in EXPLAIN "
            "of that statement.",
            "",
        )
        for system in systems:
            if isinstance(system, PGVectorStoreSystem):
                probe = system.default_mmr_probe()
                report.add(
                    f"- PGVectorStore.max_marginal_relevance_search_by_vector(k={args.k}) with "
                    f"fetch_k left at its default (documented as 20) fetched {probe.rows} "
                    "candidate rows."
                )
    finally:
        for system in systems:
            system.close()


def phase_configs(system: System, phase: str) -> list[Config]:
    """A system's query shapes in an indexed phase: for ef_search, its sweep, or its
    default top-k and filtered top-k when it has no ef_search setting."""
    if phase != "ef_search":
        return system.configs(phase)
    swept = [c for ef in EF_SWEEP for c in system.sweep(ef)]
    if swept:
        return swept
    return [
        replace(c, label=f"{c.label} (no ef_search setting)")
        for c in system.configs("hnsw")
        if c.kind in ("unfiltered", "filtered")
    ]


def plot_recall_latency(results: list[Result], path: str, report: Report) -> None:
    """Recall@k against median latency, a line per system over the ef_search sweep,
    top-k and filtered top-k side by side, written to ``path`` as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import ScalarFormatter
    except ImportError:
        report.progress("matplotlib is not installed: no plot")
        return
    swept = [r for r in results if r.phase == "ef_search" and r.stats and r.recall is not None]
    if not swept:
        return
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    kinds = (("unfiltered", "top-k"), ("filtered", 'top-k, filter {"tag": "rare"}'))
    for ax, (kind, title) in zip(axes, kinds, strict=True):
        for system in dict.fromkeys(r.system for r in swept):
            points = [  # in ef_search order, the order of the sweep
                (r.stats.median * 1000, r.recall, r.config.ef_search)
                for r in swept
                if r.system == system and r.config.kind == kind and r.stats and r.recall is not None
            ]
            if not points:
                continue
            xs, ys, _ = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=system)
            for x, y, ef in points:
                if ef is not None:
                    ax.annotate(
                        str(ef), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7
                    )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel("median latency, ms (log scale)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("recall@10")
    axes[0].legend(fontsize=8, loc="lower right")
    figure.suptitle("HNSW: recall against latency over ef_search (labels: ef_search)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    report.progress(f"plot written to {path}")


def _top_k(system: System, phase: str) -> list[Config]:
    return [c for c in system.configs(phase) if c.kind == "unfiltered"]


def run_fresh(args: argparse.Namespace, url: str, work: Workload, report: Report) -> None:
    """The fresh phase: new tables, autovacuum held off them, no ANALYZE by the harness
    but of the raw table; unfiltered top-k exact, then right after create_index."""
    # the embedded server is ours to reconfigure; any other only gets table options
    table_level = bool(args.url) or args.no_tune
    raw_table = sql.Identifier(RAW_TABLE)
    systems: list[System] = []
    results: list[Result] = []
    builds: list[list[str]] = []
    try:
        with nullcontext() if table_level else autovacuum_held(url):
            candidates = [SYSTEM_CLASSES[key](url, work) for key in args.systems]
            for system in candidates:
                system.no_autovacuum = table_level
            systems, loads = load_systems(candidates, report)
            raw = next((s for s in systems if isinstance(s, RawSystem)), None)
            if raw is not None:
                # ANALYZE, not VACUUM: no table of this phase has been vacuumed (a
                # vacuumed table's pages are all-visible, which makes scans cheaper)
                maintenance(url, sql.SQL("ANALYZE {}").format(raw_table))
            items = [(s, c) for s in systems for c in _top_k(s, "exact")]
            report.progress(f"fresh, exact: {len(items)} query shapes, interleaved")
            results += measure_phase(items, "fresh, exact", work)
            after_load = table_statistics(url)

            items = []
            for system in systems:
                if not build_index(system, report, builds):
                    for config in _top_k(system, "hnsw"):
                        results.append(Result("fresh, hnsw", system.name, config, note="no index"))
                    continue
                if system is raw:
                    maintenance(url, sql.SQL("ANALYZE {}").format(raw_table))
                items += [(system, c) for c in _top_k(system, "hnsw")]
            report.progress(f"fresh, hnsw: {len(items)} query shapes, interleaved")
            results += measure_phase(items, "fresh, hnsw", work)
            after_index = table_statistics(url)
            indexes = index_sizes(url)
    finally:
        for system in systems:
            system.close()

    if table_level:
        how = (
            "autovacuum stays enabled, with thresholds it never reaches "
            "(`autovacuum_vacuum_threshold` and `autovacuum_analyze_threshold` 2147483647, "
            "`autovacuum_vacuum_insert_threshold` -1) set on every table of the schema as "
            "soon as each system's tables existed, before their rows were loaded (a server "
            "given with --url, or --no-tune, is not reconfigured)"
        )
    else:
        how = (
            "autovacuum stays enabled, with thresholds it never reaches "
            "(`autovacuum_vacuum_threshold` and `autovacuum_analyze_threshold` 2147483647, "
            "`autovacuum_vacuum_insert_threshold` -1, by `ALTER SYSTEM` and a reload) for the "
            "phase, reset after it"
        )
    report.add(
        "## Fresh tables: right after a load",
        "",
        "A database of its own, new tables, the same rows and queries. Autovacuum kept from "
        f"running: {how}. The harness ran `ANALYZE {RAW_TABLE}` after the raw table's "
        f"load and `ANALYZE {RAW_TABLE}` after its index build, and no `VACUUM` or `ANALYZE` "
        "on any other table: the statistics the stores' tables have, they gathered themselves "
        "(see the statistics tables).",
        "",
        "### Load",
        "",
    )
    report.table(["system", "how", "seconds"], loads, "llr")
    report.add("### HNSW build", "")
    report.table(["system", "how", "seconds"], builds, "llr")
    report.table(["index", "table", "size"], indexes)
    report.add("### Queries", "")
    query_table(report, results, args.k)
    report.add(
        "phase `fresh, exact`: no vector index, right after the load; `fresh, hnsw`: right "
        "after the system built its HNSW index. ratio = median / raw psycopg's median in the "
        "same phase (raw's table analyzed).",
        "",
        "### Table statistics after the exact measurement",
        "",
    )
    report.table(STATISTICS_HEADERS, after_load, "lrlrrrrl")
    report.add("### Table statistics after the HNSW measurement", "")
    report.table(STATISTICS_HEADERS, after_index, "lrlrrrrl")
    report.add(
        "reltuples = the planner's row estimate in `pg_class` (-1: not known; `VACUUM`, "
        "`ANALYZE` and `CREATE INDEX` set it); column statistics = whether `pg_stats` has "
        "rows for the table (only `ANALYZE` makes them); the counts are those of "
        "`pg_stat_user_tables` (an `ANALYZE` a store runs itself counts as `ANALYZE`).",
        "",
    )


def run_shared(args: argparse.Namespace, url: str, report: Report) -> None:
    """The shared phase: three collections of 90%, 9% and 1% of the rows in one table."""
    report.progress("generating the shared phase's data and brute-force answers")
    shared = SharedWorkload.build(args)
    work = shared.work
    systems: list[System] = []
    results: list[Result] = []
    unlike: list[Result] = []
    builds: list[list[str]] = []
    try:
        candidates: list[System] = [
            SHARED_CLASSES[key](url, work, shared) for key in args.systems if key in SHARED_CLASSES
        ]
        systems, loads = load_systems(candidates, report)
        maintenance(url, "VACUUM ANALYZE")
        indexed = []
        for system in systems:
            if build_index(system, report, builds):
                maintenance(url, "ANALYZE")
                indexed.append(system)
            else:
                for phase in shared.shapes:
                    for config in system.configs(phase):
                        into = results if phase == "shared" else unlike
                        into.append(Result(phase, system.name, config, note="no index"))
        for phase, into in (("shared", results), ("shared, unlike", unlike)):
            items = [(s, c) for s in indexed for c in s.configs(phase)]
            report.progress(f"{phase}: {len(items)} query shapes, interleaved")
            into += measure_phase(items, phase, work)
        indexes = index_sizes(url)
    finally:
        for system in systems:
            system.close()

    sizes = ", ".join(
        f"{c.label}: {len(c.corpus):,} rows ({int(c.rare.sum()):,} rare)"
        for c in shared.collections
    )
    report.add(
        "## Shared table: three collections in one table",
        "",
        f"- data: a database of its own; one table per system holding three collections, "
        f"{sizes}; each collection's vectors from a corpus of its own (seed {args.seed} + 10 + "
        f"its position: its own cluster centres), {args.queries} queries per collection drawn "
        "like that collection's data; recall against brute force over that collection's rows "
        '(with the filter: its rows with {"tag": "rare"}). All tables `VACUUM ANALYZE`d after '
        "the load and `ANALYZE`d after each index build.",
        "- ours: a PGVecStore per collection on the default table, one `create_index(HNSW(...))`; "
        "langchain-postgres PGVector: a PGVector per collection in its `langchain_pg_embedding`, "
        "one HNSW index by hand; raw psycopg: one table with a collection_id per collection, one "
        "HNSW index, queried with `SET LOCAL hnsw.iterative_scan = relaxed_order` and rows "
        "re-sorted by distance (pgvector's README on filtering), and plainly. PGVectorStore is "
        "not measured here: it has no collections (a table per store).",
        "",
        "### Load",
        "",
    )
    report.table(["system", "how", "seconds"], loads, "llr")
    report.add("### HNSW build", "")
    report.table(["system", "how", "seconds"], builds, "llr")
    report.table(["index", "table", "size"], indexes)

    def system_label(r: Result) -> str:
        return f"{r.system}: {r.config.label}" if r.config.label else r.system

    def collection_label(shape: Shape) -> str:
        return f"{shape.collection.label} ({len(shape.collection.corpus):,} rows)"

    def query_label(shape: Shape) -> str:
        if not shape.filtered:
            return shape.query
        matching = int(shape.collection.rare.sum())
        return f"{shape.query} ({matching:,} {'row matches' if matching == 1 else 'rows match'})"

    rows = [
        [
            collection_label(shape),
            query_label(shape),
            system_label(r),
            _mean(r.mean_results),
            _recall(r.recall),
            fmt_ms(r.stats.median if r.stats else None),
            fmt_ms(r.stats.p95 if r.stats else None),
            fmt_ratio(ratio_of(r, results)),
            "n/a" if r.probe.statements is None else r.probe.statements,
            r.probe.plan,
            r.note,
        ]
        for shape in shared.shapes["shared"]
        for r in results
        if r.config.kind == shape.kind
    ]
    report.add("### Queries like the collection's data", "")
    report.table(
        [
            "collection",
            "query",
            "system",
            f"results of {args.k}",
            f"recall@{args.k}",
            "median ms",
            "p95 ms",
            "ratio",
            "stmts",
            "plan",
            "note",
        ],
        rows,
        "lllrrrrrrll",
    )
    report.add(
        "ratio = median / the median of raw psycopg with iterative_scan=relaxed_order for the "
        "same collection and query. stmts and plan: of one extra call with the first query.",
        "",
    )
    rows = [
        [
            collection_label(shape),
            query_label(shape),
            system_label(r),
            _mean(r.mean_results),
            _recall(r.recall),
            r.probe.plan,
            r.note,
        ]
        for shape in shared.shapes["shared, unlike"]
        for r in unlike
        if r.config.kind == shape.kind
    ]
    report.add(
        "### Queries like no collection's data",
        "",
        f"{args.queries} uniform random unit vectors (seed {args.seed} + 5), unfiltered, on the "
        "two minority collections (timed interleaved among themselves; timings not shown).",
        "",
    )
    report.table(
        [
            "collection",
            "query",
            "system",
            f"results of {args.k}",
            f"recall@{args.k}",
            "plan",
            "note",
        ],
        rows,
        "lllrrll",
    )


def main() -> None:
    args = parse_args()
    report = Report(args.output)
    base_url = start_server(args)
    try:
        url = fresh_database(base_url, args.database)
        report.add("# Query benchmark", "", *environment(url), "")
        work: Workload | None = None
        if set(args.phases) & {*INDEXED_PHASES, "fresh"}:
            report.progress("generating data and brute-force answers")
            work = Workload.build(args)
            rare = int((np.array([m["tag"] for m in work.corpus.metadatas]) == "rare").sum())
            report.add(
                f"- data: N={args.n:,} synthetic clustered unit vectors (float32), "
                f"dim {args.dim}, seed {args.seed}; {args.queries} queries from the same "
                f'distribution; k={args.k}; filter {{"tag": "rare"}} matches {args.rare:.0%} '
                f"of rows ({rare:,}); MMR fetch_k={args.fetch_k}, "
                f"lambda_mult={args.lambda_mult}; HNSW m={args.m}, "
                f"ef_construction={args.ef_construction}; cosine distance everywhere",
                "",
            )
        if work is not None and set(args.phases) & set(INDEXED_PHASES):
            run_indexed(args, url, work, report)
        if work is not None and "fresh" in args.phases:
            run_fresh(args, fresh_database(base_url, args.database), work, report)
        if "shared" in args.phases:
            run_shared(args, fresh_database(base_url, args.database), report)
        if "text" in args.phases:
            run_text(args, fresh_database(base_url, args.database), report)
    finally:
        report.write()


if __name__ == "__main__":
    main()
