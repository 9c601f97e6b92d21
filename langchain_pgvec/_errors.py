"""The exceptions langchain-pgvec raises, and the table that turns driver errors into them.

Every error the package raises is a ``PGVecError``; the ones caused by bad arguments
are also ``ValueError`` so that generic callers can catch them::

    PGVecError
    ├── InvalidInputError (ValueError)    texts, ids, metadata, vectors or arguments that
    │   │                                 cannot be stored or used as given
    │   └── DimensionMismatchError        a vector whose length is not the table's dimension
    ├── FilterError (ValueError)          a metadata filter that breaks FILTERS.md
    ├── SchemaError                       a table that does not fit the store's settings,
    │                                     or does not exist yet
    ├── ExtensionError                    pgvector is missing, or older than a feature needs
    ├── PrivilegeError (PermissionError)  the role lacks a privilege; names the GRANT
    ├── EmbeddedServerError               the embedded PostgreSQL is unavailable
    ├── MigrationError                    source tables that cannot be migrated as they are
    ├── QueryTimeoutError (TimeoutError)  a statement ran past the store's statement_timeout
    ├── ConnectError (ConnectionError)    no connection could be had: authentication, an
    │                                     unknown database or role, no connection slot
    │                                     left, or a pool that stayed busy
    ├── ConnectionLostError (ConnectionError)  the server could not be reached, or went away
    └── DatabaseError                     the server refused a statement for another reason

Messages name what was wrong (the table, the field, the dimension, the operator, the
privilege) and say how to fix it.

:func:`translate_errors` is the one place where errors of psycopg and SQLAlchemy
become these: a table of (error class or test, maker of the message), as httpx's
``_exceptions`` does for its transports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import sqlalchemy.exc
from psycopg import errors as pg


class PGVecError(Exception):
    """Base class of every error raised by langchain-pgvec."""


class InvalidInputError(PGVecError, ValueError):
    """Texts, ids, metadata, vectors or arguments that cannot be stored or used as given."""


class DimensionMismatchError(InvalidInputError):
    """A vector's length differs from the dimension of the embedding table."""


class FilterError(PGVecError, ValueError):
    """A metadata filter that does not follow the filter language."""


class SchemaError(PGVecError):
    """A table that does not fit the store's settings, or does not exist yet.

    Also raised for table, schema or index names that cannot be used, for a store
    without the full-text search a call needs, and for an index that cannot be built
    or dropped as asked.
    """


class ExtensionError(PGVecError):
    """The pgvector extension is missing, or older than a feature that was asked for needs.

    Missing: not installed in the database, and not created by a call that makes the
    tables (its role may not, or the store has ``create_extension=False``).
    """


class PrivilegeError(PGVecError, PermissionError):
    """The database role lacks a privilege the call needs.

    The message names the ``GRANT`` (or the role) that fixes it.
    """


class EmbeddedServerError(PGVecError):
    """The embedded PostgreSQL server could not be started or is not installed."""


class MigrationError(PGVecError):
    """The source tables of a migration cannot be migrated as they are."""


class QueryTimeoutError(PGVecError, TimeoutError):
    """A statement was cancelled by the store's ``statement_timeout``."""


class ConnectError(PGVecError, ConnectionError):
    """No connection could be had.

    The server refused it (authentication, an unknown database or role, no connection
    slot left, ``pg_hba.conf``), or every connection of the store's pool stayed busy
    for ``pool_timeout``; the message says which.
    """


class ConnectionLostError(PGVecError, ConnectionError):
    """PostgreSQL could not be reached, or closed the connection during the call.

    A write is one transaction, so a call that fails this way before its commit leaves
    nothing behind. The store needs no repair: its next call opens a fresh connection.
    """


class DatabaseError(PGVecError):
    """The server refused a statement for a reason no other error here names.

    The server's message is kept, and the psycopg (or SQLAlchemy) error is the
    ``__cause__``.
    """


