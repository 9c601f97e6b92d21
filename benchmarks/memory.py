"""Memory of one big load: streamed, not held, whatever the call's size.

One ``PGVecStore.add_embeddings`` of 1,000,000 documents x 384 dimensions (a float32
numpy matrix, ~150-character texts, metadata shaped like LangChain's loaders' or three
flat keys with ``--metadata simple``), as a fresh insert (the direct COPY) and as an
upsert over the same ids (COPY into staging, then INSERT ... ON CONFLICT); and one
``add_texts`` of as many texts (the embedding model called ``batch_size`` = 1,000 texts
at a time). Measured, each in a process of its own so that one run's high-water mark
never hides another's:

- the inputs alone (the baseline): what building the matrix, texts, metadata and ids
  allocated (tracemalloc), and how much they grew the process (ru_maxrss);
- the call: its peak of Python allocations above the inputs (tracemalloc, in one run)
  and its growth of the process's peak resident set (ru_maxrss, in another run without
  tracemalloc, whose own bookkeeping would inflate it);
- the encoded payload: the size of the binary COPY stream for these rows, computed
  from the format; a loader that held it whole would need at least that much;
- the most bound parameters any statement carried (PostgreSQL's limit is 65,535);
- one batch: what a call holds for one unit of its streaming, the yardstick of the
  bound. For ``add_embeddings``, one COPY chunk (1,000 rows) encoded; for ``add_texts``,
  one embedding call's answer (1,000 vectors as Python lists of floats, the form
  LangChain's ``Embeddings`` return) and its COPY chunk. The call's peak is reported as
  a multiple of it, and per row: a peak that grows with the call's rows grows per row.

Run from the repository root: ``python benchmarks/memory.py`` (embedded server in
/tmp/pgvec-bench-mem) or ``python benchmarks/memory.py --url postgresql://...``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
from _common import loader_metadata

EMBEDDED_DIR = "/tmp/pgvec-bench-mem"
TABLE, COLLECTION_TABLE = "bench_mem_emb", "bench_mem_col"
COLLECTION = "memory"
PG_PARAMETER_LIMIT = 65_535
SCENARIOS = ("fresh", "upsert", "texts")
#: rows per COPY chunk and texts per embedding call (langchain_pgvec's defaults)
CHUNK_ROWS = BATCH = 1000
_WORDS = (
    *("vector", "database", "postgres", "index", "query", "embedding", "search"),
    *("nearest", "neighbour", "cosine", "distance", "retrieval", "chunk", "document"),
    *("metadata", "filter", "recall", "latency", "throughput", "batch"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="PostgreSQL URL (default: the embedded server)")
    parser.add_argument("--n", type=int, default=1_000_000, help="documents")
    parser.add_argument("--dim", type=int, default=384, help="dimensions")
    parser.add_argument(
        "--metadata", choices=["loader", "simple"], default="loader", help="metadata shape"
    )
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_inputs(
    n: int, dim: int, shape: str = "loader"
) -> tuple[np.ndarray, list[str], list[dict[str, Any]], list[str]]:
    """The same inputs in every process: vectors, ~150-char texts, metadata, ids."""
    rng = np.random.default_rng(8)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    words = rng.integers(0, len(_WORDS), size=(n, 22))
    texts = [" ".join(_WORDS[w] for w in row)[:150] for row in words]
    if shape == "loader":
        metadatas = loader_metadata(n, seed=8)
    else:
        metadatas = [{"source": f"file-{i % 997}.md", "page": i % 50, "n": i} for i in range(n)]
    # random-looking like uuid4 (the default ids), but the same in every process
    ids = [f"{a:016x}-{i:07d}" for i, a in enumerate(rng.integers(0, 2**63, size=n))]
    return vectors, texts, metadatas, ids


def payload_bytes(dim: int, texts: list[str], metadatas: list[Any], ids: list[str]) -> int:
    """Size of the binary COPY stream of these rows (header, rows, trailer)."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    per_row_fixed = 2 + (4 + 16) + 4 + 4 + (4 + 1) + (4 + 4 + 4 * dim)
    variable = sum(len(s.encode()) for s in ids) + sum(len(t.encode()) for t in texts)
    variable += sum(len(dumps(m).encode()) for m in metadatas)
    return 19 + len(ids) * per_row_fixed + variable + 2


def one_batch(
    scenario: str, dim: int, texts: list[str], metadatas: list[Any], ids: list[str]
) -> int:
    """What one unit of the call's streaming holds (see the module's docstring): a COPY
    chunk's payload, plus for ``add_texts`` one embedding call's answer as Python lists
    (a list of ``dim`` floats: 56 + 8 per item bytes of list, 24 bytes a float)."""
    chunk = payload_bytes(dim, texts[:CHUNK_ROWS], metadatas[:CHUNK_ROWS], ids[:CHUNK_ROWS])
    if scenario != "texts":
        return chunk
    answer = BATCH * (56 + 8 * dim + 24 * dim) + 56 + 8 * BATCH
    return chunk + answer


