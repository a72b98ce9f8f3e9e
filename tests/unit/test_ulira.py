"""Class-level U-LiRA (obliviate.ulira): the statistic and the fit on constructions whose answer
is known, then real shadows on digits ``fc`` (10-epoch shadows, a fraction of a second each):
retrains against retrains sit at chance, models that never forgot against retrains do not,
and a second call of ``shadow_models`` trains nothing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import obliviate
from obliviate import ulira as U
from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError
from obliviate.models import Classifier

EPOCHS = 10  # shadows' epochs here (the recipe's 40 cost ~0.3-0.5 s each, these ~0.15 s)


class Identity(Classifier):
    """Features = the flattened input; a head given by the test."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.classifier = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.classifier.weight.data.copy_(weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def _one_hot_data(classes: int = 3, per_class: int = 20) -> Dataset:
    """Class ``c``'s inputs: the unit vector ``e_c`` plus a little noise."""
    g = torch.Generator().manual_seed(0)

    def split() -> Split:
        y = torch.arange(classes).repeat_interleave(per_class)
        return Split(torch.eye(classes)[y] + 0.01 * torch.randn(len(y), classes, generator=g), y)

    return Dataset("one-hot", split(), split(), classes, (classes,))


# --- the statistic and the fit ---------------------------------------------------------------


def test_logit_confidence_is_the_log_odds_of_the_true_class_and_stays_finite():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0], [1000.0, 0.0, -5.0]])
    y = torch.tensor([0, 2, 1])
    p = torch.softmax(logits[:2].double(), 1)[[0, 1], y[:2]]
    phi = U.logit_confidence(logits, y)
    assert torch.allclose(phi[:2], torch.log(p / (1 - p)))
    assert phi[2] == pytest.approx(0.0 - 1000.0)  # p_y ~ e^-1000: log p_y would be -inf


def test_the_statistics_are_read_on_each_samples_own_class():
    data = _one_hot_data()
    weight = torch.tensor([[3.0, 0, 0], [0, 1.0, 0], [0, 0, -2.0]])
    model = Identity(weight).eval()
    protos = U._prototype_index(data.train.y, range(3))
    x, y = U._scored_samples(data, [2], "train", protos)
    assert (y == 2).all() and len(y) == 20 - U.PROTOTYPE_SHOTS
    s = U._statistics(model, x, y, data, [2], protos, features=True)
    logits = x @ weight.T
    assert torch.allclose(s[:, 0], U.logit_confidence(logits, y))
    assert (s[:, 0] < -2).all()  # class 2's own logit is pushed down: low confidence
    assert (s[:, 1] > 0.9).all()  # e_2 against the prototypes of e_0, e_1: margin ~1
    x, y = U._scored_samples(data, [2], "both", protos)
    assert len(y) == 2 * 20 - U.PROTOTYPE_SHOTS


def _exchangeable_sides(n: int, g: torch.Generator, samples: int = 40) -> torch.Tensor:
    """``2n`` statistics alike in law: per-sample difficulty, a per-model offset, noise."""
    base = 3 * torch.randn(samples, 1, generator=g, dtype=torch.float64)
    offset = torch.randn(2 * n, 1, 1, generator=g, dtype=torch.float64)
    return base + offset + torch.randn(2 * n, samples, 1, generator=g, dtype=torch.float64)


def test_leave_pair_out_auc_is_centred_on_chance_when_the_sides_are_alike():
    # the mean over 2000 draws of 3 against 3 (sd of one ~0.3, of the mean ~0.007): 0.50 here.
    # Ranking the scores of held-out pairs (one fit per pair) together gives 0.46 (its own
    # side's mean moves away from a left-out model), a fit that keeps them ~0.9
    g = torch.Generator().manual_seed(1)
    aucs = []
    for _ in range(2000):
        both = _exchangeable_sides(3, g)
        aucs.append(U._auc(*U._pair_scores(both[:3], both[3:])))
    assert 0.48 <= sum(aucs) / len(aucs) <= 0.52


def test_the_fit_tells_apart_sides_whose_means_differ():
    g = torch.Generator().manual_seed(1)
    both = _exchangeable_sides(4, g)
    # the fit learns the direction: either shift (5 sd of a model's offset) is found
    assert U._auc(*U._pair_scores(both[:4] + 5.0, both[4:])) == 1.0
    assert U._auc(*U._pair_scores(both[:4] - 5.0, both[4:])) == 1.0


def test_few_shadows_pool_one_variance_so_spread_alone_tells_nothing():
    # equal means, the forgotten side spread 30 times wider: with a pooled variance the two
    # Gaussians of a sample coincide and the score is 0 whatever the sample; from POOL_BELOW
    # shadows a side each side has its own variance and a sample far from the mean looks
    # forgotten
    g = torch.Generator().manual_seed(2)
    mean = torch.randn(30, 1, generator=g, dtype=torch.float64)
    x = mean + 1.0
    for k, expected in ((4, 0.0), (U.POOL_BELOW - 1, 0.0)):
        ss_u, ss_r = torch.full_like(mean, 9.0 * (k - 1)), torch.full_like(mean, 0.01 * (k - 1))
        assert float(U._llr(x, mean, ss_u, mean, ss_r, k)) == pytest.approx(expected, abs=1e-9)
    k = U.POOL_BELOW
    ss_u, ss_r = torch.full_like(mean, 9.0 * (k - 1)), torch.full_like(mean, 0.01 * (k - 1))
    per_sample = -0.5 * (math.log(9.0) + 1 / 9) + 0.5 * (math.log(0.01) + 100)
    assert float(U._llr(x, mean, ss_u, mean, ss_r, k)) == pytest.approx(30 * per_sample)


