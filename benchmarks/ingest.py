"""Bulk ingest benchmark (issue 4): the same precomputed vectors through every loader.

Baseline (ratio 1.00): raw psycopg ``COPY ... FROM STDIN (FORMAT BINARY)`` with
pgvector's binary dumper, into a table equivalent to ours (same columns, primary key and
GIN metadata index). Compared: raw psycopg ``executemany`` INSERT (binary parameters),
langchain-postgres ``PGVector.add_embeddings`` and ``PGVectorStore.add_embeddings``, and
our ``PGVecStore.add_embeddings`` (fresh insert and upsert over existing ids).

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/ingest.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from _common import (
    RAW_COLLECTION,
    RAW_COLUMNS,
    RAW_TABLE,
    RAW_TYPES,
    BenchEmbeddings,
    Corpus,
    Report,
    Stats,
    base_parser,
    connect_raw,
    conninfo,
    copy_binary,
    create_raw_table,
    environment,
    error_note,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    fresh_database,
    import_ours,
    loader_metadata,
    maintenance,
    make_corpus,
    raw_rows,
    start_server,
    time_reps,
)
from psycopg import sql
from psycopg.types.json import Jsonb

SYSTEMS = ("raw", "pgvector", "pgvectorstore", "ours")
PROFILES = ("simple", "loader")
V2_TABLE = "bench_lcpg_v2"
V1_TABLE = "langchain_pg_embedding"
# Our store's default embedding table (DESIGN.md); emptied between repetitions.
OURS_TABLE = "pgvec_embedding"


def parse_args() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="vectors for raw SQL and ours")
    parser.add_argument(
        "--peer-n", type=int, default=2_000, help="vectors for langchain-postgres (slow)"
    )
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 1536])
    parser.add_argument(
        "--profiles",
        nargs="+",
        choices=PROFILES,
        default=list(PROFILES),
        help="metadata: 'simple' (three flat keys) and/or 'loader' (ten keys, nested, "
        "like LangChain's document loaders)",
    )
    parser.add_argument("--reps", type=int, default=5, help="repetitions (raw SQL, ours)")
    parser.add_argument("--peer-reps", type=int, default=3, help="repetitions (peers)")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {SYSTEMS}"
    )
    parser.add_argument(
        "--plot",
        default="benchmarks/results/ingest_speed.png",
        help="where the loading-speed plot goes ('' for none)",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.peer_n, args.reps, args.peer_reps = 2_000, 300, 2, 2
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; pick from {SYSTEMS}")
    return args


@dataclass
class Row:
    """One line of the results table."""

    dim: int
    method: str
    n: int
    stats: Stats | None = None
    profile: str = "simple"
    note: str = ""

    @property
    def rate(self) -> float | None:
        return None if self.stats is None else self.n / self.stats.median


# ---------------------------------------------------------------------------- raw


BASELINE = "raw COPY BINARY (baseline)"


def copy_raw(conn: psycopg.Connection[Any], data: Corpus) -> None:
    """COPY the corpus into the raw table in one transaction (the baseline loader)."""
    copy_binary(conn, RAW_TABLE, RAW_COLUMNS, RAW_TYPES, raw_rows(data, RAW_COLLECTION))
    conn.commit()


def copy_analyzed(conn: psycopg.Connection[Any], data: Corpus) -> None:
    """COPY, then ANALYZE the columns searches are planned by, as the store does after a
    first load (without it, the next search is planned on the empty table's statistics)."""
    copy_raw(conn, data)
    conn.execute(sql.SQL("ANALYZE {} (collection_id, metadata)").format(sql.Identifier(RAW_TABLE)))
    conn.commit()


def insert_many(conn: psycopg.Connection[Any], data: Corpus) -> None:
    """INSERT the corpus with executemany and binary parameters, in one transaction."""
    stmt = sql.SQL(
        "INSERT INTO {} (collection_id, id, content, metadata, embedding) "
        "VALUES (%b, %b, %b, %b, %b)"
    ).format(sql.Identifier(RAW_TABLE))
    with conn.cursor() as cur:
        cur.executemany(stmt, raw_rows(data, RAW_COLLECTION))
    conn.commit()


RAW_STAGING = "raw_staging"


def upsert_raw(conn: psycopg.Connection[Any], data: Corpus, vectors: Any) -> None:
    """The hand-written upsert: COPY BINARY into a temporary table, then one INSERT ...
    ON CONFLICT DO UPDATE that leaves unchanged rows alone, in one transaction."""
    dim = data.vectors.shape[1]
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE {} (id text, content text, metadata jsonb, embedding vector({})) "
            "ON COMMIT DROP"
        ).format(sql.Identifier(RAW_STAGING), sql.Literal(dim))
    )
    rows = (
        (data.ids[i], data.texts[i], Jsonb(data.metadatas[i]), vector)
        for i, vector in enumerate(vectors)
    )
    copy_binary(conn, RAW_STAGING, RAW_COLUMNS[1:], RAW_TYPES[1:], rows)
    conn.execute(
        sql.SQL(
            "INSERT INTO {t} (collection_id, id, content, metadata, embedding) "
            "SELECT {c}, id, content, metadata, embedding FROM {s} "
            "ON CONFLICT (collection_id, id) DO UPDATE SET content = excluded.content, "
            "metadata = excluded.metadata, embedding = excluded.embedding "
            "WHERE ({t}.content, {t}.metadata, {t}.embedding) IS DISTINCT FROM "
            "(excluded.content, excluded.metadata, excluded.embedding)"
        ).format(
            t=sql.Identifier(RAW_TABLE),
            c=sql.Literal(str(RAW_COLLECTION)),
            s=sql.Identifier(RAW_STAGING),
        )
    )
    conn.commit()


