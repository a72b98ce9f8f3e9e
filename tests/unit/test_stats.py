"""Training statistics against a brute-force loop on a tiny untrained model, and the
bookkeeping that stores, reads and clears them."""

from __future__ import annotations

import pytest
import torch

from obliviate import compact
from obliviate.data import Split
from obliviate.errors import ObliviateError
from obliviate.models import create_model
from obliviate.stats import FEATURE_MIN_KEY, MARGIN_KEY, TrainingStatistics, record_statistics


@pytest.fixture
def model_and_data():
    torch.manual_seed(0)
    model = create_model("fc", input_shape=(1, 3, 3), num_classes=4, hidden=6).eval()
    x = torch.randn(30, 1, 3, 3)
    y = torch.tensor([0, 1, 3] * 10)  # class 2 has no sample
    return model, Split(x, y)


def test_record_statistics_matches_a_brute_force_loop(model_and_data):
    model, data = model_and_data
    stats = record_statistics(model, data, batch_size=7)
    assert stats.samples == 30 and stats.margin.shape == (4, 4)
    with torch.no_grad():
        feats = model.features(data.x)
        logits = model.classifier(feats)
    for c in (0, 1, 3):
        own = logits[data.y == c]
        for k in range(4):  # stored in bfloat16: the loop's maximum rounded up (compact)
            top = (own[:, c] - own[:, k]).max()
            assert top - 1e-5 <= stats.margin[c, k] <= compact.upward(top + 1e-5)
        low = feats[data.y == c].min(0).values  # and the loop's minimum rounded down
        assert ((compact.downward(low - 1e-6) <= stats.feature_min[c])
                & (stats.feature_min[c] <= low + 1e-6)).all()  # fmt: skip
        assert float(stats.margin[c, c]) == 0.0
    assert torch.isneginf(stats.margin[2]).all()  # no sample: no bound
    assert not stats.feature_min[2].any()  # and no minimum
    assert stats.margin.device.type == "cpu" and stats.feature_min.device.type == "cpu"
    again = record_statistics(model, data, batch_size=1024)
    assert torch.allclose(again.margin, stats.margin, atol=1e-6)
    assert torch.equal(again.feature_min.isinf(), stats.feature_min.isinf())


def test_record_statistics_refuses_empty_data(model_and_data):
    model, data = model_and_data
    with pytest.raises(ObliviateError, match="no training samples"):
        record_statistics(model, Split(data.x[:0], data.y[:0]))


def sample_stats() -> TrainingStatistics:
    margin = torch.arange(16.0).reshape(4, 4) - 5.0
    feature_min = torch.arange(12.0).reshape(4, 3) - 2.0
    return TrainingStatistics(margin, feature_min, samples=12)


def test_tensors_round_trip_and_partial_sets_are_no_statistics():
    stats = sample_stats()
    tensors = stats.tensors()
    assert set(tensors) == {MARGIN_KEY, FEATURE_MIN_KEY} == {"stats.margin", "stats.feature_min"}
    back = TrainingStatistics.from_tensors(
        {k: v.double() for k, v in tensors.items()}, samples=12
    )
    assert back.margin.dtype == back.feature_min.dtype == torch.float32
    assert torch.equal(back.margin, stats.margin) and torch.equal(back.feature_min, stats.feature_min)
    assert back.samples == 12
    transposed = TrainingStatistics(stats.margin.t(), stats.feature_min.t(), 1).tensors()
    assert all(t.is_contiguous() for t in transposed.values())
    assert TrainingStatistics.from_tensors({MARGIN_KEY: stats.margin}, 1) is None
    assert TrainingStatistics.from_tensors({FEATURE_MIN_KEY: stats.feature_min}, 1) is None
    flat = {MARGIN_KEY: stats.margin, FEATURE_MIN_KEY: stats.feature_min.reshape(-1)}
    assert TrainingStatistics.from_tensors(flat, 1) is None


def test_without_clears_the_forgotten_classes_and_leaves_the_input():
    stats = sample_stats()
    cleared = stats.without([1, 3])
    for c in (1, 3):
        assert torch.isneginf(cleared.margin[c]).all() and torch.isneginf(cleared.margin[:, c]).all()
        assert not cleared.feature_min[c].any()
    kept = [0, 2]
    assert torch.equal(cleared.margin[kept][:, kept], stats.margin[kept][:, kept])
    assert torch.equal(cleared.feature_min[kept], stats.feature_min[kept])
    assert cleared.samples == 12
    assert torch.equal(stats.margin, sample_stats().margin)  # the input is untouched
    assert torch.equal(stats.feature_min, sample_stats().feature_min)


def test_retained_margin_is_the_smallest_margin_to_a_kept_class():
    stats = sample_stats()  # row 2: [3, 4, 5, 6]
    assert stats.retained_margin(2, [1, 3]) == 4.0
    assert stats.retained_margin(2, [3]) == 6.0
    assert stats.retained_margin(2, [0, 1, 3]) == 3.0


def test_the_layer_statistics_are_stored_read_and_cleared_with_the_rest(model_and_data):
    model, data = model_and_data
    stats = record_statistics(model, data)
    assert stats.layer is not None  # fc names its feature layer
    stored = stats.tensors()
    layer = stats.layer.tensors()
    assert all(torch.equal(stored[k], v) for k, v in layer.items())
    read = TrainingStatistics.from_tensors(stored, stats.samples, layer=stats.layer.layer)
    assert read.layer is not None and read.layer.layer == stats.layer.layer
    assert all(torch.equal(read.layer.tensors()[k], v) for k, v in layer.items())
    d = stats.layer.class_mean.shape[1]
    wrong = rf"class_mean have shape \(4, {d}\), expected \(5, {d}\)"
    with pytest.raises(ObliviateError, match=wrong):
        TrainingStatistics.from_tensors(stored, stats.samples, layer=stats.layer.layer,
                                        num_classes=5)  # fmt: skip
    before = {k: v.clone() for k, v in layer.items()}
    cleared = stats.without([1])
    assert cleared.layer is not None and cleared.layer.layer == stats.layer.layer
    _assert_cleared_of(cleared.layer, before, gone=1, classes=4)
    assert all(torch.equal(stats.layer.tensors()[k], v) for k, v in before.items())  # untouched


def _assert_cleared_of(layer, before: dict[str, torch.Tensor], *, gone: int, classes: int):
    """Every entry about class ``gone`` cleared, entry by entry, and every other one kept."""
    keep = [c for c in range(classes) if c != gone]
    rows = {  # key: (class axes, value of a cleared entry)
        "stats.layer.class_mean": ((0,), 0.0), "stats.layer.directions": ((1,), 0.0),
        "stats.layer.ranges": ((0, 1), 0.0), "stats.layer.other_probs": ((0, 1), 0.0),
        "stats.margin_quantiles": ((0,), float("inf")), "stats.confusion": ((0, 1), 0.0),
    }  # fmt: skip
    after = layer.tensors()
    assert set(after) == set(rows)
    for key, (axes, value) in rows.items():
        old, new = before[key], after[key]
        for axis in axes:  # the class's entries along each class axis hold ``value``
            assert (new.select(axis, gone) == value).all(), key
        kept = old
        for axis in axes:  # the rest is what it was
            kept = kept.index_select(axis, torch.tensor(keep))
        fresh = new
        for axis in axes:
            fresh = fresh.index_select(axis, torch.tensor(keep))
        assert torch.equal(fresh, kept), key
    assert (before["stats.layer.class_mean"][gone] != 0).any()  # there was something to clear
