"""Ingest a folder of text files: split, bulk-load with a progress bar, search.

Shows the usual document pipeline: read files, split them into overlapping chunks
with langchain-text-splitters' ``RecursiveCharacterTextSplitter`` (keeping each
chunk's file and offset as metadata), load them with ``add_documents(...,
show_progress=True)`` (batched embedding, COPY BINARY into PostgreSQL), and search
with a per-file filter. Chunk ids are ``<file>#<n>``, so ingesting again replaces
rather than duplicates; a changed file is re-ingested by deleting its chunks by
metadata filter and adding the new ones.

By default it writes a few sample files to a temporary folder; ``--dir`` ingests
your own (``*.txt`` and ``*.md``, recursively). Needs
``pip install langchain-text-splitters``. Runs offline with ``HashingEmbeddings``;
``--openai`` or ``--hf`` switch to a real embedding model when installed.

    python examples/ingest_files.py [--dir ~/notes]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _models import add_model_arguments, embeddings_from
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from langchain_pgvec import PGVecStore

try:
    from langchain_text_splitters import RecursiveCharacterTextSplitter
except ImportError as exc:  # pragma: no cover - a hint for people running it by hand
    raise SystemExit("this example needs `pip install langchain-text-splitters`") from exc

SAMPLES = {
    "postgres/mvcc.txt": """\
PostgreSQL uses multi-version concurrency control. Every transaction sees a snapshot of
the data as it was when the snapshot was taken, so readers never block writers and
writers never block readers.

An UPDATE writes a new version of the row and marks the old one as dead. VACUUM later
reclaims the space of dead row versions that no running transaction can still see.

Long-running transactions hold back that cleanup, because the oldest snapshot decides
which dead rows are still visible to someone.""",
    "postgres/indexes.md": """\
# Indexes

A B-tree index serves equality and range lookups and can return rows in sorted order.

A GIN index serves containment queries on JSONB and arrays, and full-text search on
tsvector columns.

pgvector adds two index types for vectors. HNSW builds a layered proximity graph: it is
slower to build but gives the best speed and recall trade-off. IVFFlat clusters the
vectors into lists and probes a few lists per query: it builds quickly but needs data
before it is created, because it trains its clusters on the rows present.""",
    "postgres/copy.txt": """\
COPY moves data in bulk between a table and a file or the client. In binary format it
skips text parsing entirely, which makes it the fastest way to load many rows.

A COPY runs inside a transaction like any other statement: if it fails halfway, none
of its rows are visible.""",
    "kitchen/bread.md": """\
# Sourdough

A sourdough starter is a culture of wild yeast and lactic acid bacteria. Feed it flour
and water every day and keep it at room temperature until it doubles within hours.

The dough wants a long, cool fermentation. Stretch and fold it a few times during the
first hours, shape it, and let it proof overnight in the fridge.

Bake in a preheated cast iron pot with the lid on for steam, then without the lid until
the crust is deep brown.""",
    "kitchen/coffee.txt": """\
Espresso forces hot water through finely ground coffee at about nine bars of pressure.
The grind size controls the flow: finer grounds slow the shot down.

A French press steeps coarse grounds for four minutes before the plunger separates
them. It makes a heavier cup with more oils than a paper filter lets through.""",
}


def embeddings_from_args() -> tuple[Embeddings, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="a folder of .txt/.md files to ingest")
    add_model_arguments(parser)
    args = parser.parse_args()
    return embeddings_from(args, parser), args.dir


def write_samples(folder: Path) -> None:
    for name, content in SAMPLES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content + "\n", encoding="utf-8")


def load_and_split(folder: Path, files: list[Path]) -> list[Document]:
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=300, chunk_overlap=60, add_start_index=True
    )
    chunks: list[Document] = []
    for path in files:
        source = path.relative_to(folder).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace").replace("\x00", "")
        pieces = splitter.create_documents([text], metadatas=[{"source": source}])
        for number, piece in enumerate(pieces):
            piece.id = f"{source}#{number}"
            piece.metadata["chunk"] = number
            chunks.append(piece)
    return chunks


def ingest(store: PGVecStore, folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.suffix in {".txt", ".md"} and p.is_file())
    chunks = load_and_split(folder, files)
    print(f"{len(files)} files in {folder} -> {len(chunks)} chunks")
    started = time.perf_counter()
    store.add_documents(chunks, batch_size=16, show_progress=True)
    print(
        f"ingested in {time.perf_counter() - started:.2f}s; "
        f"the collection holds {store.count()} chunks"
    )


def main() -> None:
    embeddings, folder = embeddings_from_args()
    dimension = len(embeddings.embed_query("probe"))
    store = PGVecStore(
        embeddings, collection_name="example_ingest", embedding_table=f"examples_{dimension}"
    )
    store.delete_collection()  # start fresh on every run
    with tempfile.TemporaryDirectory() as scratch:
        sample_folder = folder is None
        folder = folder.expanduser().resolve() if folder else Path(scratch)
        if sample_folder:
            write_samples(folder)
        ingest(store, folder)
        print("ingesting again replaces chunks by id: ", end="")
        ingest(store, folder)

        print("\nsearch: 'why does a long transaction stop vacuum'")
        for doc, distance in store.similarity_search_with_score(
            "why does a long transaction stop vacuum", k=3
        ):
            where = f"{doc.metadata['source']}#{doc.metadata['chunk']}"
            print(f"  {distance:.3f}  {where:<22} {doc.page_content[:70]!r}...")

        print("\nonly in kitchen/coffee.txt: 'grind size'")
        only = {"source": "kitchen/coffee.txt"}
        for doc in store.similarity_search("grind size", k=2, filter=only):
            print(
                f"  chunk {doc.metadata['chunk']} @ {doc.metadata['start_index']}: "
                f"{doc.page_content[:70]!r}..."
            )

        if sample_folder:  # a file changed: replace its chunks
            path = folder / "kitchen/coffee.txt"
            path.write_text("Cold brew steeps coarse coffee in cold water overnight.\n")
            removed = store.count(filter=only)
            store.delete(filter=only)
            store.add_documents(load_and_split(folder, [path]))
            print(
                f"\nkitchen/coffee.txt changed: {removed} old chunks replaced by "
                f"{store.count(filter=only)}; "
                f"{store.similarity_search('cold brew', k=1)[0].page_content!r}"
            )
    store.close()


if __name__ == "__main__":
    main()
