"""`obliviate.forget`'s record and refusal path on the tiny model: what the audit record
holds, what a refusal says and keeps, what --force keeps, and the guards around the method."""

from __future__ import annotations

import copy

import pytest
import torch

import obliviate
from obliviate import ObliviateError
from obliviate.checkpoint import weights_sha256
from obliviate.errors import NotVerifiedError
from obliviate.methods.base import MethodOutput
from obliviate.methods.mnemonic import MnemonicForgetting


def test_the_audit_record_of_a_verified_forget(tiny_bundle):
    before = weights_sha256(tiny_bundle.model)
    # the head step alone (depth output): its statistics keep the kept classes' margins
    out = obliviate.forget(tiny_bundle, [2], device="cpu", seed=3, depth="output")
    record = out.history[-1]
    assert record["classes"] == [2] and record["method"] == "mnemonic"
    assert record["verified"] is True and record["mode"] == "calibrated"
    assert record["hyperparameters"] == MnemonicForgetting(depth="output").hyperparameters()
    assert record["data"] == {"codes": True, "forget_samples": 0, "retain_samples": 0}
    assert record["utc"].endswith("+00:00") and record["seconds"] > 0
    assert record["input_sha256"] == before == weights_sha256(tiny_bundle.model)
    assert record["output_sha256"] == weights_sha256(out.model) != before
    assert "keeps_statistics" not in record  # an instruction to forget(), not a fact
    assert out.forgotten_classes == [2] and out.history == [record]
    assert tiny_bundle.history == [] and tiny_bundle.forgotten_classes == []
    assert out.stats is not None and torch.isneginf(out.stats.margin[2]).all()
    assert torch.equal(out.stats.margin[0, [0, 1, 3]], tiny_bundle.stats.margin[0, [0, 1, 3]])
    assert out.codes is not tiny_bundle.codes and torch.equal(out.codes.tensor,
                                                              tiny_bundle.codes.tensor)  # fmt: skip
    assert not out.model.training and next(out.model.parameters()).device.type == "cpu"


def test_data_counts_in_the_record(tiny_bundle, tiny_dataset):
    out = obliviate.forget(tiny_bundle, [0], device="cpu", data=tiny_dataset)
    assert out.history[-1]["data"] == {"codes": True, "forget_samples": 40, "retain_samples": 120}
    out = obliviate.forget(tiny_bundle, [0], device="cpu", data=tiny_dataset.train)
    assert out.history[-1]["data"]["retain_samples"] == 120


def test_a_refusal_says_why_and_keeps_nothing(tiny_bundle):
    with pytest.raises(NotVerifiedError) as info:
        obliviate.forget(tiny_bundle, [3, 1], device="cpu", max_strength=1e-6)
    message = str(info.value)
    assert message.startswith("did not forget classes [1, 3] with mnemonic: the request needs")
    assert "above max_strength 1e-06" in message
    assert message.endswith("; nothing was written (force=True / --force keeps the unverified "
                            "result)")  # fmt: skip
    assert info.value.record["verified"] is False and info.value.record["strength"] == 1e-6
    assert tiny_bundle.history == []
    forced = obliviate.forget(tiny_bundle, [3, 1], device="cpu", max_strength=1e-6, force=True)
    record = forced.history[-1]
    assert record["verified"] is False and "max_strength" in record["verification"]["reason"]
    assert forced.forgotten_classes == [1, 3]


def test_a_method_without_a_verdict_is_recorded_as_such(tiny_bundle, tiny_dataset):
    out = obliviate.forget(tiny_bundle, [0], method="finetune", data=tiny_dataset, epochs=1)
    assert out.history[-1]["verified"] is None and out.stats is None  # the model moved
    assert out.history[-1]["data"] == {"codes": False, "forget_samples": 0, "retain_samples": 120}


def test_non_finite_output_is_refused_even_with_force(tiny_bundle, monkeypatch):
    def broken(self, model, request, context):
        out = copy.deepcopy(model)
        with torch.no_grad():
            out.classifier.weight[0, 0] = float("nan")
        return MethodOutput(model=out, details={"verified": True})

    monkeypatch.setattr(MnemonicForgetting, "unlearn", broken)
    with pytest.raises(ObliviateError, match=r"mnemonic produced non-finite weights "
                                             r"\(classifier.weight\); nothing was written"):
        obliviate.forget(tiny_bundle, [0], device="cpu", force=True)


def test_bad_hyperparameters_list_the_known_ones(tiny_bundle):
    with pytest.raises(ObliviateError, match="bad hyperparameters for 'mnemonic': .*known: "
                                             "lambda1, lambda2, margin"):
        obliviate.forget(tiny_bundle, [0], device="cpu", colour=1)


def test_a_model_in_training_mode_is_lent_as_a_copy(tiny_bundle):
    bundle = tiny_bundle.clone()
    bundle.model.train()
    sha = weights_sha256(bundle.model)
    out = obliviate.forget(bundle, [1], device="cpu")
    assert bundle.model.training and weights_sha256(bundle.model) == sha
    assert not out.model.training and out.history[-1]["verified"] is True
