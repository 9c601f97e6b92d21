"""The record manager's table and statements: pure builders and checks, no I/O.

One table (``pgvec_record`` by default, in the store's schema) holds the records of
every namespace, keyed by ``(namespace, key)``. ``group_id`` is the source a record
came from; ``updated_at`` is the server's clock when the record was last updated, in
seconds since the epoch. It is stored as the double precision number the server
computed, and times are compared as such, so a record updated at the instant
``get_time()`` returned is exactly that instant, never a rounding apart.

Two indexes serve the listings of LangChain's indexing API: ``(namespace,
updated_at)`` a full cleanup's, ``(namespace, group_id, updated_at)`` an incremental
one's.

Every function that takes user input checks it first and raises
``InvalidInputError`` (or ``SchemaError`` for names) before a statement exists.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    Delete,
    Index,
    Insert,
    MetaData,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    delete,
    extract,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, insert
from sqlalchemy.sql import ColumnElement

from ._errors import InvalidInputError, SchemaError
from ._schema import TableSpec, fit_name
from ._validate import MAX_KEY_BYTES, brief, check_int, check_string

#: the record table's name unless the record manager is given another
DEFAULT_RECORD_TABLE = "pgvec_record"
#: the longest namespace, in UTF-8 bytes: with a key (or a group id) of at most
#: MAX_KEY_BYTES it must fit one btree index entry (about 2,700 bytes)
MAX_NAMESPACE_BYTES = 500
_MAX_TABLE_NAME = 48  # as the store's tables: room for the index names' suffixes


def _check_text(value: object, where: str, most: int) -> str:
    """``value`` if it is a string PostgreSQL can store in at most ``most`` bytes."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{where} must be a string, got {type(value).__name__}")
    check_string(value, where)
    if len(value) * 4 > most and len(value.encode()) > most:
        raise InvalidInputError(
            f"{where} is {len(value.encode()):,} bytes long, and may be at most {most:,} "
            "bytes (UTF-8), what a btree index entry holds with the rest of its key: use "
            "a shorter one (a hash of the long one, say)"
        )
    return value


def check_namespace(namespace: object) -> str:
    """The record manager's namespace, checked.

    Args:
        namespace: What the record manager was given.

    Returns:
        The namespace.

    Raises:
        InvalidInputError: It is not a non-empty string PostgreSQL can store, of at
            most :data:`MAX_NAMESPACE_BYTES` bytes.
    """
    if isinstance(namespace, str) and not namespace:
        raise InvalidInputError("namespace must be a non-empty string")
    return _check_text(namespace, "namespace", MAX_NAMESPACE_BYTES)


def check_table_name(name: object, spec: TableSpec) -> str:
    """The record table's name, checked against the store's tables.

    Args:
        name: The name given.
        spec: The store's tables (the record table lives in their schema).

    Returns:
        The name.

    Raises:
        SchemaError: It is not a non-empty string of at most 48 bytes PostgreSQL can
            store, or is the name of one of the store's own tables.
    """
    if isinstance(name, str):
        check_string(name, "table", SchemaError)
    if not isinstance(name, str) or not name or len(name.encode()) > _MAX_TABLE_NAME:
        raise SchemaError(
            f"table must be a non-empty string of at most {_MAX_TABLE_NAME} bytes, "
            f"got {brief(name)}"
        )
    if name in (spec.collection_table, spec.embedding_table):
        raise SchemaError(
            f"the record table cannot be the store's table {name!r}: give the record "
            f"manager another table name (the default is {DEFAULT_RECORD_TABLE!r})"
        )
    return name