def bench_raw(url: str, corpus: Corpus, args: argparse.Namespace) -> list[Row]:
    dim = corpus.vectors.shape[1]
    create_raw_table(url, RAW_TABLE, dim)

    def reset() -> None:
        maintenance(url, f"TRUNCATE {RAW_TABLE}", "CHECKPOINT")

    rows = []
    with connect_raw(url) as conn:
        for n in sorted({args.n, args.peer_n}, reverse=True):
            data = corpus.head(n)
            stats = time_reps(lambda d=data: copy_raw(conn, d), args.reps, setup=reset)
            rows.append(Row(dim, BASELINE, n, stats))
        data = corpus.head(args.n)
        stats = time_reps(lambda: copy_analyzed(conn, data), args.reps, setup=reset)
        rows.append(Row(dim, "raw COPY BINARY, then ANALYZE", args.n, stats))
        stats = time_reps(lambda: insert_many(conn, data), args.reps, setup=reset)
        rows.append(Row(dim, "raw executemany INSERT (binary)", args.n, stats))

        def vacuum() -> None:
            maintenance(url, f"VACUUM {RAW_TABLE}", "CHECKPOINT")

        flipped = itertools.cycle([-data.vectors, data.vectors])
        for label, vectors in (
            ("raw upsert: COPY to staging, INSERT ON CONFLICT", lambda: data.vectors),
            ("raw upsert, changed vectors", lambda: next(flipped)),
        ):
            stats = time_reps(
                lambda v=vectors: upsert_raw(conn, data, v()), args.reps, setup=vacuum
            )
            rows.append(Row(dim, label, args.n, stats))
    return rows


# ------------------------------------------------------------- langchain-postgres


def fresh_then_upsert(
    add: Callable[[], None], url: str, table: str, reps: int
) -> tuple[Stats, Stats]:
    """Time ``add`` into an emptied ``table``, then again over the rows it left."""
    fresh = time_reps(add, reps, setup=lambda: maintenance(url, f"TRUNCATE {table}", "CHECKPOINT"))
    upsert = time_reps(add, reps, setup=lambda: maintenance(url, f"VACUUM {table}", "CHECKPOINT"))
    return fresh, upsert


