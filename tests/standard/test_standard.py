"""langchain-tests' standard VectorStore suite, sync and async, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_pgvec import PGVecStore


class TestPGVecStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, engine: Any, collection_name: str) -> Iterator[PGVecStore]:
        store = PGVecStore(
            self.get_embeddings(),
            connection=engine,
            collection_name=collection_name,
            embedding_table="std_embedding",
            collection_table="std_collection",
        )
        yield store
        store.delete_collection()
