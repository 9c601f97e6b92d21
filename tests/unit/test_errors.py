"""The error tree and the table that translates driver errors into it, without a database."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy.exc
from psycopg import errors as pg

from langchain_pgvec import (
    ConnectError,
    ConnectionLostError,
    DatabaseError,
    DimensionMismatchError,
    FilterError,
    InvalidInputError,
    PGVecError,
    PrivilegeError,
    QueryTimeoutError,
)
from langchain_pgvec._errors import Access, translate_errors, translated

ACCESS = Access("SELECT, INSERT", ("app.docs", "app.docs_c"), "webapp", "app")


def test_the_tree() -> None:
    assert issubclass(InvalidInputError, ValueError) and issubclass(FilterError, ValueError)
    assert issubclass(DimensionMismatchError, InvalidInputError)
    assert issubclass(PrivilegeError, PermissionError)
    assert issubclass(QueryTimeoutError, TimeoutError)
    assert issubclass(ConnectError, ConnectionError)
    assert issubclass(ConnectionLostError, ConnectionError)
    for kind in (PrivilegeError, ConnectError, ConnectionLostError, DatabaseError):
        assert issubclass(kind, PGVecError)


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (
            pg.QueryCanceled("canceling statement due to statement timeout"),
            QueryTimeoutError,
            ["statement_timeout"],
        ),
        (
            pg.InsufficientPrivilege("permission denied for table docs"),
            PrivilegeError,
            ["GRANT SELECT, INSERT ON app.docs, app.docs_c TO webapp"],
        ),
        (pg.InsufficientPrivilege("must be owner of table docs"), PrivilegeError, ["owner"]),
        (
            pg.InsufficientPrivilege("permission denied for schema app"),
            PrivilegeError,
            ["GRANT USAGE ON SCHEMA app TO webapp"],
        ),
        (
            pg.InsufficientPrivilege('permission denied to create extension "vector"'),
            PrivilegeError,
            ["superuser"],
        ),
        (
            pg.InsufficientPrivilege(
                'permission denied to create temporary tables in database "d"'
            ),
            PrivilegeError,
            ["GRANT TEMPORARY"],
        ),
        (
            pg.TooManyConnections("sorry, too many clients already"),
            ConnectError,
            ["max_connections"],
        ),
        (
            pg.TooManyConnections('too many connections for role "webapp"'),
            ConnectError,
            ["no connection slot"],
        ),
        (pg.InvalidCatalogName('database "nope" does not exist'), ConnectError, ["database"]),
        (
            pg.InvalidAuthorizationSpecification('role "nope" does not exist'),
            ConnectError,
            ["role"],
        ),
        (
            pg.InvalidPassword('password authentication failed for user "u"'),
            ConnectError,
            ["authentication failed"],
        ),
        (
            psycopg.OperationalError('connection failed: FATAL:  database "x" does not exist'),
            ConnectError,
            ["does not exist"],
        ),
        (
            psycopg.OperationalError("connection failed: Connection refused"),
            ConnectionLostError,
            ["reconnects"],
        ),
        (
            pg.AdminShutdown("terminating connection due to administrator command"),
            ConnectionLostError,
            [],
        ),
        (psycopg.InterfaceError("the connection is closed"), ConnectionLostError, []),
        (
            pg.InvalidSqlStatementName('prepared statement "_pg3_0" does not exist'),
            DatabaseError,
            ["prepared_statements=False"],
        ),
        (
            pg.DuplicatePreparedStatement('prepared statement "_pg3_0" already exists'),
            DatabaseError,
            ["pooler"],
        ),
        (
            pg.ProgramLimitExceeded("index row requires 9000 bytes"),
            InvalidInputError,
            ["2,000 bytes"],
        ),
        (pg.NumericValueOutOfRange("bigint out of range"), InvalidInputError, ["range"]),
        (pg.UndefinedTable('relation "x" does not exist'), DatabaseError, ['relation "x"']),
        (
            sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 0 reached"),
            ConnectError,
            ["pool_size"],
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_the_translation_table(
    error: BaseException, kind: type[PGVecError], words: list[str]
) -> None:
    made = translated(error, ACCESS)
    assert type(made) is kind, made
    for word in words:
        assert word in str(made)
    if kind is ConnectError:
        assert "reconnects" not in str(made)  # no promise that will not be kept


def test_sqlalchemy_wraps_the_driver_error() -> None:
    wrapped = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, pg.QueryCanceled("canceling statement due to statement timeout")
    )
    assert isinstance(translated(wrapped), QueryTimeoutError)


def test_translate_errors_keeps_the_cause_and_lets_others_through() -> None:
    with pytest.raises(PrivilegeError) as caught, translate_errors(ACCESS):
        raise pg.InsufficientPrivilege("permission denied for table docs")
    assert isinstance(caught.value.__cause__, pg.InsufficientPrivilege)
    with pytest.raises(KeyError), translate_errors():
        raise KeyError("ours")  # not a driver error: a bug, raised as it is
    with pytest.raises(FilterError), translate_errors():
        raise FilterError("already ours")
