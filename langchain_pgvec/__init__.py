"""langchain-pgvec: a fast, correct LangChain vector store on PostgreSQL + pgvector.

Example:
    >>> from langchain_pgvec import PGVecStore, HashingEmbeddings
    >>> store = PGVecStore(HashingEmbeddings(), collection_name="docs")
    >>> store.add_texts(["pgvector keeps embeddings next to your data"])
"""

from ._catalog import IndexInfo
from ._errors import (
    ConnectError,
    ConnectionLostError,
    DatabaseError,
    DimensionMismatchError,
    EmbeddedServerError,
    ExtensionError,
    FilterError,
    InvalidInputError,
    MigrationError,
    PerformanceWarning,
    PGVecError,
    PrivilegeError,
    QueryTimeoutError,
    SchemaError,
)
from ._index_specs import HNSW, IVFFlat
from ._migrate import CollectionReport, MigrationReport, migrate_from_langchain_postgres
from ._record_manager import PGVecRecordManager
from ._retriever import PGVecRetriever
from ._schema import DistanceStrategy, Tables, TableSpec, mapped_tables
from ._store import PGVecStore
from ._tuning import SearchSettings
from .embeddings import HashingEmbeddings

__all__ = [
    "HNSW",
    "CollectionReport",
    "ConnectError",
    "ConnectionLostError",
    "DatabaseError",
    "DimensionMismatchError",
    "DistanceStrategy",
    "EmbeddedServerError",
    "ExtensionError",
    "FilterError",
    "HashingEmbeddings",
    "IVFFlat",
    "IndexInfo",
    "InvalidInputError",
    "MigrationError",
    "MigrationReport",
    "PGVecError",
    "PGVecRecordManager",
    "PGVecRetriever",
    "PGVecStore",
    "PerformanceWarning",
    "PrivilegeError",
    "QueryTimeoutError",
    "SchemaError",
    "SearchSettings",
    "TableSpec",
    "Tables",
    "mapped_tables",
    "migrate_from_langchain_postgres",
]
__version__ = "0.1.0"
