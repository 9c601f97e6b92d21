"""Checking what the user asks to store or search with, before anything reaches the
database: texts, ids, metadata, vectors, integers, strings.

``prepare`` turns texts, vectors, metadata and ids into a :class:`Batch` or raises
``InvalidInputError`` naming the offending position and the fix. It never mutates
its arguments.
"""

from __future__ import annotations

import decimal
import itertools
import json
import math
import operator
import re
import reprlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import DimensionMismatchError, InvalidInputError

_BRIEF = reprlib.Repr()
_BRIEF.maxlevel = 3
_BRIEF.maxstring = _BRIEF.maxother = 40
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = 4


def brief(value: object) -> str:
    """A short ``repr`` for error messages: bounded in depth and length, whatever ``value``."""
    return _BRIEF.repr(value)


# a JSON string (skipped) or a number in exponent notation (group 1)
_EXPONENT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?[eE][-+]?\d+)')
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _positional(match: re.Match[str]) -> str:
    number = match.group(1)
    if number is None:
        return match.group(0)
    digits = format(decimal.Decimal(number), "f")
    return digits if "." in digits else digits + ".0"


def json_dumps(value: Any) -> str:
    """JSON for JSONB: floats in positional notation with a decimal point, because
    PostgreSQL's numeric prints 1e+16 as 10000000000000000 (read back as an int)."""
    return _exponents(_encode(value))


@dataclass(frozen=True)
class Batch:
    """Validated rows: parallel lists of ids, texts and metadata, and a float32 matrix."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def pick(self, rows: Sequence[int]) -> Batch:
        """The rows at positions ``rows``, in that order (vectors copied for these only)."""
        return Batch(
            [self.ids[i] for i in rows],
            [self.texts[i] for i in rows],
            [self.metadatas[i] for i in rows],
            self.vectors[np.asarray(rows, dtype=np.intp)],
        )

    def slice(self, start: int, stop: int) -> Batch:
        """Rows ``start`` to ``stop`` as a batch of their own (no copies of vectors)."""
        return Batch(
            self.ids[start:stop],
            self.texts[start:stop],
            self.metadatas[start:stop],
            self.vectors[start:stop],
        )


#: bytes of the boolean block the finiteness check of a matrix allocates at once
FINITE_CHECK_BYTES = 1 << 22


def as_matrix(vectors: Any, *, rows: int | None = None, what: str = "embeddings") -> np.ndarray:
    """``vectors`` as a C-contiguous float32 (n, d) matrix of finite values."""
    try:
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused below
            matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} must be a sequence of equal-length lists of numbers or a 2-D numpy "
            f"array ({exc})"
        ) from exc
    if rows == 0 and matrix.size == 0:
        return matrix.reshape(0, 0)
    if matrix.ndim != 2:
        raise InvalidInputError(
            f"{what} must be 2-D (one vector per text), got an array of shape {matrix.shape}"
        )
    if rows is not None and matrix.shape[0] != rows:
        raise InvalidInputError(f"got {rows} texts but {matrix.shape[0]} {what}; pass one per text")
    if matrix.shape[1] == 0:
        raise InvalidInputError(f"{what} must have at least one dimension")
    rows_at_once = max(1, FINITE_CHECK_BYTES // matrix.shape[1])
    for first in range(0, matrix.shape[0], rows_at_once):  # a bool per value, a block at a time
        finite = np.isfinite(matrix[first : first + rows_at_once]).all(axis=1)
        if not finite.all():
            bad = first + int(np.flatnonzero(~finite)[0])
            raise InvalidInputError(
                f"{what}[{bad}] holds NaN or infinity, which pgvector cannot store; check "
                "the embedding model's output for that text"
            )
    contiguous: np.ndarray = np.ascontiguousarray(matrix)
    return contiguous


def as_vector(vector: Any, dimension: int | None) -> np.ndarray:
    """One query vector as contiguous float32, checked against the table's dimension.

    On every search, so cheap: one conversion (none for a float32 array) and one check.
    """
    try:
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused below
            row = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the query embedding must be a sequence of numbers or a 1-D numpy array ({exc})"
        ) from exc
    if row.ndim != 1 or row.size == 0:
        raise InvalidInputError(
            "the query embedding must be one non-empty vector (a flat sequence of numbers), "
            f"got an array of shape {row.shape}"
        )
    if dimension is not None and row.shape[0] != dimension:
        raise DimensionMismatchError(
            f"the query embedding has {row.shape[0]} dimensions but the table stores "
            f"{dimension}; embed queries with the model the documents were embedded with"
        )
    if not np.isfinite(row).all():
        raise InvalidInputError(
            "the query embedding holds NaN or infinity, which no distance can be computed "
            "from; check the embedding model's output for this query"
        )
    contiguous: np.ndarray = np.ascontiguousarray(row)
    return contiguous


def plain(value: str) -> bool:
    """Whether ``value`` is certainly storable, checked fast: ASCII without NUL (the
    common case); any other string gets :func:`unstorable`'s full check."""
    return value.isascii() and "\x00" not in value


