"""query.py's ``text`` phase: loading and keyword/hybrid search speed on real text.

The text is Debian's English package descriptions (the ``*_main_i18n_Translation-en``
list, read as text_quality.py reads it), each long description split into its
paragraphs as a RAG splitter would chunk it; ``--text-n`` chunks of a shuffle. The
queries are package summaries of packages that have a chunk in the corpus (known-item
queries). The vectors are synthetic (``make_corpus``' clustered unit vectors, and its
query stream for the hybrid queries' embeddings): they only set the vector leg's cost
here; search quality on real embeddings is text_quality.py's.

Loading: the same rows (texts, one numpy array of vectors, metadata, ids) into four
fresh tables: ours ``PGVecStore(full_text=False)`` and ``PGVecStore(full_text=True)``
through ``add_embeddings``, and raw psycopg ``COPY BINARY`` into the baseline table
without and with a generated ``tsvector`` column and its GIN index.

Queries: after the loads, an HNSW index on ours (full text) and on the raw table with
the ``tsvector`` column; ours ``full_text_search`` and ``hybrid_search`` against the SQL a
hand-written psycopg app would send (``websearch_to_tsquery`` ranked by ``ts_rank_cd``, and
one statement fusing that with the HNSW top-k by RRF), interleaved in shuffled rounds.
"""

from __future__ import annotations

import argparse
import gc
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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
    Stats,
    connect_raw,
    conninfo,
    copy_binary,
    create_raw_table,
    error_note,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    hold_autovacuum,
    import_ours,
    maintenance,
    make_corpus,
    raw_rows,
    stopwatch,
    summarize_plan,
)
from psycopg import sql
from text_quality import APT_HELPER, DebianRecord, _translation_file, parse_translation

DEFAULT_TEXT_N = 100_000
QUICK_TEXT_N = 5_000
MIN_CHUNK = 40  # characters: shorter paragraphs are dropped, as a splitter would merge them

COLLECTION = "text"
OURS_PLAIN = "text_ours_plain"  # embedding tables; collection tables get "_collection"
OURS_TEXT = "text_ours_fts"
RAW_PLAIN = "text_raw_plain"
RAW_TEXT = "text_raw_fts"

RRF_K = 60
LOAD_TARGET = 0.6  # loading with full_text at >= 0.6x the speed of loading without it
FTS_TARGET_MS = 5.0  # full_text_search p50 at 100,000 documents
HYBRID_TARGET_MS = 10.0  # hybrid_search p50 at 100,000 documents
TARGET_N = 100_000


# ----------------------------------------------------------------------- the data


@dataclass
class TextData:
    """The chunks (as a Corpus: real texts, synthetic vectors) and the queries."""

    corpus: Corpus
    packages: list[str]  # the package of each chunk
    queries: list[str]  # summaries: the timed ones, then the warm-up ones
    targets: list[str]  # the package of each query
    query_vectors: np.ndarray  # the hybrid queries' embeddings, one per query
    source: str  # where the text came from (a report line)


def split_paragraphs(description: str, min_chars: int) -> list[str]:
    """A long description's paragraphs (blank-line separated), the short ones dropped."""
    chunks = (c.strip() for c in re.split(r"\n[ \t]*\n", description))
    return [c for c in chunks if len(c) >= min_chars]


