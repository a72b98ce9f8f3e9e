"""Every code block of README.md and docs/ runs in the tests (how: tests/docs_blocks.py), the
generated reference pages are current, and every relative link points at a file."""

from __future__ import annotations

import doctest
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from docs_blocks import PAGES, ROOT, blocks, command_lines, missing_lines, parse_problem

ALL = [block for page in PAGES for block in blocks(page)]
PYTHON = [block for block in ALL if block.language == "python"]
BASH_PAGES = sorted({block.page for block in ALL if block.language == "bash" and not block.not_run})
NOT_RUN = [block for block in ALL if block.language == "bash" and block.not_run]
BIN = Path(sys.executable).parent


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "HOME": str(home),
            "XDG_CACHE_HOME": str(home / "cache"), "OBLIVIATE_NO_PROGRESS": "1",
            "OMP_NUM_THREADS": "1"}  # fmt: skip


def _skip_unless_present(needs: str | None) -> None:
    if needs is None:
        return
    assert needs == "fashion-mnist", f"unknown need {needs!r}"
    from obliviate.data import FASHION_MNIST_SYSTEM_DIR

    if not (FASHION_MNIST_SYSTEM_DIR / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Fashion-MNIST must be installed in CI (.ci/run installs it)")
        pytest.skip(f"Fashion-MNIST not found in {FASHION_MNIST_SYSTEM_DIR}; "
                    "apt-get install dataset-fashion-mnist to run this block")  # fmt: skip


def test_every_block_says_what_it_is():
    """A block without a language would be run by nobody: python, bash or text only, and a
    block that is not run says why."""
    for block in ALL:
        assert block.language in ("python", "bash", "text"), f"{block}: ```{block.language}"
        if block.not_run is not None:
            assert block.language == "bash" and len(block.not_run) > 10, str(block)
    assert len(PYTHON) >= 5 and len(BASH_PAGES) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("block", PYTHON, ids=str)
def test_a_python_block_runs_as_pasted(block, tmp_path):
    proc = subprocess.run([sys.executable, "-c", block.text], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, f"{block}:\n{block.text}\n{proc.stderr[-3000:]}"


def run_page(page: Path, cwd: Path) -> dict[int, str]:
    """Run the bash blocks of ``page`` in order in ``cwd``, each line in its own shell; assert
    each line's exit code; return each block's printed text by line number."""
    printed = {}
    for block in blocks(page):
        if block.language != "bash" or block.not_run:
            continue
        _skip_unless_present(block.needs)
        text = []
        for command, expected in command_lines(block):
            proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=_env(cwd),
                                  capture_output=True, text=True, timeout=900)  # fmt: skip
            assert proc.returncode == expected, (
                f"{block}: `{command}` exited {proc.returncode}, expected {expected}\n"
                f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")  # fmt: skip
            text += [proc.stdout, proc.stderr]
        printed[block.line] = "\n".join(text)
    return printed


@pytest.mark.slow
@pytest.mark.parametrize("page", BASH_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_a_pages_commands_run_and_print_what_it_shows(page, tmp_path):
    printed = run_page(page, tmp_path)
    for block in blocks(page):
        if block.output_of is not None:
            missing = missing_lines(block.text, printed[block.output_of.line])
            assert not missing, (f"{block} shows lines the commands did not print:\n"
                                 + "\n".join(missing) + "\n--- printed:\n"
                                 + printed[block.output_of.line][-4000:])  # fmt: skip


@pytest.mark.parametrize("block", NOT_RUN, ids=str)
def test_a_block_too_costly_to_run_still_parses(block):
    for command, _ in command_lines(block):
        assert parse_problem(command) is None, f"{block}: `{command}`: {parse_problem(command)}"


def test_parse_problem_catches_a_renamed_option_a_wrong_type_and_a_missing_script():
    assert parse_problem("obliviate forget m.safetensors --classes 0 --out f.safetensors") is None
    assert "no such option" in parse_problem("obliviate forget m.safetensors --clases 0 --out f").lower()
    assert parse_problem("obliviate train --epochs many --out m.safetensors") is not None
    assert parse_problem("obliviate unlearn m.safetensors") is not None
    assert "does not exist" in parse_problem("python scripts/no_such_page.py --table-only")
    assert parse_problem("torchrun --nproc-per-node 8 -m obliviate train --out m.safetensors") is None


def test_an_output_block_must_match_what_was_printed():
    printed = "forgot classes [3] with mnemonic in 128.2 ms, strength 0.524\nwrote f.safetensors\n"
    assert missing_lines("forgot classes [7] with mnemonic in 9.1 ms, strength 1.5", printed) == []
    assert missing_lines("forgot classes [3] with … in 1 ms, …", printed) == []
    assert missing_lines("verified: true", printed) == ["verified: true"]
    assert missing_lines("forgot classes [3] with ssd in 1 ms, strength 0.5", printed) != []


def test_the_reference_pages_are_current():
    from obliviate.reference import PAGES as GENERATED

    for name, generate in GENERATED.items():
        committed = (ROOT / "docs" / name).read_text()
        assert committed == generate(), (
            f"docs/{name} is stale: run `python -m obliviate.reference` and commit the result")


def test_the_public_api_docstrings_examples_run():
    import torch

    import obliviate

    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for name in obliviate.__all__:
        obj = getattr(obliviate, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        globs = {**vars(inspect.getmodule(obj)), "torch": torch, "obliviate": obliviate}
        for test in finder.find(obj, name, globs=globs):
            examples += len(test.examples)
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert examples > 5 and result.failed == 0, result


def test_every_relative_link_points_at_a_file():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"\w+://", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken
