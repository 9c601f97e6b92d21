"""Keyword (BM25) and hybrid search: the query's parts, the statements, the ranking and
the fusion; pure.

A keyword search is three short statements and a scorer:

1. **terms**: the query's lexemes (``to_tsvector`` of its words: the configuration's
   stemming and stop words), each with its document frequency in the collection, and
   the collection's size and total length, from the term statistics (``_terms``).
2. **candidates**: the documents that can rank, found by the GIN index on
   ``content_tsv``: those holding any of the rarest query terms, up to
   :data:`CANDIDATES` postings in all (at least the rarest term's), and those holding
   every term. Each comes back with its length and, per query term, ``ts_rank`` of that
   one term with every weight 1: ``H2(tf) / H2(inf)`` (``H2`` the sum of ``1/j**2`` up
   to tf; PostgreSQL's cover-free rank of one term), from which :func:`rank` reads the
   term frequency back (:data:`MAX_TERMS` terms at most, the rarest). Filters, phrases
   and exclusions narrow this statement.
3. :func:`rank` scores the candidates by BM25 (Lucene's IDF and length
   normalisation, ``k1`` and ``b``) and keeps the best; **documents** reads their text.

A document holding none of the rare terms and not all of the query's terms has only
common terms to score by; it can rank only when no candidate holds a rare one, which
the bounded candidate set gives up for speed (its effect is measured in
``benchmarks/text_quality.py``).

The query takes ``websearch_to_tsquery`` syntax: its words are OR'ed and ranked; a
``"quoted phrase"`` must occur as a phrase (its words rank too), a ``-word`` or
``-"phrase"`` must not occur, ``or`` is accepted and changes nothing. A query with no
searchable words (stop words, punctuation) finds nothing.

Hybrid search runs the vector leg (the planner's search for ``fetch_k`` rows) and the
keyword leg (``fetch_k`` ranked ids) and fuses them (:func:`fuse`): by default a convex
combination of the legs' standardised scores, or reciprocal rank fusion. A query
without searchable words leaves the vector leg alone.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Select,
    Text,
    and_,
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
CANDIDATES = 1000
#: BM25's defaults (Lucene's, and most libraries')
K1 = 1.2
B = 0.75

#: query terms scored at most (the rarest; the others weigh next to nothing)
MAX_TERMS = 32
# every weight 1: ts_rank of one term is then H2(tf) / H2(inf)
_WEIGHTS: ColumnElement[Any] = literal_column("'{1,1,1,1}'::float4[]")

#: per-call parameter names of the statements
WORDS = "bm25_words"
CANDIDATE = "bm25_candidates"
CONSTRAINT = "bm25_constraint"
IDS = "bm25_ids"


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
        select(table.c.lexeme, func.sum(table.c.df), func.sum(table.c.len))
        .where(
            table.c.collection_id == inline(cid, table.c.collection_id.type),
            table.c.lexeme == any_(lexemes),
        )
        .group_by(table.c.lexeme)
    )


def term(i: int) -> str:
    """The per-call parameter name of the ``i``-th scored term."""
    return f"bm25_term_{i}"


def candidate_params(terms: int, constrained: bool) -> tuple[str, ...]:
    """The per-call parameter names of :func:`candidates`, in order."""
    names = (CANDIDATE, *(term(i) for i in range(terms)))
    return (*names, CONSTRAINT) if constrained else names


def candidates(
    tables: Tables,
    cid: uuid.UUID,
    where: ColumnElement[bool] | None,
    *,
    terms: int,
    constrained: bool,
) -> Select[Any]:
    """The documents that can rank: id, length, and per scored term its one-term
    ``ts_rank``. Per call (:func:`candidate_params`): the candidate tsquery's text, each
    term as a tsquery's text, and (when ``constrained``) the constraint's
    ``websearch_to_tsquery`` text."""
    tsv, _ = _tsv(tables)
    table = tables.embedding
    ranks = [
        func.ts_rank(_WEIGHTS, tsv, cast(bindparam(term(i), None, type_=Text), TSQUERY))
        for i in range(terms)
    ]
    conditions = [tsv.op("@@")(cast(bindparam(CANDIDATE, None, type_=Text), TSQUERY))]
    if constrained:
        constraint = func.websearch_to_tsquery(
            _config(tables), bindparam(CONSTRAINT, None, type_=Text)
        )
        conditions.append(or_(func.numnode(constraint) == 0, tsv.op("@@")(constraint)))
    return select(table.c.id, func.length(tsv), *ranks).where(
        scope(tables, cid, where), *conditions
    )


def documents(tables: Tables, cid: uuid.UUID) -> Select[Any]:
    """id, content, metadata of the given ids (per call: the ids, text[])."""
    table = tables.embedding
    return select(table.c.id, table.c.content, table.c.metadata).where(
        and_(
            table.c.collection_id == inline(cid, table.c.collection_id.type),
            table.c.id == any_(bindparam(IDS, None, type_=ARRAY(Text))),
        )
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


# ts_rank of one term with every weight 1, by term frequency: H2(tf) / H2(inf), as
# PostgreSQL computes it (a tsvector keeps 256 positions of a lexeme at most)
_ZETA2 = 1.64493406685
_RANKS = [h2 / _ZETA2 for h2 in itertools.accumulate(1.0 / (j * j) for j in range(1, 257))]


def term_frequency(rank: float) -> int:
    """The term frequency behind one term's ``ts_rank`` (0: the term is absent)."""
    if rank < _RANKS[0] / 2:
        return 0
    at = bisect.bisect_left(_RANKS, rank)
    if at == len(_RANKS):
        return len(_RANKS)
    if at and rank - _RANKS[at - 1] < _RANKS[at] - rank:
        return at
    return at + 1


def rank(
    rows: Iterable[Sequence[Any]], weights: Weights, k1: float, b: float, limit: int
) -> list[tuple[str, float]]:
    """The ``limit`` best candidates by BM25, as (id, score), best first (ties by id).

    A row is (id, length, one ``ts_rank`` per term of ``weights.terms``).
    """
    idf = [weights.idf[t] for t in weights.terms]
    avgdl = weights.avgdl
    scored: list[tuple[float, str]] = []
    for doc_id, length, *ranks in rows:
        norm = k1 * (1.0 - b + b * length / avgdl)
        score = 0.0
        for weight, value in zip(idf, ranks, strict=True):
            tf = term_frequency(value)
            if tf:
                score += weight * tf * (k1 + 1.0) / (tf + norm)
        scored.append((score, doc_id))
    best = heapq.nsmallest(limit, scored, key=lambda pair: (-pair[0], pair[1]))
    return [(doc_id, score) for score, doc_id in best]


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
