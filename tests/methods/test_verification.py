"""Each verification check of `mnemonic` fails on its own: a forged model, perturbed statistics
or data that contradicts the model make exactly that check report ``passed: False``; the
request is then refused with that check named, nothing is returned or written, and
``force=True`` records ``verified: false``.

The calibrated mode solves its strength so that every check it can satisfy passes, so each
failure here comes from something the solve cannot see: a head without a bias (the solve
assumes one), a step that moves a kept class (a faulty implementation), statistics that are
not numbers, and samples far outside the training data. Paper mode, whose lambdas are fixed,
fails its checks on real settings."""

from __future__ import annotations

import json

import pytest
import torch

import obliviate
from obliviate.calibration import truncated_predictions
from obliviate.data import Dataset, Split
from obliviate.errors import NotVerifiedError
from obliviate.methods.mnemonic_checks import verdict as _verdict
from obliviate.stats import record_statistics

FORGET = [1]


def passed(checks: dict) -> dict[str, bool]:
    return {name: check["passed"] for name, check in checks.items()}


def refused(bundle, **kwargs) -> NotVerifiedError:
    """The NotVerifiedError of ``forget(bundle, FORGET)``; the input bundle is left as it was."""
    history = list(bundle.history)
    kwargs.setdefault("depth", "output")  # these checks are the head step's (test_deep: features)
    with pytest.raises(NotVerifiedError) as info:
        obliviate.forget(bundle, FORGET, device="cpu", **kwargs)
    assert bundle.history == history and bundle.forgotten_classes == []
    return info.value


def forced(bundle, **kwargs) -> dict:
    kwargs.setdefault("depth", "output")
    out = obliviate.forget(bundle, FORGET, device="cpu", force=True, **kwargs)
    record = out.history[-1]
    assert record["verified"] is False and out.forgotten_classes == FORGET
    return record


def head_without_bias(bundle, data: Dataset):
    """``bundle`` with its classifier replaced by the same weights and no bias, and training
    statistics recorded for that model (so the statistics are true)."""
    forged = bundle.clone()
    old = forged.model.classifier
    head = torch.nn.Linear(old.in_features, old.out_features, bias=False)
    with torch.no_grad():
        head.weight.copy_(old.weight)
    forged.model.classifier = head
    forged.stats = record_statistics(forged.model, data.train)
    return forged


def test_codes_check_alone_fails_on_a_head_without_bias(tiny_bundle, tiny_dataset):
    """The solve counts the bias's unit drop; without a bias the codes stay above the margin.
    The statistics' check compares strengths and still passes: only the codes check fails.
    The forget class's code is made 3x brighter, so that the codes, not the statistics, set
    the strength and miss by the bias's share (over a nat) rather than by a hair."""
    forged = head_without_bias(tiny_bundle, tiny_dataset)
    forged.codes.tensor[FORGET] *= 3.0
    error = refused(forged)
    checks = error.record["verification"]["checks"]
    assert passed(checks) == {"codes": False, "training_statistics": True}
    assert checks["codes"]["forget_margin_max"] > checks["codes"]["target"] + 1e-3
    assert checks["codes"]["retain_codes_unchanged"] is True
    assert "check(s) on codes failed" in str(error) and "training_statistics" not in str(error)
    record = forced(forged)
    assert passed(record["verification"]["checks"]) == {"codes": False, "training_statistics": True}
    assert "codes failed" in record["verification"]["reason"]


def test_codes_check_fails_when_a_kept_class_moves(tiny_bundle, monkeypatch):
    """A faulty step that also raises a kept class changes how the kept classes rank the
    retain codes: ``retain_codes_unchanged`` turns the codes check red even though every
    forget code is far below the margin."""
    from obliviate.methods import mnemonic

    real = mnemonic.apply_head

    def also_raises_class_0(classifier, direction, strength):
        real(classifier, direction, strength)
        with torch.no_grad():
            classifier.bias[0] += 100.0

    monkeypatch.setattr(mnemonic, "apply_head", also_raises_class_0)
    error = refused(tiny_bundle)
    checks = error.record["verification"]["checks"]
    assert passed(checks) == {"codes": False, "training_statistics": True}
    assert checks["codes"]["retain_codes_unchanged"] is False
    assert checks["codes"]["forget_margin_max"] <= checks["codes"]["target"]
    assert "check(s) on codes failed" in str(error)


def test_statistics_check_alone_fails_when_the_statistics_are_not_numbers(tiny_bundle):
    """A NaN feature minimum leaves the statistics' needed strength undefined: no strength
    reaches it, so only that check fails (the codes still reach their margin)."""
    perturbed = tiny_bundle.clone()
    perturbed.stats.feature_min[FORGET[0], 0] = float("nan")
    error = refused(perturbed)
    checks = error.record["verification"]["checks"]
    assert passed(checks) == {"codes": True, "training_statistics": False}
    assert "check(s) on training_statistics failed" in str(error)
    record = forced(perturbed)
    assert passed(record["verification"]["checks"]) == {"codes": True,
                                                        "training_statistics": False}  # fmt: skip