def read_debian() -> tuple[list[DebianRecord], str]:
    """The Translation-en list's records, and its file name (text_quality's reader)."""
    path = _translation_file()
    text = subprocess.run(
        [APT_HELPER, "cat-file", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return parse_translation(text), path.name


def build_data(args: argparse.Namespace, report: Report) -> TextData:
    report.progress("text: reading Debian's package descriptions")
    records, name = read_debian()
    unique: list[DebianRecord] = []
    seen: set[str] = set()
    for record in records:  # identical long descriptions once, as text_quality keeps them
        key = " ".join(record.description.split())
        if key not in seen:
            seen.add(key)
            unique.append(record)
    chunks: list[tuple[str, str]] = [
        (r.package, chunk)
        for r in unique
        for chunk in split_paragraphs(r.description, args.text_min_chars)
    ]
    order = np.random.default_rng([args.seed, 20]).permutation(len(chunks))
    n = min(args.text_n, len(chunks))
    kept = [chunks[i] for i in order[:n].tolist()]

    # queries: the summaries of packages with a chunk in the corpus, each summary
    # (case-folded) that of one such package only, so that each query has one answer
    summary = {r.package: r.summary for r in unique}
    in_corpus = sorted({package for package, _ in kept})
    counts = Counter(summary[p].casefold() for p in in_corpus)
    eligible = [p for p in in_corpus if counts[summary[p].casefold()] == 1]
    count = min(args.queries + args.warmup, len(eligible))
    if count < args.queries + args.warmup:
        raise SystemExit(
            f"the text phase has {len(eligible):,} packages to ask for, fewer than "
            f"--queries + --warmup ({args.queries + args.warmup:,}); raise --text-n"
        )
    rng = np.random.default_rng([args.seed, 21])
    picked = [eligible[i] for i in rng.choice(len(eligible), size=count, replace=False)]

    corpus = make_corpus(n, args.dim, seed=args.seed)
    corpus.texts = [text for _, text in kept]
    packages = [package for package, _ in kept]
    corpus.metadatas = [{"package": p, "chunk": i} for i, p in enumerate(packages)]
    source = (
        f"`{name}` ({len(records):,} records, {len(unique):,} distinct long descriptions, "
        f"{len(chunks):,} paragraphs of {args.text_min_chars} characters or more); {n:,} "
        f"paragraphs of a shuffle (seed {args.seed})"
    )
    return TextData(
        corpus,
        packages,
        [summary[p] for p in picked],
        picked,
        corpus.queries(count),
        source,
    )


class QueryVectors(BenchEmbeddings):
    """The store's embeddings: each query's vector computed beforehand (the search's
    latency is the search's); any other text gets BenchEmbeddings' stand-in."""

    def __init__(self, dim: int, queries: list[str], vectors: np.ndarray) -> None:
        super().__init__(dim)
        self._vectors = {q: v.tolist() for q, v in zip(queries, vectors, strict=True)}

    def embed_query(self, text: str) -> list[float]:
        vector = self._vectors.get(text)
        return vector if vector is not None else super().embed_query(text)


# -------------------------------------------------------------------------- loads


def create_raw_text_table(url: str, table: str, dim: int) -> None:
    """The raw baseline table (``create_raw_table``) plus a generated ``content_tsv``
    column and its GIN index, as a hand-written full-text app would have it."""
    create_raw_table(url, table, dim)
    name = sql.Identifier(table)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS "
                "(to_tsvector('english', coalesce(content, ''))) STORED"
            ).format(name)
        )
        conn.execute(
            sql.SQL("CREATE INDEX {} ON {} USING gin (content_tsv)").format(
                sql.Identifier(f"{table}_tsv_gin"), name
            )
        )


@dataclass
class Load:
    system: str
    how: str
    seconds: float | None = None
    after: float | None = None  # the harness's VACUUM ANALYZE (raw only), seconds
    note: str = ""


def _ours_store(ours: Any, url: str, table: str, full_text: bool, embeddings: Any) -> Any:
    return ours.PGVecStore(
        embeddings,
        connection=url,
        collection_name=COLLECTION,
        embedding_length=embeddings.dim,
        embedding_table=table,
        collection_table=f"{table}_collection",
        full_text=full_text,
    )


def load_all(
    args: argparse.Namespace, url: str, data: TextData, report: Report
) -> tuple[list[Load], Any]:
    """The four loads, in order; returns them and ours' full-text store (or None)."""
    ours = import_ours()
    corpus = data.corpus
    embeddings = QueryVectors(args.dim, data.queries, data.query_vectors)
    stores: dict[str, Any] = {}
    loads = [
        Load("ours, full_text=False", "add_embeddings(texts, numpy, metadatas, ids)"),
        Load("ours, full_text=True", "add_embeddings(texts, numpy, metadatas, ids)"),
        Load("raw psycopg", "COPY BINARY, commit"),
        Load("raw psycopg, tsvector + GIN", "COPY BINARY, commit"),
    ]
    # every table first (untimed: ours by create_tables(), raw by CREATE TABLE), then
    # autovacuum held off them all, so that none is vacuumed during another's load
    for load, table, full_text in ((loads[0], OURS_PLAIN, False), (loads[1], OURS_TEXT, True)):
        if ours.missing:
            load.note = f"n/a: {ours.missing}"
            continue
        try:
            stores[table] = _ours_store(ours, url, table, full_text, embeddings)
            stores[table].create_tables()
        except Exception as exc:
            load.note = error_note(exc)
    create_raw_table(url, RAW_PLAIN, args.dim)
    create_raw_text_table(url, RAW_TEXT, args.dim)
    hold_autovacuum(url)

    def ours_load(table: str) -> Callable[[], None]:
        def run() -> None:
            stores[table].add_embeddings(
                corpus.texts, corpus.vectors, metadatas=corpus.metadatas, ids=corpus.ids
            )

        return run

    def raw_load(table: str) -> Callable[[], None]:
        def run() -> None:
            with connect_raw(url) as conn:
                rows = raw_rows(corpus, RAW_COLLECTION)
                copy_binary(conn, table, RAW_COLUMNS, RAW_TYPES, rows)
                conn.commit()

        return run

    steps = [
        (loads[0], OURS_PLAIN in stores, ours_load(OURS_PLAIN), None),
        (loads[1], OURS_TEXT in stores, ours_load(OURS_TEXT), None),
        (loads[2], True, raw_load(RAW_PLAIN), RAW_PLAIN),
        (loads[3], True, raw_load(RAW_TEXT), RAW_TEXT),
    ]
    for load, ready, run, raw_table in steps:
        if not ready:
            continue
        maintenance(url, "CHECKPOINT")  # the previous load's dirty pages are not this one's
        report.progress(f"text: loading {len(corpus):,} rows, {load.system}")
        try:
            with stopwatch() as took:
                run()
            load.seconds = took[0]
        except Exception as exc:
            load.note = error_note(exc)
            continue
        if raw_table is not None:
            with stopwatch() as took:
                maintenance(url, sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(raw_table)))
            load.after = took[0]
    for table, store in stores.items():
        if table != OURS_TEXT:
            store.close()
    return loads, stores.get(OURS_TEXT)


def table_sizes(url: str) -> list[list[str]]:
    """Each table of the schema with its indexes and TOAST: the cost of the text."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)), "
            "pg_size_pretty(pg_indexes_size(c.oid)), "
            "pg_size_pretty(pg_total_relation_size(c.oid)) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
            "ORDER BY pg_total_relation_size(c.oid) DESC"
        ).fetchall()
    return [list(r) for r in rows]


def drop_unqueried(url: str) -> None:
    """Drop the two tables without full text: nothing queries them, and their pages
    would only crowd the queried tables' out of the buffer cache."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for table in (OURS_PLAIN, RAW_PLAIN):
            for name in (table, f"{table}_collection"):
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


# ------------------------------------------------------------------------ queries

RAW_FTS = """
SELECT e.id, e.content, e.metadata, ts_rank_cd(e.content_tsv, q.query) AS rank
FROM {t} AS e, websearch_to_tsquery('english', %(text)s) AS q(query)
WHERE e.collection_id = %(c)s AND e.content_tsv @@ q.query
ORDER BY rank DESC, e.id
LIMIT %(k)s
"""

RAW_HYBRID = """
WITH q AS (SELECT websearch_to_tsquery('english', %(text)s) AS query),
vec AS (
    SELECT id, row_number() OVER (ORDER BY distance, id) AS r
    FROM (SELECT id, embedding <=> %(v)b AS distance FROM {t}
          WHERE collection_id = %(c)s
          ORDER BY embedding <=> %(v)b LIMIT %(fetch)s) AS s
),
txt AS (
    SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r
    FROM (SELECT e.id, ts_rank_cd(e.content_tsv, q.query) AS rank FROM {t} AS e, q
          WHERE e.collection_id = %(c)s AND e.content_tsv @@ q.query
          ORDER BY rank DESC, e.id LIMIT %(fetch)s) AS s
),
fused AS (
    SELECT id, sum(1.0 / (%(rrf)s::int + r)) AS score
    FROM (SELECT id, r FROM vec UNION ALL SELECT id, r FROM txt) AS u
    GROUP BY id
)
SELECT e.id, e.content, e.metadata, f.score
FROM fused AS f JOIN {t} AS e ON e.collection_id = %(c)s AND e.id = f.id
ORDER BY f.score DESC, e.id
LIMIT %(k)s
"""

