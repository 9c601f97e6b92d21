"""Scale benchmark (issue 17): a million vectors on one box, ours against raw SQL.

Two parts, each on a database of its own (dropped and recreated), the same server
settings for every system measured:

- **main**: ``--n`` (1,000,000) x ``--dim`` (384) clustered synthetic unit vectors
  (``_common.make_corpus``), ~150-character texts, metadata shaped like LangChain's
  loaders' (``_common.loader_metadata``: ten keys) plus a ``tag`` key that is
  ``"rare"`` on ``--rare`` (2%) of the rows, the filter of the filtered searches.
- **big**: ``--big-n`` (250,000) x ``--big-dim`` (1,536), the same kind of data, for
  loading at 1,536 dimensions and the sizes of the float, halfvec and binary indexes.

The systems: ours (``PGVecStore``) and raw SQL (psycopg + pgvector-python, written by
hand, on ``_common.create_raw_table``'s table: the same columns, primary key, GIN
index and collection foreign key as ours). In each part:

1. **Loading**: ours ``add_embeddings`` of the numpy matrix, ``--batch-size`` rows
   (20,000) per call, against raw ``COPY ... (FORMAT BINARY)`` of the same rows in the
   same batches, a commit per batch; the batches of the two systems alternate, so a
   change in machine load, checkpoints or autovacuum falls on both alike (autovacuum is
   held off both tables during the load; both are then vacuumed and analyzed, untimed).
2. **Index builds**: ``store.create_index(HNSW(m=16, ef_construction=64),
   maintenance_work_mem=..., show_progress=True)`` (its progress bar on stderr; the
   call also analyzes the table afterwards) against raw ``CREATE INDEX ... USING hnsw
   (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)`` with ``SET
   LOCAL maintenance_work_mem`` and ``max_parallel_maintenance_workers``; the database
   has both set too (``ALTER DATABASE``), so ours' build connection has them. Then
   ours' quantized ones, ``HNSW(quantization="binary" | "halfvec")``, and, as far as
   ``--budget`` holds them, raw's expression indexes
   ``((binary_quantize(embedding)::bit(n)) bit_hamming_ops)`` and
   ``((embedding::halfvec(n)) halfvec_cosine_ops)`` (a build of a million vectors is
   several minutes on two cores: all of them, for both systems, do not fit an hour).
   A ``CHECKPOINT`` before each.
3. **Sizes**: ``pg_table_size`` of each table, ``pg_relation_size`` of each vector
   index, ``pg_indexes_size`` of each table.
4. **Queries** (main part), k=10, cosine; recall@10 against numpy brute force over
   the matrix (``--queries`` queries drawn from the data's mixture; the filtered
   truth over the tagged rows only):

   - an ``ef_search`` sweep (``--ef-sweep``), unfiltered and filtered, one client:
     recall@10 and p50 per point (the plot); ours passes ``ef_search=`` per call, raw
     sets ``hnsw.ef_search`` (and, filtered, ``hnsw.iterative_scan = relaxed_order``,
     rows re-sorted, as pgvector's README advises for filtering) once per connection;
   - at the smallest swept ``ef_search`` where both reach ``--recall`` (0.95): p50,
     p99 and QPS with 1 client (``--latency-queries``), with ``--clients`` (8) threads
     and with 8 asyncio tasks (ours ``asimilarity_search_by_vector``, raw psycopg
     ``AsyncConnection``\\ s), ``--client-queries`` each, in rounds whose system order
     is shuffled;
   - binary quantization with exact re-ranking: ours ``quantization="binary"`` and
     ``overfetch=`` per call, raw ``SELECT ... FROM (SELECT ... ORDER BY
     binary_quantize(embedding)::bit(n) <~> binary_quantize(q)::bit(n) LIMIT
     overfetch*k) ORDER BY embedding <=> q LIMIT k``, both with ``hnsw.ef_search`` at
     least ``overfetch*k``; recall@10 after re-ranking and p50, next to the float
     index's p50 measured in the same loop. Raw SQL runs these on ours' table, through
     ours' indexes (the same rows and graphs: raw's own would take builds the hour
     does not have).

   Raw SQL fetches what ours returns: id, content, metadata (psycopg parses the jsonb
   into a dict) and the distance, never the ids alone.
5. **langchain-postgres** ``PGVector`` (main part, ``--peer-n`` rows, 20,000: it loads
   about ten times slower, so not a million): ``add_embeddings`` in the same batches,
   an HNSW index made by hand (it has no index API), top-k p50 and recall at its
   default ``ef_search`` (it has no setting), labelled with its N.
6. **big part** queries: recall@10 and p50 of ours' float, halfvec and binary indexes
   (unfiltered, at the main part's ``ef_search``), ours and raw SQL on ours' table.

Every loop is bounded in count and in seconds (``--loop-seconds``); builds that would
end past ``--budget`` seconds from the start (projected from the main part's float
builds) are skipped and say so. The run prints its estimated duration first.

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/scale.py``
(about an hour; ``--quick`` for a smoke test of a couple of minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import math
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from _common import (
    RAW_COLLECTION,
    RAW_COLUMNS,
    RAW_TYPES,
    BenchEmbeddings,
    Corpus,
    Report,
    base_parser,
    brute_force_topk,
    connect_raw,
    conninfo,
    copy_binary,
    create_raw_table,
    doc_index,
    environment,
    error_note,
    fmt_ms,
    fmt_rate,
    fresh_database,
    hold_autovacuum,
    import_ours,
    loader_metadata,
    maintenance,
    make_corpus,
    raw_rows,
    start_server,
    stopwatch,
    summarize_plan,
)
from psycopg import sql
from psycopg.types.json import Jsonb

DEFAULT_DATADIR = Path("/tmp/pgvec-bench-scale")
DEFAULT_DATABASE = "pgvec_bench_scale"
OURS_TABLE = "pgvec_embedding"
RAW_TABLE = "bench_raw"
COLLECTION = "bench"
V1_COLLECTION = "bench_v1"
FILTER = {"tag": "rare"}
EF_SWEEP = (10, 20, 40, 80, 160, 320)
BINARY_OVERFETCH = (10, 20, 40)  # ours' default (10) first
HALFVEC_OVERFETCH = 2  # ours' default
KINDS = ("float", "halfvec", "binary")
STATEMENT_TIMEOUT_S = 60  # every measured search, every system
SESSION_TIMEOUT = {"options": f"-c statement_timeout={STATEMENT_TIMEOUT_S}s"}
BURST_TIMEOUT = 600.0

#: settings of the embedded server on top of _common.EMBEDDED_TUNING (ALTER SYSTEM and
#: a restart, never on a --url server): a million 384-dim rows are ~2.3 GB of table per
#: system plus ~0.8 GB of HNSW index; with ~24 GB of memory, shared_buffers holds the
#: indexes and most of the tables, the rest is in the OS page cache
SCALE_TUNING = {"shared_buffers": "6GB", "max_wal_size": "8GB"}

#: the issue's targets, by measure
TARGETS = {
    "load": ("speed >= 0.90x raw", lambda r: r >= 0.9),
    "build": ("time <= 1.05x raw", lambda r: r <= 1.05),
    "p50": ("<= 1.10x raw", lambda r: r <= 1.10),
    "qps8": (">= 0.90x raw", lambda r: r >= 0.9),
}

# ------------------------------------------------------------ duration estimate
#: calibration of the estimate printed at the start, from runs on this project's
#: 2-core benchmark machine (ingest.md, query.md: an HNSW build of 100,000 x 384 in
#: ~45 s); HNSW build time grows as n log n and, less than linearly, with dimensions
EST_PREP_S_PER_ROW = 30e-6  # make_corpus + loader_metadata, per row
EST_LOAD_ROWS_PER_S = 18_000.0  # per system at 384 dims, loader metadata
EST_VACUUM_S_PER_ROW = 8e-6
EST_BUILD_S = 1.2 * 45.0 / (100_000 * math.log2(100_000))  # float HNSW, 384 dims
EST_BUILD_FACTOR = {"float": 1.0, "halfvec": 1.0, "binary": 0.8}  # binary: of 384-dim float
EST_QUERY_S = {"unfiltered": 0.004, "filtered": 0.012}
EST_PEER_ROWS_PER_S = 900.0


def load_rate_model(dim: int) -> float:
    return EST_LOAD_ROWS_PER_S * (384 / dim) ** 0.6


def build_model(n: int, dim: int, kind: str) -> float:
    """Seconds of one HNSW build of ``n`` x ``dim`` of ``kind``, by the model (a binary
    index's distances are a few popcounts: its graph work, which dimensions barely
    change, is most of its time)."""
    scale = (dim / 384) ** (0.3 if kind == "binary" else 0.8)
    return EST_BUILD_S * n * math.log2(max(n, 2)) * scale * EST_BUILD_FACTOR[kind]


def parse_args() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(datadir=DEFAULT_DATADIR, database=DEFAULT_DATABASE)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows of the main part")
    parser.add_argument("--dim", type=int, default=384, help="dimensions of the main part")
    parser.add_argument("--big-n", type=int, default=250_000, help="rows of the big part")
    parser.add_argument("--big-dim", type=int, default=1536, help="dimensions of the big part")
    parser.add_argument(
        "--batch-size", type=int, default=20_000, help="rows per add_embeddings call / COPY"
    )
    parser.add_argument("--peer-n", type=int, default=20_000, help="rows for langchain-postgres")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200, help="queries with exact answers")
    parser.add_argument(
        "--latency-queries", type=int, default=1_000, help="queries of the 1-client rows"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent threads / tasks")
    parser.add_argument(
        "--client-queries", type=int, default=100, help="queries per concurrent client"
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the concurrent runs")
    parser.add_argument("--warmup", type=int, default=30, help="untimed queries per config")
    parser.add_argument("--rare", type=float, default=0.02, help='share of tag="rare" rows')
    parser.add_argument("--recall", type=float, default=0.95, help="recall@k to reach")
    parser.add_argument(
        "--ef-sweep",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=EF_SWEEP,
        help="comma-separated hnsw.ef_search values",
    )
    parser.add_argument("--m", type=int, default=16, help="HNSW m")
    parser.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction")
    parser.add_argument(
        "--maintenance-work-mem", default="4GB", help="of every build, both systems"
    )
    parser.add_argument(
        "--parallel-workers",
        type=int,
        default=1,
        help="max_parallel_maintenance_workers of every build (the leader works too)",
    )
    parser.add_argument(
        "--parts",
        default="main,peer,big",
        help="comma-separated subset of main, peer (langchain-postgres, in main's "
        "database: needs main), big",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=3_500.0,
        help="seconds: later builds (and the peer) that would end past this are skipped",
    )
    parser.add_argument(
        "--loop-seconds", type=float, default=120.0, help="upper bound of one timed loop"
    )
    parser.add_argument(
        "--plot",
        default=None,
        help="the recall-latency plot (default benchmarks/results/scale_recall_latency.png; "
        "with --quick: beside --output, or none; '' for none)",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.big_n, args.peer_n, args.batch_size = 20_000, 5_000, 2_000, 5_000
        args.queries, args.latency_queries, args.client_queries = 50, 200, 20
        args.warmup, args.rounds = 5, 2
    if args.output is None and not args.quick:
        args.output = Path("benchmarks/results/scale.md")
    if args.plot is None:
        if not args.quick:
            args.plot = "benchmarks/results/scale_recall_latency.png"
        elif args.output is not None:
            args.plot = str(args.output.with_name(args.output.stem + "_recall_latency.png"))
        else:
            args.plot = ""
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - {"main", "big", "peer"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    for name in ("n", "big_n", "batch_size", "queries", "clients", "client_queries", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.rounds = min(args.rounds, args.client_queries)
    return args


def estimate(args: argparse.Namespace) -> list[tuple[str, float]]:
    """The run's expected duration by step (seconds), from the calibration constants."""
    steps: list[tuple[str, float]] = []
    if "main" in args.parts:
        n, d = args.n, args.dim
        steps.append(("main: data and exact answers", n * EST_PREP_S_PER_ROW * (1 + d / 1536)))
        steps.append(("main: loading, both systems", 2 * n / load_rate_model(d)))
        steps.append(("main: vacuum, analyze", 2 * n * EST_VACUUM_S_PER_ROW))
        steps.append(("main: float HNSW builds, both", 2 * build_model(n, d, "float")))
        steps.append(
            (
                "main: binary HNSW builds, ours (raw's if the budget holds)",
                build_model(n, d, "binary"),
            )
        )
        sweep = len(args.ef_sweep) * 2 * (args.queries + args.warmup)
        latency = 2 * (args.latency_queries + args.warmup)
        concurrent = 2 * 2 * args.clients * args.client_queries / 2  # two cores
        per_shape = sweep + latency + concurrent
        query_s = per_shape * (EST_QUERY_S["unfiltered"] + EST_QUERY_S["filtered"])
        query_s += 4 * len(BINARY_OVERFETCH) * args.queries * EST_QUERY_S["unfiltered"] * 2
        steps.append(("main: queries", query_s))
    if "peer" in args.parts:
        steps.append(
            (
                "peer: langchain-postgres, N rows",
                args.peer_n / EST_PEER_ROWS_PER_S + build_model(args.peer_n, args.dim, "float"),
            )
        )
    if "big" in args.parts:
        n, d = args.big_n, args.big_dim
        steps.append(("big: data and exact answers", n * EST_PREP_S_PER_ROW * (1 + d / 1536)))
        steps.append(("big: loading, both systems", 2 * n / load_rate_model(d)))
        steps.append(("big: vacuum, analyze", 2 * n * EST_VACUUM_S_PER_ROW * d / 384))
        for kind in KINDS:
            steps.append((f"big: ours {kind} HNSW build", build_model(n, d, kind)))
        steps.append(("big: queries", 6 * (args.queries + args.warmup) * 0.006))
    return steps


