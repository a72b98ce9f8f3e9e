"""Tests that pin what the mutation run (scripts/mutation.py, i.e. obliviate.experiments.mutation;
docs/results/mutation.md) found unpinned on the verification path: each checks a result against
an independent computation (brute force over the samples, a layer's own forward pass, or a
hand-built case whose answer is worked out in its comment)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from obliviate.data import Split
from obliviate.deep import (
    QUANTILES,
    RIDGE,
    FeatureLayer,
    LayerStatistics,
    check_layer,
    layer_inputs,
    retain_drop_bound,
    weight_matrix,
)
from obliviate.errors import GoalMissedWarning, ObliviateError
from obliviate.models import create_model
from obliviate.stats import record_statistics

# -- deep.py: the layer geometry ---------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    dict(stride=2, dilation=2, padding=1, bias=True),
    dict(stride=3, dilation=1, padding=2, bias=False),
    dict(stride=1, dilation=3, padding=0, bias=True),
])  # fmt: skip
def test_layer_inputs_times_the_weight_is_the_convolution_itself(kwargs):
    """The rows a convolution multiplies by its weight, times that weight, are its own output
    (every position of every image), for strides, dilations and paddings the registered
    models do not use."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, **kwargs).double()
    x = torch.randn(2, 2, 11, 9, generator=g, dtype=torch.float64)
    rows = layer_inputs(conv, x)
    out = conv(x)  # [n, out, h, w]
    assert rows.shape == (2 * out.shape[2] * out.shape[3], 2 * 9 + kwargs["bias"])
    pre = rows @ weight_matrix(conv).detach().T
    expected = out.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    assert torch.allclose(pre, expected, atol=1e-10)


def test_layer_inputs_times_the_weight_is_the_linear_layer_itself():
    g = torch.Generator().manual_seed(0)
    for bias in (True, False):
        linear = nn.Linear(5, 4, bias=bias)
        x = torch.randn(7, 5, generator=g)
        pre = layer_inputs(linear, x) @ weight_matrix(linear).detach().T
        assert torch.allclose(pre, linear(x).detach(), atol=1e-6)


@pytest.mark.parametrize("module, name", [
    (nn.Conv2d(4, 4, 3, groups=2, padding=1), "Conv2d"),
    (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "Conv2d"),
    (nn.Conv2d(4, 4, 3, padding="same"), "Conv2d"),
    (nn.BatchNorm2d(4), "BatchNorm2d"),
    (nn.ReLU(), "ReLU"),
])  # fmt: skip
def test_check_layer_refuses_what_layer_inputs_cannot_unfold(module, name):
    """A grouped convolution, one that pads other than with zeros or by a string, and any
    other module are refused by name; a plain convolution and a linear layer are accepted."""
    with pytest.raises(ObliviateError, match=f"not {name}$"):
        check_layer(module)
    check_layer(nn.Conv2d(4, 4, 3, padding=1))
    check_layer(nn.Conv2d(4, 4, 3, stride=2, dilation=2))
    check_layer(nn.Linear(3, 2))


def test_feature_bound_scales_by_the_slope_and_repeats_per_feature():
    """Sigmoid features (slope at most 1/4), each channel feeding two features: a channel
    bound of 1 and 2 allows the features to move 0.25, 0.25, 0.5 and 0.5."""
    layer = FeatureLayer("x", torch.tensor([0.25, 0.25]), features_per_channel=2)
    out = layer.feature_bound(torch.tensor([[1.0, 2.0], [4.0, 0.0]]))
    assert torch.equal(out, torch.tensor([[0.25, 0.25, 0.5, 0.5], [1.0, 1.0, 0.0, 0.0]]))


# -- deep.py: the statistics ---------------------------------------------------------------------


def test_layer_statistics_are_the_sample_averages_whatever_the_batch_size():
    """Class means, directions v_c = (A + ridge I)^-1 m_c (A: the mean of u u^T over every
    training input u of the layer, the ridge RIDGE times A's mean eigenvalue) and the ranges of
    v_f . u, computed one sample at a time in numpy, equal what record_statistics keeps when it
    reads the data in batches of 7 (a last batch without class 3)."""
    g = torch.Generator().manual_seed(0)
    model = create_model("fc", input_shape=(1, 2, 2), num_classes=4, hidden=3).eval()
    y = torch.tensor([0, 1, 2, 3] * 5 + [0, 1, 2, 0, 1, 2, 0])
    x = torch.rand(len(y), 1, 2, 2, generator=g)
    layer = record_statistics(model, Split(x, y), batch_size=7).layer
    assert layer is not None and layer.layer == "hidden"
    u = np.concatenate([x.reshape(len(y), -1).double().numpy(), np.ones((len(y), 1))], 1)
    second = sum(np.outer(row, row) for row in u) / len(u)
    ridge = RIDGE * np.trace(second) / second.shape[0]
    means = np.stack([u[y.numpy() == c].mean(0) for c in range(4)])
    v = np.linalg.solve(second + ridge * np.eye(second.shape[0]), means.T)  # [d, C]
    np.testing.assert_allclose(layer.class_mean.numpy(), means, rtol=1e-5, atol=1e-6)
    # where the model sends each sample without its own class: the softmax over the others,
    # one sample at a time, averaged per class (the diagonal 0)
    with torch.no_grad():
        z = model(x).double().numpy()
    others = np.zeros((4, 4))
    for row, label in zip(z, y.tolist()):
        keep = [k for k in range(4) if k != label]
        p = np.exp(row[keep] - row[keep].max())
        others[label, keep] += p / p.sum()
    others /= np.bincount(y.numpy(), minlength=4)[:, None]
    np.testing.assert_allclose(layer.other_probs.numpy(), others, rtol=1e-5, atol=1e-6)
    # the directions as the file stores them: the nearest bfloat16 (obliviate.compact)
    np.testing.assert_allclose(layer.directions.numpy(), v, rtol=4e-3, atol=1e-4)
    stored = layer.directions.double().numpy()
    for k in range(4):  # the ranges hold for the stored directions, rounded outward
        dots = u[y.numpy() == k] @ stored  # [n_k, C]
        low, high = layer.ranges[k, :, 0].numpy(), layer.ranges[k, :, 1].numpy()
        assert (low <= dots.min(0) + 1e-6).all() and (high >= dots.max(0) - 1e-6).all()
        np.testing.assert_allclose(low, dots.min(0), rtol=8e-3, atol=1e-4)
        np.testing.assert_allclose(high, dots.max(0), rtol=8e-3, atol=1e-4)


