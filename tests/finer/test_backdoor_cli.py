"""``obliviate backdoor`` end to end on digits, the Optuna search, and its bad input."""

from __future__ import annotations

import json

import pytest

from obliviate import ObliviateError
from obliviate.finer.experiment import run_backdoor
from obliviate.finer.tuning import TABLE_S1, paper_settings, pattern_score, tune


def test_backdoor_pattern_b_with_two_optuna_trials(cli, tmp_path):
    out = tmp_path / "report.json"
    # --force: the goal is missed here (below), and a missed goal writes nothing without it
    code, stdout, err = cli("backdoor", "--dataset", "digits", "--class", "0", "--transform",
                            "tile", "--pattern", "B", "--tune", "2", "--split", "kfold", "--folds", "2",
                            "--epochs", "20", "--out", out, "--force")
    assert code == 0, err
    report = json.loads(out.read_text())
    assert set(report["accuracy"]) == {"pretrained", "CE", "CE+Fisher", "CE+Fisher+RLD"}
    assert report["fisher_on"] == "retain"  # the paper's experiments: the Fisher of D_r
    assert len(report["tuning"]["trials"]) == 2
    best = max(t["score"] for t in report["tuning"]["trials"] if t["state"] == "COMPLETE")
    assert report["tuning"]["best_score"] == best
    assert report["settings"]["lr"] in [t["lr"] for t in report["tuning"]["trials"]]
    assert "D_r,extra" in stdout and "CE+Fisher+RLD" in stdout
    before, after = report["accuracy"]["pretrained"], report["accuracy"]["CE+Fisher+RLD"]
    half = before["D_r,extra"] + 0.5 * (before["D_r"] - before["D_r,extra"])
    assert report["accuracy_unit"] == "%" and before["D_r"] > 1.0  # percentages, like evaluate
    # The outcome on this small setting (2 trials, 20 epochs), measured: the method moves the
    # right way (D_r,extra up from the poisoned model, D_r above CE alone) but does not reach
    # the goal (half way back on D_r,extra), and the report must say so. No digits setting that
    # reaches the goal within a test's time is known yet; when one is, assert met is True there.
    assert after["D_r,extra"] > before["D_r,extra"] + 10
    assert after["D_r"] > report["accuracy"]["CE"]["D_r"] + 10
    assert after["D_r,extra"] < half
    assert report["goal"]["variant"] == "CE+Fisher+RLD" and report["goal"]["met"] is False
    assert "WARNING: written with --force although CE+Fisher+RLD missed its goal" in err


def test_pattern_a_reports_rld_rnd_and_truncation(digits):
    report = run_backdoor(digits, [0], "tile", "A", progress=False,
                          settings={"lr": 1e-3, "lambda_kl": 1e3})  # fmt: skip
    acc = report["accuracy"]
    assert set(acc) == {"pretrained", "RLD", "RND", "truncation"}
    assert acc["truncation"]["D_f"] == 0.0 and acc["RLD"]["D_f"] < 10.0


@pytest.mark.parametrize("args, message", [
    (["--pattern", "D"], "unknown pattern 'D'"),
    (["--transform", "color"], "3-channel"),
    (["--transform", "blur"], "unknown transform 'blur'"),
    (["--hp", "alpha=1"], "unknown setting 'alpha'"),
    (["--class", "12"], "out of range"),
    (["--fisher-on", "all"], "unknown Fisher data 'all'"),
])
def test_bad_input_exit_2(cli, tmp_path, args, message):
    code, _, err = cli("backdoor", "--dataset", "digits", "--epochs", "1",
                       "--out", tmp_path / "r.json", *args)
    assert code == 2 and message in err, err
    assert not (tmp_path / "r.json").exists()


def test_paper_settings_and_scores():
    s = paper_settings("fashion-mnist", "tile", "B")
    # Table S1 of the paper (Fashion-MNIST, tile, B: 9.98345e-5, 3.56290e4, 1.73782)
    assert (s.lr, s.lambda_kl, s.lambda_f) == (9.98345e-5, 3.56290e4, 1.73782)
    assert len(TABLE_S1) == 10  # the table's ten rows
    a = paper_settings("digits", "tile", "A")
    assert (a.lr, a.lambda_kl) == (1e-5, 1e5)
    acc = {"D_r": 0.9, "D_f": 0.2, "D_f,clean": 0.7, "D_r,extra": 0.5}
    assert pattern_score(acc, "B") == 0.5 and pattern_score(acc, "C") == 0.2
    assert pattern_score(acc, "A") == pytest.approx(0.8)  # D_f 20 % misses the 2 % target
    # reaching the target ranks above any miss, then D_r decides
    hit, better = {**acc, "D_f": 0.01, "D_r": 0.5}, {**acc, "D_f": 0.02, "D_r": 0.6}
    assert pattern_score(acc, "A") < pattern_score(hit, "A") < pattern_score(better, "A")
    with pytest.raises(ObliviateError, match="at least 1 trial"):
        tune(None, None, a, {}, trials=0)
