"""Retrieval-augmented generation: an LCEL chain with the store as its retriever.

Shows the store behind ``as_retriever()`` in a LangChain Expression Language chain::

    retriever | format_docs  ->  ChatPromptTemplate  ->  chat model  ->  StrOutputParser

returning the answer together with the documents it was grounded on (their ids are
the "sources"), a metadata filter passed through the retriever, and streaming.

By default it runs offline: ``HashingEmbeddings`` for the vectors and langchain-core's
``FakeListChatModel`` (canned answers) for the model, so what you see is the
retrieval and the prompt, not a real model's wording. With ``--openai`` (needs
``pip install langchain-openai`` and ``OPENAI_API_KEY``) it uses ``ChatOpenAI`` and
``OpenAIEmbeddings``.

    python examples/rag_chain.py [--openai] [--show-prompt]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel, FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

from langchain_pgvec import HashingEmbeddings, PGVecStore

HANDBOOK = [
    ("leave-1", "hr", "Employees get 28 days of paid annual leave per calendar year."),
    ("leave-2", "hr", "Up to 5 unused leave days can be carried over into the next year."),
    ("leave-3", "hr", "Parental leave is 16 weeks at full pay for every new parent."),
    ("remote-1", "hr", "Staff may work remotely up to three days a week."),
    ("remote-2", "it", "Remote work requires the company VPN and a managed laptop."),
    ("laptop-1", "it", "New laptops are ordered through the IT portal and arrive in a week."),
    ("laptop-2", "it", "Lost or stolen laptops must be reported to IT security within a day."),
    ("expense-1", "finance", "Expenses are claimed in the finance app within 30 days."),
    ("expense-2", "finance", "Travel by train is preferred over flights under 500 km."),
    ("expense-3", "finance", "Meals while travelling are reimbursed up to 40 euros a day."),
]

QUESTIONS = [
    ("How many days of annual leave do I get, and can I carry days over?", None),
    ("What do I need to work remotely?", None),
    ("How much can I spend on meals when I travel?", {"team": "finance"}),
]

# What the fake model answers, in order (a real model writes its own from the context).
CANNED = [
    "You get 28 days of paid annual leave a year and may carry up to 5 unused days over.",
    "You may work remotely up to three days a week, using the VPN and a managed laptop.",
    "Meals while travelling are reimbursed up to 40 euros a day.",
]

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question using only the context below. Cite the ids in brackets. "
            "If the context does not say, answer that you do not know.\n\n"
            "Context:\n{context}",
        ),
        ("human", "{question}"),
    ]
)


def format_docs(docs: list[Document]) -> str:
    return "\n".join(f"[{doc.id}] {doc.page_content}" for doc in docs)


def models_from_args() -> tuple[Embeddings, BaseChatModel, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openai", action="store_true", help="use ChatOpenAI and OpenAIEmbeddings")
    parser.add_argument("--show-prompt", action="store_true", help="print the first prompt")
    args = parser.parse_args()
    if args.openai:
        try:
            from langchain_openai import ChatOpenAI, OpenAIEmbeddings
        except ImportError:
            parser.error("--openai needs `pip install langchain-openai`")
        if not os.environ.get("OPENAI_API_KEY"):
            parser.error("--openai needs the OPENAI_API_KEY environment variable")
        return (
            OpenAIEmbeddings(model="text-embedding-3-small"),
            ChatOpenAI(model="gpt-4o-mini", temperature=0),
            args.show_prompt,
        )
    return HashingEmbeddings(dimension=256), FakeListChatModel(responses=CANNED), args.show_prompt


def main() -> None:
    embeddings, model, show_prompt = models_from_args()
    dimension = len(embeddings.embed_query("probe"))
    store = PGVecStore(
        embeddings, collection_name="example_rag", embedding_table=f"examples_{dimension}"
    )
    store.delete_collection()  # start fresh on every run
    store.add_texts(
        [text for *_, text in HANDBOOK],
        [{"team": team} for _, team, _ in HANDBOOK],
        ids=[doc_id for doc_id, *_ in HANDBOOK],
    )
    print(f"{store.count()} handbook passages indexed; model: {type(model).__name__}\n")

    def chain_for(search_filter: dict[str, str] | None) -> Any:
        kwargs = {"k": 3} if search_filter is None else {"k": 3, "filter": search_filter}
        retriever = store.as_retriever(search_kwargs=kwargs)
        answer = (
            RunnablePassthrough.assign(context=lambda x: format_docs(x["docs"]))
            | PROMPT
            | model
            | StrOutputParser()
        )
        # {"docs": retrieved documents, "question": the input} -> add "answer"
        return RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(
            answer=answer
        )

    for number, (question, search_filter) in enumerate(QUESTIONS):
        result = chain_for(search_filter).invoke(question)
        note = f"  (retriever filter: {search_filter})" if search_filter else ""
        print(f"Q: {question}{note}")
        print(f"A: {result['answer']}")
        print(f"   sources: {', '.join(doc.id or '?' for doc in result['docs'])}\n")
        if show_prompt and number == 0:
            messages = PROMPT.invoke(
                {"context": format_docs(result["docs"]), "question": question}
            ).to_messages()
            print("   the prompt the model saw:")
            for message in messages:
                print(f"   [{message.type}] {message.content}")
            print()

    # The plain "retriever | format_docs | prompt | model | parser" chain streams tokens.
    retriever = store.as_retriever(search_kwargs={"k": 2})
    plain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | PROMPT
        | model  # the fake model cycles through its answers: this is the first again
        | StrOutputParser()
    )
    print("streamed: ", end="")
    for piece in plain.stream("How many days of annual leave do I get?"):
        print(piece, end="", flush=True)
    print()
    store.close()


if __name__ == "__main__":
    main()
