"""Partitioned collections: one partition of the embedding table per collection.

The table is ``PARTITION BY LIST (collection_id)``. A collection's partition is made
in the transaction that creates the collection: a table ``LIKE`` the embedding table
(its columns, defaults, generated column and storage), then ``ATTACH PARTITION``,
which takes only a ``SHARE UPDATE EXCLUSIVE`` lock on the embedding table, so
searches and writes of other collections go on while a first load into a new
collection runs (``CREATE TABLE ... PARTITION OF`` would lock them all out until it
commits). Attaching gives the partition every index of the embedding table: its
primary key and GIN indexes, and one graph of each vector index.

Collections of one partitioned table are created one at a time: a creator locks the
collection table (``SHARE ROW EXCLUSIVE``, which writers of existing collections do
not wait for) before the embedding table, and a deleter takes the same locks in the
same order, so concurrent creators and deleters queue instead of deadlocking.

Deleting a collection detaches and drops its partition: no row is deleted one by one,
whatever the collection's size. Both take an ``ACCESS EXCLUSIVE`` lock on the
embedding table for the moment they run (they wait for statements in flight).

Only the embedding table's owner may attach and detach partitions, so only the owner
creates and deletes collections of a partitioned table; other roles read and write
the collections that exist.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Connection, MetaData, String, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement
from sqlalchemy.sql.compiler import IdentifierPreparer

from ._catalog import index_leaves, owns, partition_indexes, partition_of
from ._errors import PrivilegeError
from ._schema import Tables, TableSpec, fit_name

_BOUND = re.compile(r"FOR VALUES IN \('([0-9a-f-]{36})'\)")


def partition_name(spec: TableSpec, cid: uuid.UUID) -> str:
    """The name a collection's partition is created with: ``<table>_<collection id>``."""
    return fit_name(f"{spec.embedding_table}_{cid.hex}")


def bound(cid: uuid.UUID) -> str:
    """The partition bound of a collection as PostgreSQL prints it."""
    return "FOR VALUES IN ('" + str(cid) + "')"


def _named(schema: str | None, name: str) -> Table:
    """A Table that only names a relation ``schema.name``, for statements to quote."""
    return Table(name, MetaData(schema=schema))


def partition_table(spec: TableSpec, name: str) -> Table:
    """A Table naming the partition ``name`` (for statements that only quote it)."""
    return _named(spec.schema, name)


class _PartitionDDL(ExecutableDDLElement):
    inherit_cache = False

    def __init__(self, parent: Table, name: str, cid: uuid.UUID | None = None) -> None:
        self.parent = parent
        self.partition = _named(parent.schema, name)
        self.cid = cid


class RenameIndex(ExecutableDDLElement):
    """``ALTER INDEX <schema>.<name> RENAME TO <new>``."""

    inherit_cache = False

    def __init__(self, schema: str | None, name: str, new: str) -> None:
        self.index = _named(schema, name)
        self.new = new


@compiles(RenameIndex)
def _compile_rename(element: RenameIndex, compiler: Any, **kw: Any) -> str:
    preparer: IdentifierPreparer = compiler.preparer
    return (
        "ALTER INDEX "
        + preparer.format_table(element.index)
        + " RENAME TO "
        + preparer.quote(element.new)
    )


def leaf_name(index: str, cid: uuid.UUID) -> str:
    """The name of a collection's partition of index ``index``: ``<index>_<12 hex>``.

    The collection id's first 12 hex digits: a plan names the index a user created.
    """
    return fit_name(f"{index}_{cid.hex[:12]}")


def _bound_id(bound: str) -> uuid.UUID | None:
    match = _BOUND.fullmatch(bound)
    return uuid.UUID(match.group(1)) if match else None


def name_leaves(conn: Connection, tables: Tables, index: str) -> None:
    """Rename the partitions of the new index ``index`` after it (:func:`leaf_name`)."""
    schema = tables.spec.schema
    for leaf, partition_bound in index_leaves(conn, tables.spec, index):
        cid = _bound_id(partition_bound)
        if cid is not None and leaf != leaf_name(index, cid):
            conn.execute(RenameIndex(schema, leaf, leaf_name(index, cid)))