def contradicting_data(bundle, data: Dataset, scale: float = 4.0) -> Dataset:
    """The training data plus the forget class's test images scaled by ``scale`` and labelled
    with the class the truncation oracle gives them: samples of a kept class, by their labels,
    that the model puts in the forget class far more confidently than any training sample."""
    odd = data.test.x[data.test.y == FORGET[0]] * scale
    retain = [c for c in range(bundle.num_classes) if c not in FORGET]
    with torch.no_grad():
        logits = bundle.model(odd)
    assert (logits.argmax(1) == FORGET[0]).all()  # the model calls them the forget class
    labels = truncated_predictions(logits, retain)
    train = Split(torch.cat([data.train.x, odd]), torch.cat([data.train.y, labels]))
    return Dataset(data.name, train, data.test, data.num_classes, data.input_shape)


def test_data_check_alone_fails_on_data_that_contradicts_the_model(tiny_bundle, tiny_dataset):
    data = contradicting_data(tiny_bundle, tiny_dataset)
    error = refused(tiny_bundle, data=data)
    checks = error.record["verification"]["checks"]
    assert passed(checks) == {"codes": True, "training_statistics": True, "data": False}
    check = checks["data"]
    assert check["forget_error"] == 100.0  # the real forget samples are forgotten ...
    assert check["retain_accuracy"] < check["oracle_retain_accuracy"] - check["max_retain_drop"]
    assert "check(s) on data failed" in str(error)
    record = forced(tiny_bundle, data=data)
    assert passed(record["verification"]["checks"])["data"] is False
    # without the contradicting samples the same request verifies
    assert obliviate.forget(tiny_bundle, FORGET, device="cpu", data=tiny_dataset, depth="output"
                            ).history[-1]["verified"] is True  # fmt: skip


def test_cli_refuses_the_contradicting_data_and_writes_nothing(
    cli, monkeypatch, tiny_bundle, tiny_dataset, tmp_path
):
    from obliviate.cli import forget as forget_commands

    model = obliviate.save(tiny_bundle, tmp_path / "m.safetensors")
    data = contradicting_data(tiny_bundle, tiny_dataset)
    monkeypatch.setattr(forget_commands, "open_dataset", lambda *args, **kwargs: data)
    out, report = tmp_path / "f.safetensors", tmp_path / "r.json"
    args = ["forget", model, "--classes", "1", "--data", "tiny", "--depth", "output", "--out", out, "--report", report]
    code, _, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and "check(s) on data failed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    code, _, err = cli(*args, "--force")
    assert code == 0, err
    assert json.loads(report.read_text())["verified"] is False
    assert obliviate.load(out).history[-1]["verified"] is False


@pytest.mark.parametrize("lambda1, margin, expected", [
    (0.1, 1.0, {"codes": True, "data": True}),    # verifies on the data
    (0.1, 2.0, {"codes": False, "data": True}),   # the codes miss the larger margin
    (1.0, 2.0, {"codes": True, "data": False}),   # forgets, but kept classes lose accuracy
])  # fmt: skip
def test_paper_mode_with_data_verifies_or_refuses_on_that_data(
    tiny_bundle, tiny_dataset, lambda1, margin, expected
):
    kwargs = dict(lambda1=lambda1, lambda2=10.0, margin=margin, data=tiny_dataset)
    if all(expected.values()):
        out = obliviate.forget(tiny_bundle, FORGET, device="cpu", **kwargs)
        record = out.history[-1]
        assert record["verified"] is True and record["verification"]["reason"] is None
        assert record["selected_on"] == "data"
        assert passed(record["verification"]["checks"]) == expected
        preds = out.model(tiny_dataset.train.x).argmax(1)
        assert not (preds[tiny_dataset.train.y == FORGET[0]] == FORGET[0]).any()
        return
    error = refused(tiny_bundle, **kwargs)
    checks = error.record["verification"]["checks"]
    assert passed(checks) == expected
    failed = [k for k, ok in expected.items() if not ok]
    assert f"check(s) on {', '.join(failed)} failed at lambda1=" in str(error)
    assert forced(tiny_bundle, **kwargs)["verification"]["checks"].keys() == expected.keys()


def test_verdict_needs_every_check_and_one_on_real_samples():
    ok, bad = {"passed": True}, {"passed": False}
    assert _verdict({"codes": ok, "data": ok}, None, "s") == (True, None)
    assert _verdict({"codes": ok, "training_statistics": ok}, None, "s") == (True, None)
    # the codes alone never vouch for real data
    assert _verdict({"codes": ok}, None, "s")[0] is False
    verified, reason = _verdict({"codes": bad, "training_statistics": ok, "data": bad}, None,
                                "after strength 2")  # fmt: skip
    assert (verified, reason) == (False, "the check(s) on codes, data failed after strength 2")
    # a preset reason wins, even when every check passed
    assert _verdict({"codes": ok, "data": ok}, "why", "s") == (False, "why")