class PerformanceWarning(UserWarning):
    """A search that is slower than it needs to be, and how to fix it.

    Issued (once per store, with ``warnings.warn``) when a search meets a large table
    that no vector index serving the store's distance strategy and vector type covers.
    """


# --------------------------------------------------------------------------- translation


@dataclass(frozen=True)
class Access:
    """What a call needs of the database, so that a refusal can name the fix.

    ``privileges``: what the call needs on ``tables`` (e.g. ``"SELECT"``); ``role``: the
    role the store connects as, when known.
    """

    privileges: str
    tables: tuple[str, ...] = ()
    role: str | None = None
    schema: str | None = None


def _message(error: BaseException) -> str:
    """The server's one-line message (psycopg's primary message, else the text)."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return " ".join(str(primary or error).split())


def _role(access: Access | None) -> str:
    return (access.role if access is not None else None) or "<the application's role>"


def _privilege(error: BaseException, access: Access | None) -> PGVecError:
    text = _message(error)
    role = _role(access)
    tables = ", ".join(access.tables) if access is not None and access.tables else "<the tables>"
    wanted = access.privileges if access is not None else "SELECT, INSERT, UPDATE, DELETE"
    if text.startswith("must be owner of"):
        fix = (
            "only the table's owner (or a superuser) may change the schema or build "
            "indexes: run this call (or store.create_tables(), pgvec init, pgvec index create) "
            "as that role"
        )
    elif "temporary tables" in text:
        fix = f"GRANT TEMPORARY ON DATABASE <the database> TO {role}"
    elif "extension" in text:
        fix = "a superuser must run CREATE EXTENSION vector; in that database"
    elif "for database" in text:
        fix = (
            f"GRANT CREATE ON DATABASE <the database> TO {role} (to let it create the "
            "schema; or have its owner create it, and the tables: store.create_tables() or "
            "pgvec init)"
        )
    elif "for schema" in text:
        schema = (access.schema if access is not None else None) or "<the schema>"
        fix = (
            f"GRANT USAGE ON SCHEMA {schema} TO {role} (and CREATE, to let it create the "
            "tables; or have the owner create them: store.create_tables() or pgvec init)"
        )
    else:
        fix = f"GRANT {wanted} ON {tables} TO {role}"
    return PrivilegeError(f"the database refused: {text}. To fix: {fix}")


def _timeout(error: BaseException, access: Access | None) -> PGVecError:
    if "statement timeout" not in _message(error):
        return DatabaseError(
            f"the statement was cancelled ({_message(error)}): another session cancelled "
            "it, or the server is shutting down. Nothing of this call was committed"
        )
    return QueryTimeoutError(
        f"the statement was cancelled by statement_timeout ({_message(error)}); raise the "
        "store's statement_timeout, add a vector index, or narrow the filter"
    )


def _lost(error: BaseException, access: Access | None) -> PGVecError:
    return ConnectionLostError(
        f"no connection to PostgreSQL ({_message(error)}); check that the server is running "
        "and reachable. Nothing of this call was committed (unless the connection went away "
        "during its very COMMIT), and the next call reconnects by itself"
    )


#: what a refused connection's message says, and what to tell the user (bare
#: OperationalErrors of a failed connect carry no SQLSTATE, only the server's text)
_REFUSALS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"too many clients|too many connections|remaining connection slots are reserved"
        ),
        "the server has no connection slot left (max_connections). Close stores you no "
        "longer use, let stores share engines (stores made from one URL do), lower the "
        "pool sizes (engine_kwargs), put a pooler in front, or raise max_connections",
    ),
    (
        re.compile(r"password authentication failed|authentication failed|no password supplied"),
        "authentication failed: check the user name and password in the URL",
    ),
    (
        re.compile(r'role "[^"]*" does not exist'),
        "that role does not exist on the server: check the user name in the URL",
    ),
    (
        re.compile(r'database "[^"]*" does not exist'),
        "that database does not exist: check the database name in the URL, or create it",
    ),
    (
        re.compile(r"no pg_hba\.conf entry|pg_hba"),
        "the server's pg_hba.conf admits no connection of this user from this host",
    ),
)


def _refused(error: BaseException, access: Access | None) -> PGVecError | None:
    text = _message(error)
    for pattern, meaning in _REFUSALS:
        if pattern.search(text):
            return ConnectError(f"the server refused the connection ({text}): {meaning}")
    return None


def _too_large(error: BaseException, access: Access | None) -> PGVecError:
    return InvalidInputError(
        f"the database cannot store or compare a value this large ({_message(error)}); "
        "shorten it: ids and collection names are limited to 2,000 bytes, a text's "
        "full-text index to 1 MB"
    )


def _out_of_range(error: BaseException, access: Access | None) -> PGVecError:
    return InvalidInputError(f"a number is out of the database's range ({_message(error)})")


def _prepared(error: BaseException, access: Access | None) -> PGVecError:
    return DatabaseError(
        f"{_message(error)}: a connection pooler in transaction mode (PgBouncer before 1.21, "
        "or without max_prepared_statements) shares server connections, and with them "
        "prepared statements. Make the store with prepared_statements=False"
    )


def _pool_timeout(error: BaseException, access: Access | None) -> PGVecError:
    return ConnectError(
        f"every connection of the store's pool stayed busy ({_message(error)}); make "
        "fewer calls at once, or a larger pool: engine_kwargs={'pool_size': ...}"
    )


def _other(error: BaseException, access: Access | None) -> PGVecError:
    return DatabaseError(f"the database refused the statement: {_message(error)}")


Maker = Callable[[BaseException, "Access | None"], "PGVecError | None"]

#: (driver error classes, maker), first match wins; the last row takes any other
#: psycopg or SQLAlchemy error
_TABLE: tuple[tuple[tuple[type[BaseException], ...], Maker], ...] = (
    ((pg.QueryCanceled,), _timeout),
    ((pg.InsufficientPrivilege,), _privilege),
    ((pg.TooManyConnections, pg.InvalidAuthorizationSpecification, pg.InvalidPassword), _refused),
    ((pg.InvalidCatalogName,), _refused),
    ((pg.InvalidSqlStatementName, pg.DuplicatePreparedStatement), _prepared),
    ((pg.ProgramLimitExceeded,), _too_large),
    ((pg.NumericValueOutOfRange,), _out_of_range),
    (
        (pg.AdminShutdown, pg.CrashShutdown, pg.CannotConnectNow, pg.ConnectionException),
        _lost,
    ),
    ((sqlalchemy.exc.TimeoutError,), _pool_timeout),
)


def translated(error: BaseException, access: Access | None = None) -> BaseException:
    """The PGVecError for a psycopg or SQLAlchemy ``error`` (itself for any other)."""
    if isinstance(error, PGVecError):
        return error
    cause = error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) else error
    if cause is None:
        cause = error
    for kinds, make in _TABLE:
        if isinstance(cause, kinds) or isinstance(error, kinds):
            made = make(cause, access)
            if made is not None:
                return made
    if type(cause) is psycopg.OperationalError:
        # a failed connect or a dropped socket: a refusal says what it is, else lost
        return _refused(cause, access) or _lost(cause, access)
    if isinstance(cause, psycopg.InterfaceError):
        return _lost(cause, access)  # "the connection is closed" and the like
    if isinstance(cause, psycopg.Error):
        return _other(cause, access)
    return error


#: what :func:`translate_errors` translates: the driver's errors, and SQLAlchemy's for
#: them and for its pool (its other errors are this package's bugs, and stay as they are)
DRIVER_ERRORS = (psycopg.Error, sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError)


@contextmanager
def translate_errors(access: Access | None = None) -> Iterator[None]:
    """Raise psycopg's and SQLAlchemy's errors as the PGVecErrors :func:`translated` names."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        error = translated(exc, access)
        if error is exc:
            raise
        raise error from exc
