"""Async: hundreds of concurrent searches on one store, e.g. behind an async web app.

Shows the native async twins (``aadd_texts``, ``asimilarity_search``,
``amax_marginal_relevance_search``, ``retriever.ainvoke``) on the same store instance
that also serves sync calls; ``asyncio.gather`` of 200 searches sharing the store's
connection pool (sized with ``engine_kwargs``); timing against the same 200 searches
run one after another; and ``aclose()`` at shutdown.

Runs offline with ``HashingEmbeddings``; ``--openai`` or ``--hf`` switch to a real
embedding model when its package (and key) is installed.

    python examples/async_app.py [--searches 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _models import add_model_arguments, embeddings_from
from langchain_core.embeddings import Embeddings

from langchain_pgvec import PGVecStore

SUBJECTS = [
    "PostgreSQL",
    "pgvector",
    "an HNSW index",
    "a JSONB column",
    "the COPY command",
    "a connection pool",
    "an async engine",
    "a vector store",
    "a retriever",
    "MVCC",
]
VERBS = [
    "speeds up",
    "simplifies",
    "scales",
    "secures",
    "monitors",
    "replicates",
    "tests",
    "documents",
    "benchmarks",
    "caches",
]
OBJECTS = [
    "search",
    "ingestion",
    "analytics",
    "RAG apps",
    "backups",
    "migrations",
    "dashboards",
    "chatbots",
    "reports",
    "recommendations",
]


def parse_args() -> tuple[Embeddings, int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=200, help="concurrent searches")
    add_model_arguments(parser)
    args = parser.parse_args()
    return embeddings_from(args, parser), args.searches


async def main() -> None:
    embeddings, searches = parse_args()
    dimension = len(await embeddings.aembed_query("probe"))
    store = PGVecStore(
        embeddings,
        collection_name="example_async",
        embedding_table=f"examples_{dimension}",
        engine_kwargs={"pool_size": 10, "max_overflow": 10},  # 20 connections at most
    )
    await store.adelete_collection()  # start fresh on every run

    texts = [f"{s} {v} {o}" for s in SUBJECTS for v in VERBS for o in OBJECTS]
    metadatas = [{"n": n, "subject": text.split()[0]} for n, text in enumerate(texts)]
    started = time.perf_counter()
    await store.aadd_texts(texts, metadatas, ids=[str(n) for n in range(len(texts))])
    print(f"added {await store.acount()} documents in {time.perf_counter() - started:.2f}s")

    queries = [texts[(n * 7919) % len(texts)] for n in range(searches)]
    await store.asimilarity_search(queries[0], k=1)  # warm up: pool, table state

    started = time.perf_counter()
    results = await asyncio.gather(*(store.asimilarity_search(q, k=3) for q in queries))
    concurrent = time.perf_counter() - started
    exact = sum(docs[0].page_content == q for q, docs in zip(queries, results, strict=True))
    print(
        f"{searches} concurrent async searches: {concurrent:.2f}s "
        f"({searches / concurrent:.0f}/s); the query text ranked first {exact}/{searches} times"
    )

    started = time.perf_counter()
    for q in queries:
        await store.asimilarity_search(q, k=3)
    sequential = time.perf_counter() - started
    print(
        f"{searches} sequential async searches: {sequential:.2f}s "
        f"({searches / sequential:.0f}/s), {sequential / concurrent:.1f}x slower"
    )

    # mixed work at once: filtered search, MMR, a retriever, a count
    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"subject": "pgvector"}})
    filtered, diverse, retrieved, total = await asyncio.gather(
        store.asimilarity_search("speeds up search", k=2, filter={"n": {"$lt": 100}}),
        store.amax_marginal_relevance_search("speeds up search", k=3, fetch_k=30),
        retriever.ainvoke("caches chatbots"),
        store.acount(filter={"subject": "PostgreSQL"}),
    )
    print("\nconcurrently: a filtered search, MMR, a retriever and a count")
    print(f"  filtered (n < 100): {[d.page_content for d in filtered]}")
    print(f"  MMR:                {[d.page_content for d in diverse]}")
    print(f"  retriever:          {[d.page_content for d in retrieved]}")
    print(f"  count:              {total} documents about PostgreSQL")

    # the same instance serves sync code too (e.g. a management command)
    print(f"\nsync on the same store: {store.similarity_search('MVCC tests backups', k=1)[0].id}")
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
