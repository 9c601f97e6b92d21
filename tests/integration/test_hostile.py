"""Hostile input: whatever is stored comes back exactly, or is refused clearly.

- property tests (hypothesis): arbitrary unicode texts and ids, and metadata with
  nested dicts and lists, huge integers, floats, empty, quoted, dotted, ``$`` and
  backslash keys, round-trip exactly through add_texts / add_embeddings and
  get_by_ids, on the multi-row path and the COPY path (a first write of new ids and
  an upsert over them through the staging table), sync and async;
- NUL characters and lone surrogates anywhere (text, id, metadata key or value, at
  any depth, in a small or a COPY-sized batch) raise ``InvalidInputError`` naming the
  field, before anything is written;
- schema, table and collection names made of quotes, spaces, semicolons and SQL
  fragments either work, creating exactly the relations so named and touching
  nothing else, or are refused with a clear error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from sqlalchemy import Engine, text
from sqlalchemy.schema import DropSchema
from support.modes import PARTITIONED
from support.twins import call

from langchain_pgvec import HNSW, InvalidInputError, PGVecError, PGVecStore, SchemaError

DIM = 8
EMB, COL = "rel_hostile_emb_8", "rel_hostile_col_8"
COPY_ROWS = 210  # above the COPY threshold (200)

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    database=None,  # no .hypothesis directory in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- strategies

SPECIAL = [
    "",
    " ",
    "NULL",
    "null",
    "None",
    '"',
    "'",
    "\\",
    "\\\\",
    "\\N",
    "{}",
    "{a,b}",
    "a,b",
    "[1]",
    'x"; DROP TABLE y; --',
    "'; DELETE FROM x; --",
    "$",
    "$eq",
    "$and",
    "a.b",
    ".",
    "..",
    "\t\n\r",
    "é",
    "e\u0301",
    "🔑",
    "\u200b",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "%",
    "%s",
    "%(x)s",
    ":name",
    "?",
    "\x7f",
    "\x01",
]
CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
TEXT = st.text(CHARS, max_size=40)
STRING = st.one_of(st.sampled_from(SPECIAL), TEXT)
KEY = st.one_of(st.sampled_from(SPECIAL), st.text(CHARS, max_size=10))


SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**100), 2**100),
    st.sampled_from([2**80, -(2**80), 2**63, 2**64 - 1, 10**30, 0, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 1.0, 1e-7, 5e-324, 1.5e-300, 123456789.125, 9.999999999999998e15]),
    STRING,
)
JSON = st.recursive(
    SCALAR,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEY, children, max_size=4),
    max_leaves=12,
)
METADATA = st.dictionaries(KEY, JSON, max_size=5)
ROWS = st.lists(st.tuples(STRING, TEXT, METADATA), min_size=1, max_size=6, unique_by=lambda r: r[0])


class CountingEmbeddings(DeterministicFakeEmbedding):
    """A deterministic fake that counts its calls (to prove validation came first)."""

    calls: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return super().embed_documents(texts)


def new_store(engine: Engine, embeddings: Embeddings | None = None, **kwargs: Any) -> PGVecStore:
    kwargs.setdefault("collection_name", f"rel_hostile_{uuid.uuid4().hex}")
    kwargs.setdefault("embedding_table", EMB)
    kwargs.setdefault("collection_table", COL)
    return PGVecStore(embeddings or CountingEmbeddings(size=DIM), connection=engine, **kwargs)


async def write(
    store: PGVecStore, mode: str, use_texts: bool, rows: list[tuple[str, str, dict[str, Any]]]
) -> None:
    ids = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    metadatas = [r[2] for r in rows]
    if use_texts:
        assert await call(store, mode, "add_texts", texts, metadatas, ids=ids) == ids
    else:
        vectors = np.random.default_rng(len(rows)).random((len(rows), DIM), dtype=np.float32)
        assert await call(store, mode, "add_embeddings", texts, vectors, metadatas, ids) == ids


def padded(rows: list[tuple[str, str, dict[str, Any]]], path: str) -> list[Any]:
    if path == "multi-row":
        return rows
    taken = {r[0] for r in rows}
    fillers = [(f"~filler-{n}", f"filler {n}", {"n": n}) for n in range(COPY_ROWS)]
    return rows + [f for f in fillers if f[0] not in taken][: COPY_ROWS - len(rows)]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("path", ["multi-row", "copy"])
@SETTINGS
@given(rows=ROWS, use_texts=st.booleans())
async def test_round_trip_is_exact(
    engine: Engine, mode: str, path: str, rows: list[Any], use_texts: bool
) -> None:
    store = new_store(engine)
    try:
        first = padded(rows, path)
        await write(store, mode, use_texts, first)
        await check_round_trip(store, mode, first)
        # an upsert of the same ids with each other's contents (COPY: the staging path)
        rotated = [(r[0], *first[(n + 1) % len(first)][1:]) for n, r in enumerate(first)]
        await write(store, mode, not use_texts, rotated)
        await check_round_trip(store, mode, rotated)
        assert await call(store, mode, "count") == len(first)
    finally:
        store.delete_collection()


async def check_round_trip(store: PGVecStore, mode: str, rows: list[Any]) -> None:
    expected = [Document(id=i, page_content=t, metadata=m) for i, t, m in rows]
    got = await call(store, mode, "get_by_ids", [r[0] for r in rows])
    assert got == expected
    for doc, want in zip(got, expected, strict=True):  # exact: types too (1 != 1.0 != True)
        assert repr(doc.metadata) == repr(_same_order(want.metadata, doc.metadata))


def _same_order(want: Any, got: Any) -> Any:
    """``want`` with its dict keys in ``got``'s order (JSONB sorts keys), recursively,
    and -0.0 as 0.0 (numeric has no negative zero; the two are equal floats)."""
    if isinstance(want, float) and want == 0:
        return 0.0
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: _same_order(want[k], got[k]) for k in got}
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [_same_order(w, g) for w, g in zip(want, got, strict=True)]
    return want


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_floats_from_1e16_round_trip(engine: Engine, mode: str) -> None:
    """The metadata contract is an exact round trip, but PostgreSQL's numeric prints
    1e+16 as 10000000000000000, which JSON reads back as an int."""
    values = [1e16, 1.5e16, 2.5e300, -1e20, 1.2345678901234567e300, 1e22]
    for n in (1, COPY_ROWS):
        store = new_store(engine)
        try:
            ids = [f"f{i}" for i in range(n)]
            metadatas = [{"v": values[i % len(values)]} for i in range(n)]
            await call(store, mode, "add_embeddings", ids, np.ones((n, DIM)), metadatas, ids)
            got = await call(store, mode, "get_by_ids", ids[: len(values)])
            assert [repr(d.metadata["v"]) for d in got] == [repr(v) for v in values[:n]]
        finally:
            store.delete_collection()


# --------------------------------------------------------------------------- refused input

# where the bad character goes: (texts, ids, metadata) of the row it spoils
Place = Callable[[str], tuple[str, str, dict[str, Any]]]
PLACES: dict[str, Place] = {
    "text": lambda bad: (f"a{bad}b", "id", {}),
    "id": lambda bad: ("t", f"id{bad}", {}),
    "metadata value": lambda bad: ("t", "id", {"k": f"v{bad}"}),
    "metadata key": lambda bad: ("t", "id", {f"k{bad}": 1}),
    "nested value": lambda bad: ("t", "id", {"a": [{"b": ["x", f"y{bad}"]}]}),
    "nested key": lambda bad: ("t", "id", {"a": {"b": {f"c{bad}": None}}}),
}
BAD = {"NUL": "\x00", "high surrogate": "\ud800", "low surrogate": "\udfff"}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("rows", [3, 250], ids=["multi-row", "copy"])
@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
@pytest.mark.parametrize("place", list(PLACES), ids=list(PLACES))
async def test_bad_characters_are_refused_before_writing(
    engine: Engine, mode: str, rows: int, bad: str, place: str
) -> None:
    store = new_store(engine)
    try:
        await call(store, mode, "add_texts", ["existing"], ids=["existing"])
        text_, id_, metadata = PLACES[place](BAD[bad])
        texts = [f"t{n}" for n in range(rows)]
        ids = [f"i{n}" for n in range(rows)]
        metadatas: list[dict[str, Any]] = [{} for _ in range(rows)]
        spoiled = rows - 2  # near the end: a late failure would be mid-COPY
        texts[spoiled], ids[spoiled], metadatas[spoiled] = text_, id_, metadata
        word = "NUL" if bad == "NUL" else "surrogate"
        vectors = np.ones((rows, DIM), dtype=np.float32)
        with pytest.raises(InvalidInputError, match=word) as caught:
            await call(store, mode, "add_embeddings", texts, vectors, metadatas, ids)
        field = {"text": "texts", "id": "ids"}.get(place, "metadatas")
        assert f"{field}[{spoiled}]" in str(caught.value)
        calls = store.embeddings.calls  # type: ignore[attr-defined]
        with pytest.raises(InvalidInputError, match=word):
            await call(store, mode, "add_texts", texts, metadatas, ids=ids)
        assert store.embeddings.calls == calls, "embedded before validating"  # type: ignore[attr-defined]
        assert await call(store, mode, "count") == 1
    finally:
        store.delete_collection()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
async def test_bad_characters_in_lookups_are_refused(engine: Engine, mode: str, bad: str) -> None:
    store = new_store(engine)
    try:
        await call(store, mode, "add_texts", ["existing"], ids=["existing"])
        for name in ("get_by_ids", "delete"):
            with pytest.raises(InvalidInputError, match="NUL" if bad == "NUL" else "surrogate"):
                await call(store, mode, name, ["existing", f"x{BAD[bad]}"])
        assert await call(store, mode, "count") == 1
    finally:
        store.delete_collection()


@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
def test_bad_characters_in_names_are_refused(engine: Engine, bad: str) -> None:
    word = "NUL" if bad == "NUL" else "surrogate"
    with pytest.raises(InvalidInputError, match=word):
        new_store(engine, collection_name=f"c{BAD[bad]}")
    for field in ("schema", "embedding_table", "collection_table"):
        with pytest.raises(SchemaError, match=word):
            named: dict[str, Any] = {field: f"n{BAD[bad]}"}
            new_store(engine, **named)


@SETTINGS
@given(
    prefix=st.text(CHARS, max_size=30),
    suffix=st.text(CHARS, max_size=30),
    where=st.sampled_from(list(PLACES)),
    bad=st.sampled_from(list(BAD.values())),
)
def test_bad_characters_anywhere_in_a_string(
    engine: Engine, prefix: str, suffix: str, where: str, bad: str
) -> None:
    store = new_store(engine)
    text_, id_, metadata = PLACES[where](prefix + bad + suffix)
    with pytest.raises(InvalidInputError):
        store.add_embeddings([text_], [[1.0] * DIM], [metadata], [id_])


# --------------------------------------------------------------------------- identifiers

HOSTILE_NAMES = [
    'x"; DROP TABLE rel_canary; --',
    "'; DROP TABLE rel_canary; --",
    "with space",
    "semi;colon",
    'dq"uote',
    "quo'te",
    "Mixed Case",
    "select",
    "a.b",
    "%s %(x)s %%",
    "$1 :name ?",
    "back\\slash",
    "ünï 🔑",
    "/* c */ --",
    "tab\tnew\nline",
]


@pytest.fixture
def canary(engine: Engine) -> Iterator[None]:
    """A table that hostile names try to drop."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS rel_canary (v int)"))
        conn.execute(text("DELETE FROM rel_canary"))
        conn.execute(text("INSERT INTO rel_canary VALUES (42)"))
    yield
    with engine.begin() as conn:
        assert conn.execute(text("SELECT v FROM rel_canary")).scalars().all() == [42]
        conn.execute(text("DROP TABLE rel_canary"))


