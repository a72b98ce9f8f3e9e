"""`obliviate.forget`'s record and refusal path on the tiny model: what the audit record
holds, what a refusal says and keeps, what --force keeps, and the guards around the method."""

from __future__ import annotations

import copy
import dataclasses
import time

import pytest
import torch

import obliviate
from obliviate import ObliviateError
from obliviate.checkpoint import weights_sha256
from obliviate.errors import GoalMissedWarning, NotVerifiedError
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
    assert message.endswith("; nothing was written (force=True keeps the unverified result)")
    assert info.value.for_command_line().endswith(  # the command line's words: no Python
        "; nothing was written (--force writes it anyway, recorded as verified: false)")
    assert info.value.record["verified"] is False and info.value.record["strength"] == 1e-6
    assert tiny_bundle.history == []
    with pytest.warns(GoalMissedWarning) as warned:
        forced = obliviate.forget(tiny_bundle, [3, 1], device="cpu", max_strength=1e-6,
                                  force=True)  # fmt: skip
    warning = str(warned[0].message)
    assert warning.startswith("classes [1, 3] are not verified as forgotten with mnemonic: the "
                              "request needs")  # fmt: skip
    assert warning.endswith("above max_strength 1e-06; returned because force=True (recorded "
                            "as verified: false)")  # fmt: skip
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


def test_non_finite_output_names_three_weights_and_says_what_to_do(tiny_bundle, monkeypatch):
    def all_nan(self, model, request, context):
        out = copy.deepcopy(model)
        with torch.no_grad():
            for p in out.parameters():
                p.fill_(float("nan"))
        return MethodOutput(model=out, details={"verified": True})

    monkeypatch.setattr(MnemonicForgetting, "unlearn", all_nan)
    assert len(list(tiny_bundle.model.state_dict())) == 4
    with pytest.raises(ObliviateError) as info:
        obliviate.forget(tiny_bundle, [0], device="cpu")
    assert str(info.value) == (
        "mnemonic produced non-finite weights (hidden.weight, hidden.bias, classifier.weight); "
        "nothing was written. Lower the method's step sizes (its keyword arguments) and try again"
    )
    assert info.value.for_command_line().endswith(
        "Lower the method's step sizes (--hp KEY=VALUE) and try again")


def test_a_refusal_without_a_reason_says_the_checks_failed(tiny_bundle, monkeypatch):
    def unverified(self, model, request, context):  # no "verification" entry at all
        return MethodOutput(model=copy.deepcopy(model), details={"verified": False})

    monkeypatch.setattr(MnemonicForgetting, "unlearn", unverified)
    with pytest.raises(NotVerifiedError, match=r"with mnemonic: its checks failed; nothing was "):
        obliviate.forget(tiny_bundle, [0], device="cpu")
    with pytest.warns(GoalMissedWarning, match=r"with mnemonic: its checks failed; returned "):
        forced = obliviate.forget(tiny_bundle, [0], device="cpu", force=True)
    assert forced.history[-1]["verified"] is False


def test_seconds_are_the_method_s_own_work(tiny_bundle, monkeypatch):
    def slow(self, model, request, context):
        time.sleep(0.05)
        return MethodOutput(model=copy.deepcopy(model), details={"verified": True})

    monkeypatch.setattr(MnemonicForgetting, "unlearn", slow)
    start = time.perf_counter()
    out = obliviate.forget(tiny_bundle, [0], device="cpu")
    wall = time.perf_counter() - start
    assert 0.05 <= out.history[-1]["seconds"] <= wall


def _capture(monkeypatch) -> list:
    """Make mnemonic's unlearn() record the model and context it is given (and copy the model)."""
    calls = []

    def capture(self, model, request, context):
        calls.append((model, context))
        return MethodOutput(model=copy.deepcopy(model), details={"verified": True})

    monkeypatch.setattr(MnemonicForgetting, "unlearn", capture)
    return calls


def test_the_method_is_given_the_model_s_context(tiny_bundle, tiny_dataset, monkeypatch):
    calls = _capture(monkeypatch)
    bundle = tiny_bundle.clone()
    bundle.forgotten_classes = [3]
    def augment(x, generator=None):
        return x
    data = dataclasses.replace(tiny_dataset, train_augment=augment)
    obliviate.forget(bundle, [0], device="cpu", data=data, seed=7, progress=False)
    _, context = calls[-1]
    assert context.previously_forgotten == (3,) and context.num_classes == 4
    assert context.seed == 7 and context.progress is False and context.augment is augment
    assert context.train_config == obliviate.TrainConfig(epochs=30, lr=0.1, batch_size=32)
    assert context.stats is bundle.stats and context.codes is bundle.codes
    assert set(context.forget_data.y.tolist()) == {0} and len(context.forget_data) == 40
    assert set(context.retain_data.y.tolist()) == {1, 2}  # class 3 is neither
    fresh = context.fresh_model()
    assert type(fresh) is type(bundle.model)
    shapes = {k: v.shape for k, v in bundle.model.state_dict().items()}
    assert {k: v.shape for k, v in fresh.state_dict().items()} == shapes  # hidden=32, 4 classes
    assert not torch.equal(fresh.classifier.weight, bundle.model.classifier.weight)
    obliviate.forget(bundle, [0], device="cpu")  # the defaults
    _, context = calls[-1]
    assert context.seed == 0 and context.progress is True and context.augment is None


