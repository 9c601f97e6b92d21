"""The retriever PGVecStore.as_retriever() returns: LangChain's, plus hybrid and full text."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStoreRetriever
from pydantic import model_validator


class PGVecRetriever(VectorStoreRetriever):
    """A LangChain ``VectorStoreRetriever`` that also takes the hybrid and full-text types.

    ``search_type`` is ``"similarity"`` (default), ``"similarity_score_threshold"``,
    ``"mmr"``, ``"hybrid"`` or ``"full_text"``. With ``"hybrid"`` and ``"full_text"``,
    ``search_kwargs`` go to the store's ``hybrid_search`` / ``full_text_search`` (their
    async twins for ``ainvoke``); the other types are LangChain's.

    ``k`` may be given to the constructor, as LangChain's retriever tests expect:
    ``PGVecRetriever(vectorstore=store, k=3)`` is
    ``PGVecRetriever(vectorstore=store, search_kwargs={"k": 3})``. ``invoke(query, k=3)``
    overrides it for one call.
    """

    allowed_search_types: ClassVar[Collection[str]] = (
        "similarity",
        "similarity_score_threshold",
        "mmr",
        "hybrid",
        "full_text",
    )

    k: int | None = None
    """How many documents a call returns: shorthand for ``search_kwargs["k"]``, which wins
    when both are given."""

    @model_validator(mode="after")
    def _k_into_search_kwargs(self) -> PGVecRetriever:
        """Put a constructor ``k`` into ``search_kwargs`` unless that has one."""
        if self.k is not None:
            self.search_kwargs.setdefault("k", self.k)
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        arguments = self.search_kwargs | kwargs
        if self.search_type == "hybrid":
            return list(self.vectorstore.hybrid_search(query, **arguments))  # type: ignore[attr-defined]
        if self.search_type == "full_text":
            return list(self.vectorstore.full_text_search(query, **arguments))  # type: ignore[attr-defined]
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        arguments = self.search_kwargs | kwargs
        if self.search_type == "hybrid":
            return list(await self.vectorstore.ahybrid_search(query, **arguments))  # type: ignore[attr-defined]
        if self.search_type == "full_text":
            return list(await self.vectorstore.afull_text_search(query, **arguments))  # type: ignore[attr-defined]
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
