"""Rich progress bars that library code can turn off."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(
    description: str, *, total: int, unit: str, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callable; draws a rich bar on a terminal when ``enabled``.
    ``unit`` names what is counted (``"batches (40 epochs)"``, ``"steps"``, ``"rows"``).

    The bar is written to stderr. When stderr is not a terminal (a log, a pipe), one plain line
    is written at every tenth of the way instead, so that long runs are not silent there. Nothing
    is shown when ``OBLIVIATE_NO_PROGRESS`` is set or ``enabled`` is false.
    """
    if not enabled or os.environ.get("OBLIVIATE_NO_PROGRESS"):
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        yield _plain_lines(description, total, unit)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        unit,
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _line(text: str) -> None:
    """``text`` and its newline on stderr in one write: ``print`` writes them in two, and a
    Ctrl-C between them left the next line ("interrupted") glued to this one."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _plain_lines(description: str, total: int, unit: str) -> Callable[[int], None]:
    """An ``advance(n)`` that prints ``description: done/total unit`` at the start and, at each
    tenth, ``description: done/total unit, elapsed s, ETA remaining s`` (the remaining time at
    the rate so far; the last line has no ETA)."""
    start = time.perf_counter()
    state = {"done": 0, "shown": 0}
    _line(f"{description}: 0/{total} {unit}")

    def advance(n: int) -> None:
        state["done"] += n
        tenth = min(10, state["done"] * 10 // max(total, 1))
        if tenth > state["shown"]:
            state["shown"] = tenth
            elapsed = time.perf_counter() - start
            done = state["done"]
            eta = (f", ETA {duration(elapsed * (total - done) / done)}"
                   if 0 < done < total else "")  # fmt: skip
            _line(f"{description}: {done}/{total} {unit}, {duration(elapsed)}{eta}")

    return advance


def duration(seconds: float) -> str:
    """``8 s``, ``4 min 05 s``, ``2 h 03 min``: a time a person reads at a glance."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


#: Whose words a note uses for a setting: Python's (``device="cuda"``) or, while the command
#: line runs (:func:`command_line_words`), its flags (``--device cuda``).
_WORDS = {"cli": False}


@contextlib.contextmanager
def command_line_words() -> Iterator[None]:
    """Within it, :func:`in_words` gives the command line's words (``obliviate``'s entry
    point runs every command in it)."""
    before = _WORDS["cli"]
    _WORDS["cli"] = True
    try:
        yield
    finally:
        _WORDS["cli"] = before


def in_words(python: str, cli: str) -> str:
    """A setting named the way the reader gives it: ``cli`` on the command line, else ``python``."""
    return cli if _WORDS["cli"] else python


def progress_note(text: str, *, enabled: bool = True) -> None:
    """One line on stderr that says what a long run does next, shown where progress bars are
    (not with ``OBLIVIATE_NO_PROGRESS`` or ``enabled`` false)."""
    if enabled and not os.environ.get("OBLIVIATE_NO_PROGRESS"):
        _line(text)
