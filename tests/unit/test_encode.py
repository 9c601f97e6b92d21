"""COPY BINARY encoding, decoded here field by field, and the pure parts of an upsert:
lock order, spans, parameters, the staging table and its INSERT ... SELECT."""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.schema import CreateTable, DropTable

from langchain_pgvec import _ingest
from langchain_pgvec._errors import DimensionMismatchError, InvalidInputError
from langchain_pgvec._ingest import (
    CHUNK_ROWS,
    encode,
    lock_order,
    params,
    spans,
    staging_table,
    upsert_from_staging,
)
from langchain_pgvec._schema import TableSpec, mapped_tables
from langchain_pgvec._validate import Batch, json_dumps, prepare

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
CID = uuid.UUID("9b2f0c1e-5a4d-4c3b-8e7f-0123456789ab")
TABLES = mapped_tables(TableSpec(embedding_table="en_e", collection_table="en_c", dimension=3))
HALF = mapped_tables(
    TableSpec(embedding_table="en_he", collection_table="en_hc", dimension=3, vector_type="halfvec")
)
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


# ---------------------------------------------------------------------- a decoder


@dataclass
class Row:
    collection_id: uuid.UUID | None
    vector: list[float]
    id: str
    content: str
    metadata_text: str


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        assert self.at + size <= len(self.data), "read past the end of the stream"
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def unpack(self, layout: str) -> Any:
        values = struct.unpack(layout, self.take(struct.calcsize(layout)))
        return values[0] if len(values) == 1 else values


def decode_vector(field: bytes, vector_type: str) -> list[float]:
    dim, unused = struct.unpack(">hh", field[:4])
    width = 2 if vector_type == "halfvec" else 4
    assert unused == 0
    assert len(field) == 4 + width * dim
    dtype = ">f2" if vector_type == "halfvec" else ">f4"
    return [float(x) for x in np.frombuffer(field[4:], dtype=dtype)]


def decode_rows(reader: Reader, vector_type: str, with_collection: bool) -> list[Row]:
    """Rows until the trailer (or the end of the data, for one chunk)."""
    rows: list[Row] = []
    while reader.at < len(reader.data):
        count = reader.unpack(">h")
        if count == -1:
            break
        assert count == (5 if with_collection else 4)
        fields = [reader.take(reader.unpack(">i")) for _ in range(count)]
        collection = None
        if with_collection:
            head = fields.pop(0)
            assert len(head) == 16
            collection = uuid.UUID(bytes=head)
        vector, id_, content, metadata = fields
        assert metadata[:1] == b"\x01", "jsonb's binary format version"
        rows.append(
            Row(
                collection,
                decode_vector(vector, vector_type),
                id_.decode("utf-8"),
                content.decode("utf-8"),
                metadata[1:].decode("utf-8"),
            )
        )
    return rows


def decode(stream: bytes, vector_type: str = "vector", with_collection: bool = True) -> list[Row]:
    reader = Reader(stream)
    assert reader.take(11) == SIGNATURE
    assert reader.unpack(">ii") == (0, 0)  # flags, header extension length
    rows = decode_rows(reader, vector_type, with_collection)
    assert reader.at == len(stream), "bytes after the trailer"
    assert stream[-2:] == struct.pack(">h", -1)
    return rows


def batch(n: int, dim: int = 3) -> Batch:
    vectors = np.arange(n * dim, dtype=np.float32).reshape(n, dim) / 4 - 1
    return prepare(
        [f"text {i}" for i in range(n)],
        vectors,
        [{"i": i} for i in range(n)],
        [f"id-{i:05d}" for i in range(n)],
    )


# ---------------------------------------------------------------------- encode


UNICODE = prepare(
    ["héllo wörld", "", "日本語のテキスト 😀", "tab\tnew\nline 'quote' \"double\" \\"],
    np.array(
        [[0.5, -1.25, 3.0], [0.0, -0.0, 1e-3], [1e30, -1e-30, 7.0], [0.1, 0.2, 0.3]],
        np.float32,
    ),
    [
        {"ключ": "значение", "n": 1e16},
        None,
        {"nested": {"a": [1, None, True, 2.5]}, "😀": "é"},
        {"": ""},
    ],
    ["id-é", "", "😀", "a\\b"],
)