def unstorable(value: str) -> str | None:
    """Why PostgreSQL cannot store the string ``value``, or None when it can.

    The one check of strings (texts, ids, names, metadata keys and values, filter
    operands); :func:`plain` is its fast path.
    """
    if plain(value):
        return None
    if "\x00" in value:
        return "a NUL character (\\x00), which PostgreSQL cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                f"the lone surrogate {value[exc.start]!r} at position {exc.start}, which is "
                "not valid Unicode (decode the source with errors='replace')"
            )
    return None


def check_string(value: str, where: str, error: type[Exception] = InvalidInputError) -> None:
    """Raise ``error`` naming ``where`` when ``value`` cannot be stored."""
    problem = unstorable(value)
    if problem is not None:
        raise error(f"{where} contains {problem}; remove or replace it")


def _check_json(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                f"{where} is {value}, which JSON cannot hold; store it as null or a string"
            )
        return
    if isinstance(value, str):
        check_string(value, where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(
                    f"{where} has the key {brief(key)} of type {type(key).__name__}; JSON keys "
                    "must be strings (convert it with str())"
                )
            check_string(key, f"{where} key {brief(key)}")
            _check_json(item, f"{where}[{brief(key)}]", depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            _check_json(item, f"{where}[{position}]", depth + 1)
        return
    raise InvalidInputError(
        f"{where} is a {type(value).__name__}, which is not JSON-serialisable; use str, "
        "int, float, bool, None, list or dict"
    )


#: the deepest nesting metadata may have (the dict itself is level 0)
MAX_DEPTH = 100
_STRICT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_decode = json.JSONDecoder().decode
#: between rows encoded in one call: a NUL, which no storable row holds (JSON escapes it)
_SEPARATOR = "\x00"
_SEPARATOR_TEXT = ',"\\u0000",'


#: rows checked per call of :func:`check_metadatas` by :func:`prepare`: what the check
#: allocates (texts, decoded rows) is bounded by this, not by the call's size
CHECK_ROWS = 2_000


def check_metadata(metadata: Any, position: int) -> dict[str, Any]:
    """One metadata dict (None means {}), checked as :func:`check_metadatas` checks it,
    as a copy."""
    return dict(check_metadatas([metadata], position)[0])


def check_metadatas(metadatas: Sequence[Any], start: int = 0) -> list[dict[str, Any]]:
    """Metadata dicts (None means {}) checked to round-trip through JSONB exactly; a
    Mapping that is not a dict comes back as a dict, a dict as itself. Positions in
    errors count from ``start``.

    In bulk, by C code over all rows at once. First :func:`_plain`, which walks every
    row's tree a level at a time and answers whether all of it is certainly storable;
    it says so of nearly all metadata. Otherwise the rows are encoded in one call
    (which refuses NaN, infinity and what JSON cannot hold) and decoded back in one
    call (a non-string key comes back a string: the rows differ), and the texts are
    searched for what PostgreSQL refuses (a lone surrogate, an escaped NUL) and counted
    for brackets (more than :data:`MAX_DEPTH` levels need more). Only a row one of
    these flags gets the per-value check, :func:`_check_json`, which either names the
    problem or accepts the row (a tuple that came back a list, a backslash before
    ``u0000``); so exactly what that check refuses is refused.
    """
    if set(map(type, metadatas)) - {dict}:  # None, or a Mapping that is not a dict
        metadatas = [_as_dict(m, start + i) for i, m in enumerate(metadatas)]
    dicts: list[dict[str, Any]] = list(metadatas)
    if _plain(dicts):
        return dicts
    rows = _interleaved(dicts)
    whole, texts = _encoded(rows, len(dicts))
    if texts is None:  # the encoder refused a row, or a row holds a NUL
        texts = [_encode_one(d, start + i) for i, d in enumerate(dicts)]
        whole = "[" + _SEPARATOR_TEXT.join(texts) + "]"
    suspects: set[int] = set()
    decoded = _decode(whole)
    if decoded != rows:  # a key that was not a string, or a tuple
        suspects.update(
            i for i, same in enumerate(map(operator.eq, decoded[::2], dicts)) if not same
        )
    brackets = map(
        operator.add,
        map(str.count, texts, itertools.repeat("{")),
        map(str.count, texts, itertools.repeat("[")),
    )
    suspects.update(i for i, count in enumerate(brackets) if count > MAX_DEPTH)
    if "\\u0000" in whole:
        suspects.update(i for i, t in enumerate(texts) if "\\u0000" in t)
    if not whole.isascii() and not _utf8(whole):
        suspects.update(i for i, t in enumerate(texts) if not _utf8(t))
    for i in sorted(suspects):
        _check_json(dicts[i], f"metadatas[{start + i}]")
    return dicts


_chain = itertools.chain.from_iterable
#: the exact types a plain tree holds (a subclass takes the per-value check)
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), dict, list, tuple})
_is_dict = frozenset({dict}).__contains__
_is_list = frozenset({list, tuple}).__contains__
_is_str = frozenset({str}).__contains__
_is_float = frozenset({float}).__contains__


