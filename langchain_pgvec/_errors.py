"""The exceptions langchain-pgvec raises.

Every error the package raises on purpose is a ``PGVecError``; the ones caused by
bad arguments are also ``ValueError`` so that generic callers can catch them::

    PGVecError
    ├── InvalidInputError (ValueError)    texts, ids, metadata or vectors that cannot be stored
    │   └── DimensionMismatchError        a vector whose length is not the table's dimension
    ├── FilterError (ValueError)          a metadata filter that breaks FILTERS.md
    ├── SchemaError                       a table that does not fit the store's settings
    ├── ExtensionError                    the `vector` extension is missing and cannot be created
    ├── EmbeddedServerError               the embedded PostgreSQL is unavailable
    ├── MigrationError                    source tables that cannot be migrated as they are
    ├── QueryTimeoutError (TimeoutError)  a statement ran past the store's statement_timeout
    └── ConnectionLostError (ConnectionError)  the server could not be reached, or went away

Messages name what was wrong (the table, the field, the dimension, the operator) and
say how to fix it.
"""

from __future__ import annotations


class PGVecError(Exception):
    """Base class of every error raised by langchain-pgvec."""


class InvalidInputError(PGVecError, ValueError):
    """Texts, ids, metadata or vectors that cannot be stored as given."""


class DimensionMismatchError(InvalidInputError):
    """A vector's length differs from the dimension of the embedding table."""


class FilterError(PGVecError, ValueError):
    """A metadata filter that does not follow the filter language."""


class SchemaError(PGVecError):
    """An existing table that does not match what the store was configured with."""


class ExtensionError(PGVecError):
    """The pgvector extension is not installed and could not be created."""


class EmbeddedServerError(PGVecError):
    """The embedded PostgreSQL server could not be started or is not installed."""


class MigrationError(PGVecError):
    """The source tables of a migration cannot be migrated as they are."""


class QueryTimeoutError(PGVecError, TimeoutError):
    """A statement was cancelled by the store's ``statement_timeout``."""


class ConnectionLostError(PGVecError, ConnectionError):
    """PostgreSQL could not be reached, or closed the connection during the call.

    Nothing of the failed call was committed (a write is one transaction), and the
    store needs no repair: its next call opens a fresh connection.
    """
