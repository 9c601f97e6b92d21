"""Query benchmark (issue 5): latency and recall of search, filtered search and MMR.

The same N vectors (default 100,000, dim 384, cosine distance) are loaded once into
each system's own tables: a raw table (the baseline, queried with hand-written SQL over
psycopg), langchain-postgres ``PGVector``'s tables, ``PGVectorStore``'s table, and ours
(through ``add_embeddings``). Each system then answers the same queries, first by exact
search (no vector index), then after building an HNSW index (m=16, ef_construction=64):
unfiltered top-k, top-k under a 2%-selective metadata filter (``tag == "rare"``), and
MMR (k=10, fetch_k=100). Recall@k is measured against numpy brute force.

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/query.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    base_parser,
    brute_force_topk,
    connect_raw,
    conninfo,
    copy_binary,
    create_raw_table,
    doc_index,
    environment,
    fmt_ms,
    fmt_ratio,
    fmt_seconds,
    fresh_database,
    import_ours,
    maintenance,
    make_corpus,
    mmr_select,
    raw_rows,
    start_server,
    stopwatch,
)
from psycopg import sql
from psycopg.types.json import Json, Jsonb

SYSTEMS = ("raw", "pgvector", "pgvectorstore", "ours")
PHASES = ("exact", "hnsw")
V1_COLLECTION = "bench"
V2_TABLE = "bench_lcpg_v2"
FILTER = {"tag": "rare"}

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
    args = parser.parse_args()
    if args.quick:
        args.n, args.queries, args.warmup = 5_000, 20, 3
    args.systems = _subset(parser, args.systems, SYSTEMS)
    args.phases = _subset(parser, args.phases, PHASES)
    return args


def _subset(parser: argparse.ArgumentParser, value: str, allowed: tuple[str, ...]) -> list[str]:
    picked = [s.strip() for s in value.split(",") if s.strip()]
    unknown = set(picked) - set(allowed)
    if unknown:
        parser.error(f"unknown {sorted(unknown)}; pick from {allowed}")
    return [s for s in allowed if s in picked]


def _error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    return f"error: {text[:160]}"


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


# ------------------------------------------------------------------- plan probing

_SCAN = re.compile(
    r"(Parallel )?(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)"
    r"(?: Backward)?(?: using| on) (\S+)"
)


def summarize_plan(conn: psycopg.Connection[Any], lines: Sequence[str]) -> str:
    """Reduce an EXPLAIN to its scans, e.g. "hnsw index" or "parallel seq scan + seq scan"."""
    parts: list[str] = []
    for line in lines:
        match = _SCAN.search(line)
        if not match:
            continue
        parallel, kind, name = match.groups()
        if kind == "Seq Scan":
            part = "parallel seq scan" if parallel else "seq scan"
        else:
            row = conn.execute(
                "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                "WHERE c.oid = to_regclass(%s)",
                (name,),
            ).fetchone()
            am = row[0] if row else name
            part = f"bitmap {am}" if kind.startswith("Bitmap") else f"{am} index"
        if part not in parts:
            parts.append(part)
    return " + ".join(parts) or "?"


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

    def __init__(self, url: str, work: Workload) -> None:
        self.url = url
        self.work = work
        self.args = work.args

    def load(self) -> str:
        """Load the corpus; return a note on how."""
        raise NotImplementedError

    def build_hnsw(self) -> str:
        """Build the HNSW index; return a note on how."""
        raise NotImplementedError

    def configs(self, phase: str) -> list[Config]:
        raise NotImplementedError

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
                tag=sql.SQL(tag.replace("*/", "")),
                cols=sql.SQL(cols),
                t=self.table,
                where=sql.SQL(where),
                k=sql.Literal(limit),
            )
            .as_string(self.conn)
        )

    def _run(self, sets: list[str], statement: str, q: int, filtered: bool) -> list[Any]:
        params: dict[str, Any] = {"q": self.work.queries[q], "c": RAW_COLLECTION}
        if filtered:
            params["f"] = Jsonb(FILTER)
        for s in sets:
            self.conn.execute(s)  # type: ignore[arg-type]
        rows = self.conn.execute(statement, params, binary=True).fetchall()  # type: ignore[arg-type]
        self.conn.commit()
        self.last = ([(s, None) for s in sets], statement, params, len(rows))
        return rows

    def _search(
        self, tag: str, filtered: bool, sets: Sequence[str] = (), relaxed: bool = False
    ) -> SearchFn:
        stmt = self._select(filtered, self.args.k, False, tag)
        if relaxed:  # relaxed_order may return rows slightly out of order: re-sort them
            stmt = f"WITH r AS MATERIALIZED ({stmt}) SELECT * FROM r ORDER BY distance"
        sets = list(sets)
        return lambda q: [doc_index(r[0]) for r in self._run(sets, stmt, q, filtered)]

    def _mmr(self, tag: str, sets: Sequence[str] = ()) -> SearchFn:
        stmt = self._select(False, self.args.fetch_k, True, tag)
        sets = list(sets)

        def search(q: int) -> list[int]:
            rows = self._run(sets, stmt, q, False)
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
        from langchain_postgres import PGVector

        self.store = PGVector(
            BenchEmbeddings(self.args.dim),
            connection=self.url,
            collection_name=V1_COLLECTION,
            embedding_length=self.args.dim,
            use_jsonb=True,
        )
        with connect_raw(self.url) as conn:
            collection = conn.execute(
                "SELECT uuid FROM langchain_pg_collection WHERE name = %s", (V1_COLLECTION,)
            ).fetchone()[0]
            corpus = self.work.corpus
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
        return "PGVector() made the tables; rows by COPY BINARY"

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

    def close(self) -> None:
        close = getattr(getattr(self, "store", None), "close", None)
        if close is not None:
            close()


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
            results[j].note = _error(exc)
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
                results[j].note = _error(exc)
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
            result.note = _error(exc)
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


def main() -> None:
    args = parse_args()
    report = Report(args.output)
    base_url = start_server(args)
    systems: list[System] = []
    try:
        url = fresh_database(base_url, args.database)
        report.add("# Query benchmark", "", *environment(url), "")
        report.progress("generating data and brute-force answers")
        work = Workload.build(args)
        report.add(
            f"- data: N={args.n:,} synthetic clustered unit vectors (float32), dim {args.dim}, "
            f"seed {args.seed}; {args.queries} queries from the same distribution; k={args.k}; "
            f'filter {{"tag": "rare"}} matches {args.rare:.0%} of rows '
            f"({int((np.array([m['tag'] for m in work.corpus.metadatas]) == 'rare').sum()):,}); "
            f"MMR fetch_k={args.fetch_k}, lambda_mult={args.lambda_mult}; HNSW m={args.m}, "
            f"ef_construction={args.ef_construction}; cosine distance everywhere",
            "",
        )

        loads: list[list[str]] = []
        for key in args.systems:
            system = SYSTEM_CLASSES[key](url, work)
            report.progress(f"loading {system.name}")
            try:
                with stopwatch() as t:
                    how = system.load()
                systems.append(system)
                loads.append([system.name, how, fmt_seconds(t[0])])
            except Exception as exc:
                note = str(exc) if str(exc).startswith("n/a") else _error(exc)
                loads.append([system.name, note, "n/a"])
                system.close()
        maintenance(url, "VACUUM ANALYZE")
        report.add("## Load", "")
        report.table(["system", "how", "seconds"], loads, "llr")

        results: list[Result] = []
        builds: list[list[str]] = []
        for phase in args.phases:
            measured: list[tuple[System, Config]] = []
            for system in systems:
                if phase == "hnsw":
                    report.progress(f"building HNSW for {system.name}")
                    try:
                        with stopwatch() as t:
                            how = system.build_hnsw()
                        builds.append([system.name, how, fmt_seconds(t[0])])
                    except Exception as exc:
                        note = str(exc) if str(exc).startswith("n/a") else _error(exc)
                        builds.append([system.name, note, "n/a"])
                        for config in system.configs(phase):
                            results.append(Result(phase, system.name, config, note="no index"))
                        continue
                    maintenance(url, "ANALYZE")
                measured += [(system, config) for config in system.configs(phase)]
            report.progress(f"{phase}: {len(measured)} query shapes, interleaved")
            results += measure_phase(measured, phase, work)

        if builds:
            report.add("## HNSW build", "")
            report.table(["system", "how", "seconds"], builds, "llr")
            report.table(["index", "table", "size"], index_sizes(url))

        report.add("## Queries", "")
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
                    "n/a" if r.mean_results is None else f"{r.mean_results:.1f}",
                    "n/a" if r.recall is None else f"{r.recall:.3f}",
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
                f"recall@{args.k}",
                "rows fetched",
                "stmts",
                "plan",
                "note",
            ],
            rows,
            "lllrrrrrrrll",
        )
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
        report.write()


if __name__ == "__main__":
    main()