def relations(engine: Engine, schema: str) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = :schema"
            ),
            {"schema": schema},
        ).all()
    return {(r.relname, r.relkind) for r in rows}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_identifiers_are_only_names(engine: Engine, canary: None, name: str) -> None:
    schema, table, collections = name, name, name + " c"
    with engine.connect() as conn:
        before_schemas = set(conn.execute(text("SELECT nspname FROM pg_namespace")).scalars())
        public_before = relations(engine, "public")
    store = new_store(
        engine,
        schema=schema,
        embedding_table=table,
        collection_table=collections,
        collection_name=name,
        full_text=True,  # a tsvector column and its index, named after the table
    )
    try:
        for seed, mode in enumerate(("sync", "async")):
            ids = [f"{mode} {name} {n}" for n in range(COPY_ROWS)]
            vectors = np.random.default_rng(seed).random((COPY_ROWS, DIM), dtype=np.float32)
            await call(store, mode, "add_embeddings", ids[:3], vectors[:3], None, ids[:3])
            await call(store, mode, "add_embeddings", ids, vectors, None, ids)  # COPY, staging
            metadata = {name: name, "tag": name}
            await call(store, mode, "add_texts", [name], [metadata], ids=[name])
            assert [d.metadata for d in await call(store, mode, "get_by_ids", [name])] == [metadata]
            found = await call(store, mode, "similarity_search_by_vector", vectors[5].tolist(), 1)
            assert found[0].id == ids[5]
            assert [d.id for d in await call(store, mode, "get", {"tag": name})] == [name]
            found = await call(store, mode, "full_text_search", name, k=5, filter={"tag": name})
            assert [d.id for d in found] == [name]
            await call(store, mode, "delete", ids[:3])
        assert store.count() == 2 * COPY_ROWS - 6 + 1
        index = store.create_index(HNSW(m=4, ef_construction=8))
        assert index in {i.name for i in store.list_indexes()}
        store.drop_index(index)
        with engine.connect() as conn:
            after_schemas = set(conn.execute(text("SELECT nspname FROM pg_namespace")).scalars())
        new_schemas = {s for s in after_schemas - before_schemas if not s.startswith("pg_")}
        assert new_schemas == {schema}  # (pg_temp_N: the staging table's session schema)
        made = relations(engine, schema)
        # the embedding table is a table, or a partitioned one with a partition per
        # collection (tests/support/modes.py)
        kind = "p" if PARTITIONED else "r"
        assert {(table, kind), (collections, "r")} <= made
        terms = f"{table}_terms"  # the term statistics of full-text search
        partitions = {n for n, k in made if k == "r" and n.startswith(table + "_")} - {terms}
        plain = {n for n, k in made if k == "r"} - (partitions if PARTITIONED else set())
        assert plain == {collections} | ({terms} if PARTITIONED else {table, terms})
        assert relations(engine, "public") == public_before
        store.delete_collection()
        assert store.count() == 0
    finally:
        await store.aclose()
        with engine.begin() as conn:
            conn.execute(DropSchema(schema, cascade=True, if_exists=True))


def test_names_too_long_or_empty_are_refused(engine: Engine) -> None:
    for field in ("schema", "embedding_table", "collection_table"):
        for value in ("", "é" * 25):  # 50 bytes
            with pytest.raises(SchemaError, match=field):
                named: dict[str, Any] = {field: value}
                new_store(engine, **named)
    with pytest.raises(InvalidInputError, match="collection_name"):
        new_store(engine, collection_name="")
    assert isinstance(SchemaError("x"), PGVecError)