SearchFn = Callable[[int], list[str]]  # query number -> the packages of the results


@dataclass
class Method:
    """One measured row: a system's search, its target, and what it did."""

    system: str
    call: str
    search: SearchFn | None
    target_ms: float | None = None
    note: str = ""
    plan: str = ""
    stats: Stats | None = None
    results: list[int] = field(default_factory=list)  # results returned, per timed query
    found: list[bool] = field(default_factory=list)  # the query's package among them


def explain_indexes(conn: psycopg.Connection[Any], statement: Any, params: dict[str, Any]) -> str:
    """The scans of a statement's plan, e.g. ``hnsw index + bitmap gin``."""
    try:
        lines = [r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + statement, params)]
    except psycopg.Error as exc:
        return f"explain failed: {type(exc).__name__}"
    return summarize_plan(conn, lines)


def raw_methods(conn: psycopg.Connection[Any], data: TextData, k: int) -> list[Method]:
    table = sql.Identifier(RAW_TEXT)
    fts = sql.SQL(RAW_FTS).format(t=table)
    hybrid = sql.SQL(RAW_HYBRID).format(t=table)
    fetch = max(20, 4 * k)  # the store's default fetch_k

    def fts_params(i: int) -> dict[str, Any]:
        return {"text": data.queries[i], "c": RAW_COLLECTION, "k": k}

    def hybrid_params(i: int) -> dict[str, Any]:
        params = fts_params(i)
        params.update(v=data.query_vectors[i], fetch=fetch, rrf=RRF_K)
        return params

    def run(statement: sql.Composed, params: Callable[[int], dict[str, Any]]) -> SearchFn:
        def search(i: int) -> list[str]:
            rows = conn.execute(statement, params(i), binary=True).fetchall()
            return [r[2]["package"] for r in rows]

        return search

    return [
        Method(
            "raw psycopg",
            f"websearch_to_tsquery, ORDER BY ts_rank_cd LIMIT {k}",
            run(fts, fts_params),
            note="the query's words AND'ed (websearch_to_tsquery)",
            plan=explain_indexes(conn, fts, fts_params(0)),
        ),
        Method(
            "raw psycopg",
            f"hybrid, one statement: RRF (k={RRF_K}) of HNSW top-{fetch} and that full-text "
            f"top-{fetch}",
            run(hybrid, hybrid_params),
            note="full-text leg AND'ed as above",
            plan=explain_indexes(conn, hybrid, hybrid_params(0)),
        ),
    ]


def ours_methods(store: Any, data: TextData, k: int) -> list[Method]:
    def full_text(i: int) -> list[str]:
        return [d.metadata["package"] for d in store.full_text_search(data.queries[i], k=k)]

    def hybrid(i: int) -> list[str]:
        return [d.metadata["package"] for d in store.hybrid_search(data.queries[i], k=k)]

    return [
        Method(
            "ours",
            f"full_text_search(summary, k={k})",
            full_text,
            FTS_TARGET_MS,
            note="BM25 over the query's words OR'ed",
        ),
        Method(
            "ours",
            f"hybrid_search(summary, k={k})",
            hybrid,
            HYBRID_TARGET_MS,
            note=f"RRF of both legs, default fetch_k ({max(20, 4 * k)}), rrf_k={RRF_K}; "
            "the query's embedding precomputed",
        ),
    ]


