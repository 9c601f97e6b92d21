"""Least privilege, on a real PostgreSQL: the owner makes the schema, an application role
only uses it (and issues no DDL), a read-only role searches, and every refusal is a
PrivilegeError that names the GRANT (or the role) that fixes it.

The module makes three roles of its own and a schema owned by the first; an event
trigger (the test's superuser's) records every DDL command and who ran it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from support.twins import Runner

from langchain_pgvec import (
    HNSW,
    ExtensionError,
    HashingEmbeddings,
    PGVecStore,
    PrivilegeError,
    SchemaError,
)
from langchain_pgvec.cli import main as pgvec

DIM = 16
_LOG_DDL = """
CREATE FUNCTION {fn}() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    INSERT INTO {log} VALUES (session_user, r.command_tag, r.object_identity,
                             coalesce(r.schema_name LIKE 'pg_temp%', false));
  END LOOP;
END $$
"""


@dataclass
class Roles:
    owner: str
    app: str
    reader: str
    schema: str
    log: str
    urls: dict[str, str]


def url_for(pg_url: str, role: str) -> str:
    return make_url(pg_url).set(username=role, password=None).render_as_string(False)


@pytest.fixture(scope="module")
def roles(engine: Engine, pg_url: str) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:6]
    owner, app, reader = f"pv_owner_{tag}", f"pv_app_{tag}", f"pv_read_{tag}"
    schema, log, fn = f"pv_{tag}", f"pv_ddl_{tag}", f"pv_log_{tag}"
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        for role in (owner, app, reader):
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{owner}"'))
        conn.execute(text(f'CREATE TABLE "{log}" (role text, tag text, object text, temp bool)'))
        conn.execute(text(_LOG_DDL.format(fn=f'"{fn}"', log=f'"{log}"')))
        conn.execute(
            text(f'CREATE EVENT TRIGGER "{fn}" ON ddl_command_end EXECUTE FUNCTION "{fn}"()')
        )
    urls = {role: url_for(pg_url, role) for role in (owner, app, reader)}
    yield Roles(owner, app, reader, schema, log, urls)
    with engine.begin() as conn:
        conn.execute(text(f'DROP EVENT TRIGGER "{fn}"'))
        conn.execute(text(f'DROP FUNCTION "{fn}"()'))
        conn.execute(text(f'DROP TABLE "{log}"'))
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        for role in (owner, app, reader):
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


def ddl_by(engine: Engine, roles: Roles, role: str) -> list[tuple[str, str]]:
    """The DDL commands ``role`` ran on objects that outlive its session."""
    with engine.begin() as conn:
        rows = conn.execute(
            text(f'SELECT tag, object FROM "{roles.log}" WHERE role = :r AND NOT temp'),
            {"r": role},
        )
        return [(row[0], row[1]) for row in rows]


def make(roles: Roles, role: str, table: str, **kwargs: Any) -> PGVecStore:
    kwargs.setdefault("collection_name", "docs")
    return PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=roles.urls[role],
        schema=roles.schema,
        embedding_table=table,
        collection_table=f"{table}_c",
        embedding_length=DIM,
        share_engines=False,
        **kwargs,
    )


TEXTS = [
    f"document {i} about {'postgres' if i % 3 else 'vectors'} and topic {i % 7}" for i in range(300)
]
METAS = [{"topic": i % 7, "n": i} for i in range(300)]


async def test_owner_creates_the_schema_and_the_application_only_uses_it(
    roles: Roles, engine: Engine, run: Runner
) -> None:
    table = f"t_{uuid.uuid4().hex[:6]}"
    owner = make(roles, roles.owner, table, full_text=True)
    await run(owner, "create_tables")
    await run(owner, "grant", roles.app)
    await run(owner, "grant", roles.reader, write=False)
    assert ddl_by(engine, roles, roles.owner)  # the owner made the tables

    app = make(roles, roles.app, table, full_text=True)
    ids = [f"d{i}" for i in range(300)]
    await run(app, "add_texts", TEXTS, METAS, ids=ids)  # COPY
    await run(app, "add_texts", TEXTS, [{**m, "v": 2} for m in METAS], ids=ids)  # upsert
    assert len(await run(app, "similarity_search", "postgres topic 3", 5)) == 5
    found = await run(app, "similarity_search", "vectors", 5, {"topic": 3})
    assert len(found) == 5 and {d.metadata["topic"] for d in found} == {3}
    assert len(await run(app, "max_marginal_relevance_search", "postgres", 4, 20)) == 4
    assert await run(app, "hybrid_search", "postgres topic", 5)
    assert await run(app, "full_text_search", "vectors", 5)
    assert await run(app, "count") == 300
    await run(app, "delete", ["d0", "d1"])
    await run(app, "delete", filter={"topic": 6})
    assert await run(app, "count") == 298 - sum(1 for i in range(2, 300) if i % 7 == 6)
    # many more rows than the table had: a store that owns the table would analyze it
    more = [f"more {i}" for i in range(2_000)]
    await run(app, "add_texts", more, [{"topic": 0}] * 2_000)
    # the application issued no DDL on anything that outlives its session (the
    # temporary staging table of the upsert lives and dies in its transaction)
    assert ddl_by(engine, roles, roles.app) == []
    with pytest.raises(PrivilegeError, match="owner"):
        await run(app, "create_index", HNSW(m=8, ef_construction=32))

    reader = make(roles, roles.reader, table, full_text=True)
    assert len(await run(reader, "similarity_search", "postgres", 5, {"topic": 2})) == 5
    assert len(await run(reader, "max_marginal_relevance_search", "vectors", 3, 10)) == 3
    assert await run(reader, "hybrid_search", "postgres topic", 5)
    assert await run(reader, "full_text_search", "vectors", 3)
    assert await run(reader, "get", {"topic": 1}, limit=3)
    assert "Scan" in await run(reader, "explain", "postgres")
    before = await run(reader, "count")
    with pytest.raises(PrivilegeError) as denied:
        await run(reader, "add_texts", ["no"], ids=["x"])
    assert "permission denied" in str(denied.value)
    assert "GRANT SELECT, INSERT, UPDATE, DELETE" in str(denied.value)
    assert roles.reader in str(denied.value)
    with pytest.raises(PrivilegeError, match="GRANT SELECT, INSERT, UPDATE, DELETE"):
        await run(reader, "delete", ["d5"])
    assert await run(reader, "count") == before  # nothing was written
    assert ddl_by(engine, roles, roles.reader) == []
    for store in (owner, app, reader):
        await run(store, "close")


def test_the_same_setup_with_pgvec_init(roles: Roles, engine: Engine) -> None:
    table = f"i_{uuid.uuid4().hex[:6]}"
    status = pgvec(
        [
            "--url",
            roles.urls[roles.owner],
            "--schema",
            roles.schema,
            "--embedding-table",
            table,
            "--collection-table",
            f"{table}_c",
            "init",
            "--dimension",
            str(DIM),
            "--collection",
            "docs",
            "--full-text",
            "--grant",
            roles.app,
            "--grant-read",
            roles.reader,
        ]
    )
    assert status == 0
    app = make(roles, roles.app, table, full_text=True)
    app.add_texts(TEXTS[:50], METAS[:50])
    reader = make(roles, roles.reader, table, full_text=True)
    assert len(reader.hybrid_search("postgres", 5)) == 5
    with pytest.raises(PrivilegeError):
        reader.add_texts(["no"])
    assert ddl_by(engine, roles, roles.app) == []
    app.close()
    reader.close()


async def test_full_text_on_a_table_the_role_does_not_own(
    roles: Roles, engine: Engine, run: Runner
) -> None:
    table = f"f_{uuid.uuid4().hex[:6]}"
    owner = make(roles, roles.owner, table)  # no full-text column
    await run(owner, "create_tables")
    await run(owner, "grant", roles.app)
    app = make(roles, roles.app, table, full_text=True)
    for _ in range(3):  # no ALTER TABLE, on no call
        await run(app, "add_texts", TEXTS[:20], METAS[:20])
        assert await run(app, "similarity_search", "postgres", 3)
    with pytest.raises(SchemaError, match="owner"):
        await run(app, "hybrid_search", "postgres", 3)
    assert ddl_by(engine, roles, roles.app) == []
    # the owner adds it once; the application's next full-text call finds it
    adds = make(roles, roles.owner, table, full_text=True)
    await run(adds, "create_tables")
    await run(adds, "close")
    assert len(await run(app, "hybrid_search", "postgres", 3)) == 3
    # the application's grants carried over to the term statistics: its writes (whose
    # triggers append to them) and its keyword searches go on
    await run(app, "add_texts", ["a vectors document nobody else has"], [{"topic": 9}])
    found = await run(app, "full_text_search", "nobody", 3)
    assert [d.page_content for d in found] == ["a vectors document nobody else has"]
    await run(app, "close")
    await run(owner, "close")


def analyses(engine: Engine, schema: str, table: str) -> int:
    """How many times ANALYZE ran on the table (by hand or by a store): on it, or on
    its partitions when it is partitioned (a store analyzes its collection's)."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT sum(analyze_count) FROM pg_stat_user_tables "
                    "WHERE schemaname = :s AND (relname = :t OR relid IN (SELECT inhrelid "
                    "FROM pg_inherits WHERE inhparent = to_regclass(quote_ident(:s) || '.' "
                    "|| quote_ident(:t))))"
                ),
                {"s": schema, "t": table},
            ).scalar_one()
        )