def _layer_statistics(quantiles: torch.Tensor, confusion: torch.Tensor) -> LayerStatistics:
    c = len(confusion)
    zeros = torch.zeros
    return LayerStatistics("x", zeros(c, 2), zeros(2, c), zeros(c, c, 2), zeros(c, c),
                           quantiles, confusion)  # fmt: skip


def test_retain_drop_bound_on_hand_built_statistics():
    """Forget class 0, keep 1, 3 and 2 (in that order). Class 1: 40 training samples, all
    predicted right, margins spread evenly over [0, 4]; its logits may move by at most 1.0,
    so the samples with margin below 1 (a quarter: 10) are at risk. Class 3 has no training
    sample. Class 2: 60 samples with margins evenly over [-2, 2], all below its bound 3.0, so
    all are at risk; the model got 10 of them wrong, but by sending them to the forget class,
    which the truncation oracle cannot predict: the oracle need not be wrong on any, and all
    60 count. Lost: 10 + 60 of 100 kept samples, 70 points."""
    q = torch.zeros(4, QUANTILES + 1)
    q[0] = float("inf")
    q[1] = torch.linspace(0.0, 4.0, QUANTILES + 1)
    q[2] = torch.linspace(-2.0, 2.0, QUANTILES + 1)
    q[3] = float("inf")
    confusion = torch.tensor([[30.0, 0, 0, 0], [0, 40, 0, 0], [10, 0, 50, 0], [0, 0, 0, 0]])
    bounds = torch.zeros(4, 4)
    bounds[1] = torch.tensor([0.0, 0.0, 0.5, 1.0])  # 1.0 is exactly the 33rd stored margin
    bounds[2] = torch.tensor([3.0, 0.0, 0.0, 0.0])
    stats = _layer_statistics(q, confusion)
    assert retain_drop_bound(stats, bounds, [0], [1, 3, 2]) == pytest.approx(70.0)
    # class 2 alone: 60 of 60
    assert retain_drop_bound(stats, bounds, [0], [2]) == pytest.approx(100.0)
    # class 1 alone: 10 of 40
    assert retain_drop_bound(stats, bounds, [0], [1]) == pytest.approx(25.0)
    # a bound no sample comes near: nothing at risk, nothing lost
    assert retain_drop_bound(stats, torch.zeros(4, 4) - 5.0, [0], [1, 2]) == \
        pytest.approx(0.0, abs=1e-9)  # fmt: skip
    # kept classes without a training sample: nothing to lose
    assert retain_drop_bound(stats, bounds, [0], [3]) == 0.0
    # no confusion matrix (after a deep forget): the statistics cannot tell
    assert retain_drop_bound(_layer_statistics(q, torch.zeros(0)), bounds, [0], [1]) is None


def test_retain_drop_bound_counts_the_model_s_own_errors_against_the_oracle():
    """Class 1: 40 samples, 20 predicted right and 20 predicted as the other kept class 2,
    margins evenly over [-1, 1] with bound 0.5 (three quarters at risk: 30). The oracle is
    wrong on those 20 too, so at most 30 - 20 = 10 are lost against it: 25 points."""
    q = torch.full((3, QUANTILES + 1), float("inf"))
    q[1] = torch.linspace(-1.0, 1.0, QUANTILES + 1)
    confusion = torch.tensor([[10.0, 0, 0], [0, 20, 20], [0, 0, 0]])
    bounds = torch.zeros(3, 3)
    bounds[1, 2] = 0.5
    assert retain_drop_bound(_layer_statistics(q, confusion), bounds, [0], [1, 2]) == \
        pytest.approx(25.0)  # fmt: skip


def _stored(bundle) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in bundle.stats.layer.tensors().items()}


