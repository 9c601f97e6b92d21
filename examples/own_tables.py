"""Your own tables next to the vectors: SQLAlchemy models joined to the embedding table.

Shows a user-defined declarative model, ``Product(id, name, price, ...)``, whose
composite foreign key points at the store's embedding table ``(collection_id, id)``,
with the classes for that table obtained from ``mapped_tables(TableSpec(...))``
(the same classes the store uses: same table names, same dimension). Then ONE SQL
query filters on a relational column (price) and ranks by vector similarity with the
column type's distance comparator, ``Embedding.embedding.cosine_distance(vector)``,
and the ORM relationship navigates from a product to its document and back.

Runs offline with ``HashingEmbeddings``; ``--openai`` or ``--hf`` switch to a real
embedding model when its package (and key) is installed.

    python examples/own_tables.py
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from _models import embeddings_from_args
from sqlalchemy import ForeignKeyConstraint, Numeric, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from langchain_pgvec import PGVecStore, TableSpec, mapped_tables

CATALOGUE = [
    ("kettle", "Electric kettle", "19.90", "Boils a litre of water in three minutes"),
    ("espresso", "Espresso machine", "249.00", "Pulls rich espresso shots with crema"),
    ("grinder", "Burr coffee grinder", "89.00", "Grinds coffee beans evenly for espresso"),
    ("press", "French press", "24.50", "Brews full-bodied coffee in four minutes"),
    ("moka", "Moka pot", "32.00", "Stovetop pot that brews strong espresso-like coffee"),
    ("teapot", "Cast iron teapot", "45.00", "Keeps green tea warm for an hour"),
    ("scale", "Coffee scale", "29.00", "Weighs coffee beans and water to the gram"),
    ("toaster", "Two-slice toaster", "39.00", "Toasts bread evenly on both sides"),
]


def main() -> None:
    embeddings = embeddings_from_args(__doc__)
    dimension = len(embeddings.embed_query("probe"))
    table_name = f"examples_{dimension}"
    store = PGVecStore(
        embeddings,
        collection_name="example_own_tables",
        embedding_table=table_name,
        embedding_length=dimension,
    )
    store.delete_collection()  # start fresh; products go with it (ON DELETE CASCADE)

    # The store's own classes: same table names and dimension as the store above.
    tables = mapped_tables(TableSpec(embedding_table=table_name, dimension=dimension))
    Collection, Embedding = tables.Collection, tables.Embedding

    class Base(DeclarativeBase):
        pass

    class Product(Base):
        __tablename__ = f"examples_products_{dimension}"
        __table_args__ = (
            ForeignKeyConstraint(
                ["collection_id", "doc_id"],
                [Embedding.collection_id, Embedding.id],
                ondelete="CASCADE",
            ),
        )

        id: Mapped[int] = mapped_column(primary_key=True)
        sku: Mapped[str] = mapped_column(String(40), unique=True)
        name: Mapped[str] = mapped_column(String(200))
        price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
        collection_id: Mapped[uuid.UUID] = mapped_column(Embedding.collection_id.type)
        doc_id: Mapped[str] = mapped_column(Embedding.id.type)
        document = relationship(Embedding, viewonly=True)

    # 1. the descriptions go into the vector store, with the SKU as document id
    store.add_texts(
        [description for *_, description in CATALOGUE],
        [{"sku": sku} for sku, *_ in CATALOGUE],
        ids=[sku for sku, *_ in CATALOGUE],
    )
    # 2. the products go into our own table, pointing at their documents
    Base.metadata.create_all(store.engine)
    with Session(store.engine) as session, session.begin():
        collection_id = session.scalar(
            select(Collection.id).where(Collection.name == store.collection_name)
        )
        session.add_all(
            Product(
                sku=sku,
                name=name,
                price=Decimal(price),
                collection_id=collection_id,
                doc_id=sku,
            )
            for sku, name, price, _ in CATALOGUE
        )
    print(f"{len(CATALOGUE)} products in {Product.__tablename__}, each joined to its document\n")

    # 3. one query: a price filter in SQL, ranked by similarity to the question
    question = "something to make espresso coffee"
    query_vector = embeddings.embed_query(question)
    distance = Embedding.embedding.cosine_distance(query_vector).label("distance")
    statement = (
        select(Product.name, Product.price, Embedding.content, distance)
        .join(Product.document)
        .where(Embedding.collection_id == collection_id, Product.price < 100)
        .order_by(distance)
        .limit(3)
    )
    print(f"products under 100 for {question!r}:")
    with Session(store.engine) as session:
        for name, price, content, dist in session.execute(statement):
            print(f"  {dist:.3f}  {name:<20} {price:>7}  {content}")
        print(f"\nthe SQL:\n{statement.compile(store.engine)}\n")

        # 4. from a LangChain search result back to the relational row
        [doc] = store.similarity_search("tea", k=1)
        product = session.scalars(select(Product).where(Product.doc_id == doc.id)).one()
        print(
            f"similarity_search('tea') -> document {doc.id!r} -> product "
            f"{product.name!r} at {product.price}, text: {product.document.content!r}"
        )
    store.close()


if __name__ == "__main__":
    main()
