"""Offline, deterministic lexical embeddings for demos and tests.

`HashingEmbeddings` turns text into fixed-length vectors with the "hashing trick"
(Weinberger et al., 2009), the way scikit-learn's ``HashingVectorizer`` and fastText's
subword buckets do: no model to download, no network, no state, the same vector for
the same text on every machine and in every process. It is a stand-in for a real
embedding model in quickstarts, examples and tests; it captures shared words and
spelling, not meaning.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings

from ._errors import InvalidInputError

__all__ = ["HashingEmbeddings"]

_TOKEN = re.compile(r"\w+")
# Feature hashes keep 52 of BLAKE2b's bits, leaving the top 12 bits of a uint64 for the
# row of the text within a batch, so (text, feature) pairs sort as one integer.
_HASH_BITS = np.uint64(52)
_HASH_MASK = np.uint64((1 << 52) - 1)
# Texts are hashed in batches of at most 2048 (< 2**12) texts and 2**21 accumulator
# cells, so the (batch, dimension) float64 sums stay within 16 MB however many texts
# are embedded at once.
_MAX_BATCH = 2048
_MAX_CELLS = 1 << 21


class HashingEmbeddings(Embeddings):
    r"""Deterministic lexical embeddings computed offline with the hashing trick.

    A demo and test embedding: two texts are close when they share words, word pairs
    or spelling (character n-grams), so "postgres indexes" is near "indexing in
    PostgreSQL" but not near "database tuning". It is NOT a semantic model and does not
    know that "car" and "automobile" mean the same thing. For real use, swap in a
    semantic embedding such as ``langchain_huggingface.HuggingFaceEmbeddings`` (a
    sentence-transformers model) or ``langchain_openai.OpenAIEmbeddings``.

    How a text becomes a vector:

    1. Unicode NFKC normalisation and case folding, then word tokens ``\w+`` (letters
       and digits of any script).
    2. Features: each word; each pair of adjacent words (if ``word_bigrams``); and the
       character n-grams, of every length in ``ngram_range``, of each word padded with
       boundary markers (``"<pgvector>"``), so "index" and "indexes" share most of theirs.
    3. Each feature is hashed with BLAKE2b (never Python's per-process salted
       ``hash()``; a word pair's hash is mixed from its two words' hashes) to one of
       ``dimension`` buckets and a sign of +1 or -1; the signs make collisions cancel
       out on average instead of piling up.
    4. A feature seen ``tf`` times in the text weighs ``1 + log(tf)`` if
       ``sublinear_tf``, else ``tf``.
    5. The vector is scaled to unit length (L2 norm 1), so cosine similarity, inner
       product and euclidean distance all rank alike.

    A text without any word character (``""``, ``"  "``, ``"!?"``) embeds to the
    all-zero vector, never NaN. Its cosine similarity to anything is undefined, and
    pgvector's cosine distance to it is NaN, so index such texts with care.

    Example:
        >>> embeddings = HashingEmbeddings(dimension=256)
        >>> vector = embeddings.embed_query("PostgreSQL with pgvector")
        >>> len(vector)
        256

    Args:
        dimension: Length of every vector (the number of hash buckets). Larger values
            mean fewer collisions between features.
        ngram_range: Smallest and largest character n-gram length, inclusive, with
            ``1 <= min <= max``.
        word_bigrams: Whether adjacent word pairs are features, which makes word order
            count a little.
        sublinear_tf: Whether repeated features weigh ``1 + log(tf)`` rather than
            ``tf``, so one word repeated many times cannot swamp the rest.

    Raises:
        InvalidInputError: If ``dimension`` is below 1 or ``ngram_range`` is not
            ``(min, max)`` with ``1 <= min <= max``.
        TypeError: If a parameter has the wrong type.
    """

    def __init__(
        self,
        dimension: int = 384,
        ngram_range: tuple[int, int] = (3, 5),
        word_bigrams: bool = True,
        sublinear_tf: bool = True,
    ) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int):
            raise TypeError(f"dimension must be an int, not {dimension!r}.")
        if dimension < 1:
            raise InvalidInputError(f"dimension must be at least 1; got {dimension}.")
        if (
            not isinstance(ngram_range, tuple | list)
            or len(ngram_range) != 2
            or any(isinstance(n, bool) or not isinstance(n, int) for n in ngram_range)
        ):
            raise TypeError(f"ngram_range must be a pair of ints (min, max); got {ngram_range!r}.")
        low, high = ngram_range
        if not 1 <= low <= high:
            raise InvalidInputError(
                f"ngram_range must satisfy 1 <= min <= max; got {tuple(ngram_range)!r}. "
                "Use e.g. (3, 5)."
            )
        for name, flag in (("word_bigrams", word_bigrams), ("sublinear_tf", sublinear_tf)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, not {flag!r}.")
        self._dimension = dimension
        self._ngram_range = (low, high)
        self._word_bigrams = word_bigrams
        self._sublinear_tf = sublinear_tf
        self._word_features = _word_featurizer(low, high)

    @property
    def dimension(self) -> int:
        """Length of every vector this instance produces."""
        return self._dimension

    @property
    def ngram_range(self) -> tuple[int, int]:
        """Smallest and largest character n-gram length."""
        return self._ngram_range

    @property
    def word_bigrams(self) -> bool:
        """Whether adjacent word pairs are features."""
        return self._word_bigrams

    @property
    def sublinear_tf(self) -> bool:
        """Whether repeated features weigh ``1 + log(tf)``."""
        return self._sublinear_tf

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dimension={self._dimension}, "
            f"ngram_range={self._ngram_range!r}, word_bigrams={self._word_bigrams}, "
            f"sublinear_tf={self._sublinear_tf})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HashingEmbeddings):
            return NotImplemented
        return self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash(self._settings())

    def _settings(self) -> tuple[int, tuple[int, int], bool, bool]:
        return (self._dimension, self._ngram_range, self._word_bigrams, self._sublinear_tf)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a list of texts.

        Args:
            texts: The texts to embed.

        Returns:
            One unit-length vector of ``dimension`` floats per text (all zeros for a
            text without words).
        """
        vectors: list[list[float]] = self.embed_documents_array(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one text; the same vector ``embed_documents`` gives for it.

        Args:
            text: The text to embed.

        Returns:
            A unit-length vector of ``dimension`` floats (all zeros for a text without
            words).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}.")
        vector: list[float] = self.embed_documents_array([text])[0].tolist()
        return vector

    def embed_documents_array(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts straight into a float32 array, skipping Python lists.

        Args:
            texts: The texts to embed.

        Returns:
            An array of shape ``(len(texts), dimension)``, one unit-length (or all-zero)
            row per text.

        Raises:
            TypeError: If ``texts`` is a single string or holds something other than str.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of str, not a single str; wrap it in a list.")
        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{position}] must be a str, not {type(text).__name__}.")
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        batch = max(1, min(_MAX_BATCH, _MAX_CELLS // self._dimension))
        for start in range(0, len(texts), batch):
            out[start : start + batch] = self._embed_batch(texts[start : start + batch])
        return out

    def _embed_batch(self, texts: list[str]) -> npt.NDArray[np.float64]:
        n = len(texts)
        features = self._word_features
        parts: list[npt.NDArray[np.uint64]] = []  # per word: its own hash, then n-grams'
        words_per_text: list[int] = []
        for text in texts:
            words = _tokenize(text)
            words_per_text.append(len(words))
            parts.extend(map(features, words))
        if not parts:
            return np.zeros((n, self._dimension))

        sizes = np.fromiter(map(len, parts), dtype=np.intp, count=len(parts))
        word_owners = np.repeat(np.arange(n, dtype=np.uint64), words_per_text)
        hashes = np.concatenate(parts)
        owners = np.repeat(word_owners, sizes)
        if self._word_bigrams:
            word_hashes = hashes[np.cumsum(sizes) - sizes]
            adjacent = word_owners[1:] == word_owners[:-1]  # both words in the same text
            pairs = _pair_hash(word_hashes[:-1][adjacent], word_hashes[1:][adjacent])
            hashes = np.concatenate([hashes, pairs])
            owners = np.concatenate([owners, word_owners[1:][adjacent]])

        if self._sublinear_tf:
            # Count each distinct (text, feature) pair, then weigh it 1 + log(tf). Both
            # fit one uint64 key (text row above the 52 hash bits): one flat sort.
            keys = np.sort(hashes | (owners << _HASH_BITS))
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            counts = np.diff(np.append(starts, keys.size))
            keys = keys[starts]
            hashes, owners = keys & _HASH_MASK, keys >> _HASH_BITS
            weights = 1.0 + np.log(counts)
        else:
            weights = np.ones(hashes.size)

        buckets = (hashes >> np.uint64(1)) % np.uint64(self._dimension)
        signs = np.where(hashes & np.uint64(1), 1.0, -1.0)
        flat = owners.astype(np.intp) * self._dimension + buckets.astype(np.intp)
        sums = np.bincount(flat, weights=signs * weights, minlength=n * self._dimension)
        matrix = np.asarray(sums, dtype=np.float64).reshape(n, self._dimension)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        # Rows whose features all cancelled out (or that had none) stay zero.
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix


def _tokenize(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def _hash(feature: str) -> int:
    """A stable 52-bit hash: the same on every machine, process and Python version."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 12


# Character n-grams recur across many different words, so their hashes are cached too.
_ngram_hash = lru_cache(maxsize=1 << 17)(_hash)


@lru_cache(maxsize=8)
def _word_featurizer(low: int, high: int) -> Callable[[str], npt.NDArray[np.uint64]]:
    """The cached word -> feature hashes function for one character n-gram range."""

    @lru_cache(maxsize=1 << 16)
    def word_features(word: str) -> npt.NDArray[np.uint64]:
        """Hashes of a word's features: the word itself, then its padded n-grams.

        Cached: a corpus repeats the same few thousand words, so each is hashed once.
        The hashes do not depend on the dimension, which only picks the bucket
        afterwards (from bits 1-51; bit 0 is the sign).
        """
        padded = f"<{word}>"
        features = [f"w:{word}"]  # first: the bigram hashes are built from it
        for size in range(low, min(high, len(padded)) + 1):
            features.extend(f"c:{padded[i : i + size]}" for i in range(len(padded) - size + 1))
        if len(padded) < low:  # shorter than every n-gram: the padded word stands in
            features.append(f"c:{padded}")
        array = np.array([_ngram_hash(feature) for feature in features], dtype=np.uint64)
        array.flags.writeable = False  # shared by every caller through the cache
        return array

    return word_features


_MIX_IN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _pair_hash(
    first: npt.NDArray[np.uint64], second: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint64]:
    """52-bit hashes of word pairs, from the words' BLAKE2b hashes, vectorised.

    An ordered combination ((a, b) and (b, a) differ) finished with the SplitMix64
    mixer; uint64 array arithmetic wraps modulo 2**64, the same on every platform.
    """
    x: npt.NDArray[np.uint64] = first * _MIX_IN + second
    x ^= x >> np.uint64(30)
    x *= _MIX_1
    x ^= x >> np.uint64(27)
    x *= _MIX_2
    x ^= x >> np.uint64(31)
    x >>= np.uint64(12)
    return x
