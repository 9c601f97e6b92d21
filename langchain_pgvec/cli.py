"""The ``pgvec`` command: inspect, search, index, migrate, and run the embedded server.

Usage::

    pgvec init --dimension 384 [--full-text] [--grant ROLE] [--grant-read ROLE]
    pgvec info                                   # tables, collections, indexes
    pgvec search "query" --collection docs --k 5 --filter '{"year": {"$gte": 2020}}'
    pgvec index create hnsw --m 16 --ef-construction 64 [--per-collection --collection docs]
    pgvec index create hnsw --quantization binary     # or halfvec: re-ranked by exact distance
    pgvec index list
    pgvec index drop NAME
    pgvec embedded start|stop|url [--dir DIR]
    pgvec migrate --from-url postgresql://... --collection docs | --all [--to-collection new]

Global options pick the database and tables: ``--url`` (default ``$PGVEC_URL``, else the
embedded server), ``--schema``, ``--collection-table``, ``--embedding-table``.

Exit status: 0 on success, 2 for bad arguments, 1 for any other error (printed as
``pgvec: error: ...`` on stderr, without a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from sqlalchemy.exc import DBAPIError

from ._catalog import (
    IndexInfo,
    collections,
    current_schema,
    embedding_tables,
    extension_version,
    table_size,
)
from ._errors import PGVecError
from ._index_specs import HNSW, IVFFlat
from ._schema import (
    DEFAULT_COLLECTION_TABLE,
    DEFAULT_EMBEDDING_TABLE,
    DistanceStrategy,
    Tables,
    TableSpec,
    mapped_tables,
)
from ._store import PGVecStore
from .embeddings import HashingEmbeddings

__all__ = ["main"]

_PREVIEW = 100
_MODELS = {
    "openai": (
        "langchain_openai",
        "OpenAIEmbeddings",
        "text-embedding-3-small",
        "`pip install langchain-openai` and OPENAI_API_KEY",
    ),
    "huggingface": (
        "langchain_huggingface",
        "HuggingFaceEmbeddings",
        "sentence-transformers/all-MiniLM-L6-v2",
        "`pip install langchain-huggingface sentence-transformers`",
    ),
}


class CommandError(PGVecError):
    """A command that cannot do what was asked (printed without a traceback)."""


# ---------------------------------------------------------------------------- helpers


def _size(num_bytes: int) -> str:
    value = float(num_bytes)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


def _preview(content: str) -> str:
    flat = " ".join(content.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 3] + "..."


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {value!r}") from exc
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(
            f'must be a JSON object such as \'{{"year": {{"$gte": 2020}}}}\', got {value!r}'
        )
    return parsed


def _embeddings_spec(value: str) -> tuple[str, str | None]:
    kind, _, option = value.partition(":")
    kind = kind.strip().lower()
    aliases = {"hashing": "hashing", "openai": "openai", "huggingface": "huggingface"}
    aliases["hf"] = "huggingface"
    if kind not in aliases:
        raise argparse.ArgumentTypeError(
            f"unknown embeddings {value!r}: use hashing[:DIM], openai[:MODEL] or "
            "huggingface[:MODEL]"
        )
    kind = aliases[kind]
    if kind == "hashing" and option:
        try:
            if int(option) < 1:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"hashing:DIM needs a positive integer dimension, got {option!r}"
            ) from None
    return kind, option or None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _make_embeddings(spec: tuple[str, str | None], dimension: int | None) -> Embeddings:
    kind, option = spec
    if kind == "hashing":
        size = int(option) if option else dimension
        return HashingEmbeddings(dimension=size or 256)
    package, cls, default, install = _MODELS[kind]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise CommandError(f"--embeddings {kind} needs {install}") from None
    keyword = "model" if kind == "openai" else "model_name"
    model: Embeddings = getattr(module, cls)(**{keyword: option or default})
    return model


def _spec(args: argparse.Namespace) -> TableSpec:
    return TableSpec(
        schema=args.schema,
        collection_table=args.collection_table,
        embedding_table=args.embedding_table,
    )


def _store(
    args: argparse.Namespace,
    collection: str | None = None,
    embeddings: Embeddings | None = None,
    distance: str = "cosine",
    vector_type: str = "vector",
) -> PGVecStore:
    return PGVecStore(
        embeddings or HashingEmbeddings(),
        connection=args.url,
        collection_name=collection or "langchain",
        distance_strategy=distance,
        vector_type="halfvec" if vector_type == "halfvec" else "vector",
        schema=args.schema,
        collection_table=args.collection_table,
        embedding_table=args.embedding_table,
    )


class _Table:
    """What the catalogs say about the configured embedding table."""

    def __init__(self, args: argparse.Namespace) -> None:
        spec = _spec(args)
        store = _store(args)
        try:
            self._read(store, spec)
        finally:
            store.close()
        self.url = _shown_url(store)

    def _read(self, store: PGVecStore, spec: TableSpec) -> None:
        with store.engine.connect() as conn:
            self.schema: str = spec.schema or current_schema(conn)
            self.extension: str | None = extension_version(conn)
            self.all = embedding_tables(conn, spec.schema) if self.extension else []
        found = [row for row in self.all if row.name == spec.embedding_table]
        self.row = found[0] if found and not found[0].langchain_postgres else None
        self.spec = spec

    def require(self) -> Tables:
        if self.extension is None:
            raise CommandError(
                "the pgvector extension is not installed in this database "
                f"({self.url}); nothing has been stored here yet"
            )
        if self.row is None:
            ours = [r for r in self.all if not r.langchain_postgres]
            theirs = [r for r in self.all if r.langchain_postgres]
            hint = (
                " Embedding tables in this schema: "
                + ", ".join(f"{r.name} ({_vector(r)})" for r in ours)
                + "; pass one with --embedding-table."
                if ours
                else " There are no langchain-pgvec embedding tables in this schema."
            )
            if theirs:
                hint += (
                    " langchain-postgres tables found ("
                    + ", ".join(r.name for r in theirs)
                    + "): copy them over with `pgvec migrate`."
                )
            raise CommandError(
                f"no embedding table {self.spec.embedding_table!r} in schema {self.schema!r}."
                + hint
            )
        dimension = self.row.dimension if self.row.dimension > 0 else None
        spec = TableSpec(
            schema=self.spec.schema,
            collection_table=self.spec.collection_table,
            embedding_table=self.spec.embedding_table,
            dimension=dimension,
            vector_type=self.row.vector_type,
        )
        return mapped_tables(spec)

    @property
    def vector_type(self) -> str:
        return "vector" if self.row is None else str(self.row.vector_type)

    @property
    def dimension(self) -> int | None:
        return None if self.row is None or self.row.dimension <= 0 else int(self.row.dimension)


def _vector(row: Any) -> str:
    return f"{row.vector_type}({row.dimension})" if row.dimension > 0 else row.vector_type


def _shown_url(store: PGVecStore) -> str:
    return store.engine.url.render_as_string(hide_password=True)


def _collections(store: PGVecStore, tables: Tables) -> list[tuple[Any, str, int]]:
    with store.engine.connect() as conn:
        return collections(conn, tables)


def _require_collection(store: PGVecStore, tables: Tables, name: str) -> int:
    known = _collections(store, tables)
    for _, collection, count in known:
        if collection == name:
            return count
    listed = ", ".join(repr(n) for _, n, c in known if c) or "none"
    raise CommandError(
        f"no collection {name!r} in table {tables.spec.qualified_embedding_table!r} "
        f"(collections with documents: {listed})"
    )


def _print_indexes(
    indexes: Sequence[IndexInfo], names: dict[Any, str], out: Callable[[str], None]
) -> None:
    if not indexes:
        out("  (none)")
        return
    width = max(len(index.name) for index in indexes)
    for index in indexes:
        notes = []
        if index.primary:
            notes.append("primary key")
        if index.options:
            notes.append(", ".join(index.options))
        if index.collection_id is not None:
            notes.append(f"collection {names.get(index.collection_id, index.collection_id)!s}")
        elif index.partial:
            notes.append(f"WHERE {index.predicate}")
        if index.quantization is not None:
            notes.append(f"{index.quantization} quantization")
        if not index.valid:
            notes.append("INVALID: a failed concurrent build; drop it and create it again")
        columns = ", ".join(index.columns)
        out(
            f"  {index.name:<{width}}  {index.method:<7} {index.opclass or '-':<20} "
            f"{_size(index.size_bytes):>10}  ({columns}){'  ' + '; '.join(notes) if notes else ''}"
        )


# ---------------------------------------------------------------------------- commands


def _info(args: argparse.Namespace) -> int:
    spec = _spec(args)
    table = _Table(args)
    tables = table.require()
    store = _store(args, vector_type=table.vector_type)
    try:
        found = _collections(store, tables)
        with store.engine.connect() as conn:
            size = table_size(conn, spec)
        indexes = store.list_indexes()
    finally:
        store.close()
    total = sum(count for *_, count in found)
    print(f"database:   {table.url}")
    print(f"pgvector:   {table.extension}")
    print(
        f"table:      {table.schema}.{spec.embedding_table}  {_vector(table.row)}, "
        f"{total} documents, {_size(size)}"
    )
    with_documents = [(name, count) for _, name, count in found if count]
    print(f"collections ({len(with_documents)}):")
    width = max((len(name) for name, _ in with_documents), default=10)
    for name, count in with_documents:
        print(f"  {name:<{width}}  {count:>10} documents")
    empty = len(found) - len(with_documents)
    if not with_documents:
        print("  (none)")
    if empty:
        print(f"  ({empty} more in {spec.collection_table!r} without documents in this table)")
    print(f"indexes ({len(indexes)}):")
    _print_indexes(indexes, {cid: name for cid, name, _ in found}, print)
    others = [r for r in table.all if r.name != spec.embedding_table]
    if others:
        listed = ", ".join(
            f"{r.name} ({_vector(r)}{', langchain-postgres' if r.langchain_postgres else ''})"
            for r in others
        )
        print(f"other embedding tables in {table.schema}: {listed}")
    return 0


def _search(args: argparse.Namespace) -> int:
    table = _Table(args)
    tables = table.require()
    embeddings = _make_embeddings(args.embeddings, table.dimension)
    store = _store(args, args.collection, embeddings, args.distance, table.vector_type)
    try:
        _require_collection(store, tables, args.collection)
        vector = embeddings.embed_query(args.query)
        if table.dimension is not None and len(vector) != table.dimension:
            raise CommandError(
                f"the query embedding has {len(vector)} dimensions but table "
                f"{args.embedding_table!r} stores {table.dimension}; search with the model "
                "its documents were embedded with (for hashing, leave out :DIM)"
            )
        started = time.perf_counter()
        if args.mmr:
            found = store.max_marginal_relevance_search_with_score_by_vector(
                vector, k=args.k, fetch_k=max(args.fetch_k, args.k), filter=args.filter
            )
        else:
            found = store.similarity_search_with_score_by_vector(
                vector, k=args.k, filter=args.filter
            )
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    how = "MMR" if args.mmr else f"{store.distance_strategy.value} distance"
    print(f"{len(found)} result(s) from {args.collection!r} by {how} in {elapsed * 1000:.0f} ms")
    for rank, (doc, distance) in enumerate(found, 1):
        print(f"{rank:>3}. {doc.id}  distance={distance:.4f}")
        print(f"     {_preview(doc.page_content)}")
        if doc.metadata:
            print(f"     {json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True)}")
    return 0


def _init(args: argparse.Namespace) -> int:
    store = PGVecStore(
        HashingEmbeddings(),
        connection=args.url,
        collection_name=args.collection,
        embedding_length=args.dimension,
        vector_type="halfvec" if args.vector_type == "halfvec" else "vector",
        schema=args.schema,
        collection_table=args.collection_table,
        embedding_table=args.embedding_table,
        full_text=args.full_text or False,
        partitioned=True if args.partitioned else None,
    )
    try:
        store.create_tables()
        for role in args.grant:
            store.grant(role)
        for role in args.grant_read:
            store.grant(role, write=False)
    finally:
        store.close()
    table = _spec(args).qualified_embedding_table
    print(
        f"table {table} ({args.vector_type}({args.dimension})) and collection "
        f"{args.collection!r} ready"
    )
    for role in args.grant:
        print(f"granted SELECT, INSERT, UPDATE, DELETE to {role}")
    for role in args.grant_read:
        print(f"granted SELECT to {role}")
    return 0


def _index_create(args: argparse.Namespace) -> int:
    try:
        if args.method == "hnsw":
            spec: HNSW | IVFFlat = HNSW(
                m=args.m if args.m is not None else 16,
                ef_construction=args.ef_construction if args.ef_construction is not None else 64,
                quantization=args.quantization,
            )
        else:
            spec = IVFFlat(lists=args.lists)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    table = _Table(args)
    tables = table.require()
    store = _store(args, args.collection, distance=args.distance, vector_type=table.vector_type)
    try:
        if args.collection:
            _require_collection(store, tables, args.collection)
        started = time.perf_counter()
        name = store.create_index(
            spec,
            name=args.name,
            concurrently=args.concurrently,
            per_collection=args.per_collection,
            maintenance_work_mem=args.maintenance_work_mem,
        )
        elapsed = time.perf_counter() - started
        info = next((i for i in store.list_indexes() if i.name == name), None)
    finally:
        store.close()
    detail = ""
    if info is not None:
        quantized = f", {info.quantization}" if info.quantization else ""
        detail = f" ({info.method}{quantized}, {info.opclass}, {_size(info.size_bytes)})"
    print(f"index {name}{detail} ready in {elapsed:.1f}s")
    return 0


def _index_list(args: argparse.Namespace) -> int:
    table = _Table(args)
    tables = table.require()
    store = _store(args, vector_type=table.vector_type)
    try:
        indexes = store.list_indexes()
        names = {cid: name for cid, name, _ in _collections(store, tables)}
    finally:
        store.close()
    print(f"indexes on {table.schema}.{args.embedding_table} ({len(indexes)}):")
    _print_indexes(indexes, names, print)
    return 0


def _index_drop(args: argparse.Namespace) -> int:
    table = _Table(args)
    table.require()
    store = _store(args, vector_type=table.vector_type)
    try:
        existing = {index.name: index for index in store.list_indexes()}
        if args.name not in existing:
            listed = ", ".join(sorted(existing)) or "none"
            raise CommandError(
                f"no index {args.name!r} on {table.schema}.{args.embedding_table} "
                f"(its indexes: {listed})"
            )
        if existing[args.name].primary:
            raise CommandError(f"{args.name!r} is the table's primary key; it cannot be dropped")
        store.drop_index(args.name, concurrently=args.concurrently)
    finally:
        store.close()
    print(f"dropped index {args.name}")
    return 0


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _embedded(args: argparse.Namespace) -> int:
    from . import embedded

    directory = Path(args.dir).expanduser().resolve() if args.dir else embedded.data_dir()
    if args.action == "stop":
        if not (directory / "postmaster.pid").exists():
            print(f"the embedded server in {directory} is not running")
            return 0
        embedded.stop(directory)
        print(f"stopped the embedded server in {directory}")
        return 0
    url = embedded.url(directory, keep_running=True)
    if args.action == "url":
        print(_plain(url) if args.plain else url)
        return 0
    print(f"the embedded PostgreSQL is running (data in {directory})")
    print(f"  SQLAlchemy URL: {url}")
    print(f"  libpq URL:      {_plain(url)}")
    print(f'  psql:           psql "{_plain(url)}"')
    print(f"  use it:         export PGVEC_URL='{url}'")
    print(f"  stop it:        pgvec embedded stop{' --dir ' + str(directory) if args.dir else ''}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from ._migrate import migrate_from_langchain_postgres

    existing = _Table(args)
    vector_type = args.vector_type or existing.vector_type
    store = _store(args, args.to_collection or args.collection, vector_type=vector_type)
    try:
        report = migrate_from_langchain_postgres(
            args.from_url,
            store,
            None if args.all else args.collection,
            chunk_size=args.chunk_size,
            source_schema=args.from_schema,
        )
    finally:
        store.close()
    print(report)
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pgvec`` command."""
    parser = argparse.ArgumentParser(
        prog="pgvec",
        description="Inspect, search, index and migrate langchain-pgvec vector stores.",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("PGVEC_URL") or None,
        help="database URL (default: $PGVEC_URL, else the embedded server)",
    )
    parser.add_argument("--schema", default=None, help="schema of the tables")
    parser.add_argument(
        "--collection-table", default=DEFAULT_COLLECTION_TABLE, help="collection table name"
    )
    parser.add_argument(
        "--embedding-table", default=DEFAULT_EMBEDDING_TABLE, help="embedding table name"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    init = commands.add_parser(
        "init", help="create the extension, tables and a collection (as their owner)"
    )
    init.add_argument("--dimension", type=_positive_int, required=True, help="vector dimension")
    init.add_argument("--collection", "-c", default="langchain", help="a collection to create")
    init.add_argument("--vector-type", choices=("vector", "halfvec"), default="vector")
    init.add_argument(
        "--full-text",
        nargs="?",
        const=True,
        default=None,
        metavar="CONFIG",
        help="add the full-text column (text search configuration, default english)",
    )
    init.add_argument(
        "--partitioned",
        action="store_true",
        help="a new table partitioned by collection (one partition per collection)",
    )
    init.add_argument(
        "--grant", action="append", default=[], metavar="ROLE", help="an application role"
    )
    init.add_argument(
        "--grant-read",
        action="append",
        default=[],
        metavar="ROLE",
        help="a role that only searches",
    )
    init.set_defaults(handler=_init)

    info = commands.add_parser("info", help="the table, its collections and indexes")
    info.set_defaults(handler=_info)

    search = commands.add_parser("search", help="search a collection")
    search.add_argument("query", help="the text to search for")
    search.add_argument("--collection", "-c", required=True, help="collection name")
    search.add_argument("--k", "-k", type=_positive_int, default=5, help="results (default 5)")
    search.add_argument("--filter", type=_json_object, default=None, help="metadata filter, JSON")
    search.add_argument(
        "--embeddings",
        type=_embeddings_spec,
        default=("hashing", None),
        help="hashing[:DIM] (default; DIM from the table), openai[:MODEL], huggingface[:MODEL]",
    )
    search.add_argument(
        "--distance",
        choices=[d.value for d in DistanceStrategy],
        default="cosine",
        help="distance (default cosine)",
    )
    search.add_argument("--mmr", action="store_true", help="maximal marginal relevance")
    search.add_argument("--fetch-k", type=_positive_int, default=20, help="MMR candidates")
    search.set_defaults(handler=_search)

    index = commands.add_parser("index", help="create, list and drop vector indexes")
    index_commands = index.add_subparsers(dest="index_command", metavar="ACTION")
    index_commands.required = True
    create = index_commands.add_parser("create", help="build an HNSW or IVFFlat index")
    create.add_argument("method", choices=["hnsw", "ivfflat"])
    create.add_argument("--collection", "-c", help="collection (for --per-collection)")
    create.add_argument("--m", type=_positive_int, help="HNSW: connections per layer (16)")
    create.add_argument(
        "--ef-construction", type=_positive_int, help="HNSW: build candidate list (64)"
    )
    create.add_argument(
        "--quantization",
        choices=["halfvec", "binary"],
        help="HNSW: index halfvec or binary-quantized vectors; searches re-rank exactly",
    )
    create.add_argument("--lists", type=_positive_int, help="IVFFlat: lists (default rows/1000)")
    create.add_argument(
        "--per-collection", action="store_true", help="a partial index for one collection"
    )
    create.add_argument(
        "--concurrently", action="store_true", help="CREATE INDEX CONCURRENTLY (no write lock)"
    )
    create.add_argument(
        "--distance",
        choices=[d.value for d in DistanceStrategy],
        default="cosine",
        help="the distance the index serves (default cosine)",
    )
    create.add_argument("--name", help="index name (default <table>_<method>_<distance>)")
    create.add_argument("--maintenance-work-mem", help="build memory, e.g. 1GB")
    create.set_defaults(handler=_index_create, check=_check_index_create, parser=create)
    listing = index_commands.add_parser("list", help="list the table's indexes")
    listing.set_defaults(handler=_index_list)
    drop = index_commands.add_parser("drop", help="drop an index")
    drop.add_argument("name", help="the index name (see `pgvec index list`)")
    drop.add_argument("--concurrently", action="store_true", help="DROP INDEX CONCURRENTLY")
    drop.set_defaults(handler=_index_drop)

    server = commands.add_parser("embedded", help="the embedded PostgreSQL server")
    server.add_argument("action", choices=["start", "stop", "url"])
    server.add_argument("--dir", help="data directory (default: the user data directory)")
    server.add_argument(
        "--plain", action="store_true", help="url: print the postgresql:// form (for psql)"
    )
    server.set_defaults(handler=_embedded)

    migrate = commands.add_parser(
        "migrate", help="copy collections from langchain-postgres' PGVector tables"
    )
    migrate.add_argument("--from-url", required=True, help="database langchain-postgres used")
    which = migrate.add_mutually_exclusive_group(required=True)
    which.add_argument("--collection", "-c", help="the collection to copy")
    which.add_argument("--all", action="store_true", help="copy every collection")
    migrate.add_argument("--to-collection", help="name it differently here (one collection)")
    migrate.add_argument(
        "--from-schema", default=None, help="schema of the langchain-postgres tables"
    )
    migrate.add_argument(
        "--vector-type",
        choices=["vector", "halfvec"],
        help="for a new table: vector (float32, default) or halfvec (float16)",
    )
    migrate.add_argument(
        "--chunk-size", type=_positive_int, default=5000, help="rows per chunk (5000)"
    )
    migrate.set_defaults(handler=_migrate, check=_check_migrate, parser=migrate)
    return parser


def _check_index_create(args: argparse.Namespace) -> str | None:
    if args.method == "ivfflat" and (
        args.m is not None or args.ef_construction is not None or args.quantization is not None
    ):
        return "--m, --ef-construction and --quantization are HNSW options; IVFFlat takes --lists"
    if args.method == "hnsw" and args.lists is not None:
        return "--lists is an IVFFlat option; HNSW takes --m and --ef-construction"
    if args.per_collection and not args.collection:
        return "--per-collection needs --collection NAME"
    return None


def _check_migrate(args: argparse.Namespace) -> str | None:
    if args.all and args.to_collection:
        return "--to-collection renames one collection; it cannot go with --all"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pgvec`` command.

    Args:
        argv: The arguments (without the program name); None reads ``sys.argv``.

    Returns:
        The exit status: 0 on success, 1 on an error. Bad arguments exit with
        status 2 (``SystemExit``, from argparse).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    check = getattr(args, "check", None)
    problem = check(args) if check is not None else None
    if problem is not None:
        args.parser.error(problem)  # exits with status 2
    try:
        status: int = args.handler(args)
    except PGVecError as exc:
        print(f"pgvec: error: {exc}", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        reason = str(exc.orig).strip() if exc.orig is not None else str(exc)
        print(f"pgvec: error: database error: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pgvec: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
