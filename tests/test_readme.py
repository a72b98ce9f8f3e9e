"""The README's quick start in a fresh shell. Every other block of the README and of docs/ runs
in tests/test_docs.py: the tour, with its output compared; the guide's paper-mode refusal, with
its numbers; the deposit example and its refusal at the defaults."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


ROOT = README.parent


def bash_lines(heading: str, containing: str) -> list[str]:
    """The command lines (comments dropped) of the first bash block after ``heading`` that
    holds ``containing``."""
    text = README.read_text()
    section = text[text.index(heading):]
    for block in re.findall(r"^```bash\n(.*?)^```$", section, flags=re.S | re.M):
        if containing in block:
            return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    raise AssertionError(f"no bash block with {containing!r} after {heading!r}")


def test_the_quick_start_runs_in_a_fresh_shell():
    """After `make demo`, the quick start's next lines run in a new shell whose PATH knows
    nothing of the virtual environment (`obliviate: command not found` before)."""
    import obliviate

    lines = [line for line in bash_lines("## Two commands", "make demo")
             if not line.startswith("make ")]  # fmt: skip
    assert lines and lines[0] == ". .venv/bin/activate", lines
    assert ". $(VENV)/bin/activate" in (ROOT / "Makefile").read_text()  # make demo says it too
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("no .venv in the checkout (make demo or make test creates it)")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run(["bash", "-c", "set -e\n" + "\n".join(lines)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"obliviate {obliviate.__version__}" in proc.stdout