def measure(methods: list[Method], data: TextData, args: argparse.Namespace) -> None:
    """Every method's search on every query, interleaved: in each round (one timed
    query) the methods run in an order shuffled anew, after ``--warmup`` untimed
    queries each (the ones after the timed ones). A method that raises is reported."""
    live = [m for m in methods if m.search is not None]
    n = args.queries
    gc.collect()
    gc.freeze()  # the harness's objects stay out of the collections the searches trigger
    try:
        for m in live:
            try:
                for i in range(n, len(data.queries)):
                    m.search(i)  # type: ignore[misc]
            except Exception as exc:
                m.note, m.search = error_note(exc), None
        samples: dict[int, list[float]] = {j: [] for j in range(len(live))}
        order = np.random.default_rng([args.seed, 22])
        for i in range(n):
            for j in order.permutation(len(live)).tolist():
                m = live[j]
                if m.search is None:
                    continue
                try:
                    start = time.perf_counter()
                    packages = m.search(i)
                    samples[j].append(time.perf_counter() - start)
                except Exception as exc:
                    m.note, m.search = error_note(exc), None
                    continue
                m.results.append(len(packages))
                m.found.append(data.targets[i] in packages)
    finally:
        gc.unfreeze()
    for j, m in enumerate(live):
        if m.search is not None and samples[j]:
            m.stats = Stats(samples[j])
        else:
            m.results, m.found = [], []


# ---------------------------------------------------------------------------- run


def _status(value: float | None, target: float, n: int, at_least: bool) -> str:
    if value is None:
        return "n/a"
    met = value >= target if at_least else value <= target
    scale = "" if n >= TARGET_N else f" (at {n:,} rows; the target is for {TARGET_N:,})"
    return ("met" if met else "not met") + scale