def test_permutations_enumerate_every_split_when_few():
    g = torch.Generator().manual_seed(3)
    both = _exchangeable_sides(3, g)
    null, exact = U._null_aucs(both[:3], both[3:], permutations=100)
    assert exact and len(null) == math.comb(6, 3)
    # two models compared both ways under the same fit (the other four split alike): 0.5
    assert sum(null) / len(null) == pytest.approx(0.5)


# --- real shadows on digits fc ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shadows")


@pytest.fixture(scope="module")
def retrains(digits, digits_bundle, cache):
    """Two sets of 8 shadow retrains without class 3, seeds 2000+ and 3000+."""
    def make(first_seed: int) -> list[Classifier]:
        return [b.model for b in U.shadow_retrains(
            digits_bundle, [3], n=8, data=digits, epochs=EPOCHS, first_seed=first_seed,
            cache_dir=cache, progress=False, device="cpu")]  # fmt: skip

    return make(2000), make(3000)


@pytest.mark.parametrize("features", [False, True])
def test_retrains_against_retrains_sit_at_chance(digits, retrains, features):
    # 8 a side: chance alone spreads this AUC over about [0.07, 0.86] (the permutation range
    # the result reports), so [0.1, 0.9] fails a sound attack about 1 time in 20 (the seeds are
    # fixed: it passes or fails for good) and a fit that sees the held-out shadows (AUC ~1)
    # always; at 4 a side chance covers [0, 1] and no bound would be sound
    result = U.ulira(retrains[0][0], retrains[1], retrains[0], digits, [3], features=features)
    assert 0.1 <= result["auc"] <= 0.9
    assert result["auc_p_value"] >= 0.025
    lo, hi = result["auc_chance_95"]
    assert lo < 0.5 < hi
    assert result["n"] == 8 and result["fpr_resolution"] == result["low_fpr"] == 1 / 8
    assert result["variant"] == ("features" if features else "output")


@pytest.mark.parametrize("features", [False, True])
def test_models_that_never_forgot_are_told_from_retrains(digits, digits_bundle, retrains,
                                                         cache, features):  # fmt: skip
    originals = [b.model for b in U.shadow_originals(
        digits_bundle, n=5, data=digits, epochs=EPOCHS, cache_dir=cache, progress=False,
        device="cpu")]  # fmt: skip
    target, shadows = originals[4], originals[:4]
    result = U.ulira(target, shadows, retrains[0][:4], digits, [3], features=features)
    assert result["auc"] >= 0.9 and result["tpr_at_low_fpr"] >= 0.75
    assert result["target_retrain_percentile"] == 100.0
    assert result["target_p_value"] == pytest.approx(1 / 5)
    # a retrain as the target looks like the retrains
    retrain = U.ulira(retrains[1][0], shadows, retrains[0][:4], digits, [3], features=features)
    assert retrain["target_retrain_percentile"] < 100.0 and retrain["target_p_value"] > 0.2


def test_shadow_forgets_replay_the_record_and_are_cached(digits, digits_bundle, cache,
                                                         monkeypatch):  # fmt: skip
    # a margin other than the default, so that the shadows must take it from the record
    forgotten = obliviate.forget(digits_bundle, [3], margin=4.0, progress=False, device="cpu")
    kwargs = dict(n=4, data=digits, epochs=EPOCHS, cache_dir=cache, progress=False, device="cpu")
    first = U.shadow_models(forgotten, [3], **kwargs)
    names = sorted(p.name.split("-")[0] for p in cache.iterdir())
    assert {"forgotten", "original", "retrained"} <= set(names)
    record = forgotten.history[-1]
    for path in cache.glob("forgotten-*.safetensors"):
        shadow = obliviate.load(path).history[-1]
        assert shadow["method"] == record["method"]
        assert shadow["hyperparameters"] == record["hyperparameters"]
        assert shadow["hyperparameters"]["margin"] == 4.0
        assert shadow["data"]["forget_samples"] == 0  # the target saw no data: nor do they

    def refuse(*args, **kwargs):
        raise AssertionError("a cached shadow was trained again")

    monkeypatch.setattr(obliviate.api, "train", refuse)
    monkeypatch.setattr(obliviate.api, "forget", refuse)
    second = U.shadow_models(forgotten, [3], **kwargs)
    for a, b in zip([*first[0], *first[1]], [*second[0], *second[1]]):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    # the forget is told from retraining by the features (an output-only forget keeps them)
    result = U.ulira(forgotten.model, *first, digits, [3], features=True)
    assert result["auc"] >= 0.9


def test_shadow_models_refuses_what_it_cannot_replay(digits_bundle, digits):
    with pytest.raises(ObliviateError, match="at least 3"):
        U.shadow_models(digits_bundle, [3], n=2, method="mnemonic")
    with pytest.raises(ObliviateError, match="no forget record"):
        U.shadow_models(digits_bundle, [3], n=3)
    model = Identity(torch.eye(3))
    with pytest.raises(ObliviateError, match="at least 3"):
        U.ulira(None, [model] * 2, [model] * 2, _one_hot_data(), [2])