_NAN = "the layer statistics hold NaN or infinite values"


def _set(key, index, value):
    return lambda t: t[key].__setitem__(index, value)


@pytest.mark.parametrize("edit, message", [
    (_set("stats.margin_quantiles", (1, 5), float("nan")), _NAN),
    (_set("stats.margin_quantiles", (1, 5), float("-inf")), _NAN),
    (_set("stats.layer.class_mean", (0, 0), float("inf")), _NAN),
    (_set("stats.confusion", (2, 1), -1.0), "the layer statistics' confusion matrix has negative "
                                            "counts"),
    (lambda t: t.__setitem__("stats.confusion", torch.ones(3, 3)),
     "the layer statistics' confusion matrix does not fit the model"),
])  # fmt: skip
def test_stored_layer_statistics_with_impossible_values_are_refused(tiny_bundle, edit, message):
    tensors = _stored(tiny_bundle)
    layer, classes = tiny_bundle.stats.layer.layer, tiny_bundle.num_classes
    assert LayerStatistics.from_tensors(tensors, layer, classes) is not None
    edit(tensors)
    with pytest.raises(ObliviateError, match=f"^{message}$"):
        LayerStatistics.from_tensors(tensors, layer, classes)


def test_the_redirect_refuses_statistics_it_cannot_use(tiny_bundle):
    """Statistics of a wider layer than the model's; and two forget classes whose mean inputs
    (and so directions) are the same, which no single edit can tell apart."""
    import copy

    from obliviate.deep import redirect

    model, stats = tiny_bundle.model, tiny_bundle.stats.layer
    layer = model.feature_layer()
    wide = copy.deepcopy(stats)
    wide.class_mean = torch.cat([wide.class_mean, torch.zeros(4, 1)], 1)
    with pytest.raises(ObliviateError, match="^the layer statistics do not fit the model's last "
                                             "feature layer$"):
        redirect(model, layer, wide, [1], [0, 2, 3])
    twins = copy.deepcopy(stats)
    twins.class_mean[2] = twins.class_mean[1]
    twins.directions[:, 2] = twins.directions[:, 1]
    with pytest.raises(ObliviateError, match="^the forget classes' mean inputs are linearly "
                                             "dependent at the last feature layer; forget them "
                                             "one request at a time$"):
        redirect(model, layer, twins, [1, 2], [0, 3])


def test_stored_layer_statistics_of_a_forgotten_class_may_hold_plus_infinity(tiny_bundle):
    """A forgotten class's margin row is +inf (no sample, nothing at risk): it loads."""
    tensors = _stored(tiny_bundle)
    tensors["stats.margin_quantiles"][2] = float("inf")
    out = LayerStatistics.from_tensors(tensors, tiny_bundle.stats.layer.layer, 4)
    assert torch.isinf(out.margin_quantiles[2]).all()


# -- mnemonic.py: the verification path ------------------------------------------------------


def test_verdict_quotes_the_reason_of_every_failed_check_that_gives_one():
    """Two checks fail, one saying why; the passed check's reason is not quoted."""
    from obliviate.methods.mnemonic_checks import verdict as _verdict

    checks = {
        "codes": {"passed": True, "reason": "not quoted"},
        "training_statistics": {"passed": False},
        "data": {"passed": False, "reason": "forget error 50.00% on 4 samples"},
    }
    assert _verdict(checks, None, "after strength 1.5") == (
        False, "the check(s) on training_statistics, data failed after strength 1.5 "
               "(data: forget error 50.00% on 4 samples)")  # fmt: skip
    checks["training_statistics"]["reason"] = "bound 3"
    assert _verdict(checks, None, "at x")[1] == (
        "the check(s) on training_statistics, data failed at x "
        "(training_statistics: bound 3; data: forget error 50.00% on 4 samples)")  # fmt: skip
    del checks["training_statistics"]["reason"], checks["data"]["reason"]
    assert _verdict(checks, None, "at x")[1] == (
        "the check(s) on training_statistics, data failed at x")
    assert _verdict(checks, "given", "at x") == (False, "given")


def _logits(model, x):
    with torch.no_grad():
        return model(x)