def test_every_field_of_every_row() -> None:
    stream = b"".join(encode(UNICODE, "vector", CID))
    rows = decode(stream)
    assert len(rows) == 4
    for i, row in enumerate(rows):
        assert row.collection_id == CID
        assert row.vector == UNICODE.vectors[i].tolist()  # float32 exactly
        assert row.id == UNICODE.ids[i]
        assert row.content == UNICODE.texts[i]
        assert row.metadata_text == json_dumps(UNICODE.metadatas[i])
        assert json.loads(row.metadata_text) == UNICODE.metadatas[i]
    assert rows[0].metadata_text == '{"ключ":"значение","n":10000000000000000.0}'
    assert rows[1].id == "" and rows[1].content == "" and rows[1].metadata_text == "{}"
    # negative zero keeps its sign: the binary form is sent as it is
    assert np.signbit(np.float32(rows[1].vector[1]))


def test_the_chunks_are_header_rows_and_trailer() -> None:
    chunks = list(encode(UNICODE, "vector", CID))
    assert len(chunks) == 3
    assert chunks[0] == SIGNATURE + struct.pack(">ii", 0, 0)
    assert chunks[-1] == struct.pack(">h", -1)
    rows = decode_rows(Reader(chunks[1]), "vector", True)  # whole rows only
    assert [r.id for r in rows] == UNICODE.ids


def test_the_byte_layout_of_one_row() -> None:
    one = prepare(["ab"], [[1.0, -2.0]], [{"k": 1}], ["x"])
    stream = b"".join(encode(one, "vector", CID))
    expected = (
        SIGNATURE
        + struct.pack(">ii", 0, 0)
        + struct.pack(">h", 5)
        + struct.pack(">i", 16)
        + CID.bytes
        + struct.pack(">ihh", 12, 2, 0)
        + struct.pack(">ff", 1.0, -2.0)
        + struct.pack(">i", 1)
        + b"x"
        + struct.pack(">i", 2)
        + b"ab"
        + struct.pack(">ib", 8, 1)
        + b'{"k":1}'
        + struct.pack(">h", -1)
    )
    assert stream == expected


def test_lengths_count_utf8_bytes() -> None:
    one = prepare(["é😀"], [[1.0]], [{"é": "😀"}], ["日"])
    stream = b"".join(encode(one, "vector", CID))
    assert struct.pack(">i", 3) + "日".encode() in stream
    assert struct.pack(">i", 6) + "é😀".encode() in stream
    meta = json_dumps({"é": "😀"}).encode()
    assert struct.pack(">ib", len(meta) + 1, 1) + meta in stream


def test_without_a_collection_there_are_four_fields() -> None:
    stream = b"".join(encode(UNICODE, "vector", None))
    assert stream[19:21] == struct.pack(">h", 4)
    rows = decode(stream, with_collection=False)
    assert [r.collection_id for r in rows] == [None] * 4
    assert [r.id for r in rows] == UNICODE.ids
    assert [r.content for r in rows] == UNICODE.texts
    assert [r.vector for r in rows] == UNICODE.vectors.tolist()
    assert CID.bytes not in stream


def test_halfvec_sends_float16() -> None:
    exact = prepare(["a", "b"], [[0.5, -2.0, 1.25], [65504.0, 0.0, -0.125]], ids=["a", "b"])
    stream = b"".join(encode(exact, "halfvec", CID))
    assert struct.pack(">ihh", 4 + 2 * 3, 3, 0) in stream
    rows = decode(stream, "halfvec")
    assert [r.vector for r in rows] == [[0.5, -2.0, 1.25], [65504.0, 0.0, -0.125]]
    rounded = prepare(["a"], [[0.1, 1 / 3, 1000.3]], ids=["a"])
    (row,) = decode(b"".join(encode(rounded, "halfvec", None)), "halfvec", False)
    assert row.vector == [float(np.float16(x)) for x in rounded.vectors[0]]


