"""Every Python block of the README runs as pasted, each in a fresh interpreter of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_a_readme_python_block_runs_as_pasted(number, tmp_path):
    env = {**os.environ, "OBLIVIATE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", BLOCKS[number]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, f"README block {number + 1}:\n{BLOCKS[number]}\n{proc.stderr[-3000:]}"


# -- the README's command lines (issue 36): the quick start, the deposit, paper mode ------------

ROOT = README.parent
SCRIPT = Path(sys.executable).with_name("obliviate")


def bash_lines(heading: str, containing: str) -> list[str]:
    """The command lines (comments dropped) of the first bash block after ``heading`` that
    holds ``containing``."""
    text = README.read_text()
    section = text[text.index(heading):]
    for block in re.findall(r"^```bash\n(.*?)^```$", section, flags=re.S | re.M):
        if containing in block:
            return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    raise AssertionError(f"no bash block with {containing!r} after {heading!r}")


def run_line(line: str, cwd: Path) -> subprocess.CompletedProcess:
    """A README line ``obliviate ...`` through the installed script."""
    import shlex

    args = shlex.split(line)
    assert args[0] == "obliviate", line
    env = {**os.environ, "OBLIVIATE_NO_PROGRESS": "1"}
    return subprocess.run([str(SCRIPT), *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip


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


@pytest.mark.slow
def test_the_readme_deposit_example_meets_its_goal_and_the_defaults_are_refused(tmp_path):
    lines = bash_lines("## Recoverable forgetting", "obliviate deposit")
    for line in lines:
        proc = run_line(line, tmp_path)
        assert proc.returncode == 0, (line, proc.stderr)
        assert "missed" not in proc.stderr, (line, proc.stderr)
    for name in ("target.safetensors", "dep01.safetensors", "recovered.safetensors"):
        assert (tmp_path / name).is_file(), name
    # what the README says of the defaults: refused, nothing written, the advice is the line above
    deposit = next(line for line in lines if " deposit " in line)
    at_defaults = (deposit.split(" --hp ")[0].replace("target.safetensors", "t2.safetensors")
                   .replace("dep01.safetensors", "d2.safetensors"))  # fmt: skip
    proc = run_line(at_defaults, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "missed its goal" in proc.stderr and "try --hp lr=0.1;" in proc.stderr
    assert "nothing was written" in proc.stderr
    assert not (tmp_path / "t2.safetensors").exists() and not (tmp_path / "d2.safetensors").exists()


@pytest.mark.slow
def test_the_readme_paper_mode_line_is_refused_with_its_numbers_on_the_readme_model(tmp_path):
    """The Command line block on its own model (Fashion-MNIST, from Debian's package)."""
    from obliviate.data import FASHION_MNIST_SYSTEM_DIR

    if not (FASHION_MNIST_SYSTEM_DIR / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Fashion-MNIST must be installed in CI (.ci/run installs it)")
        pytest.skip(f"Fashion-MNIST not found in {FASHION_MNIST_SYSTEM_DIR}; "
                    "apt-get install dataset-fashion-mnist to run this test")  # fmt: skip
    lines = bash_lines("## Command line", "paper mode")
    train = next(line for line in lines if line.startswith("obliviate train --dataset fashion-mnist"))
    paper = next(line for line in lines if "--lambda1" in line)
    calibrated = next(line for line in lines if "--report r.json" in line)
    assert run_line(train, tmp_path).returncode == 0
    proc = run_line(paper, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "retain accuracy" in proc.stderr and "vs oracle" in proc.stderr
    assert "nothing was written" in proc.stderr and not (tmp_path / "p.safetensors").exists()
    proc = run_line(calibrated, tmp_path)
    assert proc.returncode == 0 and "verified: true" in proc.stderr, proc.stderr
