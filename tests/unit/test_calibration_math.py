"""The calibrated step's pure functions against hand-computed values and naive loops:
the Fisher ratio of the forget rows, the closed-form strength (codes/data and statistics),
the in-place head update, margins, the data check's thresholds and the truncation oracle."""

from __future__ import annotations

import math

import pytest
import torch

from obliviate.calibration import (
    HeadDirection,
    apply_head,
    data_check,
    forget_margins,
    head_direction,
    required_strength,
    statistics_strength,
    truncated_predictions,
)
from obliviate.fisher import FISHER_FLOOR
from obliviate.stats import TrainingStatistics


def test_head_direction_is_the_normalised_fisher_ratio_of_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    feats = torch.rand(9, 5, generator=g) - 0.3
    logits = torch.randn(9, 4, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 1])
    forget, retain = [1, 3], [0, 2]
    direction = head_direction(feats, logits, labels, forget, retain)
    assert direction.classes == [1, 3] and direction.weight.shape == (2, 5)
    prob = torch.softmax(logits.double(), 1)
    for row, c in enumerate(forget):
        f_f, f_r = [FISHER_FLOOR] * 5, [FISHER_FLOOR] * 5
        n_f = n_r = 0
        for i in range(9):
            g2 = (float(prob[i, c]) - float(labels[i] == c)) ** 2
            target = f_f if int(labels[i]) in forget else f_r
            for j in range(5):
                target[j] += g2 * float(feats[i, j]) ** 2
            n_f += int(labels[i]) in forget
            n_r += int(labels[i]) in retain
        eta = [(a / n_f) / (b / n_r) for a, b in zip(f_f, f_r)]
        assert direction.eta_max[row] == pytest.approx(max(eta), rel=1e-4)
        expected = torch.tensor([e / max(eta) for e in eta])
        assert torch.allclose(direction.weight[row].double(), expected.double(), rtol=1e-4)
        assert float(direction.weight[row].max()) == pytest.approx(1.0)


