"""Tenants benchmark: many collections in one embedding table, in three layouts.

``--collections`` (100) collections of ``--rows`` (10,000) rows each, every collection
with clustered data of its own (``make_corpus`` with a seed per collection), are loaded
with ``add_embeddings`` (numpy, in batches of ``--batch``) into three layouts, each in a
fresh database of its own:

- A: one shared table (``partitioned`` unset) and one HNSW index over all of it
  (``create_index(HNSW(m, ef_construction))``);
- B: the same shared table with one partial HNSW index per collection
  (``create_index(HNSW(...), per_collection=True)`` called by each collection's store);
- C: a partitioned table (``partitioned=True``: a partition per collection) and one
  partitioned HNSW index (a graph per partition).

Per layout: load time, index build time, table and index sizes; for ``--sample`` (20)
collections picked with a fixed seed (the same in every layout), recall@k against numpy
brute force over the collection and p50/p95 latency of ``similarity_search_by_vector``,
next to raw psycopg running ``SELECT id FROM t WHERE collection_id = %s ORDER BY
embedding <=> %s LIMIT k`` on the same table (layout A with ``SET hnsw.iterative_scan =
relaxed_order``, as pgvector's README advises for filtered search, and plain; B and C
plain); then ``delete_collection()`` of ``--deletes`` (5) collections against raw
``DELETE FROM t WHERE collection_id = %s`` of as many others, and a ``VACUUM`` of the
table after them. langchain-postgres ``PGVector`` (v1) gets the same collections in its
shared table (in layout A's database, rows by COPY, one HNSW index by hand) and is
measured beside layout A. All systems' queries of a layout are interleaved.

``--phase big-delete`` measures instead what those 10,000-row deletes cannot show: in
fresh databases, ONE large collection (``--big-rows``: 10,000, 100,000, 1,000,000 rows)
plus a small other one (1,000 rows) in the plain table (A, loaded twice) and with
``partitioned=True`` (C), an HNSW index at the sizes up to ``--big-index-max-rows``;
then ``delete_collection()`` on A and C and raw ``DELETE`` on A's twin, each followed
by a ``VACUUM`` of the table (report: ``benchmarks/results/tenants_delete.md``).

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/tenants.py``.
"""

from __future__ import annotations

import argparse
import gc
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from _common import (
    HOLD_AUTOVACUUM,
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
    doc_id,
    doc_index,
    environment,
    error_note,
    fmt_ms,
    fmt_rate,
    fmt_seconds,
    fresh_database,
    import_ours,
    maintenance,
    make_corpus,
    start_server,
    stopwatch,
    summarize_plan,
)
from psycopg import sql
from psycopg.types.json import Jsonb

LAYOUTS = ("A", "B", "C")
LAYOUT_TITLES = {
    "A": "A: shared table, one HNSW index",
    "B": "B: shared table, a partial HNSW index per collection",
    "C": "C: partitioned table, one partitioned HNSW index",
}
TABLE = "pgvec_embedding"  # the stores' default tables
COLLECTION_TABLE = "pgvec_collection"
PGV_TABLE = "langchain_pg_embedding"
ID_STRIDE = 10**7  # collection i's document j has the id doc_id(i * ID_STRIDE + j)
RAW_SQL = "SELECT id FROM {t} WHERE collection_id = %s ORDER BY embedding <=> %s LIMIT {k}"
RAW_DELETE = "DELETE FROM {t} WHERE collection_id = %s"
RELAXED = "SET hnsw.iterative_scan = relaxed_order"
#: per-coordinate noise of a query around the data row it was drawn from (the data's
#: own spread around its cluster centre is 0.6 / sqrt(dim))
QUERY_NOISE = 0.2

#: why the default dimension is 128, from calibration runs of this script on this
#: project's 2-core machine (``--collections 10 --rows 10000 --layouts A,C --no-pgvector
#: --sample 5 --queries 5 --deletes 1``, ``--dim 128`` and ``--dim 384``)
DIM_NOTE = (
    "128, not 384: calibration runs of this script at 100,000 rows (10 x 10,000, layouts "
    "A and C, same server settings) built layout A's single HNSW index in 29.1 s at dim 128 "
    "and 37.4 s at dim 384 (C: 24.8 s and 27.1 s), and the index took 79 MB and 195 MB; at "
    "1M rows this run builds four such indexes (A, B, C, PGVector), several minutes each at "
    "128 already, and at 384 one 1M-row graph (about 1.9 GB) would no longer fit "
    "maintenance_work_mem=1GB: it would not fit the ~25 minutes this 2-core machine had "
    "for the run"
)

PHASES = ("tenants", "big-delete")
BIG_OUTPUT = Path(__file__).resolve().parent / "results" / "tenants_delete.md"
BIG_NAME = "big"  # the large collection of the big-delete phase
SMALL_NAME = "small"  # the other collection beside it
SMALL_ROWS = 1_000

SearchFn = Callable[[int, int], list[int]]  # (collection position, query) -> doc indices


