"""Keyword (BM25) and hybrid search: the query's parts, the statements, the fusion; pure.

A keyword search is two short statements:

1. **terms**: the query's lexemes (``to_tsvector`` of its words: the configuration's
   stemming and stop words), each with its document frequency in the collection, and
   the collection's size and total length, from the term statistics (``_terms``);
   :func:`weigh` turns them into each term's IDF and the candidate tsquery.
2. **ranked**: the candidates, found by the GIN index on ``content_tsv``: those holding
   any of the rarest query terms, up to :data:`CANDIDATES` postings in all (at least
   the rarest term's), and those holding every term, narrowed by the filter, the
   phrases and the exclusions; each scored by BM25 (Lucene's IDF and length
   normalisation, ``k1`` and ``b``) over at most :data:`MAX_TERMS` terms (the rarest),
   the best returned with their text. A term's frequency in a document is read from
   ``ts_rank`` of that one term with every weight 1 (see :func:`ranked`), so no
   tsvector is copied or sent.

A document holding none of the rare terms and not all of the query's terms has only
common terms to score by; it can rank only when no candidate holds a rare one, which
the bounded candidate set gives up for speed (its effect is measured in
``benchmarks/text_quality.py``).

The query takes ``websearch_to_tsquery`` syntax: its words are OR'ed and ranked; a
``"quoted phrase"`` must occur as a phrase (its words rank too), a ``-word`` or
``-"phrase"`` must not occur, ``or`` is accepted and changes nothing. A query with no
searchable words (stop words, punctuation) finds nothing.

Hybrid search runs the vector leg (the planner's search for ``fetch_k`` rows) and the
keyword leg (its ``fetch_k`` best) and fuses them (:func:`fuse`): by default a convex
combination of the legs' standardised scores, or reciprocal rank fusion. A query
without searchable words leaves the vector leg alone.
"""

from __future__ import annotations

import heapq
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Select,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, REGCONFIG, TSQUERY
from sqlalchemy.sql import ColumnElement

from . import _validate
from ._errors import InvalidInputError, SchemaError
from ._schema import TSV_COLUMN, Tables
from ._sql import inline, scope
from ._terms import TOTALS, terms_table

#: postings (documents per term, summed over the rarest terms) the candidate set takes
CANDIDATES = 300
#: BM25's defaults (Lucene's, and most libraries')
K1 = 1.2
B = 0.75

#: query terms scored at most (the rarest; the others weigh next to nothing)
MAX_TERMS = 32
# constants of the score, in the SQL text (so that the statement has no fixed
# parameters and psycopg may prepare it); H2(inf) = pi**2 / 6, the limit of sum(1/j**2)
_ZERO: ColumnElement[Any] = literal_column("0.0::float8", Float(precision=53))
_HALF: ColumnElement[Any] = literal_column("0.5::float8", Float(precision=53))
_ONE: ColumnElement[Any] = literal_column("1.0::float8", Float(precision=53))
_ZETA2: ColumnElement[Any] = literal_column("1.64493406685::float8", Float(precision=53))
# every weight 1: ts_rank of one term is then H2(tf) / H2(inf)
_WEIGHTS: ColumnElement[Any] = literal_column("'{1,1,1,1}'::float4[]")

#: per-call parameter names of the statements
WORDS = "bm25_words"
CANDIDATE = "bm25_candidates"
CONSTRAINT = "bm25_constraint"


def _tsv(tables: Tables) -> Any:
    config = tables.spec.text_search_config
    if config is None or TSV_COLUMN not in tables.embedding.c:
        raise SchemaError(
            "full-text search is not enabled on this store: create it with "
            "PGVecStore(..., full_text=True) (or full_text='<config>'), which adds the "
            f"generated column {TSV_COLUMN!r}, its GIN index and the term statistics BM25 "
            f"ranks by to {tables.spec.qualified_embedding_table!r}"
        )
    return tables.embedding.c[TSV_COLUMN], config


def check_search(tables: Tables, text: object, *, present: bool = True) -> None:
    """Raise before any I/O unless the store has full-text search and ``text`` is a
    string; ``present``: the table has the full-text column and its term statistics."""
    _tsv(tables)
    if not present:
        raise SchemaError(
            f"table {tables.spec.qualified_embedding_table!r} lacks what full-text search "
            f"needs (the column {TSV_COLUMN!r}, or the term statistics table "
            f"{terms_table(tables.spec).name!r} and its triggers), and this role does not "
            "own the table, so it may not add them: have the table's owner run "
            "PGVecStore(..., full_text=True).create_tables() (or `pgvec init --full-text`) "
            "once; it keeps every row"
        )
    _validate.check_query(text)


def check_bm25(k1: object, b: object) -> tuple[float, float]:
    """``k1`` (finite, >= 0) and ``b`` (0 to 1) as floats, or an InvalidInputError."""
    for name, value, top in (("k1", k1, math.inf), ("b", b, 1.0)):
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not 0 <= value <= top
        ):
            bound = "a finite number >= 0" if top == math.inf else "a number from 0 to 1"
            raise InvalidInputError(f"BM25's {name} must be {bound}, got {value!r}")
    return float(k1), float(b)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the query's parts


