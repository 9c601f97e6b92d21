"""Twins by contract: every public method of PGVecStore that does I/O has an ``a``-twin,
a coroutine function with the very same parameters (names, kinds, defaults, types)."""

from __future__ import annotations

import inspect

import pytest

from langchain_pgvec import PGVecStore

#: public methods that do no I/O, and so have no twin
WITHOUT_IO = {"as_retriever", "refresh"}


def public_sync_methods() -> list[str]:
    names = []
    for name, member in inspect.getmembers(PGVecStore):
        if name.startswith("_") or name in WITHOUT_IO or isinstance(member, property):
            continue
        if not callable(member) or inspect.iscoroutinefunction(member):
            continue
        names.append(name)
    return sorted(names)


def test_the_walk_sees_the_methods() -> None:
    names = public_sync_methods()
    assert {"similarity_search", "add_texts", "create_index", "explain", "grant"} <= set(names)
    assert "from_embeddings" in names and "close" in names


@pytest.mark.parametrize("name", public_sync_methods())
def test_every_public_method_has_an_async_twin_with_its_parameters(name: str) -> None:
    sync = getattr(PGVecStore, name)
    twin = getattr(PGVecStore, "a" + name, None)
    assert twin is not None, f"PGVecStore.{name} has no async twin a{name}"
    assert inspect.iscoroutinefunction(twin), f"a{name} is not a coroutine function"
    sync_parameters = list(inspect.signature(sync).parameters.values())
    async_parameters = list(inspect.signature(twin).parameters.values())
    assert async_parameters == sync_parameters, (name, sync_parameters, async_parameters)


def test_async_methods_have_their_sync_twin() -> None:
    for name, member in inspect.getmembers(PGVecStore):
        if (
            name.startswith("a")
            and not name.startswith("_")
            and inspect.iscoroutinefunction(member)
        ):
            assert callable(getattr(PGVecStore, name[1:], None)), f"{name} has no sync twin"
