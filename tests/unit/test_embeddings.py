"""HashingEmbeddings: deterministic, normalised, lexical, validated."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pytest
from langchain_core.embeddings import Embeddings

from langchain_pgvec._errors import InvalidInputError
from langchain_pgvec.embeddings import HashingEmbeddings

TEXTS = [
    "PostgreSQL with pgvector stores embeddings next to relational data.",
    "Approximate nearest neighbour search with HNSW indexes",
    "Café, naïve façade: Unicode text — déjà vu!",
    "Векторный поиск в базе данных",
    "向量数据库 搜索",
    "",
]


def _cos(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    return float(np.dot(a, b))  # the vectors are unit length


def test_is_a_langchain_embeddings() -> None:
    assert isinstance(HashingEmbeddings(), Embeddings)


def test_deterministic_across_instances_and_calls() -> None:
    first = HashingEmbeddings().embed_documents(TEXTS)
    second = HashingEmbeddings().embed_documents(TEXTS)
    assert first == second
    assert HashingEmbeddings().embed_documents(TEXTS) == first


def test_deterministic_across_processes() -> None:
    """Unlike Python's hash(), the vectors do not depend on PYTHONHASHSEED."""
    script = (
        "import json, sys\n"
        "from langchain_pgvec.embeddings import HashingEmbeddings\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps(HashingEmbeddings(dimension=128).embed_documents(texts)))\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("0", "4242")  # started together, so they run in parallel
    ]
    expected = HashingEmbeddings(dimension=128).embed_documents(TEXTS)
    for child in children:
        stdout, stderr = child.communicate(json.dumps(TEXTS), timeout=120)
        assert child.returncode == 0, stderr
        assert json.loads(stdout) == expected


def test_vectors_are_pinned_across_versions() -> None:
    """Vectors stored by one release must stay comparable with the next one's queries.

    If this fails after a deliberate change to the algorithm, say so in the changelog:
    users' stored HashingEmbeddings vectors then need re-embedding.
    """
    vector = HashingEmbeddings(dimension=64).embed_documents_array(["hello pgvector world"])[0]
    # Which buckets are hit, and with which sign, is pure integer hashing: exact.
    signs = hashlib.sha256(np.sign(vector).astype(np.int8).tobytes()).hexdigest()
    assert signs == "def225aa377efaee70750a0df0d87134e36b3df7bb530092f369b128b40bd0c1"
    nonzero = np.flatnonzero(vector)
    assert nonzero[:4].tolist() == [5, 6, 7, 9]
    np.testing.assert_allclose(vector[nonzero[:4]], np.array([1, 1, -1, -1]) / np.sqrt(54))


def test_query_matches_document_embedding() -> None:
    embeddings = HashingEmbeddings()
    documents = embeddings.embed_documents(TEXTS)
    for text, vector in zip(TEXTS, documents, strict=True):
        assert embeddings.embed_query(text) == vector


@pytest.mark.parametrize("dimension", [1, 2, 7, 64, 384, 1536])
def test_dimension_is_honoured(dimension: int) -> None:
    embeddings = HashingEmbeddings(dimension=dimension)
    assert embeddings.dimension == dimension
    assert len(embeddings.embed_query("hello world")) == dimension
    assert all(len(v) == dimension for v in embeddings.embed_documents(TEXTS))
    array = embeddings.embed_documents_array(TEXTS)
    assert array.shape == (len(TEXTS), dimension)
    assert array.dtype == np.float32


def test_vectors_have_unit_norm() -> None:
    array = HashingEmbeddings().embed_documents_array(TEXTS[:-1])
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, rtol=1e-5)


def test_returns_python_floats() -> None:
    vector = HashingEmbeddings(dimension=8).embed_query("hello")
    assert all(type(x) is float for x in vector)
    documents = HashingEmbeddings(dimension=8).embed_documents(["a", "b"])
    assert all(type(x) is float for row in documents for x in row)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "!?.,;:-", "— …"])
def test_text_without_words_embeds_to_zeros(text: str) -> None:
    embeddings = HashingEmbeddings(dimension=32)
    assert embeddings.embed_query(text) == [0.0] * 32
    array = embeddings.embed_documents_array([text, "word", text])
    assert not np.isnan(array).any()
    assert (array[[0, 2]] == 0).all()
    assert np.linalg.norm(array[1]) == pytest.approx(1.0)


def test_no_texts() -> None:
    embeddings = HashingEmbeddings(dimension=16)
    assert embeddings.embed_documents([]) == []
    assert embeddings.embed_documents_array([]).shape == (0, 16)


def test_texts_sharing_words_are_closer_than_unrelated_ones() -> None:
    embeddings = HashingEmbeddings()
    query, related, unrelated = embeddings.embed_documents(
        [
            "how do I build an HNSW index in postgres",
            "building HNSW indexes on a postgres table",
            "the cat sat quietly on the warm mat",
        ]
    )
    assert _cos(query, related) > 0.3
    assert _cos(query, related) > _cos(query, unrelated) + 0.2
    assert abs(_cos(query, unrelated)) < 0.2


def test_spelling_variants_share_character_ngrams() -> None:
    embeddings = HashingEmbeddings()
    index, indexes, banana = embeddings.embed_documents(["index", "indexes", "banana"])
    assert _cos(index, indexes) > 0.5
    assert _cos(index, indexes) > _cos(index, banana) + 0.3


