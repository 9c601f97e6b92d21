"""Vector indexes: build HNSW after loading, check the plan, trade recall for speed.

Shows, on 5,000 documents loaded from a precomputed float32 matrix
(``add_embeddings``, COPY BINARY):

- ``explain()`` before and after ``create_index(HNSW(m=16, ef_construction=64))``:
  a sequential scan becomes an index scan (the opclass follows the store's distance);
- ``list_indexes()``: name, method, opclass, size, options;
- recall@10 against exact search (computed with numpy) for several ``ef_search``
  values, passed per call;
- a selective filter: through the HNSW index with iterative index scans (pgvector
  >= 0.8) it still returns ``k`` rows, without them it can return fewer; by default
  the store ranks the few matching rows exactly instead;
- ``create_metadata_index("year", "number")`` for range filters.

The indexes live on a table of their own so the other examples never see them.

Runs offline with ``HashingEmbeddings``; ``--openai`` or ``--hf`` switch to a real
embedding model when its package (and key) is installed.

    python examples/indexes.py
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from _models import embeddings_from_args
from psycopg import sql

from langchain_pgvec import HNSW, PGVecStore

ADJECTIVES = [
    "fast",
    "slow",
    "large",
    "small",
    "durable",
    "cheap",
    "secure",
    "simple",
    "modern",
    "legacy",
]
NOUNS = [
    "database",
    "index",
    "query",
    "table",
    "cluster",
    "replica",
    "backup",
    "schema",
    "cache",
    "queue",
]
VERBS = [
    "scales",
    "stores",
    "serves",
    "copies",
    "rebuilds",
    "monitors",
    "partitions",
    "compresses",
    "encrypts",
    "validates",
]
OBJECTS = [
    "vectors",
    "documents",
    "events",
    "orders",
    "logs",
    "images",
    "embeddings",
    "metrics",
    "users",
]
PLACES = ["in the cloud", "on premises", "at the edge", "overnight", "in real time"]
K = 10


def plan_summary(plan: str) -> str:
    """The plan's node that reads the table (an index scan or a sequential scan)."""
    for line in plan.splitlines():
        if "Scan" in line:
            return line.strip().lstrip("->").strip().split("  (")[0]
    return plan.splitlines()[0]


def main() -> None:
    embeddings = embeddings_from_args(__doc__)
    texts = [
        " ".join(words) for words in itertools.product(ADJECTIVES, NOUNS, VERBS, OBJECTS, PLACES)
    ][:5000]
    started = time.perf_counter()
    matrix = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - started:.1f}s")
    dimension = matrix.shape[1]
    store_table = f"examples_indexes_{dimension}"
    store = PGVecStore(embeddings, collection_name="example_indexes", embedding_table=store_table)
    store.delete_collection()  # start fresh on every run
    for index in store.list_indexes():
        if index.is_vector or "_meta_" in index.name:  # left over from an earlier run
            store.drop_index(index.name)
    metadatas = [{"n": n, "year": 2000 + n % 25} for n in range(len(texts))]
    started = time.perf_counter()
    store.add_embeddings(texts, matrix, metadatas, ids=[str(n) for n in range(len(texts))])
    print(f"loaded {store.count()} rows with COPY in {time.perf_counter() - started:.2f}s")
    # Fresh statistics after a bulk load, or the planner, still believing the table is
    # tiny, may prefer a plain scan to the vector index (autovacuum would get to it later).
    with store.engine.begin() as conn:
        driver = conn.connection.driver_connection
        driver.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(store_table)))
    print("ANALYZE done\n")

    query = "fast database serves embeddings in real time"
    print(f"plan without a vector index: {plan_summary(store.explain(query, k=K))}")
    started = time.perf_counter()
    name = store.create_index(HNSW(m=16, ef_construction=64))
    print(
        f"create_index(HNSW(m=16, ef_construction=64)) -> {name} "
        f"in {time.perf_counter() - started:.1f}s"
    )
    print(f"plan with it:                {plan_summary(store.explain(query, k=K))}\n")

    for index in store.list_indexes():
        print(
            f"  {index.name:<40} {index.method:<6} {index.opclass or '-':<18} "
            f"{index.size_bytes / 1024:8.0f} kB  {', '.join(index.options)}"
        )

    # recall@10 of approximate search vs exact search (numpy), by ef_search
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    queries = [texts[(n * 97) % len(texts)].replace("fast", "slow") for n in range(30)]
    query_vectors = np.asarray(embeddings.embed_documents(queries), dtype=np.float32)
    store.similarity_search_by_vector(query_vectors[0].tolist(), k=K)  # warm the cache
    print(f"\nrecall@{K} of HNSW search against exact search over {len(queries)} queries:")
    for ef_search in (10, 40, 200):
        hits, total, started = 0, 0, time.perf_counter()
        for vector in query_vectors:
            exact = 1.0 - unit @ (vector / np.linalg.norm(vector))
            kth = np.sort(exact)[K - 1]  # ties at the k-th distance count as hits
            found = store.similarity_search_with_score_by_vector(
                vector.tolist(), k=K, ef_search=ef_search
            )
            hits += sum(distance <= kth + 1e-6 for _, distance in found)
            total += K
        elapsed = (time.perf_counter() - started) / len(queries) * 1000
        print(f"  ef_search={ef_search:<4} recall {hits / total:6.1%}   {elapsed:5.1f} ms/query")

    # a selective range filter: 1 row in 50 matches. By default the store sees (from the
    # planner's estimate) that few rows match and ranks them all exactly; exact_below=0
    # forces the HNSW index, which walks the graph and filters what it returns
    selective = {"n": {"$lt": 100}}
    index = {"exact_below": 0}
    strict = store.similarity_search(query, k=K, filter=selective, iterative_scan="off", **index)
    relaxed = store.similarity_search(query, k=K, filter=selective, **index)
    exact = store.similarity_search(query, k=K, filter=selective)
    print(f"\nfilter {selective} (2% of rows), k={K}:")
    print(
        f"  HNSW without iterative scans: {len(strict)} rows (the index's ef_search "
        "candidates, then the filter)"
    )
    print(f"  HNSW with them: {len(relaxed)} rows")
    print(f"  the default (few rows match: ranked exactly, no index): {len(exact)} rows")

    name = store.create_metadata_index("year", "number")
    recent = store.count(filter={"year": {"$gte": 2020}})
    print(f"\ncreate_metadata_index('year', 'number') -> {name}; {recent} rows with year >= 2020")
    store.close()


if __name__ == "__main__":
    main()
