"""Shared fixtures: one real PostgreSQL + pgvector per test session.

By default the tests start the embedded server (``langchain_pgvec.embedded``) in a
fresh temporary data directory; set ``PGVEC_TEST_URL`` to run them against another
server instead (it needs the ``vector`` extension available).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.twins import Runner


@pytest.fixture(scope="session", autouse=True)
def _own_embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A store made with connection=None (or the CLI without --url) during the tests
    starts an embedded server in a temporary directory, never the user's own."""
    previous = os.environ.get("PGVEC_EMBEDDED_DIR")
    os.environ["PGVEC_EMBEDDED_DIR"] = str(tmp_path_factory.mktemp("embedded") / "pgdata")
    yield
    if previous is None:
        os.environ.pop("PGVEC_EMBEDDED_DIR", None)
    else:
        os.environ["PGVEC_EMBEDDED_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def _partitioned_by_default() -> Iterator[None]:
    """With ``PGVEC_TEST_PARTITIONED=1``, every table a store creates without being told
    otherwise is partitioned by collection: the suite runs again on partitioned stores.
    Tables that exist are followed as they are (as stores do)."""
    if os.environ.get("PGVEC_TEST_PARTITIONED") != "1":
        yield
        return
    import dataclasses

    from langchain_pgvec import _bootstrap, _catalog, _migrate, _store

    original = _bootstrap.ensure

    def ensure(conn: Any, spec: Any, *args: Any, **kwargs: Any) -> Any:
        if spec.partitioned is None and _catalog.vector_column(conn, spec) is None:
            spec = dataclasses.replace(spec, partitioned=True)
        return original(conn, spec, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_store, "ensure", ensure)
        patch.setattr(_migrate, "ensure", ensure)
        yield


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLAlchemy URL of a PostgreSQL server with pgvector, for the whole session."""
    configured = os.environ.get("PGVEC_TEST_URL")
    if configured:
        yield configured
        return
    from langchain_pgvec import embedded

    directory: Path = tmp_path_factory.mktemp("pgdata")
    server = embedded.start(directory)
    try:
        yield embedded.url(directory)
    finally:
        server.cleanup()


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Run the test once through the sync methods and once through their async twins."""
    return Runner(request.param)


@pytest.fixture
def collection_name(request: pytest.FixtureRequest) -> str:
    """A collection name unique to the test, so tests never see each other's rows."""
    stem = request.node.name.replace("[", "_").replace("]", "")[:40]
    return f"{stem}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def pgvector(pg_url: str) -> tuple[int, ...]:
    """The version of pgvector the test server offers, e.g. ``(0, 8, 5)``."""
    from sqlalchemy import create_engine, text

    probe = create_engine(pg_url)
    try:
        with probe.connect() as conn:
            version = conn.execute(
                text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            ).scalar_one()
    finally:
        probe.dispose()
    return tuple(int(part) for part in str(version).split(".") if part.isdigit())


@pytest.fixture
def needs_pgvector(pgvector: tuple[int, ...]) -> Any:
    """``needs_pgvector(0, 7)`` skips the test on a server whose pgvector is older."""

    def check(*wanted: int) -> None:
        if pgvector < wanted:
            pytest.skip(f"needs pgvector {'.'.join(map(str, wanted))}, the server has {pgvector}")

    return check


@pytest.fixture(scope="session")
async def engine(pg_url: str) -> Any:
    """One sync engine for the session; stores derive (and share) its async twin."""
    from sqlalchemy import create_engine

    from langchain_pgvec import _engine

    sync_engine = create_engine(pg_url, pool_pre_ping=True)
    yield sync_engine
    derived = _engine._DERIVED.pop(sync_engine, None)
    if derived is not None:
        await derived.dispose()  # type: ignore[misc]
    sync_engine.dispose()