def test_the_deep_record_against_the_training_samples(tiny_bundle, tiny_dataset):
    """A verified deep forget of class 1 records, and the samples confirm: the layer it edited
    and how far (gamma 1, one try); the mixture, the original model's softmax over the classes
    other than 1, averaged over class 1's training samples and renormalised over the kept
    classes; a logit-change bound no kept
    training sample exceeds; the forget class's margin bound and guaranteed drop per unit of
    strength, which hold on every class-1 training sample of the edited model; the strength
    each source needs (the largest is the one applied); and the sign of the head step (the
    forget row goes down)."""
    import obliviate
    from obliviate.calibration import truncated_predictions

    bundle, train, retain = tiny_bundle, tiny_dataset.train, [0, 2, 3]
    out = obliviate.forget(bundle, [1], depth="features", data=tiny_dataset, device="cpu",
                           progress=False)  # fmt: skip
    record = out.history[-1]
    layer = bundle.model.feature_layer().name
    assert record["verified"] is True and record["depth"] == "features"
    assert record["scope"].startswith(f"layer {layer} ")
    assert record["redirect"]["layer"] == layer and record["redirect"]["gamma"] == 1.0
    assert "tried" not in record["redirect"]  # the full redirect verified at once
    x1 = train.x[train.y == 1]
    others = _logits(bundle.model, x1).double()
    others[:, 1] = float("-inf")  # where each sample goes without its class, averaged
    expected = others.softmax(1).mean(0)[retain]
    expected = expected / expected.sum()
    mixture = record["redirect"]["mixture"]
    assert list(mixture) == ["1"]
    assert {int(k) for k in mixture["1"]} == {k for k, p in zip(retain, expected) if p >= 0.01}
    for k, p in zip(retain, expected.tolist()):
        if p >= 0.01:
            assert mixture["1"][str(k)] == pytest.approx(p, rel=1e-4)
    # the edited model before its head step: the edited features, the original head
    kept = train.of_classes(retain)
    with torch.no_grad():
        before = bundle.model(kept.x)
        after = bundle.model.classifier(out.model.features(kept.x))
    change = 0.0
    for y in retain:
        rows = kept.y == y
        for k in retain:
            moved = (after[rows, y] - after[rows, k]) - (before[rows, y] - before[rows, k])
            change = max(change, float(moved.abs().max()))
    assert 0.0 < change <= record["redirect"]["largest_logit_change_bound"] + 1e-4
    # the forget side, sample by sample
    checks = record["verification"]["checks"]
    (bound,) = checks["training_statistics"]["classes"]
    assert bound["class"] == 1
    with torch.no_grad():
        edited = bundle.model.classifier(out.model.features(x1))
        final = out.model(x1)
    margins = edited[:, 1] - edited[:, retain].max(1).values
    assert float(margins.max()) <= bound["margin_bound"] + 1e-4
    per_unit = (edited[:, 1] - final[:, 1]) / record["strength"]
    assert float(per_unit.min()) >= bound["guaranteed_drop_per_unit"] - 1e-4
    assert bound["guaranteed_drop_per_unit"] > 0
    needed = record["strength_needed"]
    assert set(needed) == {"codes", "training_statistics", "data"}
    assert all(isinstance(v, float) for v in needed.values())
    assert checks["training_statistics"]["strength_needed"] == needed["training_statistics"]
    assert record["strength"] == max(needed.values())
    assert float((final[:, 1] - final[:, retain].max(1).values).max()) <= -2.0 + 1e-4
    assert record["sign"] == "-"
    lowered = out.model.classifier.bias.detach()[1]
    assert float(lowered) < float(bundle.model.classifier.bias.detach()[1])
    assert len(record["eta_max"]) == 1 and record["eta_max"][0] > 0
    # the codes' old outputs are not recomputed after a feature edit: no claim either way
    assert checks["codes"]["retain_codes_unchanged"] is None
    # the kept side: the oracle is the unedited model's truncated predictions
    data = checks["data"]
    assert data["forget_samples"] == len(x1) and data["forget_error"] == 100.0
    oracle = truncated_predictions(before, retain)
    assert data["oracle_retain_accuracy"] == pytest.approx(
        100.0 * float((oracle == kept.y).float().mean()))


def test_the_data_check_draws_retain_per_class_samples_of_each_kept_class(tiny_bundle,
                                                                         tiny_dataset):
    import obliviate

    for depth in ("features", "output"):
        out = obliviate.forget(tiny_bundle, [1], depth=depth, data=tiny_dataset, device="cpu",
                               retain_per_class=3, progress=False)  # fmt: skip
        assert out.history[-1]["verification"]["checks"]["data"]["retain_samples"] == 9


def test_the_output_record_says_the_features_are_untouched(tiny_bundle):
    import obliviate

    record = obliviate.forget(tiny_bundle, [1], depth="output", device="cpu",
                              progress=False).history[-1]  # fmt: skip
    assert record["depth"] == "output" and record["depth_note"] == "output only requested"
    assert record["scope"].startswith("forget-class rows of the classifier")
    assert "unchanged" in record["scope"]


def test_the_deep_oracle_is_the_unedited_model_on_digits(digits_bundle, digits):
    """On digits the deep edit costs kept training samples (its own truncated accuracy is
    below the unedited model's), so the oracle must be the unedited model's, by brute force."""
    import obliviate
    from obliviate.calibration import truncated_predictions

    retain = [c for c in range(10) if c != 3]
    out = obliviate.forget(digits_bundle, [3], depth="features", data=digits, progress=False,
                           max_retain_drop=100.0, redirect=1.0)  # fmt: skip
    data = out.history[-1]["verification"]["checks"]["data"]
    kept = digits.train.of_classes(retain)
    oracle = truncated_predictions(_logits(digits_bundle.model, kept.x), retain)
    edited = truncated_predictions(_logits(out.model, kept.x), retain)
    assert float((edited == kept.y).float().mean()) < float((oracle == kept.y).float().mean())
    assert data["retain_samples"] == len(kept)
    assert data["oracle_retain_accuracy"] == pytest.approx(
        100.0 * float((oracle == kept.y).float().mean()))


