"""Read-replica benchmark (issue 18): search throughput with one streaming replica.

The embedded benchmark server (or ``--url``) gets one real streaming replica: a copy
made with ``pg_basebackup -R -C -S pgvec_bench_replica -X stream`` (a physical
replication slot, dropped at the end) and started with the primary's own binaries on a
free port of 127.0.0.1 (and a Unix socket in its own directory), as the owner of the
primary's data directory (``runuser``, when run as root: PostgreSQL refuses to run as
root): ``make_replica`` of the tests' ``tests/support/replica.py``, which imports
without pytest.

``--rows`` documents (default 100,000 x 384, ``_common.make_corpus``) are loaded into
our store and into langchain-postgres ``PGVector``'s tables (rows by COPY BINARY), each
gets an HNSW index (m=16, ef_construction=64), the database is vacuumed and analyzed,
and the run waits (bounded) until the replica has replayed the primary's WAL position.

Then ``--clients`` threads (8) search at once, each running ``--queries`` (200) top-k
(k=10) queries per system, in ``--rounds`` rounds: each round runs every system's
burst once (each client its share of that round's queries), in an order shuffled anew
each round (seeded), so a change in machine load falls on every system alike. The
systems:

- ours, ``PGVecStore(..., read_replicas=[replica])``: every search goes to the replica
  (the primary is only the fallback), ``similarity_search_by_vector``;
- ours, ``read_replicas=[replica, primary]``: the primary listed as a replica too, so
  searches alternate between the two servers;
- ours on the primary alone;
- raw psycopg: the same statement (``SELECT id FROM pgvec_embedding WHERE
  collection_id = %s ORDER BY embedding <=> %b LIMIT 10``, the vector in pgvector's
  binary format) on one autocommit connection per client: half of them to the
  primary and half to the replica, all to the replica, all to the primary;
- langchain-postgres ``PGVector`` on the primary (it has no read replicas).

QPS = queries / the bursts' wall time (first client's start to last client's end),
summed over the rounds; p50 / p95 over every timed query's latency. Both servers and
the client threads share this machine's cores: a replica cannot add CPU here.

The replica is stopped and its directory removed at the end, also on error, Ctrl-C or
SIGTERM.

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/replicas.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import pwd
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from _common import (
    REPO_ROOT,
    BenchEmbeddings,
    Corpus,
    Report,
    SqlCapture,
    base_parser,
    connect_raw,
    conninfo,
    copy_binary,
    environment,
    error_note,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    fresh_database,
    import_ours,
    maintenance,
    make_corpus,
    redact,
    start_server,
    stopwatch,
    summarize_plan,
)
from psycopg import sql
from psycopg.types.json import Jsonb

# the replica helper of the tests (importable without pytest), as pytest finds it
sys.path.insert(0, str(REPO_ROOT / "tests"))
from support.replica import Replica, make_replica

SYSTEMS = ("ours", "raw", "pgvector")
COLLECTION = "bench"
V1_COLLECTION = "bench_v1"
OURS_TABLE = "pgvec_embedding"
DEFAULT_REPLICA_DIR = Path("/tmp/pgvec-bench-replica")
CATCH_UP_TIMEOUT = 600.0  # seconds for the replica to replay the load (and index builds)
STATEMENT_TIMEOUT_S = 30  # every measured statement, every system
SESSION_TIMEOUT = {"options": f"-c statement_timeout={STATEMENT_TIMEOUT_S}s"}
BURST_TIMEOUT = 900.0  # one burst of all clients
#: the physical replication slot the replica streams from: without one, a CHECKPOINT
#: on the primary may recycle WAL the replica has not received yet (seen here during
#: the index builds: "requested WAL segment ... has already been removed")
SLOT = "pgvec_bench_replica"


def parse_args() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="documents")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument(
        "--queries", type=int, default=200, help="timed queries per client and system"
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds the queries are split in")
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed queries per client and system, first"
    )
    parser.add_argument("--m", type=int, default=16, help="HNSW m")
    parser.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction")
    parser.add_argument(
        "--replica-dir",
        type=Path,
        default=DEFAULT_REPLICA_DIR,
        help="directory of the replica (made by the run, removed at its end)",
    )
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {SYSTEMS}"
    )
    parser.set_defaults(output=Path("benchmarks/results/replicas.md"))
    args = parser.parse_args()
    if args.quick:
        args.rows, args.queries, args.warmup = 5_000, 20, 3
    picked = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(picked) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; pick from {SYSTEMS}")
    args.systems = [s for s in SYSTEMS if s in picked]
    for name in ("rows", "clients", "queries", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    args.rounds = min(args.rounds, args.queries)
    return args


# ---------------------------------------------------------------------- systems

SearchFn = Callable[[int], list[str]]  # query number -> ids returned


@dataclass
class System:
    """One measured row: a system on some servers, with one search function per client."""

    family: str  # "ours", "raw psycopg", "langchain-postgres PGVector": the ratio's group
    servers: str
    clients_note: str
    searches: list[SearchFn] | None = None  # one per client
    alone: bool = False  # the family's primary-alone row (ratio 1.00)
    na: str = ""  # why this row is not measured
    store: Any = None  # ours' store, for its served counters
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    queries: int = 0
    short: int = 0  # queries that returned fewer than k rows
    error: str = ""
    served_before: list[int] | None = None
    served_after: list[int] | None = None
    cpu: list[float | None] = field(default_factory=list)  # client, primary, replica (s)
    statements: str = ""  # statements one search sends

    @property
    def label(self) -> str:
        return f"{self.family} / {self.servers}"


def served_counts(store: Any) -> list[int]:
    """Our store's searches served by each replica, then by the primary (its counters)."""
    replicas = store._replicas
    return [r.served for r in replicas.replicas] + [replicas.primary_served]