def maxrss() -> int:
    """Peak resident set of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measured call; prints its numbers as JSON."""
    from langchain_core.embeddings import FakeEmbeddings
    from sqlalchemy import event

    from langchain_pgvec import PGVecStore

    store = PGVecStore(
        FakeEmbeddings(size=args.dim),
        connection=args.url,
        collection_name=COLLECTION,
        embedding_table=TABLE,
        collection_table=COLLECTION_TABLE,
        embedding_length=args.dim,
    )
    store.create_tables()
    most_params = 0

    def count(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        # executemany runs one statement per parameter set
        nonlocal most_params
        for row in params if many else [params]:
            if isinstance(row, (dict, list, tuple)):
                most_params = max(most_params, len(row))

    event.listen(store.engine, "before_cursor_execute", count)
    before_count = store.count()

    if args.trace:
        tracemalloc.start()
    rss_start = maxrss()
    vectors, texts, metadatas, ids = make_inputs(args.n, args.dim, args.metadata)
    if args.child == "texts":
        del vectors  # add_texts embeds: the model's answers are the call's own
        vectors = np.empty((args.n, args.dim), dtype=np.float32)[:0]
    inputs_py = tracemalloc.get_traced_memory()[0] if args.trace else 0
    rss_inputs = maxrss()
    if args.trace:
        tracemalloc.reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0] if args.trace else 0

    started = time.perf_counter()
    if args.child == "texts":
        store.add_texts(texts, metadatas, ids=ids, batch_size=BATCH)
    else:
        store.add_embeddings(texts, vectors, metadatas, ids)
    seconds = time.perf_counter() - started

    peak_py = tracemalloc.get_traced_memory()[1] - traced_before if args.trace else 0
    rss_call = maxrss()
    if args.trace:
        tracemalloc.stop()
    after_count = store.count()
    store.close()
    return {
        "scenario": args.child,
        "trace": args.trace,
        "rows_before": before_count,
        "rows_after": after_count,
        "inputs_py": inputs_py,
        "inputs_rss": rss_inputs - rss_start,
        "vectors": args.n * args.dim * 4,
        "payload": payload_bytes(args.dim, texts, metadatas, ids),
        "batch": one_batch(args.child, args.dim, texts, metadatas, ids),
        "call_py_peak": peak_py,
        "call_rss_growth": rss_call - rss_inputs,
        "seconds": seconds,
        "most_params": most_params,
    }


def run_child(args: argparse.Namespace, scenario: str, trace: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--url", args.url, "--n", str(args.n)]
    command += ["--dim", str(args.dim), "--metadata", args.metadata, "--child", scenario]
    command += ["--trace"] if trace else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{scenario} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def reset_table(url: str, dim: int) -> None:
    from langchain_core.embeddings import FakeEmbeddings

    from langchain_pgvec import PGVecStore

    store = PGVecStore(
        FakeEmbeddings(size=dim),
        connection=url,
        collection_name=COLLECTION,
        embedding_table=TABLE,
        collection_table=COLLECTION_TABLE,
        embedding_length=dim,
    )
    store.delete_collection()
    store.close()


def mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    if args.url is None:
        from langchain_pgvec import embedded

        args.url = embedded.url(EMBEDDED_DIR)
    runs: dict[tuple[str, bool], dict[str, Any]] = {}
    for trace in (False, True):  # RSS without tracemalloc, then Python peaks with it
        reset_table(args.url, args.dim)
        for scenario in ("fresh", "upsert"):  # the upsert finds the fresh run's rows
            runs[scenario, trace] = run_child(args, scenario, trace)
        reset_table(args.url, args.dim)
        runs["texts", trace] = run_child(args, "texts", trace)
    reset_table(args.url, args.dim)

    print(
        f"# Memory of one big load: {args.n:,} docs x {args.dim} dims, {args.metadata} metadata\n"
    )
    print(
        "| call | rows before -> after | inputs: Python / RSS | encoded COPY payload | "
        "one batch | call peak, Python (tracemalloc) | call peak RSS growth (ru_maxrss) | "
        "peak / one batch | peak per row | peak / payload | most params in a statement "
        "| seconds |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {
        "fresh": "add_embeddings, fresh (direct COPY)",
        "upsert": "add_embeddings, upsert (COPY to staging + upsert)",
        "texts": f"add_texts, batch_size={BATCH:,} (embeds, then COPY per batch)",
    }
    for scenario in SCENARIOS:
        rss, py = runs[scenario, False], runs[scenario, True]
        worst = max(rss["call_rss_growth"], py["call_py_peak"])
        print(
            f"| {names[scenario]}"
            f" | {rss['rows_before']:,} -> {rss['rows_after']:,}"
            f" | {mb(py['inputs_py'])} / {mb(rss['inputs_rss'])}"
            f" | {mb(rss['payload'])}"
            f" | {mb(rss['batch'])}"
            f" | {mb(py['call_py_peak'])}"
            f" | {mb(rss['call_rss_growth'])}"
            f" | {worst / rss['batch']:.1f}"
            f" | {worst / args.n:,.0f} B"
            f" | {worst / rss['payload']:.2f}"
            f" | {max(rss['most_params'], py['most_params']):,} (limit {PG_PARAMETER_LIMIT:,})"
            f" | {rss['seconds']:.1f} |"
        )
    print(
        f"\nThe vectors alone are {mb(runs['fresh', False]['vectors'])} of float32. "
        "'peak / payload' is the larger of the two call peaks over the encoded payload: "
        "well below 1.0 means the payload was streamed in chunks, never held whole. "
        "'peak per row' is that peak over the call's rows: what a call holds per row "
        "(its ids and their order) beyond the bounded batches."
    )


if __name__ == "__main__":
    main()
