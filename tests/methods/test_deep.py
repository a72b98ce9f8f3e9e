"""The deep (feature-level) forget: the closed-form redirect, the bounds that carry the file's
statistics through it, the depth modes and their records."""

from __future__ import annotations

import copy

import pytest
import torch

import obliviate
import obliviate.references
from obliviate import deep
from obliviate.calibration import truncated_predictions
from obliviate.deep import (
    apply_edit,
    logit_bounds,
    redirect,
    retain_drop_bound,
)
from obliviate.errors import NotVerifiedError, ObliviateError
from obliviate.evidence import prototype_accuracy
from obliviate.stats import record_statistics, transport
from obliviate.training import extract_features, predict


@pytest.fixture(scope="module")
def cnn_bundle(digits):
    return obliviate.train(digits, "cnn", config=obliviate.TrainConfig(epochs=15, lr=0.05),
                           progress=False)  # fmt: skip


def _edited(bundle, forget):
    model = bundle.model
    retain = [c for c in range(bundle.num_classes) if c not in forget]
    layer = model.feature_layer()
    edit = redirect(model, layer, bundle.stats.layer, forget, retain)
    out = copy.deepcopy(model)
    apply_edit(out, layer, edit)
    return out, layer, edit, retain


@pytest.mark.parametrize("forget", [[3], [1, 8]])
def test_redirect_moves_each_forget_class_mean_onto_the_kept_classes_it_resembles(
        digits_bundle, digits, forget):  # fmt: skip
    """From the training samples, not the stored statistics: after the edit, the mean
    pre-activation of the feature layer over each forget class's samples is the mixture of the
    kept classes' means, weighted by where the original sends that class's samples without it:
    the mean over them of the softmax over the other classes, renormalised over the kept ones."""
    edited, _, edit, retain = _edited(digits_bundle, forget)
    x, y = digits.train.x.flatten(1), digits.train.y
    with torch.no_grad():  # fc: the feature layer is ``hidden``, fed the flattened image
        before, after = digits_bundle.model.hidden(x).double(), edited.hidden(x).double()
        logits = digits_bundle.model(digits.train.x).double()
    for f in forget:
        others = logits[y == f].clone()
        others[:, f] = float("-inf")
        weights = others.softmax(1).mean(0)[retain]
        weights = weights / weights.sum()
        target = sum(w * before[y == k].mean(0) for w, k in zip(weights, retain))
        assert torch.allclose(after[y == f].mean(0), target, atol=1e-4)
        assert not torch.allclose(after[y == f].mean(0), before[y == f].mean(0), atol=1e-2)
        expected = {k: float(w) for k, w in zip(retain, weights) if w >= 0.01}
        assert edit.mixture[f] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("arch", ["fc", "cnn"])
def test_the_bounds_hold_on_every_training_sample(digits_bundle, cnn_bundle, digits, arch):
    bundle = digits_bundle if arch == "fc" else cnn_bundle
    edited, layer, edit, retain = _edited(bundle, [3])
    x, y = digits.train.x, digits.train.y
    old, new = extract_features(bundle.model, x), extract_features(edited, x)
    feature_bound = layer.feature_bound(edit.channel_bound)
    assert bool(((new - old).abs() <= feature_bound[y] + 1e-4).all())
    bounds = logit_bounds(bundle.model.classifier, feature_bound)
    z_old, z_new = bundle.model.classifier(old), bundle.model.classifier(new)
    d_old = z_old.gather(1, y[:, None]) - z_old  # z_y - z_k
    d_new = z_new.gather(1, y[:, None]) - z_new
    assert bool(((d_new - d_old).abs() <= bounds[y] + 1e-3).all())
    assert float((d_new - d_old).detach().abs().max()) > 0.1  # the edit did move something