def test_a_full_redirect_that_costs_kept_samples_is_halved(digits_bundle, digits):
    """The full redirect costs 0.5 points of kept accuracy on digits, the half none: with
    max_retain_drop 0.3 the half verifies, and the record says both were tried. From a
    redirect of 2, both tries cost too much: auto falls back to the output, saying why (the
    reason of the first try, the one depth 'features' returns)."""
    import obliviate

    out = obliviate.forget(digits_bundle, [3], data=digits, progress=False, max_retain_drop=0.3)
    record = out.history[-1]
    assert record["verified"] is True and record["depth"] == "features"
    assert record["redirect"]["gamma"] == 0.5 and record["redirect"]["tried"] == [1.0, 0.5]
    kept = digits.train.of_classes([c for c in range(10) if c != 3])
    assert record["verification"]["checks"]["data"]["retain_samples"] == len(kept)
    # the features: the first try, refused and kept with force
    with pytest.warns(GoalMissedWarning):
        features = obliviate.forget(digits_bundle, [3], depth="features", data=digits,
                                    force=True, redirect=2.0, max_retain_drop=0.3,
                                    progress=False).history[-1]  # fmt: skip
    assert features["verified"] is False and features["redirect"]["gamma"] == 2.0
    reason = features["verification"]["reason"]
    assert reason.startswith("the check(s) on data failed after the feature edit and strength ")
    auto = obliviate.forget(digits_bundle, [3], data=digits, redirect=2.0, max_retain_drop=0.3,
                            progress=False).history[-1]  # fmt: skip
    assert auto["verified"] is True and auto["depth"] == "output"
    assert auto["depth_note"] == f"features: not verified ({reason}); fell back to output only"


def test_delta_is_linear_in_the_redirect(tiny_bundle):
    """Half the redirect moves the layer's weights half as far (the forget class's mean
    pre-activation half way to its target)."""
    import obliviate

    w = tiny_bundle.model.hidden.weight
    moved = {}
    for gamma in (1.0, 0.5):
        out = obliviate.forget(tiny_bundle, [1], depth="features", redirect=gamma, device="cpu",
                               progress=False)  # fmt: skip
        assert out.history[-1]["redirect"]["gamma"] == gamma
        moved[gamma] = out.model.hidden.weight.detach() - w.detach()
    assert float(moved[1.0].abs().max()) > 0
    assert torch.allclose(moved[0.5], 0.5 * moved[1.0], atol=1e-5)


def test_boundaries_are_inclusive(tiny_bundle):
    """A strength exactly at max_strength is allowed; a kept-class bound exactly at
    max_retain_drop (0 on this model: no kept training sample is at risk) passes, in auto
    mode too."""
    import obliviate

    first = obliviate.forget(tiny_bundle, [1], depth="output", device="cpu", progress=False)
    strength = first.history[-1]["strength"]
    again = obliviate.forget(tiny_bundle, [1], depth="output", device="cpu", progress=False,
                             max_strength=strength).history[-1]  # fmt: skip
    assert again["verified"] is True and again["strength"] == strength
    for depth in ("features", "auto"):
        record = obliviate.forget(tiny_bundle, [1], depth=depth, device="cpu", progress=False,
                                  max_retain_drop=0.0).history[-1]  # fmt: skip
        assert record["verified"] is True and record["depth"] == "features"
        assert record["verification"]["checks"]["retain_bound"] == {
            "training_accuracy_drop_bound": 0.0, "max_retain_drop": 0.0, "passed": True}


def test_auto_without_data_says_the_kept_class_bound_is_too_loose(digits_bundle, digits):
    """Without data, or with data of the forget class only (nothing on the kept side)."""
    import obliviate
    from obliviate.data import Dataset

    only_3 = Dataset("digits", digits.train.of_classes([3]), digits.test, 10, digits.input_shape)
    for data in (None, only_3):
        record = obliviate.forget(digits_bundle, [3], data=data, progress=False).history[-1]
        assert record["depth"] == "output"
        note = record["depth_note"]
        assert note.startswith("features: not verified without data (the kept-class bound "
                               "allows ")  # fmt: skip
        assert note.endswith(" points of training accuracy, more than 1); pass --data DATASET "
                             "(or a held-out --check-data DATASET) to verify the deep forget "
                             "on it")  # fmt: skip


def test_what_is_missing_is_named(tiny_bundle):
    import obliviate
    from obliviate.errors import NotVerifiedError

    bare = tiny_bundle.clone()
    bare.stats = None
    with pytest.raises(NotVerifiedError, match=r"record them from the training data \(obliviate "
                       r"stats MODEL --data DATASET --out NEW\.safetensors\) or pass the training "
                       r"data \(--data DATASET\)"):  # fmt: skip
        obliviate.forget(bare, [1], depth="output", device="cpu", progress=False)
    with pytest.raises(ObliviateError, match="available for this model: the model file has no "
                                             "training statistics; use depth 'output'"):
        obliviate.forget(bare, [1], depth="features", device="cpu", progress=False)
    no_layer = tiny_bundle.clone()
    no_layer.stats.layer = None
    with pytest.raises(ObliviateError, match=r"the model file has no layer statistics \(trained "
                                             r"before they were recorded, or by a method"):
        obliviate.forget(no_layer, [1], depth="features", device="cpu", progress=False)
    blind = tiny_bundle.clone()
    blind.model.feature_layer = lambda: None
    with pytest.raises(ObliviateError, match=f"architecture {type(blind.model).__name__} names "
                                             "no feature layer to edit"):
        obliviate.forget(blind, [1], depth="features", device="cpu", progress=False)


