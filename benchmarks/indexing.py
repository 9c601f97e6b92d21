"""Indexing API benchmark (issue 19): ``langchain_core.indexing.index()`` over N documents.

The same N documents (default 20,000, 384 dims, ~150-character texts, ten chunks per
source) go through LangChain's indexing API, which hashes each document, asks a record
manager which ones it has seen, writes the new ones to the vector store and records them:

- ours, ``store.index(docs, PGVecRecordManager(...), ...)``: records and vectors in one
  transaction of the store's database;
- ours, ``index(docs, PGVecRecordManager(...), store)`` called directly: each batch's
  writes and records commit on their own;
- ours with langchain-core's ``InMemoryRecordManager``;
- langchain-postgres ``PGVector`` with ``InMemoryRecordManager`` (at ``--peer-n``
  documents: its loading is tens of times slower per document);

against two floors measured in the same run: ``PGVecStore.add_documents`` of the same
documents (what ``index()`` adds its bookkeeping to) and raw psycopg ``COPY BINARY`` of
the same rows into an equivalent table. Each record manager's runs are: a first run into
empty tables, a re-run over unchanged sources (everything skipped), and a re-run after
10% of the sources changed one chunk and 5% were removed (``cleanup="full"``, which
deletes the removed and replaced documents).

The embedding model looks each text's vector up in the corpus: embedding costs nothing,
so the figures are those of the indexing pipeline and the database.

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/indexing.py``.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from _common import (
    RAW_COLLECTION,
    RAW_COLUMNS,
    RAW_TABLE,
    RAW_TYPES,
    Corpus,
    Report,
    Stats,
    base_parser,
    connect_raw,
    copy_binary,
    create_raw_table,
    environment,
    error_note,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    fresh_database,
    maintenance,
    make_corpus,
    raw_rows,
    start_server,
    time_reps,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import InMemoryRecordManager, index

CHUNKS_PER_SOURCE = 10
OURS_TABLE = "pgvec_embedding"
RECORD_TABLE = "pgvec_record"
BASELINE = "ours PGVecStore.add_documents (the floor of index())"


def parse_args() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="documents (ours, raw)")
    parser.add_argument(
        "--peer-n", type=int, default=2_000, help="documents for langchain-postgres (slow)"
    )
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each run")
    parser.add_argument("--batch-size", type=int, default=1_000, help="index()'s batch_size")
    args = parser.parse_args()
    if args.quick:
        args.n, args.peer_n, args.reps = 2_000, 300, 1
    return args


class LookupEmbeddings(Embeddings):
    """Each text's vector from the corpus (a changed text gets a fresh random one)."""

    def __init__(self, corpus: Corpus) -> None:
        self.dim = corpus.vectors.shape[1]
        self.vectors = {t: v.tolist() for t, v in zip(corpus.texts, corpus.vectors, strict=True)}
        self.rng = np.random.default_rng(7)

    def _vector(self, text: str) -> list[float]:
        found = self.vectors.get(text)
        if found is None:
            v = self.rng.standard_normal(self.dim)
            found = (v / np.linalg.norm(v)).tolist()
        return found

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def documents(corpus: Corpus, n: int) -> list[Document]:
    """N documents, ten chunks per ``source``."""
    return [
        Document(
            page_content=corpus.texts[i],
            metadata={**corpus.metadatas[i], "source": f"src-{i // CHUNKS_PER_SOURCE}"},
            id=corpus.ids[i],
        )
        for i in range(n)
    ]


