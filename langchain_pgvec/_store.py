"""PGVecStore: the LangChain ``VectorStore`` over PostgreSQL + pgvector.

Each public method is a thin shell: validate the input (pure), learn the tables and
the collection id once (cached), build the statement (``_sql``, pure), run it on the
sync or the async engine, map rows to Documents (shared helpers). Sync and async
twins differ only in ``await``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, ClassVar

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from . import _hybrid, _ingest, _sql, _tuning
from ._engine import Connectable, Engines, abegin, aread, aretrying, begin, read, retrying
from ._errors import Access, InvalidInputError, SchemaError
from ._filters import compile_filter
from ._index_methods import IndexMethods
from ._indexes import DistanceStrategy, VectorType
from ._input import (
    Batch,
    check_full_text,
    check_ids,
    check_int,
    check_key,
    check_query,
    check_string,
    lookup_ids,
    prepare,
)
from ._mmr import check_lambda, maximal_marginal_relevance
from ._retriever import PGVecRetriever
from ._schema import Tables, TableSpec, decode_vectors
from ._search import Planner, Request, Steps
from ._setup import State, drop_collection, ensure, epoch, lock_collection, table_key
from ._tuning import SearchSettings

Filter = Mapping[str, Any]
#: seconds the store trusts what it read of the tables (indexes, row estimate, ...)
STATE_TTL = 60.0
#: statistics are refreshed after this store wrote or deleted this share of the
#: table's rows, and at least ANALYZE_MIN_ROWS
ANALYZE_SHARE = 0.2
ANALYZE_MIN_ROWS = 1000


def _documents(rows: Iterable[Row[Any]]) -> list[Document]:
    return [Document(id=r.id, page_content=r.content or "", metadata=r.metadata) for r in rows]


def _scored(rows: Iterable[Sequence[Any]]) -> list[tuple[Document, float]]:
    """(Document, distance) pairs from ``(id, content, metadata, distance, ...)`` rows."""
    return [(Document(id=r[0], page_content=r[1] or "", metadata=r[2]), float(r[3])) for r in rows]


def _fused(rows: Iterable[Sequence[Any]]) -> list[tuple[Document, float]]:
    """(Document, score) pairs from ``(id, content, metadata, score, ...)`` rows."""
    return _scored(rows)


def _in_order(documents: list[Document], ids: Sequence[str]) -> list[Document]:
    by_id = {doc.id: doc for doc in documents}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def _writable(state: State | None) -> State:
    if state is None:  # pragma: no cover - ensure(create=True) always returns a state
        raise SchemaError("the tables could not be created")
    return state


def _check_k(k: int, name: str = "k") -> None:
    check_int(k, name)


class PGVecStore(IndexMethods, VectorStore):
    """A LangChain vector store on PostgreSQL + pgvector.

    Documents live in one embedding table shared by many collections; ids are scoped
    to their collection. Every method has a native async twin that works on the same
    instance, whatever ``connection`` was given.

    Args:
        embeddings: Any LangChain ``Embeddings``.
        connection: A URL (``postgresql://...`` or ``postgresql+psycopg://...``), a
            SQLAlchemy ``Engine`` or ``AsyncEngine`` on psycopg 3, or None for
            ``$PGVEC_URL``, else the embedded server (``langchain_pgvec.embedded``).
        collection_name: The collection this store reads and writes.
        distance_strategy: Cosine (default), euclidean or inner product.
        embedding_length: The vectors' dimension; when None it is read from the
            existing table or taken from the first vectors written.
        vector_type: ``"vector"`` (float32) or ``"halfvec"`` (float16: half the
            memory, indexable up to 4,000 dimensions).
        schema: The PostgreSQL schema of the tables (None: the search path's first).
        collection_table: Name of the collection table.
        embedding_table: Name of the embedding table.
        collection_metadata: Metadata stored with a collection this store creates.
        relevance_score_fn: Override the distance-to-relevance mapping.
        search_settings: Defaults for approximate search (``ef_search``, iterative
            scans, ...); each search call may override them with keyword arguments.
        statement_timeout: Seconds after which PostgreSQL cancels any statement of
            this store (``QueryTimeoutError``); None for the server's setting.
        full_text: Enable full-text and hybrid search: True for the ``english`` text
            search configuration, or a configuration's name. Adds a generated
            ``tsvector`` column and a GIN index (to an existing table too, when this
            role owns it).
        create_extension: Run ``CREATE EXTENSION vector`` when the extension is
            missing (it needs a superuser). False for servers where it is managed
            elsewhere: a missing extension is then an ``ExtensionError``.
        engine_kwargs: Extra arguments for engines this store creates from a URL (each
            pool holds ``pool_size`` connections, 5 by default, and no overflow).
        prepared_statements: Whether psycopg may prepare statements on the server.
            None (default): yes, except on connections that go through a pooler or
            proxy (the server listens on another port or socket than the one
            connected to); False: never (a pooler in transaction mode that this
            cannot see, such as one on the server's own port); True: always
            (PgBouncer 1.21+ with ``max_prepared_statements``, or a session pooler).
        share_engines: Share the engines (and their connections) of this process's
            other stores made from the same URL and arguments (default); False for
            engines of this store's own.

    Example:
        .. code-block:: python

            from langchain_pgvec import PGVecStore, HashingEmbeddings

            store = PGVecStore(HashingEmbeddings(), collection_name="docs")
            store.add_texts(["PostgreSQL stores vectors"], metadatas=[{"year": 2024}])
            store.similarity_search("vectors", k=1, filter={"year": {"$gte": 2020}})
    """

    _DEFAULT_BATCH: ClassVar[int] = 1000

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        connection: Connectable = None,
        collection_name: str = "langchain",
        distance_strategy: DistanceStrategy | str = DistanceStrategy.COSINE,
        embedding_length: int | None = None,
        vector_type: VectorType = "vector",
        schema: str | None = None,
        collection_table: str = "pgvec_collection",
        embedding_table: str = "pgvec_embedding",
        collection_metadata: dict[str, Any] | None = None,
        relevance_score_fn: Callable[[float], float] | None = None,
        search_settings: SearchSettings | None = None,
        statement_timeout: float | None = None,
        full_text: bool | str = False,
        create_extension: bool = True,
        engine_kwargs: dict[str, Any] | None = None,
        prepared_statements: bool | None = None,
        share_engines: bool = True,
    ) -> None:
        if not isinstance(collection_name, str) or not collection_name:
            raise InvalidInputError(
                f"collection_name must be a non-empty string, got {collection_name!r}"
            )
        check_string(collection_name, "collection_name")
        check_key(collection_name, "collection_name")
        self._embeddings = embeddings
        self.collection_name = collection_name
        self.distance_strategy = DistanceStrategy(distance_strategy)
        self.override_relevance_score_fn = relevance_score_fn
        self._spec = TableSpec(
            schema=schema,
            collection_table=collection_table,
            embedding_table=embedding_table,
            dimension=embedding_length,
            vector_type=vector_type,
            text_search_config="english" if full_text is True else (full_text or None),
        )
        self._collection_metadata = dict(collection_metadata or {})
        self._create_extension = bool(create_extension)
        timeout_ms = None if statement_timeout is None else max(1, int(statement_timeout * 1000))
        self.search_settings = (search_settings or SearchSettings()).merged(
            SearchSettings(statement_timeout_ms=timeout_ms)
        )
        self._engines = Engines.open(
            connection, engine_kwargs, prepared_statements, share=share_engines
        )
        self._table_key = table_key(self._engines.url, self._spec)
        role = self._engines.url.username
        names = (self._spec.qualified_embedding_table, self._spec.qualified_collection_table)
        self._read_access = Access("SELECT", names, role, schema)
        self._write_access = Access("SELECT, INSERT, UPDATE, DELETE", names, role, schema)
        self._state: State | None = None
        self._planner_made: Planner | None = None
        #: rows this store wrote or deleted since the table's statistics were last
        #: refreshed (by this store, or when the state was read)
        self._changed = 0

    # ------------------------------------------------------------------ plumbing

    @property
    def embeddings(self) -> Embeddings:
        """The embeddings model."""
        return self._embeddings

    @property
    def engine(self) -> Engine:
        """The sync SQLAlchemy engine (created on first use when only async was given)."""
        return self._engines.sync

    @property
    def async_engine(self) -> AsyncEngine:
        """The async SQLAlchemy engine (created on first use when only sync was given)."""
        return self._engines.async_

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return self.override_relevance_score_fn or self.distance_strategy.relevance

    def _known(
        self, state: State | None, dimension: int | None, create: bool, full_text: bool = False
    ) -> bool:
        if state is None or time.monotonic() - state.read_at > STATE_TTL:
            return False
        if full_text and not state.full_text:  # its owner may have added the column since
            return False
        if state.epoch != epoch(self._table_key):
            return False
        if create and state.collection_id is None:
            return False
        table_dim = state.tables.spec.dimension
        return dimension is None or table_dim is None or table_dim == dimension

    def _keep(self, state: State | None, seen: int) -> State | None:
        if state is not None:
            state = dataclasses.replace(state, epoch=seen)
            if state.collection_id is not None:
                self._state = state
        return state

    def _ensure(
        self, dimension: int | None = None, *, create: bool = False, full_text: bool = False
    ) -> State | None:
        if self._known(self._state, dimension, create, full_text):
            return self._state
        seen = epoch(self._table_key)
        access = self._write_access if create else self._read_access
        with begin(self._engines.sync, vectors=False, access=access) as conn:
            state = ensure(
                conn,
                self._spec,
                self.collection_name,
                dimension=dimension,
                create=create,
                collection_metadata=self._collection_metadata,
                create_extension=self._create_extension,
            )
        return self._keep(state, seen)

    async def _aensure(
        self, dimension: int | None = None, *, create: bool = False, full_text: bool = False
    ) -> State | None:
        if self._known(self._state, dimension, create, full_text):
            return self._state
        seen = epoch(self._table_key)
        access = self._write_access if create else self._read_access
        async with abegin(self._engines.async_, vectors=False, access=access) as conn:
            state = await conn.run_sync(
                ensure,
                self._spec,
                self.collection_name,
                dimension=dimension,
                create=create,
                collection_metadata=self._collection_metadata,
                create_extension=self._create_extension,
            )
        return self._keep(state, seen)

    def _prelude(self) -> Any:
        """Settings for a call that is not a search (only the statement timeout)."""
        timeout = self.search_settings.statement_timeout_ms
        return None if timeout is None else _tuning.set_local({"statement_timeout": str(timeout)})

    def _writing(self) -> AbstractContextManager[Connection]:
        """The transaction of a write call."""
        return begin(self._engines.sync, prelude=self._prelude(), access=self._write_access)

    def _awriting(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """Async twin of :meth:`_writing`."""
        return abegin(self._engines.async_, prelude=self._prelude(), access=self._write_access)

    def _reading(self) -> AbstractContextManager[Connection]:
        """The transaction of a read call that is not a search."""
        return begin(self._engines.sync, prelude=self._prelude(), access=self._read_access)

    def _areading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """Async twin of :meth:`_reading`."""
        return abegin(self._engines.async_, prelude=self._prelude(), access=self._read_access)

    def _changes(self, added: int = 0, removed: int = 0) -> Tables | None:
        """Count rows this store wrote or deleted (the row estimate follows, for the
        unindexed-table warning); the tables whose statistics are now due, if any:
        after changes to :data:`ANALYZE_SHARE` of the rows, and at least
        :data:`ANALYZE_MIN_ROWS`, when the role may analyze the table."""
        if self._planner_made is not None:
            self._planner_made.forget()
        state = self._state
        if state is None:
            return None
        self._changed += added + removed
        rows = max(0, state.approx_rows + added - removed)
        self._state = dataclasses.replace(state, approx_rows=rows)
        if not state.can_analyze or self._changed < max(ANALYZE_MIN_ROWS, ANALYZE_SHARE * rows):
            return None
        return state.tables

    def _wrote(self, added: int = 0, removed: int = 0) -> None:
        """After a write committed: refresh the statistics when it changed enough (the
        state, row estimate included, is then read again)."""
        tables = self._changes(added, removed)
        if tables is not None and self._refresh_statistics(tables, "planner"):
            self._changed = 0

    async def _awrote(self, added: int = 0, removed: int = 0) -> None:
        """Async twin of :meth:`_wrote`."""
        tables = self._changes(added, removed)
        if tables is not None and await self._arefresh_statistics(tables, "planner"):
            self._changed = 0

    def _prepared(self, batch: Batch) -> Batch:
        """``batch``, checked for what this store's schema adds (a full-text index)."""
        if self._spec.text_search_config is not None:
            check_full_text(batch.texts)
        return batch

    def _writable(self, dimension: int) -> State:
        return _writable(self._ensure(dimension, create=True))

    async def _awritable(self, dimension: int) -> State:
        return _writable(await self._aensure(dimension, create=True))

    def _lock(self, conn: Connection, tables: Tables) -> uuid.UUID:
        """Lock (or create) the collection inside a write transaction; refresh the cache."""
        cid = lock_collection(conn, tables, self.collection_name, self._collection_metadata)
        if self._state is not None and self._state.collection_id != cid:
            self._state = dataclasses.replace(self._state, collection_id=cid)
        return cid

    def _where(self, state: State, filter: Filter | None) -> ColumnElement[bool] | None:
        if not filter:
            return None
        return compile_filter(filter, state.tables.embedding.c.metadata)

    def create_tables(self) -> None:
        """Create the extension, tables and collection now rather than on first write.

        Needs ``embedding_length`` (or an existing table) to know the dimension.
        """
        if self._ensure(self._spec.dimension, create=True) is None:
            raise InvalidInputError(
                "cannot create the tables without a dimension: pass embedding_length"
            )

    async def acreate_tables(self) -> None:
        """Async twin of :meth:`create_tables`."""
        if await self._aensure(self._spec.dimension, create=True) is None:
            raise InvalidInputError(
                "cannot create the tables without a dimension: pass embedding_length"
            )

    def grant(self, role: str, *, write: bool = True) -> None:
        """Let another database role use this store's tables; run as their owner.

        The least-privilege setup: the owner makes the tables (:meth:`create_tables`)
        and grants an application role what it needs, and that role's stores then
        issue no DDL (see the README's production section).

        Args:
            role: The role to grant to.
            write: ``SELECT, INSERT, UPDATE, DELETE`` on both tables (an application
                that adds and deletes documents); False: ``SELECT`` only (searches).
                With a ``schema``, ``USAGE`` on it too.

        Raises:
            SchemaError: The tables do not exist yet.
        """
        statements = self._grants(self._ensure(), role, write)
        with self._writing() as conn:
            for statement in statements:
                conn.execute(statement)

    async def agrant(self, role: str, *, write: bool = True) -> None:
        """Async twin of :meth:`grant`."""
        statements = self._grants(await self._aensure(), role, write)
        async with self._awriting() as conn:
            for statement in statements:
                await conn.execute(statement)

    def _grants(self, state: State | None, role: str, write: bool) -> list[Any]:
        if not isinstance(role, str) or not role:
            raise InvalidInputError(f"role must be a role's name, got {role!r}")
        check_string(role, "role")
        if state is None:
            raise SchemaError(
                f"table {self._spec.qualified_embedding_table!r} does not exist yet: call "
                "create_tables() (with embedding_length) first"
            )
        return _sql.grants(state.tables, role, "write" if write else "read")

    # ------------------------------------------------------------------ writing

    def add_embeddings(
        self,
        texts: Iterable[str],
        embeddings: Any,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Upsert texts with precomputed embeddings, in one transaction.

        Args:
            texts: The contents.
            embeddings: One vector per text: a list of lists or a 2-D numpy array.
            metadatas: One dict per text (JSON-serialisable), or None.
            ids: One id per text (None entries are generated), or None to generate all.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            The ids, in input order.
        """
        batch = self._prepared(prepare(texts, embeddings, metadatas, ids))
        if not len(batch):
            return []
        state = self._writable(batch.vectors.shape[1])
        _ingest.check_dimension(state.tables, batch)
        with self._writing() as conn:
            _ingest.write(conn, state.tables, self._lock(conn, state.tables), batch)
        self._wrote(added=len(batch))
        return batch.ids

    async def aadd_embeddings(
        self,
        texts: Iterable[str],
        embeddings: Any,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of :meth:`add_embeddings`."""
        batch = self._prepared(prepare(texts, embeddings, metadatas, ids))
        if not len(batch):
            return []
        state = await self._awritable(batch.vectors.shape[1])
        _ingest.check_dimension(state.tables, batch)
        async with self._awriting() as conn:
            cid = await conn.run_sync(self._lock, state.tables)
            await _ingest.awrite(conn, state.tables, cid, batch)
        await self._awrote(added=len(batch))
        return batch.ids

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts, all in one transaction.

        Everything is validated before the first embedding call. Texts are embedded
        ``batch_size`` at a time; while one batch is written, the next is embedded
        (in a worker thread, one embedding call at a time).

        Args:
            texts: The contents.
            metadatas: One dict per text, or None.
            ids: One id per text (None entries are generated), or None to generate all.
            batch_size: Texts per embedding call (default 1,000).
            show_progress: A progress bar on stderr; None shows one for 1,000+ texts
                when stderr is a terminal.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            The ids, in input order.
        """
        rows = self._prepared(_ingest.plan(texts, metadatas, ids))
        if not len(rows):
            return []
        spans = _ingest.spans(len(rows), self._DEFAULT_BATCH if batch_size is None else batch_size)
        embed = self._embeddings.embed_documents
        with _ingest.progress(len(rows), show_progress) as bar, ThreadPoolExecutor(1) as pool:
            vectors = embed(rows.texts[slice(*spans[0])])
            state = self._writable(len(vectors[0]) if vectors else 0)
            with self._writing() as conn:
                cid = self._lock(conn, state.tables)
                for number, span in enumerate(spans):
                    following = spans[number + 1] if number + 1 < len(spans) else None
                    ahead = following and pool.submit(embed, rows.texts[slice(*following)])
                    batch = _ingest.with_vectors(rows, span, vectors, state.tables)
                    _ingest.write(conn, state.tables, cid, batch)
                    bar.update(len(batch))
                    vectors = ahead.result() if ahead else []
        self._wrote(added=len(rows))
        return rows.ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of :meth:`add_texts` (the next batch embeds in a task)."""
        rows = self._prepared(_ingest.plan(texts, metadatas, ids))
        if not len(rows):
            return []
        spans = _ingest.spans(len(rows), self._DEFAULT_BATCH if batch_size is None else batch_size)
        embed = self._embeddings.aembed_documents
        with _ingest.progress(len(rows), show_progress) as bar:
            vectors = await embed(rows.texts[slice(*spans[0])])
            state = await self._awritable(len(vectors[0]) if vectors else 0)
            async with self._awriting() as conn:
                cid = await conn.run_sync(self._lock, state.tables)
                for number, span in enumerate(spans):
                    following = spans[number + 1] if number + 1 < len(spans) else None
                    ahead = following and asyncio.ensure_future(
                        embed(rows.texts[slice(*following)])
                    )
                    batch = _ingest.with_vectors(rows, span, vectors, state.tables)
                    await _ingest.awrite(conn, state.tables, cid, batch)
                    bar.update(len(batch))
                    vectors = await ahead if ahead else []
        await self._awrote(added=len(rows))
        return rows.ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Upsert documents; ``Document.id`` is honoured (generated where None).

        Args:
            documents: The documents.
            **kwargs: ``ids`` overrides the documents' ids.

        Returns:
            The ids, in input order.
        """
        texts, metadatas, ids = self._unpack(documents, kwargs.pop("ids", None))
        return self.add_texts(texts, metadatas, ids=ids, **kwargs)

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Async twin of :meth:`add_documents`."""
        texts, metadatas, ids = self._unpack(documents, kwargs.pop("ids", None))
        return await self.aadd_texts(texts, metadatas, ids=ids, **kwargs)

    @staticmethod
    def _unpack(
        documents: Sequence[Document], ids: Sequence[str | None] | None
    ) -> tuple[list[str], list[dict[str, Any]], list[str]]:
        documents = list(documents)
        for position, document in enumerate(documents):
            if not isinstance(document, Document):
                raise InvalidInputError(
                    f"documents[{position}] is a {type(document).__name__}, not a LangChain "
                    "Document; pass Document(page_content=..., metadata=...) objects"
                )
        if ids is None:
            ids = [doc.id for doc in documents]
        return (
            [doc.page_content for doc in documents],
            [doc.metadata for doc in documents],
            check_ids(ids, len(documents)),
        )

    # ------------------------------------------------------------------ reading

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order asked (missing ids are skipped)."""
        ids = lookup_ids(ids)
        state = self._ensure()
        if not ids or state is None or state.collection_id is None:
            return []
        with self._reading() as conn:
            rows = conn.execute(_sql.get_by_ids(state.tables, state.collection_id, ids))
            return _in_order(_documents(rows), ids)

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async twin of :meth:`get_by_ids`."""
        ids = lookup_ids(ids)
        state = await self._aensure()
        if not ids or state is None or state.collection_id is None:
            return []
        async with self._areading() as conn:
            rows = await conn.execute(_sql.get_by_ids(state.tables, state.collection_id, ids))
            return _in_order(_documents(rows), ids)

    def get(
        self, filter: Filter | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[Document]:
        """Documents matching a metadata filter, in id order (all when no filter)."""
        self._check_page(limit, offset)
        state = self._ensure()
        if state is None or state.collection_id is None:
            return []
        statement = _sql.get_where(
            state.tables,
            state.collection_id,
            self._where(state, filter),
            limit=limit,
            offset=offset,
        )
        with self._reading() as conn:
            return _documents(conn.execute(statement))

    async def aget(
        self, filter: Filter | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[Document]:
        """Async twin of :meth:`get`."""
        self._check_page(limit, offset)
        state = await self._aensure()
        if state is None or state.collection_id is None:
            return []
        statement = _sql.get_where(
            state.tables,
            state.collection_id,
            self._where(state, filter),
            limit=limit,
            offset=offset,
        )
        async with self._areading() as conn:
            return _documents(await conn.execute(statement))

    @staticmethod
    def _check_page(limit: int | None, offset: int) -> None:
        if limit is not None:
            check_int(limit, "limit")
        check_int(offset, "offset")

    def count(self, filter: Filter | None = None) -> int:
        """How many documents of the collection match the filter (all when no filter)."""
        state = self._ensure()
        if state is None or state.collection_id is None:
            return 0
        statement = _sql.count(state.tables, state.collection_id, self._where(state, filter))
        with self._reading() as conn:
            return int(conn.execute(statement).scalar_one())

    async def acount(self, filter: Filter | None = None) -> int:
        """Async twin of :meth:`count`."""
        state = await self._aensure()
        if state is None or state.collection_id is None:
            return 0
        statement = _sql.count(state.tables, state.collection_id, self._where(state, filter))
        async with self._areading() as conn:
            return int((await conn.execute(statement)).scalar_one())

    # ------------------------------------------------------------------ deleting

    def delete(
        self, ids: Sequence[str] | None = None, *, filter: Filter | None = None, **kwargs: Any
    ) -> bool:
        """Delete documents by id, or by metadata filter.

        Args:
            ids: Ids to delete (ids that do not exist are ignored).
            filter: A metadata filter; every matching document of the collection goes.
            **kwargs: Unused; accepted for LangChain compatibility.

        Returns:
            True.
        """
        self._check_delete(ids, filter)
        state = self._ensure()
        if state is None or state.collection_id is None:
            return True
        statement = self._delete_statement(state, ids, filter)
        with self._writing() as conn:
            removed = retrying(conn, lambda: conn.execute(statement)).rowcount
        self._wrote(removed=removed)
        return True

    async def adelete(
        self, ids: Sequence[str] | None = None, *, filter: Filter | None = None, **kwargs: Any
    ) -> bool:
        """Async twin of :meth:`delete`."""
        self._check_delete(ids, filter)
        state = await self._aensure()
        if state is None or state.collection_id is None:
            return True
        statement = self._delete_statement(state, ids, filter)
        async with self._awriting() as conn:
            removed = (await aretrying(conn, lambda: conn.execute(statement))).rowcount
        await self._awrote(removed=removed)
        return True

    @staticmethod
    def _check_delete(ids: Sequence[str] | None, filter: Filter | None) -> None:
        if ids is None and filter is None:
            raise InvalidInputError(
                "delete() needs ids or a filter; to remove the whole collection call "
                "delete_collection(), to remove every document pass filter={}"
            )
        if ids is not None:
            lookup_ids(ids)

    def _delete_statement(
        self, state: State, ids: Sequence[str] | None, filter: Filter | None
    ) -> Any:
        assert state.collection_id is not None
        where = self._where(state, filter) if filter is not None else None
        if ids is not None:
            statement = _sql.delete_ids(state.tables, state.collection_id, list(ids))
            return statement if where is None else statement.where(where)
        return _sql.delete_where(state.tables, state.collection_id, where)

    def delete_collection(self) -> None:
        """Delete this store's collection and all its documents."""
        state = self._ensure()
        if state is not None:
            with self._writing() as conn:
                removed = drop_collection(conn, state.tables, self.collection_name)
            self._wrote(removed=removed)
        self._state = None

    async def adelete_collection(self) -> None:
        """Async twin of :meth:`delete_collection`."""
        state = await self._aensure()
        if state is not None:
            async with self._awriting() as conn:
                removed = await conn.run_sync(drop_collection, state.tables, self.collection_name)
            await self._awrote(removed=removed)
        self._state = None

    # ------------------------------------------------------------------ searching

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents with their distance (lower is closer)."""
        _check_k(k)
        state = self._ensure(len(embedding))
        if not k or state is None or state.collection_id is None:
            return []
        return _scored(self._run(self._steps(state, embedding, k, filter, kwargs)))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score_by_vector`."""
        _check_k(k)
        state = await self._aensure(len(embedding))
        if not k or state is None or state.collection_id is None:
            return []
        return _scored(await self._arun(self._steps(state, embedding, k, filter, kwargs)))

    def _run(self, steps: Steps) -> list[Any]:
        """The rows of a search's steps (the same generator for both runners)."""
        return read(self._engines, steps, self._read_access)

    async def _arun(self, steps: Steps) -> list[Any]:
        """Async twin of :meth:`_run`."""
        return await aread(self._engines, steps, self._read_access)

    @property
    def _planner(self) -> Planner:
        planner = self._planner_made
        if planner is None:
            planner = self._planner_made = Planner(self._engines.dialect, self.distance_strategy)
        return planner

    def _request(
        self,
        state: State,
        embedding: Sequence[float],
        k: int,
        filter: Filter | None,
        kwargs: dict[str, Any],
        *,
        with_vectors: bool = False,
    ) -> Request:
        """One search, validated (before any I/O); warns once about a missing index."""
        self._warn_if_unindexed(state)
        settings = self.search_settings
        return self._planner.request(
            state, embedding, k, filter, kwargs, settings, with_vectors=with_vectors
        )

    def _steps(
        self,
        state: State,
        embedding: Sequence[float],
        k: int,
        filter: Filter | None,
        kwargs: dict[str, Any],
        *,
        with_vectors: bool = False,
    ) -> Steps:
        """The statements of one search (see ``_search``), for either runner."""
        request = self._request(state, embedding, k, filter, kwargs, with_vectors=with_vectors)
        return self._planner.steps(request)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` nearest documents to a vector."""
        pairs = self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`similarity_search_by_vector`."""
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents to a query with their distance (lower is closer)."""
        vector = self._embeddings.embed_query(check_query(query))
        return self.similarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score`."""
        vector = await self._embeddings.aembed_query(check_query(query))
        return await self.asimilarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    def similarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to a query, optionally filtered by metadata."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`similarity_search`."""
        pairs = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        relevance = self._select_relevance_score_fn()
        pairs = self.similarity_search_with_score(query, k, **kwargs)
        return [(doc, relevance(score)) for doc, score in pairs]

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        relevance = self._select_relevance_score_fn()
        pairs = await self.asimilarity_search_with_score(query, k, **kwargs)
        return [(doc, relevance(score)) for doc, score in pairs]

    # ------------------------------------------------------------------ MMR

    def max_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """MMR over the ``fetch_k`` nearest candidates, in MMR's selection order."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        check_lambda(lambda_mult)
        state = self._ensure(len(embedding))
        if not k or not fetch_k or state is None or state.collection_id is None:
            return []
        steps = self._steps(state, embedding, fetch_k, filter, kwargs, with_vectors=True)
        return self._mmr(state, embedding, self._run(steps), k, lambda_mult)

    async def amax_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`max_marginal_relevance_search_with_score_by_vector`."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        check_lambda(lambda_mult)
        state = await self._aensure(len(embedding))
        if not k or not fetch_k or state is None or state.collection_id is None:
            return []
        steps = self._steps(state, embedding, fetch_k, filter, kwargs, with_vectors=True)
        return self._mmr(state, embedding, await self._arun(steps), k, lambda_mult)

    @staticmethod
    def _mmr(
        state: State,
        embedding: Sequence[float],
        rows: Sequence[Sequence[Any]],
        k: int,
        lambda_mult: float,
    ) -> list[tuple[Document, float]]:
        if not rows:
            return []
        candidates = decode_vectors([r[4] for r in rows], state.tables.spec.vector_type)
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), candidates, k=k, lambda_mult=lambda_mult
        )
        return _scored([rows[i] for i in chosen])  # Documents for the k chosen only

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR documents for a vector, in MMR's selection order."""
        pairs = self.max_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )
        return [doc for doc, _ in pairs]

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search_by_vector`."""
        pairs = await self.amax_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )
        return [doc for doc, _ in pairs]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR documents for a query: relevant to it and diverse among themselves."""
        vector = self._embeddings.embed_query(check_query(query))
        return self.max_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, **kwargs
        )

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search`."""
        vector = await self._embeddings.aembed_query(check_query(query))
        return await self.amax_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, **kwargs
        )

    # ------------------------------------------------------------------ full text, hybrid

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        fetch_k: int | None = None,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Full-text and vector search fused by reciprocal rank fusion, in one statement.

        Needs ``full_text`` enabled on the store. The query takes ``websearch_to_tsquery``
        syntax (``"quoted phrase"``, ``or``, ``-excluded``); a query with no searchable
        words falls back to the vector leg alone.

        Args:
            query: The query text (embedded for the vector leg).
            k: Documents to return.
            filter: A metadata filter, applied inside both legs.
            fetch_k: Candidates each leg ranks (default ``max(20, 4 * k)``).
            rrf_k: The RRF constant: larger values flatten the rank contributions.
            weights: (vector weight, full-text weight).
            **kwargs: Per-call search settings (``ef_search=`` ...).

        Returns:
            (document, fused score) pairs, highest score first.
        """
        vector = self._embeddings.embed_query(check_query(query))
        state = self._ensure(len(vector), full_text=True)
        if not k or state is None or state.collection_id is None:
            return []
        steps = self._hybrid_steps(state, vector, query, k, filter, fetch_k, rrf_k, weights, kwargs)
        return _fused(self._run(steps))

    async def ahybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        fetch_k: int | None = None,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`hybrid_search_with_score`."""
        vector = await self._embeddings.aembed_query(check_query(query))
        state = await self._aensure(len(vector), full_text=True)
        if not k or state is None or state.collection_id is None:
            return []
        steps = self._hybrid_steps(state, vector, query, k, filter, fetch_k, rrf_k, weights, kwargs)
        return _fused(await self._arun(steps))

    def _hybrid_steps(
        self,
        state: State,
        embedding: Sequence[float],
        query: str,
        k: int,
        filter: Filter | None,
        fetch_k: int | None,
        rrf_k: int,
        weights: tuple[float, float],
        kwargs: dict[str, Any],
    ) -> Steps:
        """The statements of one hybrid search, its arguments checked first."""
        _check_k(k)
        candidates = max(20, 4 * k) if fetch_k is None else fetch_k
        _check_k(candidates, "fetch_k")
        _check_k(rrf_k, "rrf_k")
        if len(weights) != 2 or not all(math.isfinite(w) and w >= 0 for w in weights):
            raise InvalidInputError(
                f"weights must be two non-negative numbers (vector, text), got {weights!r}"
            )
        _hybrid.check_search(state.tables, query, present=state.full_text)
        request = self._request(state, embedding, candidates, filter, kwargs)
        pair = (float(weights[0]), float(weights[1]))
        return self._planner.hybrid_steps(request, query, k, rrf_k, pair)

    def hybrid_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents from :meth:`hybrid_search_with_score`, without the scores."""
        return [doc for doc, _ in self.hybrid_search_with_score(query, k, filter, **kwargs)]

    async def ahybrid_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`hybrid_search`."""
        pairs = await self.ahybrid_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def full_text_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Keyword search only (``websearch_to_tsquery``), ranked by ``ts_rank_cd``.

        Returns:
            (document, rank) pairs, highest first; empty for a query with no
            searchable words.
        """
        _check_k(k)
        state = self._ensure(full_text=True)
        if not k or state is None or state.collection_id is None:
            return []
        steps = self._full_text_steps(state, query, k, filter)
        return _fused(self._run(steps))

    async def afull_text_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`full_text_search_with_score`."""
        _check_k(k)
        state = await self._aensure(full_text=True)
        if not k or state is None or state.collection_id is None:
            return []
        steps = self._full_text_steps(state, query, k, filter)
        return _fused(await self._arun(steps))

    def _full_text_steps(self, state: State, query: str, k: int, filter: Filter | None) -> Steps:
        _hybrid.check_search(state.tables, query, present=state.full_text)
        where = self._where(state, filter)
        return self._planner.full_text_steps(state, query, k, where, self.search_settings)

    def full_text_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents from :meth:`full_text_search_with_score`, without the ranks."""
        return [doc for doc, _ in self.full_text_search_with_score(query, k, filter, **kwargs)]

    async def afull_text_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`full_text_search`."""
        pairs = await self.afull_text_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def as_retriever(self, **kwargs: Any) -> PGVecRetriever:
        """A LangChain retriever over this store.

        ``search_type`` is ``"similarity"`` (default), ``"mmr"``,
        ``"similarity_score_threshold"``, ``"hybrid"`` or ``"full_text"``;
        ``search_kwargs`` go to the matching search method (``k``, ``filter``,
        ``fetch_k``, ``ef_search``, ...).
        """
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return PGVecRetriever(vectorstore=self, tags=tags, **kwargs)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Make a store (``kwargs`` go to the constructor) and add ``texts`` to it."""
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Async twin of :meth:`from_texts`."""
        store = cls(embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_embeddings(
        cls,
        text_embeddings: Sequence[tuple[str, Sequence[float]]],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> PGVecStore:
        """Make a store from (text, vector) pairs computed elsewhere."""
        store = cls(embedding, **kwargs)
        texts = [text for text, _ in text_embeddings]
        store.add_embeddings(texts, [vector for _, vector in text_embeddings], metadatas, ids)
        return store

    def close(self) -> None:
        """Close the connection pools this store created (never an engine you passed)."""
        self._engines.dispose()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await self._engines.adispose()

    def __repr__(self) -> str:
        return (
            f"PGVecStore(collection_name={self.collection_name!r}, "
            f"table={self._spec.qualified_embedding_table!r}, "
            f"distance_strategy={self.distance_strategy.value!r})"
        )
