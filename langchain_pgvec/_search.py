"""The search planner: how a search reads its rows, decided without I/O.

A search ranks the rows of one collection that match a filter. The collection is a
filter too: it may be everything a vector index holds, or a small share of a table
that many collections share, and an index scan that ignores this returns fewer than
``k`` rows, or the wrong ones. From what it knows about the collection, the filter and
the indexes, the planner picks one of three routes:

- ``exact``: no vector index serves the search, or the collection's matching rows are
  few (at most ``exact_below``): their own indexes (the primary key for the
  collection, GIN or a metadata index for the filter) find them, and every one is
  ranked by exact distance;
- ``index``: no filter, and the collection is (nearly) all that the index holds (its
  own partial index, or most of a shared one's rows): the plain index scan, which is
  one statement and needs no settings;
- ``iterative``: the collection is a minority of a shared index, or a filter narrows
  it: the index keeps scanning until enough rows pass (pgvector 0.8's iterative
  scans), is asked for ``overfetch * k`` rows, and those are sorted again by exact
  distance.

The index may be quantized (``HNSW(quantization="halfvec" | "binary")``, an index of
an expression of the vectors): it is then asked for ``overfetch * k`` candidates on
either index route, ordered by the quantized distance, and they are ranked by the
exact distance on the stored vectors. An index of the vectors as stored is preferred
to a quantized one, halfvec to binary, unless the ``quantization`` setting says
otherwise (see :func:`serving`).

A search through an index that comes back with fewer than ``k`` rows (an iterative
scan that hit ``max_scan_tuples``, a pgvector without iterative scans, statistics
that lied) is completed by the exact route, so a search returns min(k, matching rows).

What the planner knows comes from the database a statement at a time.
:meth:`Planner.steps` is a generator: it yields each statement to run (the database
planner's estimate of the matching rows, a count stopped just above the threshold,
the search, its completion) as a :class:`~._engine.Step` and receives its rows; the
sync, async and explain runners drive the same generator. What a probe learnt is
kept for a minute per (collection, filter), and forgotten when this store writes or
changes an index.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import numpy as np
from sqlalchemy import Dialect
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.elements import ClauseElement

from . import _hybrid, _quantize, _sql, _tuning
from ._bootstrap import NEEDS, State, require, version_of
from ._catalog import IndexInfo
from ._driver import DriverStatement, Step
from ._filters import compile_filter
from ._schema import DistanceStrategy
from ._tuning import SearchSettings
from ._validate import as_vector

Steps = Generator[Step, list[Any], list[Any]]
Kind = Literal["exactly", "at least", "about"]
Route = Literal["exact", "index", "iterative"]

#: seconds a probe's answer about a (collection, filter) is trusted
FACTS_TTL = 60.0
#: an estimate up to this many times the threshold is checked by counting: for JSONB
#: containment the database's statistics resolve about 1% of the table (a 2% filter on
#: 100,000 rows is estimated anywhere from 1,000 to 6,000 rows, from run to run)
REACH = 4
#: a collection holding at least this share of a shared index's rows is searched
#: through the plain index scan; below it, it is a filter like any other
NEARLY_ALL = 0.8

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class Cache(Generic[_K, _V]):
    """A dict of at most ``size`` entries (emptied when full), each trusted ``ttl`` seconds.

    Every cache of the planner is one of these: compiled statements, settings and
    filters (no expiry), and what probes learnt (a minute).
    """

    def __init__(self, size: int = 256, ttl: float | None = None) -> None:
        self._size, self._ttl = size, ttl
        self._data: dict[_K, tuple[_V, float]] = {}

    def get(self, key: _K) -> _V | None:
        """The value kept for ``key``; None when there is none or it expired."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._ttl is not None and time.monotonic() - entry[1] > self._ttl:
            del self._data[key]
            return None
        return entry[0]

    def put(self, key: _K, value: _V) -> _V:
        """Keep ``value`` for ``key`` and return it."""
        if len(self._data) >= self._size and key not in self._data:
            self._data.clear()
        self._data[key] = (value, time.monotonic())
        return value

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class Facts:
    """What probes taught about the rows of one collection that match one filter."""

    rows: int
    """The matching rows: exactly, at least (a capped count that hit its cap), or about
    (the database planner's estimate)."""
    kind: Kind
    share: float
    """The collection's share of the table's rows, as the database planner estimates it
    (what a shared vector index holds of the collection)."""

    def few(self, threshold: int) -> bool | None:
        """Whether the matching rows are at most ``threshold``; None when only a count
        can tell (an estimate close to the threshold, or a count capped below it)."""
        if self.kind == "exactly":
            return self.rows <= threshold
        if self.kind == "at least":
            return False if self.rows > threshold else None
        return False if self.rows > REACH * threshold else None