# --------------------------------------------------------------------- server


def start(args: argparse.Namespace) -> str:
    """The server's URL: --url, or the embedded one in --datadir, tuned for this run."""
    url = start_server(args)
    if args.url or args.no_tune:
        return url
    from langchain_pgvec import embedded

    datadir = Path(args.datadir).expanduser().resolve()
    server = embedded.start(datadir)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        changed = []
        for name, value in SCALE_TUNING.items():
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            if row is None or row[0] != value:
                changed.append(name)
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
    if changed:  # shared_buffers takes a restart
        server.stop()
        server.start()
        url = embedded.url(datadir)
    return url


def database_settings(url: str, args: argparse.Namespace) -> None:
    """Give the scratch database the builds' settings, for every session of every system."""
    settings = {
        "maintenance_work_mem": args.maintenance_work_mem,
        "max_parallel_maintenance_workers": str(args.parallel_workers),
    }
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        database = sql.Identifier(conn.info.dbname)
        for name, value in settings.items():
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    database, sql.Identifier(name), sql.Literal(value)
                )
            )


def session_settings(url: str, names: Sequence[str]) -> str:
    """What a new session of the database sees of ``names``."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT '[1]'::vector")  # loads pgvector, defining its hnsw.* settings
        values = []
        for name in names:
            row = conn.execute(
                sql.SQL("SHOW {}").format(sql.Identifier(*name.split(".")))
            ).fetchone()
            values.append(f"{name}={row[0] if row else '?'}")
    return ", ".join(values)


# ----------------------------------------------------------------------- data


@dataclass
class Data:
    """One part's corpus, its query vectors and their exact answers."""

    label: str
    corpus: Corpus
    queries: np.ndarray  # the answered ones first, then the rest of the pool
    truth: dict[str, np.ndarray]  # shape -> top-k corpus positions of the first queries
    mask: np.ndarray  # the rows the filter matches
    warmup: list[int]  # pool positions of the untimed warm-up queries

    @property
    def n(self) -> int:
        return len(self.corpus)

    @property
    def dim(self) -> int:
        return int(self.corpus.vectors.shape[1])


