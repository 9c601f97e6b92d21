"""The embedding model every example uses: offline by default, a real one on request.

``--openai`` (langchain-openai, OPENAI_API_KEY) or ``--hf`` (langchain-huggingface with
sentence-transformers) switch to a real model when its package is installed; by default
the examples use HashingEmbeddings, which needs no download and no key.
"""

from __future__ import annotations

import argparse

from langchain_core.embeddings import Embeddings

from langchain_pgvec import HashingEmbeddings


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--openai`` and ``--hf`` to an example's argument parser."""
    parser.add_argument("--openai", action="store_true", help="use OpenAI embeddings")
    parser.add_argument("--hf", action="store_true", help="use a sentence-transformers model")


def embeddings_from(
    args: argparse.Namespace, parser: argparse.ArgumentParser, default: Embeddings | None = None
) -> Embeddings:
    """The model the parsed arguments ask for (``default``, else HashingEmbeddings(256))."""
    if args.openai:
        try:
            from langchain_openai import OpenAIEmbeddings
        except ImportError:
            parser.error("--openai needs `pip install langchain-openai` and OPENAI_API_KEY")
        return OpenAIEmbeddings(model="text-embedding-3-small")
    if args.hf:
        try:
            from langchain_huggingface import HuggingFaceEmbeddings
        except ImportError:
            parser.error("--hf needs `pip install langchain-huggingface sentence-transformers`")
        return HuggingFaceEmbeddings(model_name="sentence-transformers/all-MiniLM-L6-v2")
    return default or HashingEmbeddings(dimension=256)


def embeddings_from_args(doc: str | None, default: Embeddings | None = None) -> Embeddings:
    """Parse the command line of an example whose only options pick the model."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    add_model_arguments(parser)
    return embeddings_from(parser.parse_args(), parser, default)
