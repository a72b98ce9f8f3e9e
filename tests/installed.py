"""The installed ``obliviate`` command, as the tests that run it in a subprocess use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: the console script pip installed beside this interpreter
SCRIPT = Path(sys.executable).with_name("obliviate")


def run(*args: object, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``obliviate ARGS...`` in a subprocess, its output captured as text."""
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def one_error_line(err: str) -> str:
    """The only line of ``err``, which must be the command's ``error: ...`` line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
