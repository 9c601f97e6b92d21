"""The input checks of ``_validate``: what is accepted, what is refused, and what the
messages say."""

from __future__ import annotations

import json
import re
import types
import uuid
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_pgvec import _validate
from langchain_pgvec._errors import DimensionMismatchError, InvalidInputError, SchemaError
from langchain_pgvec._validate import (
    MAX_KEY_BYTES,
    MAX_ROWS,
    TSVECTOR_BYTES,
    Batch,
    _check_json,
    as_matrix,
    as_vector,
    check_full_text,
    check_ids,
    check_int,
    check_key,
    check_metadata,
    check_metadatas,
    check_query,
    check_string,
    json_dumps,
    lookup_ids,
    metadata_texts,
    plain,
    prepare,
    unstorable,
)


def nested_lists(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# ---------------------------------------------------------------------- check_int


def test_check_int_returns_the_value_within_bounds() -> None:
    assert check_int(0, "k") == 0
    assert check_int(MAX_ROWS, "k") == MAX_ROWS
    assert check_int(5, "k", 5, 5) == 5
    assert MAX_ROWS == 2**31 - 1


@pytest.mark.parametrize("value", [-1, MAX_ROWS + 1, True, False, 1.0, "1", None, [1]])
def test_check_int_rejects_what_is_not_an_int_in_range(value: object) -> None:
    with pytest.raises(InvalidInputError) as error:
        check_int(value, "k")
    assert str(error.value) == f"k must be an integer from 0 to 2,147,483,647, got {value!r}"


def test_check_int_names_its_bounds() -> None:
    with pytest.raises(
        InvalidInputError, match=r"^fetch_k must be an integer from 1 to 10, got 11$"
    ):
        check_int(11, "fetch_k", 1, 10)


# ---------------------------------------------------------------------- check_key


def test_check_key_allows_2000_bytes() -> None:
    assert MAX_KEY_BYTES == 2000
    check_key("a" * 2000, "ids[0]")
    check_key("é" * 1000, "ids[0]")  # 2 bytes each
    check_key("😀" * 500, "ids[0]")  # 4 bytes each


@pytest.mark.parametrize(
    ("value", "size"), [("a" * 2001, 2001), ("é" * 1001, 2002), ("😀" * 501, 2004)]
)
def test_check_key_counts_utf8_bytes(value: str, size: int) -> None:
    with pytest.raises(InvalidInputError) as error:
        check_key(value, "ids[3]")
    message = str(error.value)
    assert message.startswith(f"ids[3] is {size:,} bytes long;")
    assert "at most 2,000 bytes" in message and "a hash of the long one" in message


# ---------------------------------------------------------------------- strings


def test_plain_is_ascii_without_nul() -> None:
    assert plain("") and plain("hello, world ~!")
    assert not plain("héllo")
    assert not plain("a\x00b")
    assert not plain("\udc80")


@pytest.mark.parametrize("value", ["", "plain", "héllo wörld", "日本語", "😀", "\u200b", "\uffff"])
def test_storable_strings(value: str) -> None:
    assert unstorable(value) is None
    check_string(value, "texts[0]")


def test_unstorable_names_a_nul() -> None:
    assert unstorable("a\x00") == "a NUL character (\\x00), which PostgreSQL cannot store"
    assert unstorable("é\x00") == "a NUL character (\\x00), which PostgreSQL cannot store"


def test_unstorable_names_a_lone_surrogate_and_its_position() -> None:
    problem = unstorable("ab\ud800c")
    assert problem is not None
    assert problem.startswith("the lone surrogate '\\ud800' at position 2,")
    assert "errors='replace'" in problem
    assert unstorable("\udfff") is not None
    assert unstorable("😀\udc00") is not None


def test_check_string_raises_the_error_asked_for() -> None:
    with pytest.raises(InvalidInputError) as error:
        check_string("x\x00", "texts[4]")
    assert str(error.value) == (
        "texts[4] contains a NUL character (\\x00), which PostgreSQL cannot store; "
        "remove or replace it"
    )
    with pytest.raises(SchemaError, match=r"^schema contains the lone surrogate"):
        check_string("\ud800", "schema", SchemaError)


def test_check_query() -> None:
    assert check_query("what is up?") == "what is up?"
    assert check_query("") == ""
    with pytest.raises(InvalidInputError) as error:
        check_query(["a"])
    assert "the query must be a string, got list" in str(error.value)
    assert "*_by_vector" in str(error.value)
    with pytest.raises(InvalidInputError, match="the query contains a NUL"):
        check_query("a\x00")
    with pytest.raises(InvalidInputError, match="the query contains the lone surrogate"):
        check_query("\udc80")


# ---------------------------------------------------------------------- check_full_text


def test_check_full_text_allows_long_texts_of_few_words() -> None:
    check_full_text(["word " * 300_000, "", "short"])


def test_check_full_text_refuses_a_megabyte_of_distinct_words() -> None:
    words = [f"w{i:07d}" for i in range(140_000)]  # 8 bytes each: 1,120,000 bytes
    with pytest.raises(InvalidInputError) as error:
        check_full_text(["fine", " ".join(words)])
    message = str(error.value)
    assert message.startswith("texts[1] has about 1,120,000 bytes of distinct words")
    assert "at most 1,048,575" in message and "text splitter" in message
    assert TSVECTOR_BYTES == 1_048_575


def test_check_full_text_folds_case_and_counts_hyphenated_parts() -> None:
    # 40,000 distinct words of 15 bytes: 600,000 bytes whole, 1,160,000 with their parts
    hyphenated = " ".join(f"p{i:06d}-q{i:06d}" for i in range(40_000))
    with pytest.raises(InvalidInputError, match="about 1,160,000 bytes"):
        check_full_text([hyphenated])
    # the same words in both cases count once
    words = [f"w{i:07d}" for i in range(70_000)]  # 560,000 bytes
    check_full_text([" ".join(words) + " " + " ".join(words).upper()])


def test_check_full_text_ignores_words_too_long_to_index() -> None:
    check_full_text(["x" * (TSVECTOR_BYTES + 10)])  # one word, which PostgreSQL skips


def test_check_full_text_skips_short_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    class Untouchable:
        def findall(self, text: str) -> list[str]:
            raise AssertionError("a short text was parsed")

    monkeypatch.setattr(_validate, "_WORDS", Untouchable())
    check_full_text(["a b c " * 1000, "z" * (TSVECTOR_BYTES // 4)])
    with pytest.raises(AssertionError, match="was parsed"):
        check_full_text(["z" * (TSVECTOR_BYTES // 4 + 1)])


# ---------------------------------------------------------------------- check_metadata


def test_none_metadata_is_empty() -> None:
    assert check_metadata(None, 0) == {}


def test_flat_metadata_is_copied() -> None:
    metadata = {"a": 1, "b": "x", "c": 1.5, "d": True, "e": None, "f": "é"}
    checked = check_metadata(metadata, 0)
    assert checked == metadata and checked is not metadata
    proxy = types.MappingProxyType({"a": 1})
    assert check_metadata(proxy, 0) == {"a": 1} and type(check_metadata(proxy, 0)) is dict


def test_nested_metadata_is_accepted() -> None:
    metadata = {"a": {"b": [1, 2.5, None, True, "x", {"c": []}]}, "t": (1, 2), "u": {}}
    assert check_metadata(metadata, 0) == metadata


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([("a", 1)], "metadatas[2] must be a dict, got list"),
        ("a=1", "metadatas[2] must be a dict, got str"),
        ({"a": float("nan")}, "metadatas[2]['a'] is nan, which JSON cannot hold"),
        ({"a": float("-inf")}, "metadatas[2]['a'] is -inf, which JSON cannot hold"),
        ({"a": [1, {"b": float("inf")}]}, "metadatas[2]['a'][1]['b'] is inf"),
        ({1: "x"}, "metadatas[2] has the key 1 of type int; JSON keys must be strings"),
        ({"a": {(1, 2): 1}}, "metadatas[2]['a'] has the key (1, 2) of type tuple"),
        ({"k\x00": 1}, "metadatas[2] key 'k\\x00' contains a NUL character"),
        ({"k": "v\x00"}, "metadatas[2]['k'] contains a NUL character"),
        ({"k": ["ok", "\ud800"]}, "metadatas[2]['k'][1] contains the lone surrogate"),
        ({"\udc80": 1}, "metadatas[2] key '\\udc80' contains the lone surrogate"),
        ({"k": {1, 2}}, "metadatas[2]['k'] is a set, which is not JSON-serialisable"),
        ({"k": b"x"}, "metadatas[2]['k'] is a bytes, which is not JSON-serialisable"),
        ({"k": np.float32(1)}, "metadatas[2]['k'] is a float32, which is not JSON"),
    ],
)
def test_metadata_that_cannot_round_trip(metadata: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        check_metadata(metadata, 2)
    assert str(error.value).startswith(message), str(error.value)


def test_metadata_may_nest_100_levels() -> None:
    # the dict itself and 99 lists: 100 levels
    assert check_metadata({"a": nested_lists(99)}, 0) == {"a": nested_lists(99)}
    with pytest.raises(InvalidInputError, match=r"is nested more than 100 levels deep$"):
        check_metadata({"a": nested_lists(100)}, 0)


def test_very_deep_metadata_is_an_input_error() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(5_000):
        inner["k"] = {}
        inner = inner["k"]
    with pytest.raises(InvalidInputError, match="nested more than 100 levels"):
        check_metadata(deep, 0)


def test_a_nested_mapping_json_cannot_encode_is_refused_up_front() -> None:
    with pytest.raises(InvalidInputError, match=r"metadatas\[4\] holds a value JSON cannot"):
        check_metadatas([{"a": types.MappingProxyType({"b": 1})}], 4)


def test_metadata_texts_are_what_the_database_reads_back() -> None:
    rows = [None, {"x": 1e16, "s": "e+1"}, {"t": (1, 2), "n": {"é": [1e-5]}}]
    dicts = check_metadatas(rows)
    assert dicts == [{}, {"x": 1e16, "s": "e+1"}, {"t": (1, 2), "n": {"é": [1e-5]}}]
    assert dicts[1] is rows[1]  # checked, not copied
    texts = metadata_texts(dicts)
    assert texts == ["{}", '{"x":10000000000000000.0,"s":"e+1"}', '{"t":[1,2],"n":{"é":[0.00001]}}']
    assert texts == [json_dumps(d) for d in dicts]


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None), max_size=6)
    | st.sampled_from(["\x00", "a\\u0000", "\ud800", "\\", "1e+16"])
)
_KEYS = st.text(max_size=4) | st.sampled_from(["\x00", "\udc80"]) | st.integers() | st.booleans()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_KEYS, inner, max_size=4)
        | st.frozensets(st.integers(), max_size=2)
    ),
    max_leaves=12,
)


