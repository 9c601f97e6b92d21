"""The ``pgvec`` command, run in-process through ``main([...])`` and once as the script."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from support.modes import partial_indexes_only

from langchain_pgvec import HashingEmbeddings, PGVecStore
from langchain_pgvec.cli import main

DIM = 32
TEXTS = {
    "pg": ("PostgreSQL stores relational data and vectors", {"topic": "db", "year": 2024}),
    "hnsw": ("An HNSW index makes vector search fast", {"topic": "db", "year": 2023}),
    "bread": ("Sourdough bread needs a lively starter", {"topic": "food", "year": 2021}),
    "pasta": ("Salt the pasta water generously", {"topic": "food", "year": 2020}),
}


@pytest.fixture
def table() -> str:
    return f"cli_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(engine: Engine, table: str, collection_name: str) -> Iterator[PGVecStore]:
    store = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        collection_name=collection_name,
        embedding_table=table,
    )
    store.add_texts(
        [content for content, _ in TEXTS.values()],
        [metadata for _, metadata in TEXTS.values()],
        ids=list(TEXTS),
    )
    yield store
    with engine.begin() as conn:
        conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))


def run(pg_url: str, table: str, *argv: str) -> int:
    return main(["--url", pg_url, "--embedding-table", table, *argv])


def test_info_shows_table_collections_and_indexes(
    pg_url: str,
    store: PGVecStore,
    table: str,
    collection_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(pg_url, table, "info") == 0
    out = capsys.readouterr().out
    assert f"{table}  vector({DIM}), 4 documents" in out
    assert collection_name in out and "4 documents" in out
    assert f"{table}_pkey" in out and "primary key" in out
    assert "jsonb_path_ops" in out
    assert out.startswith("database:   postgresql+psycopg://")


def test_info_for_a_missing_table_names_the_ones_there(
    pg_url: str, store: PGVecStore, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(pg_url, "no_such_table", "info") == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("pgvec: error: no embedding table 'no_such_table'")
    assert f"{table} (vector({DIM}))" in captured.err
    assert "--embedding-table" in captured.err
    assert "Traceback" not in captured.err


def test_search_prints_ids_distances_contents_and_metadata(
    pg_url: str,
    store: PGVecStore,
    table: str,
    collection_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(pg_url, table, "search", "sourdough starter", "-c", collection_name, "--k", "2") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"2 result(s) from {collection_name!r}")
    assert lines[1].split()[:2] == ["1.", "bread"] and "distance=" in lines[1]
    assert "Sourdough bread needs a lively starter" in lines[2]
    assert '"topic": "food"' in lines[3]


def test_search_with_filter_and_mmr(
    pg_url: str,
    store: PGVecStore,
    table: str,
    collection_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = '{"topic": "db", "year": {"$gte": 2024}}'
    assert run(pg_url, table, "search", "vector", "-c", collection_name, "--filter", where) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 result(s)") and " pg " in out and "hnsw" not in out
    assert run(pg_url, table, "search", "bread", "-c", collection_name, "--mmr", "--k", "3") == 0
    assert "by MMR" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--filter", '{"year": {"$bad": 1}}'], "unknown operator '$bad'"),
        (["--embeddings", "hashing:8"], "has 8 dimensions but table"),
    ],
)
def test_search_errors_exit_1_without_traceback(
    pg_url: str,
    store: PGVecStore,
    table: str,
    collection_name: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert run(pg_url, table, "search", "x", "-c", collection_name, *argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("pgvec: error: ") and message in err
    assert "Traceback" not in err


def test_search_in_an_unknown_collection(
    pg_url: str,
    store: PGVecStore,
    table: str,
    collection_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(pg_url, table, "search", "x", "-c", "nope") == 1
    err = capsys.readouterr().err
    assert "no collection 'nope'" in err and collection_name in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["search", "x"],  # --collection is required
        ["search", "x", "-c", "c", "--filter", "[1]"],
        ["search", "x", "-c", "c", "--filter", "{not json"],
        ["search", "x", "-c", "c", "--embeddings", "word2vec"],
        ["search", "x", "-c", "c", "--k", "0"],
        ["index"],
        ["index", "create", "annoy"],
        ["index", "create", "ivfflat", "--m", "8"],
        ["index", "create", "hnsw", "--lists", "8"],
        ["index", "create", "hnsw", "--per-collection"],
        ["embedded", "restart"],
        ["migrate", "--from-url", "postgresql://x/y"],
        ["migrate", "--from-url", "postgresql://x/y", "--all", "--to-collection", "z"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_bad_url_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "mysql://u@h/db", "info"]) == 1
    assert "PostgreSQL URL" in capsys.readouterr().err


@partial_indexes_only
def test_index_create_list_drop(
    pg_url: str,
    store: PGVecStore,
    table: str,
    collection_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["index", "create", "hnsw", "--m", "8", "--ef-construction", "32"]
    assert run(pg_url, table, *argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"index {table}_hnsw_cosine (hnsw, vector_cosine_ops")

    argv = ["index", "create", "ivfflat", "--lists", "2", "--per-collection"]
    argv += ["-c", collection_name, "--distance", "euclidean", "--concurrently"]
    assert run(pg_url, table, *argv) == 0
    ivfflat = capsys.readouterr().out.split()[1]
    assert ivfflat.startswith(f"{table}_ivfflat_l2_")

    assert run(pg_url, table, "index", "list") == 0
    out = capsys.readouterr().out
    assert "m=8, ef_construction=32" in out
    assert "vector_l2_ops" in out and f"collection {collection_name}" in out
    assert out.splitlines()[0] == f"indexes on public.{table} (4):"

    assert run(pg_url, table, "index", "drop", f"{table}_hnsw_cosine") == 0
    assert run(pg_url, table, "index", "drop", ivfflat, "--concurrently") == 0
    assert [i.name for i in store.list_indexes() if i.is_vector] == []
    capsys.readouterr()

    assert run(pg_url, table, "index", "drop", "nope") == 1
    assert "no index 'nope'" in capsys.readouterr().err
    assert run(pg_url, table, "index", "drop", f"{table}_pkey") == 1
    assert "primary key" in capsys.readouterr().err
    assert run(pg_url, table, "index", "create", "hnsw", "--m", "1") == 1
    assert "HNSW m must be an integer from 2 to 100" in capsys.readouterr().err


def test_a_halfvec_table(
    pg_url: str,
    engine: Engine,
    table: str,
    collection_name: str,
    capsys: pytest.CaptureFixture[str],
    needs_pgvector: Any,
) -> None:
    needs_pgvector(0, 7)
    store = PGVecStore(
        HashingEmbeddings(dimension=DIM),
        connection=engine,
        collection_name=collection_name,
        embedding_table=table,
        vector_type="halfvec",
    )
    store.add_texts([content for content, _ in TEXTS.values()], ids=list(TEXTS))
    try:
        assert run(pg_url, table, "info") == 0
        assert f"halfvec({DIM})" in capsys.readouterr().out
        assert run(pg_url, table, "search", "pasta water", "-c", collection_name) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["1.", "pasta"]
        assert run(pg_url, table, "index", "create", "hnsw", "--distance", "inner_product") == 0
        assert "halfvec_ip_ops" in capsys.readouterr().out
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))


def test_migrate(
    pg_url: str,
    engine: Engine,
    table: str,
    capsys: pytest.CaptureFixture[str],
    pgvector: tuple[int, ...],
) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_postgres import PGVector

    schema = f"lcpg_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    source_url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema},public"})
    source = create_engine(source_url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for name in ("first", "second"):
                PGVector(
                    embeddings=DeterministicFakeEmbedding(size=DIM),
                    collection_name=name,
                    connection=source,
                    use_jsonb=True,
                ).add_texts(
                    [f"{name} a", f"{name} b"], [{"n": 1}, {"n": 2}], ids=[f"{name}-a", f"{name}-b"]
                )
        from_url = source_url.render_as_string(hide_password=False)

        # collection names are unique per collection table: use one of our own
        own = ["--url", pg_url, "--collection-table", f"{table}_c", "--embedding-table", table]
        argv = ["migrate", "--from-url", from_url, "-c", "first", "--to-collection", "renamed"]
        assert main([*own, *argv]) == 0
        out = capsys.readouterr().out
        assert "migrated 2 documents in 1 collection(s)" in out and "first -> renamed" in out

        assert main([*own, "migrate", "--from-url", from_url, "--all"]) == 0
        out = capsys.readouterr().out
        assert "migrated 4 documents in 2 collection(s)" in out

        half = ["--url", pg_url, "--collection-table", f"{table}_c", "--embedding-table"]
        argv = ["migrate", "--from-url", from_url, "--all", "--vector-type", "halfvec"]
        if pgvector >= (0, 7):
            assert main([*half, f"{table}_h", *argv]) == 0
            assert main([*half, f"{table}_h", "info"]) == 0
            assert f"halfvec({DIM}), 4 documents" in capsys.readouterr().out
        else:
            assert main([*half, f"{table}_h", *argv]) == 1
            assert "halfvec needs pgvector 0.7.0" in capsys.readouterr().err

        assert main([*own, "search", "first a", "-c", "renamed", "--k", "1"]) == 0
        assert "first-a" in capsys.readouterr().out

        assert run(pg_url, table, "migrate", "--from-url", from_url, "-c", "absent") == 1
        assert "no collection 'absent'" in capsys.readouterr().err
    finally:
        source.dispose()
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}", "{table}_h", "{table}_c"'))


def test_embedded_start_url_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "pgdata"
    try:
        assert main(["embedded", "start", "--dir", str(directory)]) == 0
        out = capsys.readouterr().out
        assert "postgresql+psycopg://" in out
        assert 'psql "postgresql://' in out

        assert main(["embedded", "url", "--plain", "--dir", str(directory)]) == 0
        plain = capsys.readouterr().out.strip()
        assert plain.startswith("postgresql://") and str(directory) in plain
        sqlalchemy_url = plain.replace("postgresql://", "postgresql+psycopg://", 1)
        probe = create_engine(sqlalchemy_url)
        with probe.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        probe.dispose()
    finally:
        assert main(["embedded", "stop", "--dir", str(directory)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["embedded", "stop", "--dir", str(directory)]) == 0
    assert "not running" in capsys.readouterr().out


def test_the_installed_script(
    pg_url: str, store: PGVecStore, table: str, collection_name: str
) -> None:
    script = Path(sys.executable).with_name("pgvec")
    assert script.exists(), f"{script} is missing: run `pip install -e .` to install the script"
    env = {key: value for key, value in os.environ.items() if key != "PGVEC_URL"}
    env["PGVEC_URL"] = pg_url  # the default of --url
    found = subprocess.run(
        [str(script), "--embedding-table", table, "search", "pasta water", "-c", collection_name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[1].split()[:2] == ["1.", "pasta"]
    failed = subprocess.run(
        [str(script), "--embedding-table", table, "search", "x", "-c", "absent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("pgvec: error: no collection 'absent'")
    assert "Traceback" not in failed.stderr
