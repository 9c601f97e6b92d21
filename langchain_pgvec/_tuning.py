"""Per-query settings of approximate search, applied with ``SET LOCAL`` semantics.

A search that needs settings runs in a transaction of its own; before the query, one
statement ``SELECT set_config(name, value, true), ...`` sets what differs from the
session's values, and the settings end with the transaction, so they never leak to
other users of a pooled connection. Which route a search takes is the planner's
(``_search``); this module says what each route sets.

Defaults, chosen so that approximate search returns what was asked:

- ``hnsw.ef_search`` is the number of rows asked of the index (``k``, ``fetch_k`` for
  MMR, times ``overfetch`` on the iterative route), never below pgvector's default of
  40 nor above its maximum of 1,000;
- ``ivfflat.probes`` is twice the square root of the IVFFlat index's lists
  (pgvector's default of 1 misses neighbours in the lists next to the query's), more
  when only a share of the index's rows can match;
- the iterative route (a filter, or a minority of a shared index) turns on iterative
  index scans (pgvector >= 0.8) in ``relaxed_order``, so the index keeps scanning
  until enough rows pass; the rows are then sorted again by exact distance;
- ``max_scan_tuples`` bounds that scan (pgvector's default 20,000), so a filter
  that matches almost nothing cannot make one query read the whole index;
- a filtered search, or one of a collection that is a minority of a shared index,
  with at most ``exact_below`` matching rows (5,000) skips the vector index
  altogether: exact distances over the matching rows, no settings but the statement
  timeout;
- a search through a quantized index (``HNSW(quantization=...)``) asks it for
  ``overfetch * k`` candidates on every route (``overfetch`` 2 for halfvec, 10 for
  binary and at least 100 candidates; twice that on the iterative route), with
  ``hnsw.ef_search`` at least that (up to 1,000), and ranks them by exact distance.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, func, select

from . import _quantize
from ._errors import InvalidInputError
from ._quantize import Quantization
from ._validate import check_int

IterativeScan = Literal["off", "relaxed_order", "strict_order"]
_ITERATIVE = ("off", "relaxed_order", "strict_order")
QuantizationChoice = Literal["halfvec", "binary", "off"]
_QUANTIZATION_CHOICES = ("halfvec", "binary", "off")
DEFAULT_EF_SEARCH = 40
DEFAULT_OVERFETCH = 2
DEFAULT_EXACT_BELOW = 5_000
#: pgvector's defaults, what a session has before anyone changes them
PGVECTOR_DEFAULTS = {
    "hnsw.ef_search": "40",
    "hnsw.iterative_scan": "off",
    "ivfflat.probes": "1",
    "ivfflat.iterative_scan": "off",
}


def _positive(name: str, value: int | None, upper: int) -> None:
    if value is not None:
        check_int(value, name, 1, upper)


@dataclass(frozen=True)
class SearchSettings:
    """How approximate (index) search trades speed for recall, per store or per call.

    Every field left as None takes its default, given below.

    Args:
        ef_search: HNSW candidate list size (``hnsw.ef_search``, 1 to 1000; None: the
            rows asked of the index, at least 40 and at most 1000).
        probes: IVFFlat lists probed (``ivfflat.probes``, 1 to 32768; None: twice the
            square root of the index's lists, more for a filtered or minority search,
            at most all of them).
        iterative_scan: ``"off"``, ``"relaxed_order"`` or ``"strict_order"``; None
            means relaxed on the iterative route (a filter, or a collection that is
            a minority of a shared index) and the session's setting (pgvector's
            default: off) otherwise. IVFFlat has no strict order: with
            ``"strict_order"`` its iterative scan is off. Needs pgvector 0.8.
        max_scan_tuples: Upper bound of tuples an iterative HNSW scan visits (None:
            pgvector's default, 20,000).
        max_probes: Upper bound of lists an iterative IVFFlat scan probes (None:
            pgvector's default).
        statement_timeout_ms: Cancel the statement after this many milliseconds
            (None: the server's setting).
        overfetch: A search on the iterative route asks the index for
            ``overfetch * k`` matching rows and keeps the ``k`` nearest by exact
            distance (1 to 100; default 2). An iterative scan returns matches in
            roughly increasing distance; asking for more than ``k`` lifts recall.
            A search through a quantized index (``HNSW(quantization=...)``) asks it
            for ``overfetch * k`` candidates on every route and ranks them by the
            exact distance (default 2 for halfvec; 10 for binary, and then at least
            100 candidates; twice as many on the iterative route); ``hnsw.ef_search``
            is then at least ``overfetch * k`` (up to 1,000), whatever ``ef_search``
            says, or the index would return fewer.
        exact_below: A filtered search, or a search of a collection that holds less
            than 80% of a shared index's rows, that matches at most this many rows
            skips the vector index: the rows' own indexes find them and all of them
            are ranked by exact distance (default 5,000; 0 turns this off). An
            unfiltered search of a collection with its own partial index, or with at
            least 80% of a shared index's rows, goes through the index. Judging the
            rows costs an EXPLAIN (the database planner's estimate) and, when that is
            close, a count stopped at ``exact_below + 1`` rows; the answer is kept
            for a minute.
        quantization: Which kind of vector index a search uses when several serve
            it. None: an index of the vectors as stored, else a halfvec-quantized
            one, else a binary one. ``"halfvec"`` or ``"binary"``: that quantized
            index when one serves the search (else as None); ``"off"``: never a
            quantized index.

    Raises:
        InvalidInputError: A field is not an integer in its range (given above;
            ``max_scan_tuples`` and ``statement_timeout_ms``: 1 to 2,147,483,647,
            ``max_probes``: 1 to 32768, ``exact_below``: from 0), or ``iterative_scan``
            or ``quantization`` is not one of its three values.
    """

    ef_search: int | None = None
    probes: int | None = None
    iterative_scan: IterativeScan | None = None
    max_scan_tuples: int | None = None
    max_probes: int | None = None
    statement_timeout_ms: int | None = None
    overfetch: int | None = None
    exact_below: int | None = None
    quantization: QuantizationChoice | None = None

    def __post_init__(self) -> None:
        _positive("ef_search", self.ef_search, 1000)
        _positive("probes", self.probes, 32768)
        _positive("max_scan_tuples", self.max_scan_tuples, 2**31 - 1)
        _positive("max_probes", self.max_probes, 32768)
        _positive("statement_timeout_ms", self.statement_timeout_ms, 2**31 - 1)
        _positive("overfetch", self.overfetch, 100)
        if self.exact_below is not None:
            check_int(self.exact_below, "exact_below (0: never)", 0)
        if self.iterative_scan is not None and self.iterative_scan not in _ITERATIVE:
            raise InvalidInputError(
                f"iterative_scan must be one of {', '.join(_ITERATIVE)}, "
                f"got {self.iterative_scan!r}"
            )
        if self.quantization is not None and self.quantization not in _QUANTIZATION_CHOICES:
            raise InvalidInputError(
                f"quantization must be one of {', '.join(_QUANTIZATION_CHOICES)}, "
                f"got {self.quantization!r}"
            )

    def merged(self, override: SearchSettings | None) -> SearchSettings:
        """These settings with every field that ``override`` sets replaced.

        Args:
            override: The settings to apply; its fields left as None change nothing.

        Returns:
            A new :class:`SearchSettings` (this one when ``override`` is None).
        """
        if override is None:
            return self
        changes = {
            f.name: getattr(override, f.name)
            for f in dataclasses.fields(override)
            if getattr(override, f.name) is not None
        }
        return dataclasses.replace(self, **changes)


def from_kwargs(kwargs: dict[str, Any]) -> SearchSettings | None:
    """Per-call settings: ``search_settings=SearchSettings(...)`` and/or its fields."""
    if not kwargs:
        return None
    names = [f.name for f in dataclasses.fields(SearchSettings)]
    given = {name: kwargs.pop(name) for name in names if name in kwargs}
    explicit = kwargs.pop("search_settings", None)
    if explicit is not None and not isinstance(explicit, SearchSettings):
        raise InvalidInputError(
            f"search_settings must be a SearchSettings, got {type(explicit).__name__}"
        )
    if not given:
        return explicit
    return (explicit or SearchSettings()).merged(SearchSettings(**given))


def exact_below(settings: SearchSettings) -> int:
    """Up to how many estimated matching rows a filtered search is answered exactly."""
    return DEFAULT_EXACT_BELOW if settings.exact_below is None else settings.exact_below


def fetch_size(
    settings: SearchSettings, k: int, filtered: bool, quantization: Quantization | None = None
) -> int:
    """How many rows a search asks the index for, to keep the ``k`` nearest.

    Through a quantized index, ``overfetch * k`` candidates on every route.
    """
    if quantization is not None:
        return _quantize.candidates(quantization, k, settings.overfetch, filtered)
    if not filtered:
        return k
    return k * (settings.overfetch or DEFAULT_OVERFETCH)


def default_probes(lists: int, share: float = 1.0) -> int:
    """The IVFFlat lists to probe by default (at least 1, at most ``lists``).

    Twice the square root of the index's lists (pgvector's documentation starts at the
    square root; its own default, 1, finds the nearest neighbours only when they share
    the query's list), divided by the square root of the share of the index's rows
    that can match: the nearest matching rows lie further out, in more lists.
    """
    wanted = 2 * math.sqrt(lists) / math.sqrt(min(1.0, max(share, 1e-6)))
    return max(1, min(lists, math.ceil(wanted)))


def resolve(
    settings: SearchSettings,
    *,
    candidates: int,
    filtered: bool,
    iterative_supported: bool,
    lists: int | None = None,
    share: float = 1.0,
    all_candidates: bool = False,
) -> dict[str, str]:
    """The GUCs to set for one query (name -> value).

    ``lists``: those of the IVFFlat index the query is expected to use; ``share``: the
    share of its rows that match; ``all_candidates``: ``hnsw.ef_search`` is at least
    ``candidates`` (up to 1,000) even when ``ef_search`` is set lower (the candidates
    of a quantized index, which are all ranked again).
    """
    ef_search = settings.ef_search or min(1000, max(DEFAULT_EF_SEARCH, candidates))
    if all_candidates:
        ef_search = max(ef_search, min(1000, candidates))
    gucs: dict[str, str] = {"hnsw.ef_search": str(ef_search)}
    probes = settings.probes or (default_probes(lists, share) if lists else None)
    if probes is not None:
        gucs["ivfflat.probes"] = str(probes)
    iterative = settings.iterative_scan or ("relaxed_order" if filtered else None)
    if iterative is not None and iterative_supported:
        gucs["hnsw.iterative_scan"] = iterative
        gucs["ivfflat.iterative_scan"] = "off" if iterative == "strict_order" else iterative
        if settings.max_scan_tuples is not None:
            gucs["hnsw.max_scan_tuples"] = str(settings.max_scan_tuples)
        if settings.max_probes is not None:
            gucs["ivfflat.max_probes"] = str(settings.max_probes)
    gucs.update(timeout(settings))
    return gucs


def timeout(settings: SearchSettings) -> dict[str, str]:
    """The statement timeout, the one setting a search without an index sends."""
    if settings.statement_timeout_ms is None:
        return {}
    return {"statement_timeout": str(settings.statement_timeout_ms)}


def changes(gucs: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """The settings whose value differs from what the session has.

    So a plain query, the common case, sends no settings statement at all.
    """
    known = {**PGVECTOR_DEFAULTS, **current}
    return {name: value for name, value in gucs.items() if known.get(name) != value}


def set_local(gucs: Mapping[str, str] | Sequence[tuple[str, str]]) -> Select[Any] | None:
    """One statement setting every GUC for the current transaction only."""
    items = tuple(gucs.items()) if isinstance(gucs, Mapping) else tuple(gucs)
    return _set_local(items) if items else None


@functools.lru_cache(maxsize=128)
def _set_local(items: tuple[tuple[str, str], ...]) -> Select[Any]:
    # the same few combinations recur on every filtered search: build each once
    return select(*(func.set_config(name, value, True) for name, value in items))
