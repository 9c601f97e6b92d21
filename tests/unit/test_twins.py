"""Twins by contract: every public method of PGVecStore and PGVecRecordManager that does
I/O has an ``a``-twin, a coroutine function with the very same parameters (names, kinds,
defaults, types); ``transaction`` and ``atransaction`` are a context manager's twins."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from langchain_pgvec import PGVecRecordManager, PGVecStore

#: public methods that do no I/O, and so have no twin
WITHOUT_IO = {"as_retriever", "refresh"}
#: twins that are not coroutine functions: a context manager and its async twin
CONTEXT_MANAGERS = {"transaction"}
CLASSES = [PGVecStore, PGVecRecordManager]


def public_sync_methods(cls: type) -> list[str]:
    names = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or name in WITHOUT_IO:
            continue
        if name in CONTEXT_MANAGERS or name[1:] in CONTEXT_MANAGERS:
            continue
        if isinstance(member, property) or not callable(member):
            continue
        if inspect.iscoroutinefunction(member):
            continue
        names.append(name)
    return sorted(names)


def methods() -> list[Any]:
    return [
        pytest.param(cls, name, id=f"{cls.__name__}.{name}")
        for cls in CLASSES
        for name in public_sync_methods(cls)
    ]


def test_the_walk_sees_the_methods() -> None:
    names = public_sync_methods(PGVecStore)
    assert {"similarity_search", "add_texts", "create_index", "explain", "grant"} <= set(names)
    assert "from_embeddings" in names and "close" in names and "index" in names
    assert set(public_sync_methods(PGVecRecordManager)) == {
        "create_schema",
        "delete_keys",
        "exists",
        "get_time",
        "list_keys",
        "update",
    }


@pytest.mark.parametrize(("cls", "name"), methods())
def test_every_public_method_has_an_async_twin_with_its_parameters(cls: type, name: str) -> None:
    sync = getattr(cls, name)
    twin = getattr(cls, "a" + name, None)
    assert twin is not None, f"{cls.__name__}.{name} has no async twin a{name}"
    assert inspect.iscoroutinefunction(twin), f"a{name} is not a coroutine function"
    sync_parameters = list(inspect.signature(sync).parameters.values())
    async_parameters = list(inspect.signature(twin).parameters.values())
    assert async_parameters == sync_parameters, (name, sync_parameters, async_parameters)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_async_methods_have_their_sync_twin(cls: type) -> None:
    for name, member in inspect.getmembers(cls):
        if (
            name.startswith("a")
            and not name.startswith("_")
            and inspect.iscoroutinefunction(member)
        ):
            assert callable(getattr(cls, name[1:], None)), f"{name} has no sync twin"


@pytest.mark.parametrize("name", sorted(CONTEXT_MANAGERS))
def test_context_manager_twins_take_the_same_parameters(name: str) -> None:
    sync, twin = getattr(PGVecStore, name), getattr(PGVecStore, "a" + name)
    assert not inspect.iscoroutinefunction(twin)  # `async with store.atransaction()`
    sync_signature, async_signature = inspect.signature(sync), inspect.signature(twin)
    assert list(async_signature.parameters.values()) == list(sync_signature.parameters.values())
    assert "AbstractContextManager" in str(sync_signature.return_annotation)
    assert "AbstractAsyncContextManager" in str(async_signature.return_annotation)