def bench_pgvector(url: str, corpus: Corpus, args: argparse.Namespace) -> list[Row]:
    """langchain_postgres.PGVector (v1 API, psycopg 3 driver)."""
    dim = corpus.vectors.shape[1]
    try:
        from langchain_postgres import PGVector
    except ImportError as exc:
        return [Row(dim, "langchain-postgres PGVector.add_embeddings", args.peer_n, note=str(exc))]
    data = corpus.head(args.peer_n)
    vectors = data.vectors.tolist()  # its API takes list[list[float]]; converted untimed
    # embedding_length=None: PGVector freezes its mapped classes (and so the vector
    # dimension) process-wide on first use, so a typed vector(384) column could not take
    # the 1536-dimensional run; an untyped vector column takes both.
    store = PGVector(
        BenchEmbeddings(dim),
        connection=url,
        collection_name=f"bench_{dim}",
        embedding_length=None,
        use_jsonb=True,
    )

    def add() -> None:
        store.add_embeddings(data.texts, vectors, metadatas=data.metadatas, ids=data.ids)

    fresh, upsert = fresh_then_upsert(add, url, V1_TABLE, args.peer_reps)
    return [
        Row(dim, "langchain-postgres PGVector.add_embeddings (fresh)", args.peer_n, fresh),
        Row(dim, "langchain-postgres PGVector.add_embeddings (upsert)", args.peer_n, upsert),
    ]


def bench_pgvectorstore(url: str, corpus: Corpus, args: argparse.Namespace) -> list[Row]:
    """langchain_postgres.PGVectorStore (v2 API: PGEngine + init_vectorstore_table)."""
    dim = corpus.vectors.shape[1]
    try:
        from langchain_postgres import PGEngine, PGVectorStore
    except ImportError as exc:
        return [
            Row(dim, "langchain-postgres PGVectorStore.add_embeddings", args.peer_n, note=str(exc))
        ]
    data = corpus.head(args.peer_n)
    vectors = data.vectors.tolist()
    # The same postgresql+psycopg URL: PGEngine makes an AsyncEngine from it (psycopg's
    # async driver), and the ?host=<socket dir> query parameter reaches libpq unchanged.
    engine = PGEngine.from_connection_string(url=url)
    try:
        engine.init_vectorstore_table(V2_TABLE, dim, overwrite_existing=True)
        store = PGVectorStore.create_sync(
            engine, embedding_service=BenchEmbeddings(dim), table_name=V2_TABLE
        )

        def add() -> None:
            store.add_embeddings(data.texts, vectors, metadatas=data.metadatas, ids=data.ids)

        fresh, upsert = fresh_then_upsert(add, url, V2_TABLE, args.peer_reps)
    finally:
        asyncio.run(engine.close())
    return [
        Row(dim, "langchain-postgres PGVectorStore.add_embeddings (fresh)", args.peer_n, fresh),
        Row(dim, "langchain-postgres PGVectorStore.add_embeddings (upsert)", args.peer_n, upsert),
    ]


# ---------------------------------------------------------------------------- ours