def _rotated(data, forget: int):
    """``data`` with the kept classes' labels rotated (0 -> 2 -> 3 -> 0 for kept 0, 2, 3):
    the model gets every kept sample wrong, so the data check cannot pass."""
    from obliviate.data import Dataset

    kept = [c for c in range(data.num_classes) if c != forget]
    y = data.train.y.clone()
    for a, b in zip(kept, kept[1:] + kept[:1]):
        y[data.train.y == a] = b
    return Dataset(data.name, Split(data.train.x, y), data.test, data.num_classes,
                   data.input_shape)  # fmt: skip


def test_a_refusal_at_the_output_names_the_strength_it_tried(tiny_bundle, tiny_dataset):
    import obliviate
    from obliviate.errors import NotVerifiedError

    with pytest.raises(NotVerifiedError, match=r"the check\(s\) on data failed after strength "
                                               r"[0-9.]+ \(data: "):
        obliviate.forget(tiny_bundle, [1], depth="output", data=_rotated(tiny_dataset, 1),
                         device="cpu", progress=False)  # fmt: skip


@pytest.mark.parametrize("depth", ["output", "features"])
def test_data_of_one_side_only_is_checked_on_that_side(tiny_bundle, tiny_dataset, depth):
    """Data holding only the kept classes check the kept side; only the forget class, the
    forget side."""
    import obliviate
    from obliviate.data import Dataset

    for classes, keys in (([0, 2, 3], {"retain_samples"}), ([1], {"forget_samples"})):
        part = tiny_dataset.train.of_classes(classes)
        data = Dataset("tiny", part, tiny_dataset.test, 4, (1, 4, 4))
        record = obliviate.forget(tiny_bundle, [1], depth=depth, data=data, device="cpu",
                                  progress=False).history[-1]  # fmt: skip
        check = record["verification"]["checks"]["data"]
        assert check["passed"] is True and record["depth"] == depth
        assert keys <= set(check) and not ({"retain_samples", "forget_samples"} - keys) & set(check)


def test_a_second_data_free_forget_after_a_deep_one_cannot_bound_the_kept_classes(
        tiny_bundle, tiny_dataset):  # fmt: skip
    """A deep forget drops the confusion matrix (the edit changed the predictions): the next
    data-free auto request cannot bound the kept classes' loss, and says so."""
    import obliviate

    deep = obliviate.forget(tiny_bundle, [1], depth="features", data=tiny_dataset,
                            device="cpu", progress=False)  # fmt: skip
    assert deep.stats.layer.confusion.numel() == 0
    record = obliviate.forget(deep, [2], device="cpu", progress=False).history[-1]
    assert record["depth"] == "output"
    assert record["depth_note"].startswith("features: not verified without data (the kept-class "
                                           "bound allows an unknown loss of training accuracy")


def test_features_below_zero_without_data_ask_for_the_data(tiny_bundle):
    """Class 1's training features said to reach -10: lowering its row may raise its logit, no
    strength is guaranteed, and the refusal says to pass the data."""
    import obliviate
    from obliviate.errors import NotVerifiedError

    odd = tiny_bundle.clone()
    odd.stats.feature_min[1] = -10.0
    with pytest.raises(NotVerifiedError) as caught:
        obliviate.forget(odd, [1], depth="output", device="cpu", progress=False)
    assert ("go below zero on the forget classes' samples, so lowering the forget rows' "
            "weights may raise the forget logit on some of them; pass the training data "
            "(--data DATASET) to calibrate and verify on it") in str(caught.value)


def test_a_deep_refusal_without_data_quotes_the_kept_class_bound(digits_bundle):
    """Data-free, the deep forget of digit 3 cannot vouch for the kept classes: the refusal
    quotes the retain_bound check's reason with the bound the forced result records; after a
    deep forget (no confusion matrix left) the bound is unknown, and the refusal says so."""
    import obliviate
    from obliviate.errors import NotVerifiedError

    with pytest.warns(GoalMissedWarning):
        forced = obliviate.forget(digits_bundle, [3], depth="features", force=True,
                                  progress=False)  # fmt: skip
    check = forced.history[-1]["verification"]["checks"]["retain_bound"]
    drop = check["training_accuracy_drop_bound"]
    assert check["passed"] is False and drop > 1.0
    why = (f"(retain_bound: without data the kept classes' bound allows {drop:.1f} points of "
           "training accuracy, more than 1; give the data the model was trained on (--data "
           "DATASET), or held-out samples (--check-data DATASET), to verify the deep forget on "
           "them)")
    assert check["reason"] == why[len("(retain_bound: "):-1]
    with pytest.raises(NotVerifiedError) as caught:
        obliviate.forget(digits_bundle, [3], depth="features", progress=False)
    assert why in str(caught.value)
    with pytest.raises(NotVerifiedError) as caught:
        obliviate.forget(forced, [5], depth="features", progress=False)
    assert ("(retain_bound: without data the kept classes' bound allows an unknown loss of "
            "training accuracy, more than 1; give the data") in str(caught.value)