def raw_connection(url: str) -> psycopg.Connection[Any]:
    conn = connect_raw(url, autocommit=True)
    conn.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'")
    return conn


def raw_search(
    conn: psycopg.Connection[Any], collection: Any, queries: np.ndarray, k: int
) -> SearchFn:
    statement = sql.SQL(
        "SELECT id FROM {} WHERE collection_id = %s ORDER BY embedding <=> %b LIMIT {}"
    ).format(sql.Identifier(OURS_TABLE), sql.Literal(k))

    def search(q: int) -> list[str]:
        return [r[0] for r in conn.execute(statement, (collection, queries[q])).fetchall()]

    return search


def store_search(store: Any, queries: Sequence[Any], k: int) -> SearchFn:
    def search(q: int) -> list[str]:
        return [str(d.id) for d in store.similarity_search_by_vector(queries[q], k=k)]

    return search


# ---------------------------------------------------------------------- loading


def load_ours(args: argparse.Namespace, url: str, corpus: Corpus, report: Report) -> list[str]:
    ours = import_ours()
    if ours.missing:
        raise RuntimeError(ours.missing)
    store = ours.PGVecStore(
        BenchEmbeddings(args.dim),
        connection=url,
        collection_name=COLLECTION,
        embedding_length=args.dim,
        share_engines=False,
    )
    try:
        with stopwatch() as load:
            store.add_embeddings(
                corpus.texts, corpus.vectors, metadatas=corpus.metadatas, ids=corpus.ids
            )
        report.progress(f"ours loaded in {load[0]:.1f} s; building HNSW")
        with stopwatch() as build:
            index = store.create_index(ours.HNSW(m=args.m, ef_construction=args.ef_construction))
    finally:
        store.close()
    return [
        f"- ours: `add_embeddings` (numpy) {load[0]:.1f} s, `create_index(HNSW(m={args.m}, "
        f"ef_construction={args.ef_construction}))` {build[0]:.1f} s (`{index}`)"
    ]