def check_keys(keys: object, where: str = "keys") -> list[str]:
    """Record keys (or group ids to list), checked.

    Args:
        keys: A sequence of strings (not one string).
        where: Its name, for messages.

    Returns:
        The keys, as a list.

    Raises:
        InvalidInputError: ``keys`` is a string or not a sequence, or holds a value that
            is not a string PostgreSQL can store in at most 2,000 bytes.
    """
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
        raise InvalidInputError(
            f"{where} must be a list of strings, got {type(keys).__name__} {brief(keys)}"
        )
    return [_check_text(key, f"{where}[{i}]", MAX_KEY_BYTES) for i, key in enumerate(keys)]


def check_group_ids(group_ids: object, count: int) -> list[str | None]:
    """The group ids of an update: one string or None per key (None: all None).

    Args:
        group_ids: What ``update`` was given.
        count: How many keys it was given.

    Returns:
        One group id (or None) per key.

    Raises:
        InvalidInputError: Not a sequence of one string (or None) per key, or a group
            id PostgreSQL cannot store in at most 2,000 bytes.
    """
    if group_ids is None:
        return [None] * count
    if isinstance(group_ids, (str, bytes)) or not isinstance(group_ids, Sequence):
        raise InvalidInputError(
            f"group_ids must be a list of strings (or None), got {type(group_ids).__name__}"
        )
    if len(group_ids) != count:
        raise InvalidInputError(
            f"got {count} keys but {len(group_ids)} group_ids; pass one group id per key"
        )
    return [
        None if group is None else _check_text(group, f"group_ids[{i}]", MAX_KEY_BYTES)
        for i, group in enumerate(group_ids)
    ]


def check_time(value: object, name: str) -> float | None:
    """A time argument (seconds since the epoch, as ``get_time()`` returns), or None.

    Args:
        value: The argument.
        name: Its name, for messages.

    Returns:
        The time as a float, or None.

    Raises:
        InvalidInputError: Neither None nor a finite number.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(
            f"{name} must be a time in seconds since the epoch (a finite number, as "
            f"get_time() returns) or None, got {brief(value)}"
        )
    return float(value)


@functools.lru_cache(maxsize=64)
def record_table(schema: str | None, name: str) -> Table:
    """The record table ``name`` in ``schema`` (None: the search path's first).

    Args:
        schema: The store's schema.
        name: The table's name (checked by :func:`check_table_name`).

    Returns:
        The table, with its primary key and its two indexes; the same object for the
        same arguments.
    """
    return Table(
        name,
        MetaData(schema=schema),
        Column("namespace", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("group_id", Text),
        Column("updated_at", DOUBLE_PRECISION, nullable=False),
        Index(fit_name(f"{name}_updated_at"), "namespace", "updated_at"),
        Index(fit_name(f"{name}_group_id"), "namespace", "group_id", "updated_at"),
    )


def qualified(table: Table) -> str:
    """``schema.table`` (or the table alone), for messages."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def clock() -> ColumnElement[float]:
    """The server's clock now, in seconds since the epoch (``clock_timestamp()``).

    The clock, not the transaction's start (``now()``): a record manager used inside
    one long transaction tells the time as one used outside it does.
    """
    return cast(extract("epoch", func.clock_timestamp()), DOUBLE_PRECISION)


def server_time() -> Select[Any]:
    """``SELECT`` the server's clock (:func:`clock`)."""
    return select(clock())


def create_lock(table: Table) -> Select[Any]:
    """A transaction's advisory lock on the table's name.

    Concurrent first calls of ``create_schema`` then create the table once.
    """
    return select(func.pg_advisory_xact_lock(func.hashtext(literal(qualified(table)))))


def _texts(name: str, values: Sequence[str | None]) -> Any:
    return bindparam(name, list(values), type_=ARRAY(Text))


def update(
    table: Table,
    namespace: str,
    keys: object,
    group_ids: object = None,
    time_at_least: object = None,
) -> Insert | None:
    """The upsert of records, each stamped with the server's clock; None for no keys.

    One statement: the keys and group ids travel as two arrays; the clock is read
    once for all of them. With ``time_at_least``, no row is written when the clock
    reads earlier (the statement's row count is then 0, which the caller reports). A
    key given twice is written once, with its last group id. Rows go in key order
    (code points), so that concurrent updates of overlapping keys lock them in one
    order and wait for each other rather than deadlock.

    Args:
        table: The record table.
        namespace: The record manager's namespace.
        keys: The keys (checked here).
        group_ids: One group id (or None) per key, or None (checked here).
        time_at_least: None, or the earliest time the server's clock may read.

    Returns:
        The statement (its row count kept), or None when there are no keys.

    Raises:
        InvalidInputError: Keys, group ids or the time that cannot be used.
    """
    checked = check_keys(keys)
    groups = check_group_ids(group_ids, len(checked))
    at_least = check_time(time_at_least, "time_at_least")
    if not checked:
        return None
    latest = dict(zip(checked, groups, strict=True))
    ordered = sorted(latest)
    given = (
        func.unnest(_texts("keys", ordered), _texts("group_ids", [latest[k] for k in ordered]))
        .table_valued(column("key", Text), column("group_id", Text))
        .render_derived(name="given")
    )
    now = select(clock().label("updated_at")).subquery("now")
    rows = select(
        literal(namespace, Text), given.c.key, given.c.group_id, now.c.updated_at
    ).select_from(given.join(now, true()))
    if at_least is not None:
        rows = rows.where(now.c.updated_at >= literal(at_least, DOUBLE_PRECISION))
    statement = insert(table).from_select(["namespace", "key", "group_id", "updated_at"], rows)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.namespace, table.c.key],
        set_={"group_id": statement.excluded.group_id, "updated_at": statement.excluded.updated_at},
    )
    return statement.execution_options(preserve_rowcount=True)