def test_order_sends_the_rows_in_that_order() -> None:
    order = [2, 0, 3, 1]
    rows = decode(b"".join(encode(UNICODE, "vector", CID, order)))
    assert [r.id for r in rows] == [UNICODE.ids[i] for i in order]
    assert [r.content for r in rows] == [UNICODE.texts[i] for i in order]
    assert [r.vector for r in rows] == [UNICODE.vectors[i].tolist() for i in order]
    assert [json.loads(r.metadata_text) for r in rows] == [UNICODE.metadatas[i] for i in order]


def test_rows_are_chunked_by_chunk_rows() -> None:
    n = 2 * CHUNK_ROWS + 3
    rows = batch(n, dim=2)
    chunks = list(encode(rows, "vector", CID))
    assert len(chunks) == 1 + 3 + 1
    sizes = [len(decode_rows(Reader(chunk), "vector", True)) for chunk in chunks[1:-1]]
    assert sizes == [CHUNK_ROWS, CHUNK_ROWS, 3]
    decoded = decode(b"".join(chunks))
    assert [r.id for r in decoded] == rows.ids
    assert [r.vector for r in decoded] == rows.vectors.tolist()
    assert [r.content for r in decoded] == rows.texts
    assert [json.loads(r.metadata_text) for r in decoded] == rows.metadatas


def test_order_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ingest, "CHUNK_ROWS", 2)
    rows = batch(5)
    order = [4, 1, 3, 0, 2]
    chunks = list(encode(rows, "halfvec", None, order))
    assert len(chunks) == 1 + 3 + 1
    decoded = decode(b"".join(chunks), "halfvec", with_collection=False)
    assert [r.id for r in decoded] == [rows.ids[i] for i in order]
    assert [r.vector for r in decoded] == [rows.vectors[i].tolist() for i in order]
    assert [r.content for r in decoded] == [rows.texts[i] for i in order]


def test_an_empty_batch_is_header_and_trailer() -> None:
    empty = prepare([], [])
    assert list(encode(empty, "vector", CID)) == [
        SIGNATURE + struct.pack(">ii", 0, 0),
        struct.pack(">h", -1),
    ]


def test_the_copy_columns_are_the_fields_in_order() -> None:
    # what encode writes, field by field, is what the COPY statement names
    statement = _ingest._copy_statement(TABLES.embedding, True).as_string(None)
    assert statement == (
        'COPY "en_e" ("collection_id", "embedding", "id", "content", "metadata") '
        "FROM STDIN (FORMAT BINARY)"
    )
    staging = _ingest._copy_statement(staging_table(TABLES), False).as_string(None)
    assert staging == (
        'COPY "pgvec_staging" ("embedding", "id", "content", "metadata") FROM STDIN (FORMAT BINARY)'
    )
    schema = mapped_tables(
        TableSpec(schema="s p", embedding_table="en_se", collection_table="en_sc", dimension=3)
    )
    assert (
        _ingest._copy_statement(schema.embedding, True)
        .as_string(None)
        .startswith('COPY "s p"."en_se" (')
    )


# ---------------------------------------------------------------------- lock order, spans


def test_lock_order_is_code_point_order() -> None:
    ids = ["b", "a", "B", "é", "z", "10", "9", "\uffff", "😀", "", "a\x7f"]
    rows = prepare(["t"] * len(ids), np.zeros((len(ids), 1)), ids=ids)
    order = lock_order(rows)
    ordered = [ids[i] for i in order]
    # PostgreSQL's COLLATE "C" on UTF-8 is byte order, which is code point order
    assert ordered == sorted(ids, key=lambda s: s.encode("utf-8"))
    assert ordered == ["", "10", "9", "B", "a", "a\x7f", "b", "z", "é", "\uffff", "😀"]
    assert sorted(order) == list(range(len(ids)))


def test_lock_order_of_nothing() -> None:
    assert lock_order(prepare([], [])) == []