def load_pgvector(args: argparse.Namespace, url: str, corpus: Corpus, report: Report) -> list[str]:
    from langchain_postgres import PGVector

    store = PGVector(
        BenchEmbeddings(args.dim),
        connection=url,
        collection_name=V1_COLLECTION,
        embedding_length=args.dim,
        use_jsonb=True,
    )
    with stopwatch() as load, connect_raw(url) as conn:
        row = conn.execute(
            "SELECT uuid FROM langchain_pg_collection WHERE name = %s", (V1_COLLECTION,)
        ).fetchone()
        assert row is not None
        rows = (
            (corpus.ids[i], row[0], v, corpus.texts[i], Jsonb(corpus.metadatas[i]))
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
    report.progress(f"PGVector's rows copied in {load[0]:.1f} s; building HNSW")
    with stopwatch() as build, connect_raw(url) as conn:
        conn.execute(
            sql.SQL(
                "CREATE INDEX lcpg_v1_hnsw ON langchain_pg_embedding USING hnsw "
                "(embedding vector_cosine_ops) WITH (m = {}, ef_construction = {})"
            ).format(sql.Literal(args.m), sql.Literal(args.ef_construction))
        )
        conn.commit()
    with contextlib.suppress(Exception):
        store._engine.dispose()
    return [
        f"- langchain-postgres `PGVector`: `PGVector()` made its tables, rows by COPY BINARY "
        f"{load[0]:.1f} s; no index API, so `CREATE INDEX ... USING hnsw` by hand "
        f"(m={args.m}, ef_construction={args.ef_construction}) {build[0]:.1f} s"
    ]


# ---------------------------------------------------------------------- measuring


class ServerCpu:
    """CPU seconds of a server's processes (its postmaster and the postmaster's
    children: backends, WAL sender or receiver and startup process, background
    workers), from ``/proc/<pid>/schedstat`` (nanoseconds; ``cpu_times`` counts in
    10 ms ticks, too coarse for one burst's backends)."""

    def __init__(self, data_directory: Path) -> None:
        self.data_directory = data_directory

    def seconds(self) -> float | None:
        import psutil

        try:
            pid = int((self.data_directory / "postmaster.pid").read_text().split()[0])
            pids = [pid, *(child.pid for child in psutil.Process(pid).children())]
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        total = 0
        for each in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):  # gone since
                total += int(Path(f"/proc/{each}/schedstat").read_text().split()[0])
        return total / 1e9


def cpu_now(servers: Sequence[ServerCpu]) -> list[float | None]:
    """This process's CPU seconds, then each server's."""
    return [time.process_time(), *(server.seconds() for server in servers)]


def burst(
    pool: ThreadPoolExecutor,
    system: System,
    plan: list[list[int]],
    timed: bool,
    servers: Sequence[ServerCpu] = (),
) -> None:
    """All clients at once, client ``c`` running the queries ``plan[c]``."""
    assert system.searches is not None
    before = cpu_now(servers) if timed else []
    barrier = threading.Barrier(len(plan))

    def client(c: int) -> tuple[float, float, list[float], int]:
        search = system.searches[c]  # type: ignore[index]
        latencies: list[float] = []
        short = 0
        barrier.wait(timeout=60)
        first = time.perf_counter()
        for q in plan[c]:
            start = time.perf_counter()
            ids = search(q)
            latencies.append(time.perf_counter() - start)
            short += len(ids) < K[0]
        return first, time.perf_counter(), latencies, short

    futures = [pool.submit(client, c) for c in range(len(plan))]
    results = [f.result(timeout=BURST_TIMEOUT) for f in futures]
    if timed:
        after = cpu_now(servers)
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            if len(system.cpu) <= i:
                system.cpu.append(0.0)
            if a is None or b is None or system.cpu[i] is None:
                system.cpu[i] = None
            else:
                system.cpu[i] += a - b  # type: ignore[operator]
        system.wall += max(r[1] for r in results) - min(r[0] for r in results)
        for _, _, latencies, short in results:
            system.latencies.extend(latencies)
            system.queries += len(latencies)
            system.short += short


K = [10]  # k, for the clients' "fewer than k rows" count


