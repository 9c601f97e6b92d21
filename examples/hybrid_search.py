"""Hybrid search: keyword (full-text) and semantic (vector) ranking fused in one query.

Shows: a store with ``full_text=True``; a query whose best answer is ranked first by
neither the vector search nor the keyword search alone, but first once the two
rankings are fused by reciprocal rank fusion; weights; filters inside both legs; a
stop-word-only query falling back to the vector ranking; the hybrid retriever.

To make "semantic" meaning visible without downloading a model, the embedding here is
a toy concept model (a few hand-picked concepts); a real model (``--hf``) behaves the
same way on real text.

    python examples/hybrid_search.py
"""

from __future__ import annotations

import numpy as np
from _models import embeddings_from_args
from langchain_core.embeddings import Embeddings

from langchain_pgvec import PGVecStore

CONCEPTS = {
    "vehicle": ["car", "cars", "automobile", "vehicle", "engine", "drive", "suv"],
    "food": ["recipe", "banana", "bread", "cook", "pasta", "dessert"],
    "space": ["rocket", "orbit", "planet", "launch", "satellite"],
    "money": ["price", "loan", "budget", "cost", "finance"],
}


class ConceptEmbeddings(Embeddings):
    """Toy 'semantic' embeddings: how much a text is about each concept."""

    def _embed(self, text: str) -> list[float]:
        words = text.lower().replace(",", " ").replace(":", " ").split()
        vector = np.array(
            [sum(w in vocabulary for w in words) for vocabulary in CONCEPTS.values()] + [0.1],
            dtype=np.float32,
        )
        return (vector / np.linalg.norm(vector)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


DOCS = {
    "review": ("Automobile review: which vehicle to drive with a family", {"year": 2024}),
    "sedan-bread": (
        "Sedan bread, a banana bread recipe named after a town: sedan sedan",
        {"year": 2023},
    ),
    "sedan-guide": ("Buying guide: the best sedan car for the price", {"year": 2024}),
    "suv-costs": ("SUV running costs: the loan and the budget", {"year": 2022}),
    "launch": ("Rocket launch puts a satellite in orbit", {"year": 2024}),
}


def show(title: str, pairs: list[tuple[object, float]]) -> None:
    print(title)
    for doc, score in pairs:
        print(f"  {score:8.4f}  {doc.id:12s} {doc.page_content}")  # type: ignore[attr-defined]
    print()


def main() -> None:
    embeddings = embeddings_from_args(__doc__, default=ConceptEmbeddings())
    dimension = len(embeddings.embed_query("probe"))
    store = PGVecStore(
        embeddings,
        collection_name="hybrid_example",
        embedding_table=f"examples_hybrid_{dimension}",
        full_text=True,  # adds a generated tsvector column and its GIN index
    )
    store.delete_collection()
    store.add_texts(
        [text for text, _ in DOCS.values()],
        [meta for _, meta in DOCS.values()],
        ids=list(DOCS),
    )

    query = "car or sedan"
    show(
        f"vector search {query!r} (distance, lower is closer):",
        store.similarity_search_with_score(query, k=3),
    )
    show(
        f"keyword search {query!r} (BM25, higher is better):",
        store.full_text_search_with_score(query, k=3),
    )
    show(
        f"hybrid search {query!r} (both legs' standardised scores, added):",
        store.hybrid_search_with_score(query, k=3),
    )
    show(
        f"hybrid search {query!r} by reciprocal rank fusion (second in both beats first in one):",
        store.hybrid_search_with_score(query, k=3, fusion="rrf"),
    )
    show(
        "hybrid, keywords weighted down (weights=(1.0, 0.2)):",
        store.hybrid_search_with_score(query, k=3, weights=(1.0, 0.2)),
    )
    show(
        "hybrid, filtered to 2024 inside both legs:",
        store.hybrid_search_with_score(query, k=3, filter={"year": 2024}),
    )
    show(
        "only stop words: the keyword leg is empty, the vector ranking remains:",
        store.hybrid_search_with_score("the and of", k=2),
    )

    retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": 1})
    print("hybrid retriever:", [doc.id for doc in retriever.invoke(query)])


if __name__ == "__main__":
    main()