@dataclass(frozen=True)
class TextQuery:
    """A query in ``websearch_to_tsquery`` syntax, taken apart.

    ``words``: the text whose lexemes are ranked (the words and the phrases' words,
    not the exclusions). ``constraint``: the phrases and exclusions again, as a
    ``websearch_to_tsquery`` text every candidate must match ("" for none).
    """

    words: str
    constraint: str


# a "phrase" (its closing quote optional) or a word, either with a leading "-" when
# the "-" starts a token
_TOKEN = re.compile(r'(?:(?<!\S)(-))?"([^"]*)(?:"|$)|(?:(?<!\S)(-)(?=[^\s"]))?([^\s"]+)')


def parse(text: str) -> TextQuery:
    """Take a query apart (as ``websearch_to_tsquery`` reads it)."""
    words: list[str] = []
    constraint: list[str] = []
    for match in _TOKEN.finditer(text):
        phrase_not, phrase, word_not, word = match.groups()
        if phrase is not None:
            if phrase_not:
                constraint.append(f'-"{phrase}"')
            else:
                words.append(phrase)
                constraint.append(f'"{phrase}"')
        elif word_not:
            constraint.append(f"-{word}")
        elif word.casefold() != "or":
            words.append(word)
    return TextQuery(" ".join(words), " ".join(constraint))


# ------------------------------------------------------------------ statements


def _config(tables: Tables) -> ColumnElement[Any]:
    # rendered into the SQL text: the statements keep no fixed parameters, so psycopg
    # may prepare them
    return cast(inline(_tsv(tables)[1], Text()), REGCONFIG)


def terms(tables: Tables, cid: uuid.UUID) -> Select[Any]:
    """The query's lexemes known in the collection, with their document frequency, and
    the totals row (lexeme ``""``: documents, total length). Per call: the words."""
    table = terms_table(tables.spec)
    lexemes = func.array_append(
        func.tsvector_to_array(
            func.to_tsvector(_config(tables), bindparam(WORDS, None, type_=Text))
        ),
        inline(TOTALS, Text()),
        type_=ARRAY(Text),
    )
    return (
        select(
            table.c.lexeme,
            cast(func.sum(table.c.df), BigInteger),
            cast(func.sum(table.c.len), BigInteger),
        )
        .where(
            table.c.collection_id == inline(cid, table.c.collection_id.type),
            table.c.lexeme == any_(lexemes),
        )
        .group_by(table.c.lexeme)
    )


def term(i: int) -> str:
    """The per-call parameter name of the ``i``-th scored term's tsquery text."""
    return f"bm25_term_{i}"


def idf(i: int) -> str:
    """The per-call parameter name of the ``i``-th scored term's IDF."""
    return f"bm25_idf_{i}"


def ranked_params(terms: int, constrained: bool) -> tuple[str, ...]:
    """The per-call parameter names of :func:`ranked`, in order: the candidate
    tsquery's text, the length normalisation's two constants, each term's tsquery
    text and weight, and the constraint's text (when constrained); see
    :meth:`Weights.values`."""
    scored = tuple(name for i in range(terms) for name in (term(i), idf(i)))
    names = (CANDIDATE, "bm25_norm", "bm25_norm_per_lexeme", *scored)
    return (*names, CONSTRAINT) if constrained else names


def _float(name: str) -> Any:
    return bindparam(name, None, type_=Float(precision=53))


def ranked(
    tables: Tables,
    cid: uuid.UUID,
    where: ColumnElement[bool] | None,
    limit: int,
    *,
    terms: int,
    constrained: bool,
) -> Select[Any]:
    """The ``limit`` best candidates by BM25: id, content, metadata, score.

    Per call: :func:`ranked_params`. With ``norm = k1 * (1 - b + b * len / avg_len)``,
    each term adds ``idf * (k1 + 1) * (1 - norm / (tf + norm))`` (BM25's
    ``idf * tf * (k1 + 1) / (tf + norm)``, with tf once). A term's frequency is read
    back from its one-term ``ts_rank`` with every weight 1, ``r = H2(tf) / H2(inf)``:
    as ``H2(inf) - H2(tf)`` is ``1 / (tf + 1/2)`` within ``1 / (12 tf**3)``,
    ``tf = round(1 / (H2(inf) * (1 - r)) - 1/2)``, exact for the 256 positions a
    tsvector keeps of a lexeme (and 0 when the term is absent).
    """
    tsv, _ = _tsv(tables)
    table = tables.embedding
    length = cast(func.length(tsv), Float(precision=53))
    norm = _float("bm25_norm") + _float("bm25_norm_per_lexeme") * length
    score: Any = _ZERO
    for i in range(terms):
        rank = cast(
            func.ts_rank(_WEIGHTS, tsv, cast(bindparam(term(i), None, type_=Text), TSQUERY)),
            Float(precision=53),
        )
        tf = func.round(_ONE / (_ZETA2 * (_ONE - rank)) - _HALF, type_=Float(precision=53))
        score = score + _float(idf(i)) * (_ONE - norm / (tf + norm))
    conditions = [tsv.op("@@")(cast(bindparam(CANDIDATE, None, type_=Text), TSQUERY))]
    if constrained:
        constraint = func.websearch_to_tsquery(
            _config(tables), bindparam(CONSTRAINT, None, type_=Text)
        )
        empty = func.numnode(constraint) == literal_column("0")  # only stop words in it
        conditions.append(or_(empty, tsv.op("@@")(constraint)))
    labelled = score.label("score")
    return (
        select(table.c.id, table.c.content, table.c.metadata, labelled)
        .where(scope(tables, cid, where), *conditions)
        .order_by(labelled.desc(), table.c.id)
        .limit(inline(limit))
    )