def _reference(metadata: dict[Any, Any]) -> str | None:
    """The per-value check alone: its error message, or None when it accepts."""
    try:
        _check_json(metadata, "metadatas[0]")
    except InvalidInputError as exc:
        return str(exc)
    return None


@settings(max_examples=400, deadline=None, database=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_the_bulk_check_refuses_exactly_what_the_per_value_check_does(
    metadata: dict[Any, Any],
) -> None:
    expected = _reference(metadata)
    try:
        dicts = check_metadatas([{"ok": 1}, metadata], start=-1)
    except InvalidInputError as exc:
        assert str(exc) == expected
        return
    assert expected is None
    assert dicts[1] is metadata
    assert metadata_texts(dicts) == ['{"ok":1}', json_dumps(metadata)]


class _Label(str):
    pass


def test_what_the_level_walk_declines_still_gets_the_per_value_check() -> None:
    # a str subclass, an empty list at depth 100 (nothing in it is deeper): storable
    deepest: Any = []
    for _ in range(99):
        deepest = [deepest]
    rows = [{"a": _Label("x")}, {"a": deepest}, {"a": nested_lists(99)}]
    assert check_metadatas(rows) == rows
    assert not _validate._plain(rows[:1]) and not _validate._plain(rows[1:2])
    assert _validate._plain(rows[2:])


def test_deep_nesting_far_beyond_the_limit_is_refused_in_bulk() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(5_000):
        inner["k"] = {}
        inner = inner["k"]
    with pytest.raises(InvalidInputError, match=r"^metadatas\[1\]\['k'\].*nested more than"):
        check_metadatas([{}, deep])


def test_finiteness_is_checked_a_block_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_validate, "FINITE_CHECK_BYTES", 64)  # 16 rows of 4 per block
    matrix = np.ones((100, 4), np.float32)
    assert as_matrix(matrix) is matrix
    matrix[57, 3] = np.inf
    with pytest.raises(InvalidInputError, match=r"^embeddings\[57\] holds NaN or infinity"):
        as_matrix(matrix)


