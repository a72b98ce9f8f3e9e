"""The selective-forgetting search: the paper's 20/80 split, stability pruning, resume from
SQLite, and the two readings of the normalised hard tanh."""

from __future__ import annotations

import pytest
import torch

import obliviate
from obliviate import ObliviateError
from obliviate.data import Dataset
from obliviate.finer import build_finer_data
from obliviate.finer.forgetting import ForgetSettings, pretraining_fisher
from obliviate.finer.splits import validation_folds
from obliviate.finer.tuning import STABILITY_BOUND, max_fisher, tune
from obliviate.models import HardTanhMLP, NormalisedHardTanh


@pytest.fixture(scope="module")
def poisoned(digits):
    data = build_finer_data(digits, [0], "tile")
    pretraining = Dataset("digits-tile", data.pretraining(), digits.test, 10, digits.input_shape)
    bundle = obliviate.train(pretraining, "hardtanh-mlp", config=obliviate.TrainConfig(
        epochs=5, lr=0.01), codes=None, progress=False)  # fmt: skip
    return data, bundle.model, pretraining_fisher(bundle.model, data)


def test_holdout_is_one_80_20_split_and_kfold_covers_every_sample():
    g = torch.Generator().manual_seed(0)
    ((kept, held),) = validation_folds(100, "holdout", 7, g)
    assert len(held) == 20 and len(kept) == 80 and not set(kept.tolist()) & set(held.tolist())
    pairs = validation_folds(100, "kfold", 4, torch.Generator().manual_seed(0))
    assert len(pairs) == 4
    assert sorted(i for _, h in pairs for i in h.tolist()) == list(range(100))
    with pytest.raises(ObliviateError, match="holdout"):
        validation_folds(100, "loo", 4, g)


def test_unstable_settings_are_pruned_without_training(poisoned):
    data, model, fisher = poisoned
    # a Fisher a thousand times larger puts most of the search space past the bound
    big = {k: v * 1e3 for k, v in fisher.items()}
    result = tune(model, data, ForgetSettings(pattern="B", epochs=1), big, trials=12, seed=1)
    states = [t["state"] for t in result.trials]
    assert "PRUNED" in states and "COMPLETE" in states
    for t in result.trials:
        expected = t["lr"] * 2 * t["lambda_kl"] * max_fisher(big)
        assert t["stability"] == pytest.approx(expected)
        assert (t["state"] == "PRUNED") == (expected >= STABILITY_BOUND)
    assert result.best.lr * 2 * result.best.lambda_kl * max_fisher(big) < STABILITY_BOUND


def test_every_trial_pruned_is_an_error(poisoned):
    data, model, fisher = poisoned
    huge = {k: torch.full_like(v, 1e12) for k, v in fisher.items()}
    with pytest.raises(ObliviateError, match="every trial was pruned"):
        tune(model, data, ForgetSettings(pattern="B", epochs=1), huge, trials=3)


def test_an_interrupted_search_resumes_from_its_storage(poisoned, tmp_path):
    data, model, fisher = poisoned
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    base = ForgetSettings(pattern="C", epochs=1)
    first = tune(model, data, base, fisher, trials=2, storage=storage)
    again = tune(model, data, base, fisher, trials=3, storage=storage)
    assert len(first.trials) == 2 and len(again.trials) == 3
    assert again.trials[:2] == first.trials  # the two finished trials were kept, not rerun
    same = tune(model, data, base, fisher, trials=3, storage=storage)
    assert same.trials == again.trials  # nothing left to run


def test_the_two_activations_agree_inside_and_differ_in_continuity():
    written, continuous = NormalisedHardTanh(), NormalisedHardTanh(variant="continuous")
    edge = 1.0 / (written.s * written.g)
    inside = torch.linspace(-edge * 0.99, edge * 0.99, 101)
    assert torch.equal(written(inside), continuous(inside))
    just_in, just_out = torch.tensor([edge * (1 - 1e-6)]), torch.tensor([edge * (1 + 1e-6)])
    assert float(written(just_in) - written(just_out)) > 1.8  # the jump: 2.83 -> 1.0013
    assert float(continuous(just_in) - continuous(just_out)) == pytest.approx(0.0, abs=1e-4)
    net = HardTanhMLP(input_shape=(1, 8, 8), num_classes=10, depth=3, activation="continuous")
    assert all(m.variant == "continuous" for m in net.modules() if isinstance(m, NormalisedHardTanh))
    with pytest.raises(ValueError, match="activation"):
        NormalisedHardTanh(variant="smooth")


