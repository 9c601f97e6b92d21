"""Bulk loading with COPY BINARY.

A batch of rows travels as PostgreSQL's binary COPY stream, encoded here chunk by
chunk (vectors straight from the float32 matrix, no per-value Python work), so a call
with any number of rows never meets the 65,535-parameter limit and never holds more
than one chunk of the encoded payload.

Two routes, chosen per call inside the call's transaction:

- none of the ids exist yet: COPY straight into the embedding table, in a savepoint;
  should a concurrent writer insert one of the ids meanwhile, the unique violation
  rolls the savepoint back and the rows take the second route;
- otherwise: COPY into a temporary staging table (dropped at commit), then one
  ``INSERT ... SELECT ... ON CONFLICT (collection_id, id) DO UPDATE``.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import uuid
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import psycopg
from psycopg import sql
from psycopg.copy import AsyncQueuedLibpqWriter, QueuedLibpqWriter
from psycopg.errors import UniqueViolation
from sqlalchemy import Column, Connection, MetaData, Table, Text, literal, select
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateTable, DropTable

from . import _sql
from ._bootstrap import dimension_error
from ._engine import aretrying, retrying
from ._schema import Tables, vector_column_type
from ._validate import Batch, as_matrix, check_int, metadata_texts, prepare

#: rows per COPY chunk: bounds the encoded payload held in memory at once (the queued
#: writer holds at most a few chunks while a thread sends them)
CHUNK_ROWS = 1000
#: below this many rows, one multi-row upsert beats the COPY set-up
COPY_THRESHOLD = 200

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_LENGTH = struct.Struct(">i").pack
_JSONB_PREFIX = struct.Struct(">ib").pack
_COLUMNS = ("collection_id", "id", "content", "metadata", "embedding")
#: COPY column order: fixed-width fields first, so a chunk's row heads are one matrix
_COPY_COLUMNS = ("collection_id", "embedding", "id", "content", "metadata")


def plan(
    texts: Iterable[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str | None] | None,
) -> Batch:
    """Validate texts, metadata and ids before any embedding is paid for.

    The batch's vectors are placeholders until :func:`with_vectors` fills a span.
    """
    text_list = list(texts)
    return prepare(text_list, np.zeros((len(text_list), 1), np.float32), metadatas, ids)


def spans(total: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``size`` rows covering ``total`` rows."""
    check_int(size, "batch_size", 1)
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def check_dimension(tables: Tables, batch: Batch) -> None:
    """Raise DimensionMismatchError when the batch's vectors do not fit the table."""
    table_dim = tables.spec.dimension
    if table_dim is not None and len(batch) and batch.vectors.shape[1] != table_dim:
        raise dimension_error(tables.spec, table_dim, batch.vectors.shape[1], "the embeddings")


def with_vectors(
    rows: Batch, span: tuple[int, int], vectors: Sequence[Sequence[float]], tables: Tables
) -> Batch:
    """The rows of ``span`` with the embeddings computed for them, checked."""
    start, stop = span
    batch = dataclasses.replace(
        rows.slice(start, stop), vectors=as_matrix(vectors, rows=stop - start)
    )
    check_dimension(tables, batch)
    return batch


def encode(
    batch: Batch,
    vector_type: str,
    collection_id: uuid.UUID | None,
    order: Sequence[int] | None = None,
) -> Iterator[bytes]:
    """The binary COPY stream of ``batch``, in chunks of :data:`CHUNK_ROWS` rows.

    With ``order``, rows are sent in that order (a chunk at a time, never copying the
    whole batch).

    Fields, in :data:`_COPY_COLUMNS` order: [collection_id,] embedding, id, content,
    metadata. The fixed-width head of every row (field count, collection id, vector)
    is one numpy byte matrix per chunk; strings are encoded in bulk (they hold no NUL,
    which the input checks guarantee, so NUL can separate them); rows are interleaved
    by slice assignment. No Python bytecode runs per value.
    """
    dim = batch.vectors.shape[1]
    dtype = ">f2" if vector_type == "halfvec" else ">f4"
    width = 2 if vector_type == "halfvec" else 4
    fixed = struct.pack(">h", 4 if collection_id is None else 5)
    if collection_id is not None:
        fixed += _LENGTH(16) + collection_id.bytes
    fixed += struct.pack(">iHH", 4 + width * dim, dim, 0)
    head_width = len(fixed) + width * dim
    yield _HEADER
    for start in range(0, len(batch), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(batch))
        chunk = batch.slice(start, stop) if order is None else batch.pick(order[start:stop])
        rows = stop - start
        heads = np.empty((rows, head_width), dtype=np.uint8)
        heads[:, : len(fixed)] = np.frombuffer(fixed, dtype=np.uint8)
        heads[:, len(fixed) :] = chunk.vectors.astype(dtype).view(np.uint8).reshape(rows, -1)
        head_bytes = heads.tobytes()
        ids = _split(chunk.ids)
        texts = _split(chunk.texts)
        metas = _split(metadata_texts(chunk.metadatas))
        parts: list[bytes] = [b""] * (7 * rows)
        parts[0::7] = [
            head_bytes[i : i + head_width] for i in range(0, len(head_bytes), head_width)
        ]
        parts[1::7] = map(_LENGTH, map(len, ids))
        parts[2::7] = ids
        parts[3::7] = map(_LENGTH, map(len, texts))
        parts[4::7] = texts
        parts[5::7] = map(_jsonb_head, map(len, metas))
        parts[6::7] = metas
        yield b"".join(parts)
    yield _TRAILER