def _plain(dicts: list[dict[str, Any]]) -> bool:
    """Whether every row is certainly storable as JSONB, decided a level at a time.

    Each level is the keys and values of the dicts, and the items of the lists, one
    level deeper than the last; every step over it (types, keys, strings, floats) is
    a C iterator. True when every key is a ``str``, every value of an exact JSON type,
    every float finite, every string free of NUL and lone surrogates, and no value
    deeper than :data:`MAX_DEPTH`. False means only "look closer", not "refused".
    """
    strings: list[list[str]] = []
    containers: tuple[list[Any], list[Any]] = (dicts, [])
    for _ in range(MAX_DEPTH):
        level_dicts, level_lists = containers
        keys = list(_chain(level_dicts))
        if set(map(type, keys)) - {str}:
            return False
        strings.append(keys)
        items = list(_chain((_chain(map(dict.values, level_dicts)), _chain(level_lists))))
        types = list(map(type, items))
        kinds = set(types)
        if kinds - _PLAIN_TYPES:
            return False
        if str in kinds:
            strings.append(list(itertools.compress(items, map(_is_str, types))))
        if float in kinds:
            floats = itertools.compress(items, map(_is_float, types))
            if not all(map(math.isfinite, floats)):
                return False
        containers = (
            list(itertools.compress(items, map(_is_dict, types))) if dict in kinds else [],
            list(itertools.compress(items, map(_is_list, types))) if kinds & {list, tuple} else [],
        )
        if not containers[0] and not containers[1]:
            joined = "".join(_chain(strings))
            return "\x00" not in joined and (joined.isascii() or _utf8(joined))
    return False


def metadata_texts(metadatas: Sequence[dict[str, Any]]) -> list[str]:
    """The JSON texts of checked metadata (:func:`check_metadatas`), as
    :func:`json_dumps` writes them, encoded in one call."""
    if not metadatas:
        return []
    whole, texts = _encoded(_interleaved(metadatas), len(metadatas))
    if texts is None:
        return list(map(json_dumps, metadatas))
    if "e+" in whole or "e-" in whole:  # a float in exponent notation, maybe
        texts = list(map(_exponents, texts))
    return texts