def estimates(answer: list[Any]) -> tuple[int, int] | None:
    """(matching rows, table rows) from :func:`_sql.probe`'s ``EXPLAIN (FORMAT JSON)``;
    None when the plan does not have the shape asked for."""
    try:
        plan = answer[0][0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        first, second = plan[0]["Plan"]["Plans"][:2]
        return int(first["Plan Rows"]), int(second["Plan Rows"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def learnt(answer: list[Any]) -> Facts:
    """The facts of a probe's answer (an unreadable plan teaches nothing certain: the
    rows are then "about" as many as the threshold's reach, so that they get counted)."""
    found = estimates(answer)
    if found is None:
        return Facts(rows=0, kind="about", share=0.0)
    rows, total = found
    return Facts(rows=rows, kind="about", share=min(1.0, rows / total) if total > 0 else 1.0)


def counted(facts: Facts, answer: list[Any], cap: int) -> Facts:
    """``facts`` with the rows of a capped count (``cap`` rows means "at least")."""
    rows = int(answer[0][0])
    return Facts(rows=rows, kind="at least" if rows >= cap else "exactly", share=facts.share)


def _best(usable: list[IndexInfo]) -> IndexInfo | None:
    """The collection's own index first, else the first over the whole table."""
    return next((i for i in usable if i.per_collection), usable[0] if usable else None)


def serving(
    state: State,
    strategy: DistanceStrategy,
    quantization: _tuning.QuantizationChoice | None = None,
) -> IndexInfo | None:
    """The vector index a search of the store's collection can use; None when there is none.

    Of each kind, the collection's own partial index first, else one over the whole
    table. Of the kinds, by ``quantization`` (the setting): None prefers an index of
    the vectors as stored (exact distances in the graph, nothing to rank again),
    else a halfvec-quantized one (the closer approximation), else a binary one;
    ``"halfvec"`` or ``"binary"`` prefers that quantized index when there is one;
    ``"off"`` never takes a quantized index.
    """
    spec = state.tables.spec
    cid = state.collection_id
    opclass = strategy.opclass(spec.vector_type)
    plain = _best([i for i in state.indexes if i.serves(opclass, cid)])
    if quantization == "off":
        return plain
    quantized = {
        kind: _best(
            [
                i
                for i in state.indexes
                if i.serves_quantized(kind, _quantize.opclass(kind, strategy), cid, spec.dimension)
            ]
        )
        for kind in _quantize.QUANTIZATIONS
    }
    if quantization is not None and quantized[quantization] is not None:
        return quantized[quantization]
    return plain or quantized["halfvec"] or quantized["binary"]


def needs_probe(index: IndexInfo | None, filtered: bool) -> bool:
    """Whether the route depends on how many rows match (see :func:`route`)."""
    return index is not None and (filtered or not index.per_collection)


def route(index: IndexInfo | None, filtered: bool, facts: Facts | None, threshold: int) -> Route:
    """The route of a search (module docstring); ``facts`` as :func:`needs_probe` asks."""
    if index is None:
        return "exact"
    if not filtered and (index.per_collection or (facts is not None and facts.share >= NEARLY_ALL)):
        return "index"
    if threshold and facts is not None and facts.few(threshold):
        return "exact"
    return "iterative"


def needs_count(index: IndexInfo | None, filtered: bool, facts: Facts, threshold: int) -> bool:
    """Whether only a capped count can decide between the exact and another route."""
    if not threshold or (not filtered and index is not None and facts.share >= NEARLY_ALL):
        return False
    return facts.few(threshold) is None


@dataclass(frozen=True)
class Plan:
    """How one search runs: its route, the rows it asks of the index, its settings."""

    route: Route
    fetch: int
    resort: bool
    gucs: tuple[tuple[str, str], ...]
    quantization: _quantize.Quantization | None = None
    """The candidates come from an index of this quantization (and are ranked again)."""


def make_plan(
    chosen: Route,
    k: int,
    settings: SearchSettings,
    state: State,
    index: IndexInfo | None = None,
    share: float = 1.0,
) -> Plan:
    """The plan of ``chosen`` for ``k`` rows through ``index``, of whose rows ``share``
    can match, with the settings that differ from the session's. A relaxed iterative
    scan (the default of the iterative route, or asked for) returns rows nearly in
    order: they are sorted again. The candidates of a quantized index are always
    ranked again, by exact distance."""
    if chosen == "exact":
        gucs = _tuning.timeout(settings)
        return Plan("exact", k, False, tuple(_tuning.changes(gucs, dict(state.settings)).items()))
    iterative = chosen == "iterative"
    quantization = None if index is None else index.quantization
    fetch = _tuning.fetch_size(settings, k, iterative, quantization)
    lists = None
    if index is not None and index.method == "ivfflat":
        lists = int(index.parameters.get("lists", "0")) or None
    gucs = _tuning.resolve(
        settings,
        candidates=fetch,
        filtered=iterative,
        iterative_supported=version_of(state.extension_version) >= NEEDS["iterative scans"],
        lists=lists,
        share=share if iterative else 1.0,
        all_candidates=quantization is not None,
    )
    resort = quantization is not None or gucs.get("hnsw.iterative_scan") == "relaxed_order"
    changed = _tuning.changes(gucs, dict(state.settings))
    return Plan(chosen, fetch, resort, tuple(changed.items()), quantization)


def filter_key(filter: Mapping[str, Any] | None) -> str | None:
    """The filter as canonical JSON ("" for none; None: not JSON, never cached)."""
    try:
        return json.dumps(filter, sort_keys=True, allow_nan=False) if filter else ""
    except (TypeError, ValueError, RecursionError):
        return None  # the filter compiler says what is wrong


@dataclass(frozen=True)
class Request:
    """One search as asked: validated, with its filter compiled."""

    state: State
    vector: np.ndarray
    k: int
    settings: SearchSettings
    where: ColumnElement[bool] | None
    shape: str | None
    with_vectors: bool
    explicit: bool  # per-call settings were given

    @property
    def filtered(self) -> bool:
        """Whether a metadata filter narrows the collection."""
        return self.where is not None


class _Compiled:
    """A search statement and its psycopg form."""

    __slots__ = ("driver", "statement")

    def __init__(self, statement: Any, driver: DriverStatement) -> None:
        self.statement, self.driver = statement, driver


@dataclass(frozen=True)
class _Memo:
    """The steps of the last unfiltered search without per-call settings, by (k, flags)."""

    state: State
    settings: SearchSettings
    search: Step
    complete: Step | None


class Planner:
    """The planner of one store: its caches and its step generators (no I/O)."""

    def __init__(self, dialect: Dialect, strategy: DistanceStrategy) -> None:
        self._dialect = dialect
        self._strategy = strategy
        self._statements: Cache[tuple[Any, ...], _Compiled] = Cache()
        self._settings: Cache[tuple[tuple[str, str], ...], DriverStatement] = Cache(64)
        self._filters: Cache[tuple[Any, ...], ColumnElement[bool]] = Cache()
        self._facts: Cache[tuple[Any, ...], Facts] = Cache(ttl=FACTS_TTL)
        self._plain: Cache[tuple[Any, ...], _Memo] = Cache(64, ttl=FACTS_TTL)
        self._texts: Cache[tuple[Any, ...], DriverStatement] = Cache()

    def forget(self) -> None:
        """Forget what probes learnt: the store wrote, or changed an index."""
        self._facts.clear()
        self._plain.clear()

    # ------------------------------------------------------------------ requests

    def request(
        self,
        state: State,
        embedding: Any,
        k: int,
        filter: Mapping[str, Any] | None,
        kwargs: dict[str, Any],
        settings: SearchSettings,
        *,
        with_vectors: bool = False,
    ) -> Request:
        """Validate one search (raising before any I/O) and resolve its settings."""
        assert state.collection_id is not None
        vector = as_vector(embedding, state.tables.spec.dimension)
        explicit = bool(kwargs)
        if explicit:
            settings = settings.merged(_tuning.from_kwargs(kwargs))
        if settings.iterative_scan not in (None, "off"):
            require(
                "iterative scans",
                state.extension_version,
                "or leave iterative_scan unset: filtered searches, and collections that are "
                "a minority of a shared index, then have their index answers completed by "
                "exact ranking (complete, but slower)",
            )
        shape = filter_key(filter)
        where = self._where(state, filter, shape)
        return Request(state, vector, k, settings, where, shape, with_vectors, explicit)

    def scoped(
        self, state: State, filter: Mapping[str, Any] | None
    ) -> tuple[ColumnElement[bool] | None, str | None]:
        """A filter compiled (cached by its JSON), and that JSON (None: not JSON)."""
        shape = filter_key(filter)
        return self._where(state, filter, shape), shape

    def _where(
        self, state: State, filter: Mapping[str, Any] | None, shape: str | None
    ) -> ColumnElement[bool] | None:
        if not filter:
            return None
        # by the Tables object, not its spec: the expression holds that object's columns,
        # and a statement mixing two Table objects of one name lists the table twice
        key = (state.tables, shape)
        known = self._filters.get(key) if shape is not None else None
        if known is not None:
            return known
        where = compile_filter(filter, state.tables.embedding.c.metadata)
        return where if shape is None else self._filters.put(key, where)

    # ------------------------------------------------------------------ steps

    def steps(self, request: Request) -> Steps:
        """The statements of one search, each yielded as a Step; returns its rows.

        Rows are ``(id, content, metadata, distance[, vector bytes])`` tuples.
        """
        memo_key = None
        if not request.filtered and not request.explicit:
            memo_key = (request.k, request.with_vectors)
            memo = self._plain.get(memo_key)
            if (
                memo is not None
                and memo.state is request.state
                and (memo.settings is request.settings)
            ):
                rows = yield memo.search._replace(value=request.vector)
                if memo.complete is not None and len(rows) < request.k:
                    rows = yield memo.complete._replace(value=request.vector)
                return rows
        plan = yield from self._planned(request)
        search = self._search_step(request, plan)
        complete = None
        if plan.route != "exact":
            complete = self._search_step(request, self._exact(request))
        if memo_key is not None:
            self._plain.put(memo_key, _Memo(request.state, request.settings, search, complete))
        rows = yield search
        if complete is not None and len(rows) < request.k:
            rows = yield complete
        return rows

    def hybrid_steps(
        self,
        request: Request,
        text: str,
        k: int,
        rrf_k: int,
        weights: tuple[float, float],
        bm25: tuple[float, float],
        fusion: str,
    ) -> Steps:
        """The statements of one hybrid search (``request.k`` is the legs' ``fetch_k``):
        the vector leg as :meth:`steps` plans it, then the keyword leg; returns ``(id,
        content, metadata, fused score)`` tuples, best first."""
        nearest = yield from self.steps(request)
        ranked = yield from self.keyword_steps(
            request.state, request.where, request.shape, text, request.k, bm25, request.settings
        )
        fused = _hybrid.fuse(
            [(row[0], -float(row[3])) for row in nearest],  # nearer is better
            [(row[0], float(row[3])) for row in ranked],
            k,
            fusion=fusion,
            rrf_k=rrf_k,
            weights=weights,
        )
        known = {row[0]: row for row in (*ranked, *nearest)}
        return [(i, known[i][1], known[i][2], score) for i, score in fused]

    def _planned(self, request: Request) -> Generator[Step, list[Any], Plan]:
        """Probe what the route depends on (unless known), then plan."""
        state, filtered = request.state, request.filtered
        index = serving(state, self._strategy, request.settings.quantization)
        threshold = _tuning.exact_below(request.settings)
        facts = None
        if needs_probe(index, filtered):
            key = (state.tables.spec, state.collection_id, request.shape)
            cacheable = request.shape is not None
            facts = self._facts.get(key) if cacheable else None
            if facts is None:
                facts = learnt((yield self._step(_sql.probe(*self._scope(request)))))
            if needs_count(index, filtered, facts, threshold):
                cap = threshold + 1
                count = _sql.count(*self._scope(request), cap=cap)
                facts = counted(facts, (yield self._step(count)), cap)
            if cacheable:
                self._facts.put(key, facts)
        chosen = route(index, filtered, facts, threshold)
        share = 1.0 if facts is None else facts.share
        return make_plan(chosen, request.k, request.settings, state, index, share)

    def _exact(self, request: Request) -> Plan:
        return make_plan("exact", request.k, request.settings, request.state)

    def _scope(self, request: Request) -> tuple[Any, Any, Any]:
        state = request.state
        return state.tables, state.collection_id, request.where

    # ------------------------------------------------------------------ statements

    def _step(self, statement: ClauseElement) -> Step:
        return Step(self._compile(statement), None, None, None)

    def _compile(self, statement: ClauseElement) -> DriverStatement:
        return DriverStatement.compile(statement, self._dialect, _sql.QUERY)

    def _gucs(self, gucs: tuple[tuple[str, str], ...]) -> DriverStatement | None:
        statement = _tuning.set_local(gucs)
        if statement is None:
            return None
        known = self._settings.get(gucs)
        return known if known is not None else self._settings.put(gucs, self._compile(statement))

    def _search_step(self, request: Request, plan: Plan) -> Step:
        state = request.state
        key = None
        if request.shape is not None:
            key = (
                state.tables,  # the statement holds its Table object
                state.collection_id,
                request.shape,
                request.k,
                request.with_vectors,
                plan.route,
                plan.fetch,
                plan.resort,
                plan.quantization,
            )
        compiled = self._statements.get(key) if key is not None else None
        if compiled is None:
            statement = _sql.search(
                state.tables,
                state.collection_id,  # type: ignore[arg-type]
                self._strategy,
                request.vector,
                request.k,
                request.where,
                with_vectors=request.with_vectors,
                resort=plan.resort,
                fetch=plan.fetch,
                exact=plan.route == "exact",
                quantization=plan.quantization,
            )
            compiled = _Compiled(statement, self._compile(statement))
            if key is not None:
                self._statements.put(key, compiled)
        return Step(compiled.driver, request.vector, self._gucs(plan.gucs), compiled.statement)

    def keyword_steps(
        self,
        state: State,
        where: ColumnElement[bool] | None,
        shape: str | None,
        text: str,
        limit: int,
        bm25: tuple[float, float],
        settings: SearchSettings,
    ) -> Steps:
        """A keyword search, alone or as hybrid's keyword leg (see :mod:`._hybrid`): the
        query's term statistics, then the candidates ranked; returns the ``limit`` best
        ``(id, content, metadata, BM25 score)`` tuples."""
        query = _hybrid.parse(text)
        if not query.words.strip() or not limit:
            return []
        assert state.collection_id is not None
        cid = state.collection_id
        statement = self._cached(
            ("terms", state.tables, cid), lambda: _hybrid.terms(state.tables, cid), _hybrid.WORDS
        )
        weights = _hybrid.weigh((yield Step(statement, query.words, None, None)))
        if weights is None:
            return []
        constrained = bool(query.constraint)
        terms = weights.terms
        names = _hybrid.ranked_params(len(terms), constrained)
        key = None
        if shape is not None:
            key = ("ranked", state.tables, cid, shape, limit, len(terms), constrained)
        statement = self._cached(
            key,
            lambda: _hybrid.ranked(
                state.tables, cid, where, limit, terms=len(terms), constrained=constrained
            ),
            names,
        )
        value = (weights.candidates, *weights.values(*bm25))
        if constrained:
            value += (query.constraint,)
        gucs = _tuning.changes(_tuning.timeout(settings), dict(state.settings))
        return (yield Step(statement, value, self._gucs(tuple(gucs.items())), None))

    def _cached(
        self,
        key: tuple[Any, ...] | None,
        build: Callable[[], ClauseElement],
        param: str | tuple[str, ...],
    ) -> DriverStatement:
        """A text statement compiled once per key (None: a filter that is not JSON)."""
        known = self._texts.get(key) if key is not None else None
        if known is not None:
            return known
        compiled = DriverStatement.compile(build(), self._dialect, param)
        return compiled if key is None else self._texts.put(key, compiled)

    def explain_steps(self, request: Request, *, analyze: bool) -> Steps:
        """The steps of a search up to its search statement, which is explained instead
        of run; returns the plan's rows."""
        steps = self.steps(request)
        step = next(steps)
        while step.source is None:
            step = steps.send((yield step))
        steps.close()
        return (yield self.explained(step, analyze=analyze))

    def explained(self, step: Step, *, analyze: bool) -> Step:
        """``step`` (a search) as its ``EXPLAIN``, with the same value and settings."""
        assert step.source is not None
        explain = _sql.Explain(step.source, analyze=analyze)
        return Step(self._compile(explain), step.value, step.settings, None)
