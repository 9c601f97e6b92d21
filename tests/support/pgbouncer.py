"""PgBouncer in front of the test server, for tests that run the store through a pooler.

``start_pgbouncer(server_url, pool_mode)`` writes a config to a temporary directory,
starts ``pgbouncer`` listening on 127.0.0.1 only, on a free port, waits (bounded) until
a query goes through it to the server, and returns a :class:`PgBouncer` whose ``url``
is a SQLAlchemy URL of the same database through the pooler. ``stop()`` kills the
process and removes the directory. When ``pgbouncer`` is not installed the calling
test is skipped (``pytest.skip``), never failed.

PgBouncer refuses to run as root. Run as root (as CI is), it is started as the owner
of the server's Unix socket directory (the embedded server's data directory is 0700
and owned by ``pgserver``, so no other user can reach its socket), or as ``nobody``
for a TCP server.

Example:
    >>> bouncer = start_pgbouncer(pg_url, "transaction", default_pool_size=2)
    >>> engine = create_engine(bouncer.url)
    >>> bouncer.stop()
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy.engine import URL, make_url

__all__ = ["PgBouncer", "find_pgbouncer", "start_pgbouncer"]

POOL_MODES = ("session", "transaction", "statement")

# [pgbouncer] settings; start_pgbouncer's **options override and extend them
DEFAULTS: dict[str, str | int] = {
    # small, so that clients really share server connections
    "default_pool_size": 2,
    "min_pool_size": 0,
    "reserve_pool_size": 0,
    "max_client_conn": 200,
    # psycopg (libpq) sends none of these, but other drivers and tools do
    "ignore_startup_parameters": "extra_float_digits",
    # a failed server login is retried after 1 s, not 15 s
    "server_login_retry": 1,
    # a client waiting this long for a server connection gets an error, not a hang
    "query_wait_timeout": 60,
}

STARTUP_TIMEOUT = 15.0  # seconds until a first query must go through
_POLL_INTERVAL = 0.05
_PORT_ATTEMPTS = 3  # a free port found can be taken before pgbouncer binds it


def find_pgbouncer() -> str | None:
    """The path of the ``pgbouncer`` binary, or None when it is not installed."""
    return shutil.which("pgbouncer") or shutil.which(
        "pgbouncer", path="/usr/sbin:/usr/local/sbin:/usr/bin"
    )


class PgBouncer:
    """A running pgbouncer; a context manager that stops it on exit."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        directory: Path,
        port: int,
        user: str,
        database: str,
        pool_mode: str,
    ) -> None:
        self.process = process
        self.directory = directory
        self.port = port
        self.user = user
        self.database = database
        self.pool_mode = pool_mode

    @property
    def url(self) -> str:
        """A SQLAlchemy URL of the server's database, through pgbouncer."""
        return self._url(self.database)

    @property
    def admin_url(self) -> str:
        """A SQLAlchemy URL of pgbouncer's admin console (``SHOW POOLS`` and the like)."""
        return self._url("pgbouncer")

    def _url(self, database: str) -> str:
        url = URL.create(
            "postgresql+psycopg",
            username=self.user,
            host="127.0.0.1",
            port=self.port,
            database=database,
        )
        return url.render_as_string(hide_password=False)

    def show(self, what: str) -> list[dict[str, Any]]:
        """Rows of the admin console's ``SHOW <what>`` (e.g. ``"POOLS"``), as dicts."""
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname="pgbouncer",
            autocommit=True,
            connect_timeout=5,
            row_factory=dict_row,
        ) as conn:
            # the admin console speaks only the simple query protocol
            return psycopg.ClientCursor(conn).execute(f"SHOW {what}").fetchall()

    def log(self) -> str:
        """What pgbouncer has logged so far."""
        try:
            return (self.directory / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Kill pgbouncer (immediate shutdown) and remove its directory; idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_pgbouncer(
    server_url: str,
    pool_mode: str,
    *,
    timeout: float = STARTUP_TIMEOUT,
    **options: str | int,
) -> PgBouncer:
    """Start pgbouncer in front of ``server_url`` and wait until it serves queries.

    Args:
        server_url: A SQLAlchemy (or libpq-style) URL of the server, Unix socket
            (``?host=/dir``) or TCP.
        pool_mode: ``"session"``, ``"transaction"`` or ``"statement"``.
        timeout: Seconds to wait for a first query to go through.
        **options: Further ``[pgbouncer]`` settings (``default_pool_size=2``,
            ``max_client_conn=...``, ``ignore_startup_parameters=...``), over DEFAULTS.

    Returns:
        The running :class:`PgBouncer`; stop it with ``stop()``.

    Raises:
        ValueError: For an unknown pool mode or a URL that names no host.
        RuntimeError: When pgbouncer exits or serves no query within ``timeout``.
    """
    if pool_mode not in POOL_MODES:
        raise ValueError(f"pool_mode must be one of {POOL_MODES}, not {pool_mode!r}")
    binary = find_pgbouncer()
    if binary is None:
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    target = make_url(server_url)
    host = target.host or _query_value(target.query.get("host"))
    if not host:
        raise ValueError(f"the server URL names no host: {server_url}")
    port = target.port or int(_query_value(target.query.get("port")) or 5432)
    user = target.username or "postgres"
    database = target.database or user
    server = {"host": host, "port": str(port), "dbname": database, "user": user}
    if target.password:
        server["password"] = target.password
    settings: dict[str, str | int] = {**DEFAULTS, **options, "pool_mode": pool_mode}
    uid_gid = _run_as(host)

    for attempt in range(_PORT_ATTEMPTS):
        bouncer = _launch(binary, server, settings, uid_gid, pool_mode)
        try:
            _wait_ready(bouncer, timeout)
            return bouncer
        except BaseException as exc:
            log = bouncer.log()
            bouncer.stop()
            if not isinstance(exc, RuntimeError):
                raise
            if "Address already in use" in log and attempt + 1 < _PORT_ATTEMPTS:
                continue
            raise RuntimeError(f"{exc}; pgbouncer's log:\n{log[-4000:]}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _launch(
    binary: str,
    server: dict[str, str],
    settings: dict[str, str | int],
    uid_gid: tuple[int, int] | None,
    pool_mode: str,
) -> PgBouncer:
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    try:
        port = _free_port()
        auth_file = directory / "userlist.txt"
        auth_file.write_text(_quote(server["user"], '"') + ' ""\n')
        connstr = " ".join(key + "=" + _quote(value, "'") for key, value in server.items())
        lines = [
            "[databases]",
            f"{server['dbname']} = {connstr}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",  # TCP only: no socket in /tmp to collide with
            "auth_type = trust",
            f"auth_file = {auth_file}",
            f"admin_users = {server['user']}",
            *(f"{key} = {value}" for key, value in settings.items()),
        ]
        ini = directory / "pgbouncer.ini"
        ini.write_text("\n".join(lines) + "\n")
        ini.chmod(0o600)
        auth_file.chmod(0o600)
        user: int | None = None
        group: int | None = None
        if uid_gid is not None:
            user, group = uid_gid
            for path in (directory, ini, auth_file):
                os.chown(path, user, group)
        with open(directory / "pgbouncer.log", "wb") as log:
            process = subprocess.Popen(
                [binary, str(ini)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=user,
                group=group,
                extra_groups=[] if uid_gid is not None else None,
            )
        return PgBouncer(process, directory, port, server["user"], server["dbname"], pool_mode)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _wait_ready(bouncer: PgBouncer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    for _ in range(int(timeout / _POLL_INTERVAL) + 1):
        code = bouncer.process.poll()
        if code is not None:
            raise RuntimeError(f"pgbouncer exited with code {code}")
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=bouncer.port,
                user=bouncer.user,
                dbname=bouncer.database,
                autocommit=True,
                connect_timeout=2,
            ) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.Error as exc:
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_INTERVAL)
    raise RuntimeError(f"pgbouncer served no query within {timeout:g} s: {last}")


def _run_as(host: str) -> tuple[int, int] | None:
    """The (uid, gid) to run pgbouncer as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        try:
            owner = os.stat(host)
        except OSError:
            pass  # pgbouncer will say that it cannot connect
        else:
            if owner.st_uid != 0:
                return owner.st_uid, owner.st_gid
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _quote(value: str, quote: str) -> str:
    # pgbouncer's connection strings and auth file both escape a quote by doubling it
    return quote + value.replace(quote, quote * 2) + quote


def _query_value(value: str | tuple[str, ...] | None) -> str | None:
    if isinstance(value, tuple):
        return value[0] if value else None
    return value
