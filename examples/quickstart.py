"""Quickstart: a vector store on PostgreSQL + pgvector in a dozen lines, no setup.

Shows: creating a store on the embedded PostgreSQL (or $PGVEC_URL), adding 50 short
documents with metadata, similarity search, search with a metadata filter, maximal
marginal relevance (MMR) and a LangChain retriever.

Runs offline with ``HashingEmbeddings`` (lexical, not semantic); pass ``--openai`` or
``--hf`` to use a real model when its package (and key) is installed.

    python examples/quickstart.py
"""

from __future__ import annotations

from _models import embeddings_from_args

from langchain_pgvec import PGVecStore

TOPICS = {
    "databases": [
        "PostgreSQL is a relational database with a rich extension ecosystem",
        "pgvector adds vector similarity search to PostgreSQL",
        "An HNSW index makes approximate nearest neighbour search fast",
        "IVFFlat indexes cluster vectors into lists and probe a few of them",
        "JSONB columns store schemaless metadata next to relational data",
        "A GIN index speeds up JSONB containment queries",
        "COPY is the fastest way to load many rows into PostgreSQL",
        "Transactions make a batch of writes all or nothing",
        "Write-ahead logging keeps committed data safe after a crash",
        "Connection pools reuse database connections across requests",
    ],
    "cooking": [
        "Fresh basil and tomatoes make a simple summer pasta sauce",
        "Sourdough bread needs a lively starter and a long fermentation",
        "Roasting vegetables at high heat caramelises their sugars",
        "A good risotto wants warm stock added a ladle at a time",
        "Braising turns tough cuts of meat tender over low heat",
        "Salt the pasta water until it tastes like the sea",
        "Whisk egg whites to stiff peaks for a light souffle",
        "Toast spices in a dry pan to wake up their aroma",
        "Rest a steak after cooking so its juices settle",
        "Pickled onions add brightness to rich dishes",
    ],
    "astronomy": [
        "Jupiter is the largest planet in the solar system",
        "A light year is the distance light travels in one year",
        "Neutron stars are the collapsed cores of massive stars",
        "The Andromeda galaxy is approaching the Milky Way",
        "Saturn's rings are made mostly of ice particles",
        "Black holes bend light with their enormous gravity",
        "The Moon always shows the same face to the Earth",
        "Comets grow tails when they approach the Sun",
        "Exoplanets are found by the dimming of their stars",
        "A solar eclipse happens when the Moon blocks the Sun",
    ],
    "gardening": [
        "Tomato plants need full sun and regular watering",
        "Compost feeds the soil with organic matter",
        "Prune roses in late winter before new growth starts",
        "Basil grows well in warm soil next to tomatoes",
        "Mulch keeps moisture in the soil during dry weeks",
        "Plant garlic cloves in autumn for a summer harvest",
        "Earthworms are a sign of healthy garden soil",
        "Raised beds warm up faster in spring",
        "Water plants in the morning to reduce evaporation",
        "Companion planting keeps some pests away",
    ],
    "cycling": [
        "A well-oiled chain makes pedalling smoother",
        "Check tyre pressure before every long ride",
        "Climbing hills builds leg strength and endurance",
        "Clipless pedals connect shoes to the bike",
        "A helmet protects the head in a fall",
        "Gravel bikes handle both roads and dirt tracks",
        "Lights keep cyclists visible at night",
        "Drafting behind another rider saves energy",
        "A bike fit prevents knee and back pain",
        "Carry a spare inner tube and a pump",
    ],
}


def main() -> None:
    embeddings = embeddings_from_args(__doc__)
    dimension = len(embeddings.embed_query("probe"))
    # connection=None: $PGVEC_URL if set, otherwise the embedded PostgreSQL
    store = PGVecStore(
        embeddings,
        collection_name="quickstart",
        embedding_table=f"quickstart_{dimension}",
    )
    store.delete_collection()  # start fresh on every run

    texts, metadatas, ids = [], [], []
    for topic, sentences in TOPICS.items():
        for number, sentence in enumerate(sentences):
            texts.append(sentence)
            metadatas.append({"topic": topic, "rank": number, "words": len(sentence.split())})
            ids.append(f"{topic}-{number}")
    store.add_texts(texts, metadatas, ids=ids)
    print(f"stored {store.count()} documents in collection {store.collection_name!r}\n")

    print("similarity search: 'tomatoes and basil'")
    for doc, distance in store.similarity_search_with_score("tomatoes and basil", k=4):
        print(f"  {distance:.3f}  [{doc.metadata['topic']}] {doc.page_content}")

    print("\nwith a filter: topic is gardening, at most 8 words")
    garden = {"topic": "gardening", "words": {"$lte": 8}}
    for doc in store.similarity_search("tomatoes and basil", k=3, filter=garden):
        print(f"  [{doc.metadata['topic']}, {doc.metadata['words']} words] {doc.page_content}")

    print("\nMMR: relevant and diverse results for 'index'")
    for doc in store.max_marginal_relevance_search("index", k=3, fetch_k=20, lambda_mult=0.5):
        print(f"  [{doc.metadata['topic']}] {doc.page_content}")

    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"topic": "astronomy"}})
    print("\nretriever (astronomy only): 'the sun and the moon'")
    for doc in retriever.invoke("the sun and the moon"):
        print(f"  {doc.id}: {doc.page_content}")


if __name__ == "__main__":
    main()