# ------------------------------------------------------------------ ranking


def quote(lexeme: str) -> str:
    """A lexeme as a tsquery operand (quoted, so that no character is an operator)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class Weights:
    """What the terms statement said, made ready to rank by: each known term's IDF,
    the candidate tsquery, and the collection's average document length."""

    idf: dict[str, float]
    candidates: str
    avgdl: float

    @property
    def terms(self) -> list[str]:
        """The query's scored terms, rarest first (:data:`MAX_TERMS` at most)."""
        return list(self.idf)[:MAX_TERMS]

    def values(self, k1: float, b: float) -> tuple[Any, ...]:
        """The per-call values of :func:`ranked` after the candidate tsquery (in
        :func:`ranked_params`' order): ``norm = k1 (1 - b) + (k1 b / avg_len) len``
        (its constant kept above 0, so that ``k1 = 0`` scores each term ``idf``), then
        per term its tsquery text and ``idf * (k1 + 1)``."""
        values: tuple[Any, ...] = (max(k1 * (1.0 - b), 1e-12), k1 * b / self.avgdl)
        for lexeme in self.terms:
            values += (quote(lexeme), self.idf[lexeme] * (k1 + 1.0))
        return values


def weigh(rows: Iterable[Sequence[Any]], budget: int = CANDIDATES) -> Weights | None:
    """IDF of each known query term, and the candidate tsquery (see the module
    docstring); None when no query term occurs in the collection."""
    docs, length, known = 0, 0, []
    for lexeme, df, total in rows:
        if lexeme == TOTALS:
            docs, length = int(df), int(total)
        elif df > 0:
            known.append((int(df), lexeme))
    if not known or docs <= 0:
        return None
    known.sort()
    rare: list[str] = []
    postings = 0
    for df, lexeme in known:
        postings += df
        if rare and postings > budget:
            break
        rare.append(lexeme)
    query = " | ".join(quote(lexeme) for lexeme in rare)
    if len(rare) < len(known):
        query += " | (" + " & ".join(quote(lexeme) for _, lexeme in known) + ")"
    idf = {lexeme: math.log(1.0 + (docs - df + 0.5) / (df + 0.5)) for df, lexeme in known}
    return Weights(idf, query, max(length / docs, 1e-9))


FUSIONS = ("convex", "rrf")


def fuse(
    vector: Sequence[tuple[str, float]],
    text: Sequence[tuple[str, float]],
    k: int,
    *,
    fusion: str,
    rrf_k: int,
    weights: tuple[float, float],
) -> list[tuple[str, float]]:
    """The ``k`` best of two scored rankings (higher is better), as (id, fused score),
    ties by id.

    ``convex``: each leg's scores are standardised over its own list (z-scores: a
    leg's score minus its mean, over its standard deviation; a document missing from
    a leg gets that leg's lowest), then combined with the weights, normalised to sum
    to 1. ``rrf``: reciprocal rank fusion, ``weight / (rrf_k + rank)`` summed.
    """
    if fusion == "rrf":
        scores: dict[str, float] = {}
        for ranked, weight in ((vector, weights[0]), (text, weights[1])):
            for position, (doc_id, _) in enumerate(ranked, start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + weight / (rrf_k + position)
    else:
        total = weights[0] + weights[1]
        share = (0.5, 0.5) if total <= 0 else (weights[0] / total, weights[1] / total)
        legs = [_standardised(vector), _standardised(text)]
        lowest = [min(leg.values(), default=0.0) for leg in legs]
        scores = {
            doc_id: share[0] * legs[0].get(doc_id, lowest[0])
            + share[1] * legs[1].get(doc_id, lowest[1])
            for doc_id in {*legs[0], *legs[1]}
        }
    best = heapq.nsmallest(k, scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return list(best)


def _standardised(ranked: Sequence[tuple[str, float]]) -> dict[str, float]:
    if not ranked:
        return {}
    values = [score for _, score in ranked]
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if spread <= 0:
        return {doc_id: 0.0 for doc_id, _ in ranked}
    return {doc_id: (score - mean) / spread for doc_id, score in ranked}