def parse_args() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--collections", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000, help="rows per collection")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=5_000, help="rows per add_embeddings call")
    parser.add_argument("--sample", type=int, default=20, help="collections searched")
    parser.add_argument("--queries", type=int, default=20, help="queries per sampled collection")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed warm-up queries per sampled collection"
    )
    parser.add_argument(
        "--deletes", type=int, default=5, help="collections deleted per system and layout"
    )
    parser.add_argument("--m", type=int, default=16, help="HNSW m")
    parser.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction")
    parser.add_argument(
        "--layouts", default=",".join(LAYOUTS), help=f"comma-separated subset of {LAYOUTS}"
    )
    parser.add_argument(
        "--no-pgvector", action="store_true", help="leave langchain-postgres PGVector out"
    )
    parser.add_argument(
        "--statement-timeout",
        type=float,
        default=30.0,
        help="seconds after which a search or delete statement is cancelled",
    )
    parser.add_argument(
        "--vacuum-timeout", type=float, default=180.0, help="seconds a VACUUM may take"
    )
    parser.add_argument(
        "--query-seconds",
        type=float,
        default=300.0,
        help="a layout's interleaved queries stop after this many seconds",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=45.0,
        help="stages not started within this many minutes of the start are skipped",
    )
    parser.add_argument(
        "--phase",
        choices=PHASES,
        default="tenants",
        help="tenants: the many-collections benchmark above; big-delete: delete ONE large "
        "collection (--big-rows) from a plain and a partitioned table (report defaults to "
        f"{BIG_OUTPUT})",
    )
    parser.add_argument(
        "--big-rows",
        default="10000,100000,1000000",
        help="big-delete: comma-separated sizes of the large collection",
    )
    parser.add_argument(
        "--big-index-max-rows",
        type=int,
        default=100_000,
        help="big-delete: build the HNSW index only at sizes up to this many rows (a "
        "1,000,000-row graph takes ~8 min to build on 2 cores, and the run builds three)",
    )
    parser.add_argument(
        "--big-timeout",
        type=float,
        default=600.0,
        help="big-delete: the stores' and the raw connection's statement_timeout (seconds)",
    )
    parser.add_argument(
        "--dim-note",
        default="",
        help="a sentence for the report on why this dimension (e.g. calibration timings)",
    )
    args = parser.parse_args()
    try:
        args.big_rows = [int(x.replace("_", "")) for x in args.big_rows.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--big-rows: not a comma-separated list of integers: {args.big_rows!r}")
    if args.phase == "big-delete":
        if not args.big_rows or min(args.big_rows) < 1 or max(args.big_rows) >= ID_STRIDE:
            parser.error(f"--big-rows: sizes between 1 and {ID_STRIDE - 1:,}")
        if args.output is None:
            args.output = BIG_OUTPUT
    if args.quick:
        args.collections, args.rows = 5, 2_000
    layouts = [s.strip().upper() for s in args.layouts.split(",") if s.strip()]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        parser.error(f"unknown layouts {sorted(unknown)}; pick from {LAYOUTS}")
    args.layouts = [x for x in LAYOUTS if x in layouts]
    if args.collections < 1 or args.rows < args.k:
        parser.error("need at least one collection and --k rows per collection")
    if args.rows >= ID_STRIDE:
        parser.error(f"--rows must be below {ID_STRIDE:,}")
    return args


# ---------------------------------------------------------------------- workload


def collection_name(position: int) -> str:
    return f"tenant-{position:04d}"


def add_in_batches(store: Any, corpus: Corpus, batch: int) -> None:
    """``store.add_embeddings`` of the whole corpus, ``batch`` rows a call."""
    for lo in range(0, len(corpus), batch):
        hi = lo + batch
        store.add_embeddings(
            corpus.texts[lo:hi],
            corpus.vectors[lo:hi],
            metadatas=corpus.metadatas[lo:hi],
            ids=corpus.ids[lo:hi],
        )


def corpus_of(args: argparse.Namespace, position: int) -> Corpus:
    """Collection ``position``'s documents: a corpus of its own, ids unique overall."""
    corpus = make_corpus(args.rows, args.dim, seed=args.seed + 1000 + position)
    corpus.ids = [doc_id(position * ID_STRIDE + j) for j in range(args.rows)]
    return corpus


@dataclass
class Sampled:
    """A searched collection: its queries (timed, then warm-up) and their exact answers."""

    position: int
    queries: np.ndarray
    truth: np.ndarray  # document indices (doc_index), one row per timed query


@dataclass
class Workload:
    args: argparse.Namespace
    sampled: list[Sampled]
    deleted_ours: list[int]  # positions deleted with delete_collection()
    deleted_raw: list[int]  # positions deleted with raw DELETE

    @classmethod
    def build(cls, args: argparse.Namespace) -> Workload:
        count = min(args.sample, args.collections)
        rng = np.random.default_rng([args.seed, 7])
        picked = sorted(rng.choice(args.collections, size=count, replace=False).tolist())
        sampled = []
        for position in picked:
            corpus = corpus_of(args, position)
            qrng = np.random.default_rng([args.seed, 8, position])
            total = args.queries + args.warmup
            rows = qrng.choice(args.rows, size=total, replace=total > args.rows)
            noise = qrng.standard_normal((total, args.dim), dtype=np.float32)
            queries = corpus.vectors[rows] + noise * (QUERY_NOISE / np.sqrt(args.dim))
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
            queries = queries.astype(np.float32)
            local = brute_force_topk(corpus.vectors, queries[: args.queries], args.k)
            sampled.append(Sampled(position, queries, local + position * ID_STRIDE))
        # deletions: collections not searched first (deletes run after the searches)
        deletes = min(args.deletes, args.collections // 2)
        others = [p for p in range(args.collections) if p not in picked]
        order = np.random.default_rng([args.seed, 9])
        pool = [int(p) for p in order.permutation(others)] + [
            int(p) for p in order.permutation(picked)
        ]
        return cls(args, sampled, pool[:deletes], pool[deletes : 2 * deletes])


# ---------------------------------------------------------------------- results


@dataclass
class Shape:
    """One measured search of one system in a layout."""

    system: str
    call: str
    search: SearchFn
    probe: Callable[[], str] | None = None
    samples: list[float] = field(default_factory=list)
    answers: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    note: str = ""
    plan: str = ""


@dataclass
class Deletion:
    system: str
    how: str
    samples: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    note: str = ""


@dataclass
class LayoutResult:
    layout: str
    loads: list[list[str]] = field(default_factory=list)
    builds: list[list[str]] = field(default_factory=list)
    sizes: list[list[str]] = field(default_factory=list)
    sizes_after: list[list[str]] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    vacuums: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    queried: int = 0  # rounds of interleaved queries run


@dataclass
class Failure:
    layout: str
    call: str
    trace: str


class Budget:
    """The run's time bound: stages not started before the deadline are skipped."""

    def __init__(self, minutes: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + minutes * 60

    def left(self) -> bool:
        return time.monotonic() < self.deadline


# ---------------------------------------------------------------------- helpers


def _plan(url: str, statement: str, params: Any, settings: Sequence[tuple[str, Any]]) -> str:
    """EXPLAIN ``statement`` after replaying ``settings``; the scans of its plan."""
    with connect_raw(url) as conn:
        try:
            for text, values in settings:
                conn.execute(text, values)  # type: ignore[arg-type]
            lines = [r[0] for r in conn.execute("EXPLAIN " + statement, params)]  # type: ignore[arg-type]
            return summarize_plan(conn, lines)
        except psycopg.Error as exc:
            return f"explain failed: {type(exc).__name__}"
        finally:
            conn.rollback()


def probe_store(url: str, call: Callable[[], object]) -> str:
    """Run a store's search once, recording its statements; the plan of its search."""
    with SqlCapture() as capture:
        call()
    statements = capture.statements
    searches = [i for i, s in enumerate(statements) if "<=>" in s.sql or "cosine_distance" in s.sql]
    if not searches:
        return "no search statement seen"
    main = searches[-1]
    settings = [
        (s.sql, s.parameters)
        for s in statements[:main]
        if s.sql.lstrip().upper().startswith("SET") or "set_config" in s.sql
    ]
    plan = _plan(url, statements[main].sql, statements[main].parameters, settings)
    return f"{plan} ({len(statements)} stmts)"


def collection_ids(url: str, table: str, names: Sequence[str]) -> dict[str, uuid.UUID]:
    with psycopg.connect(conninfo(url)) as conn:
        name_col = "name"
        id_col = "uuid" if table == "langchain_pg_collection" else "id"
        rows = conn.execute(
            sql.SQL("SELECT {}, {} FROM {} WHERE {} = ANY(%s)").format(
                sql.Identifier(name_col),
                sql.Identifier(id_col),
                sql.Identifier(table),
                sql.Identifier(name_col),
            ),
            (list(names),),
        ).fetchall()
    return {r[0]: r[1] for r in rows}


SIZE_SQL = """
WITH leaves AS (
  SELECT relid FROM pg_partition_tree(%(t)s::regclass) WHERE isleaf
  UNION SELECT oid FROM pg_class WHERE oid = %(t)s::regclass AND relkind = 'r'),
vec AS (
  SELECT count(*) AS n, coalesce(sum(pg_relation_size(i.indexrelid)), 0) AS bytes
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
  WHERE am.amname = 'hnsw' AND i.indrelid IN (SELECT relid FROM leaves))
SELECT (SELECT count(*) FROM leaves),
       (SELECT sum(pg_table_size(relid)) FROM leaves),
       (SELECT sum(pg_indexes_size(relid)) FROM leaves),
       vec.n, vec.bytes
FROM vec
"""


def table_sizes(url: str, system: str, table: str) -> list[str]:
    with psycopg.connect(conninfo(url)) as conn:
        leaves, heap, indexes, n_vec, vec = conn.execute(SIZE_SQL, {"t": table}).fetchone()
    return [
        system,
        table,
        f"{leaves:,}",
        _mb(heap),
        f"{n_vec:,}",
        _mb(vec),
        _mb(indexes - vec),
        _mb(heap + indexes),
    ]


def _mb(value: float) -> str:
    return f"{value / 2**20:,.0f} MB"


def _short_trace(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(lines[-6:]).rstrip()


# ---------------------------------------------------------------------- systems


class Layout:
    """One layout in its own database: our stores, raw psycopg on their table, and (in
    layout A) langchain-postgres PGVector beside them."""

    def __init__(
        self, layout: str, url: str, work: Workload, report: Report, failures: list[Failure]
    ) -> None:
        self.layout = layout
        self.url = url
        self.work = work
        self.args = work.args
        self.report = report
        self.failures = failures
        self.result = LayoutResult(layout)
        self.ours = import_ours()
        self.stores: dict[int, Any] = {}
        self.pgv_stores: dict[int, Any] = {}
        self.pgv_engine: Any = None
        self.conns: list[psycopg.Connection[Any]] = []

    # -- bookkeeping

    def fail(self, call: str, exc: BaseException) -> str:
        self.failures.append(Failure(self.layout, call, _short_trace(exc)))
        self.report.progress(f"layout {self.layout}: {call} raised {type(exc).__name__}: {exc}")
        return error_note(exc)

    def raw_conn(self, *, relaxed: bool = False) -> psycopg.Connection[Any]:
        conn = connect_raw(self.url, autocommit=True)
        conn.execute(f"SET statement_timeout = {int(self.args.statement_timeout * 1000)}")
        if relaxed:
            conn.execute(RELAXED)
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        for store in self.stores.values():
            try:
                store.close()
            except Exception as exc:
                self.report.progress(f"closing a store: {error_note(exc)}")
        if self.pgv_engine is not None:
            self.pgv_engine.dispose()
        for conn in self.conns:
            conn.close()

    # -- ours

    def _store(self, position: int) -> Any:
        kwargs: dict[str, Any] = {}
        if self.layout == "C":
            kwargs["partitioned"] = True
        return self.ours.PGVecStore(
            BenchEmbeddings(self.args.dim),
            connection=self.url,
            collection_name=collection_name(position),
            embedding_length=self.args.dim,
            statement_timeout=self.args.statement_timeout,
            **kwargs,
        )

    def load_ours(self) -> bool:
        args = self.args
        if self.ours.missing:
            self.result.loads.append(["ours PGVecStore", f"n/a: {self.ours.missing}", "", ""])
            return False
        how = "a PGVecStore per collection" + (", partitioned=True" if self.layout == "C" else "")
        how += f"; add_embeddings(numpy) in batches of {args.batch:,}"
        self.report.progress(f"layout {self.layout}: loading ours")
        elapsed = 0.0
        for position in range(args.collections):
            corpus = corpus_of(args, position)  # generated outside the timed part
            try:
                start = time.perf_counter()
                store = self._store(position)
                add_in_batches(store, corpus, args.batch)
                elapsed += time.perf_counter() - start
            except Exception as exc:
                note = self.fail(
                    f"PGVecStore({collection_name(position)!r}"
                    f"{', partitioned=True' if self.layout == 'C' else ''}).add_embeddings(...)",
                    exc,
                )
                self.result.loads.append(["ours PGVecStore", f"{how}: {note}", "n/a", "n/a"])
                return False
            self.stores[position] = store
        total = args.collections * args.rows
        self.result.loads.append(
            ["ours PGVecStore", how, fmt_seconds(elapsed), fmt_rate(total / elapsed)]
        )
        return True

    def build_ours(self) -> bool:
        spec = self.ours.HNSW(m=self.args.m, ef_construction=self.args.ef_construction)
        self.report.progress(f"layout {self.layout}: building ours' index")
        if self.layout == "B":
            how = (
                f"create_index(HNSW(...), per_collection=True) by each of {len(self.stores)} stores"
            )
            calls = list(self.stores.items())
        else:
            how = "create_index(HNSW(...)) once"
            if self.layout == "C":
                how += " (a partitioned index: one graph per partition)"
            calls = list(self.stores.items())[:1]
        start = time.perf_counter()
        for position, store in calls:
            try:
                store.create_index(
                    spec,
                    show_progress=False,
                    **({"per_collection": True} if self.layout == "B" else {}),
                )
            except Exception as exc:
                extra = ", per_collection=True" if self.layout == "B" else ""
                note = self.fail(
                    f"PGVecStore({collection_name(position)!r}).create_index(HNSW(m={self.args.m}, "
                    f"ef_construction={self.args.ef_construction}){extra})",
                    exc,
                )
                self.result.builds.append(["ours PGVecStore", f"{how}: {note}", "n/a"])
                return False
        self.result.builds.append(
            ["ours PGVecStore", how, fmt_seconds(time.perf_counter() - start)]
        )
        return True

    # -- langchain-postgres PGVector (layout A's database)

    def load_pgvector(self) -> bool:
        from langchain_postgres import PGVector
        from sqlalchemy import create_engine

        args = self.args
        self.report.progress(f"layout {self.layout}: loading PGVector")
        self.pgv_engine = create_engine(self.url)
        elapsed = 0.0
        try:
            for position in range(args.collections):
                corpus = corpus_of(args, position)
                start = time.perf_counter()
                store = PGVector(
                    BenchEmbeddings(args.dim),
                    connection=self.pgv_engine,
                    collection_name=collection_name(position),
                    embedding_length=args.dim,
                    use_jsonb=True,
                )
                self.pgv_stores[position] = store
                with connect_raw(self.url) as conn:
                    cid = conn.execute(
                        "SELECT uuid FROM langchain_pg_collection WHERE name = %s",
                        (collection_name(position),),
                    ).fetchone()[0]
                    rows = (
                        (corpus.ids[i], cid, v, corpus.texts[i], Jsonb(corpus.metadatas[i]))
                        for i, v in enumerate(corpus.vectors)
                    )
                    copy_binary(
                        conn,
                        PGV_TABLE,
                        ("id", "collection_id", "embedding", "document", "cmetadata"),
                        ("text", "uuid", "vector", "text", "jsonb"),
                        rows,
                    )
                    conn.commit()
                elapsed += time.perf_counter() - start
        except Exception as exc:
            note = error_note(exc)
            self.report.progress(f"PGVector load: {note}")
            self.result.loads.append(["langchain-postgres PGVector", note, "n/a", "n/a"])
            return False
        total = args.collections * args.rows
        self.result.loads.append(
            [
                "langchain-postgres PGVector",
                "a PGVector() per collection (it makes the collection); rows by COPY BINARY "
                "into its table (not its add_embeddings)",
                fmt_seconds(elapsed),
                fmt_rate(total / elapsed),
            ]
        )
        return True

    def build_pgvector(self) -> bool:
        self.report.progress(f"layout {self.layout}: building PGVector's index")
        with stopwatch() as t, connect_raw(self.url) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE INDEX lcpg_v1_hnsw ON {} USING hnsw (embedding vector_cosine_ops) "
                    "WITH (m = {}, ef_construction = {})"
                ).format(
                    sql.Identifier(PGV_TABLE),
                    sql.Literal(self.args.m),
                    sql.Literal(self.args.ef_construction),
                )
            )
            conn.commit()
        self.result.builds.append(
            [
                "langchain-postgres PGVector",
                "no index API: CREATE INDEX ... USING hnsw by hand",
                fmt_seconds(t[0]),
            ]
        )
        return True

    # -- searches

    def shapes(self, pgvector: bool) -> list[Shape]:
        k = self.args.k
        by_position = {s.position: s for s in self.work.sampled}
        out: list[Shape] = []

        def ours_search(position: int, q: int) -> list[int]:
            vector = by_position[position].queries[q]
            docs = self.stores[position].similarity_search_by_vector(vector, k=k)
            return [doc_index(d.id) for d in docs]

        first = self.work.sampled[0]
        out.append(
            Shape(
                "ours PGVecStore",
                f"similarity_search_by_vector(k={k})",
                ours_search,
                lambda: probe_store(
                    self.url,
                    lambda: self.stores[first.position].similarity_search_by_vector(
                        first.queries[0], k=k
                    ),
                ),
            )
        )

        ids = collection_ids(
            self.url, COLLECTION_TABLE, [collection_name(s.position) for s in self.work.sampled]
        )
        statement = RAW_SQL.format(t=TABLE, k=k)
        variants = [(True, RELAXED), (False, "plain")] if self.layout == "A" else [(False, "plain")]
        for relaxed, label in variants:
            conn = self.raw_conn(relaxed=relaxed)

            def raw_search(
                position: int, q: int, conn: psycopg.Connection[Any] = conn
            ) -> list[int]:
                cid = ids[collection_name(position)]
                rows = conn.execute(statement, (cid, by_position[position].queries[q])).fetchall()
                return [doc_index(r[0]) for r in rows]

            settings = [(RELAXED, None)] if relaxed else []
            cid0 = ids[collection_name(first.position)]
            out.append(
                Shape(
                    "raw psycopg",
                    f"`{statement}`, {label}",
                    raw_search,
                    lambda settings=settings, cid0=cid0: _plan(
                        self.url, statement, (cid0, first.queries[0]), settings
                    ),
                )
            )

        if pgvector and self.pgv_stores:
            lists = {s.position: s.queries.tolist() for s in self.work.sampled}

            def pgv_search(position: int, q: int) -> list[int]:
                docs = self.pgv_stores[position].similarity_search_by_vector(
                    lists[position][q], k=k
                )
                return [doc_index(d.id) for d in docs]

            out.append(
                Shape(
                    "langchain-postgres PGVector",
                    f"similarity_search_by_vector(k={k})",
                    pgv_search,
                    lambda: probe_store(
                        self.url,
                        lambda: self.pgv_stores[first.position].similarity_search_by_vector(
                            lists[first.position][0], k=k
                        ),
                    ),
                )
            )
        return out

    def measure(self, shapes: list[Shape]) -> None:
        """Every shape answers every (collection, query) once, interleaved: in round r
        each shape runs one query, in an order shuffled each round; shape s runs task
        (r + s * stride) % n, so that two shapes on one table (ours and raw) never run
        the same query back to back."""
        args = self.args
        tasks = [(s.position, q) for s in self.work.sampled for q in range(args.queries)]
        np.random.default_rng([args.seed, 10]).shuffle(tasks)  # type: ignore[arg-type]
        n = len(tasks)
        stride = max(1, n // len(shapes))
        failed: set[int] = set()
        self.report.progress(
            f"layout {self.layout}: {len(shapes)} search shapes x {n} queries, interleaved"
        )
        gc.collect()
        gc.freeze()
        try:
            for j, shape in enumerate(shapes):
                try:
                    for s in self.work.sampled:
                        for q in range(args.queries, args.queries + args.warmup):
                            shape.search(s.position, q)
                except Exception as exc:
                    shape.note = self.fail(f"{shape.system}: {shape.call} (warm-up)", exc)
                    failed.add(j)
            order = np.random.default_rng([args.seed, 11])
            start = time.monotonic()
            for r in range(n):
                if time.monotonic() - start > args.query_seconds:
                    self.result.notes.append(
                        f"queries stopped after {r} of {n} rounds (--query-seconds "
                        f"{args.query_seconds:g})"
                    )
                    break
                for s in order.permutation(len(shapes)).tolist():
                    if s in failed:
                        continue
                    shape = shapes[s]
                    task = tasks[(r + s * stride) % n]
                    try:
                        t0 = time.perf_counter()
                        answer = shape.search(*task)
                        shape.samples.append(time.perf_counter() - t0)
                    except Exception as exc:
                        shape.note = self.fail(f"{shape.system}: {shape.call}", exc)
                        failed.add(s)
                        continue
                    shape.answers[task] = answer
                self.result.queried = r + 1
        finally:
            gc.unfreeze()
        for shape in shapes:
            if shape.probe is not None:
                try:
                    shape.plan = shape.probe()
                except Exception as exc:
                    shape.plan = error_note(exc)
        self.result.shapes = shapes

    # -- deletes

    def deletes(self, pgvector: bool) -> None:
        ours_names = [collection_name(p) for p in self.work.deleted_ours]
        raw_names = [collection_name(p) for p in self.work.deleted_raw]
        ids = collection_ids(self.url, COLLECTION_TABLE, ours_names + raw_names)
        conn = self.raw_conn()
        statement = RAW_DELETE.format(t=TABLE)
        ours = Deletion("ours PGVecStore", "delete_collection()")
        raw = Deletion("raw psycopg", f"`{statement}` (autocommit)")
        pgv = Deletion("langchain-postgres PGVector", "delete_collection()")
        rounds: list[list[tuple[Deletion, Callable[[], int]]]] = []
        for i in range(len(ours_names)):
            pos_ours, name_raw = self.work.deleted_ours[i], raw_names[i]

            def do_ours(p: int = pos_ours) -> int:
                self.stores[p].delete_collection()
                return -1

            def do_raw(name: str = name_raw) -> int:
                return conn.execute(statement, (ids[name],)).rowcount

            jobs: list[tuple[Deletion, Callable[[], int]]] = [(ours, do_ours), (raw, do_raw)]
            if pgvector and self.pgv_stores:

                def do_pgv(p: int = pos_ours) -> int:
                    self.pgv_stores[p].delete_collection()
                    return -1

                jobs.append((pgv, do_pgv))
            rounds.append(jobs)
        order = np.random.default_rng([self.args.seed, 12])
        self.report.progress(f"layout {self.layout}: deleting collections")
        for jobs in rounds:
            for j in order.permutation(len(jobs)).tolist():
                record, job = jobs[j]
                if record.note:
                    continue
                try:
                    t0 = time.perf_counter()
                    rows = job()
                    record.samples.append(time.perf_counter() - t0)
                    record.rows.append(rows)
                except Exception as exc:
                    record.note = self.fail(f"{record.system}: {record.how}", exc)
        self.result.deletions = [d for d in (ours, raw, pgv) if d.samples or d.note]

    def vacuum(self, system: str, table: str) -> None:
        """VACUUM the table after the deletes (what reclaims their rows and index entries)."""
        self.report.progress(f"layout {self.layout}: VACUUM {table}")
        with psycopg.connect(conninfo(self.url), autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = {int(self.args.vacuum_timeout * 1000)}")
            try:
                with stopwatch() as t:
                    conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(table)))
                took = fmt_seconds(t[0])
            except psycopg.errors.QueryCanceled:
                took = f"> {self.args.vacuum_timeout:g} (cancelled)"
        self.result.vacuums.append([system, f"VACUUM {table}", took])


# ---------------------------------------------------------------------- running


def run_layout(
    layout: str,
    base_url: str,
    work: Workload,
    report: Report,
    failures: list[Failure],
    budget: Budget,
) -> LayoutResult:
    args = work.args
    url = fresh_database(base_url, args.database)
    run = Layout(layout, url, work, report, failures)
    pgvector = layout == "A" and not args.no_pgvector
    try:
        if not run.load_ours():
            return run.result
        if pgvector and budget.left():
            pgvector = run.load_pgvector()
        maintenance(url, "VACUUM ANALYZE")
        if not run.build_ours():
            return run.result
        if pgvector:
            pgvector = run.build_pgvector()
        maintenance(url, "ANALYZE")
        run.result.sizes.append(table_sizes(url, "ours PGVecStore", TABLE))
        if pgvector:
            run.result.sizes.append(table_sizes(url, "langchain-postgres PGVector", PGV_TABLE))
        if budget.left():
            run.measure(run.shapes(pgvector))
        else:
            run.result.notes.append("searches skipped: --budget-minutes reached")
        if budget.left():
            run.deletes(pgvector)
            run.vacuum("ours PGVecStore", TABLE)
            if pgvector:
                run.vacuum("langchain-postgres PGVector", PGV_TABLE)
            run.result.sizes_after.append(table_sizes(url, "ours PGVecStore", TABLE))
            if pgvector:
                run.result.sizes_after.append(
                    table_sizes(url, "langchain-postgres PGVector", PGV_TABLE)
                )
        else:
            run.result.notes.append("deletes skipped: --budget-minutes reached")
    except Exception as exc:
        run.result.notes.append(run.fail("the layout's run", exc))
    finally:
        run.close()
    return run.result


def _recall(shape: Shape, work: Workload) -> tuple[float | None, float | None]:
    if not shape.answers:
        return None, None
    truth = {s.position: s.truth for s in work.sampled}
    k = work.args.k
    hits, counts = [], []
    for (position, q), answer in shape.answers.items():
        expected = set(truth[position][q].tolist())
        hits.append(len(set(answer[:k]) & expected) / len(expected))
        counts.append(len(answer))
    return float(np.mean(hits)), float(np.mean(counts))


SIZE_HEADERS = (
    "layout",
    "system",
    "table",
    "partitions",
    "heap (+TOAST)",
    "HNSW indexes",
    "HNSW size",
    "other indexes",
    "total",
)


def write_report(
    args: argparse.Namespace,
    work: Workload,
    results: list[LayoutResult],
    failures: list[Failure],
    report: Report,
    wall: float,
) -> None:
    k = args.k
    report.add("## Load and index build", "")
    rows = []
    for res in results:
        builds = {b[0]: b for b in res.builds}
        for system, how, seconds, rate in res.loads:
            build = builds.get(system)
            rows.append(
                [
                    LAYOUT_TITLES[res.layout],
                    system,
                    how,
                    seconds,
                    rate,
                    build[1] if build else "n/a",
                    build[2] if build else "n/a",
                ]
            )
    report.table(
        ["layout", "system", "load", "load s", "vectors/s", "index", "build s"],
        rows,
        "lllrrlr",
    )
    report.add(
        "Load: wall time of the stores' construction and their `add_embeddings` calls "
        "(the data is generated outside it); the harness ran `VACUUM ANALYZE` between "
        "load and build (not timed). Build: wall time of everything the layout needs, "
        "the statistics refresh that `create_index` runs after a build included.",
        "",
        "### Sizes after the build",
        "",
    )
    rows = [[LAYOUT_TITLES[res.layout], *s] for res in results for s in res.sizes]
    report.table(SIZE_HEADERS, rows, "lllrrrrrr")

    report.add("## Search", "")
    sampled = len(work.sampled)
    report.add(
        f"{sampled} collections searched (positions "
        f"{', '.join(str(s.position) for s in work.sampled)}), {args.queries} queries each: "
        f"a row of the collection plus Gaussian noise of {QUERY_NOISE} / sqrt(dim) per "
        f"coordinate, normalised; recall@{k} against numpy brute force over that "
        f"collection's {args.rows:,} rows. Every system of a layout ran every query once, "
        "interleaved (round by round, the order shuffled each round), after "
        f"{args.warmup} untimed warm-up queries per collection; HNSW ef_search is the "
        "server's (40) everywhere. The plan is that of one more call (EXPLAIN of the "
        "statement the call sent, after its SET statements).",
        "",
    )
    rows = []
    for res in results:
        for shape in res.shapes:
            recall, count = _recall(shape, work)
            stats = Stats(shape.samples) if shape.samples else None
            rows.append(
                [
                    LAYOUT_TITLES[res.layout],
                    shape.system,
                    shape.call,
                    "n/a" if count is None else f"{count:.1f}",
                    "n/a" if recall is None else f"{recall:.3f}",
                    fmt_ms(stats.median if stats else None),
                    fmt_ms(stats.p95 if stats else None),
                    len(shape.samples),
                    shape.plan,
                    shape.note,
                ]
            )
    report.table(
        [
            "layout",
            "system",
            "call",
            f"results of {k}",
            f"recall@{k}",
            "p50 ms",
            "p95 ms",
            "queries",
            "plan",
            "note",
        ],
        rows,
        "llllrrrrll",
    )

    report.add("## Deleting collections", "")
    report.add(
        f"After the searches: {len(work.deleted_ours)} collections deleted by "
        "`delete_collection()` (the same ones in every layout, and for PGVector), and "
        f"{len(work.deleted_raw)} others by raw SQL on our table, alternately, in an order "
        "shuffled each round. Each deletion commits on its own. Then a `VACUUM` of the "
        "table, the work PostgreSQL leaves for later after a `DELETE` (dead rows, and the "
        "entries of every index).",
        "",
    )
    rows = []
    for res in results:
        for d in res.deletions:
            stats = Stats(d.samples) if d.samples else None
            counted = [r for r in d.rows if r >= 0]
            rows.append(
                [
                    LAYOUT_TITLES[res.layout],
                    d.system,
                    d.how,
                    len(d.samples),
                    fmt_ms(stats.median if stats else None),
                    fmt_ms(max(d.samples) if d.samples else None),
                    f"{int(np.mean(counted)):,}" if counted else "",
                    d.note,
                ]
            )
    report.table(
        ["layout", "system", "how", "collections", "median ms", "max ms", "rows each", "note"],
        rows,
        "lllrrrrl",
    )
    rows = [[LAYOUT_TITLES[res.layout], *v] for res in results for v in res.vacuums]
    if rows:
        report.table(["layout", "system", "statement", "seconds"], rows, "lllr")
    rows = [[LAYOUT_TITLES[res.layout], *s] for res in results for s in res.sizes_after]
    if rows:
        report.add("### Sizes after the deletes and the VACUUM", "")
        report.table(SIZE_HEADERS, rows, "lllrrrrrr")
    notes = [f"- {LAYOUT_TITLES[res.layout]}: {n}" for res in results for n in res.notes]
    if notes:
        report.add("## Notes", "", *notes, "")
    if failures:
        report.add("## Errors", "")
        for failure in failures:
            report.add(
                f"- layout {failure.layout}, `{failure.call}`:",
                "",
                "```",
                failure.trace,
                "```",
                "",
            )
    report.add(f"Wall time of the run: {wall / 60:.1f} min.", "")


# ---------------------------------------------------------------- big-delete phase

#: the runs of one size, each in a fresh database: (layout, who deletes); layout A is
#: loaded twice, so that ours and raw SQL each delete from a table of their own
BIG_RUNS = (("A", "ours"), ("A", "raw"), ("C", "ours"))
BIG_SYSTEMS = {
    "ours": "ours PGVecStore: delete_collection()",
    "raw": f"raw psycopg: `{RAW_DELETE.format(t=TABLE)}` (autocommit)",
}
BIG_LAYOUTS = {"A": "A: plain table", "C": "C: partitioned=True"}


@dataclass
class BigRun:
    """One load, delete and VACUUM of the big-delete phase."""

    rows: int
    layout: str
    system: str
    index: str = "none"
    load: float | None = None
    build: float | None = None
    delete: float | None = None
    deleted: str = ""  # rows the statement reported deleting (raw DELETE only)
    vacuum: str = "n/a"
    before: str = ""
    after: str = ""
    left: str = ""  # rows left in the table after it all (the small collection's)
    note: str = ""


def hold_autovacuum_leaves(url: str) -> None:
    """Keep autovacuum away from every plain table and leaf partition of the current
    schema (``HOLD_AUTOVACUUM`` as storage parameters: a partitioned parent takes none,
    its leaves do), so that no autovacuum runs between the delete and the timed VACUUM."""
    settings = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.SQL(name), sql.Literal(value))
        for name, value in HOLD_AUTOVACUUM.items()
    )
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            conn.execute(sql.SQL("ALTER TABLE {} SET ({})").format(sql.Identifier(table), settings))