def test_features_below_zero_with_kept_data_only_cannot_be_calibrated_either(tiny_bundle,
                                                                            tiny_dataset):
    """The same statistics with data of the kept classes only: nothing calibrates the forget
    class, so the request is refused for the bound, without asking for data it was given."""
    import obliviate
    from obliviate.data import Dataset
    from obliviate.errors import NotVerifiedError

    odd = tiny_bundle.clone()
    odd.stats.feature_min[1] = -10.0
    kept = Dataset("tiny", tiny_dataset.train.of_classes([0, 2, 3]), tiny_dataset.test, 4,
                   (1, 4, 4))  # fmt: skip
    with pytest.raises(NotVerifiedError) as caught:
        obliviate.forget(odd, [1], depth="output", data=kept, device="cpu", progress=False)
    message = str(caught.value)
    assert "may raise the forget logit on some of them; nothing was written" in message
    assert "pass the training data" not in message and "--data" not in message


def test_the_deep_forget_without_data_guarantees_the_bias_s_drop_at_least(tiny_bundle):
    """Sigmoid features are never negative and the direction's weights are Fisher ratios (not
    negative either), so lowering the forget row takes at least its bias's 1 per unit of
    strength off every sample: the carried statistics must not claim less."""
    import obliviate

    out = obliviate.forget(tiny_bundle, [1], depth="features", device="cpu", progress=False)
    record = out.history[-1]
    (bound,) = record["verification"]["checks"]["training_statistics"]["classes"]
    assert record["depth"] == "features" and bound["guaranteed_drop_per_unit"] >= 1.0


def test_the_kept_samples_are_drawn_with_the_request_s_seed(tiny_bundle, tiny_dataset):
    """A third of class 2's samples are relabelled from class 0 (the model says 0): which of
    them a draw of 3 per class picks changes the oracle's accuracy, so each seed's record must
    match its own draw, by brute force."""
    import obliviate
    from obliviate.calibration import truncated_predictions
    from obliviate.data import Dataset

    y = tiny_dataset.train.y.clone()
    y[torch.nonzero(y == 0).flatten()[:20]] = 2
    data = Dataset("tiny", Split(tiny_dataset.train.x, y), tiny_dataset.test, 4, (1, 4, 4))
    kept = data.train.of_classes([0, 2, 3])
    seen = set()
    for seed in range(4):
        with warnings.catch_warnings():  # verified or not, the record says what it saw
            warnings.simplefilter("ignore", GoalMissedWarning)
            out = obliviate.forget(tiny_bundle, [1], depth="output", data=data, seed=seed,
                                   retain_per_class=3, device="cpu", force=True,
                                   progress=False)  # fmt: skip
        draw = kept.per_class_subset(3, seed=seed)
        oracle = truncated_predictions(_logits(tiny_bundle.model, draw.x), [0, 2, 3])
        expected = 100.0 * float((oracle == draw.y).float().mean())
        check = out.history[-1]["verification"]["checks"]["data"]
        assert check["oracle_retain_accuracy"] == pytest.approx(expected)
        seen.add(round(expected, 6))
    assert len(seen) > 1  # the draws differ where it shows


# -- calibration.py, stats.py and api.forget: what the verification path reads from them ------


def _onehot(predicted: list[int], classes: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predicted), classes).float()


def test_data_check_says_why_with_its_numbers():
    """Forget samples of class 1: 3 of 4 predicted wrong (75 % forget error, goal 99.5). Kept
    samples of classes 0 and 2: the model gets 1 of 2 right, the oracle both (a 50-point drop,
    25 allowed). Both reasons, in that order."""
    from obliviate.calibration import data_check

    y_forget = torch.tensor([1, 1, 1, 1])
    y_retain = torch.tensor([0, 2])
    out = data_check(_onehot([0, 2, 3, 1]), y_forget, _onehot([0, 0]), y_retain, y_retain,
                     [0, 2], min_forget_error=99.5, max_retain_drop=25.0)  # fmt: skip
    assert out["passed"] is False and out["oracle_at_chance"] is False
    assert out["reason"] == ("forget error 75.00% on 4 samples, below the goal 99.5%; retain "
                             "accuracy 50.00% vs oracle 100.00%, more than 25 point(s) below")
    alone = data_check(None, None, _onehot([0, 0]), y_retain, y_retain, [0, 2],
                       min_forget_error=99.5, max_retain_drop=25.0)  # fmt: skip
    assert alone["reason"] == (
        "retain accuracy 50.00% vs oracle 100.00%, more than 25 point(s) below")


