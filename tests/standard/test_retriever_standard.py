"""langchain-tests' standard retriever suite for PGVecRetriever, one class per search type.

Each class loads the same small corpus into a collection of its own; the query shares a
word with every document, so full-text search (all query terms must match) has as many
results as the vector searches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_pgvec import PGVecRetriever, PGVecStore

_TEXTS = [
    f"the {colour} cat sat on the {thing}"
    for colour in ("red", "green", "blue", "black")
    for thing in ("mat", "sofa", "roof")
]


def make_store(engine: Any, collection_name: str, *, full_text: bool = False) -> PGVecStore:
    return PGVecStore(
        DeterministicFakeEmbedding(size=16),
        connection=engine,
        collection_name=collection_name,
        embedding_table="std_retriever_embedding",
        collection_table="std_retriever_collection",
        full_text=full_text,
    )


class _PGVecRetrieverSuite(RetrieversIntegrationTests):
    search_type = "similarity"
    search_kwargs: dict[str, Any] = {}  # noqa: RUF012 (a class constant)

    @pytest.fixture(autouse=True)
    def _store(self, engine: Any, collection_name: str) -> Iterator[None]:
        store = make_store(engine, collection_name, full_text=True)
        store.add_texts(_TEXTS, metadatas=[{"n": n} for n in range(len(_TEXTS))])
        self.store = store
        yield
        store.delete_collection()

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return PGVecRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "vectorstore": self.store,
            "search_type": self.search_type,
            "search_kwargs": dict(self.search_kwargs),
        }

    @property
    def retriever_query_example(self) -> str:
        return "cat"


class TestSimilarityRetriever(_PGVecRetrieverSuite):
    search_type = "similarity"


class TestMMRRetriever(_PGVecRetrieverSuite):
    search_type = "mmr"
    search_kwargs = {"fetch_k": 8}  # noqa: RUF012


class TestHybridRetriever(_PGVecRetrieverSuite):
    search_type = "hybrid"


class TestFullTextRetriever(_PGVecRetrieverSuite):
    search_type = "full_text"


def test_constructor_k_and_explicit_search_kwargs(engine: Any, collection_name: str) -> None:
    """A constructor ``k`` fills search_kwargs; an explicit search_kwargs["k"] wins."""
    store = make_store(engine, collection_name)
    try:
        store.add_texts(_TEXTS)
        assert len(PGVecRetriever(vectorstore=store, k=2).invoke("cat")) == 2
        explicit = PGVecRetriever(vectorstore=store, k=2, search_kwargs={"k": 5})
        assert explicit.search_kwargs == {"k": 5}
        assert len(explicit.invoke("cat")) == 5
        assert len(store.as_retriever(k=3).invoke("cat")) == 3
    finally:
        store.delete_collection()