def _table_total(url: str) -> str:
    """Heap and indexes of the embedding table (all its partitions)."""
    with psycopg.connect(conninfo(url)) as conn:
        _, heap, indexes, _, _ = conn.execute(SIZE_SQL, {"t": TABLE}).fetchone()
    return _mb((heap or 0) + (indexes or 0))


def _timed_vacuum(url: str, timeout: float) -> str:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        try:
            with stopwatch() as t:
                conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(TABLE)))
        except psycopg.errors.QueryCanceled:
            return f"> {timeout:g} s"
    return fmt_seconds(t[0])


def big_corpora(args: argparse.Namespace, rows: int) -> tuple[Corpus, Corpus]:
    """The large collection (``rows`` rows) and the small one beside it."""
    big = make_corpus(rows, args.dim, seed=args.seed + 2000)
    small = make_corpus(SMALL_ROWS, args.dim, seed=args.seed + 2001)
    small.ids = [doc_id(ID_STRIDE + j) for j in range(SMALL_ROWS)]
    return big, small


def run_big(
    args: argparse.Namespace,
    base_url: str,
    layout: str,
    system: str,
    corpora: tuple[Corpus, Corpus],
    failures: list[Failure],
    report: Report,
) -> BigRun:
    """Load the two collections into a fresh database, build the index (at the sizes
    that get one), delete the large collection (timed), then VACUUM the table (timed)."""
    ours = import_ours()
    big, small = corpora
    run = BigRun(len(big), layout, system)
    if ours.missing:
        run.note = f"n/a: {ours.missing}"
        return run
    url = fresh_database(base_url, args.database)
    stores: list[Any] = []
    step = "loading"
    try:
        elapsed = 0.0
        for name, corpus in ((BIG_NAME, big), (SMALL_NAME, small)):
            start = time.perf_counter()
            store = ours.PGVecStore(
                BenchEmbeddings(args.dim),
                connection=url,
                collection_name=name,
                embedding_length=args.dim,
                statement_timeout=args.big_timeout,
                **({"partitioned": True} if layout == "C" else {}),
            )
            stores.append(store)
            add_in_batches(store, corpus, args.batch)
            elapsed += time.perf_counter() - start
        run.load = elapsed
        hold_autovacuum_leaves(url)
        maintenance(url, "VACUUM ANALYZE")
        if run.rows <= args.big_index_max_rows:
            step = "create_index(HNSW(...))"
            report.progress(f"{run.rows:,} rows, layout {layout}: building the HNSW index")
            spec = ours.HNSW(m=args.m, ef_construction=args.ef_construction)
            with stopwatch() as t:
                stores[0].create_index(spec, show_progress=False)
            run.build = t[0]
            run.index = f"HNSW(m={args.m}, ef_construction={args.ef_construction})"
            if layout == "C":
                run.index += ", partitioned"
        run.before = _table_total(url)
        maintenance(url, "CHECKPOINT")  # the load's dirty pages written before the clock
        report.progress(f"{run.rows:,} rows, layout {layout}: {system} deletes")
        if system == "ours":
            step = "delete_collection()"
            with stopwatch() as t:
                stores[0].delete_collection()
        else:
            step = "raw DELETE"
            cid = collection_ids(url, COLLECTION_TABLE, [BIG_NAME])[BIG_NAME]
            with connect_raw(url, autocommit=True) as conn:
                conn.execute(f"SET statement_timeout = {int(args.big_timeout * 1000)}")
                with stopwatch() as t:
                    cursor = conn.execute(RAW_DELETE.format(t=TABLE), (cid,))
                run.deleted = f"{cursor.rowcount:,}"
        run.delete = t[0]
        step = "VACUUM"
        run.vacuum = _timed_vacuum(url, args.vacuum_timeout)
        run.after = _table_total(url)
        with psycopg.connect(conninfo(url)) as conn:  # counted after the VACUUM: a scan
            # of the dead rows before it would prune pages, the VACUUM's work, untimed
            left = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE)))
            run.left = f"{left.fetchone()[0]:,}"
        if run.left != f"{SMALL_ROWS:,}":
            run.note = f"{run.left} rows left, expected the small collection's {SMALL_ROWS:,}"
    except Exception as exc:
        failures.append(Failure(layout, f"{run.rows:,} rows, {system}: {step}", _short_trace(exc)))
        report.progress(f"{run.rows:,} rows, layout {layout}, {system}: {error_note(exc)}")
        run.note = f"{step}: {error_note(exc)}"
    finally:
        for store in stores:
            try:
                store.close()
            except Exception as exc:
                report.progress(f"closing a store: {error_note(exc)}")
    return run


