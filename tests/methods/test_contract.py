"""The contract every registered unlearning method keeps, checked on digits (real data).

Each method runs through the one front door, ``obliviate.forget``, with small settings so the
whole table stays fast on two CPU cores. For each: a new model of the same architecture comes
back, the input model is untouched, forget-class test accuracy drops, retain accuracy stays
above the method's floor, and the audit record carries its time and the data it saw.
"""

from __future__ import annotations

import pytest
import torch

import obliviate
from obliviate import ObliviateError
from obliviate.checkpoint import weights_sha256
from obliviate.methods import METHODS, MethodOutput, UnlearningMethod

# name -> (CI-sized hyperparameters, retain-accuracy floor %). Floors are what each method
# honestly keeps on digits at these settings (LwSF trades most of it away, as in the paper).
SETTINGS: dict[str, tuple[dict, float]] = {
    "mnemonic": ({"lambda1": 3e-3, "lambda2": 10}, 90),
    "mnemonic-data": ({"lambda1": 1e-2, "lambda2": 10, "per_class": 50}, 85),
    "ssd": ({}, 90),
    "sfdn": ({"max_samples": 300}, 90),
    "fastmu": ({}, 80),
    "lwsf": ({"steps": 100, "lr": 0.1}, 20),
    "erm-ktp": ({"epochs": 30}, 85),
    "retrain": ({"epochs": 20}, 85),
    "finetune": ({"epochs": 10, "lr": 0.5}, 90),
    "gradient-ascent": ({"epochs": 10, "lr": 0.005, "batch_size": 32}, 75),
    "random-label": ({"lr": 1e-3}, 90),
}


def test_every_registered_method_has_contract_settings():
    assert set(SETTINGS) == set(METHODS.names())


def forget_acc(bundle, data, cls):
    return obliviate.evaluate(bundle, data, [cls], relearn_steps=0)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_method_contract(name, digits, digits_bundle):
    hyper, retain_floor = SETTINGS[name]
    before = forget_acc(digits_bundle, digits, 0)
    input_sha = weights_sha256(digits_bundle.model)
    out = obliviate.forget(digits_bundle, [0], method=name, data=digits, progress=False,
                           force=True, **hyper)
    after = forget_acc(out, digits, 0)

    assert weights_sha256(digits_bundle.model, reuse=False) == input_sha  # input untouched
    assert digits_bundle.forgotten_classes == [] and digits_bundle.history == []
    assert type(out.model) is type(digits_bundle.model)
    shapes = {k: v.shape for k, v in out.model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in digits_bundle.model.state_dict().items()}
    assert not any(p.requires_grad is False for p in out.model.parameters())

    # it forgets: class-0 test accuracy falls by at least 20 points (from ~98 %)
    assert 100 - after.forget_err <= (100 - before.forget_err) - 20
    assert after.retain_acc >= retain_floor

    record = out.history[-1]
    assert record["method"] == name and record["classes"] == [0]
    assert record["seconds"] > 0 and after.forget_seconds == record["seconds"]
    assert record["output_sha256"] == weights_sha256(out.model) != input_sha
    needs = METHODS.get(name).needs | METHODS.get(name).uses
    n_forget = int((digits.train.y == 0).sum())
    assert record["data"]["forget_samples"] == (n_forget if "forget" in needs else 0)
    assert record["data"]["retain_samples"] == (
        len(digits.train) - n_forget if "retain" in needs else 0
    )
    assert record["data"]["codes"] == ("codes" in needs)
    assert {k for k in hyper} <= set(record["hyperparameters"])


DATA_METHODS = sorted(n for n in METHODS.names() if METHODS.get(n).needs & {"forget", "retain"})
CODE_METHODS = sorted(n for n in METHODS.names() if "codes" in METHODS.get(n).needs)


@pytest.mark.parametrize("name", DATA_METHODS)
def test_method_without_its_data_is_a_clear_error(name, digits_bundle):
    with pytest.raises(ObliviateError, match=f"method '{name}' needs the .* set.*data="):
        obliviate.forget(digits_bundle, [0], method=name)


@pytest.mark.parametrize("name", CODE_METHODS)
def test_method_needing_codes_on_a_model_without_them(name, digits, digits_bundle_no_codes):
    with pytest.raises(ObliviateError, match="no mnemonic codes.*use a method that needs no codes"):
        obliviate.forget(digits_bundle_no_codes, [0], method=name, data=digits)


@pytest.mark.parametrize("name", [n for n in DATA_METHODS if "forget" in METHODS.get(n).needs])
def test_forget_classes_absent_from_the_data(name, digits, digits_bundle):
    without_three = digits.train.without_classes([3])
    with pytest.raises(ObliviateError, match=r"forget class\(es\) \[3\] have no samples"):
        obliviate.forget(digits_bundle, [3], method=name, data=without_three)


def test_data_that_does_not_fit_the_model(digits, digits_bundle):
    bad_labels = obliviate.data.Split(digits.train.x, digits.train.y + 5)
    with pytest.raises(ObliviateError, match="labels span 5..14"):
        obliviate.forget(digits_bundle, [0], method="finetune", data=bad_labels)
    flat = obliviate.data.Split(digits.train.x.flatten(1), digits.train.y)
    with pytest.raises(ObliviateError, match=r"inputs have shape \(64,\)"):
        obliviate.forget(digits_bundle, [0], method="finetune", data=flat)


def test_unknown_hyperparameter_lists_the_known_ones(digits, digits_bundle):
    with pytest.raises(ObliviateError, match="bad hyperparameters for 'ssd'.*known: alpha"):
        obliviate.forget(digits_bundle, [0], method="ssd", data=digits, lambda1=1.0)


class _Spy(UnlearningMethod):
    """Records the context it was given (registered only inside one test)."""

    name = "spy"
    needs = frozenset({"retain"})
    seen: list = []

    def unlearn(self, model, request, context):
        _Spy.seen.append(context)
        return MethodOutput(model=model)


def test_methods_see_only_the_data_they_declared(monkeypatch, digits, digits_bundle):
    monkeypatch.setitem(METHODS._items, "spy", _Spy)
    first = obliviate.forget(digits_bundle, [1], lambda1=3e-3, lambda2=10, force=True)
    obliviate.forget(first, [0], method="spy", data=digits)
    context = _Spy.seen[-1]
    assert context.forget_data is None and context.codes is None  # not declared
    assert context.previously_forgotten == (1,)
    kept = set(torch.unique(context.retain_data.y).tolist())
    assert kept == set(range(2, 10))  # neither the forget class nor the forgotten one
    assert len(context.retain_data) == int((digits.train.y >= 2).sum())


def test_a_method_that_writes_non_finite_weights_is_refused(digits, digits_bundle, cli, tmp_path):
    """sfdn's alpha at 1e300 overflows the weights: the front door refuses, nothing written."""
    with pytest.raises(obliviate.ObliviateError, match="non-finite weights"):
        obliviate.forget(digits_bundle, [0], method="sfdn", data=digits, alpha=1e300)
    model, out = tmp_path / "m.safetensors", tmp_path / "f.safetensors"
    obliviate.save(digits_bundle, model)
    code, _, err = cli("forget", model, "--classes", "0", "--method", "sfdn", "--data", "digits",
                       "--hp", "alpha=1e300", "--out", out)  # fmt: skip
    assert code == 2 and not out.exists() and "non-finite weights" in err
