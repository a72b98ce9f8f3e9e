"""Fig. 2-4 analyses: the lambda sweep, Fisher overlap and gradient norms, through the CLI."""

from __future__ import annotations

import csv

import pytest
import torch

import obliviate
from obliviate.bench.analyses import fisher_overlap, gradient_norms, lambda_sweep
from obliviate.fisher import per_class_fisher


def test_lambda_sweep_moves_one_lambda_at_a_time(digits, digits_bundle):
    rows = lambda_sweep(digits_bundle, digits, [0], lambda1_values=[1e-5, 1e-2],
                        lambda2_values=[1e-3, 10], lambda1=3e-3, lambda2=10, relearn_steps=0)
    assert [(r["varied"], r["lambda1"], r["lambda2"]) for r in rows] == [
        ("lambda1", 1e-5, 10), ("lambda1", 1e-2, 10), ("lambda2", 3e-3, 1e-3), ("lambda2", 3e-3, 10)]
    tiny, large = rows[0], rows[1]
    assert tiny["forget_err"] < 50 < large["forget_err"]  # a tiny lambda1 barely forgets


def test_sweep_cli_writes_csv_and_png(monkeypatch, cli, tmp_path, digits_bundle):
    path = obliviate.save(digits_bundle, tmp_path / "m.safetensors")
    code, stdout, err = cli("sweep", path, "--out", tmp_path / "sw",
                            "--lambda1-values", "1e-4,1e-2", "--lambda2-values", "1,10",
                            "--relearn-steps", "0")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "sw" / "sweep.csv").open()))
    assert len(rows) == 4 and {"retain_acc", "forget_err", "sign"} <= set(rows[0])
    assert (tmp_path / "sw" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = cli("sweep", path, "--out", tmp_path / "sw2",
                       "--lambda1-values", "a,b")
    assert code == 2 and "comma-separated numbers" in err


def test_fisher_overlap_and_gradient_norms(digits, digits_bundle, digits_bundle_no_codes):
    coded = fisher_overlap(digits_bundle, digits)
    plain = fisher_overlap(digits_bundle_no_codes, digits, per_class=30)
    assert set(coded) == set(plain) == {"hidden.weight", "hidden.bias", "classifier.weight",
                                        "classifier.bias"}
    # each value is the mean cosine between class 0's Fisher and every other class's
    fishers = per_class_fisher(digits_bundle.model.eval(), digits_bundle.codes.tensor,
                               torch.arange(10), 10)  # fmt: skip
    for name in coded:
        a = fishers[0][name].flatten()
        cosines = [float(a @ fishers[c][name].flatten()
                         / (a.norm() * fishers[c][name].flatten().norm())) for c in range(1, 10)]
        assert coded[name] == pytest.approx(sum(cosines) / 9, abs=1e-5)
    assert coded != plain  # the Fisher of codes is not that of images
    norms = gradient_norms(digits_bundle, digits, [0])
    assert set(norms) == {"train data D", "forget codes", "retain codes"}
    # at the trained weights the mean gradient on D is far smaller than at a fresh init
    fresh = digits_bundle.clone()
    torch.manual_seed(0)
    fresh.model = obliviate.models.create_model("fc", input_shape=(1, 8, 8), num_classes=10)
    fresh_norms = gradient_norms(fresh, digits, [0])
    assert norms["train data D"]["classifier.weight"] < fresh_norms["train data D"]["classifier.weight"] / 5


def test_analyze_cli(monkeypatch, cli, tmp_path, digits_bundle, digits_bundle_no_codes):
    coded = obliviate.save(digits_bundle, tmp_path / "c.safetensors")
    plain = obliviate.save(digits_bundle_no_codes, tmp_path / "p.safetensors")
    code, stdout, err = cli("analyze", "--with-codes", coded,
                            "--without-codes", plain, "--out", tmp_path / "an")
    assert code == 0, err
    for name in ("fisher_overlap", "gradient_norms"):
        assert (tmp_path / "an" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        rows = list(csv.DictReader((tmp_path / "an" / f"{name}.csv").open()))
        assert [r["layer"] for r in rows] == ["hidden.weight", "hidden.bias",
                                              "classifier.weight", "classifier.bias"]
    assert "Fisher overlap" in stdout and "gradient norms" in stdout
