"""Ctrl-C in the ``obliviate`` command: exit 130 with one line, at any moment.

Library code cannot be trusted to survive a ``KeyboardInterrupt`` raised in the middle of its
imports (a half-imported torch, numpy or scipy breaks later, with a traceback of its own), so
once :func:`install` has run, Ctrl-C ends the process at once: it prints ``interrupted`` and
exits 130. Inside a :func:`cleaned_up` block (the atomic writes) it raises
``KeyboardInterrupt`` instead, so that the block removes its temporary file first; the command
line then prints the same line and exits 130. A second Ctrl-C ends the process at once, always.

This module imports nothing heavy: the command line installs the handler before anything else.
Without :func:`install` (a library caller), :func:`cleaned_up` changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

_state = {"cleanups": 0, "interrupted": False}


def speaks() -> bool:
    """Whether this process says ``interrupted``: not a rank of a torchrun job other than 0,
    and not a rank started by ``--nproc-per-node`` (its launcher says it)."""
    rank = os.environ.get("RANK")
    return rank is None or (rank == "0" and "OBLIVIATE_LAUNCHER" not in os.environ)


def exit_interrupted() -> None:
    """Print ``interrupted`` (when this process :func:`speaks`) and end the process with 130
    at once, without unwinding."""
    if speaks():
        cursor = "\x1b[?25h" if sys.stderr.isatty() else ""  # a progress bar may have hidden it
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{cursor}interrupted\n")
            sys.stderr.flush()
    os._exit(130)


def _on_sigint(signum: int, frame: object) -> None:
    if _state["interrupted"] or _state["cleanups"] == 0:
        exit_interrupted()
    _state["interrupted"] = True
    raise KeyboardInterrupt


def install() -> None:
    """Make Ctrl-C end this process as described above (the command line's entry calls it)."""
    signal.signal(signal.SIGINT, _on_sigint)


@contextlib.contextmanager
def cleaned_up() -> Iterator[None]:
    """A block that must clean up when interrupted: Ctrl-C raises ``KeyboardInterrupt`` in it."""
    _state["cleanups"] += 1
    try:
        yield
    finally:
        _state["cleanups"] -= 1
