"""The term statistics BM25 ranks by: table, triggers, backfill, compaction (pure).

A full-text store has a second table beside its embedding table, ``<embedding>_terms``
(collection_id, lexeme, df, len). Its rows are *deltas*: the sum of ``df`` over a
(collection, lexeme) is the number of the collection's documents whose ``content_tsv``
holds the lexeme; the row with the empty lexeme counts the documents (``df``) and the
sum of their lengths (``len``, distinct lexemes per document).

Statement-level triggers on the embedding table (``AFTER INSERT``, ``UPDATE``,
``DELETE`` with transition tables, and ``TRUNCATE``) append one aggregated delta per
(collection, lexeme) a statement changed. They run inside the writing statement, so
the statistics are transactional: a reader sees exactly the documents its snapshot
sees, whatever path wrote them (the store's COPY and upserts, ``delete_collection``,
a user's own SQL). Writers only append, so concurrent writers never wait for each
other on the statistics. :func:`compact` folds a collection's deltas into one row per
lexeme; it deletes only the rows its snapshot sees (``DELETE ... RETURNING``), so rows
that concurrent writers append meanwhile are kept.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Insert,
    MetaData,
    Table,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement

from ._schema import TSV_COLUMN, Tables, TableSpec, fit_name

#: the lexeme of the row that counts the documents and their lengths
TOTALS = ""
#: the trigger function (one per schema, shared by every full-text table in it)
FUNCTION = "pgvec_count_terms"
#: the triggers on the embedding table, by event
EVENTS = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")

# The trigger function. Its body is constant (and holds no "%", which the driver
# would read as a placeholder): the statistics table it writes is the trigger's
# argument, quoted as a regclass. ``pgvec_new`` / ``pgvec_old``
# are the statement's transition tables; an UPDATE counts only the rows whose
# content_tsv changed (an upsert that rewrites a vector leaves the statistics alone).
_BODY = r"""
DECLARE
    target text := TG_ARGV[0]::regclass::text;
    changes text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE 'DELETE FROM ' || target;
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        changes := 'SELECT collection_id, content_tsv, 1 AS sign FROM pgvec_new';
    ELSIF TG_OP = 'DELETE' THEN
        changes := 'SELECT collection_id, content_tsv, -1 AS sign FROM pgvec_old';
    ELSE
        changes := 'SELECT n.collection_id, n.content_tsv, 1 AS sign FROM pgvec_new n '
            'WHERE NOT EXISTS (SELECT FROM pgvec_old o WHERE o.collection_id = n.collection_id '
            'AND o.id = n.id AND o.content_tsv = n.content_tsv) '
            'UNION ALL SELECT o.collection_id, o.content_tsv, -1 FROM pgvec_old o '
            'WHERE NOT EXISTS (SELECT FROM pgvec_new n WHERE n.collection_id = o.collection_id '
            'AND n.id = o.id AND n.content_tsv = o.content_tsv)';
    END IF;
    EXECUTE 'WITH changes AS (' || changes || ') '
        'INSERT INTO ' || target || ' (collection_id, lexeme, df, len) '
        'SELECT collection_id, lexeme, sum(sign), 0 '
        'FROM changes, unnest(tsvector_to_array(content_tsv)) AS lexeme '
        'GROUP BY collection_id, lexeme HAVING sum(sign) <> 0 '
        'UNION ALL SELECT collection_id, '''', sum(sign), sum(sign * length(content_tsv)) '
        'FROM changes GROUP BY collection_id '
        'HAVING sum(sign) <> 0 OR sum(sign * length(content_tsv)) <> 0';
    RETURN NULL;
END
"""


@functools.lru_cache(maxsize=64)
def terms_table(spec: TableSpec) -> Table:
    """The statistics table of ``spec``'s embedding table.

    In a ``MetaData`` of its own: the store creates it with its triggers, never by
    ``create_all``.
    """
    table = Table(
        fit_name(f"{spec.embedding_table}_terms"),
        MetaData(schema=spec.schema),
        Column("collection_id", UUID(as_uuid=True), nullable=False),
        Column("lexeme", Text, nullable=False),
        Column("df", BigInteger, nullable=False),
        Column("len", BigInteger, nullable=False),
    )
    Index(fit_name(f"{spec.embedding_table}_terms_key"), table.c.collection_id, table.c.lexeme)
    return table


def trigger_name(event: str) -> str:
    """The name of the trigger for ``event`` (the same on every embedding table)."""
    return f"pgvec_terms_{event.lower()}"


class CreateFunction(ExecutableDDLElement):
    """``CREATE OR REPLACE FUNCTION <schema>.pgvec_count_terms() ...`` (the constant body)."""

    inherit_cache = False

    def __init__(self, schema: str | None) -> None:
        self.schema = schema


@compiles(CreateFunction)
def _compile_function(element: CreateFunction, compiler: Any, **kw: Any) -> Any:
    name = _function_name(compiler.preparer, element.schema)
    # the body is a constant, dollar-quoted by a tag it never holds
    return (
        "CREATE OR REPLACE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql "
        "AS $pgvec_body$" + _BODY + "$pgvec_body$"
    )


def _function_name(preparer: Any, schema: str | None) -> Any:
    head = preparer.quote_schema(schema) + "." if schema is not None else ""
    return head + preparer.quote(FUNCTION)


class CreateTrigger(ExecutableDDLElement):
    """``CREATE TRIGGER`` for one event on the embedding table, writing ``terms``."""

    inherit_cache = False

    def __init__(self, embedding: Table, terms: Table, event: str) -> None:
        assert event in EVENTS
        self.embedding = embedding
        self.terms = terms
        self.event = event


@compiles(CreateTrigger)
def _compile_trigger(element: CreateTrigger, compiler: Any, **kw: Any) -> Any:
    preparer = compiler.preparer
    event = element.event  # one of EVENTS, never user input
    transition = {
        "INSERT": " REFERENCING NEW TABLE AS pgvec_new",
        "UPDATE": " REFERENCING OLD TABLE AS pgvec_old NEW TABLE AS pgvec_new",
        "DELETE": " REFERENCING OLD TABLE AS pgvec_old",
        "TRUNCATE": "",
    }[event]
    # the statistics table's quoted name, as a string literal (standard strings: only
    # the quote is special)
    target = "'" + preparer.format_table(element.terms).replace("'", "''") + "'"
    return (
        "CREATE TRIGGER "
        + preparer.quote(trigger_name(event))
        + " AFTER "
        + event
        + " ON "
        + preparer.format_table(element.embedding)
        + transition
        + " FOR EACH STATEMENT "
        "EXECUTE FUNCTION "
        + _function_name(preparer, element.embedding.schema)
        + "("
        + target
        + ")"
    )


class DropTrigger(ExecutableDDLElement):
    """``DROP TRIGGER IF EXISTS`` for one event's trigger on the embedding table."""

    inherit_cache = False

    def __init__(self, embedding: Table, event: str) -> None:
        assert event in EVENTS
        self.embedding = embedding
        self.event = event


@compiles(DropTrigger)
def _compile_drop_trigger(element: DropTrigger, compiler: Any, **kw: Any) -> Any:
    preparer = compiler.preparer
    return (
        "DROP TRIGGER IF EXISTS "
        + preparer.quote(trigger_name(element.event))
        + " ON "
        + preparer.format_table(element.embedding)
    )


def backfill(tables: Tables) -> Insert:
    """The statistics of every row already in the table.

    Run once, when the triggers are created, under a lock that keeps writers out.
    """
    terms = terms_table(tables.spec)
    table = tables.embedding
    tsv = table.c[TSV_COLUMN]
    lexeme = func.unnest(func.tsvector_to_array(tsv)).table_valued("lexeme").render_derived()
    per_lexeme = (
        select(table.c.collection_id, lexeme.c.lexeme, func.count(), literal(0))
        .select_from(table)
        .join(lexeme, literal(True))
        .group_by(table.c.collection_id, lexeme.c.lexeme)
    )
    totals = select(
        table.c.collection_id, literal(TOTALS), func.count(), func.sum(func.length(tsv))
    ).group_by(table.c.collection_id)
    return insert(terms).from_select(
        ["collection_id", "lexeme", "df", "len"], per_lexeme.union_all(totals)
    )


def compact(tables: Tables, cid: uuid.UUID) -> Insert:
    """Fold one collection's deltas into one row per lexeme (zero sums dropped).

    A sum is dropped only when both its ``df`` and its ``len`` are zero: a fold racing
    another one sees only the deltas appended since the other's snapshot, and there the
    totals row of an upsert that changed a text counts no document but a length.
    """
    terms = terms_table(tables.spec)
    gone = (
        terms.delete()
        .where(terms.c.collection_id == bindparam("cid", cid, type_=terms.c.collection_id.type))
        .returning(terms.c.lexeme, terms.c.df, terms.c.len)
        .cte("gone")
    )
    folded = (
        select(
            literal(cid, terms.c.collection_id.type),
            gone.c.lexeme,
            func.sum(gone.c.df),
            func.sum(gone.c.len),
        )
        .group_by(gone.c.lexeme)
        .having(or_(func.sum(gone.c.df) != 0, func.sum(gone.c.len) != 0))
    )
    return insert(terms).from_select(["collection_id", "lexeme", "df", "len"], folded)


def forget(tables: Tables, cid: uuid.UUID) -> Any:
    """Delete one collection's statistics (``delete_collection``)."""
    terms = terms_table(tables.spec)
    return terms.delete().where(
        terms.c.collection_id == bindparam("cid", cid, type_=terms.c.collection_id.type)
    )


def _regclass(schema: str | None, name: str) -> Any:
    quoted: Any = func.quote_ident(literal(name))
    if schema is not None:
        quoted = func.quote_ident(literal(schema)).concat(".").concat(quoted)
    return func.to_regclass(quoted)


#: the columns of pg_index a partition's own index is found by
_PG_INDEX = table("pg_index", column("indexrelid"), column("indrelid"), schema="pg_catalog")


def clean_pending(tables: Tables, partition: str | None = None) -> Any:
    """``gin_clean_pending_list`` of the full-text GIN index (its owner may).

    Of a partitioned table, the GIN index of ``partition`` (a collection's), which
    holds the list: the partitioned index itself holds nothing.
    """
    spec = tables.spec
    index = _regclass(spec.schema, fit_name(f"{spec.embedding_table}_{TSV_COLUMN}_gin"))
    if partition is None:
        return select(func.gin_clean_pending_list(index))
    tree = func.pg_partition_tree(index).table_valued("relid", "isleaf").alias("tree")
    return (
        select(func.gin_clean_pending_list(tree.c.relid))
        .select_from(tree.join(_PG_INDEX, _PG_INDEX.c.indexrelid == tree.c.relid))
        .where(tree.c.isleaf, _PG_INDEX.c.indrelid == _regclass(spec.schema, partition))
    )