def revised(docs: Sequence[Document]) -> list[Document]:
    """The documents after 10% of the sources changed one chunk and 5% were removed."""
    sources = sorted({d.metadata["source"] for d in docs})
    rng = np.random.default_rng(11)
    picked = rng.permutation(len(sources))
    changed = {sources[i] for i in picked[: len(sources) // 10]}
    removed = {sources[i] for i in picked[len(sources) // 10 : len(sources) * 3 // 20]}
    out = []
    first: set[str] = set()
    for d in docs:
        source = d.metadata["source"]
        if source in removed:
            continue
        if source in changed and source not in first:
            first.add(source)
            d = Document(page_content=d.page_content + " (revised)", metadata=d.metadata, id=d.id)
        out.append(d)
    return out


@dataclass
class Row:
    system: str
    run: str
    n: int
    stats: Stats | None = None
    outcome: str = ""
    note: str = ""

    @property
    def rate(self) -> float | None:
        return None if self.stats is None else self.n / self.stats.median


def _outcome(result: Any) -> str:
    if not isinstance(result, dict):
        return ""
    keys = ("num_added", "num_updated", "num_skipped", "num_deleted")
    return " / ".join(f"{result.get(k, 0):,}" for k in keys)


def runs(
    system: str,
    n: int,
    reps: int,
    first: Callable[[], Any],
    again: Callable[[], Any],
    revise: Callable[[], Any],
    empty: Callable[[], None],
) -> list[Row]:
    """Time a record manager's three runs: into empty tables, unchanged, revised.

    Every repetition starts from the state its run expects: empty tables for the first
    run; the first run's rows for the other two (re-made before each revised run)."""
    rows: list[Row] = []
    last: dict[str, Any] = {}

    def timed(name: str, call: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            last[name] = call()

        return run

    def refill() -> None:
        empty()
        first()

    plans: list[tuple[str, Callable[[], Any], Callable[[], None]]] = [
        ("first run, empty tables", first, empty),
        # after the first run's rows; an unchanged run leaves them so
        ("re-run, nothing changed", again, lambda: None),
        ("re-run, 10% of sources changed, 5% removed, cleanup=full", revise, refill),
    ]
    if reps > 0:
        refill()  # so that the first unchanged re-run has something to skip
    for label, call, setup in plans:
        try:
            stats = time_reps(timed(label, call), reps, setup=setup)
            rows.append(Row(system, label, n, stats, _outcome(last.get(label))))
        except Exception as exc:
            rows.append(Row(system, label, n, note=error_note(exc)))
    return rows


def bench_raw(url: str, corpus: Corpus, args: argparse.Namespace) -> list[Row]:
    """Raw psycopg COPY BINARY of the same rows: the database's floor."""
    create_raw_table(url, RAW_TABLE, args.dim)
    data = corpus.head(args.n)
    with connect_raw(url) as conn:

        def copy() -> None:
            copy_binary(conn, RAW_TABLE, RAW_COLUMNS, RAW_TYPES, raw_rows(data, RAW_COLLECTION))
            conn.commit()

        stats = time_reps(
            copy, args.reps, setup=lambda: maintenance(url, f"TRUNCATE {RAW_TABLE}", "CHECKPOINT")
        )
    return [Row("raw psycopg", "COPY BINARY of the same rows, no records", args.n, stats)]


def bench_ours(url: str, corpus: Corpus, args: argparse.Namespace) -> list[Row]:
    from langchain_pgvec import PGVecRecordManager, PGVecStore

    docs = documents(corpus, args.n)
    changed = revised(docs)
    embeddings = LookupEmbeddings(corpus)
    store = PGVecStore(
        embeddings, connection=url, collection_name="bench", embedding_length=args.dim
    )
    store.create_tables()
    records = PGVecRecordManager("bench/docs", store=store)
    records.create_schema()
    ids = [d.id for d in docs]
    rows: list[Row] = []

    def empty_store() -> None:
        maintenance(url, f"TRUNCATE {OURS_TABLE}", f"TRUNCATE {RECORD_TABLE}", "CHECKPOINT")

    def add() -> None:
        store.add_documents(docs, ids=ids)

    stats = time_reps(add, args.reps, setup=empty_store)
    rows.append(Row("ours", BASELINE, args.n, stats))

    kw: dict[str, Any] = {"source_id_key": "source", "batch_size": args.batch_size}
    one = "ours, store.index() + PGVecRecordManager (one transaction)"
    rows += runs(
        one,
        args.n,
        args.reps,
        lambda: store.index(docs, records, cleanup="incremental", **kw),
        lambda: store.index(docs, records, cleanup="incremental", **kw),
        lambda: store.index(changed, records, cleanup="full", **kw),
        empty_store,
    )
    direct = "ours, index() + PGVecRecordManager (a commit per batch)"
    rows += runs(
        direct,
        args.n,
        args.reps,
        lambda: index(docs, records, store, cleanup="incremental", **kw),
        lambda: index(docs, records, store, cleanup="incremental", **kw),
        lambda: index(changed, records, store, cleanup="full", **kw),
        empty_store,
    )
    memory = InMemoryRecordManager("bench/docs")
    memory.create_schema()

    def empty_memory() -> None:
        empty_store()
        memory.records.clear()

    rows += runs(
        "ours, index() + InMemoryRecordManager",
        args.n,
        args.reps,
        lambda: index(docs, memory, store, cleanup="incremental", **kw),
        lambda: index(docs, memory, store, cleanup="incremental", **kw),
        lambda: index(changed, memory, store, cleanup="full", **kw),
        empty_memory,
    )
    store.close()
    return rows


def bench_pgvector(url: str, corpus: Corpus, args: argparse.Namespace) -> list[Row]:
    """langchain-postgres PGVector with InMemoryRecordManager (no record manager of its own)."""
    from langchain_postgres import PGVector

    n = min(args.peer_n, args.n)
    docs = documents(corpus, n)
    changed = revised(docs)
    store = PGVector(
        LookupEmbeddings(corpus),
        connection=url,
        collection_name="bench",
        embedding_length=args.dim,
        use_jsonb=True,
    )
    memory = InMemoryRecordManager("bench/docs")
    memory.create_schema()
    kw: dict[str, Any] = {"source_id_key": "source", "batch_size": args.batch_size}

    def empty() -> None:
        maintenance(url, "TRUNCATE langchain_pg_embedding", "CHECKPOINT")
        memory.records.clear()

    try:
        return runs(
            "langchain-postgres PGVector, index() + InMemoryRecordManager",
            n,
            args.reps,
            lambda: index(docs, memory, store, cleanup="incremental", **kw),
            lambda: index(docs, memory, store, cleanup="incremental", **kw),
            lambda: index(changed, memory, store, cleanup="full", **kw),
            empty,
        )
    finally:
        engine = getattr(store, "_engine", None)
        if engine is not None:
            engine.dispose()


def main() -> None:
    args = parse_args()
    # index()'s default key encoder warns that SHA-1 is not collision-resistant: the
    # default is what users run, and the warning is not news to the reader of this table
    warnings.filterwarnings("ignore", message="Using SHA-1", category=UserWarning)
    report = Report(args.output)
    base_url = start_server(args)
    rows: list[Row] = []
    try:
        url = fresh_database(base_url, args.database)
        report.add("# Indexing API benchmark", "", *environment(url), "")
        report.add(
            f"- data: N={args.n:,} documents (langchain-postgres: {args.peer_n:,}), "
            f"{CHUNKS_PER_SOURCE} per source, dim {args.dim}, ~150-char texts, seed "
            f"{args.seed}; index(batch_size={args.batch_size}, source_id_key='source'), "
            f"cleanup='incremental' for the first and unchanged runs, 'full' for the "
            f"revised one; {args.reps} reps each; embeddings looked up, not computed",
            "",
        )
        corpus = make_corpus(args.n, args.dim, seed=args.seed)
        for name, bench in (("raw", bench_raw), ("ours", bench_ours), ("pgvector", bench_pgvector)):
            report.progress(name)
            rows += bench(fresh_database(base_url, args.database), corpus, args)
        floor = next((r for r in rows if r.run == BASELINE and r.stats), None)
        table = [
            [
                r.system,
                r.run,
                f"{r.n:,}",
                fmt_seconds(r.stats.median if r.stats else None),
                fmt_seconds(r.stats.p95 if r.stats else None),
                fmt_rate(r.rate),
                fmt_ratio(
                    None
                    if floor is None or floor.rate is None or r.rate is None
                    else floor.rate / r.rate
                ),
                r.outcome,
                r.note,
            ]
            for r in rows
        ]
        report.table(
            [
                "system",
                "run",
                "N",
                "median s",
                "p95 s",
                "docs/s",
                "time per doc / add_documents'",
                "added / updated / skipped / deleted",
                "note",
            ],
            table,
            "llrrrrrll",
        )
        report.add(
            "time per doc / add_documents' = this run's time per document divided by "
            "PGVecStore.add_documents' time per document for the same documents (1.00: "
            "as fast as writing them with no bookkeeping; 2.00: twice as slow).",
        )
    finally:
        report.write()


if __name__ == "__main__":
    main()
