"""The deep forget on a residual layer: the shortcut's per-class means are recorded, stored and
cleared, and the redirect moves the residual *sum* (branch after batch norm, plus shortcut) of
each forget class onto the kept mixture, not the branch alone."""

from __future__ import annotations

import copy

import pytest
import torch

import obliviate
from obliviate.deep import SKIP_KEY, apply_edit, redirect
from obliviate.errors import ObliviateError


@pytest.fixture(scope="module")
def resnet_bundle(digits):
    return obliviate.train(digits, "resnet18", model_kwargs={"width": 4},
                           config=obliviate.TrainConfig(epochs=3, lr=0.05), progress=False)  # fmt: skip


def _block_terms(model, x):
    """Per sample, spatially averaged: the last block's shortcut (its input) and its residual
    sum before ReLU (``bn2(conv2(...)) + shortcut``), from hooks on the real forward pass."""
    block = model.backbone.layer4[-1]
    got = {}
    hooks = [block.register_forward_pre_hook(lambda _m, a: got.__setitem__("skip", a[0].clone())),
             # cloned: the block adds the shortcut to this tensor in place, then ReLU (in place)
             block.bn2.register_forward_hook(lambda _m, _a, o: got.__setitem__("branch", o.clone()))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    skip = got["skip"].mean((2, 3)).double()
    return skip, got["branch"].mean((2, 3)).double() + skip


def test_the_shortcut_means_are_each_class_mean_over_its_samples(resnet_bundle, digits):
    """Known answer from the model's own forward pass: per class, the mean over its training
    samples of the block input's spatial mean (not divided by the positions, as the rows of
    the convolution are)."""
    stats = resnet_bundle.stats.layer
    layer = resnet_bundle.model.feature_layer()
    assert layer.residual == "backbone.layer4.1" and stats.skip_mean is not None
    skip, _ = _block_terms(resnet_bundle.model.eval(), digits.train.x)
    y = digits.train.y
    expected = torch.stack([skip[y == c].mean(0) for c in range(digits.num_classes)])
    assert torch.allclose(stats.skip_mean.double(), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("forget", [[3], [1, 8]])
def test_the_redirect_moves_the_residual_sum_onto_the_kept_mixture(resnet_bundle, digits,
                                                                   forget):  # fmt: skip
    """Batch norm in eval mode is affine per channel and the edit moves each forget class's
    mean pre-activation exactly, so the forget class's mean residual sum over its training
    samples lands on the mixture of the kept classes' mean sums (the input's). A branch-only
    redirect misses it by the shortcut's gap."""
    model = resnet_bundle.model.eval()
    stats = resnet_bundle.stats.layer
    layer = model.feature_layer()
    retain = [c for c in range(digits.num_classes) if c not in forget]
    edit = redirect(model, layer, stats, forget, retain)
    assert edit.residual
    edited = copy.deepcopy(model)
    apply_edit(edited, layer, edit)
    x, y = digits.train.x, digits.train.y
    _, before = _block_terms(model, x)
    _, after = _block_terms(edited, x)
    weights = stats.mixture(forget, retain)
    for row, f in enumerate(forget):
        target = sum(w * before[y == k].mean(0) for w, k in zip(weights[row], retain))
        assert torch.allclose(after[y == f].mean(0), target, atol=1e-4)
        assert not torch.allclose(before[y == f].mean(0), target, atol=1e-2)


def test_without_shortcut_means_the_redirect_moves_the_branch_alone(resnet_bundle, digits):
    """A file written before the shortcut was recorded still forgets: the branch alone moves,
    and the edit says so."""
    model = resnet_bundle.model.eval()
    stats = copy.deepcopy(resnet_bundle.stats.layer)
    stats.skip_mean = None
    retain = [c for c in range(digits.num_classes) if c != 3]
    edit = redirect(model, model.feature_layer(), stats, [3], retain)
    full = redirect(model, model.feature_layer(), resnet_bundle.stats.layer, [3], retain)
    assert not edit.residual and full.residual
    assert not torch.allclose(edit.coef, full.coef)


def test_the_shortcut_means_round_trip_and_are_cleared_for_forgotten_classes(resnet_bundle,
                                                                             digits, tmp_path):  # fmt: skip
    obliviate.save(resnet_bundle, tmp_path / "m.safetensors")
    back = obliviate.load(tmp_path / "m.safetensors")
    assert torch.equal(back.stats.layer.skip_mean, resnet_bundle.stats.layer.skip_mean)
    out = obliviate.forget(back, [5], data=digits, depth="features", force=True, progress=False)
    assert out.history[-1]["redirect"]["shortcut"] == "backbone.layer4.1"
    assert float(out.stats.layer.skip_mean[5].abs().sum()) == 0.0
    assert float(out.stats.layer.skip_mean[4].abs().sum()) > 0.0


def test_shortcut_means_of_the_wrong_width_are_refused(resnet_bundle, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = tmp_path / "m.safetensors"
    obliviate.save(resnet_bundle, path)
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    tensors = load_file(path)
    tensors[SKIP_KEY] = tensors[SKIP_KEY][:, :-1].contiguous()
    save_file(tensors, tmp_path / "bad.safetensors", metadata=meta)
    with pytest.raises(ObliviateError, match="shortcut means"):
        obliviate.load(tmp_path / "bad.safetensors")


def test_a_negative_batch_norm_scale_is_divided_by_its_sign(resnet_bundle, digits):
    """With half the channels' batch norm scales negated (statistics recorded again on that
    model), the sum still lands on the kept mixture: the scale is signed, not its size."""
    from obliviate.deep import record_layer_statistics

    model = copy.deepcopy(resnet_bundle.model).eval()
    with torch.no_grad():
        model.backbone.layer4[-1].bn2.weight[::2] *= -1
    layer = model.feature_layer()
    x, y = digits.train.x, digits.train.y
    stats = record_layer_statistics(model, layer, x, y, digits.num_classes)
    retain = [c for c in range(digits.num_classes) if c != 3]
    edited = copy.deepcopy(model)
    apply_edit(edited, layer, redirect(model, layer, stats, [3], retain))
    _, before = _block_terms(model, x)
    _, after = _block_terms(edited, x)
    weights = stats.mixture([3], retain)[0]
    target = sum(w * before[y == k].mean(0) for w, k in zip(weights, retain))
    assert torch.allclose(after[y == 3].mean(0), target, atol=1e-4)


def test_the_bounds_hold_on_every_training_sample_through_the_shortcut(resnet_bundle, digits):
    """The per-channel bound of the (larger) residual edit, carried through batch norm, the
    sum with the unchanged shortcut, ReLU and pooling, holds for every training sample's
    features and logit differences."""
    from obliviate.deep import logit_bounds
    from obliviate.training import extract_features

    model = resnet_bundle.model.eval()
    layer = model.feature_layer()
    retain = [c for c in range(digits.num_classes) if c != 3]
    edit = redirect(model, layer, resnet_bundle.stats.layer, [3], retain)
    assert edit.residual
    edited = copy.deepcopy(model)
    apply_edit(edited, layer, edit)
    x, y = digits.train.x, digits.train.y
    old, new = extract_features(model, x), extract_features(edited, x)
    feature_bound = layer.feature_bound(edit.channel_bound)
    assert bool(((new - old).abs() <= feature_bound[y] + 1e-4).all())
    bounds = logit_bounds(model.classifier, feature_bound)
    with torch.no_grad():
        z_old, z_new = model.classifier(old), model.classifier(new)
    d_old = z_old.gather(1, y[:, None]) - z_old
    d_new = z_new.gather(1, y[:, None]) - z_new
    assert bool(((d_new - d_old).abs() <= bounds[y] + 1e-3).all())
    assert float((new - old).abs().max()) > 0.1  # the edit did move the features