def test_a_role_that_may_not_analyze_is_never_made_to(
    roles: Roles, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    table = f"a_{uuid.uuid4().hex[:6]}"
    owner = make(roles, roles.owner, table)
    owner.create_tables()
    owner.grant(roles.app)
    app = make(roles, roles.app, table)
    with caplog.at_level(logging.WARNING, logger="langchain_pgvec"):
        app.add_embeddings(["x"] * 3_000, np.eye(DIM, dtype=np.float32)[np.arange(3_000) % DIM])
    assert not caplog.records
    assert analyses(engine, roles.schema, table) == 0
    # its owner's writes do analyze it
    owner.add_embeddings(["y"] * 3_000, np.eye(DIM, dtype=np.float32)[np.arange(3_000) % DIM])
    assert analyses(engine, roles.schema, table) == 1
    app.close()
    owner.close()


def test_a_role_without_create_on_the_schema_is_told(roles: Roles) -> None:
    store = make(roles, roles.app, f"n_{uuid.uuid4().hex[:6]}")
    with pytest.raises(PrivilegeError) as denied:
        store.create_tables()
    message = str(denied.value)
    assert f"schema {roles.schema}" in message and "GRANT USAGE ON SCHEMA" in message
    assert "create_tables()" in message
    store.close()


# ---------------------------------------------------------------------- the extension


@pytest.fixture
def bare_database(engine: Engine, pg_url: str) -> Iterator[str]:
    """A database without the vector extension; its URL."""
    name = f"pv_noext_{uuid.uuid4().hex[:6]}"
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_url).set(database=name).render_as_string(False)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def server_major(engine: Engine) -> int:
    with engine.begin() as conn:
        return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10_000


