"""The installed `obliviate` console script, run as a user runs it: in a subprocess.

Every usage mistake must give one line on stderr, exit code 2, no traceback and no file.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

import obliviate

SCRIPT = Path(sys.executable).with_name("obliviate")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@contextmanager
def ended(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Kill ``proc`` (a 100000-epoch run) if the block leaves it running, e.g. when an
    assertion fails before it was interrupted."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_bundle) -> Path:
    return obliviate.save(tiny_bundle, tmp_path_factory.mktemp("script") / "m.safetensors")


def mistakes(model: Path, out: Path) -> dict[str, list[str]]:
    m, o = str(model), str(out)
    return {
        "missing --classes": ["forget", m, "--out", o],
        "lambda not a number": ["forget", m, "--classes", "0", "--out", o, "--lambda1", "abc"],
        "unknown device": ["forget", m, "--classes", "0", "--out", o, "--device", "tpu"],
        "unknown option": ["forget", m, "--classes", "0", "--out", o, "--bogus"],
        "unknown command": ["forgett", m],
        "epochs not an integer": ["train", "--epochs", "1.5", "--out", o],
        "unknown dataset": ["train", "--dataset", "nosuch", "--out", o],
        "model file missing": ["forget", str(out.with_name("nosuch.safetensors")), "--classes",
                               "0", "--out", o],  # fmt: skip
        "classes not integers": ["forget", m, "--classes", "a,b", "--out", o],
        "class out of range": ["forget", m, "--classes", "9", "--out", o],
        "bad --hp": ["forget", m, "--classes", "0", "--out", o, "--hp", "margin"],
        "unknown method": ["forget", m, "--classes", "0", "--out", o, "--method", "magic"],
        "relearn steps not a number": ["evaluate", m, "--relearn-steps", "many"],
        "missing argument": ["evaluate"],
    }


def test_every_usage_mistake_is_one_line_exit_2_and_writes_nothing(model_file, tmp_path):
    out = tmp_path / "out.safetensors"
    cases = mistakes(model_file, out)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(cases, pool.map(lambda args: run(*args), cases.values())))
    for name, proc in results.items():
        assert proc.returncode == 2, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, name
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, proc.stderr)
        assert proc.stdout == "", name
        assert not out.exists(), name


def test_no_command_overwrites_an_input_or_a_special_file(model_file, tmp_path):
    before = model_file.read_bytes()
    alias = tmp_path / "alias.safetensors"
    alias.hardlink_to(model_file)  # the same file under another name
    folder = tmp_path / "folder"
    folder.mkdir()
    m, new = str(model_file), str(tmp_path / "new.safetensors")
    cases = {
        "--out is the input": ["forget", m, "--classes", "0", "--out", m],
        "--out is the input by inode": ["forget", m, "--classes", "0", "--out", str(alias)],
        "--report is the input": ["forget", m, "--classes", "0", "--out", new, "--report", m],
        "--out and --report the same": ["forget", m, "--classes", "0", "--out", new,
                                        "--report", new],  # fmt: skip
        "--out a directory": ["forget", m, "--classes", "0", "--out", str(folder)],
        "--out a device": ["forget", m, "--classes", "0", "--out", "/dev/null"],
        "withdraw onto its target": ["withdraw", m, "--out", m],
        "train into a directory": ["train", "--epochs", "1", "--out", str(folder)],
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(cases, pool.map(lambda args: run(*args), cases.values())))
    for name, proc in results.items():
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, proc.stderr)
    assert model_file.read_bytes() == before
    assert not Path(new).exists() and list(folder.iterdir()) == []
    assert Path("/dev/null").is_char_device()


def test_written_files_get_the_umask_mode(model_file, tmp_path):
    out = tmp_path / "f.safetensors"
    proc = run("forget", str(model_file), "--classes", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == obliviate.checkpoint.file_mode()


def test_version_and_help_exit_0():
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"obliviate {obliviate.__version__}"
    bare = run()
    assert bare.returncode == 0 and "Usage" in bare.stdout


def test_ctrl_c_exits_130_with_one_line_and_no_file(tmp_path):
    import os
    import signal

    out = tmp_path / "m.safetensors"
    env = {k: v for k, v in os.environ.items() if k != "OBLIVIATE_NO_PROGRESS"}
    proc = subprocess.Popen(
        [str(SCRIPT), "train", "--dataset", "digits", "--epochs", "100000", "--out", str(out)],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    with ended(proc):
        first = proc.stderr.readline()  # the plain progress line: training has started
        assert first.startswith("training fc on digits: 0/"), first
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130
    assert rest.strip().splitlines()[-1] == "interrupted" and "Traceback" not in rest
    assert list(tmp_path.iterdir()) == []  # no model, no temporary file


def test_ctrl_c_in_bench_exits_130_and_a_rerun_resumes(tmp_path):
    import json
    import os
    import signal

    out = tmp_path / "bench"
    args = [str(SCRIPT), "bench", "--dataset", "digits", "--methods", "mnemonic", "--seeds",
            "0,1", "--relearn-steps", "0", "--out", str(out)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OBLIVIATE_NO_PROGRESS"}
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env)  # fmt: skip
    with ended(proc):
        first = proc.stderr.readline()
        assert first.startswith("benchmark: 0/4"), first
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130 and rest.strip().splitlines()[-1] == "interrupted"
    done = run(*args[1:])
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in rows) == [
        ("mnemonic", 0), ("mnemonic", 1), ("original", 0), ("original", 1)]