class StoreWarnings(logging.Handler):
    """Keep what langchain_pgvec logs at WARNING and above (e.g. a replica skipped)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """SIGTERM raises SystemExit, so the replica is cleaned up on ``kill`` too."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def explain_plan(url: str, collection: Any, vector: np.ndarray, k: int) -> str:
    with connect_raw(url, autocommit=True) as conn:
        try:
            lines = [
                r[0]
                for r in conn.execute(
                    sql.SQL(
                        "EXPLAIN SELECT id FROM {} WHERE collection_id = %s "
                        "ORDER BY embedding <=> %b LIMIT {}"
                    ).format(sql.Identifier(OURS_TABLE), sql.Literal(k)),
                    (collection, vector),
                )
            ]
            return summarize_plan(conn, lines)
        except psycopg.Error as exc:
            return f"explain failed: {type(exc).__name__}"


def replication_state(url: str, replica: Replica) -> str:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state, sync_state, coalesce(replay_lag::text, 'none') FROM pg_stat_replication"
        ).fetchall()
    with replica.connect() as conn:
        row = conn.execute(
            "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver), "
            "current_setting('shared_buffers'), current_setting('hot_standby'), "
            "current_setting('listen_addresses')"
        ).fetchone()
    assert row is not None
    senders = "; ".join(f"state={r[0]}, sync_state={r[1]}, replay_lag={r[2]}" for r in rows)
    return (
        f"primary's pg_stat_replication: {senders or 'no sender'}; replica: "
        f"in recovery={row[0]}, WAL receiver {row[1]}, shared_buffers={row[2]}, "
        f"hot_standby={row[3]}, listen_addresses={row[4]}"
    )


def build_systems(
    args: argparse.Namespace,
    url: str,
    replica: Replica,
    collection: Any,
    queries: np.ndarray,
    opened: list[Any],
) -> list[System]:
    clients, k = args.clients, args.k
    half = f"{clients} ({(clients + 1) // 2} + {clients // 2})"
    systems: list[System] = []
    if "ours" in args.systems:
        ours = import_ours()
        vectors = list(queries)  # float32 arrays, as raw SQL gets them

        def store(read_replicas: list[str] | None) -> Any:
            made = ours.PGVecStore(
                BenchEmbeddings(args.dim),
                connection=url,
                collection_name=COLLECTION,
                embedding_length=args.dim,
                # bounded by a session setting, as raw SQL and PGVector are: the store's
                # statement_timeout= would add a set_config statement to each search
                engine_kwargs={"pool_size": clients, "connect_args": SESSION_TIMEOUT},
                read_replicas=read_replicas,
            )
            opened.append(made)
            return made

        specs = [
            ("replica (`read_replicas=[replica]`)", [replica.url], f"{clients}", False),
            (
                "replica + primary (`read_replicas=[replica, primary]`)",
                [replica.url, url],
                f"{clients}",
                False,
            ),
            ("primary alone", None, f"{clients}", True),
        ]
        for servers, read_replicas, note, alone in specs:
            row = System("ours PGVecStore", servers, note, alone=alone)
            if ours.missing:
                row.na = ours.missing
            else:
                try:
                    row.store = store(read_replicas)
                    row.searches = [store_search(row.store, vectors, k)] * clients
                except Exception as exc:  # a row that cannot be set up says why
                    row.na = error_note(exc)
            systems.append(row)
    if "raw" in args.systems:
        specs_raw = [
            ("replica + primary (connections split)", [replica.url, url], half, False),
            ("replica alone", [replica.url], f"{clients}", False),
            ("primary alone", [url], f"{clients}", True),
        ]
        for servers, urls, note, alone in specs_raw:
            row = System("raw psycopg", servers, note, alone=alone)
            try:
                conns = [raw_connection(urls[c % len(urls)]) for c in range(clients)]
                opened.extend(conns)
                row.searches = [raw_search(conn, collection, queries, k) for conn in conns]
            except Exception as exc:
                row.na = error_note(exc)
            systems.append(row)
    if "pgvector" in args.systems:
        systems.append(
            System(
                "langchain-postgres PGVector",
                "replica",
                f"{clients}",
                na="n/a: PGVector has no read replicas",
            )
        )
        row = System("langchain-postgres PGVector", "primary alone", f"{clients}", alone=True)
        try:
            from langchain_postgres import PGVector

            pgvector = PGVector(
                BenchEmbeddings(args.dim),
                connection=url,
                collection_name=V1_COLLECTION,
                embedding_length=args.dim,
                use_jsonb=True,
                engine_args={
                    "pool_size": clients,
                    "connect_args": SESSION_TIMEOUT,
                },
            )
            opened.append(pgvector)
            lists = queries.tolist()  # its API takes list[float]
            row.searches = [store_search(pgvector, lists, k)] * clients
        except Exception as exc:
            row.na = error_note(exc)
        systems.append(row)
    return systems


