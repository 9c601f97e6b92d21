"""PGVecStore's index methods: vector indexes, metadata indexes, EXPLAIN, guidance."""

from __future__ import annotations

from typing import Any


class IndexMethods:
    """Index management for :class:`PGVecStore` (mixed into it)."""

    def _warn_if_unindexed(self, state: Any) -> None:
        """Called before every search with the cached state; must not do I/O."""
