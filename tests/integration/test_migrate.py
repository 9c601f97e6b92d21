"""Migration from langchain-postgres: real PGVector tables, written by langchain-postgres.

Each test writes its source collections with ``langchain_postgres.PGVector`` into a
schema of its own (through ``search_path``), so "migrate every collection" sees only
the test's collections, and migrates into tables of its own.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from sqlalchemy import Engine, create_engine, make_url, select, text

from langchain_pgvec import HashingEmbeddings, InvalidInputError, PGVecStore
from langchain_pgvec._migrate import (
    MigrationError,
    MigrationReport,
    migrate_from_langchain_postgres,
)

DIM = 8


@pytest.fixture
def source_schema(engine: Engine) -> Iterator[str]:
    name = f"lcpg_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        # in public first: created under the test schema's search_path it would land there
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    yield name
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))


@pytest.fixture
def source(pg_url: str, source_schema: str) -> Iterator[Engine]:
    """An engine whose tables land in the test's schema (pgvector stays in public)."""
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={source_schema},public"})
    source_engine = create_engine(url)
    yield source_engine
    source_engine.dispose()


@pytest.fixture
def target_table() -> str:
    return f"mig_{uuid.uuid4().hex[:10]}"


def write_pgvector(
    engine: Engine,
    collection: str,
    texts: list[str],
    metadatas: list[dict[str, Any]] | None,
    *,
    size: int = DIM,
    collection_metadata: dict[str, Any] | None = None,
) -> list[str]:
    """Write a collection the way a langchain-postgres user did."""
    from langchain_postgres import PGVector

    ids = [f"{collection}-{n}" for n in range(len(texts))]
    with warnings.catch_warnings():
        # langchain-postgres may announce deprecations of its own (not ours to fix)
        warnings.simplefilter("ignore", DeprecationWarning)
        store = PGVector(
            embeddings=DeterministicFakeEmbedding(size=size),
            collection_name=collection,
            connection=engine,
            use_jsonb=True,
            collection_metadata=collection_metadata,
        )
        if texts:
            store.add_texts(texts, metadatas=metadatas, ids=ids)
    return ids


def source_rows(engine: Engine, collection: str) -> dict[str, tuple[Any, Any, np.ndarray]]:
    """id -> (document, cmetadata, embedding) as langchain-postgres stored them."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id, e.document, e.cmetadata, e.embedding::text FROM "
                "langchain_pg_embedding e JOIN langchain_pg_collection c "
                "ON c.uuid = e.collection_id WHERE c.name = :name"
            ),
            {"name": collection},
        ).all()
    return {r[0]: (r[1], r[2], np.array(r[3][1:-1].split(","), dtype=np.float32)) for r in rows}


def target_rows(store: PGVecStore) -> dict[str, tuple[Any, Any, np.ndarray]]:
    """id -> (content, metadata, embedding) of the store's collection."""
    documents = store.get()
    tables = store._ensure().tables  # type: ignore[union-attr]
    e, c = tables.embedding, tables.collection
    with store.engine.connect() as conn:
        vectors = dict(
            conn.execute(
                select(e.c.id, e.c.embedding)
                .join(c, c.c.id == e.c.collection_id)
                .where(c.c.name == store.collection_name)
            ).all()
        )
    return {str(d.id): (d.page_content, d.metadata, vectors[str(d.id)]) for d in documents}


def sample(n: int, tag: str) -> tuple[list[str], list[dict[str, Any]]]:
    texts = [f"{tag} document number {i} über Café ☕" if i % 7 else "" for i in range(n)]
    metadatas: list[dict[str, Any]] = [
        {
            "n": i,
            "tag": tag,
            "score": i / 3,
            "nested": {"even": i % 2 == 0, "tags": [tag, str(i)]},
            "none": None,
        }
        for i in range(n)
    ]
    return texts, metadatas


def store_on(engine: Engine, table: str, collection: str, **kwargs: Any) -> PGVecStore:
    return PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        collection_name=collection,
        collection_table=f"{table}_c",  # collection names are per collection table
        embedding_table=table,
        **kwargs,
    )


def test_one_collection_keeps_ids_contents_metadata_and_embeddings(
    engine: Engine, source: Engine, source_schema: str, target_table: str
) -> None:
    texts, metadatas = sample(650, "alpha")
    write_pgvector(source, "alpha", texts, metadatas, collection_metadata={"owner": "me"})
    write_pgvector(source, "beta", *sample(5, "beta"))
    beta_before = source_rows(source, "beta")
    neighbour = store_on(engine, target_table, "beta")
    neighbour.add_texts(["already here"], [{"keep": True}], ids=["beta-0"])

    target = store_on(engine, target_table, "renamed")
    report = migrate_from_langchain_postgres(source, target, "alpha", chunk_size=300)

    assert isinstance(report, MigrationReport)
    assert report.rows == 650
    [entry] = report.collections
    assert (entry.source, entry.target, entry.rows, entry.dimension) == (
        "alpha",
        "renamed",
        650,
        DIM,
    )
    assert "650 documents" in str(report)

    expected = source_rows(source, "alpha")
    migrated = target_rows(target)
    assert migrated.keys() == expected.keys()
    for doc_id, (document, metadata, vector) in expected.items():
        content, meta, embedding = migrated[doc_id]
        assert content == (document or "")
        assert meta == metadata
        assert np.array_equal(embedding, vector), doc_id
    # the other collection: untouched in the source, not copied, and the target's
    # collection of the same name keeps its own documents
    assert source_rows(source, "beta").keys() == beta_before.keys()
    assert [(d.id, d.page_content) for d in neighbour.get()] == [("beta-0", "already here")]
    # the collection's metadata came along
    tables = target._ensure().tables  # type: ignore[union-attr]
    with engine.connect() as conn:
        meta = conn.execute(
            select(tables.collection.c.metadata).where(tables.collection.c.name == "renamed")
        ).scalar_one()
    assert meta == {"owner": "me"}
    # and search works on what arrived
    assert target.similarity_search_by_vector(list(expected["alpha-3"][2]), k=1)[0].id == "alpha-3"


