"""The training statistics of every registered architecture, and of a wrapped module without a
feature layer, against a loop over the samples one at a time (no batching, no scatter)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import obliviate
from obliviate import compact
from obliviate.data import Split
from obliviate.errors import ObliviateError
from obliviate.models import MODELS, create_model
from obliviate.stats import record_statistics

CLASSES = 4
#: tiny inputs and sizes per architecture (the statistics do not depend on the size)
SETTINGS = {
    "fc": ((1, 4, 4), {"hidden": 8}),
    "cnn": ((1, 8, 8), {"width": 4}),
    "convnet": ((1, 8, 8), {"width": 4}),
    "resnet18": ((3, 8, 8), {}),
    "hardtanh-mlp": ((1, 4, 4), {"depth": 3}),
    "lirf-recover": ((1, 4, 4), {"base": "fc", "base_kwargs": {"hidden": 8}, "block": 1}),
}


def _split(input_shape: tuple[int, ...]) -> Split:
    """30 samples over classes 0, 1 and 3: class 2 has none."""
    g = torch.Generator().manual_seed(0)
    return Split(torch.randn(30, *input_shape, generator=g), torch.tensor([0, 1, 3] * 10))


@torch.no_grad()
def _brute_force(model: nn.Module, data: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """``(margin, feature_min)`` of :mod:`obliviate.stats`, one sample at a time."""
    model.eval()
    margin = torch.full((CLASSES, CLASSES), float("-inf"))
    feature_min: list[torch.Tensor | None] = [None] * CLASSES
    for x, y in zip(data.x, data.y.tolist()):
        h = model.features(x[None])[0]
        z = model.classifier(h[None])[0]
        for k in range(CLASSES):
            margin[y, k] = max(float(margin[y, k]), float(z[y] - z[k]))
        feature_min[y] = h if feature_min[y] is None else torch.minimum(feature_min[y], h)
    width = next(m for m in feature_min if m is not None).shape[0]
    return margin, torch.stack([m if m is not None else torch.zeros(width) for m in feature_min])


def _check(stats, model: nn.Module, data: Split) -> None:
    margin, feature_min = _brute_force(model, data)
    assert stats.samples == len(data)
    seen = [0, 1, 3]
    scale = 1e-4 * max(1.0, float(margin[seen].abs().max()))
    # stored in bfloat16, rounded outward: each margin is the loop's, rounded up (never down
    # by more than float32's noise), each minimum the loop's rounded down (obliviate.compact)
    got, want = stats.margin[seen], margin[seen]
    assert (got >= want - scale).all(), (want - got).max()
    assert (got <= compact.upward(want + scale)).all(), (got - want).max()
    assert torch.isneginf(stats.margin[2]).all()  # no sample of class 2: no bound
    tol = 1e-4 * max(1.0, float(feature_min.abs().max()))
    assert (stats.feature_min <= feature_min + tol).all()
    assert (stats.feature_min >= compact.downward(feature_min - tol)).all()
    assert (stats.margin[seen, seen] == 0).all()  # z_c - z_c


@pytest.mark.parametrize("name", MODELS.names())
def test_record_statistics_of_every_registered_architecture_is_the_loop_over_samples(name):
    assert name in SETTINGS, f"give {name} tiny settings here"
    input_shape, kwargs = SETTINGS[name]
    torch.manual_seed(0)
    model = create_model(name, input_shape=input_shape, num_classes=CLASSES, **kwargs).eval()
    data = _split(input_shape)
    if name == "lirf-recover":  # several feature extractors, no single one to summarise
        with pytest.raises(ObliviateError, match="no single"):
            record_statistics(model, data)
        return
    _check(record_statistics(model, data, batch_size=7), model, data)


def test_record_statistics_of_a_wrapped_module_without_a_feature_layer_is_the_loop():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, CLASSES))
    data = _split((1, 4, 4))
    bundle = obliviate.wrap(net, num_classes=CLASSES, input_shape=(1, 4, 4), statistics=data)
    assert bundle.model.feature_layer() is None and bundle.stats.layer is None
    _check(bundle.stats, bundle.model, data)
    _check(record_statistics(bundle.model, data, batch_size=7), bundle.model, data)