def measure(
    args: argparse.Namespace,
    systems: list[System],
    report: Report,
    servers: Sequence[ServerCpu] = (),
) -> None:
    clients, per_client = args.clients, args.queries
    live = [s for s in systems if s.searches is not None and not s.na]
    blocks = np.array_split(np.arange(per_client), args.rounds)
    warm_base = clients * per_client
    rng = np.random.default_rng(args.seed + 7)
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for s in live:  # untimed warm-up: queries of their own, never timed
            plan = [
                list(range(warm_base + c * args.warmup, warm_base + (c + 1) * args.warmup))
                for c in range(clients)
            ]
            try:
                if args.warmup:
                    burst(pool, s, plan, timed=False)
            except Exception as exc:
                s.error = error_note(exc)
            if s.store is not None:
                s.served_before = served_counts(s.store)
        gc.collect()
        gc.freeze()
        for r in range(args.rounds):
            order = [int(i) for i in rng.permutation(len(live))]
            for position in order:
                s = live[position]
                if s.error:
                    continue
                # system i runs block (r + i) of each client's queries in round r: no two
                # systems run the same queries in the same round
                block = blocks[(r + position) % args.rounds]
                plan = [[c * per_client + int(j) for j in block] for c in range(clients)]
                try:
                    burst(pool, s, plan, timed=True, servers=servers)
                except Exception as exc:
                    s.error = error_note(exc)
                    report.progress(f"{s.label}: {s.error}")
            report.progress(f"round {r + 1}/{args.rounds} done")
        gc.unfreeze()
    for s in live:
        if s.store is not None:
            s.served_after = served_counts(s.store)


def statements_per_search(system: System) -> str:
    """Statements one search sends (the third of three calls, seen at the driver)."""
    if system.searches is None or system.na or system.error:
        return "n/a"
    search = system.searches[0]
    search(0)
    search(1)
    with SqlCapture() as capture:
        search(2)
    return str(len(capture.statements))


def same_results(a: System, b: System, count: int) -> str:
    """How many of the first ``count`` queries two rows answer with the same ids."""
    if a.searches is None or b.searches is None or a.na or b.na or a.error or b.error:
        return "n/a"
    same = sum(a.searches[0](q) == b.searches[0](q) for q in range(count))
    return f"{same}/{count}"