def test_head_direction_ignores_samples_of_other_classes():
    """Samples of a previously forgotten class (neither forget nor retain) count nowhere."""
    g = torch.Generator().manual_seed(1)
    feats, logits = torch.rand(8, 3, generator=g), torch.randn(8, 4, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    base = head_direction(feats, logits, labels, [1], [0, 2])
    moved = feats.clone()
    moved[labels == 3] = 50.0
    again = head_direction(moved, logits, labels, [1], [0, 2])
    assert torch.equal(base.weight, again.weight) and base.eta_max == again.eta_max


def direction_of(weight, classes=(1,)):
    weight = torch.tensor(weight, dtype=torch.float32)
    return HeadDirection(list(classes), weight, [1.0] * len(classes))


def test_drop_is_the_bias_plus_the_weights_on_the_features():
    d = direction_of([[0.5, 1.0], [0.0, 0.25]], classes=(1, 2))
    feats = torch.tensor([[2.0, -1.0], [0.0, 4.0]])
    assert torch.equal(d.drop(feats, 0), torch.tensor([1.0, 5.0]))
    assert torch.equal(d.drop(feats, 1), torch.tensor([0.75, 2.0]))


def test_required_strength_by_hand():
    d = direction_of([[1.0, 0.0]])
    retain = [0, 2]
    # logits: class 1 over the best kept class by 3 and by 1; drops 1 + h_0 = 2 and 3
    feats = torch.tensor([[1.0, 9.0], [2.0, 9.0]])
    logits = torch.tensor([[0.0, 3.0, -1.0], [1.0, 2.0, -5.0]])
    assert required_strength(d, 0, feats, logits, retain, margin=0.0) == pytest.approx(1.5)
    assert required_strength(d, 0, feats, logits, retain, margin=1.0) == pytest.approx(2.0)
    # already far enough below: nothing needed (a gap of exactly zero needs nothing either)
    assert required_strength(d, 0, feats, logits, retain, margin=-3.0) == 0.0
    assert required_strength(d, 0, feats[:0], logits[:0], retain, margin=1.0) == 0.0


def test_required_strength_is_infinite_only_where_a_needed_sample_cannot_drop():
    d = direction_of([[1.0, 0.0]])
    retain = [0, 2]
    logits = torch.tensor([[0.0, 3.0, -1.0], [5.0, 0.0, 0.0]])
    cannot = torch.tensor([[-1.0, 0.0], [-3.0, 0.0]])  # drops 0 and -2
    assert required_strength(d, 0, cannot, logits, retain, margin=1.0) == math.inf
    # the second sample cannot drop but is not needed: it is 5 below already
    mixed = torch.tensor([[1.0, 0.0], [-3.0, 0.0]])
    assert required_strength(d, 0, mixed, logits, retain, margin=1.0) == pytest.approx(2.0)


def stats_of(margin_row, feature_min_row):
    margin = torch.full((3, 3), float("-inf"))
    margin[1] = torch.tensor(margin_row)
    feature_min = torch.zeros(3, 2)
    feature_min[1] = torch.tensor(feature_min_row)
    return TrainingStatistics(margin, feature_min, samples=10)


def test_statistics_strength_by_hand():
    d = direction_of([[0.5, 1.0]])
    stats = stats_of([5.0, 0.0, 4.0], [2.0, -0.5])  # bound: min(margin[1, [0, 2]]) = 4
    strength, bound, guaranteed = statistics_strength(d, 0, stats, [0, 2], margin=2.0)
    assert (bound, guaranteed) == (4.0, 1.5)  # 1 + 0.5 * 2 - 1.0 * 0.5
    assert strength == pytest.approx(6.0 / 1.5)
    assert statistics_strength(d, 0, stats, [0], margin=2.0)[1] == 5.0
    assert statistics_strength(d, 0, stats, [0, 1, 2], margin=2.0)[1] == 0.0


def test_statistics_strength_edges():
    d = direction_of([[0.5, 1.0]])
    below = stats_of([0.0, 0.0, -2.0], [2.0, -0.5])  # bound + margin = 0: nothing needed
    assert statistics_strength(d, 0, below, [2], margin=2.0) == (0.0, -2.0, 1.5)
    zero = stats_of([0.0, 0.0, 1.0], [0.0, -1.0])  # guaranteed exactly 0: no strength suffices
    assert statistics_strength(d, 0, zero, [2], margin=2.0) == (math.inf, 1.0, 0.0)
    small = stats_of([0.0, 0.0, 1.0], [0.0, -0.9])  # guaranteed 0.1: a large finite strength
    strength, _, guaranteed = statistics_strength(d, 0, small, [2], margin=2.0)
    assert guaranteed == pytest.approx(0.1) and strength == pytest.approx(30.0)


def test_apply_head_lowers_only_the_forget_rows():
    head = torch.nn.Linear(2, 3)
    with torch.no_grad():
        head.weight.copy_(torch.arange(6.0).reshape(3, 2))
        head.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
    d = direction_of([[0.5, 1.0]])
    apply_head(head, d, 2.0)
    assert torch.equal(head.weight, torch.tensor([[0.0, 1.0], [1.0, 1.0], [4.0, 5.0]]))
    assert torch.equal(head.bias, torch.tensor([1.0, 0.0, 3.0]))
    bare = torch.nn.Linear(2, 3, bias=False)
    before = bare.weight.detach().clone()
    apply_head(bare, d, 2.0)
    assert torch.equal(bare.weight[1], before[1] - torch.tensor([1.0, 2.0]))


def test_forget_margins_and_the_truncation_oracle_by_hand():
    logits = torch.tensor([[1.0, 5.0, 2.0, 0.0], [4.0, 1.0, 3.0, 9.0]])
    labels = torch.tensor([1, 0])
    assert torch.equal(forget_margins(logits, labels, [0, 2]), torch.tensor([3.0, 0.0]))
    assert torch.equal(forget_margins(logits, labels, [2, 3]), torch.tensor([3.0, -5.0]))
    assert torch.equal(truncated_predictions(logits, [0, 2]), torch.tensor([2, 0]))
    assert torch.equal(truncated_predictions(logits, [1, 3]), torch.tensor([1, 3]))


def onehot(labels, classes=4, high=5.0):
    return torch.nn.functional.one_hot(torch.tensor(labels), classes).float() * high


def test_data_check_forget_error_threshold():
    y = torch.tensor([1, 1, 1, 1])
    three_of_four = onehot([0, 2, 3, 1])  # 75 % forgotten
    out = data_check(three_of_four, y, None, None, None, [0, 2, 3], min_forget_error=75.0,
                     max_retain_drop=1.0)  # fmt: skip
    assert out == {"passed": True, "forget_samples": 4, "forget_error": 75.0,
                   "forget_error_goal": 75.0}  # fmt: skip
    out = data_check(three_of_four, y, None, None, None, [0, 2, 3], min_forget_error=75.1,
                     max_retain_drop=1.0)  # fmt: skip
    assert out["passed"] is False


def test_data_check_retain_drop_threshold():
    y = torch.tensor([0, 2, 3, 0])
    oracle = torch.tensor([0, 2, 3, 0])  # the oracle is right on all four
    after = onehot([0, 2, 3, 1])  # 75 %: one sample still put in the forget class
    kw = dict(min_forget_error=99.5)
    out = data_check(None, None, after, y, oracle, [0, 2, 3], max_retain_drop=25.0, **kw)
    assert out == {"passed": True, "retain_samples": 4, "retain_accuracy": 75.0,
                   "oracle_retain_accuracy": 100.0, "max_retain_drop": 25.0,
                   "oracle_at_chance": False}  # fmt: skip
    assert data_check(None, None, after, y, oracle, [0, 2, 3], max_retain_drop=24.9,
                      **kw)["passed"] is False  # fmt: skip
    # retain accuracy is measured against the oracle, not against 100 %
    weak = torch.tensor([0, 2, 0, 1])  # the oracle gets two of four
    out = data_check(None, None, onehot([0, 2, 1, 1]), y, weak, [0, 2, 3], max_retain_drop=0.0, **kw)
    assert (out["retain_accuracy"], out["oracle_retain_accuracy"], out["passed"]) == (50.0, 50.0, True)


def test_data_check_needs_both_parts_and_skips_what_is_missing():
    y_f, y_r = torch.tensor([1, 1]), torch.tensor([0, 0])
    good_f, good_r = onehot([0, 0]), onehot([0, 0])
    kw = dict(min_forget_error=100.0, max_retain_drop=0.0)
    both = data_check(good_f, y_f, good_r, y_r, y_r, [0], **kw)
    assert both["passed"] is True and both["forget_samples"] == 2 and both["retain_samples"] == 2
    assert data_check(onehot([1, 0]), y_f, good_r, y_r, y_r, [0], **kw)["passed"] is False
    assert data_check(good_f, y_f, onehot([1, 0]), y_r, y_r, [0], **kw)["passed"] is False
    assert data_check(None, None, None, None, None, [0], **kw) == {"passed": True}
    empty = torch.empty(0, 4)
    assert data_check(empty, y_f[:0], empty, y_r[:0], None, [0], **kw) == {"passed": True}
    assert data_check(good_f, None, good_r, None, None, [0], **kw) == {"passed": True}


def test_head_direction_edges_of_the_ratio():
    """A feature that overflows in both Fishers (inf / inf) counts for nothing; one that
    overflows only for the forget classes is the peak; a forget Fisher below the retain Fisher
    everywhere still gives a unit peak; with every feature inf / inf the row is zero."""
    labels = torch.tensor([0, 1, 0, 1])
    logits = torch.zeros(4, 2)
    feats = torch.tensor([[1e20, 1.0, 0.0], [1e20, 1e20, 2.0], [1e20, 1.0, 0.0], [1e20, 1e20, 2.0]])
    direction = head_direction(feats, logits, labels, [1], [0])
    assert direction.weight[0, 0] == 0.0  # nan -> 0
    assert direction.weight[0, 1] == 1.0 and direction.eta_max[0] == torch.finfo(torch.float32).max
    small = torch.tensor([[2.0, 4.0], [0.1, 0.2], [2.0, 4.0], [0.1, 0.2]])
    direction = head_direction(small, logits, labels, [1], [0])
    assert 0 < direction.eta_max[0] < 1 and float(direction.weight.max()) == pytest.approx(1.0)
    blind = head_direction(torch.full((4, 2), 1e20), logits, labels, [1], [0])
    assert blind.eta_max == [0.0] and torch.equal(blind.weight, torch.zeros(1, 2))


def test_required_strength_thresholds():
    d = direction_of([[1.0, 0.0]])
    retain = [0, 2]
    one = required_strength(d, 0, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.5, 0.0]]),
                            retain, margin=0.0)  # fmt: skip
    assert one == pytest.approx(0.25)  # a single sample, a gap below one nat: 0.5 / 2
    half_drop = required_strength(d, 0, torch.tensor([[-0.5, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]),
                                  retain, margin=0.0)  # fmt: skip
    assert half_drop == pytest.approx(2.0)  # a drop of 0.5 per unit is still a drop
    # a gap of exactly zero is not needed, even where the sample cannot drop
    assert required_strength(d, 0, torch.tensor([[-3.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]),
                             retain, margin=-1.0) == 0.0  # fmt: skip
    # a needed sample whose logit would rise: no strength (not a negative one)
    assert required_strength(d, 0, torch.tensor([[-3.0, 0.0]]), torch.tensor([[0.0, 3.0, 0.0]]),
                             retain, margin=0.0) == math.inf  # fmt: skip


def test_statistics_strength_thresholds():
    d = direction_of([[0.5, 1.0]])
    # bound + margin exactly 0: nothing needed, even when nothing is guaranteed
    assert statistics_strength(d, 0, stats_of([0, 0, -2.0], [0.0, -1.0]), [2], 2.0)[0] == 0.0
    # bound + margin 0.5: needed, 0.5 / 1.5
    strength = statistics_strength(d, 0, stats_of([0, 0, -1.5], [2.0, -0.5]), [2], 2.0)[0]
    assert strength == pytest.approx(0.5 / 1.5)


def test_data_check_without_an_oracle_cannot_pass_the_retain_part():
    y = torch.tensor([0, 2])
    out = data_check(None, None, onehot([0, 2]), y, None, [0, 2], min_forget_error=99.5,
                     max_retain_drop=1.0)  # fmt: skip
    assert out["retain_accuracy"] == 100.0 and math.isnan(out["oracle_retain_accuracy"])
    assert out["passed"] is False
