"""Maximal marginal relevance (MMR) vs plain similarity on near-duplicate documents.

Shows why MMR exists: when a collection holds several near-copies of one passage,
similarity search fills all ``k`` slots with them, while MMR picks results that are
relevant *and* different from each other. Also shows the two knobs:

- ``fetch_k``: how many nearest candidates MMR chooses from (one query fetches them
  with their vectors); with ``fetch_k == k`` there is nothing to choose and MMR equals
  similarity search;
- ``lambda_mult``: 1.0 ranks by relevance only, 0.0 by diversity only.

Each result line shows the passage's group; the summary counts distinct groups and
the mean pairwise cosine similarity of the results (lower is more diverse).

Runs offline with ``HashingEmbeddings``; ``--openai`` or ``--hf`` switch to a real
embedding model when its package (and key) is installed.

    python examples/mmr.py
"""

from __future__ import annotations

import itertools

import numpy as np
from _models import embeddings_from_args
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from langchain_pgvec import PGVecStore

# Groups of near-duplicates (the same passage re-published with small edits), and a
# few distinct passages on the same theme.
GROUPS = {
    "hnsw": [
        "HNSW indexes make vector search fast in PostgreSQL",
        "HNSW indexes make vector search fast in Postgres",
        "An HNSW index makes vector search fast in PostgreSQL",
        "HNSW indexes make vector search very fast in PostgreSQL",
        "HNSW indexes make your vector search fast in PostgreSQL",
    ],
    "ivfflat": [
        "IVFFlat indexes make vector search fast to build in PostgreSQL",
        "IVFFlat indexes make vector search quick to build in PostgreSQL",
    ],
    "gin": ["GIN indexes make JSONB metadata filters fast in PostgreSQL"],
    "btree": ["B-tree indexes make exact lookups and sorting fast in PostgreSQL"],
    "brin": ["BRIN indexes make time range scans fast on huge PostgreSQL tables"],
    "copy": ["COPY loads millions of rows into PostgreSQL in seconds"],
}
QUERY = "fast vector search index in PostgreSQL"
K = 4


def show(title: str, docs: list[Document], embeddings: Embeddings) -> None:
    vectors = np.asarray(embeddings.embed_documents([d.page_content for d in docs]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs = list(itertools.combinations(range(len(docs)), 2))
    mean_similarity = float(np.mean([vectors[i] @ vectors[j] for i, j in pairs]))
    groups = {d.metadata["group"] for d in docs}
    print(f"{title}: {len(groups)} distinct groups, mean pairwise similarity {mean_similarity:.2f}")
    for doc in docs:
        print(f"  [{doc.metadata['group']:>7}] {doc.page_content}")


def main() -> None:
    embeddings = embeddings_from_args(__doc__)
    dimension = len(embeddings.embed_query("probe"))
    store = PGVecStore(
        embeddings, collection_name="example_mmr", embedding_table=f"examples_{dimension}"
    )
    store.delete_collection()  # start fresh on every run
    docs = [
        Document(id=f"{group}-{n}", page_content=text, metadata={"group": group})
        for group, texts in GROUPS.items()
        for n, text in enumerate(texts)
    ]
    store.add_documents(docs)
    print(f"{store.count()} passages, {len(GROUPS)} groups; query: {QUERY!r}, k={K}\n")

    show("similarity search", store.similarity_search(QUERY, k=K), embeddings)
    print()
    show(
        "MMR, fetch_k=20, lambda_mult=0.5",
        store.max_marginal_relevance_search(QUERY, k=K, fetch_k=20, lambda_mult=0.5),
        embeddings,
    )
    print("\nthe knobs (distinct groups among the top 4):")
    for fetch_k in (K, 8, 20):
        cells = []
        for lambda_mult in (1.0, 0.75, 0.5, 0.25):
            found = store.max_marginal_relevance_search(
                QUERY, k=K, fetch_k=fetch_k, lambda_mult=lambda_mult
            )
            cells.append(f"lambda {lambda_mult:.2f}: {len({d.metadata['group'] for d in found})}")
        print(f"  fetch_k={fetch_k:>2}  " + "   ".join(cells))
    print("\n(fetch_k=k leaves MMR nothing to choose from; lambda_mult=1 is pure relevance)")

    retriever = store.as_retriever(
        search_type="mmr", search_kwargs={"k": K, "fetch_k": 20, "lambda_mult": 0.5}
    )
    found = retriever.invoke(QUERY)
    print(f"\nas a retriever: {[doc.id for doc in found]}")
    store.close()


if __name__ == "__main__":
    main()