class CreateLike(_PartitionDDL):
    """``CREATE TABLE <partition> (LIKE <parent> INCLUDING ...)``: the parent's columns.

    With its defaults, generated column and storage; its indexes come with the attach.
    """


class Attach(_PartitionDDL):
    """``ALTER TABLE <parent> ATTACH PARTITION <partition> FOR VALUES IN ('<id>')``."""


class Detach(_PartitionDDL):
    """``ALTER TABLE <parent> DETACH PARTITION <partition>``."""


class DropPartition(_PartitionDDL):
    """``DROP TABLE <partition>`` (once detached)."""


@compiles(CreateLike)
def _compile_create_like(element: CreateLike, compiler: Any, **kw: Any) -> str:
    preparer: IdentifierPreparer = compiler.preparer
    return (
        "CREATE TABLE "
        + preparer.format_table(element.partition)
        + " (LIKE "
        + preparer.format_table(element.parent)
        + " INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING STORAGE)"
    )


@compiles(Attach)
def _compile_attach(element: Attach, compiler: Any, **kw: Any) -> str:
    preparer: IdentifierPreparer = compiler.preparer
    value: str = compiler.sql_compiler.render_literal_value(str(element.cid), String())
    return (
        "ALTER TABLE "
        + preparer.format_table(element.parent)
        + " ATTACH PARTITION "
        + preparer.format_table(element.partition)
        + " FOR VALUES IN ("
        + value
        + ")"
    )


@compiles(Detach)
def _compile_detach(element: Detach, compiler: Any, **kw: Any) -> str:
    preparer: IdentifierPreparer = compiler.preparer
    return (
        "ALTER TABLE "
        + preparer.format_table(element.parent)
        + " DETACH PARTITION "
        + preparer.format_table(element.partition)
    )


@compiles(DropPartition)
def _compile_drop_partition(element: DropPartition, compiler: Any, **kw: Any) -> str:
    preparer: IdentifierPreparer = compiler.preparer
    return "DROP TABLE " + preparer.format_table(element.partition)


def check_owner(conn: Connection, spec: TableSpec, what: str) -> None:
    """Raise ``PrivilegeError`` unless this role owns the embedding table.

    ``what`` names the call, e.g. ``"creating collection 'docs'"``.
    """
    if not owns(conn, spec):
        raise PrivilegeError(
            f"{what} of the partitioned table {spec.qualified_embedding_table!r} "
            "attaches or detaches the collection's partition, which only the table's "
            "owner may do; run it as the owner (PGVecStore(..., collection_name=...)"
            ".create_tables(), or `pgvec init`), and let this role use the collections "
            "that exist"
        )


def create(conn: Connection, tables: Tables, cid: uuid.UUID) -> None:
    """Give the new collection ``cid`` its partition, in this transaction.

    Run by the table's owner only (see :func:`check_owner`).
    """
    partition = partition_name(tables.spec, cid)
    conn.execute(CreateLike(tables.embedding, partition))
    conn.execute(Attach(tables.embedding, partition, cid))
    # the partition's indexes, made by the attach, are named after the table's
    for leaf, parent in partition_indexes(conn, tables.spec, partition):
        conn.execute(RenameIndex(tables.spec.schema, leaf, leaf_name(parent, cid)))


def drop(conn: Connection, tables: Tables, cid: uuid.UUID) -> None:
    """Detach and drop the partition of collection ``cid``, if it has one.

    Run by the table's owner only (see :func:`check_owner`).
    """
    partition = partition_of(conn, tables.spec, bound(cid))
    if partition is None:
        return
    conn.execute(Detach(tables.embedding, partition))
    conn.execute(DropPartition(tables.embedding, partition))


def of(conn: Connection, tables: Tables, cid: uuid.UUID) -> Table | None:
    """The partition of collection ``cid``; None when it has none."""
    name = partition_of(conn, tables.spec, bound(cid))
    return None if name is None else partition_table(tables.spec, name)