def test_spans() -> None:
    assert spans(10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert spans(9, 3) == [(0, 3), (3, 6), (6, 9)]
    assert spans(2, 100) == [(0, 2)]
    assert spans(0, 5) == []
    with pytest.raises(InvalidInputError, match="batch_size must be an integer from 1"):
        spans(10, 0)
    with pytest.raises(InvalidInputError, match="batch_size"):
        spans(10, True)


# ---------------------------------------------------------------------- the small-batch upsert


def test_params_are_in_lock_order() -> None:
    rows = prepare(
        ["second", "first", "third"],
        [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
        [{"n": 2}, {"n": 1}, None],
        ["m", "a", "z"],
    )
    given = params(rows, CID)
    assert [p["id"] for p in given] == ["a", "m", "z"]
    assert [p["content"] for p in given] == ["first", "second", "third"]
    assert [p["metadata"] for p in given] == [{"n": 1}, {"n": 2}, {}]
    assert all(p["collection_id"] == CID for p in given)
    assert [p["embedding"].tolist() for p in given] == [[3.0, 4.0], [1.0, 2.0], [5.0, 6.0]]
    assert all(p["embedding"].dtype == np.float32 for p in given)
    assert all(set(p) == {"collection_id", "id", "content", "metadata", "embedding"} for p in given)


# ---------------------------------------------------------------------- staging


def test_the_staging_table() -> None:
    table = staging_table(HALF)
    assert staging_table(HALF) is table  # made once per tables
    ddl = str(CreateTable(table).compile(dialect=DIALECT))
    assert " ".join(ddl.split()) == (
        "CREATE TEMPORARY TABLE pgvec_staging ( id TEXT, content TEXT, metadata JSONB, "
        "embedding HALFVEC(3) ) ON COMMIT DROP"
    )
    assert "VECTOR(3)" in str(CreateTable(staging_table(TABLES)).compile(dialect=DIALECT))
    assert str(DropTable(table).compile(dialect=DIALECT)).strip() == "DROP TABLE pgvec_staging"


def test_upsert_from_staging() -> None:
    compiled = upsert_from_staging(TABLES, CID).compile(dialect=DIALECT)
    assert " ".join(compiled.string.split()) == (
        "INSERT INTO en_e (collection_id, id, content, metadata, embedding) "
        "SELECT %(param_1)s::UUID AS anon_1, pgvec_staging.id, pgvec_staging.content, "
        "pgvec_staging.metadata, pgvec_staging.embedding FROM pgvec_staging "
        'ORDER BY pgvec_staging.id COLLATE "C" '
        "ON CONFLICT (collection_id, id) DO UPDATE SET content = excluded.content, "
        "metadata = excluded.metadata, embedding = excluded.embedding "
        "WHERE en_e.content IS DISTINCT FROM excluded.content "
        "OR en_e.embedding IS DISTINCT FROM excluded.embedding "
        "OR en_e.metadata IS DISTINCT FROM excluded.metadata "
        "OR CAST(en_e.metadata AS TEXT) IS DISTINCT FROM CAST(excluded.metadata AS TEXT) "
        "OR vector_send(en_e.embedding) IS DISTINCT FROM vector_send(excluded.embedding)"
    )
    assert compiled.params == {"param_1": CID}
    half = str(upsert_from_staging(HALF, CID).compile(dialect=DIALECT))
    assert "halfvec_send(en_he.embedding) IS DISTINCT FROM halfvec_send(excluded.embedding)" in half


# ---------------------------------------------------------------------- plan, with_vectors


def test_plan_checks_everything_but_the_vectors() -> None:
    planned = _ingest.plan(iter(["a", "b"]), [{"k": 1}, None], ["x", None])
    assert planned.texts == ["a", "b"] and planned.metadatas == [{"k": 1}, {}]
    assert planned.ids[0] == "x" and planned.vectors.shape == (2, 1)
    with pytest.raises(InvalidInputError, match="appears more than once"):
        _ingest.plan(["a", "b"], None, ["x", "x"])


def test_with_vectors_fills_a_span_and_checks_the_dimension() -> None:
    planned = _ingest.plan(["a", "b", "c"], None, ["x", "y", "z"])
    filled = _ingest.with_vectors(planned, (1, 3), [[1, 2, 3], [4, 5, 6]], TABLES)
    assert filled.ids == ["y", "z"] and filled.vectors.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(DimensionMismatchError, match="stores 3-dimensional vectors"):
        _ingest.with_vectors(planned, (0, 1), [[1.0, 2.0]], TABLES)
    with pytest.raises(InvalidInputError, match="got 2 texts but 1 embeddings"):
        _ingest.with_vectors(planned, (0, 2), [[1.0, 2.0, 3.0]], TABLES)
