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
from obliviate.finer.tuning import STABILITY_BOUND, max_fisher, tune, validation_folds
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