def existing(table: Table, namespace: str, keys: Sequence[str]) -> Select[Any]:
    """The keys of the namespace among ``keys`` (checked by :func:`check_keys`)."""
    c = table.c
    return select(c.key).where(c.namespace == namespace, c.key == any_(_texts("keys", keys)))


def flags(keys: Sequence[str], found: set[str]) -> list[bool]:
    """For each of ``keys``, in order, whether it was ``found``."""
    return [key in found for key in keys]


def listing(
    table: Table,
    namespace: str,
    *,
    before: object = None,
    after: object = None,
    group_ids: object = None,
    limit: object = None,
) -> Select[Any]:
    """The keys of the namespace's records updated before and after the times given.

    As LangChain's own record managers take them: ``before`` and ``after`` are strict
    bounds; ``group_ids`` None or empty lists every group; ``limit`` None or 0 lists
    every key. The keys come in no particular order.

    Args:
        table: The record table.
        namespace: The record manager's namespace.
        before: List records updated before this time (None: no bound).
        after: List records updated after this time (None: no bound).
        group_ids: List records of these groups only.
        limit: The most keys to list.

    Returns:
        The ``SELECT`` of the keys.

    Raises:
        InvalidInputError: A time that is not a finite number, group ids that are not
            a list of strings, or a limit that is not an integer from 0 to
            2,147,483,647.
    """
    low, high = check_time(after, "after"), check_time(before, "before")
    groups = None if group_ids is None else check_keys(group_ids, "group_ids")
    most = None if limit is None else check_int(limit, "limit")
    c = table.c
    statement = select(c.key).where(c.namespace == namespace)
    if high is not None:
        statement = statement.where(c.updated_at < literal(high, DOUBLE_PRECISION))
    if low is not None:
        statement = statement.where(c.updated_at > literal(low, DOUBLE_PRECISION))
    if groups:
        statement = statement.where(c.group_id == any_(_texts("group_ids", groups)))
    return statement.limit(most) if most else statement


def deletion(table: Table, namespace: str, keys: Sequence[str]) -> Delete:
    """Delete the namespace's records of ``keys`` (checked by :func:`check_keys`)."""
    c = table.c
    return delete(table).where(c.namespace == namespace, c.key == any_(_texts("keys", keys)))