def bench_ours(url: str, corpus: Corpus, args: argparse.Namespace) -> list[Row]:
    """langchain_pgvec.PGVecStore.add_embeddings: numpy and list input, fresh and upsert."""
    dim = corpus.vectors.shape[1]
    data = corpus.head(args.n)
    labels = (
        "ours PGVecStore.add_embeddings (fresh, numpy)",
        "ours PGVecStore.add_embeddings (fresh, lists)",
        "ours PGVecStore.add_embeddings (upsert, numpy)",
        "ours PGVecStore.add_embeddings (upsert, changed vectors, numpy)",
    )
    ours = import_ours()
    if ours.missing:
        return [Row(dim, label, args.n, note=f"n/a: {ours.missing}") for label in labels]
    try:
        store = ours.PGVecStore(
            BenchEmbeddings(dim),
            connection=url,
            collection_name=f"bench_{dim}",
            embedding_length=dim,
        )
    except Exception as exc:
        return [Row(dim, label, args.n, note=error_note(exc)) for label in labels]

    def empty() -> None:
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (OURS_TABLE,)).fetchone()[0]
        if exists:
            maintenance(url, f"TRUNCATE {OURS_TABLE}", "CHECKPOINT")
        else:  # another table layout: fall back to the public API
            store.delete(ids=data.ids)
            maintenance(url, "CHECKPOINT")

    def vacuum() -> None:
        maintenance(url, f"VACUUM {OURS_TABLE}", "CHECKPOINT")

    lists = data.vectors.tolist()
    # unchanged rows are left alone by the upsert; here every call changes every vector
    flipped = itertools.cycle([-data.vectors, data.vectors])
    plans: list[tuple[str, Callable[[], Any], Callable[[], None]]] = [
        (labels[0], lambda: data.vectors, empty),
        (labels[1], lambda: lists, empty),
        (labels[2], lambda: data.vectors, vacuum),
        (labels[3], lambda: next(flipped), vacuum),
    ]
    rows = []
    for label, vectors, setup in plans:
        try:
            stats = time_reps(
                lambda v=vectors: store.add_embeddings(
                    data.texts, v(), metadatas=data.metadatas, ids=data.ids
                ),
                args.reps,
                setup=setup,
            )
            rows.append(Row(dim, label, args.n, stats))
        except Exception as exc:
            rows.append(Row(dim, label, args.n, note=error_note(exc)))
    return rows


# ---------------------------------------------------------------------------- main


def ratios(rows: list[Row]) -> dict[int, float | None]:
    """Time per vector relative to raw COPY at the same dimension and N."""
    baseline = {
        (r.dim, r.profile, r.n): r.stats.median / r.n
        for r in rows
        if r.method == BASELINE and r.stats is not None
    }
    out: dict[int, float | None] = {}
    for i, r in enumerate(rows):
        base = baseline.get((r.dim, r.profile, r.n))
        out[i] = None if r.stats is None or base is None else (r.stats.median / r.n) / base
    return out


#: our upsert rows and the raw upsert each is compared with
_UPSERT_PAIRS = {
    "ours PGVecStore.add_embeddings (upsert, numpy)": (
        "raw upsert: COPY to staging, INSERT ON CONFLICT"
    ),
    "ours PGVecStore.add_embeddings (upsert, changed vectors, numpy)": (
        "raw upsert, changed vectors"
    ),
}


def upsert_ratios(rows: list[Row]) -> dict[int, float]:
    """Speed of our upserts relative to the raw upsert of the same rows (same dim,
    metadata and N)."""
    raw = {(r.dim, r.profile, r.method): r.rate for r in rows if r.rate is not None}
    out = {}
    for i, r in enumerate(rows):
        pair = _UPSERT_PAIRS.get(r.method)
        base = None if pair is None else raw.get((r.dim, r.profile, pair))
        if r.rate is not None and base:
            out[i] = r.rate / base
    return out


def fmt_speed(value: float | None) -> str:
    """A speed relative to a baseline, ``0.93x``."""
    return "" if value is None else f"{value:.2f}x"