async def test_a_missing_extension_is_created_only_when_allowed(
    bare_database: str, engine: Engine, roles: Roles, run: Runner
) -> None:
    major = server_major(engine)
    managed = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=bare_database,
        create_extension=False,
        share_engines=False,
    )
    with pytest.raises(ExtensionError) as missing:
        await run(managed, "add_texts", ["x"])
    message = str(missing.value)
    assert "create_extension=False" in message and "superuser" in message
    assert f"postgresql-{major}-pgvector" in message
    assert await run(managed, "similarity_search", "x") == []  # reads find nothing
    await run(managed, "close")
    # a role that is not a superuser cannot create it (pgvector is not trusted)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        name = make_url(bare_database).database
        conn.execute(text(f'GRANT CREATE ON DATABASE "{name}" TO "{roles.app}"'))
    as_app = make_url(bare_database).set(username=roles.app).render_as_string(False)
    plain = PGVecStore(HashingEmbeddings(dimension=DIM), connection=as_app, share_engines=False)
    with pytest.raises(ExtensionError, match="only a superuser"):
        await run(plain, "add_texts", ["x"])
    await run(plain, "close")
    # the superuser's store creates it
    store = PGVecStore(
        HashingEmbeddings(dimension=DIM), connection=bare_database, share_engines=False
    )
    assert len(await run(store, "add_texts", ["x"])) == 1
    await run(store, "close")
    bare = create_engine(bare_database)
    with bare.begin() as conn:
        assert conn.execute(
            text("SELECT extname FROM pg_extension WHERE extname = 'vector'")
        ).scalar()
    bare.dispose()
