"""Full-text and hybrid search on a real PostgreSQL, sync and async."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from support.twins import Runner

from langchain_pgvec import PGVecError, PGVecStore, SchemaError

DIM = 8


class TopicEmbeddings(Embeddings):
    """A 'semantic' model by hand: each text maps to the topic vector of its first
    word found in TOPICS, so semantic and keyword relevance can be made to disagree."""

    TOPICS: ClassVar[dict[str, int]] = {
        "car": 0, "automobile": 0, "vehicle": 0, "engine": 0,
        "fruit": 1, "apple": 1, "banana": 1,
        "space": 2, "rocket": 2, "orbit": 2,
    }  # fmt: skip

    def _embed(self, text: str) -> list[float]:
        vector = np.full(DIM, 0.01, dtype=np.float32)
        for word in text.lower().replace(",", " ").split():
            if word in self.TOPICS:
                vector[self.TOPICS[word]] = 1.0
                break
        else:
            vector[7] = 1.0
        vector[6] = 0.0005 * len(text)  # distinct distances: no ties to order arbitrarily
        normed: list[float] = (vector / np.linalg.norm(vector)).tolist()
        return normed

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


CORPUS = {
    # semantically about cars, without the keyword "sedan"
    "auto": "automobile reviews and comparisons for families",
    # the only document with the keyword, semantically about fruit
    "kw": "banana sedan, sedan",
    # both: about cars and mentions sedan
    "both": "vehicle guide: the best sedan for a long commute",
    "space": "rocket launches to low earth orbit",
    "fruit": "apple orchards in autumn",
}


@pytest.fixture
def store(engine: Any, collection_name: str) -> Iterator[PGVecStore]:
    result = PGVecStore(
        TopicEmbeddings(),
        connection=engine,
        collection_name=collection_name,
        embedding_table="hy_emb_8",
        collection_table="hy_col_8",
        full_text=True,
    )
    yield result
    with contextlib.suppress(PGVecError):
        result.delete_collection()


async def load(run: Runner, store: PGVecStore) -> None:
    metadatas = [{"kind": "car" if key in ("auto", "both") else "other"} for key in CORPUS]
    await run(store, "add_texts", list(CORPUS.values()), metadatas, ids=list(CORPUS))


async def test_hybrid_ranks_what_neither_leg_ranks_first(store: PGVecStore, run: Runner) -> None:
    await load(run, store)
    query = "car or sedan"
    vector_first = (await run(store, "similarity_search", query, k=1))[0].id
    text_first = (await run(store, "full_text_search", query, k=1))[0].id
    hybrid = await run(store, "hybrid_search_with_score", query, k=3, fusion="rrf")
    assert vector_first == "auto"  # semantic: about cars, no keyword
    assert text_first == "kw"  # keyword: says sedan twice, about fruit
    assert hybrid[0][0].id == "both"  # second in both legs, first once fused
    scores = [score for _, score in hybrid]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    # RRF by hand: both legs rank "both" second
    assert hybrid[0][1] == pytest.approx(2 / (60 + 2))


async def test_convex_fusion_adds_the_standardised_scores_of_both_legs(
    store: PGVecStore, run: Runner
) -> None:
    await load(run, store)
    query = "car or sedan"
    nearest = await run(store, "similarity_search_with_score", query, k=20)
    keyword = await run(store, "full_text_search_with_score", query, k=20)

    def standardised(pairs: list[tuple[Any, float]], sign: float) -> dict[str, float]:
        values = sign * np.array([s for _, s in pairs])
        z = (values - values.mean()) / values.std()
        return {d.id: float(v) for (d, _), v in zip(pairs, z, strict=True)}

    # similarity_search_with_score gives distances: nearer is better
    vector, text = standardised(nearest, -1.0), standardised(keyword, 1.0)
    expected = {
        i: 0.75 * vector.get(i, min(vector.values())) + 0.25 * text.get(i, min(text.values()))
        for i in {*vector, *text}
    }
    fused = await run(store, "hybrid_search_with_score", query, k=5, weights=(3.0, 1.0))
    assert [d.id for d, _ in fused] == sorted(expected, key=lambda i: (-expected[i], i))[:5]
    for doc, score in fused:
        assert score == pytest.approx(expected[doc.id])


async def test_filter_applies_inside_both_legs(store: PGVecStore, run: Runner) -> None:
    await load(run, store)
    docs = await run(store, "hybrid_search", "car or sedan", k=5, filter={"kind": "other"})
    assert docs and all(d.metadata["kind"] == "other" for d in docs)
    assert "kw" in {d.id for d in docs}
    text_only = await run(store, "full_text_search", "sedan", k=5, filter={"kind": "car"})
    assert [d.id for d in text_only] == ["both"]


async def test_stop_words_fall_back_to_the_vector_leg(store: PGVecStore, run: Runner) -> None:
    await load(run, store)
    assert await run(store, "full_text_search", "the and of", k=3) == []
    hybrid = await run(store, "hybrid_search", "the and of !!", k=3)
    vector = await run(store, "similarity_search", "the and of !!", k=3)
    assert [d.id for d in hybrid] == [d.id for d in vector]


async def test_websearch_syntax(store: PGVecStore, run: Runner) -> None:
    await load(run, store)
    phrase = await run(store, "full_text_search", '"best sedan"', k=5)
    assert [d.id for d in phrase] == ["both"]
    excluded = await run(store, "full_text_search", "sedan -banana", k=5)
    assert [d.id for d in excluded] == ["both"]
    either = await run(store, "full_text_search", "rocket or apple", k=5)
    assert {d.id for d in either} == {"space", "fruit"}


async def test_hybrid_retriever(store: PGVecStore, run: Runner) -> None:
    await load(run, store)
    retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": 2})
    docs = (
        retriever.invoke("car or sedan")
        if run.mode == "sync"
        else await retriever.ainvoke("car or sedan")
    )
    direct = await run(store, "hybrid_search", "car or sedan", k=2)
    assert [d.id for d in docs] == [d.id for d in direct] and len(docs) == 2
    with pytest.raises(ValueError, match="not allowed"):
        store.as_retriever(search_type="nonsense")


async def test_enable_full_text_on_an_existing_table(
    engine: Any, collection_name: str, run: Runner
) -> None:
    common: dict[str, Any] = dict(
        connection=engine,
        collection_name=collection_name,
        embedding_table=f"hy_late_{run.mode}",
        collection_table="hy_col_8",
    )
    plain = PGVecStore(TopicEmbeddings(), **common)
    try:
        await run(plain, "add_texts", list(CORPUS.values()), ids=list(CORPUS))
        with pytest.raises(SchemaError, match="full_text=True"):
            await run(plain, "full_text_search", "sedan")
        enabled = PGVecStore(TopicEmbeddings(), full_text=True, **common)
        found = await run(enabled, "full_text_search", "sedan", k=5)
        assert {d.id for d in found} == {"kw", "both"}  # rows written before: indexed too
        assert await run(enabled, "count") == len(CORPUS)  # nothing lost
        assert any(i.name.endswith("content_tsv_gin") for i in enabled.list_indexes())
    finally:
        plain.delete_collection()


def test_bad_arguments(store: PGVecStore) -> None:
    store.add_texts(["a car"], ids=["x"])
    with pytest.raises(ValueError, match="weights"):
        store.hybrid_search("car", weights=(1.0, -1.0))
    with pytest.raises(ValueError, match="fetch_k"):
        store.hybrid_search("car", fetch_k=-1)
    with pytest.raises(ValueError, match="fusion"):
        store.hybrid_search("car", fusion="max")
    with pytest.raises(ValueError, match="k1"):
        store.hybrid_search("car", k1=-1.0)
    with pytest.raises(ValueError, match="BM25's b"):
        store.full_text_search("car", b=2)
    with pytest.raises(SchemaError, match="text_search_config"):
        PGVecStore(TopicEmbeddings(), connection="postgresql://x/y", full_text="english; drop")