# ---------------------------------------------------------------------- ids


def test_check_ids_generates_them_all() -> None:
    ids = check_ids(None, 3)
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert check_ids(None, 0) == []


def test_check_ids_generates_the_missing_ones() -> None:
    ids = check_ids(["a", None, "b", None], 4)
    assert ids[0] == "a" and ids[2] == "b"
    assert uuid.UUID(ids[1]).version == 4 and uuid.UUID(ids[3]).version == 4
    assert ids[1] != ids[3]


def test_check_ids_keeps_given_ids() -> None:
    given = ("x", "é", "😀", "")
    assert check_ids(given, 4) == list(given)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["a"], "got 2 texts but 1 ids; pass one id per text"),
        (["a", "b", "c"], "got 2 texts but 3 ids"),
        (["a", "a"], "the id 'a' appears more than once in this call (again at ids[1])"),
        (["a", 5], "ids[1] is a int; ids must be strings (pass str(5))"),
        ([b"a", "b"], "ids[0] is a bytes; ids must be strings"),
        ([uuid.UUID(int=1), "b"], "ids[0] is a UUID; ids must be strings"),
        (["a\x00", "b"], "ids[0] contains a NUL character"),
        (["a", "\ud800"], "ids[1] contains the lone surrogate"),
        (["a", "x" * 2001], "ids[1] is 2,001 bytes long"),
    ],
)
def test_check_ids_refuses(ids: list[Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        check_ids(ids, 2)
    assert str(error.value).startswith(message), str(error.value)


def test_lookup_ids() -> None:
    assert lookup_ids(["a", "é"]) == ["a", "é"]
    assert lookup_ids(("a",)) == ["a"]
    assert lookup_ids([]) == []
    with pytest.raises(
        InvalidInputError, match=r"^ids must be a list of strings, not the string 'ab'"
    ):
        lookup_ids("ab")
    with pytest.raises(InvalidInputError, match=r"^ids\[1\] is a int, not a string$"):
        lookup_ids(["a", 1])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match=r"^ids\[0\] contains a NUL"):
        lookup_ids(["\x00"])
    with pytest.raises(InvalidInputError, match=r"^ids\[0\] is 2,001 bytes long"):
        lookup_ids(["x" * 2001])


# ---------------------------------------------------------------------- vectors


def test_as_matrix_makes_contiguous_float32() -> None:
    matrix = as_matrix([[1, 2], [3, 4]])
    assert matrix.dtype == np.float32 and matrix.shape == (2, 2)
    assert matrix.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    fortran = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    converted = as_matrix(fortran, rows=2)
    assert converted.flags.c_contiguous and converted.dtype == np.float32
    assert converted.tolist() == fortran.tolist()
    ready = np.ones((3, 2), np.float32)
    assert np.shares_memory(as_matrix(ready), ready)  # nothing to convert: no copy


def test_as_matrix_of_no_rows() -> None:
    assert as_matrix([], rows=0).shape == (0, 0)
    assert as_matrix(np.zeros((0, 5), np.float32), rows=0).shape == (0, 0)


@pytest.mark.parametrize(
    ("vectors", "rows", "message"),
    [
        ([], None, "embeddings must be 2-D (one vector per text), got an array of shape (0,)"),
        (
            [1.0, 2.0],
            None,
            "embeddings must be 2-D (one vector per text), got an array of shape (2,)",
        ),
        (
            [[[1.0]]],
            None,
            "embeddings must be 2-D (one vector per text), got an array of shape (1, 1, 1)",
        ),
        ([[1.0, 2.0], [3.0]], None, "embeddings must be a sequence of equal-length lists"),
        ([["a"]], None, "embeddings must be a sequence of equal-length lists"),
        ([[1.0, 2.0]], 2, "got 2 texts but 1 embeddings; pass one per text"),
        ([[]], 1, "embeddings must have at least one dimension"),
        ([[1.0], [float("nan")]], None, "embeddings[1] holds NaN or infinity"),
        ([[1.0], [2.0], [float("-inf")]], 3, "embeddings[2] holds NaN or infinity"),
    ],
)
def test_as_matrix_refuses(vectors: Any, rows: int | None, message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        as_matrix(vectors, rows=rows)
    assert str(error.value).startswith(message), str(error.value)


def test_as_matrix_names_what_it_checks() -> None:
    with pytest.raises(InvalidInputError, match=r"^candidates\[0\] holds NaN"):
        as_matrix([[float("nan")]], what="candidates")


def test_a_value_beyond_float32_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"embeddings\[0\] holds NaN or infinity"):
        as_matrix([[1e39, 0.0]])
    with pytest.raises(InvalidInputError, match="holds NaN or infinity"):
        as_vector([1e39, 0.0], 2)


def test_a_value_beyond_float32_is_refused_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidInputError):
            as_matrix([[1e39, 0.0]])