def plot_speed(rows: list[Row], path: str, report: Report) -> None:
    """Vectors per second by method, a panel per dimension (log scale: the slowest
    systems load tens of times slower than the fastest), written to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.progress("matplotlib is not installed: no plot")
        return
    dims = sorted({(r.dim, r.profile) for r in rows})
    measured = [r for r in rows if r.rate is not None]
    if not measured:
        return
    methods = list(dict.fromkeys(r.method for r in measured))
    height = 0.9 + 0.38 * len(methods)
    columns = min(2, len(dims))
    grid = (len(dims) + columns - 1) // columns
    figure, axes = plt.subplots(
        grid, columns, figsize=(6 * columns, height * grid), sharey=True, squeeze=False
    )
    panels = list(axes.flat)
    for ax, (dim, profile) in zip(panels, dims, strict=False):
        # a method measured at two N (the baseline): the larger N, as in the table's ratios
        rates = {
            r.method: r.rate
            for r in sorted(measured, key=lambda r: r.n)
            if (r.dim, r.profile) == (dim, profile)
        }
        values = [rates.get(m) or 0.0 for m in methods]
        colours = [
            "tab:gray"
            if m.startswith("raw")
            else "tab:blue"
            if m.startswith("ours")
            else "tab:orange"
            for m in methods
        ]
        bars = ax.barh(range(len(methods)), values, color=colours)
        for bar, value in zip(bars, values, strict=True):
            if value:
                ax.annotate(
                    f"{value:,.0f}",
                    (value, bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                )
        ax.set_xscale("log")
        ax.set_title(f"{dim} dimensions, {profile} metadata")
        ax.set_xlabel("vectors per second (log scale)")
        ax.grid(True, axis="x", which="both", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
    panels[0].invert_yaxis()
    figure.suptitle("Loading precomputed vectors: speed by system and method")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    report.progress(f"plot written to {path}")


def main() -> None:
    args = parse_args()
    report = Report(args.output)
    base_url = start_server(args)
    runners = {
        "raw": bench_raw,
        "pgvector": bench_pgvector,
        "pgvectorstore": bench_pgvectorstore,
        "ours": bench_ours,
    }
    rows: list[Row] = []
    try:
        url = fresh_database(base_url, args.database)
        report.add("# Ingest benchmark", "", *environment(url), "")
        report.add(
            f"- data: synthetic clustered unit vectors (float32), ~150-char texts, small JSON "
            f"metadata, seed {args.seed}; N={args.n:,} for raw SQL and ours, "
            f"N={args.peer_n:,} for langchain-postgres; {args.reps} reps "
            f"({args.peer_reps} for langchain-postgres); each rep into an emptied table "
            "(upsert rows: over the same ids already present, with the same values, or "
            "with every vector changed)",
            "",
        )
        for dim in args.dims:
            base = make_corpus(max(args.n, args.peer_n), dim, seed=args.seed)
            for profile in args.profiles:
                corpus = base
                if profile == "loader":
                    corpus = dataclasses.replace(
                        base, metadatas=loader_metadata(len(base), seed=args.seed)
                    )
                for system in args.systems:
                    url = fresh_database(base_url, args.database)
                    report.progress(f"dim {dim}, {profile} metadata: {system}")
                    for row in runners[system](url, corpus, args):
                        row.profile = profile
                        rows.append(row)
        ratio = ratios(rows)
        against = upsert_ratios(rows)
        table = [
            [
                r.dim,
                r.profile,
                r.method,
                f"{r.n:,}",
                r.stats.reps if r.stats else "n/a",
                fmt_seconds(r.stats.median if r.stats else None),
                fmt_seconds(r.stats.p95 if r.stats else None),
                fmt_rate(r.rate),
                fmt_ratio(ratio[i]),
                fmt_speed(None if ratio[i] is None else 1 / ratio[i]),
                fmt_speed(against.get(i)),
                r.note,
            ]
            for i, r in enumerate(rows)
        ]
        report.table(
            [
                "dim",
                "metadata",
                "method",
                "N",
                "reps",
                "median s",
                "p95 s",
                "vectors/s",
                "ratio",
                "speed vs raw COPY",
                "speed vs raw upsert",
                "note",
            ],
            table,
            "rllrrrrrrrrl",
        )
        report.add(
            "ratio = time per vector / raw COPY BINARY's time per vector at the same dim, "
            "metadata and N (1.00 = baseline; 2.00 = twice as slow); speed vs raw COPY is its "
            "inverse (the issue's targets: fresh >= 0.9x, upsert of unchanged rows >= 0.85x, "
            "every vector changed >= 0.75x). speed vs raw upsert compares ours with the "
            "hand-written upsert of the same rows (COPY into a temporary table, then INSERT "
            "... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM). metadata: 'simple' is "
            "three flat keys; 'loader' is ten keys shaped like LangChain's loaders' (strings, "
            "dates as strings, a nested object, a list of tags, a float).",
        )
        if args.plot:
            plot_speed(rows, args.plot, report)
    finally:
        report.write()


if __name__ == "__main__":
    main()