def run_text(args: argparse.Namespace, url: str, report: Report) -> None:
    """The text phase, on the fresh database ``url``."""
    data = build_data(args, report)
    corpus = data.corpus
    n, k = len(corpus), args.k
    loads, store = load_all(args, url, data, report)
    sizes = table_sizes(url)
    drop_unqueried(url)

    builds: list[list[str]] = []
    methods: list[Method] = []
    raw: psycopg.Connection[Any] | None = None
    ours = import_ours()
    hnsw = f"HNSW m={args.m}, ef_construction={args.ef_construction}"
    try:
        if store is not None:
            report.progress("text: building HNSW on ours")
            try:
                with stopwatch() as took:
                    store.create_index(
                        ours.HNSW(m=args.m, ef_construction=args.ef_construction),
                        show_progress=False,
                    )
                builds.append(
                    ["ours, full_text=True", f"create_index({hnsw})", fmt_seconds(took[0])]
                )
                methods += ours_methods(store, data, k)
            except Exception as exc:
                builds.append(["ours, full_text=True", error_note(exc), "n/a"])
        report.progress("text: building HNSW on raw")
        with psycopg.connect(conninfo(url), autocommit=True) as conn, stopwatch() as took:
            conn.execute(
                sql.SQL(
                    "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) "
                    "WITH (m = {}, ef_construction = {})"
                ).format(
                    sql.Identifier(f"{RAW_TEXT}_hnsw"),
                    sql.Identifier(RAW_TEXT),
                    sql.Literal(args.m),
                    sql.Literal(args.ef_construction),
                )
            )
        builds.append(
            [
                "raw psycopg, tsvector + GIN",
                "CREATE INDEX ... USING hnsw (embedding vector_cosine_ops); ANALYZE after, untimed",
                fmt_seconds(took[0]),
            ]
        )
        maintenance(url, sql.SQL("ANALYZE {}").format(sql.Identifier(RAW_TEXT)))
        raw = connect_raw(url, autocommit=True)
        methods += raw_methods(raw, data, k)
        methods.append(
            Method(
                "langchain-postgres",
                "PGVector",
                None,
                note="n/a: PGVector has no keyword search (no full-text or hybrid call)",
            )
        )
        report.progress(f"text: {args.queries} queries x {len(methods) - 1} methods, interleaved")
        measure(methods, data, args)
    finally:
        if store is not None:
            store.close()
        if raw is not None:
            raw.close()

    report.add(
        "## Text phase: loading and keyword / hybrid search on real text",
        "",
        f"- text: Debian's English package descriptions, {data.source}: each long "
        "description split on its blank lines into paragraphs (a RAG splitter's chunks). "
        f"{args.queries} timed queries (and {args.warmup} warm-up ones per method): "
        "package summaries, of packages that have a paragraph in the corpus and whose "
        "summary no other such package has (known-item queries).",
        f"- vectors: synthetic, not embeddings of the text: `make_corpus({n}, {args.dim}, "
        f"seed={args.seed})`' clustered unit vectors for the paragraphs and its query stream "
        "for the queries' embeddings (ours gets them through an Embeddings object that maps "
        "each query text to its vector, computed beforehand). They set the vector leg's "
        "cost only; quality on real text and embeddings is text_quality.py's.",
        "- a database of its own; four fresh tables, made before the loads (untimed; ours by "
        "`create_tables()`), autovacuum held off all of them (thresholds never reached), a "
        "`CHECKPOINT` before each load; one run each, the same rows and the same numpy array.",
        "",
        "### Load",
        "",
    )
    rows = []
    for i, load in enumerate(loads):
        rate = n / load.seconds if load.seconds else None
        ratio = None
        without = loads[i - 1].seconds if i in (1, 3) else None
        if without and load.seconds:
            ratio = without / load.seconds
        rows.append(
            [
                load.system,
                load.how,
                fmt_seconds(load.seconds),
                fmt_rate(rate),
                fmt_ratio(ratio) if i in (1, 3) else "",
                fmt_seconds(load.after) if load.after is not None else "",
                load.note,
            ]
        )
    report.table(
        [
            "system",
            "how",
            "seconds",
            "vectors/s",
            "full text / without",
            "VACUUM ANALYZE s",
            "note",
        ],
        rows,
        "llrrrrl",
    )
    ours_ratio = (
        loads[0].seconds / loads[1].seconds if loads[0].seconds and loads[1].seconds else None
    )
    report.add(
        "full text / without = the speed with the tsvector column and its GIN index over the "
        "speed without it, of the same system. Ours' seconds are the `add_embeddings` call, "
        "which includes the store's own post-load work (its `ANALYZE` and, with full text, "
        "its term statistics and the GIN pending list); raw's are the COPY and its commit, "
        "and its `VACUUM ANALYZE` after it (by the harness) is shown apart, not counted.",
        "",
    )
    report.table(
        ["target", "value", "status"],
        [
            [
                f"ours: loading with full_text >= {LOAD_TARGET}x the speed without",
                fmt_ratio(ours_ratio),
                _status(ours_ratio, LOAD_TARGET, TARGET_N, at_least=True),
            ]
        ],
        "lrl",
    )
    report.add("### Sizes after the loads", "")
    report.table(["table", "heap", "indexes", "total"], sizes, "lrrr")
    report.add("### HNSW build (after the loads; the tables without full text dropped)", "")
    report.table(["system", "how", "seconds"], builds, "llr")

    report.add("### Queries", "")
    rows = []
    for m in methods:
        p50 = m.stats.median if m.stats else None
        target = status = ""
        if m.target_ms is not None:
            target = f"p50 <= {m.target_ms:g} ms"
            status = _status(None if p50 is None else p50 * 1000, m.target_ms, n, at_least=False)
        rows.append(
            [
                m.system,
                m.call,
                fmt_ms(p50),
                fmt_ms(m.stats.p95 if m.stats else None),
                f"{np.mean(m.results):.1f}" if m.results else "n/a",
                f"{np.mean([r == 0 for r in m.results]):.0%}" if m.results else "n/a",
                f"{np.mean(m.found):.0%}" if m.found else "n/a",
                target,
                status,
                m.plan,
                m.note,
            ]
        )
    report.table(
        [
            "system",
            "call",
            "p50 ms",
            "p95 ms",
            f"results of {k}",
            "no result",
            "package in results",
            "target",
            "status",
            "plan",
            "note",
        ],
        rows,
        "llrrrrrllll",
    )
    report.add(
        f"{n:,} paragraphs; {hnsw} on ours and on raw, default `hnsw.ef_search`. "
        "Timed interleaved: in each round every method runs one query, in an order "
        "shuffled anew. results of k = mean results returned; no result = share of queries "
        "that returned none; package in results = share of queries whose package has a "
        "paragraph among the results (a sanity check: the vector leg is synthetic, and "
        "quality is text_quality.py's). Raw psycopg: one autocommit connection, one "
        "statement per query, psycopg's automatic prepared statements; plan = the scans "
        "in EXPLAIN of the first query.",
        "",
    )
