"""Run one test body against a store's sync methods and, again, its async twins: the one
twin runner of the tests (the ``run`` fixture, and :func:`call`)."""

from __future__ import annotations

import inspect
from typing import Any


class Runner:
    """Calls a store method by its sync name, or its async twin, per the test's mode.

    ``await run(store, "add_texts", texts)`` calls ``store.add_texts(texts)`` in
    sync mode and ``await store.aadd_texts(texts)`` in async mode.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __call__(self, obj: Any, method: str, /, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return getattr(obj, method)(*args, **kwargs)
        result = getattr(obj, "a" + method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result


async def call(obj: Any, mode: str, method: str, /, *args: Any, **kwargs: Any) -> Any:
    """``obj.<method>(...)`` in ``"sync"`` mode, ``await obj.a<method>(...)`` in ``"async"``."""
    return await Runner(mode)(obj, method, *args, **kwargs)