def test_the_method_draws_from_a_generator_seeded_with_seed(tiny_bundle, monkeypatch):
    draws = []

    def draw(self, model, request, context):
        draws.append(torch.rand(4))
        return MethodOutput(model=copy.deepcopy(model), details={"verified": True})

    monkeypatch.setattr(MnemonicForgetting, "unlearn", draw)
    expected = {s: torch.rand(4, generator=torch.Generator().manual_seed(s)) for s in (0, 5)}
    torch.rand(10)  # move the global generator away from the test's seed
    obliviate.forget(tiny_bundle, [0], device="cpu")  # default seed: 0
    obliviate.forget(tiny_bundle, [0], device="cpu", seed=5)
    assert torch.equal(draws[0], expected[0]) and torch.equal(draws[1], expected[5])


def test_the_caller_s_model_is_lent_as_it_is_only_in_eval_mode_on_the_device(tiny_bundle,
                                                                             monkeypatch):
    calls = _capture(monkeypatch)
    obliviate.forget(tiny_bundle, [0], device="cpu")
    assert calls[-1][0] is tiny_bundle.model  # eval mode, on the CPU: no copy
    bundle = tiny_bundle.clone()
    bundle.model.train()
    obliviate.forget(bundle, [0], device="cpu")
    lent = calls[-1][0]
    assert lent is not bundle.model and not any(m.training for m in lent.modules())
    assert all(m.training for m in bundle.model.modules())
    ours = {p.data_ptr() for p in bundle.model.parameters()}
    assert not ours & {p.data_ptr() for p in lent.parameters()}


def test_the_device_asked_for_is_used_where_cuda_is_available(tiny_bundle, monkeypatch):
    calls = _capture(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    obliviate.forget(tiny_bundle, [0], device="cpu")
    model, context = calls[-1]
    assert next(model.parameters()).device.type == "cpu"
    assert next(context.fresh_model().parameters()).device.type == "cpu"


def test_a_method_that_hands_back_its_input_gets_a_copy(tiny_bundle, monkeypatch):
    def unchanged(self, model, request, context):
        return MethodOutput(model=model, details={"verified": True})

    monkeypatch.setattr(MnemonicForgetting, "unlearn", unchanged)
    out = obliviate.forget(tiny_bundle, [0], device="cpu")
    assert out.model is not tiny_bundle.model
    assert weights_sha256(out.model) == weights_sha256(tiny_bundle.model)
    ours = {p.data_ptr() for p in tiny_bundle.model.parameters()}
    assert not ours & {p.data_ptr() for p in out.model.parameters()}


def test_the_result_shares_nothing_with_the_input(tiny_bundle):
    bundle = tiny_bundle.clone()
    bundle.arch_kwargs = {**bundle.arch_kwargs, "note": {"sizes": [1]}}
    bundle.train_config = {**bundle.train_config, "note": {"sizes": [1]}}
    out = obliviate.forget(bundle, [0], device="cpu")
    assert out.arch_kwargs == bundle.arch_kwargs and out.train_config == bundle.train_config
    out.arch_kwargs["note"]["sizes"].append(2)
    out.train_config["note"]["sizes"].append(2)
    assert bundle.arch_kwargs["note"] == bundle.train_config["note"] == {"sizes": [1]}
    assert out.codes.tensor.data_ptr() != bundle.codes.tensor.data_ptr()
    assert torch.equal(out.codes.tensor, bundle.codes.tensor)


def test_data_by_name_is_read_at_the_model_s_input_size(tiny_bundle, tiny_dataset, monkeypatch):
    asked = []

    def resolve(name, data_dir=None, download=False, *, options=None):
        asked.append((name, options))
        return tiny_dataset

    monkeypatch.setattr(obliviate.api, "resolve_dataset", resolve)
    out = obliviate.forget(tiny_bundle, [0], device="cpu", data="folder:/photos")
    assert asked == [("folder:/photos", {"image_size": 4})]
    assert out.history[-1]["data"] == {"codes": True, "forget_samples": 40, "retain_samples": 120}


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
