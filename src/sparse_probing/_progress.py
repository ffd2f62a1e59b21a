"""Progress: tqdm bars (widgets in Jupyter when ipywidgets is installed, text otherwise), and plain progress lines
for a person following a long run in a terminal or a log.

A chapter runs inside a papermill kernel, where its bars are hidden (or disabled). When ``$SPARSE_PROBING_PROGRESS``
names a file, every bar of the package also appends a plain line to it at most every :data:`INTERVAL` seconds and
when it closes: what it is doing, how far it is, and about how long is left. :func:`sparse_probing.book.run_chapter`
sets the variable for the chapter's kernel and prints the lines as they come, with a heartbeat between them.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

from tqdm import TqdmWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm as _tqdm

__all__ = ["INTERVAL", "PROGRESS_ENV", "format_seconds", "tqdm"]

PROGRESS_ENV = "SPARSE_PROBING_PROGRESS"
"""Environment variable naming the file that progress lines are appended to (unset: no lines)."""
INTERVAL = 30.0
"""Seconds between two progress lines of one bar."""


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    s = round(float(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class tqdm(_tqdm):
    """:class:`tqdm.auto.tqdm` that also writes plain progress lines (see the module docstring), even when its bar
    is disabled."""

    def __init__(self, iterable: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(iterable, *args, **kwargs)
        total = kwargs.get("total")
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        now = time.monotonic()
        self._line = {"desc": kwargs.get("desc") or "working", "n": kwargs.get("initial", 0) or 0, "total": total,
                      "start": now, "last": now, "start_n": kwargs.get("initial", 0) or 0, "closed": False}  # fmt: skip

    def update(self, n: float | None = 1) -> bool | None:
        self._line["n"] += n or 0
        _report(self._line)
        return super().update(n)

    def __iter__(self) -> Any:
        for obj in super().__iter__():
            yield obj
            self._line["n"] += 1
            _report(self._line)

    def close(self) -> None:
        line = getattr(self, "_line", None)
        if line is not None and not line["closed"]:
            line["closed"] = True
            # a bar that finished before its first line stays silent (dozens of small bars would flood the log)
            _report(line, force=time.monotonic() - line["start"] >= INTERVAL or line["last"] != line["start"])
        super().close()


def _report(line: dict[str, Any], *, force: bool = False) -> None:
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    now = time.monotonic()
    if not force and now - line["last"] < INTERVAL:
        return
    line["last"] = now
    n, total, elapsed = line["n"], line["total"], now - line["start"]
    text = f"{line['desc']}: {int(n)}" + (f"/{int(total)}" if total else "")
    if total:
        text += f" ({100 * n / total:.0f}%)"
    text += f", {format_seconds(elapsed)}"
    done = n - line["start_n"]
    if total and 0 < done and n < total:
        text += f", about {format_seconds(elapsed / done * (total - n))} left"
    elif line["closed"]:
        text += ", done"
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {text}\n")
    except OSError:
        pass  # progress is a courtesy: never fail a run over it