def _interleaved(dicts: Sequence[dict[str, Any]]) -> list[Any]:
    """``[d0, SEP, d1, SEP, ..., dn]``: the rows and separators, one list to encode."""
    rows = list(itertools.chain.from_iterable(zip(dicts, itertools.repeat(_SEPARATOR))))
    rows.pop()
    return rows


def _encoded(rows: list[Any], count: int) -> tuple[str, list[str] | None]:
    """The JSON of :func:`_interleaved` rows and each row's text, or None for the texts
    when the encoder refuses a row or a row holds the separator (it holds a NUL)."""
    try:
        whole = _STRICT(rows)
    except (TypeError, ValueError, RecursionError):
        return "", None
    texts = whole[1:-1].split(_SEPARATOR_TEXT)
    return whole, texts if len(texts) == count else None


def _as_dict(metadata: Any, position: int) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(
            f"metadatas[{position}] must be a dict, got {type(metadata).__name__}"
        )
    return metadata if type(metadata) is dict else dict(metadata)


def _encode_one(metadata: dict[str, Any], position: int) -> str:
    """One dict's JSON text; a dict the encoder refuses gets the per-value check."""
    try:
        return _STRICT(metadata)
    except (TypeError, ValueError, RecursionError) as exc:
        _check_json(metadata, f"metadatas[{position}]")
        raise InvalidInputError(  # a value of a type the check takes but JSON does not
            f"metadatas[{position}] holds a value JSON cannot encode ({exc}); use str, "
            "int, float, bool, None, list or dict"
        ) from exc


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _exponents(text: str) -> str:
    # float repr always signs its exponent (1e+16, 1e-05): most JSON has neither
    if "e+" in text or "e-" in text:
        return _EXPONENT.sub(_positional, text)
    return text


#: the most rows a call may ask for (k, fetch_k, a get's limit): far beyond any
#: collection, well inside what PostgreSQL's LIMIT and its products with overfetch hold
MAX_ROWS = 2**31 - 1