def test_as_vector() -> None:
    vector = as_vector([1, 2, 3], 3)
    assert vector.dtype == np.float32 and vector.tolist() == [1.0, 2.0, 3.0]
    assert as_vector(np.arange(5, dtype=np.float64), None).shape == (5,)
    ready = np.ones(4, np.float32)
    assert as_vector(ready, 4) is ready
    assert as_vector(np.ones(8, np.float32)[::2], 4).flags.c_contiguous


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ([], "the query embedding must be one non-empty vector"),
        ([[1.0, 2.0]], "the query embedding must be one non-empty vector"),
        (1.0, "the query embedding must be one non-empty vector"),
        ({"a": 1}, "the query embedding must be a sequence of numbers or a 1-D numpy array"),
        (["x", "y"], "the query embedding must be a sequence of numbers"),
        ([1.0, float("nan")], "the query embedding holds NaN or infinity"),
        ([float("inf"), 1.0], "the query embedding holds NaN or infinity"),
    ],
)
def test_as_vector_refuses(vector: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        as_vector(vector, 2)
    assert str(error.value).startswith(message), str(error.value)


def test_as_vector_checks_the_dimension() -> None:
    with pytest.raises(DimensionMismatchError) as error:
        as_vector([1.0, 2.0], 3)
    assert str(error.value).startswith(
        "the query embedding has 2 dimensions but the table stores 3;"
    )
    assert isinstance(error.value, InvalidInputError)


# ---------------------------------------------------------------------- prepare


def test_prepare_makes_a_batch() -> None:
    texts = ["a", "b", "c"]
    metadatas: list[dict[str, Any] | None] = [{"x": 1}, None, {"y": [1]}]
    ids = ["i1", None, "i3"]
    batch = prepare(iter(texts), [[1, 2], [3, 4], [5, 6]], metadatas, ids, dimension=2)
    assert isinstance(batch, Batch) and len(batch) == 3
    assert batch.texts == texts
    assert batch.metadatas == [{"x": 1}, {}, {"y": [1]}]
    assert batch.ids[0] == "i1" and batch.ids[2] == "i3" and uuid.UUID(batch.ids[1])
    assert batch.vectors.dtype == np.float32 and batch.vectors.shape == (3, 2)
    # the arguments are left as they were
    assert metadatas == [{"x": 1}, None, {"y": [1]}] and ids == ["i1", None, "i3"]
    # the caller's dicts are checked, not copied (an O(rows) copy the batch never needs)
    assert batch.metadatas[0] is metadatas[0]


def test_prepare_of_nothing() -> None:
    batch = prepare([], [], dimension=3)
    assert len(batch) == 0 and batch.vectors.shape == (0, 0)


def test_batch_pick_and_slice() -> None:
    batch = prepare(["a", "b", "c"], [[1.0], [2.0], [3.0]], ids=["x", "y", "z"])
    picked = batch.pick([2, 0])
    assert picked.ids == ["z", "x"] and picked.texts == ["c", "a"]
    assert picked.vectors.tolist() == [[3.0], [1.0]]
    sliced = batch.slice(1, 3)
    assert sliced.ids == ["y", "z"] and np.shares_memory(sliced.vectors, batch.vectors)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"texts": ["a", 1]}, InvalidInputError, "texts[1] is a int; texts must be strings"),
        ({"texts": ["a", None]}, InvalidInputError, "texts[1] is a NoneType"),
        ({"texts": ["a\x00", "b"]}, InvalidInputError, "texts[0] contains a NUL character"),
        ({"vectors": [[1.0, 2.0]]}, InvalidInputError, "got 2 texts but 1 embeddings"),
        ({"metadatas": [{}]}, InvalidInputError, "got 2 texts but 1 metadatas; pass one per text"),
        ({"metadatas": [{}, {"a": float("nan")}]}, InvalidInputError, "metadatas[1]['a'] is nan"),
        ({"ids": ["x", "x"]}, InvalidInputError, "the id 'x' appears more than once"),
        (
            {"dimension": 3},
            DimensionMismatchError,
            "the embeddings have 2 dimensions but the table stores 3;",
        ),
    ],
)
def test_prepare_refuses(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    arguments: dict[str, Any] = {
        "texts": ["a", "b"],
        "vectors": [[1.0, 2.0], [3.0, 4.0]],
        "metadatas": None,
        "ids": None,
    }
    arguments.update(kwargs)
    texts, vectors = arguments.pop("texts"), arguments.pop("vectors")
    with pytest.raises(error) as raised:
        prepare(texts, vectors, **arguments)
    assert str(raised.value).startswith(message), str(raised.value)


def test_prepare_checks_texts_before_vectors() -> None:
    with pytest.raises(InvalidInputError, match=r"texts\[0\]"):
        prepare(["\x00"], [[float("nan")]])


# ---------------------------------------------------------------------- json_dumps


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e16, "10000000000000000.0"),
        (-1e16, "-10000000000000000.0"),
        (1.5e20, "150000000000000000000.0"),
        (1e-7, "0.0000001"),
        (-2.5e-5, "-0.000025"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e15, "1000000000000000.0"),  # repr is positional already
        (10**20, "100000000000000000000"),  # ints stay ints
        ("1e+16", '"1e+16"'),  # strings are not numbers
        ("é", '"é"'),  # not escaped
        ({"a": [1, 2.0, None, True]}, '{"a":[1,2.0,null,true]}'),
        ({'k"1e+16': 1e16}, '{"k\\"1e+16":10000000000000000.0}'),
        ({"1e-05": "x\\"}, '{"1e-05":"x\\\\"}'),
    ],
)
def test_json_dumps(value: Any, text: str) -> None:
    assert json_dumps(value) == text


def test_json_dumps_keeps_every_float() -> None:
    values = [1e16, 1.2345e-300, 5e-324, 1.7976931348623157e308, -9.87654321e22, 3e-5, 0.0]
    text = json_dumps(values)
    assert "e" not in text.lower()
    assert json.loads(text) == values
    assert all(re.fullmatch(r"-?\d+\.\d+", part) for part in text[1:-1].split(","))