def exact_topk(
    vectors: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """``brute_force_topk`` in chunks of queries (a million rows x 200 queries is 0.8 GB
    of similarities at once)."""
    chunk = max(1, int(2e8 // max(1, len(vectors))))
    parts = [
        brute_force_topk(vectors, queries[i : i + chunk], k, mask)
        for i in range(0, len(queries), chunk)
    ]
    return np.concatenate(parts)


def make_data(label: str, n: int, dim: int, args: argparse.Namespace) -> Data:
    corpus = make_corpus(n, dim, seed=args.seed, rare_fraction=args.rare)
    metadatas = loader_metadata(n, seed=args.seed)
    for meta, own in zip(metadatas, corpus.metadatas, strict=True):
        meta["tag"] = own["tag"]
    corpus = dataclasses.replace(corpus, metadatas=metadatas)
    pool = max(args.queries, args.latency_queries, args.clients * args.client_queries)
    queries = corpus.queries(pool + args.warmup)
    mask = np.array([m["tag"] == "rare" for m in corpus.metadatas])
    answered = queries[: args.queries]
    truth = {
        "unfiltered": exact_topk(corpus.vectors, answered, args.k),
        "filtered": exact_topk(corpus.vectors, answered, args.k, mask),
    }
    return Data(label, corpus, queries, truth, mask, list(range(pool, pool + args.warmup)))


# -------------------------------------------------------------------- results


@dataclass
class Load:
    part: str
    system: str
    n: int
    batch: int
    seconds: float | None = None
    note: str = ""

    @property
    def rate(self) -> float | None:
        return None if not self.seconds else self.n / self.seconds


@dataclass
class Built:
    part: str
    system: str
    kind: str
    name: str = ""
    seconds: float | None = None
    size: int | None = None
    note: str = ""


@dataclass
class Sample:
    """Timed queries of one configuration: latencies, answers, wall time."""

    latencies: list[float] = field(default_factory=list)
    answers: dict[int, list[int]] = field(default_factory=dict)
    wall: float = 0.0
    error: str = ""

    def pct(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    @property
    def qps(self) -> float | None:
        return len(self.latencies) / self.wall if self.wall else None

    def recall(self, truth: np.ndarray, k: int) -> float | None:
        scored = [i for i in self.answers if i < len(truth)]
        if not scored:
            return None
        hits = [len(set(self.answers[i]) & set(truth[i].tolist())) for i in scored]
        return float(np.mean(hits)) / k


@dataclass
class Point:
    """One measured query configuration."""

    part: str
    system: str
    shape: str  # "unfiltered" / "filtered"
    mode: str  # "1 client", "8 threads", "8 async tasks"
    index: str  # "float", "halfvec", "binary"
    ef: int | None
    sample: Sample
    recall: float | None = None
    overfetch: int | None = None
    plan: str = ""
    phase: str = ""  # "sweep", "chosen", "quantized"


@dataclass
class Results:
    loads: list[Load] = field(default_factory=list)
    builds: list[Built] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    tables: list[list[Any]] = field(default_factory=list)  # part, system, table, sizes
    chosen: dict[str, int] = field(default_factory=dict)  # shape -> ef_search
    chosen_note: dict[str, str] = field(default_factory=dict)
    peer: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)
    env: list[str] = field(default_factory=list)


class Budget:
    """The run's clock, and the build model scaled by the builds measured so far."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.scale: float | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def observe(self, n: int, dim: int, kind: str, seconds: float) -> None:
        if kind == "float" and self.scale is None:
            self.scale = seconds / build_model(n, dim, kind)

    def projected(self, n: int, dim: int, kind: str) -> float:
        return build_model(n, dim, kind) * (self.scale or 1.0)

    def allows(self, seconds: float) -> bool:
        return self.elapsed() + seconds <= self.seconds


# ----------------------------------------------------------------------- searching

Search = Callable[[int], list[int]]  # pool position -> corpus positions of the results
ASearch = Callable[[int], Awaitable[list[int]]]


class RawClient:
    """One autocommit psycopg connection of the hand-written baseline; its ``hnsw.*``
    settings are SET once per connection, as a hand-written application sets them."""

    def __init__(self, url: str) -> None:
        from pgvector.psycopg import register_vector

        self.conn = psycopg.connect(conninfo(url), autocommit=True, **SESSION_TIMEOUT)
        register_vector(self.conn)
        self.settings: dict[str, str] = {}

    def configure(self, settings: dict[str, str]) -> None:
        for name, value in settings.items():
            if self.settings.get(name) != value:
                self.conn.execute(
                    sql.SQL("SET {} = {}").format(
                        sql.Identifier(*name.split(".")), sql.Literal(value)
                    )
                )
                self.settings[name] = value

    def generic_plan(self) -> str:
        """The generic plan of this connection's prepared statements, if the server
        switched one to it (after five runs, when it costs no more than the custom
        plans did): ``EXPLAIN (GENERIC_PLAN)`` of its text (PostgreSQL 16+)."""
        try:
            texts = self.conn.execute(
                "SELECT statement FROM pg_prepared_statements WHERE generic_plans > 0"
            ).fetchall()
            plans = []
            for (text,) in texts:
                lines = self.conn.execute(
                    sql.SQL("EXPLAIN (GENERIC_PLAN) {}").format(sql.SQL(text))
                ).fetchall()
                plans.append(summarize_plan(self.conn, [r[0] for r in lines]))
        except psycopg.Error as exc:
            return f"generic plan: explain failed ({type(exc).__name__})"
        return "; ".join(f"generic plan: {p}" for p in plans)

    def close(self) -> None:
        self.conn.close()


def raw_settings(ef: int, filtered: bool) -> dict[str, str]:
    return {
        "hnsw.ef_search": str(ef),
        "hnsw.iterative_scan": "relaxed_order" if filtered else "off",
    }


def raw_statement(
    table: str, k: int, dim: int, filtered: bool, kind: str = "float", fetch: int = 0
) -> sql.Composed:
    """The hand-written search: id, content, metadata and distance of the k nearest.

    float: ``ORDER BY embedding <=> q LIMIT k`` (filtered: with the README's re-sort of
    a relaxed iterative scan); halfvec / binary: the quantized index's ``fetch``
    candidates, in its own expression's order, ranked again by the exact distance."""
    where = sql.SQL("collection_id = %(c)s")
    if filtered:
        where = where + sql.SQL(" AND metadata @> %(f)s")
    columns = sql.SQL("id, content, metadata, embedding <=> %(q)b AS distance")
    if kind == "float":
        inner = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY embedding <=> %(q)b LIMIT {}").format(
            columns, sql.Identifier(table), where, sql.Literal(k)
        )
        if not filtered:
            return inner
        return sql.SQL("WITH r AS MATERIALIZED ({}) SELECT * FROM r ORDER BY distance").format(
            inner
        )
    if kind == "halfvec":
        key = sql.SQL("embedding::halfvec({d}) <=> %(q)b::halfvec({d})").format(d=sql.Literal(dim))
    else:
        key = sql.SQL("binary_quantize(embedding)::bit({d}) <~> binary_quantize(%(q)b)::bit({d})")
        key = key.format(d=sql.Literal(dim))
    return sql.SQL(
        "SELECT id, content, metadata, distance FROM (SELECT {} FROM {} WHERE {} "
        "ORDER BY {} LIMIT {}) AS candidates ORDER BY distance LIMIT {}"
    ).format(columns, sql.Identifier(table), where, key, sql.Literal(fetch), sql.Literal(k))


def raw_params(
    vector: np.ndarray, filtered: bool, collection: uuid.UUID = RAW_COLLECTION
) -> dict[str, Any]:
    params: dict[str, Any] = {"q": vector, "c": collection}
    if filtered:
        params["f"] = Jsonb(FILTER)
    return params


def raw_search(
    client: RawClient,
    statement: sql.Composed,
    queries: np.ndarray,
    filtered: bool,
    collection: uuid.UUID = RAW_COLLECTION,
) -> Search:
    def search(i: int) -> list[int]:
        params = raw_params(queries[i], filtered, collection)
        rows = client.conn.execute(statement, params, binary=True)
        # (id, content, metadata dict, distance): what a Document carries
        hits = [(r[0], r[1], r[2], r[3]) for r in rows.fetchall()]
        return [doc_index(h[0]) for h in hits]

    return search


def raw_plan(
    client: RawClient,
    statement: sql.Composed,
    vector: np.ndarray,
    filtered: bool,
    collection: uuid.UUID = RAW_COLLECTION,
) -> str:
    try:
        rows = client.conn.execute(
            sql.SQL("EXPLAIN ") + statement, raw_params(vector, filtered, collection), binary=True
        ).fetchall()
        return summarize_plan(client.conn, [r[0] for r in rows])
    except psycopg.Error as exc:
        return f"explain failed: {type(exc).__name__}"


def ours_search(
    store: Any, queries: Sequence[Any], k: int, filtered: bool, settings: dict[str, Any]
) -> Search:
    flt = FILTER if filtered else None

    def search(i: int) -> list[int]:
        docs = store.similarity_search_by_vector(queries[i], k=k, filter=flt, **settings)
        return [doc_index(d.id) for d in docs]

    return search


def ours_plan(
    store: Any, url: str, vector: Any, k: int, filtered: bool, settings: dict[str, Any]
) -> str:
    try:
        text = store.explain(vector, k=k, filter=FILTER if filtered else None, **settings)
        with connect_raw(url, autocommit=True) as conn:
            return summarize_plan(conn, text.splitlines())
    except Exception as exc:
        return f"explain failed: {type(exc).__name__}"


def serial(
    searches: dict[str, Search], positions: Sequence[int], warmup: Sequence[int], seconds: float
) -> dict[str, Sample]:
    """One client: every query runs on every system in turn (the order rotating), so a
    change in machine load falls on all alike; bounded by ``seconds``."""
    out = {name: Sample() for name in searches}
    for name, search in searches.items():
        try:
            for i in warmup:
                search(i)
        except Exception as exc:
            out[name].error = error_note(exc)
    live = [name for name in searches if not out[name].error]
    deadline = time.monotonic() + seconds
    for step, i in enumerate(positions):
        if time.monotonic() > deadline:
            break
        shift = step % max(1, len(live))
        for name in live[shift:] + live[:shift]:
            sample = out[name]
            if sample.error:
                continue
            try:
                start = time.perf_counter()
                answer = searches[name](i)
                sample.latencies.append(time.perf_counter() - start)
                sample.answers[i] = answer
            except Exception as exc:
                sample.error = error_note(exc)
    for sample in out.values():
        sample.wall = sum(sample.latencies)
    return out


#: one client's burst: (first start, last end, latencies, answers by query)
Burst = tuple[float, float, list[float], dict[int, list[int]]]


def _schedule(
    names: list[str],
    clients: int,
    per_client: int,
    rounds: int,
    warmup: Sequence[int],
    seconds: float,
    seed: int,
    out: dict[str, Sample],
) -> Iterator[tuple[str, list[list[int]], bool]]:
    """The bursts of :func:`threaded` and :func:`tasks`: (system, queries per client,
    timed). An untimed warm-up burst per system, then ``rounds`` rounds in shuffled
    system order, each client its own block of ``per_client`` queries; a system whose
    burst failed (``out[name].error``) is left out of the rest."""
    blocks = np.array_split(np.arange(per_client), rounds)
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + seconds
    for name in names:
        yield name, [list(warmup)[c::clients] or [warmup[0]] for c in range(clients)], False
    for r in range(rounds):
        if time.monotonic() > deadline:
            break
        for position in rng.permutation(len(names)):
            name = names[int(position)]
            if out[name].error:
                continue
            block = blocks[(r + int(position)) % rounds]
            yield name, [[c * per_client + int(j) for j in block] for c in range(clients)], True


def _record(sample: Sample, results: Sequence[Burst]) -> None:
    """Add one timed burst to ``sample``: its wall time, latencies and answers."""
    sample.wall += max(r[1] for r in results) - min(r[0] for r in results)
    for _, _, latencies, answers in results:
        sample.latencies.extend(latencies)
        sample.answers.update(answers)


def threaded(
    systems: dict[str, list[Search]],
    per_client: int,
    rounds: int,
    warmup: Sequence[int],
    seconds: float,
    seed: int,
) -> dict[str, Sample]:
    """``clients`` threads at once per system (client ``c`` its own ``per_client``
    queries), in ``rounds`` rounds whose system order is shuffled; QPS = queries / the
    bursts' wall time (first start to last end), summed over the rounds."""
    names = list(systems)
    clients = len(systems[names[0]])
    out = {name: Sample() for name in names}

    def burst(name: str, plan: list[list[int]]) -> list[Burst]:
        barrier = threading.Barrier(len(plan))

        def client(c: int) -> Burst:
            search = systems[name][c]
            barrier.wait(timeout=60)
            latencies, answers = [], {}
            first = time.perf_counter()
            for i in plan[c]:
                start = time.perf_counter()
                answers[i] = search(i)
                latencies.append(time.perf_counter() - start)
            return first, time.perf_counter(), latencies, answers

        futures = [pool.submit(client, c) for c in range(len(plan))]
        return [f.result(timeout=BURST_TIMEOUT) for f in futures]

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for name, plan, timed in _schedule(
            names, clients, per_client, rounds, warmup, seconds, seed, out
        ):
            try:
                results = burst(name, plan)
            except Exception as exc:
                out[name].error = error_note(exc)
                continue
            if timed:
                _record(out[name], results)
    return out


async def tasks(
    systems: dict[str, list[ASearch]],
    per_client: int,
    rounds: int,
    warmup: Sequence[int],
    seconds: float,
    seed: int,
) -> dict[str, Sample]:
    """:func:`threaded` with asyncio tasks on one event loop."""
    names = list(systems)
    clients = len(systems[names[0]])
    out = {name: Sample() for name in names}

    async def burst(name: str, plan: list[list[int]]) -> list[Burst]:
        async def client(c: int) -> Burst:
            search = systems[name][c]
            latencies, answers = [], {}
            first = time.perf_counter()
            for i in plan[c]:
                start = time.perf_counter()
                answers[i] = await search(i)
                latencies.append(time.perf_counter() - start)
            return first, time.perf_counter(), latencies, answers

        return list(
            await asyncio.wait_for(
                asyncio.gather(*(client(c) for c in range(len(plan)))), BURST_TIMEOUT
            )
        )

    for name, plan, timed in _schedule(
        names, clients, per_client, rounds, warmup, seconds, seed, out
    ):
        try:
            results = await burst(name, plan)
        except Exception as exc:
            out[name].error = error_note(exc)
            continue
        if timed:
            _record(out[name], results)
    return out


# ---------------------------------------------------------------------- loading


def make_store(url: str, dim: int, clients: int, **kwargs: Any) -> Any:
    ours = import_ours()
    if ours.missing:
        raise RuntimeError(f"n/a: {ours.missing}")
    return ours.PGVecStore(
        BenchEmbeddings(dim),
        connection=url,
        collection_name=COLLECTION,
        embedding_length=dim,
        # searches bounded by a session setting, as raw SQL's: the store's
        # statement_timeout= would add a set_config statement to each search
        engine_kwargs={"pool_size": clients, "connect_args": SESSION_TIMEOUT},
        **kwargs,
    )


def rows_of(corpus: Corpus, start: int, end: int) -> Corpus:
    """Rows ``start`` to ``end`` of the corpus (views of its lists and matrix)."""
    return dataclasses.replace(
        corpus,
        ids=corpus.ids[start:end],
        texts=corpus.texts[start:end],
        metadatas=corpus.metadatas[start:end],
        vectors=corpus.vectors[start:end],
    )


def load_both(
    url: str, store: Any, data: Data, args: argparse.Namespace, report: Report
) -> list[Load]:
    """Ours' add_embeddings and raw COPY BINARY, batch by batch, alternating."""
    corpus = data.corpus
    batch = args.batch_size
    times = {"ours": 0.0, "raw": 0.0}
    errors: dict[str, str] = {}
    deadline = time.monotonic() + max(args.loop_seconds, 40 * data.n / load_rate_model(data.dim))
    with connect_raw(url) as conn:
        for number, start in enumerate(range(0, data.n, batch)):
            if time.monotonic() > deadline:
                errors.setdefault("ours", "stopped: loop time bound")
                errors.setdefault("raw", "stopped: loop time bound")
                break
            part = rows_of(corpus, start, start + batch)
            order = ("raw", "ours") if number % 2 == 0 else ("ours", "raw")
            for system in order:
                if system in errors:
                    continue
                try:
                    with stopwatch() as t:
                        if system == "ours":
                            store.add_embeddings(
                                part.texts, part.vectors, metadatas=part.metadatas, ids=part.ids
                            )
                        else:
                            copy_binary(
                                conn,
                                RAW_TABLE,
                                RAW_COLUMNS,
                                RAW_TYPES,
                                raw_rows(part, RAW_COLLECTION),
                            )
                            conn.commit()
                    times[system] += t[0]
                except Exception as exc:
                    errors[system] = error_note(exc)
                    conn.rollback()
            if number % 10 == 9:
                report.progress(f"{data.label}: loaded {start + len(part):,} of {data.n:,}")
    return [
        Load(
            data.label,
            system,
            data.n,
            batch,
            None if system in errors else times[system],
            errors.get(system, ""),
        )
        for system in ("ours", "raw")
    ]


# ---------------------------------------------------------------------- building


def index_size(url: str, name: str) -> int | None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute("SELECT pg_relation_size(to_regclass(%s))", (name,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def raw_index_ddl(kind: str, dim: int, args: argparse.Namespace) -> tuple[str, sql.Composed]:
    name = f"{RAW_TABLE}_hnsw_{kind}"
    if kind == "float":
        key = sql.SQL("embedding vector_cosine_ops")
    elif kind == "halfvec":
        key = sql.SQL("(embedding::halfvec({})) halfvec_cosine_ops").format(sql.Literal(dim))
    else:
        key = sql.SQL("(binary_quantize(embedding)::bit({})) bit_hamming_ops").format(
            sql.Literal(dim)
        )
    ddl = sql.SQL("CREATE INDEX {} ON {} USING hnsw ({}) WITH (m = {}, ef_construction = {})")
    return name, ddl.format(
        sql.Identifier(name),
        sql.Identifier(RAW_TABLE),
        key,
        sql.Literal(args.m),
        sql.Literal(args.ef_construction),
    )


def build_raw(url: str, part: str, kind: str, dim: int, args: argparse.Namespace) -> Built:
    name, ddl = raw_index_ddl(kind, dim, args)
    maintenance(url, "CHECKPOINT")
    try:
        with connect_raw(url) as conn:
            for setting, value in (
                ("maintenance_work_mem", args.maintenance_work_mem),
                ("max_parallel_maintenance_workers", str(args.parallel_workers)),
            ):
                conn.execute(
                    sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(setting), sql.Literal(value))
                )
            with stopwatch() as t:
                conn.execute(ddl)
                conn.commit()
    except Exception as exc:
        return Built(part, "raw", kind, name, note=error_note(exc))
    return Built(part, "raw", kind, name, t[0], index_size(url, name))


def build_ours(url: str, store: Any, part: str, kind: str, args: argparse.Namespace) -> Built:
    ours = import_ours()
    try:
        spec = (
            ours.HNSW(m=args.m, ef_construction=args.ef_construction)
            if kind == "float"
            else ours.HNSW(m=args.m, ef_construction=args.ef_construction, quantization=kind)
        )
    except TypeError:
        return Built(part, "ours", kind, note="n/a: quantization not available")
    maintenance(url, "CHECKPOINT")
    try:
        with stopwatch() as t:
            name = store.create_index(
                spec, maintenance_work_mem=args.maintenance_work_mem, show_progress=True
            )
    except Exception as exc:
        return Built(part, "ours", kind, note=error_note(exc))
    return Built(part, "ours", kind, name, t[0], index_size(url, name))


def table_sizes(url: str, part: str) -> list[list[Any]]:
    rows = []
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for system, table in (("ours", OURS_TABLE), ("raw", RAW_TABLE)):
            row = conn.execute(
                "SELECT pg_table_size(c), pg_indexes_size(c), pg_total_relation_size(c) "
                "FROM to_regclass(%s) AS c",
                (table,),
            ).fetchone()
            if row is not None and row[0] is not None:
                rows.append([part, system, table, *row])
    return rows


def vacuum_both(url: str) -> None:
    maintenance(
        url,
        sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(OURS_TABLE)),
        sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(RAW_TABLE)),
        "CHECKPOINT",
    )


# ------------------------------------------------------------------------ parts


def run_main(
    args: argparse.Namespace, base_url: str, res: Results, budget: Budget, report: Report
) -> None:
    url = fresh_database(base_url, args.database)
    database_settings(url, args)
    res.env = environment(url)
    names = ("maintenance_work_mem", "max_parallel_maintenance_workers", "hnsw.ef_search")
    res.notes.append(f"a new session of the scratch database sees: {session_settings(url, names)}")
    label = f"{args.n:,} x {args.dim}"
    clock = time.monotonic()
    report.progress(f"main: generating {label} and the exact answers")
    data = make_data(label, args.n, args.dim, args)
    gc.collect()
    gc.freeze()  # a million metadata dicts: never scanned by the collector in timed loops
    res.phases.append(("main: data and exact answers", time.monotonic() - clock))
    store = make_store(url, args.dim, args.clients)
    try:
        clock = time.monotonic()
        store.create_tables()
        create_raw_table(url, RAW_TABLE, args.dim)
        hold_autovacuum(url)
        report.progress(f"main: loading {label}, batches of {args.batch_size:,}")
        res.loads += load_both(url, store, data, args, report)
        res.phases.append(("main: loading, both systems", time.monotonic() - clock))
        clock = time.monotonic()
        vacuum_both(url)
        res.phases.append(("main: vacuum, analyze", time.monotonic() - clock))
        clock = time.monotonic()
        for system in ("raw", "ours"):
            report.progress(f"main: building {system} float HNSW")
            built = (
                build_raw(url, label, "float", args.dim, args)
                if system == "raw"
                else build_ours(url, store, label, "float", args)
            )
            res.builds.append(built)
            if built.seconds:
                budget.observe(args.n, args.dim, "float", built.seconds)
        res.phases.append(("main: float HNSW builds, both", time.monotonic() - clock))
        res.tables += table_sizes(url, label)
        clock = time.monotonic()
        main_queries(args, url, store, data, res, report)
        res.phases.append(("main: queries (float)", time.monotonic() - clock))
        clock = time.monotonic()
        projected = budget.projected(args.n, args.dim, "binary")
        report.progress(f"main: building ours binary HNSW (~{projected:.0f} s)")
        built = build_ours(url, store, label, "binary", args)
        res.builds.append(built)
        res.phases.append(("main: ours binary HNSW build", time.monotonic() - clock))
        if built.seconds is not None:
            clock = time.monotonic()
            quantized_queries(args, url, store, data, res, report, ("binary",))
            res.phases.append(("main: queries (binary)", time.monotonic() - clock))
        # raw's own binary index: its build time only (the queries used ours'), when the
        # budget holds it and the big part's loading and builds after it
        projected = budget.projected(args.n, args.dim, "binary")
        reserve = big_reserve(args, budget)
        if budget.allows(projected + reserve):
            clock = time.monotonic()
            report.progress(f"main: building raw binary HNSW (~{projected:.0f} s)")
            res.builds.append(build_raw(url, label, "binary", args.dim, args))
            res.phases.append(("main: raw binary HNSW build", time.monotonic() - clock))
        else:
            res.builds.append(
                Built(
                    label,
                    "raw",
                    "binary",
                    note=f"skipped: {projected:.0f} s, and the big part's {reserve:.0f} s, "
                    "would end past --budget",
                )
            )
        res.tables += table_sizes(url, label)
        if "peer" in args.parts:
            projected = args.peer_n / EST_PEER_ROWS_PER_S + budget.projected(
                args.peer_n, args.dim, "float"
            )
            if budget.allows(projected):
                clock = time.monotonic()
                run_peer(args, url, data, res, report)
                res.phases.append(("peer: langchain-postgres", time.monotonic() - clock))
            else:
                res.peer["note"] = f"skipped: over --budget (projected {projected:.0f} s)"
    finally:
        store.close()
        gc.unfreeze()
        del data
        gc.collect()


def big_reserve(args: argparse.Namespace, budget: Budget) -> float:
    """Seconds the big part needs for its loading and ours' three builds."""
    if "big" not in args.parts:
        return 0.0
    n, dim = args.big_n, args.big_dim
    load = 2 * n / load_rate_model(dim) + n * EST_PREP_S_PER_ROW * 2
    return load + sum(budget.projected(n, dim, kind) for kind in KINDS)


def chosen_ef(points: list[Point], shape: str, target: float) -> tuple[int, str]:
    """The smallest swept ef_search at which ours and raw both reach ``target``."""
    by_ef: dict[int, dict[str, float | None]] = {}
    for p in points:
        if p.phase == "sweep" and p.shape == shape and p.ef is not None:
            by_ef.setdefault(p.ef, {})[p.system] = p.recall
    for ef in sorted(by_ef):
        recalls = by_ef[ef]
        if all(recalls.get(s) is not None and recalls[s] >= target for s in ("ours", "raw")):
            return ef, ""
    if not by_ef:
        return 40, "no sweep measured: ef_search=40"
    top = max(by_ef)
    return top, f"recall@k {target} not reached by both at any swept ef_search: the largest"


def main_queries(
    args: argparse.Namespace, url: str, store: Any, data: Data, res: Results, report: Report
) -> None:
    k, label = args.k, data.label
    vectors = list(data.queries)  # float32 arrays, as raw SQL gets them
    answered = list(range(args.queries))
    opened: list[RawClient] = []

    def fresh_client(ef: int, filtered: bool) -> RawClient:
        # a connection per configuration: the plans psycopg's prepared statements
        # cached at one ef_search never carry over to another
        client = RawClient(url)
        opened.append(client)
        client.configure(raw_settings(ef, filtered))
        return client

    try:
        # warm-up at the sweep's largest ef_search: the index pages into the caches
        top = max(args.ef_sweep)
        for shape in ("unfiltered", "filtered"):
            filtered = shape == "filtered"
            client = fresh_client(top, filtered)
            searches = {
                "ours": ours_search(store, vectors, k, filtered, {"ef_search": top}),
                "raw": raw_search(
                    client, raw_statement(RAW_TABLE, k, data.dim, filtered), data.queries, filtered
                ),
            }
            serial(searches, [], data.warmup * 3, args.loop_seconds)
            client.close()
        for ef in args.ef_sweep:
            report.progress(f"main: ef_search={ef}")
            for shape in ("unfiltered", "filtered"):
                filtered = shape == "filtered"
                client = fresh_client(ef, filtered)
                statement = raw_statement(RAW_TABLE, k, data.dim, filtered)
                settings = {"ef_search": ef}
                searches = {
                    "ours": ours_search(store, vectors, k, filtered, settings),
                    "raw": raw_search(client, statement, data.queries, filtered),
                }
                samples = serial(searches, answered, data.warmup[:3], args.loop_seconds)
                notes = {"ours": "", "raw": client.generic_plan()}
                client.close()
                for system, sample in samples.items():
                    res.points.append(
                        Point(
                            label,
                            system,
                            shape,
                            "1 client",
                            "float",
                            ef,
                            sample,
                            sample.recall(data.truth[shape], k),
                            plan=notes[system],
                            phase="sweep",
                        )
                    )
        for shape in ("unfiltered", "filtered"):
            ef, note = chosen_ef(res.points, shape, args.recall)
            res.chosen[shape] = ef
            res.chosen_note[shape] = note
        # at the chosen ef_search: 1 client, threads, async tasks
        latency = list(range(args.latency_queries))
        for shape in ("unfiltered", "filtered"):
            filtered, ef = shape == "filtered", res.chosen[shape]
            report.progress(f"main: {shape} at ef_search={ef}: 1 client")
            settings = {"ef_search": ef}
            statement = raw_statement(RAW_TABLE, k, data.dim, filtered)
            client = fresh_client(ef, filtered)
            searches = {
                "ours": ours_search(store, vectors, k, filtered, settings),
                "raw": raw_search(client, statement, data.queries, filtered),
            }
            samples = serial(searches, latency, data.warmup, args.loop_seconds)
            plans = {
                "ours": ours_plan(store, url, vectors[0], k, filtered, settings),
                "raw": raw_plan(client, statement, data.queries[0], filtered),
            }
            if client.generic_plan():
                plans["raw"] += f"; {client.generic_plan()}"
            for system, sample in samples.items():
                res.points.append(
                    Point(
                        label,
                        system,
                        shape,
                        "1 client",
                        "float",
                        ef,
                        sample,
                        sample.recall(data.truth[shape], k),
                        plan=plans[system],
                        phase="chosen",
                    )
                )
            report.progress(f"main: {shape} at ef_search={ef}: {args.clients} threads")
            pool = [fresh_client(ef, filtered) for _ in range(args.clients)]
            systems = {
                "ours": [ours_search(store, vectors, k, filtered, settings)] * args.clients,
                "raw": [raw_search(c, statement, data.queries, filtered) for c in pool],
            }
            samples = threaded(
                systems,
                args.client_queries,
                args.rounds,
                data.warmup,
                args.loop_seconds,
                args.seed,
            )
            for system, sample in samples.items():
                res.points.append(
                    Point(
                        label,
                        system,
                        shape,
                        f"{args.clients} threads",
                        "float",
                        ef,
                        sample,
                        sample.recall(data.truth[shape], k),
                        phase="chosen",
                    )
                )
        report.progress(f"main: {args.clients} async tasks")
        for shape, samples in asyncio.run(async_queries(args, url, data, res.chosen)).items():
            for system, sample in samples.items():
                res.points.append(
                    Point(
                        label,
                        system,
                        shape,
                        f"{args.clients} async tasks",
                        "float",
                        res.chosen[shape],
                        sample,
                        sample.recall(data.truth[shape], k),
                        phase="chosen",
                    )
                )
    finally:
        for c in opened:
            c.close()


async def async_queries(
    args: argparse.Namespace, url: str, data: Data, chosen: dict[str, int]
) -> dict[str, dict[str, Sample]]:
    """Both shapes with asyncio tasks: a store of its own (its async engine lives and
    dies with this event loop) and a psycopg AsyncConnection per raw client."""
    from pgvector.psycopg import register_vector_async

    k = args.k
    vectors = list(data.queries)
    store = make_store(url, data.dim, args.clients, share_engines=False)
    conns: list[psycopg.AsyncConnection[Any]] = []
    out: dict[str, dict[str, Sample]] = {}
    try:
        for _ in range(args.clients):
            conn = await psycopg.AsyncConnection.connect(
                conninfo(url), autocommit=True, **SESSION_TIMEOUT
            )
            await register_vector_async(conn)
            conns.append(conn)
        for shape in ("unfiltered", "filtered"):
            filtered, ef = shape == "filtered", chosen[shape]
            statement = raw_statement(RAW_TABLE, k, data.dim, filtered)
            for conn in conns:
                for name, value in raw_settings(ef, filtered).items():
                    await conn.execute(
                        sql.SQL("SET {} = {}").format(
                            sql.Identifier(*name.split(".")), sql.Literal(value)
                        )
                    )
            flt = FILTER if filtered else None

            def ours_task(i: int, flt: Any = flt, ef: int = ef) -> Awaitable[list[int]]:
                async def run() -> list[int]:
                    docs = await store.asimilarity_search_by_vector(
                        vectors[i], k=k, filter=flt, ef_search=ef
                    )
                    return [doc_index(d.id) for d in docs]

                return run()

            def raw_task(
                conn: psycopg.AsyncConnection[Any],
                statement: sql.Composed = statement,
                filtered: bool = filtered,
            ) -> ASearch:
                async def search(i: int) -> list[int]:
                    cur = await conn.execute(
                        statement, raw_params(data.queries[i], filtered), binary=True
                    )
                    hits = [(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()]
                    return [doc_index(h[0]) for h in hits]

                return search

            out[shape] = await tasks(
                {"ours": [ours_task] * args.clients, "raw": [raw_task(c) for c in conns]},
                args.client_queries,
                args.rounds,
                data.warmup,
                args.loop_seconds,
                args.seed + 1,
            )
    finally:
        for conn in conns:
            await conn.close()
        await store.aclose()
    return out


def quantized_queries(
    args: argparse.Namespace,
    url: str,
    store: Any,
    data: Data,
    res: Results,
    report: Report,
    kinds: Sequence[str],
    built: Sequence[str] | None = None,
) -> None:
    """Unfiltered top-k through ours' float index and each of its quantized ones, in
    one loop: ours, and raw SQL on ours' table (the same rows and index graphs; a
    quantized index of raw's own would cost a build of its own per system, which the
    hour does not hold); ``built``: the kinds of index ours' table has."""
    k, label = args.k, data.label
    ef = res.chosen.get("unfiltered", 40)
    vectors = list(data.queries)
    exists = set(built) if built is not None else None
    opened: list[RawClient] = []
    collection = ours_collection(url)

    def have(system: str, kind: str) -> bool:
        return exists is None or kind in exists

    try:
        configs: list[tuple[str, str, int | None]] = [
            ("ours", "float", None),
            ("raw", "float", None),
        ]
        for kind in kinds:
            overfetches = BINARY_OVERFETCH if kind == "binary" else (HALFVEC_OVERFETCH,)
            configs += [(s, kind, o) for o in overfetches for s in ("ours", "raw")]
        searches: dict[str, Search] = {}
        meta: dict[str, tuple[str, str, int | None, str]] = {}
        raw_clients: dict[str, RawClient] = {}
        for system, kind, overfetch in configs:
            if not have(system, kind):
                continue
            name = f"{system} {kind} {overfetch or ''}".strip()
            fetch = (overfetch or 1) * k
            if system == "ours":
                settings: dict[str, Any] = {"ef_search": ef}
                settings["quantization"] = "off" if kind == "float" else kind
                if overfetch is not None:
                    settings["overfetch"] = overfetch
                searches[name] = ours_search(store, vectors, k, False, settings)
                plan = ours_plan(store, url, vectors[0], k, False, settings)
            else:
                client = RawClient(url)
                opened.append(client)
                client.configure(raw_settings(min(1000, max(ef, fetch)), False))
                statement = raw_statement(OURS_TABLE, k, data.dim, False, kind, fetch)
                searches[name] = raw_search(client, statement, data.queries, False, collection)
                plan = raw_plan(client, statement, data.queries[0], False, collection)
                raw_clients[name] = client
            meta[name] = (system, kind, overfetch, plan)
        report.progress(f"{label}: quantized queries ({', '.join(searches)})")
        samples = serial(searches, list(range(args.queries)), data.warmup, args.loop_seconds)
        for name, sample in samples.items():
            system, kind, overfetch, plan = meta[name]
            generic = raw_clients[name].generic_plan() if name in raw_clients else ""
            plan = f"{plan}; {generic}" if generic else plan
            res.points.append(
                Point(
                    label,
                    system,
                    "unfiltered",
                    "1 client",
                    kind,
                    ef,
                    sample,
                    sample.recall(data.truth["unfiltered"], k),
                    overfetch=overfetch,
                    plan=plan,
                    phase="quantized",
                )
            )
    finally:
        for c in opened:
            c.close()


def ours_collection(url: str) -> uuid.UUID:
    """The id of ours' collection (raw SQL on ours' table scopes to it)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM pgvec_collection WHERE name = %s", (COLLECTION,))
        found = row.fetchone()
    if found is None:
        raise RuntimeError(f"no collection {COLLECTION!r} in pgvec_collection")
    return uuid.UUID(str(found[0]))


def run_peer(args: argparse.Namespace, url: str, data: Data, res: Results, report: Report) -> None:
    """langchain-postgres PGVector on the first --peer-n rows (its own tables)."""
    n = min(args.peer_n, data.n)
    res.peer["n"] = n
    try:
        from langchain_postgres import PGVector
    except ImportError as exc:
        res.peer["note"] = f"n/a: {exc}"
        return
    sub = data.corpus.head(n)
    lists = sub.vectors.tolist()  # its API takes list[list[float]]; converted untimed
    store = PGVector(
        BenchEmbeddings(data.dim),
        connection=url,
        collection_name=V1_COLLECTION,
        embedding_length=data.dim,
        use_jsonb=True,
        engine_args={"connect_args": SESSION_TIMEOUT},
    )
    try:
        report.progress(f"peer: PGVector.add_embeddings of {n:,} rows")
        total = 0.0
        for start in range(0, n, args.batch_size):
            end = start + args.batch_size
            with stopwatch() as t:
                store.add_embeddings(
                    sub.texts[start:end],
                    lists[start:end],
                    metadatas=sub.metadatas[start:end],
                    ids=sub.ids[start:end],
                )
            total += t[0]
        res.peer["load_s"] = total
        maintenance(url, "VACUUM (ANALYZE) langchain_pg_embedding", "CHECKPOINT")
        with stopwatch() as t, connect_raw(url) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE INDEX lcpg_v1_hnsw ON langchain_pg_embedding USING hnsw "
                    "(embedding vector_cosine_ops) WITH (m = {}, ef_construction = {})"
                ).format(sql.Literal(args.m), sql.Literal(args.ef_construction))
            )
            conn.commit()
        res.peer["build_s"] = t[0]
        truth = exact_topk(sub.vectors, data.queries[: args.queries], args.k)
        queries = data.queries.tolist()

        def search(i: int) -> list[int]:
            docs = store.similarity_search_by_vector(queries[i], k=args.k)
            return [doc_index(d.id) for d in docs]

        sample = serial({"pgvector": search}, list(range(args.queries)), data.warmup, 60.0)[
            "pgvector"
        ]
        res.peer["sample"] = sample
        res.peer["recall"] = sample.recall(truth, args.k)
    except Exception as exc:
        res.peer["note"] = error_note(exc)
    finally:
        engine = getattr(store, "_engine", None)
        if engine is not None:
            engine.dispose()


def run_big(
    args: argparse.Namespace, base_url: str, res: Results, budget: Budget, report: Report
) -> None:
    url = fresh_database(base_url, args.database)
    database_settings(url, args)
    if not res.env:
        res.env = environment(url)
    n, dim = args.big_n, args.big_dim
    label = f"{n:,} x {dim}"
    clock = time.monotonic()
    report.progress(f"big: generating {label}")
    data = make_data(label, n, dim, args)
    gc.collect()
    gc.freeze()
    res.phases.append(("big: data and exact answers", time.monotonic() - clock))
    store = make_store(url, dim, args.clients)
    try:
        clock = time.monotonic()
        store.create_tables()
        create_raw_table(url, RAW_TABLE, dim)
        hold_autovacuum(url)
        report.progress(f"big: loading {label}")
        res.loads += load_both(url, store, data, args, report)
        res.phases.append(("big: loading, both systems", time.monotonic() - clock))
        clock = time.monotonic()
        vacuum_both(url)
        res.phases.append(("big: vacuum, analyze", time.monotonic() - clock))
        built: list[str] = []
        # ours' three first (the sizes and the quantized queries), raw's builds after
        order = [("ours", "float"), ("ours", "halfvec"), ("ours", "binary")]
        order += [("raw", "float"), ("raw", "halfvec"), ("raw", "binary")]
        clock = time.monotonic()
        for system, kind in order:
            projected = budget.projected(n, dim, kind)
            if not budget.allows(projected):
                res.builds.append(
                    Built(
                        label,
                        system,
                        kind,
                        note=f"skipped: would end past --budget (projected {projected:.0f} s)",
                    )
                )
                continue
            report.progress(f"big: building {system} {kind} HNSW (~{projected:.0f} s)")
            b = (
                build_ours(url, store, label, kind, args)
                if system == "ours"
                else build_raw(url, label, kind, dim, args)
            )
            res.builds.append(b)
            if b.seconds is not None and system == "ours":
                built.append(kind)
        res.phases.append(("big: HNSW builds", time.monotonic() - clock))
        res.tables += table_sizes(url, label)
        if "float" in built:
            clock = time.monotonic()
            quantized_queries(args, url, store, data, res, report, ("halfvec", "binary"), built)
            res.phases.append(("big: queries", time.monotonic() - clock))
    finally:
        store.close()
        gc.unfreeze()
        del data
        gc.collect()


# ---------------------------------------------------------------------- report


def fmt_mb(size: int | None) -> str:
    return "n/a" if size is None else f"{size / 2**20:,.1f} MB"


def fmt_x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_recall(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def summary_rows(args: argparse.Namespace, res: Results) -> list[list[str]]:
    rows: list[list[str]] = []
    main = f"{args.n:,} x {args.dim}"
    big = f"{args.big_n:,} x {args.big_dim}"
    peer = res.peer

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or not b else a / b

    for part in (main, big):
        loads = {x.system: x for x in res.loads if x.part == part}
        if not loads:
            continue
        ours, raw = loads.get("ours"), loads.get("raw")
        r = ratio(ours.rate if ours else None, raw.rate if raw else None)
        text, check = TARGETS["load"]
        peer_cell = ""
        if part == main and peer.get("load_s"):
            peer_cell = f"{peer['n'] / peer['load_s']:,.0f} (N={peer['n']:,})"
        rows.append(
            [
                f"loading {part}, vectors/s (batches of {args.batch_size:,}, numpy)",
                fmt_rate(ours.rate if ours else None),
                fmt_rate(raw.rate if raw else None),
                fmt_x(r),
                text,
                met(None if r is None else check(r)),
                peer_cell,
            ]
        )
    builds = {(b.part, b.system, b.kind): b for b in res.builds}
    for part in (main, big):
        for kind in KINDS:
            ours, raw = builds.get((part, "ours", kind)), builds.get((part, "raw", kind))
            if ours is None and raw is None:
                continue
            r = ratio(ours.seconds if ours else None, raw.seconds if raw else None)
            text, check = TARGETS["build"] if kind == "float" else ("", None)
            peer_cell = ""
            if part == main and kind == "float" and peer.get("build_s"):
                peer_cell = f"{peer['build_s']:.1f} (N={peer['n']:,}, by hand)"
            rows.append(
                [
                    f"{kind} HNSW build {part}, s",
                    "n/a" if not ours or ours.seconds is None else f"{ours.seconds:.1f}",
                    "n/a" if not raw or raw.seconds is None else f"{raw.seconds:.1f}",
                    fmt_x(r),
                    text,
                    met(None if r is None or check is None else check(r)) if text else "",
                    peer_cell,
                ]
            )
    for part in (main, big):
        for kind in ("float", "halfvec", "binary"):
            ours, raw = builds.get((part, "ours", kind)), builds.get((part, "raw", kind))
            if not ((ours and ours.size) or (raw and raw.size)):
                continue
            rows.append(
                [
                    f"{kind} HNSW index size {part}",
                    fmt_mb(ours.size if ours else None),
                    fmt_mb(raw.size if raw else None),
                    fmt_x(ratio(ours.size if ours else None, raw.size if raw else None)),
                    "",
                    "",
                    "",
                ]
            )
        for kind, target, check in (
            ("binary", "<= 0.10 of float", lambda r: r <= 0.10),
            ("halfvec", "about 0.50 of float", lambda r: 0.4 <= r <= 0.6),
        ):
            cells = []
            values = []
            for system in ("ours", "raw"):
                q, f = builds.get((part, system, kind)), builds.get((part, system, "float"))
                value = ratio(q.size if q else None, f.size if f else None)
                values.append(value)
                cells.append("n/a" if value is None else f"{value:.3f}")
            if values[0] is None and values[1] is None:
                continue
            rows.append(
                [
                    f"{kind} index size / float index size {part}",
                    *cells,
                    "",
                    target,
                    met(None if values[0] is None else check(values[0])),
                    "",
                ]
            )

    def point(
        system: str,
        shape: str,
        mode: str,
        index: str = "float",
        phase: str = "chosen",
        overfetch: int | None = None,
        part: str = main,
    ) -> Point | None:
        for p in res.points:
            if (p.part, p.system, p.shape, p.mode, p.index, p.phase, p.overfetch) == (
                part,
                system,
                shape,
                mode,
                index,
                phase,
                overfetch,
            ):
                return p
        return None

    for shape in ("unfiltered", "filtered"):
        ef = res.chosen.get(shape)
        if ef is None:
            continue
        what = "top-k" if shape == "unfiltered" else f"top-k, {args.rare:.0%} filter"
        o1, r1 = point("ours", shape, "1 client"), point("raw", shape, "1 client")
        if o1 and r1:
            rows.append(
                [
                    f"{what}: recall@{args.k} at ef_search={ef} (1 client, {main})",
                    fmt_recall(o1.recall),
                    fmt_recall(r1.recall),
                    "",
                    f">= {args.recall}",
                    met(None if o1.recall is None else o1.recall >= args.recall),
                    "",
                ]
            )
            r = ratio(o1.sample.pct(50), r1.sample.pct(50))
            text, check = TARGETS["p50"]
            rows.append(
                [
                    f"{what}: p50 ms, 1 client",
                    fmt_ms(o1.sample.pct(50)),
                    fmt_ms(r1.sample.pct(50)),
                    fmt_x(r),
                    text,
                    met(None if r is None else check(r)),
                    peer_p50(peer) if shape == "unfiltered" else "",
                ]
            )
            rows.append(
                [
                    f"{what}: p99 ms, 1 client",
                    fmt_ms(o1.sample.pct(99)),
                    fmt_ms(r1.sample.pct(99)),
                    fmt_x(ratio(o1.sample.pct(99), r1.sample.pct(99))),
                    "",
                    "",
                    "",
                ]
            )
            rows.append(
                [
                    f"{what}: QPS, 1 client",
                    fmt_rate(o1.sample.qps),
                    fmt_rate(r1.sample.qps),
                    fmt_x(ratio(o1.sample.qps, r1.sample.qps)),
                    "",
                    "",
                    "",
                ]
            )
        for mode in (f"{args.clients} threads", f"{args.clients} async tasks"):
            o, r_ = point("ours", shape, mode), point("raw", shape, mode)
            if not (o and r_):
                continue
            r = ratio(o.sample.qps, r_.sample.qps)
            text, check = TARGETS["qps8"]
            rows.append(
                [
                    f"{what}: QPS, {mode} (p50 {fmt_ms(o.sample.pct(50))} / "
                    f"{fmt_ms(r_.sample.pct(50))} ms, p99 {fmt_ms(o.sample.pct(99))} / "
                    f"{fmt_ms(r_.sample.pct(99))} ms)",
                    fmt_rate(o.sample.qps),
                    fmt_rate(r_.sample.qps),
                    fmt_x(r),
                    text,
                    met(None if r is None else check(r)),
                    "",
                ]
            )
    for part in (main, big):
        fo, fr = (
            point(s, "unfiltered", "1 client", "float", "quantized", None, part)
            for s in ("ours", "raw")
        )
        for kind, overfetch in (("binary", BINARY_OVERFETCH[0]), ("halfvec", HALFVEC_OVERFETCH)):
            qo = point("ours", "unfiltered", "1 client", kind, "quantized", overfetch, part)
            qr = point("raw", "unfiltered", "1 client", kind, "quantized", overfetch, part)
            if not (qo or qr):
                continue
            ro, rr = (qo.recall if qo else None), (qr.recall if qr else None)
            if kind == "binary":
                target, ok = f">= {args.recall}", None if ro is None else ro >= args.recall
            else:
                base = fo.recall if fo else None
                target = f"unchanged (float: {fmt_recall(base)})"
                ok = None if ro is None or base is None else ro >= base - 0.01
            rows.append(
                [
                    f"{kind}: recall@{args.k} after re-rank, overfetch {overfetch} {part}",
                    fmt_recall(ro),
                    fmt_recall(rr),
                    "",
                    target,
                    met(ok),
                    "",
                ]
            )
            po, pr = (qo.sample.pct(50) if qo else None), (qr.sample.pct(50) if qr else None)
            fpo = fo.sample.pct(50) if fo else None
            rows.append(
                [
                    f"{kind}: p50 ms, overfetch {overfetch} (float index, same loop: "
                    f"{fmt_ms(fpo)} / {fmt_ms(fr.sample.pct(50) if fr else None)} ms)",
                    fmt_ms(po),
                    fmt_ms(pr),
                    fmt_x(ratio(po, pr)),
                    "<= float index's" if kind == "binary" else "",
                    met(None if po is None or fpo is None else po <= fpo)
                    if kind == "binary"
                    else "",
                    "",
                ]
            )
    return rows


def peer_p50(peer: dict[str, Any]) -> str:
    sample = peer.get("sample")
    if sample is None or sample.pct(50) is None:
        return ""
    return (
        f"{fmt_ms(sample.pct(50))} (N={peer['n']:,}, ef_search 40, "
        f"recall {fmt_recall(peer.get('recall'))})"
    )


def render(args: argparse.Namespace, res: Results, report: Report, started: float) -> None:
    report.add("# Scale benchmark", "", *res.env)
    meta = "ten keys like LangChain's loaders' (`loader_metadata`)"
    report.add(
        f"- data: clustered synthetic unit vectors (`make_corpus`, seed {args.seed}): "
        f"{args.n:,} x {args.dim} (main) and {args.big_n:,} x {args.big_dim} (big); "
        f'~150-char texts; metadata {meta} plus `tag` ("rare" on {args.rare:.0%} of rows, '
        f'the filter `{{"tag": "rare"}}`); k={args.k}, cosine; recall@{args.k} over '
        f"{args.queries} queries against numpy brute force; HNSW m={args.m}, "
        f"ef_construction={args.ef_construction}",
        f"- builds: maintenance_work_mem={args.maintenance_work_mem}, "
        f"max_parallel_maintenance_workers={args.parallel_workers} (`ALTER DATABASE`; raw "
        "also `SET LOCAL`, ours passes `maintenance_work_mem=`); a `CHECKPOINT` before each",
        f"- queries: 1 client = {args.latency_queries} queries per system, interleaved; "
        f"{args.clients} threads / {args.clients} async tasks = {args.client_queries} "
        f"queries each, in {args.rounds} rounds of shuffled system order; raw SQL fetches "
        "id, content, metadata (parsed to a dict) and distance, with its `hnsw.*` settings "
        "SET once per connection (a new connection per configuration, so no prepared "
        "statement's cached plan carries over); ours passes `ef_search=` (and "
        "`quantization=`, `overfetch=`) per call; the float-index queries run on each "
        "system's own table and index, the quantized ones (and the float rows beside "
        "them) on ours' table, through ours' indexes, for both",
        f"- total run time: {time.monotonic() - started:.0f} s",
        "",
    )
    report.add("## Summary against the issue's targets", "")
    report.table(
        ["measure", "ours", "raw SQL", "ours / raw", "target", "met", "langchain-postgres"],
        summary_rows(args, res),
        "lrrrlll",
    )
    report.add(
        "ours / raw: speed ratio for loading and QPS, time ratio for builds and latencies, "
        "size ratio for sizes. Recall rows: at the smallest swept ef_search where both "
        f"systems reach {args.recall}; "
        + "; ".join(
            f"{s}: ef_search={e} {res.chosen_note.get(s, '')}" for s, e in res.chosen.items()
        ),
        "",
    )
    if res.loads:
        report.add("## Loading", "")
        report.table(
            ["part", "system", "N", "batch", "seconds", "vectors/s", "note"],
            [
                [
                    x.part,
                    x.system,
                    f"{x.n:,}",
                    f"{x.batch:,}",
                    "n/a" if x.seconds is None else f"{x.seconds:.1f}",
                    fmt_rate(x.rate),
                    x.note,
                ]
                for x in res.loads
            ],
            "llrrrrl",
        )
    if res.builds or res.tables:
        report.add("## Index builds and sizes", "")
        report.table(
            ["part", "system", "index", "name", "build s", "size", "note"],
            [
                [
                    b.part,
                    b.system,
                    b.kind,
                    f"`{b.name}`" if b.name else "",
                    "n/a" if b.seconds is None else f"{b.seconds:.1f}",
                    fmt_mb(b.size),
                    b.note,
                ]
                for b in res.builds
            ],
            "llllrrl",
        )
        seen: dict[tuple[str, str], list[Any]] = {}
        for row in res.tables:  # the last reading of each table
            seen[(row[0], row[1])] = row
        report.table(
            ["part", "system", "table", "pg_table_size", "pg_indexes_size", "total"],
            [
                [r[0], r[1], f"`{r[2]}`", fmt_mb(r[3]), fmt_mb(r[4]), fmt_mb(r[5])]
                for r in seen.values()
            ],
            "lllrrr",
        )
    sweep = [p for p in res.points if p.phase == "sweep"]
    if sweep:
        report.add("## ef_search sweep (1 client)", "")
        report.table(
            [
                "shape",
                "ef_search",
                "system",
                f"recall@{args.k}",
                "p50 ms",
                "p95 ms",
                "queries",
                "plan note",
                "note",
            ],
            [
                [
                    p.shape,
                    p.ef,
                    p.system,
                    fmt_recall(p.recall),
                    fmt_ms(p.sample.pct(50)),
                    fmt_ms(p.sample.pct(95)),
                    len(p.sample.latencies),
                    p.plan,
                    p.sample.error,
                ]
                for p in sorted(sweep, key=lambda p: (p.shape != "unfiltered", p.ef, p.system))
            ],
            "lrlrrrrll",
        )
    chosen = [p for p in res.points if p.phase in ("chosen", "quantized")]
    if chosen:
        report.add("## Queries at the chosen ef_search, and through quantized indexes", "")
        report.table(
            [
                "part",
                "shape",
                "mode",
                "index",
                "ef_search",
                "overfetch",
                "system",
                f"recall@{args.k}",
                "QPS",
                "p50 ms",
                "p99 ms",
                "queries",
                "plan",
                "note",
            ],
            [
                [
                    p.part,
                    p.shape,
                    p.mode,
                    p.index,
                    p.ef,
                    p.overfetch or "",
                    p.system,
                    fmt_recall(p.recall),
                    fmt_rate(p.sample.qps),
                    fmt_ms(p.sample.pct(50)),
                    fmt_ms(p.sample.pct(99)),
                    len(p.sample.latencies),
                    p.plan,
                    p.sample.error,
                ]
                for p in chosen
            ],
            "llllrrlrrrrrll",
        )
    if res.peer:
        sample = res.peer.get("sample")
        report.add(
            f"- langchain-postgres `PGVector` (N={res.peer.get('n', args.peer_n):,}, its own "
            "tables in the main part's database): `add_embeddings` of lists (its input type) "
            f"in batches of {args.batch_size:,}: "
            + (
                f"{res.peer['n'] / res.peer['load_s']:,.0f} vectors/s"
                if res.peer.get("load_s")
                else "n/a"
            )
            + "; HNSW by hand (no index API): "
            + (f"{res.peer['build_s']:.1f} s" if res.peer.get("build_s") else "n/a")
            + "; top-k at its default ef_search (no setting): "
            + (
                f"p50 {fmt_ms(sample.pct(50))} ms, p99 {fmt_ms(sample.pct(99))} ms, recall@"
                f"{args.k} {fmt_recall(res.peer.get('recall'))}"
                if sample is not None
                else "n/a"
            )
            + (f" ({res.peer['note']})" if res.peer.get("note") else ""),
            "",
        )
    if res.phases:
        report.add(
            "- time by step: "
            + "; ".join(f"{name} {seconds:.0f} s" for name, seconds in res.phases),
            "",
        )
    for note in res.notes:
        report.add(f"- {note}")


def plot(args: argparse.Namespace, res: Results, report: Report) -> None:
    """Recall against p50 latency over the ef_search sweep, a panel per shape; the
    binary index's overfetch points on the unfiltered panel."""
    if not args.plot:
        return
    sweep = [p for p in res.points if p.phase == "sweep" and p.recall is not None]
    if not sweep:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.progress("matplotlib is not installed: no plot")
        return
    colours = {"ours": "tab:blue", "raw": "tab:gray"}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), squeeze=False)
    for ax, shape in zip(axes[0], ("unfiltered", "filtered"), strict=True):
        for system in ("raw", "ours"):
            points = sorted(
                (p for p in sweep if p.shape == shape and p.system == system),
                key=lambda p: p.ef or 0,
            )
            if not points:
                continue
            xs = [p.recall for p in points]
            ys = [(p.sample.pct(50) or 0) * 1000 for p in points]
            name = "ours PGVecStore" if system == "ours" else "raw psycopg SQL"
            ax.plot(xs, ys, marker="o", color=colours[system], label=f"{name}, float HNSW")
            for p, x, y in zip(points, xs, ys, strict=True):
                ax.annotate(
                    str(p.ef),
                    (x, y),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color=colours[system],
                )
        if shape == "unfiltered":
            for system, marker in (("raw", "x"), ("ours", "+")):
                points = sorted(
                    (
                        p
                        for p in res.points
                        if p.phase == "quantized"
                        and p.index == "binary"
                        and p.system == system
                        and p.part == f"{args.n:,} x {args.dim}"
                        and p.recall is not None
                    ),
                    key=lambda p: p.overfetch or 0,
                )
                if points:
                    ax.plot(
                        [p.recall for p in points],
                        [(p.sample.pct(50) or 0) * 1000 for p in points],
                        linestyle="--",
                        marker=marker,
                        color=colours[system],
                        label=f"{system}, binary HNSW + re-rank (overfetch)",
                    )
        ax.axvline(args.recall, color="tab:red", linewidth=0.8, linestyle=":")
        ax.set_yscale("log")
        ax.set_xlabel(f"recall@{args.k}")
        ax.set_ylabel("p50 latency, ms (log)")
        title = "top-k" if shape == "unfiltered" else f"top-k, {args.rare:.0%} filter"
        ax.set_title(f"{title}, {args.n:,} x {args.dim}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle("Recall against latency over hnsw.ef_search (labels), one client")
    figure.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot, dpi=110)
    plt.close(figure)
    report.progress(f"plot written to {args.plot}")


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    report = Report(args.output)
    steps = estimate(args)
    total = sum(s for _, s in steps)
    print(
        f"estimated duration: ~{total / 60:.0f} min on a 2-core machine ("
        + "; ".join(f"{name} ~{s:.0f} s" for name, s in steps)
        + f"); builds that would end past --budget={args.budget:.0f} s are skipped",
        flush=True,
    )
    base_url = start(args)
    res = Results()
    budget = Budget(args.budget)
    res.notes.append(
        f"estimated duration at the start: ~{total / 60:.0f} min "
        f"({'; '.join(f'{name} ~{s:.0f} s' for name, s in steps)})"
    )
    try:
        if "main" in args.parts:
            run_main(args, base_url, res, budget, report)
        if "big" in args.parts:
            run_big(args, base_url, res, budget, report)
    finally:
        if res.env:
            render(args, res, report, started)
            plot(args, res, report)
        report.write()


if __name__ == "__main__":
    main()