def test_case_and_unicode_normalisation() -> None:
    embeddings = HashingEmbeddings()
    composed = "Café Straße"
    decomposed = "CAFE\u0301 STRASSE"  # e + combining acute; casefold maps ß to ss
    assert embeddings.embed_query(composed) == embeddings.embed_query(decomposed)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "PostgreSQL")  # NFKC folds it
    assert embeddings.embed_query(fullwidth) == embeddings.embed_query("postgresql")


def test_non_latin_scripts_get_vectors() -> None:
    embeddings = HashingEmbeddings()
    russian, chinese = embeddings.embed_documents(TEXTS[3:5])
    assert np.linalg.norm(russian) == pytest.approx(1.0)
    assert np.linalg.norm(chinese) == pytest.approx(1.0)
    assert _cos(embeddings.embed_query("векторный поиск"), russian) > 0.3


def test_word_bigrams_make_order_count() -> None:
    with_pairs = HashingEmbeddings(word_bigrams=True)
    assert with_pairs.embed_query("dog bites man") != with_pairs.embed_query("man bites dog")
    bag_of_words = HashingEmbeddings(word_bigrams=False)
    assert bag_of_words.embed_query("dog bites man") == bag_of_words.embed_query("man bites dog")


def test_sublinear_tf_damps_repetition() -> None:
    repetitive = "spam " * 50 + "eggs"

    def similarity(sublinear: bool) -> float:
        embeddings = HashingEmbeddings(sublinear_tf=sublinear)
        return _cos(embeddings.embed_query(repetitive), embeddings.embed_query("eggs"))

    # With 1 + log(tf), fifty "spam"s weigh about 5 times one "eggs", not 50 times.
    assert similarity(True) > 2 * similarity(False)
    assert similarity(True) > 0.2


@pytest.mark.parametrize("ngram_range", [(1, 1), (2, 4), (3, 5), (6, 8)])
def test_ngram_ranges_including_words_shorter_than_the_ngrams(
    ngram_range: tuple[int, int],
) -> None:
    embeddings = HashingEmbeddings(ngram_range=ngram_range)
    assert embeddings.ngram_range == ngram_range
    array = embeddings.embed_documents_array(["a", "ab", "a b c", "longer words here"])
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("dimension", [384, 4096])
def test_batches_do_not_change_the_result(dimension: int) -> None:
    """Large inputs are processed in batches; each text's vector must not depend on them."""
    rng = np.random.default_rng(0)
    words = ["vector", "index", "postgres", "query", "filter", "hnsw", "ivfflat", "cosine"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 12)))) for _ in range(5000)]
    embeddings = HashingEmbeddings(dimension=dimension)
    array = embeddings.embed_documents_array(texts)
    for position in [0, 1, 511, 512, 2047, 2048, 2049, 4999]:
        single = embeddings.embed_documents_array([texts[position]])[0]
        np.testing.assert_array_equal(array[position], single)


def test_same_settings_compare_equal() -> None:
    assert HashingEmbeddings() == HashingEmbeddings(384, (3, 5), True)
    assert HashingEmbeddings() != HashingEmbeddings(dimension=128)
    assert hash(HashingEmbeddings()) == hash(HashingEmbeddings())
    assert "dimension=384" in repr(HashingEmbeddings())


async def test_async_methods() -> None:
    embeddings = HashingEmbeddings(dimension=32)
    assert await embeddings.aembed_query("hello") == embeddings.embed_query("hello")
    assert await embeddings.aembed_documents(TEXTS) == embeddings.embed_documents(TEXTS)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dimension": 0}, InvalidInputError, "dimension must be at least 1"),
        ({"dimension": -5}, InvalidInputError, "dimension must be at least 1"),
        ({"dimension": 3.0}, TypeError, "dimension must be an int"),
        ({"dimension": True}, TypeError, "dimension must be an int"),
        ({"ngram_range": (0, 3)}, InvalidInputError, "1 <= min <= max"),
        ({"ngram_range": (5, 3)}, InvalidInputError, "1 <= min <= max"),
        ({"ngram_range": (3,)}, TypeError, "pair of ints"),
        ({"ngram_range": (3, 5, 7)}, TypeError, "pair of ints"),
        ({"ngram_range": (3.0, 5)}, TypeError, "pair of ints"),
        ({"ngram_range": "35"}, TypeError, "pair of ints"),
        ({"word_bigrams": 1}, TypeError, "word_bigrams must be True or False"),
        ({"sublinear_tf": None}, TypeError, "sublinear_tf must be True or False"),
    ],
)
def test_rejects_bad_parameters(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        HashingEmbeddings(**kwargs)  # type: ignore[arg-type]


def test_invalid_parameter_values_are_value_errors() -> None:
    with pytest.raises(ValueError):
        HashingEmbeddings(dimension=0)


def test_rejects_non_string_texts() -> None:
    embeddings = HashingEmbeddings()
    with pytest.raises(TypeError, match="not a single str"):
        embeddings.embed_documents("one text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        embeddings.embed_documents(["ok", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="text must be a str"):
        embeddings.embed_query(b"bytes")  # type: ignore[arg-type]