def main_big_delete(args: argparse.Namespace) -> None:
    report = Report(args.output)
    budget = Budget(args.budget_minutes)
    started = time.monotonic()
    base_url = start_server(args)
    failures: list[Failure] = []
    runs: list[BigRun] = []
    try:
        url = fresh_database(base_url, args.database)
        report.add(
            "# Tenants benchmark, big-delete phase: deleting one large collection",
            "",
            *environment(url),
            "",
        )
        indexed = [n for n in args.big_rows if n <= args.big_index_max_rows]
        bare = [n for n in args.big_rows if n > args.big_index_max_rows]
        report.add(
            f"- data: at each size, ONE large collection (`{BIG_NAME}`, "
            f"`make_corpus(rows, {args.dim}, seed={args.seed} + 2000)`) plus one small other "
            f"collection (`{SMALL_NAME}`, {SMALL_ROWS:,} rows), loaded with `add_embeddings` "
            f"(numpy, batches of {args.batch:,}) into a fresh database per run: layout "
            "A, the plain table (`partitioned` unset), twice (once for ours to delete from, "
            "once for raw SQL), and layout C, `partitioned=True` (a partition per "
            "collection); dim "
            f"{args.dim}, cosine distance.",
            "- index: `create_index(HNSW(m="
            f"{args.m}, ef_construction={args.ef_construction}))` on the table (in C a "
            "partitioned index, a graph per partition) at "
            + (", ".join(f"{n:,}" for n in indexed) + " rows" if indexed else "no size")
            + (
                f"; NOT at {', '.join(f'{n:,}' for n in bare)} rows "
                f"(`--big-index-max-rows {args.big_index_max_rows:,}`): a 1,000,000-row HNSW "
                "build takes 4.6 to 8.5 minutes on this 2-core machine (tenants.md) and the "
                "size needs three, which would not fit the ~20 minutes of the run; there the "
                "table has only its primary key (collection_id, id) and GIN metadata index, "
                "so its `VACUUM` shows the heap and B-tree/GIN work without the graph repair"
                if bare
                else ""
            )
            + ".",
            "- each run: load, `VACUUM ANALYZE` (untimed), the index build, `CHECKPOINT` "
            "(untimed), then the timed delete of the large collection, then a timed `VACUUM "
            f"{TABLE}` (cancelled after `--vacuum-timeout` {args.vacuum_timeout:g} s, shown "
            'as "> N s"). Autovacuum is held off every table and partition '
            "(thresholds it never reaches), so it does not clean up between the two.",
            "- `delete_collection()` on A runs `DELETE` of the collection's rows and of its "
            "collection row in one transaction; on C it detaches and drops the collection's "
            "partition. Raw SQL deletes only the rows (its collection row stays).",
            "",
        )
        for rows in args.big_rows:
            report.progress(f"{rows:,} rows: generating the data")
            corpora = big_corpora(args, rows)
            for layout, system in BIG_RUNS:
                if not budget.left():
                    run = BigRun(rows, layout, system, note="skipped: --budget-minutes reached")
                else:
                    report.progress(f"{rows:,} rows, layout {layout}, {system}")
                    run = run_big(args, base_url, layout, system, corpora, failures, report)
                runs.append(run)
            del corpora
            gc.collect()
        write_big_report(args, runs, failures, report, time.monotonic() - started)
    finally:
        report.write()


