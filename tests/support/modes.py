"""How the suite runs: on plain tables (the default) or, with ``PGVEC_TEST_PARTITIONED=1``,
on tables partitioned by collection (see ``tests/conftest.py``).

A few tests are about what only a plain table has; under the partitioned run they are
skipped with the reason, and ``tests/integration/test_partitions.py`` covers what a
partitioned table does instead.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import text

PARTITIONED = os.environ.get("PGVEC_TEST_PARTITIONED") == "1"

#: an index shared by the collections of one table, and the planner's routes by a
#: collection's share of it: a partitioned table gives each collection its own graph
shared_index_only = pytest.mark.skipif(
    PARTITIONED, reason="a partitioned table has no index shared by its collections"
)
#: CREATE / DROP INDEX CONCURRENTLY, which PostgreSQL does not run on a partitioned
#: index (the store refuses it before any I/O there)
concurrent_builds_only = pytest.mark.skipif(
    PARTITIONED, reason="PostgreSQL builds and drops no partitioned index CONCURRENTLY"
)
#: per-collection partial indexes, which a partitioned table has no use for (refused)
partial_indexes_only = pytest.mark.skipif(
    PARTITIONED, reason="a partitioned table has no per-collection partial indexes"
)


def autovacuum_off(conn: Any, table: str) -> None:
    """``ALTER TABLE ... SET (autovacuum_enabled = false)`` on ``table`` (a name in the
    search path), or on each partition it has when it is partitioned (PostgreSQL keeps
    no storage parameters for a partitioned table itself)."""
    quote = conn.dialect.identifier_preparer.quote
    parts = (
        conn.execute(
            text(
                "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(:t)"
            ),
            {"t": quote(table)},
        )
        .scalars()
        .all()
    )
    for name in parts or [quote(table)]:
        conn.execute(text("ALTER TABLE " + name + " SET (autovacuum_enabled = false)"))