def check_int(value: object, name: str, low: int = 0, high: int = MAX_ROWS) -> int:
    """``value`` if it is an int (not a bool) from ``low`` to ``high``, else raise
    ``InvalidInputError``; every integer argument is checked by this."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInputError(
            f"{name} must be an integer from {low:,} to {high:,}, got {value!r}"
        )
    return value


#: the longest id or collection name, in UTF-8 bytes: each is a key of a btree index
#: (the primary key, the collection's unique name), whose entries PostgreSQL limits to
#: about 2,700 bytes (a third of a page)
MAX_KEY_BYTES = 2000


def check_key(value: str, where: str) -> None:
    """Raise ``InvalidInputError`` for an id or collection name the index cannot hold
    (the string itself must already be one PostgreSQL can store)."""
    if len(value) * 4 > MAX_KEY_BYTES and len(value.encode()) > MAX_KEY_BYTES:
        raise InvalidInputError(
            f"{where} is {len(value.encode()):,} bytes long; ids and collection names may "
            f"be at most {MAX_KEY_BYTES:,} bytes (UTF-8), the size a btree index entry can "
            "hold: use a shorter key (a hash of the long one, say) and keep the long one "
            "in the metadata"
        )


def check_query(query: object) -> str:
    """A text query: a string PostgreSQL can hold, or ``InvalidInputError``."""
    if not isinstance(query, str):
        raise InvalidInputError(
            f"the query must be a string, got {type(query).__name__}; to search with a "
            "vector, call the *_by_vector method"
        )
    check_string(query, "the query")
    return query


#: a tsvector holds at most this many bytes of distinct lexemes (PostgreSQL's MAXSTRPOS)
TSVECTOR_BYTES = (1 << 20) - 1
_WORDS = re.compile(r"\w+(?:-\w+)*")


def check_full_text(texts: Sequence[str]) -> None:
    """Raise ``InvalidInputError`` for a text whose full-text index would not fit in a
    tsvector: its distinct words (hyphenated ones count whole and in parts, as the
    parser makes them) add up to more than 1 MB. Texts under a quarter of that in
    characters cannot, and are not looked at."""
    for position, value in enumerate(texts):
        if len(value) * 4 <= TSVECTOR_BYTES:
            continue
        words = set(_WORDS.findall(value.lower()))
        words |= {part for word in words if "-" in word for part in word.split("-")}
        size = sum(len(word.encode()) for word in words if len(word) < 2048)
        if size > TSVECTOR_BYTES:
            raise InvalidInputError(
                f"texts[{position}] has about {size:,} bytes of distinct words, and a "
                f"full-text index (tsvector) holds at most {TSVECTOR_BYTES:,}: split it "
                "into smaller documents (a text splitter), or make the store without "
                "full_text"
            )


def lookup_ids(ids: Sequence[str]) -> list[str]:
    """Ids to get or delete: strings PostgreSQL can hold."""
    if isinstance(ids, str):
        raise InvalidInputError(f"ids must be a list of strings, not the string {ids!r}")
    result = list(ids)
    for position, value in enumerate(result):
        if not isinstance(value, str):
            raise InvalidInputError(f"ids[{position}] is a {type(value).__name__}, not a string")
        check_string(value, f"ids[{position}]")
        check_key(value, f"ids[{position}]")
    return result


def check_ids(ids: Sequence[str | None] | None, count: int) -> list[str]:
    """Ids as strings: generated (UUID4) where missing, unique within the call."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(count)]
    ids = list(ids)
    if len(ids) != count:
        raise InvalidInputError(f"got {count} texts but {len(ids)} ids; pass one id per text")
    result: list[str] = []
    seen: set[str] = set()
    for position, value in enumerate(ids):
        if value is None:
            value = str(uuid.uuid4())
        elif not isinstance(value, str):
            raise InvalidInputError(
                f"ids[{position}] is a {type(value).__name__}; ids must be strings "
                f"(pass str({brief(value)}))"
            )
        else:
            check_string(value, f"ids[{position}]")
            check_key(value, f"ids[{position}]")
        if value in seen:
            raise InvalidInputError(
                f"the id {brief(value)} appears more than once in this call (again at "
                f"ids[{position}]); ids must be unique within one call"
            )
        seen.add(value)
        result.append(value)
    return result


def prepare(
    texts: Iterable[str],
    vectors: Any,
    metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ids: Sequence[str | None] | None = None,
    *,
    dimension: int | None = None,
) -> Batch:
    """Validate one call's rows; raise ``InvalidInputError`` on the first problem.

    The batch holds the caller's metadata dicts themselves (never written to): checked
    :data:`CHECK_ROWS` at a time, so the check's own allocations stay bounded.

    Args:
        texts: The documents' contents.
        vectors: One embedding per text.
        metadatas: One dict (or None) per text, or None for all empty.
        ids: One id (or None to generate) per text, or None to generate all.
        dimension: The table's dimension when known.
    """
    text_list = list(texts)
    for position, value in enumerate(text_list):
        if not isinstance(value, str):
            raise InvalidInputError(
                f"texts[{position}] is a {type(value).__name__}; texts must be strings"
            )
        check_string(value, f"texts[{position}]")
    count = len(text_list)
    matrix = as_matrix(vectors, rows=count)
    if dimension is not None and count and matrix.shape[1] != dimension:
        raise DimensionMismatchError(
            f"the embeddings have {matrix.shape[1]} dimensions but the table stores "
            f"{dimension}; use the model the table was built with or another embedding_table"
        )
    if metadatas is None:
        metadata_list: list[dict[str, Any]] = [{} for _ in range(count)]
    else:
        metadatas = list(metadatas)
        if len(metadatas) != count:
            raise InvalidInputError(
                f"got {count} texts but {len(metadatas)} metadatas; pass one per text"
            )
        metadata_list = []
        for first in range(0, count, CHECK_ROWS):
            metadata_list += check_metadatas(metadatas[first : first + CHECK_ROWS], first)
    return Batch(check_ids(ids, count), text_list, metadata_list, matrix)
