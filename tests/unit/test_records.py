"""The record manager's pure builders (``_records``) without a database: the table, the
SQL text of each statement, what is bound, and every input check."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql import ClauseElement

from langchain_pgvec import InvalidInputError, SchemaError, _records
from langchain_pgvec._schema import TableSpec

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
TABLE = _records.record_table(None, "rec")
NS = "pgvec/docs"


def compiled(statement: ClauseElement) -> tuple[str, dict[str, Any]]:
    result = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return " ".join(result.string.split()), dict(result.params)


# ---------------------------------------------------------------------- the table


def test_the_table_is_keyed_by_namespace_and_key_with_the_cleanup_indexes() -> None:
    assert [c.name for c in TABLE.primary_key.columns] == ["namespace", "key"]
    assert str(TABLE.c.updated_at.type) == "DOUBLE PRECISION"
    assert not TABLE.c.updated_at.nullable and TABLE.c.group_id.nullable
    indexes = {index.name: [c.name for c in index.columns] for index in TABLE.indexes}
    assert indexes == {
        "rec_updated_at": ["namespace", "updated_at"],
        "rec_group_id": ["namespace", "group_id", "updated_at"],
    }


def test_the_table_lives_in_the_schema_asked_and_is_made_once_per_name() -> None:
    table = _records.record_table("My Schema", "rec")
    assert table.schema == "My Schema" and _records.qualified(table) == "My Schema.rec"
    assert _records.record_table("My Schema", "rec") is table
    assert _records.qualified(TABLE) == "rec"
    text, _ = compiled(_records.existing(table, NS, ["a"]))
    assert 'FROM "My Schema".rec' in text


def test_long_table_names_get_index_names_that_fit() -> None:
    name = "r" * 48
    names = [index.name for index in _records.record_table(None, name).indexes]
    assert all(len(str(n).encode()) <= 63 for n in names) and len(set(names)) == 2


@pytest.mark.parametrize(
    "name", ["", "x" * 49, "nul\x00", 7, None, "pgvec_embedding", "pgvec_collection"]
)
def test_table_names_that_cannot_be_used_are_schema_errors(name: Any) -> None:
    with pytest.raises(SchemaError):
        _records.check_table_name(name, TableSpec())


def test_a_table_name_beside_the_stores_is_fine() -> None:
    spec = TableSpec(embedding_table="emb", collection_table="col")
    assert _records.check_table_name("pgvec_embedding", spec) == "pgvec_embedding"


# ---------------------------------------------------------------------- checks


@pytest.mark.parametrize("namespace", ["", None, 3, "a\x00b", "é" * 251])
def test_namespaces_that_cannot_be_stored_are_refused(namespace: Any) -> None:
    with pytest.raises(InvalidInputError, match="namespace"):
        _records.check_namespace(namespace)


def test_a_namespace_of_500_bytes_is_fine() -> None:
    assert _records.check_namespace("n" * 500) == "n" * 500


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ("abc", "list of strings"),
        ({"a"}, "list of strings"),
        (None, "list of strings"),
        (["a", 1], r"keys\[1\] must be a string"),
        (["a\x00"], "NUL"),
        (["k" * 2001], "2,001 bytes"),
    ],
)
def test_keys_are_checked(keys: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        _records.check_keys(keys)


def test_keys_may_be_any_sequence_of_strings() -> None:
    assert _records.check_keys(("a", "b")) == ["a", "b"]
    assert _records.check_keys([]) == []


def test_group_ids_are_one_per_key_and_may_be_none() -> None:
    assert _records.check_group_ids(None, 2) == [None, None]
    assert _records.check_group_ids(["s", None], 2) == ["s", None]
    with pytest.raises(InvalidInputError, match="2 keys but 1 group_ids"):
        _records.check_group_ids(["s"], 2)
    with pytest.raises(InvalidInputError, match="list of strings"):
        _records.check_group_ids("s", 1)
    with pytest.raises(InvalidInputError, match=r"group_ids\[0\]"):
        _records.check_group_ids([3], 1)


@pytest.mark.parametrize("value", [True, "1", math.nan, math.inf, [1.0]])
def test_times_are_finite_numbers(value: Any) -> None:
    with pytest.raises(InvalidInputError, match="time_at_least"):
        _records.check_time(value, "time_at_least")


def test_a_time_is_a_float() -> None:
    assert _records.check_time(1_700_000_000, "before") == 1.7e9
    assert _records.check_time(None, "before") is None


# ---------------------------------------------------------------------- statements


def test_the_clock_is_the_servers_clock_as_double_precision() -> None:
    text, _ = compiled(_records.server_time())
    assert (
        text == "SELECT CAST(EXTRACT(epoch FROM clock_timestamp()) AS DOUBLE PRECISION) AS anon_1"
    )


def test_an_update_stamps_every_key_with_one_reading_of_the_clock() -> None:
    statement = _records.update(TABLE, NS, ["b", "a", "b"], ["s1", None, "s2"])
    assert statement is not None
    text, params = compiled(statement)
    assert text == (
        "INSERT INTO rec (namespace, key, group_id, updated_at) "
        "SELECT %(param_1)s::VARCHAR AS anon_1, given.key, given.group_id, now.updated_at "
        "FROM unnest(%(keys)s::TEXT[], %(group_ids)s::TEXT[]) AS given(key, group_id) "
        "JOIN (SELECT CAST(EXTRACT(epoch FROM clock_timestamp()) AS DOUBLE PRECISION) "
        "AS updated_at) AS now ON true "
        "ON CONFLICT (namespace, key) DO UPDATE SET group_id = excluded.group_id, "
        "updated_at = excluded.updated_at"
    )
    # a key given twice is written once, with its last group id; rows in key order
    assert params == {"param_1": NS, "keys": ["a", "b"], "group_ids": [None, "s2"]}
    assert statement.get_execution_options()["preserve_rowcount"] is True


def test_an_update_with_time_at_least_writes_nothing_when_the_clock_is_behind() -> None:
    statement = _records.update(TABLE, NS, ["a"], time_at_least=12.5)
    assert statement is not None
    text, params = compiled(statement)
    assert "ON true WHERE now.updated_at >= %(param_2)s ON CONFLICT" in text
    assert params["param_2"] == 12.5


def test_an_update_checks_everything_before_it_is_built() -> None:
    assert _records.update(TABLE, NS, []) is None
    with pytest.raises(InvalidInputError):
        _records.update(TABLE, NS, [], time_at_least=math.nan)
    with pytest.raises(InvalidInputError):
        _records.update(TABLE, NS, ["a"], ["g", "h"])
    with pytest.raises(InvalidInputError):
        _records.update(TABLE, NS, "a")


def test_exists_and_delete_match_the_namespace_and_the_keys() -> None:
    text, params = compiled(_records.existing(TABLE, NS, ["a", "b"]))
    assert text == (
        "SELECT rec.key FROM rec WHERE rec.namespace = %(namespace_1)s::VARCHAR "
        "AND rec.key = ANY (%(keys)s::TEXT[])"
    )
    assert params == {"namespace_1": NS, "keys": ["a", "b"]}
    text, params = compiled(_records.deletion(TABLE, NS, ["a"]))
    assert text == (
        "DELETE FROM rec WHERE rec.namespace = %(namespace_1)s::VARCHAR "
        "AND rec.key = ANY (%(keys)s::TEXT[])"
    )
    assert params == {"namespace_1": NS, "keys": ["a"]}


def test_flags_follow_the_keys_order() -> None:
    assert _records.flags(["a", "b", "a"], {"a"}) == [True, False, True]


def test_a_listing_applies_each_filter_given() -> None:
    text, params = compiled(
        _records.listing(TABLE, NS, before=2.0, after=1.0, group_ids=["s"], limit=10)
    )
    assert text == (
        "SELECT rec.key FROM rec WHERE rec.namespace = %(namespace_1)s::VARCHAR "
        "AND rec.updated_at < %(param_1)s AND rec.updated_at > %(param_2)s "
        "AND rec.group_id = ANY (%(group_ids)s::TEXT[]) LIMIT %(param_3)s::INTEGER"
    )
    assert params == {
        "namespace_1": NS,
        "param_1": 2.0,
        "param_2": 1.0,
        "group_ids": ["s"],
        "param_3": 10,
    }


def test_a_listing_reads_empty_group_ids_and_limit_zero_as_langchain_does() -> None:
    text, _ = compiled(_records.listing(TABLE, NS, group_ids=[], limit=0))
    assert text == "SELECT rec.key FROM rec WHERE rec.namespace = %(namespace_1)s::VARCHAR"


@pytest.mark.parametrize(
    "kwargs",
    [{"before": "now"}, {"after": math.inf}, {"group_ids": "s"}, {"limit": -1}, {"limit": 1.5}],
)
def test_a_listing_checks_its_filters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        _records.listing(TABLE, NS, **kwargs)


def test_creating_the_table_takes_an_advisory_lock_on_its_name() -> None:
    text, params = compiled(_records.create_lock(_records.record_table("s", "rec")))
    assert (
        text
        == "SELECT pg_advisory_xact_lock(hashtext(%(param_1)s::VARCHAR)) AS pg_advisory_xact_lock_1"
    )
    assert params == {"param_1": "s.rec"}
