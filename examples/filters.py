"""Metadata filters: a tour of the filter language on a small product catalogue.

Shows every operator of the filter language ($eq $ne $gt $gte $lt $lte $between $in
$nin $like $ilike $exists $contains, and $and $or $not), dotted paths into nested
metadata ("brand.country"), the shorthand {"field": value}, a filter combined with a
similarity search, and the FilterError a malformed filter raises before any SQL runs.
Filters compile to SQL and run inside PostgreSQL (the JSONB GIN index serves the
equality-style ones); the full contract is FILTERS.md.

Runs offline with ``HashingEmbeddings``; ``--openai`` or ``--hf`` switch to a real
embedding model when its package (and key) is installed.

    python examples/filters.py
"""

from __future__ import annotations

import json
import sys
from typing import Any

from _models import embeddings_from_args

from langchain_pgvec import FilterError, PGVecStore

PRODUCTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "p01",
        "Lightweight trail running shoe with a grippy outsole",
        {
            "name": "Trail Runner 2",
            "category": "shoes",
            "price": 89.0,
            "stock": 12,
            "tags": ["running", "outdoor"],
            "brand": {"name": "Stride", "country": "DE"},
            "released": "2023-04-01",
        },
    ),
    (
        "p02",
        "Cushioned road running shoe for long distances",
        {
            "name": "Road Glide",
            "category": "shoes",
            "price": 129.0,
            "stock": 0,
            "tags": ["running"],
            "brand": {"name": "Stride", "country": "DE"},
            "released": "2024-02-15",
            "discount": 0.2,
        },
    ),
    (
        "p03",
        "Waterproof hiking boot with ankle support",
        {
            "name": "Summit Boot",
            "category": "shoes",
            "price": 159.5,
            "stock": 4,
            "tags": ["hiking", "outdoor", "waterproof"],
            "brand": {"name": "Alpen", "country": "AT"},
            "released": "2022-09-10",
        },
    ),
    (
        "p04",
        "Packable rain jacket that fits in its own pocket",
        {
            "name": "Drizzle Shell",
            "category": "jackets",
            "price": 74.99,
            "stock": 30,
            "tags": ["outdoor", "waterproof"],
            "brand": {"name": "Alpen", "country": "AT"},
            "released": "2024-05-20",
            "discount": None,
        },
    ),
    (
        "p05",
        "Insulated down jacket for cold winter days",
        {
            "name": "Polar Down",
            "category": "jackets",
            "price": 249.0,
            "stock": 7,
            "tags": ["winter", "outdoor"],
            "brand": {"name": "Nordkap", "country": "NO"},
            "released": "2021-11-01",
        },
    ),
    (
        "p06",
        "Breathable running shirt made of recycled polyester",
        {
            "name": "Tempo Tee",
            "category": "shirts",
            "price": 29.0,
            "stock": 120,
            "tags": ["running", "recycled"],
            "brand": {"name": "Stride", "country": "DE"},
            "released": "2024-01-05",
            "discount": 0.1,
        },
    ),
    (
        "p07",
        "Merino wool base layer shirt for hiking",
        {
            "name": "Merino Base",
            "category": "shirts",
            "price": 65.0,
            "stock": 18,
            "tags": ["hiking", "winter"],
            "brand": {"name": "Nordkap", "country": "NO"},
            "released": "2023-10-12",
        },
    ),
    (
        "p08",
        "Trekking poles in carbon fibre, adjustable length",
        {
            "name": "Carbon Poles",
            "category": "gear",
            "price": 110.0,
            "stock": 9,
            "tags": ["hiking"],
            "brand": {"name": "alpen", "country": "AT"},
            "released": "2023-06-30",
            "discontinued": True,
        },
    ),
]

TOUR: list[tuple[str, dict[str, Any]]] = [
    ("shorthand equality", {"category": "jackets"}),
    ("$eq on a nested field (dotted path)", {"brand.country": {"$eq": "DE"}}),
    ("$ne (a missing value also matches)", {"discontinued": {"$ne": True}}),
    ("$gt / $lte on numbers", {"price": {"$gt": 50, "$lte": 130}}),
    ("$gte on strings (code-point order)", {"released": {"$gte": "2024-01-01"}}),
    ("$lt", {"stock": {"$lt": 5}}),
    ("$between [low, high], inclusive", {"price": {"$between": [29, 74.99]}}),
    ("$in", {"brand.name": {"$in": ["Alpen", "Nordkap"]}}),
    ("$nin", {"category": {"$nin": ["shoes", "jackets"]}}),
    ("$like (case-sensitive pattern)", {"name": {"$like": "%Boot%"}}),
    ("$ilike (case-insensitive)", {"brand.name": {"$ilike": "alpen"}}),
    ("$exists: true (a null value counts as present)", {"discount": {"$exists": True}}),
    ("$exists: false", {"discount": {"$exists": False}}),
    ("$contains one element of an array", {"tags": {"$contains": "waterproof"}}),
    ("$contains every listed element", {"tags": {"$contains": ["running", "recycled"]}}),
    (
        "$and of clauses (same as putting them in one dict)",
        {"$and": [{"category": "shoes"}, {"stock": {"$gt": 0}}]},
    ),
    ("$or", {"$or": [{"price": {"$lt": 40}}, {"tags": {"$contains": "winter"}}]}),
    ("$not: the exact complement", {"$not": {"tags": {"$contains": "outdoor"}}}),
    ("several clauses: all must hold", {"brand.country": "AT", "price": {"$lt": 150}}),
]


def main() -> None:
    embeddings = embeddings_from_args(__doc__)
    dimension = len(embeddings.embed_query("probe"))
    store = PGVecStore(
        embeddings, collection_name="example_filters", embedding_table=f"examples_{dimension}"
    )
    store.delete_collection()  # start fresh on every run
    ids, texts, metadatas = zip(*PRODUCTS, strict=True)
    store.add_texts(list(texts), list(metadatas), ids=list(ids))
    print(f"{store.count()} products in {store.collection_name!r}\n")

    for title, where in TOUR:
        names = [doc.metadata["name"] for doc in store.get(filter=where)]
        print(f"{title}\n  filter: {json.dumps(where)}\n  -> {', '.join(names) or '(none)'}")

    print("\nsimilarity search for 'a rain jacket' among products under 150:")
    under = {"price": {"$lt": 150}}
    for doc, distance in store.similarity_search_with_score("a rain jacket", 3, under):
        print(f"  {distance:.3f}  {doc.metadata['name']} ({doc.metadata['price']})")

    print("\na malformed filter is rejected before it reaches PostgreSQL:")
    try:
        store.get(filter={"price": {"$gt": [1, 2]}})
    except FilterError as exc:
        print(f"  FilterError: {exc}")
    else:
        sys.exit("expected a FilterError")
    store.close()


if __name__ == "__main__":
    main()