def test_start_settings_are_tried_first_and_only_in_a_new_study(poisoned, tmp_path):
    data, model, fisher = poisoned
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    base = ForgetSettings(pattern="B", epochs=1)
    start = [{"lr": 2e-5, "lambda_kl": 300.0, "lambda_f": 0.7},
             {"lr": 3e-5, "lambda_kl": 400.0, "lambda_f": 0.9}]
    first = tune(model, data, base, fisher, trials=3, storage=storage, start=start)
    assert [{k: t[k] for k in start[0]} for t in first.trials[:2]] == start
    assert {k: first.trials[2][k] for k in start[0]} not in start  # then the sampler's own
    resumed = tune(model, data, base, fisher, trials=4, storage=storage,
                   start=[{"lr": 5e-5, "lambda_kl": 500.0, "lambda_f": 1.1}])
    assert resumed.trials[:3] == first.trials and resumed.trials[3]["lr"] != 5e-5


def test_ranges_bound_every_trial_and_bad_ranges_are_refused(poisoned):
    data, model, fisher = poisoned
    base = ForgetSettings(pattern="B", epochs=1)
    band = {"lr": (2e-5, 4e-5), "lambda_kl": (200.0, 400.0), "lambda_f": (0.5, 0.6)}
    result = tune(model, data, base, fisher, trials=4, ranges=band)
    for trial in result.trials:
        assert all(lo <= trial[k] <= hi for k, (lo, hi) in band.items())
    for bad in ({"lr": (0.0, 1e-3)}, {"lr": (1e-3, 1e-4)}, {"momentum": (0.1, 0.9)}):
        with pytest.raises(ObliviateError, match="ranges take positive"):
            tune(model, data, base, fisher, trials=1, ranges=bad)


def test_the_goal_score_is_the_margin_above_the_targets_not_the_lowest_accuracy(poisoned):
    data, model, fisher = poisoned
    base = ForgetSettings(pattern="B", epochs=1, lambda_other=1.0)
    start = [{"lr": 3e-5, "lambda_kl": 300.0, "lambda_f": 0.7, "lambda_other": 1.0}]
    runs = {score: tune(model, data, base, fisher, trials=1, lambda_other_range=(0.1, 3.0),
                        calibration="offset", start=start, score=score)
            for score in ("min", "goals")}  # fmt: skip
    lowest, margin = runs["min"].best_score, runs["goals"].best_score
    # the same trial and calibration, and every target is well above 0 (D_r's is the pretrained
    # model's validation accuracy less 3 points, the others 0.9 and 0.6): the margin lies below
    # the lowest accuracy by at least the smallest target
    assert 0.0 <= lowest <= 1.0 and margin < lowest - 0.3
    with pytest.raises(ObliviateError, match="score='goals'"):
        tune(model, data, base, fisher, trials=1, score="goals")
    with pytest.raises(ObliviateError, match="score='goals'"):
        tune(model, data, base, fisher, trials=1, calibration="offset", calibration_aim="min",
             score="goals")  # fmt: skip
    with pytest.raises(ObliviateError, match="unknown trial score"):
        tune(model, data, base, fisher, trials=1, score="mean")


@pytest.mark.parametrize("aim, reached_first", [(None, False), ("goals", True)])
def test_the_search_scores_the_calibration_the_forget_applies(poisoned, monkeypatch, aim,
                                                              reached_first):  # fmt: skip
    """tune's calibration aims as calibrated_forget's does by default (maximin)."""
    import obliviate.finer.tuning as tuning_module

    seen = []
    real = tuning_module.fit_logit_calibration

    def spy(*args, **kwargs):
        seen.append(kwargs["reached_first"])
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning_module, "fit_logit_calibration", spy)
    data, model, fisher = poisoned
    base = ForgetSettings(pattern="B", epochs=1)
    start = [{"lr": 3e-5, "lambda_kl": 300.0, "lambda_f": 0.7}]
    extra = {} if aim is None else {"calibration_aim": aim}
    tune(model, data, base, fisher, trials=1, calibration="offset", start=start, **extra)
    assert seen and set(seen) == {reached_first}

