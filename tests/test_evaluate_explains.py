"""`obliviate evaluate` explains itself, and a class already forgotten is refused: the
installed script in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import obliviate

SCRIPT = Path(sys.executable).with_name("obliviate")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "COLUMNS": "200"})  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits_bundle):
    folder = tmp_path_factory.mktemp("evaluate")
    original = obliviate.save(digits_bundle, folder / "m.safetensors")
    forgotten = obliviate.save(obliviate.forget(digits_bundle, [3], device="cpu"),
                               folder / "f.safetensors")  # fmt: skip
    return original, forgotten


def test_the_table_names_the_classes_the_record_and_the_oracle_and_has_a_legend(files):
    original, forgotten = files
    proc = run("evaluate", forgotten, "--relearn-steps", "20", "--reference", original)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "forget classes: [3] (from the model file's history" in out
    assert "verified: true; depth: output only" in out
    assert "truncation oracle of m.safetensors" in out and "class 3 acc % (forget)" in out
    for column in ("A_R ", "FE ", "RE ", "S ", "forget seconds", "class c acc"):
        assert any(line.lstrip().startswith(column) for line in out.splitlines()
                   if "higher" in line or "lower" in line), column  # fmt: skip
    assert "RE near 0 is expected" in out and "note:" not in out
    row = [line for line in out.splitlines() if "A_R retain acc %" in line][0]
    model_a_r, oracle_a_r = [float(c) for c in row.replace("│", " ").split()[-2:]]
    assert 90 < model_a_r <= oracle_a_r  # an output-layer forget never beats the oracle


def test_forget_classes_that_differ_from_the_record_get_a_note(files):
    _, forgotten = files
    proc = run("evaluate", forgotten, "--relearn-steps", "0", "--forget-classes", "5")
    assert proc.returncode == 0, proc.stderr
    assert "forget classes: [5] (from --forget-classes)" in proc.stdout
    assert ("note: --forget-classes [5] differs from what the model forgot ([3]); classes [3], "
            "forgotten by the model, count as retained in A_R here") in proc.stdout  # fmt: skip
    proc = run("evaluate", forgotten, "--relearn-steps", "0", "--forget-classes", "5", "--json")
    report = json.loads(proc.stdout)
    assert report["forget_classes"] == [5] and report["forget_classes_from"] == "--forget-classes"
    assert "note: --forget-classes [5]" in proc.stderr


def test_a_model_that_forgot_nothing_reports_accuracy_over_every_class(files):
    original, _ = files
    proc = run("evaluate", original, "--relearn-steps", "0")
    assert proc.returncode == 0, proc.stderr
    assert "accuracy % (all classes)" in proc.stdout and "A_R" not in proc.stdout
    assert "forget classes: none" in proc.stdout


def test_forgetting_an_already_forgotten_class_is_refused_and_writes_nothing(files, tmp_path):
    _, forgotten = files
    out = tmp_path / "g.safetensors"
    proc = run("forget", forgotten, "--classes", "3,4", "--out", out)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "class(es) [3] were already forgotten (record 1 of 1" in lines[0]
    assert "mnemonic at " in lines[0] and not out.exists()
    assert list(tmp_path.iterdir()) == []