def report_table(args: argparse.Namespace, systems: list[System], report: Report) -> None:
    qps: dict[str, float] = {}
    for s in systems:
        if s.alone and s.queries and not s.error:
            qps[s.family] = s.queries / s.wall
    rows = []
    for s in systems:
        served = ""
        before, after = s.served_before, s.served_after
        if before is not None and after is not None and s.queries and not s.error:
            delta = [x - y for x, y in zip(after, before, strict=True)]
            if len(delta) == 1:  # no replicas: every search on the primary, no routing
                served = f"primary {s.queries:,}"
            else:
                names = ["replica", "primary (as replica)"][: len(delta) - 1]
                served = ", ".join(
                    f"{n} {d:,}" for n, d in zip([*names, "primary (fallback)"], delta, strict=True)
                )
        elif s.family == "raw psycopg" and s.queries and not s.error:
            if "split" in s.servers:
                share = (args.clients + 1) // 2
                served = (
                    f"replica {share * args.queries:,}, "
                    f"primary {(args.clients - share) * args.queries:,} (by connection)"
                )
            else:
                served = f"{s.servers.split()[0]} {s.queries:,}"
        elif s.queries and not s.error:
            served = f"primary {s.queries:,}"
        if s.na or s.error or not s.queries:
            note = s.na or s.error or "not measured"
            rows.append([s.family, s.servers, s.clients_note, *["n/a"] * 6, served, note])
            continue
        rate = s.queries / s.wall
        base = qps.get(s.family)
        cpu = " / ".join("?" if c is None else f"{c / s.queries * 1000:.2f}" for c in s.cpu)
        note = f"{s.short} queries returned fewer than {args.k} rows" if s.short else ""
        rows.append(
            [
                s.family,
                s.servers,
                s.clients_note,
                fmt_rate(rate),
                fmt_ms(float(np.percentile(s.latencies, 50))),
                fmt_ms(float(np.percentile(s.latencies, 95))),
                fmt_ratio(rate / base if base else None),
                cpu,
                s.statements,
                served,
                note,
            ]
        )
    report.table(
        [
            "system",
            "servers",
            "clients",
            "QPS",
            "p50 ms",
            "p95 ms",
            "QPS ratio to primary alone",
            "CPU ms/query: client / primary / replica",
            "stmts/search",
            "searches served",
            "note",
        ],
        rows,
        "lllrrrrrrll",
    )


def main() -> None:
    args = parse_args()
    K[0] = args.k
    report = Report(args.output)
    handler = StoreWarnings()
    logging.getLogger("langchain_pgvec").addHandler(handler)
    base_url = start_server(args)
    replica: Replica | None = None
    opened: list[Any] = []
    try:
        with sigterm_exits():
            url = fresh_database(base_url, args.database)
            report.add("# Read-replica benchmark", "", *environment(url))
            report.progress("making the replica (pg_basebackup -R)")
            with stopwatch() as made:
                replica = make_replica(url, args.replica_dir, slot=SLOT)
            with replica.connect() as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            owner = replica.user or pwd.getpwuid(os.geteuid()).pw_name
            report.add(
                f"- replica: PostgreSQL {version}, `pg_basebackup -R -C -S {SLOT} -X stream -c "
                f"fast` of the primary (a physical replication slot, dropped at the end), "
                f"before the load ({made[0]:.1f} s to copy and start), run with the "
                f"primary's own binaries (`{replica.binaries}`) as user `{owner}`, at "
                f"`{redact(replica.url)}` (TCP, 127.0.0.1 only); the primary is reached over "
                "its Unix socket",
            )
            report.progress(f"generating {args.rows:,} x {args.dim} rows")
            corpus = make_corpus(args.rows, args.dim, seed=args.seed)
            total = args.clients * (args.queries + args.warmup)
            queries = corpus.queries(total)
            loads: list[str] = []
            if "ours" in args.systems or "raw" in args.systems:
                loads += load_ours(args, url, corpus, report)
            if "pgvector" in args.systems:
                loads += load_pgvector(args, url, corpus, report)
            report.progress("VACUUM ANALYZE, CHECKPOINT; waiting for the replica to replay")
            maintenance(url, "VACUUM ANALYZE", "CHECKPOINT")
            waited = replica.wait_streaming(CATCH_UP_TIMEOUT)
            state = replication_state(url, replica)
            with psycopg.connect(conninfo(url), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT id FROM pgvec_collection WHERE name = %s", (COLLECTION,)
                ).fetchone()
            collection = row[0] if row else None
            plans = {
                "primary": explain_plan(url, collection, queries[0], args.k),
                "replica": explain_plan(replica.url, collection, queries[0], args.k),
            }
            report.add(
                f"- {state}",
                f"- data: N={args.rows:,} synthetic clustered unit vectors (float32), dim "
                f"{args.dim}, seed {args.seed}; cosine distance; then `VACUUM ANALYZE`, "
                f"`CHECKPOINT`, and {waited:.2f} s until the replica had replayed the primary's "
                "`pg_current_wal_lsn()`",
                *loads,
                f"- workload: {args.clients} client threads in this one Python process, all "
                f"starting together; each runs {args.queries} timed top-{args.k} queries per "
                f"system (after {args.warmup} untimed ones of its own), in {args.rounds} rounds; "
                "each round runs every system's burst once, in an order shuffled anew each "
                f"round (seed {args.seed} + 7); {args.clients * args.queries:,} timed queries "
                "per row; QPS = queries / summed burst wall time; p50/p95 over every query",
                "- ours: `similarity_search_by_vector(vector, k)` (float32 numpy vectors), "
                f"`engine_kwargs={{'pool_size': {args.clients}}}` (one connection per client; "
                "the default pool is 5) and `connect_args` setting `statement_timeout` to "
                f"{STATEMENT_TIMEOUT_S} s per session (as for raw SQL and `PGVector`), "
                "`read_your_writes` at its "
                "default (True): the searching stores never write, so no search waits for a "
                "replay position",
                "- raw psycopg: one autocommit connection per client (`register_vector`), "
                f"`SELECT id FROM {OURS_TABLE} WHERE collection_id = %s ORDER BY embedding <=> "
                f"%b LIMIT {args.k}` on our store's table and index, psycopg's automatic "
                f"prepared statements; plan: primary {plans['primary']}, replica "
                f"{plans['replica']}",
                "- langchain-postgres `PGVector`: `similarity_search_by_vector(list[float], k)`, "
                f"`engine_args` pool_size={args.clients} and the same `connect_args`",
                "",
                "**Both servers share this machine's "
                f"{os.cpu_count()} cores** (with the client threads, which run in the same "
                "process): a replica cannot add CPU here. These figures show what routing "
                "searches to a replica costs and how the load splits between the servers, "
                "not a scale-out gain; with the replica on a machine of its own, the split "
                "rows would add its CPU.",
                "",
            )
            systems = build_systems(args, url, replica, collection, queries, opened)
            report.progress(
                f"measuring {sum(1 for s in systems if not s.na)} rows, "
                f"{args.clients} clients x {args.queries} queries each"
            )
            with psycopg.connect(conninfo(url), autocommit=True) as conn:
                primary_data = Path(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
            servers = [ServerCpu(primary_data), ServerCpu(replica.data)]
            measure(args, systems, report, servers)
            for s in systems:
                s.statements = statements_per_search(s)
            report.add("## Search throughput", "")
            report_table(args, systems, report)
            by_label = {s.label: s for s in systems}
            checks = []
            for family in ("ours PGVecStore", "raw psycopg"):
                alone = by_label.get(f"{family} / primary alone")
                other = next(
                    (s for s in systems if s.family == family and "replica" in s.servers), None
                )
                if alone is not None and other is not None:
                    checks.append(
                        f"{family} {same_results(other, alone, min(20, args.queries))} "
                        f"({other.servers} against primary alone)"
                    )
            report.add(
                "- QPS ratio: QPS / the same system's QPS on the primary alone. CPU ms/query: "
                "CPU time per timed query of this Python process (every client thread: the "
                "store's or driver's own work, and the harness's) and of each server's "
                "processes (its postmaster and children, `/proc/<pid>/schedstat`), over the "
                "row's bursts. "
                "stmts/search: the statements one search sends, seen at the driver (psycopg "
                "cursors), after two searches on that client.",
                "- the same top-k ids for the first queries on both sides: " + "; ".join(checks),
                "- after the runs: " + replication_state(url, replica),
                "- store warnings (langchain_pgvec logger): "
                + ("; ".join(sorted(set(handler.messages))) or "none"),
                "",
            )
    finally:
        for thing in reversed(opened):
            with contextlib.suppress(Exception):
                if hasattr(thing, "close"):  # psycopg connections, our stores
                    thing.close()
                else:  # PGVector: its engine
                    thing._engine.dispose()
        if replica is not None:
            report.progress("stopping the replica and removing its directory")
            replica.cleanup()
        report.write()


if __name__ == "__main__":
    main()