def test_running_it_again_is_idempotent(engine: Engine, source: Engine, target_table: str) -> None:
    texts, metadatas = sample(700, "again")
    write_pgvector(source, "again", texts, metadatas)
    target = store_on(engine, target_table, "again")
    first = migrate_from_langchain_postgres(source, target, "again", chunk_size=250)
    before = target_rows(target)
    # the second run finds every id: each chunk takes the staging-table upsert route
    second = migrate_from_langchain_postgres(source, target, "again", chunk_size=250)
    assert first.rows == second.rows == 700
    after = target_rows(target)
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[i][2], before[i][2]) for i in before)
    assert target.count() == 700


def test_all_collections_keep_their_names(
    engine: Engine, source: Engine, target_table: str
) -> None:
    write_pgvector(source, "one", *sample(3, "one"))
    write_pgvector(source, "two", *sample(4, "two"))
    write_pgvector(source, "empty", [], None)
    template = store_on(engine, target_table, "unused")

    report = migrate_from_langchain_postgres(source, template)

    assert [(c.source, c.target, c.rows) for c in report.collections] == [
        ("empty", "empty", 0),
        ("one", "one", 3),
        ("two", "two", 4),
    ]
    for name, count in (("one", 3), ("two", 4), ("empty", 0)):
        assert store_on(engine, target_table, name).count() == count
    assert template.count() == 0


def test_url_target_uses_default_tables(
    engine: Engine, pg_url: str, source: Engine, source_schema: str
) -> None:
    write_pgvector(source, "docs", *sample(3, "docs"))
    # a target whose search_path puts the default tables in a fresh schema of its own
    target_schema = f"{source_schema}_t"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{target_schema}"'))
    target_url = make_url(pg_url).update_query_dict(
        {"options": f"-csearch_path={target_schema},public"}
    )
    try:
        report = migrate_from_langchain_postgres(source, target_url.render_as_string(False))
        assert report.rows == 3
        assert report.table == "pgvec_embedding"
        with engine.connect() as conn:
            count = conn.execute(
                text(f'SELECT count(*) FROM "{target_schema}".pgvec_embedding')
            ).scalar()
        assert count == 3
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{target_schema}" CASCADE'))


def test_a_failure_leaves_the_target_as_it_was(
    engine: Engine, source: Engine, target_table: str
) -> None:
    write_pgvector(source, "a_good", *sample(300, "good"))
    write_pgvector(source, "b_bad", *sample(3, "bad"))
    with source.begin() as conn:  # a row whose metadata is not a JSON object
        conn.execute(
            text("UPDATE langchain_pg_embedding SET cmetadata = '[1, 2]' WHERE id = 'b_bad-1'")
        )
    template = store_on(engine, target_table, "unused")
    with pytest.raises(InvalidInputError, match=r"b_bad-1.*not a JSON object"):
        migrate_from_langchain_postgres(source, template)
    # not even the good collection, which came first, was written
    assert store_on(engine, target_table, "a_good").count() == 0
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass(:t)"), {"t": target_table}).scalar()
    assert exists is None  # the table it created went with the rollback


def test_unknown_collection_lists_the_existing_ones(source: Engine, target_table: str) -> None:
    write_pgvector(source, "present", *sample(1, "present"))
    with pytest.raises(MigrationError, match=r"no collection 'absent'.*'present'"):
        migrate_from_langchain_postgres(source, None, "absent")


def test_missing_source_tables(source: Engine) -> None:
    with pytest.raises(MigrationError, match="no table 'langchain_pg_collection'"):
        migrate_from_langchain_postgres(source, None)


def test_different_dimensions_are_refused_before_writing(
    engine: Engine, source: Engine, target_table: str
) -> None:
    write_pgvector(source, "small", *sample(2, "small"), size=4)
    write_pgvector(source, "large", *sample(2, "large"), size=4)
    # langchain-postgres without embedding_length lets collections differ in dimension
    with source.begin() as conn:
        conn.execute(
            text("UPDATE langchain_pg_embedding SET embedding = '[1,2,3]' WHERE id LIKE 'large-%'")
        )
    template = store_on(engine, target_table, "unused")
    with pytest.raises(InvalidInputError, match=r"different dimensions.*table per dimension"):
        migrate_from_langchain_postgres(source, template)
    report = migrate_from_langchain_postgres(source, template, "small")
    assert report.rows == 2


def test_halfvec_target_and_progress_bar(
    engine: Engine,
    source: Engine,
    target_table: str,
    capsys: pytest.CaptureFixture[str],
    needs_pgvector: Any,
) -> None:
    needs_pgvector(0, 7)
    write_pgvector(source, "half", *sample(20, "half"))
    target = store_on(engine, target_table, "half", vector_type="halfvec")
    migrate_from_langchain_postgres(source, target, "half", show_progress=True)
    assert "pgvec migrate" in capsys.readouterr().err
    expected = source_rows(source, "half")
    migrated = target_rows(target)
    for doc_id, (_, _, vector) in expected.items():
        assert np.allclose(migrated[doc_id][2], vector, atol=1e-2)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="chunk_size"):
        migrate_from_langchain_postgres("postgresql://x/y", None, chunk_size=0)
    with pytest.raises(InvalidInputError, match="source"):
        migrate_from_langchain_postgres(None, None)  # type: ignore[arg-type]
