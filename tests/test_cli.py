"""The CLI, called in-process: the happy path and every bad-input case (exit 2, one line,
nothing written)."""

import json

import pytest

import obliviate

JSON_KEYS = {"retain_acc", "forget_err", "relearn_err", "score", "forget_seconds", "per_class_acc",
             "forget_classes", "forget_classes_from", "verified", "depth"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "m.safetensors"
    bundle = obliviate.train(
        "digits", "fc", config=obliviate.TrainConfig(epochs=40, lr=0.1), progress=False
    )
    return obliviate.save(bundle, path)


def test_train_forget_evaluate(monkeypatch, cli, tmp_path, model_file):
    trained = tmp_path / "t.safetensors"
    code, _, err = cli("train", "--dataset", "digits", "--model", "cnn",
                       "--epochs", "1", "--seed", "3", "--out", trained)
    assert code == 0, err
    meta = obliviate.load(trained)
    assert meta.arch == "cnn" and meta.train_config["seed"] == 3 and meta.codes is not None

    out, report = tmp_path / "f.safetensors", tmp_path / "r.json"
    code, _, err = cli("forget", model_file, "--classes", "0", "--out", out, "--report", report)
    assert code == 0, err
    record = json.loads(report.read_text())
    assert record["classes"] == [0] and record["mode"] == "calibrated" and record["verified"]
    assert obliviate.load(out).history[-1] == record

    code, stdout, err = cli("evaluate", out, "--dataset", "digits",
                            "--forget-classes", "0", "--relearn-steps", "50", "--json")
    assert code == 0, err
    metrics = json.loads(stdout)
    assert set(metrics) == JSON_KEYS
    assert metrics["forget_err"] >= 95
    assert metrics["forget_seconds"] == pytest.approx(record["seconds"])
    assert set(metrics["per_class_acc"]) == {str(i) for i in range(10)}
    expected = (metrics["retain_acc"] + (metrics["forget_err"] + metrics["relearn_err"]) / 2) / 2
    assert metrics["score"] == pytest.approx(expected)

    code, stdout, _ = cli("evaluate", out, "--relearn-steps", "0")
    assert code == 0 and "A_R retain acc" in stdout  # defaults: model's dataset and classes


def test_demo_meets_its_promise(monkeypatch, cli):
    code, stdout, err = cli("demo", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    before, after = result["before"], result["after"]
    assert after["forget_err"] >= 99.5
    assert after["retain_acc"] >= before["retain_acc"] - 1
    assert result["forget_record"]["data"]["codes"] is True
    assert result["forget_record"]["verified"] is True


@pytest.mark.parametrize(
    "args, message",
    [
        (["--classes", "10"], "out of range"),
        (["--classes", "0,x"], "not an integer"),
        (["--classes", ",".join(map(str, range(10)))], "every class"),
        (["--classes", "0", "--lambda1", "0"], "positive"),
        (["--classes", "0", "--lambda2", "-5"], "positive"),
        (["--classes", "0", "--method", "nope"], "known: .*mnemonic, mnemonic-data.*ssd"),
        (["--classes", "0", "--method", "ssd"], "needs the forget set and the retain set.*--data"),
        (["--classes", "0", "--method", "gradient-ascent"], "needs the forget set"),
        (["--classes", "0", "--method", "ssd", "--hp", "nope=1"], "no hyperparameter 'nope'.*alpha"),
        (["--classes", "0", "--method", "ssd", "--hp", "alpha=ten"], "alpha='ten'.*float"),
        (["--classes", "0", "--method", "ssd", "--hp", "alpha"], "KEY=VALUE"),
        (["--classes", "0", "--method", "ssd", "--hp", "alpha=-1", "--data", "digits"], "alpha must be"),
        (["--classes", "0", "--method", "finetune", "--lambda1", "1e-3"], "no hyperparameter 'lambda1'"),
        (["--classes", "0", "--data", "fashion-mnist"], "expects inputs|not found"),
    ],
)
def test_forget_bad_input_exits_2_and_writes_nothing(
    monkeypatch, cli, tmp_path, model_file, args, message
):
    out, report = tmp_path / "f.safetensors", tmp_path / "r.json"
    code, stdout, err = cli("forget", model_file, *args,
                            "--out", out, "--report", report)
    assert code == 2
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err)
    assert list(tmp_path.iterdir()) == []


def test_bad_files_exit_2(monkeypatch, cli, tmp_path):
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    for path in (truncated, tmp_path / "missing.safetensors"):
        code, _, err = cli("forget", path, "--classes", "0",
                           "--out", tmp_path / "o.safetensors")
        assert code == 2 and err.startswith("error:")
    assert not (tmp_path / "o.safetensors").exists()


def test_model_without_codes_exit_2(monkeypatch, cli, tmp_path, digits_bundle_no_codes):
    path = obliviate.save(digits_bundle_no_codes, tmp_path / "plain.safetensors")
    code, out, err = cli("forget", path, "--classes", "0", "--out", tmp_path / "o.safetensors",
                         "--report", tmp_path / "r.json")  # fmt: skip
    assert code == 2 and "mnemonic-data" in err and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1  # one line
    assert [p.name for p in tmp_path.iterdir()] == ["plain.safetensors"]  # nothing written


def test_evaluate_shape_mismatch_exit_2(monkeypatch, cli, tmp_path, tiny_bundle):
    path = obliviate.save(tiny_bundle, tmp_path / "tiny.safetensors")
    code, _, err = cli("evaluate", path, "--dataset", "digits",
                       "--forget-classes", "0")
    assert code == 2 and "expects inputs" in err


def test_unknown_dataset_and_model_exit_2(monkeypatch, cli, tmp_path):
    for args in (["--dataset", "imagenet"], ["--model", "vit"]):
        code, _, err = cli("train", *args, "--out", tmp_path / "m.st")
        assert code == 2 and "known:" in err
    assert list(tmp_path.iterdir()) == []


def test_list(monkeypatch, cli):
    code, stdout, _ = cli("list")
    assert code == 0 and "fashion-mnist" in stdout and "resnet18" in stdout


def test_forget_with_a_data_method_and_hyperparameters(monkeypatch, cli, tmp_path, model_file):
    out, report = tmp_path / "f.safetensors", tmp_path / "r.json"
    code, _, err = cli("forget", model_file, "--classes", "0", "--method",
                       "ssd", "--data", "digits", "--hp", "alpha=20", "--hp", "batch-size=32",
                       "--out", out, "--report", report)
    assert code == 0, err
    record = json.loads(report.read_text())
    assert record["method"] == "ssd"
    assert record["hyperparameters"] == {"alpha": 20.0, "dampening": 1.0, "batch_size": 32,
                                         "shuffle": True}
    assert record["data"]["forget_samples"] > 0 and record["data"]["retain_samples"] > 0
    assert "forgot classes [0] with ssd" in err


def test_forget_class_absent_from_the_data_exit_2(monkeypatch, cli, tmp_path, model_file):
    from obliviate.data import DATASETS, Dataset

    digits = obliviate.load_dataset("digits")
    partial = Dataset("digits-without-3", digits.train.without_classes([3]), digits.test, 10,
                      digits.input_shape)
    monkeypatch.setitem(DATASETS._items, "digits-without-3", lambda **_: partial)
    code, _, err = cli("forget", model_file, "--classes", "3", "--method",
                       "gradient-ascent", "--data", "digits-without-3",
                       "--out", tmp_path / "f.safetensors")
    assert code == 2 and "have no samples" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_list_shows_every_method_and_its_needs(monkeypatch, cli):
    from obliviate.methods import METHODS

    code, stdout, _ = cli("list")
    assert code == 0
    for name in METHODS.names():
        assert name in stdout
    assert "forget, retain" in stdout  # ssd needs both sets


def test_train_uses_the_datasets_defaults_and_reports_its_accuracy(cli, tmp_path):
    out = tmp_path / "d.safetensors"
    code, _, err = cli("train", "--out", out)  # digits: 40 epochs at lr 0.1
    assert code == 0, err
    assert obliviate.load(out).train_config["epochs"] == 40
    assert "trained fc on digits (40 epochs, lr 0.1): test accuracy" in err
    assert "warning" not in err
    weak = tmp_path / "w.safetensors"
    code, _, err = cli("train", "--epochs", "1", "--lr", "0.001", "--out", weak)
    assert code == 0 and "warning: class" in err and "the model is weak" in err


def test_evaluate_a_model_that_forgot_nothing(cli, model_file):
    code, stdout, err = cli("evaluate", model_file, "--relearn-steps", "0", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["forget_err"] is None and report["retain_acc"] > 90


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data-dir", "/nonexistent"], "data directory /nonexistent does not exist"),
        (["--relearn-lr", "0"], "relearn learning rate"),
    ],
)
def test_evaluate_settings_are_checked(cli, model_file, args, message):
    code, _, err = cli("evaluate", model_file, "--relearn-steps", "5", *args)
    assert code == 2 and message in err


def test_forget_says_its_depth_and_the_deep_forget_needs_data(cli, tmp_path, model_file):
    out = tmp_path / "o.safetensors"
    code, _, err = cli("forget", model_file, "--classes", "3", "--out", out)
    assert code == 0, err
    assert "depth: output only — the features still hold the class" in err
    assert "--data" in err  # how to go deeper
    deep = tmp_path / "d.safetensors"
    code, _, err = cli("forget", model_file, "--classes", "3", "--depth", "features", "--out", deep)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "retain_bound" in err
    assert not deep.exists()
    code, _, err = cli("forget", model_file, "--classes", "3", "--data", "digits", "--out", deep)
    assert code == 0, err
    assert "depth: features — layer hidden" in err and "verified: true" in err
    assert obliviate.load(deep).history[-1]["depth"] == "features"
    code, _, err = cli("forget", model_file, "--classes", "3", "--depth", "deepest", "--out", deep)
    assert code == 2 and "unknown depth 'deepest'" in err