@pytest.mark.parametrize("block", [1, 7, 1 << 18])  # a row per block, rows split unevenly, one
def test_the_logit_bounds_are_the_weighted_l1_gaps_of_the_head_rows(monkeypatch, block):
    monkeypatch.setattr(deep, "BOUND_BLOCK", block)
    gen = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(6, 5)
    with torch.no_grad():
        head.weight.copy_(torch.randn(5, 6, generator=gen))
    feature_bound = torch.rand(5, 6, generator=gen)
    bounds = logit_bounds(head, feature_bound)
    w = head.weight.detach().tolist()
    for y in range(5):
        for k in range(5):
            expected = sum(abs(w[y][i] - w[k][i]) * float(feature_bound[y, i]) for i in range(6))
            assert float(bounds[y, k]) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_carried_statistics_hold_for_the_edited_model(digits_bundle, digits):
    edited, layer, edit, _ = _edited(digits_bundle, [0])
    feature_bound = layer.feature_bound(edit.channel_bound)
    bounds = logit_bounds(digits_bundle.model.classifier, feature_bound)
    carried = transport(digits_bundle.stats, feature_bound, bounds, layer.nonnegative)
    actual = record_statistics(edited, digits.train)
    assert bool((actual.margin <= carried.margin + 1e-4).all())
    assert bool((actual.feature_min >= carried.feature_min - 1e-5).all())
    # quantiles only fall: every stored rank of the new margins lies above the carried one
    assert bool((actual.layer.margin_quantiles >= carried.layer.margin_quantiles - 1e-4).all())


def test_the_kept_class_bound_is_never_below_the_true_drop(digits_bundle, digits):
    """On a trained model. Loose here (measured: 81 points against 0.5 for [3], 96 against
    1.5 for [2, 4, 6]); test_deep_guarantees.py checks it where it is tight."""
    for forget in ([3], [2, 4, 6]):
        edited, layer, edit, retain = _edited(digits_bundle, forget)
        bounds = logit_bounds(digits_bundle.model.classifier, layer.feature_bound(edit.channel_bound))
        bound = retain_drop_bound(digits_bundle.stats.layer, bounds, forget, retain)
        kept = digits.train.without_classes(forget)
        with torch.no_grad():
            oracle = truncated_predictions(digits_bundle.model(kept.x), retain)
            after = truncated_predictions(edited(kept.x), retain)
        drop = 100.0 * float((oracle == kept.y).float().mean() - (after == kept.y).float().mean())
        assert bound is not None and bound >= drop


def test_features_depth_verified_on_data_takes_the_class_out_of_the_features(digits_bundle,
                                                                             digits):  # fmt: skip
    deep = obliviate.forget(digits_bundle, [3], data=digits, depth="features", progress=False)
    record = deep.history[-1]
    assert record["verified"] is True and record["depth"] == "features"
    assert record["verification"]["checks"]["data"]["passed"]
    assert "retain_bound" not in record["verification"]["checks"]  # data judged the kept classes
    old, new = digits_bundle.model, deep.model
    assert not torch.equal(old.hidden.weight, new.hidden.weight)
    assert (predict(new, digits.test.of_classes([3]).x) != 3).all()
    shallow = obliviate.forget(digits_bundle, [3], depth="output", progress=False)
    assert torch.equal(shallow.model.hidden.weight, old.hidden.weight)
    retrained = obliviate.references.retrained_reference(digits_bundle, [3], digits, progress=False)
    p_deep = prototype_accuracy(new, digits.train, digits.test, [3])
    p_shallow = prototype_accuracy(shallow.model, digits.train, digits.test, [3])
    p_retrained = prototype_accuracy(retrained.model, digits.train, digits.test, [3])
    # the head-only forget keeps more of the class than retraining; the deep one no more
    assert p_shallow > p_retrained + 5.0 and p_deep <= p_retrained + 2.0, (p_shallow, p_deep,
                                                                          p_retrained)


def test_features_without_data_cannot_vouch_for_the_kept_classes(digits_bundle):
    with pytest.raises(NotVerifiedError, match="retain_bound"):
        obliviate.forget(digits_bundle, [3], depth="features", progress=False)
    forced = obliviate.forget(digits_bundle, [3], depth="features", progress=False, force=True)
    record = forced.history[-1]
    assert record["verified"] is False and record["depth"] == "features"
    checks = record["verification"]["checks"]
    assert checks["training_statistics"]["passed"]  # the forget side is bounded without data
    assert checks["retain_bound"]["passed"] is False
    assert checks["retain_bound"]["training_accuracy_drop_bound"] > 1.0