@pytest.mark.parametrize("oracle_right, at_chance", [(1, True), (2, False)])
def test_data_check_with_two_kept_classes_an_oracle_at_chance_fails(oracle_right, at_chance):
    """Two kept classes: chance is 50 %, and an oracle below 1.5 times that (75 %) is at
    chance. On 2 samples the oracle gets 1 right (50 %: at chance) or both (100 %)."""
    from obliviate.calibration import ORACLE_CHANCE_FACTOR, data_check

    assert ORACLE_CHANCE_FACTOR == 1.5
    y = torch.tensor([0, 2])
    oracle = torch.tensor([0, 2]) if oracle_right == 2 else torch.tensor([0, 0])
    out = data_check(None, None, _onehot([0, 2]), y, oracle, [0, 2], min_forget_error=0.0,
                     max_retain_drop=100.0)  # fmt: skip
    assert out["oracle_at_chance"] is at_chance and out["passed"] is (not at_chance)
    if at_chance:
        assert out["reason"].startswith("the data does not fit this model: the model before the "
                                        "forget is at 50.0% on the kept classes (chance 50.0%)")


def test_stale_statistics_name_both_weights_and_the_fix():
    from obliviate.stats import stale_reason

    stats = record_statistics(create_model("fc", input_shape=(2,), num_classes=2, hidden=2),
                              Split(torch.rand(4, 2), torch.tensor([0, 1, 0, 1])))  # fmt: skip
    fix = ("record them again from the training data (obliviate stats MODEL --data DATASET "
           "--out NEW.safetensors; Python: obliviate.record_statistics(bundle, data)), or pass "
           "the training data (--data DATASET) to verify on it")
    assert stale_reason(stats, stats.weights_sha256) is None
    stats.weights_sha256 = "a" * 64
    assert stale_reason(stats, "b" * 64) == (
        "the training statistics were recorded for other weights (sha256 aaaaaaaaaaaa…, the "
        "model's are bbbbbbbbbbbb…): fine-tuned, edited or loaded from another checkpoint after "
        f"training?; {fix}")  # fmt: skip
    stats.weights_sha256 = None
    assert stale_reason(stats, "b" * 64) == (
        "the model file's training statistics are not bound to any weights (written by an "
        f"older obliviate), so they cannot vouch for these; {fix}")  # fmt: skip


def test_statistics_recorded_for_a_forgotten_model_are_bound_to_it(tiny_bundle, tiny_dataset):
    """Recorded again after a forget (the forgotten class's entries cleared), the statistics
    still name the weights they describe, so the next request verifies from them."""
    import obliviate
    from obliviate.digest import weights_sha256

    first = obliviate.forget(tiny_bundle, [1], depth="output", device="cpu", progress=False)
    again = obliviate.record_statistics(first, tiny_dataset)
    assert again.stats.weights_sha256 == weights_sha256(again.model, reuse=False)
    second = obliviate.forget(again, [2], depth="output", device="cpu", progress=False)
    assert second.history[-1]["verified"] is True


def test_the_carried_quantiles_shrink_by_each_class_s_own_largest_bound():
    """Class 1's logit differences may move by at most 1, class 2's by 5: class 1's stored
    margins come down by 1, class 2's by 5."""
    from obliviate.stats import TrainingStatistics, transport

    q = torch.stack([torch.linspace(0.0, 4.0, QUANTILES + 1)] * 3)
    layer = _layer_statistics(q, torch.ones(3, 3))
    stats = TrainingStatistics(torch.zeros(3, 3), torch.ones(3, 2), 9, layer, None)
    bounds = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.25], [5.0, 2.0, 0.0]])
    out = transport(stats, torch.zeros(3, 2), bounds, True).layer
    assert torch.equal(out.margin_quantiles[1], q[1] - 1.0)
    assert torch.equal(out.margin_quantiles[2], q[2] - 5.0)
    assert out.confusion.numel() == 0 and layer.confusion.numel() == 9  # the input is intact


def test_the_record_says_what_the_statistics_are_bound_to(tiny_bundle, tiny_dataset):
    import obliviate

    record = obliviate.forget(tiny_bundle, [1], depth="output", device="cpu",
                              progress=False).history[-1]  # fmt: skip
    assert record["statistics"] == "bound to the input weights"
    bare = tiny_bundle.clone()
    bare.stats = None
    record = obliviate.forget(bare, [1], depth="output", data=tiny_dataset, device="cpu",
                              progress=False).history[-1]  # fmt: skip
    assert record["statistics"] == "none"


def test_the_carried_feature_minima_hold_for_the_edited_model_and_stay_at_zero_or_above(
        digits_bundle, digits):  # fmt: skip
    """After a deep forget of digit 3 the file's feature minima describe the edited model:
    below every kept class's training features (brute force), and, the features being
    sigmoids, never below 0 (a lower bound under 0 would guarantee less than the activation
    already does)."""
    import obliviate
    from obliviate.training import extract_features

    out = obliviate.forget(digits_bundle, [3], depth="features", data=digits, progress=False)
    assert out.history[-1]["depth"] == "features" and out.history[-1]["verified"] is True
    floor = out.stats.feature_min
    assert bool((floor >= 0).all())
    for c in (0, 1, 2, 4, 5, 6, 7, 8, 9):
        feats = extract_features(out.model, digits.train.x[digits.train.y == c])
        assert bool((feats.min(0).values >= floor[c] - 1e-5).all()), c