def write_big_report(
    args: argparse.Namespace,
    runs: list[BigRun],
    failures: list[Failure],
    report: Report,
    wall: float,
) -> None:
    report.add("## Deleting the large collection", "")
    rows = [
        [
            f"{r.rows:,}",
            BIG_LAYOUTS[r.layout],
            BIG_SYSTEMS[r.system],
            fmt_seconds(r.delete),
            r.vacuum,
            r.index,
            r.deleted,
            r.before,
            r.after,
            r.left,
            r.note,
        ]
        for r in runs
    ]
    report.table(
        [
            "size",
            "layout",
            "system",
            "delete s",
            "VACUUM after s",
            "index",
            "rows deleted",
            "table + indexes before",
            "after VACUUM",
            "rows left",
            "note",
        ],
        rows,
        "rllrrllrrrl",
    )
    report.add(
        "Delete s: wall time of the call (ours) or statement (raw), commit included. "
        f"VACUUM after s: `VACUUM {TABLE}` right after it. Table + indexes: heap and every "
        "index of the table (all partitions); rows left: a count after the VACUUM (the small "
        "collection's rows).",
        "",
        "## Load and index build",
        "",
    )
    rows = [
        [
            f"{r.rows:,}",
            BIG_LAYOUTS[r.layout],
            "for " + r.system,
            fmt_seconds(r.load),
            fmt_seconds(r.build) if r.build is not None else "no index",
        ]
        for r in runs
    ]
    report.table(["size", "layout", "loaded", "load s", "HNSW build s"], rows, "rllrr")
    if failures:
        report.add("## Errors", "")
        for failure in failures:
            report.add(f"- layout {failure.layout}, {failure.call}:", "", "```", failure.trace)
            report.add("```", "")
    report.add(f"Wall time of the run: {wall / 60:.1f} min.", "")