def _split(strings: list[str]) -> list[bytes]:
    # UTF-8 of each string, encoded in one call (the strings contain no NUL)
    return "\x00".join(strings).encode().split(b"\x00")


def _jsonb_head(length: int) -> bytes:
    # field length (the version byte included), then jsonb's binary format version 1
    return _JSONB_PREFIX(length + 1, 1)


@functools.lru_cache(maxsize=64)
def staging_table(tables: Tables) -> Table:
    """A temporary table shaped like the embedding table minus the collection column."""
    spec = tables.spec
    return Table(
        "pgvec_staging",
        MetaData(),
        Column("id", Text),
        Column("content", Text),
        Column("metadata", JSONB),
        Column("embedding", vector_column_type(spec.vector_type, spec.dimension)),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def upsert_from_staging(tables: Tables, cid: uuid.UUID) -> Any:
    """``INSERT INTO embedding SELECT <cid>, * FROM staging ON CONFLICT DO UPDATE``."""
    staging = staging_table(tables)
    rows = select(
        literal(cid, UUID(as_uuid=True)),
        staging.c.id,
        staging.c.content,
        staging.c.metadata,
        staging.c.embedding,
    ).order_by(staging.c.id.collate("C"))  # lock order: see lock_order()
    return _sql.on_conflict_update(
        tables, insert(tables.embedding).from_select(list(_COLUMNS), rows)
    )


def _copy_statement(table: Table, with_collection: bool) -> sql.Composed:
    columns = _COPY_COLUMNS if with_collection else _COPY_COLUMNS[1:]
    name = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        name, sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def params(batch: Batch, cid: uuid.UUID) -> list[dict[str, Any]]:
    """Parameter dicts for the multi-row upsert of a small batch, in lock order."""
    return [
        {
            "collection_id": cid,
            "id": batch.ids[i],
            "content": batch.texts[i],
            "metadata": batch.metadatas[i],
            "embedding": batch.vectors[i],
        }
        for i in lock_order(batch)
    ]


def lock_order(batch: Batch) -> list[int]:
    """Row positions sorted by id in code-point order (PostgreSQL's ``COLLATE "C"``).

    Every write takes its row locks in this one global order, so two calls writing
    overlapping ids wait for each other instead of deadlocking.
    """
    return sorted(range(len(batch)), key=batch.ids.__getitem__)


def _holds_any(result: Any) -> bool:
    return result.first() is not None


@dataclass(frozen=True)
class _Execute:
    """Run a statement (with ``params``, a list of dicts for many rows); its result."""

    statement: Any
    params: Any = None


@dataclass(frozen=True)
class _Copy:
    """COPY ``chunks`` with ``statement``; with ``savepoint``, in a savepoint that a unique
    violation rolls back (the answer: whether the rows went in)."""

    statement: sql.Composed
    chunks: Iterator[bytes]
    savepoint: bool = False


_Op = _Execute | _Copy


def _write_steps(tables: Tables, cid: uuid.UUID, batch: Batch) -> Generator[_Op, Any, int]:
    """What upserting ``batch`` runs, one operation at a time (the twins drive it).

    Returns how many rows it inserted or changed (an upsert leaves unchanged rows alone).
    """
    if len(batch) < COPY_THRESHOLD:
        return _written((yield _Execute(_sql.upsert(tables), params(batch, cid))), len(batch))
    vector_type = tables.spec.vector_type
    fresh = not _holds_any((yield _Execute(_sql.any_row(tables, cid))))
    if fresh or not _holds_any((yield _Execute(_sql.existing_ids(tables, cid, batch.ids)))):
        stream = encode(batch, vector_type, cid, lock_order(batch))
        if (yield _Copy(_copy_statement(tables.embedding, True), stream, savepoint=True)):
            return len(batch)
        # a concurrent writer added one of the ids meanwhile: upsert instead
    staging = staging_table(tables)
    yield _Execute(CreateTable(staging))
    yield _Copy(_copy_statement(staging, False), encode(batch, vector_type, None))
    written = _written((yield _Execute(upsert_from_staging(tables, cid))), len(batch))
    yield _Execute(DropTable(staging))  # the next batch of this transaction makes its own
    return written


def _written(result: Any, most: int) -> int:
    """The rows an upsert inserted or changed, or ``most`` when the driver cannot say."""
    count = result.rowcount
    return count if isinstance(count, int) and 0 <= count <= most else most


def write(conn: Connection, tables: Tables, cid: uuid.UUID, batch: Batch) -> int:
    """Upsert ``batch`` inside the caller's transaction (sync), retried if it loses a
    deadlock (against a concurrent delete, say); the rows inserted or changed."""
    return retrying(conn, lambda: _drive(conn, _write_steps(tables, cid, batch)))


def _drive(conn: Connection, steps: Generator[_Op, Any, int]) -> int:
    answer: Any = None
    while True:
        try:
            op = steps.send(answer)
        except StopIteration as done:
            return int(done.value)
        if isinstance(op, _Execute):
            answer = conn.execute(op.statement, op.params)
        elif not op.savepoint:
            answer = _copy(conn, op.statement, op.chunks)
        else:
            try:
                with conn.begin_nested():
                    answer = _copy(conn, op.statement, op.chunks)
            except UniqueViolation:
                answer = False


async def awrite(conn: AsyncConnection, tables: Tables, cid: uuid.UUID, batch: Batch) -> int:
    """Async twin of :func:`write`."""
    return await aretrying(conn, lambda: _adrive(conn, _write_steps(tables, cid, batch)))


async def _adrive(conn: AsyncConnection, steps: Generator[_Op, Any, int]) -> int:
    """Async twin of :func:`_drive`."""
    answer: Any = None
    while True:
        try:
            op = steps.send(answer)
        except StopIteration as done:
            return int(done.value)
        if isinstance(op, _Execute):
            answer = await conn.execute(op.statement, op.params)
        elif not op.savepoint:
            answer = await _acopy(conn, op.statement, op.chunks)
        else:
            try:
                async with conn.begin_nested():
                    answer = await _acopy(conn, op.statement, op.chunks)
            except UniqueViolation:
                answer = False


_QUEUE_BUFFERS = 32  # x 128 KiB (psycopg's MAX_BUFFER_SIZE): at most 4 MB queued


class _BoundedQueuedWriter(QueuedLibpqWriter):
    """psycopg's queued writer (a thread sends while we encode) with a short queue:
    psycopg's own holds 1,024 buffers, up to 128 MB of a big COPY."""

    def __init__(self, cursor: Any) -> None:
        super().__init__(cursor)
        self._queue = type(self._queue)(maxsize=_QUEUE_BUFFERS)  # psycopg's class


class _BoundedAsyncQueuedWriter(AsyncQueuedLibpqWriter):
    """Async twin of :class:`_BoundedQueuedWriter`."""

    def __init__(self, cursor: Any) -> None:
        super().__init__(cursor)
        self._queue = type(self._queue)(maxsize=_QUEUE_BUFFERS)  # psycopg's class


def _copy(conn: Connection, statement: sql.Composed, chunks: Iterator[bytes]) -> bool:
    driver = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    with (
        driver.cursor() as cursor,
        cursor.copy(statement, writer=_BoundedQueuedWriter(cursor)) as copy,
    ):
        for chunk in chunks:
            copy.write(chunk)
    return True


async def _acopy(conn: AsyncConnection, statement: sql.Composed, chunks: Iterator[bytes]) -> bool:
    raw = await conn.get_raw_connection()
    driver = cast(psycopg.AsyncConnection[Any], raw.driver_connection)
    async with (
        driver.cursor() as cursor,
        cursor.copy(statement, writer=_BoundedAsyncQueuedWriter(cursor)) as copy,
    ):
        for chunk in chunks:
            await copy.write(chunk)
    return True
