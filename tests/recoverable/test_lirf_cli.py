"""``obliviate deposit`` and ``obliviate withdraw`` end to end on digits."""

from __future__ import annotations

import json

import torch

import obliviate
from obliviate import TrainConfig


def test_deposit_and_withdraw_from_the_cli(cli, digits, tmp_path):
    original = obliviate.train(digits, "convnet", config=TrainConfig(epochs=10, lr=0.01),
                               codes=None, model_kwargs={"width": 8}, progress=False)  # fmt: skip
    model = obliviate.save(original, tmp_path / "m.safetensors")
    code, out, err = cli("deposit", model, "--classes", "0,1", "--classes", "2", "--data", "digits",
                         "--out", tmp_path / "t.safetensors", "--module", tmp_path / "d1.safetensors",
                         "--module", tmp_path / "d2.safetensors", "--hp", "epochs=60",
                         "--report", tmp_path / "r.json")  # fmt: skip
    assert code == 0, err
    assert "Pre Acc" in out and "deposited [[0, 1], [2]]" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["test"]) == {"original", "target", "recover (these modules)"}
    target, original = report["test"]["target"], report["test"]["original"]
    # the goal, on a setting where it is reached: deposited classes forgotten, the rest kept
    assert target["dep_acc"] < 20 and target["pre_acc"] >= original["pre_acc"] - 3
    assert report["goal_met"] is True and "missed its goal" not in err
    code, out, err = cli("withdraw", tmp_path / "t.safetensors", tmp_path / "d2.safetensors",
                         tmp_path / "d1.safetensors", "--out", tmp_path / "rec.safetensors",
                         "--data", "digits")  # fmt: skip
    assert code == 0, err
    assert "recover net" in out and "classes [0, 1, 2] back" in err
    recovered = obliviate.load(tmp_path / "rec.safetensors")
    assert recovered.arch == "lirf-recover" and recovered.forgotten_classes == []
    code, _, err = cli("withdraw", tmp_path / "t.safetensors", "--out", tmp_path / "same.safetensors")
    assert code == 0
    x = digits.test.x[:20]
    same = obliviate.load(tmp_path / "same.safetensors").model(x)
    assert torch.equal(same, obliviate.load(tmp_path / "t.safetensors").model(x))


def test_cli_errors_are_one_line(cli, digits, tmp_path):
    original = obliviate.train(digits, "convnet", config=TrainConfig(epochs=1), codes=None,
                               model_kwargs={"width": 4}, progress=False)  # fmt: skip
    model = obliviate.save(original, tmp_path / "m.safetensors")
    base = ["deposit", model, "--out", tmp_path / "t.safetensors"]
    cases = [
        (["--classes", "0,x", "--module", tmp_path / "d.safetensors"], "not an integer"),
        (["--classes", "0", "--classes", "0,1", "--module", tmp_path / "a.safetensors",
          "--module", tmp_path / "b.safetensors"], "overlap"),
        (["--classes", "0", "--module", tmp_path / "a.safetensors", "--module",
          tmp_path / "b.safetensors"], "one --module file per --classes"),
        (["--classes", "0", "--module", tmp_path / "d.safetensors", "--hp", "nope=1"],
         "unknown deposit setting"),
        (["--classes", "12", "--module", tmp_path / "d.safetensors"], "out of range"),
    ]
    for extra, message in cases:
        code, _, err = cli(*base, *extra)
        assert code == 2, (extra, err)
        assert message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "t.safetensors").exists()
    code, _, err = cli("withdraw", model, tmp_path / "missing.safetensors", "--out",
                       tmp_path / "r.safetensors")  # fmt: skip
    assert code == 2 and "does not exist" in err
    code, _, err = cli("train", "--model", "lirf-recover", "--out", tmp_path / "x.safetensors")
    assert code == 2 and "unknown model" in err