def main() -> None:
    args = parse_args()
    if args.phase == "big-delete":
        main_big_delete(args)
        return
    report = Report(args.output)
    budget = Budget(args.budget_minutes)
    started = time.monotonic()
    base_url = start_server(args)
    failures: list[Failure] = []
    results: list[LayoutResult] = []
    try:
        url = fresh_database(base_url, args.database)
        report.add("# Tenants benchmark: many collections in one table", "", *environment(url), "")
        report.progress("generating the sampled collections' queries and exact answers")
        work = Workload.build(args)
        total = args.collections * args.rows
        report.add(
            f"- data: {args.collections:,} collections x {args.rows:,} rows = {total:,} rows, "
            f"dim {args.dim}, float32 unit vectors, cosine distance; collection i's rows from "
            f"`make_corpus(rows, dim, seed={args.seed} + 1000 + i)` (its own cluster centres); "
            f"k={args.k}; HNSW m={args.m}, ef_construction={args.ef_construction}; each layout "
            "in a fresh database of its own, on the same server with the same settings.",
        )
        note = args.dim_note or (DIM_NOTE if args.dim == 128 else "")
        if note:
            report.add(f"- dimension: {note}")
        if not args.no_pgvector and "A" in args.layouts:
            report.add(
                "- langchain-postgres PGVector: the same collections and rows in its own "
                f"shared table (`{PGV_TABLE}`), in layout A's database, so its searches run "
                "interleaved with layout A's; PGVector has no index API, so one HNSW index "
                "with the same parameters is built by hand.",
            )
        report.add("")
        for layout in args.layouts:
            if not budget.left():
                report.progress(f"layout {layout} skipped: --budget-minutes reached")
                res = LayoutResult(layout)
                res.notes.append("skipped: --budget-minutes reached")
                results.append(res)
                continue
            report.progress(f"layout {LAYOUT_TITLES[layout]}")
            results.append(run_layout(layout, base_url, work, report, failures, budget))
        write_report(args, work, results, failures, report, time.monotonic() - started)
    finally:
        report.write()


if __name__ == "__main__":
    main()
