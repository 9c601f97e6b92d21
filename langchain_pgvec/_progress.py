"""Progress bars on stderr: one policy for when to show them, the bar of an index build.

A bar is shown when asked (``show_progress=True``), or, left to the default (None),
when stderr is a terminal and the work is long enough to want one; never when
stderr is missing (``sys.stderr`` is None under ``pythonw`` and some services).
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from . import _index_specs


def shown(show: bool | None, rows: int | None = None, at_least: int = 1000) -> bool:
    """Whether to show a bar: as asked, else on a terminal for ``at_least`` rows (or
    for any work without a row count)."""
    if show is not None:
        return show
    if rows is not None and rows < at_least:
        return False
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def rows_bar(total: int, show: bool | None, desc: str = "pgvec add") -> tqdm[Any]:
    """A bar over ``total`` documents (disabled unless :func:`shown`)."""
    return tqdm(total=total, disable=not shown(show, total), unit="doc", desc=desc, leave=False)


class BuildBar:
    """A tqdm bar on stderr fed with ``pg_stat_progress_create_index`` rows."""

    def __init__(self, name: str) -> None:
        self._bar = tqdm(desc=f"CREATE INDEX {name}", unit="block", file=sys.stderr, leave=True)
        self._phase: str | None = None

    def show(self, row: Any) -> None:
        phase, done, total, unit = _index_specs.progress_of(row)
        bar = self._bar
        if total is not None and (bar.total != total or bar.unit != unit):
            bar.unit = unit
            bar.reset(total=total)
        if phase != self._phase:
            self._phase = phase
            bar.set_postfix_str(phase, refresh=False)
        done = min(done, total) if total else done
        if done < bar.n:  # a new phase counts again from zero
            bar.reset(total=bar.total)
        if done > bar.n:
            bar.update(done - bar.n)
        else:
            bar.refresh()

    def close(self, ok: bool) -> None:
        bar = self._bar
        if ok and bar.total and bar.n < bar.total:
            bar.update(bar.total - bar.n)
        bar.set_postfix_str("done" if ok else "failed", refresh=False)
        bar.close()