def test_auto_without_data_stays_output_only_and_says_why(digits_bundle):
    out = obliviate.forget(digits_bundle, [3], progress=False)
    record = out.history[-1]
    assert record["verified"] is True and record["depth"] == "output"
    assert "features: not verified" in record["depth_note"]
    assert "still hold" in record["scope"]
    assert torch.equal(out.model.hidden.weight, digits_bundle.model.hidden.weight)


def test_auto_with_data_goes_deep_when_the_data_verify_it(digits_bundle, digits):
    out = obliviate.forget(digits_bundle, [3], data=digits, progress=False)
    assert out.history[-1]["depth"] == "features" and out.history[-1]["verified"] is True


def test_without_layer_statistics_the_forget_is_output_only(digits_bundle):
    bare = digits_bundle.clone()
    bare.stats.layer = None
    out = obliviate.forget(bare, [3], progress=False)
    assert out.history[-1]["depth"] == "output"
    assert "unavailable" in out.history[-1]["depth_note"]
    with pytest.raises(ObliviateError, match="depth 'features' is not available"):
        obliviate.forget(bare, [3], depth="features", progress=False)


def test_layer_statistics_round_trip_and_forget_their_classes(digits_bundle, digits, tmp_path):
    obliviate.save(digits_bundle, tmp_path / "m.safetensors")
    back = obliviate.load(tmp_path / "m.safetensors")
    a, b = digits_bundle.stats.layer, back.stats.layer
    assert a.layer == b.layer == "hidden"
    for name in ("class_mean", "directions", "ranges", "other_probs", "confusion"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    deep = obliviate.forget(back, [5], data=digits, depth="features", progress=False)
    layer = deep.stats.layer
    assert float(layer.class_mean[5].abs().sum()) == 0.0
    assert float(layer.directions[:, 5].abs().sum()) == 0.0
    assert float(layer.ranges[5].abs().sum()) == 0.0 and float(layer.ranges[:, 5].abs().sum()) == 0
    assert float(layer.other_probs[5].abs().sum()) == 0.0
    assert layer.confusion.numel() == 0  # the edit changed the predictions it counted
    # a second request on the deep-forgotten model still verifies (carried statistics)
    again = obliviate.forget(deep, [7], progress=False)
    assert again.history[-1]["verified"] is True


def _saved_with(bundle, tmp_path, edit):
    """A copy of ``bundle``'s file whose tensors ``edit`` changed in place; its path."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = tmp_path / "m.safetensors"
    obliviate.save(bundle, path)
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, tmp_path / "bad.safetensors", metadata=meta)
    return tmp_path / "bad.safetensors"


def test_damaged_layer_statistics_are_refused(digits_bundle, tmp_path):
    def cut(tensors):
        tensors["stats.layer.directions"] = tensors["stats.layer.directions"][:-1].contiguous()

    with pytest.raises(ObliviateError, match="layer statistics"):
        obliviate.load(_saved_with(digits_bundle, tmp_path, cut))


def test_cleared_margins_only_for_forgotten_classes(digits_bundle, tmp_path):
    def clear(tensors):  # "no sample of class 2 at risk"
        tensors["stats.margin_quantiles"][2] = float("inf")

    with pytest.raises(ObliviateError, match="infinite margins for classes \\[2\\]"):
        obliviate.load(_saved_with(digits_bundle, tmp_path, clear))


@pytest.mark.parametrize("arch", ["fc", "cnn"])
def test_the_kept_mean_preactivations_give_the_same_edit_and_follow_the_weights(
        digits_bundle, cnn_bundle, arch):  # fmt: skip
    """``redirect(weights_sha256=...)`` keeps ``W m_c`` for the next request: the same edit as
    computed afresh, and computed afresh again once the layer's weights change in place or
    are replaced, whatever digest the caller names."""
    bundle = copy.deepcopy(digits_bundle if arch == "fc" else cnn_bundle)
    model, layer, stats = bundle.model, bundle.model.feature_layer(), bundle.stats.layer
    retain = [c for c in range(10) if c != 3]

    def same(digest):
        kept = redirect(model, layer, stats, [3], retain, weights_sha256=digest)
        fresh = redirect(model, layer, stats, [3], retain)
        return torch.allclose(kept.coef, fresh.coef, rtol=1e-9, atol=1e-12)

    assert same("a") and same("a")  # made, then given again
    module = layer.module(model)
    with torch.no_grad():
        module.weight.mul_(1.5)  # in place: the version counter moves
    assert same("a")
    module.weight = torch.nn.Parameter(module.weight.detach() * 0.5)  # another tensor
    assert same("a")


def test_without_data_a_half_strength_retry_that_cannot_verify_is_never_built(digits_bundle,
                                                                            monkeypatch):  # fmt: skip
    """``depth features`` without data: when the full redirect fails its kept-class bound, the
    half is built only where its own bound passes (its model is returned only if it verifies;
    else the first try is, as before)."""
    from obliviate.errors import GoalMissedWarning
    from obliviate.methods import mnemonic

    built: list[float] = []
    real_apply = mnemonic.apply_edit

    def counting(model, layer, edit):
        built.append(float(edit.coef.abs().max()))
        real_apply(model, layer, edit)

    monkeypatch.setattr(mnemonic, "apply_edit", counting)
    monkeypatch.setattr(mnemonic, "retain_drop_bound", lambda *a, **k: 100.0)
    with pytest.warns(GoalMissedWarning):
        record = obliviate.forget(digits_bundle, [3], depth="features", force=True,
                                  progress=False).history[-1]  # fmt: skip
    assert len(built) == 1  # the full redirect only
    assert record["verified"] is False and record["redirect"]["gamma"] == 1.0
    drops = iter([100.0, 0.0])  # the half's bound passes: built, and verified
    monkeypatch.setattr(mnemonic, "retain_drop_bound", lambda *a, **k: next(drops))
    built.clear()
    record = obliviate.forget(digits_bundle, [3], depth="features", progress=False).history[-1]
    assert len(built) == 2 and built[1] == pytest.approx(built[0] / 2)
    assert record["verified"] is True and record["redirect"]["tried"] == [1.0, 0.5]


def test_a_file_with_the_mean_logits_only_still_forgets_with_their_softmax(digits_bundle, digits,
                                                                            tmp_path):  # fmt: skip
    """Files written before the mean softmax over the other classes was stored hold each
    class's mean logits instead (``stats.logit_mean``): they load, and the kept mixture is the
    softmax of those over the kept classes, as it was; a file with neither is a model without
    layer statistics."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = obliviate.save(digits_bundle, tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    with torch.no_grad():
        logits = digits_bundle.model(digits.train.x).double()
    mean_logits = torch.stack([logits[digits.train.y == c].mean(0) for c in range(10)]).float()
    del tensors[deep.OTHER_KEY]
    save_file({**tensors, deep.LOGIT_KEY: mean_logits}, str(tmp_path / "old.safetensors"),
              metadata=meta)  # fmt: skip
    old = obliviate.load(tmp_path / "old.safetensors")
    assert old.stats.layer.other_probs is None
    assert torch.equal(old.stats.layer.logit_mean, mean_logits)
    out = obliviate.forget(old, [3], data=digits, depth="features", progress=False)
    retain = [c for c in range(10) if c != 3]
    softmax = torch.softmax(mean_logits.double()[3, retain], 0)
    expected = {str(k): float(w) for k, w in zip(retain, softmax) if w >= 0.01}
    assert out.history[-1]["redirect"]["mixture"]["3"] == pytest.approx(expected, abs=1e-6)
    new = obliviate.forget(digits_bundle, [3], data=digits, depth="features", progress=False)
    assert new.history[-1]["redirect"]["mixture"]["3"] != pytest.approx(expected, abs=1e-3)
    save_file(tensors, str(tmp_path / "neither.safetensors"), metadata=meta)
    assert obliviate.load(tmp_path / "neither.safetensors").stats.layer is None


@pytest.mark.parametrize("value", [-0.25, 1.5])
def test_mean_probabilities_outside_0_1_are_refused_on_load(digits_bundle, tmp_path, value):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = obliviate.save(digits_bundle, tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    tensors[deep.OTHER_KEY][2, 4] = value
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ObliviateError, match="mean probabilities"):
        obliviate.load(tmp_path / "bad.safetensors")
