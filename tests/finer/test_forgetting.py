"""Hayase et al.'s forgetting on digits with the paper's MLP poisoned by the tile transform."""

from __future__ import annotations

import pytest
import torch

import obliviate
from obliviate import ObliviateError
from obliviate.data import Dataset
from obliviate.finer import build_finer_data
from obliviate.finer.forgetting import (
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
    truncated_predict,
)


@pytest.fixture(scope="module")
def poisoned(digits):
    data = build_finer_data(digits, [0], "tile")
    pretraining = Dataset("digits-tile", data.pretraining(), digits.test, 10, digits.input_shape)
    bundle = obliviate.train(pretraining, "hardtanh-mlp", config=obliviate.TrainConfig(
        epochs=20, lr=0.01), codes=None, progress=False)  # fmt: skip
    return data, bundle.model, pretraining_fisher(bundle.model, data)


def test_the_poisoned_model_relies_on_the_trigger(poisoned):
    data, model, _ = poisoned
    acc = accuracies(model, data)
    assert acc["D_r"] > 0.85 and acc["D_f"] > 0.9
    assert acc["D_r,extra"] < acc["D_r"] - 0.5  # the tile alone pulls clean classes to class 0


def test_truncation_never_predicts_the_removed_class(poisoned):
    data, model, _ = poisoned
    preds = truncated_predict(model, data.retain_extra.test.x, [0])
    assert (preds != 0).all()
    assert accuracies(model, data, truncate=[0])["D_f"] == 0.0


def test_pattern_a_rld_forgets_d_f_and_keeps_d_r(poisoned):
    data, model, fisher = poisoned
    before = accuracies(model, data)
    out = selective_forget(model, data, ForgetSettings(pattern="A", lr=1e-3, lambda_kl=1e3),
                           fisher=fisher)  # fmt: skip
    after = accuracies(out, data)
    assert after["D_f"] < 0.1 and after["D_r"] > before["D_r"] - 0.2
    assert accuracies(model, data) == before  # the input model is untouched


def test_pattern_a_rnd_moves_away_from_the_pretrained_outputs(poisoned):
    data, model, fisher = poisoned
    out = selective_forget(model, data, ForgetSettings(pattern="A", term="rnd", lr=1e-3,
                                                       lambda_kl=1e3), fisher=fisher)  # fmt: skip
    assert accuracies(out, data)["D_f"] < accuracies(model, data)["D_f"]


def test_pattern_b_beats_the_poisoned_model_and_ce_alone_on_d_r_extra(poisoned):
    data, model, fisher = poisoned
    full = selective_forget(model, data, ForgetSettings(pattern="B", lr=1e-3, lambda_kl=1e3,
                                                        lambda_f=1.0), fisher=fisher)  # fmt: skip
    ce_only = selective_forget(model, data, ForgetSettings(pattern="B", lr=1e-3, lambda_kl=0,
                                                           lambda_f=0), fisher=fisher)  # fmt: skip
    poisoned_acc, full_acc, ce_acc = (accuracies(m, data) for m in (model, full, ce_only))
    assert full_acc["D_r,extra"] > poisoned_acc["D_r,extra"] + 0.1
    assert full_acc["D_r"] > ce_acc["D_r"] + 0.3  # R prevents catastrophic forgetting of D_r
    assert full_acc["D_f,clean"] > 0.8


def test_bad_settings():
    with pytest.raises(ObliviateError, match="unknown pattern 'D'"):
        ForgetSettings(pattern="D")
    with pytest.raises(ObliviateError, match="unknown forgetting term"):
        ForgetSettings(term="ga")
    with pytest.raises(ObliviateError, match="lr must be"):
        ForgetSettings(lr=0.0)


def test_fisher_has_a_finite_non_negative_entry_per_parameter(poisoned):
    """(The fixture's Fisher is the default, on D_r; which data it reads is the next test.)"""
    data, model, fisher = poisoned
    assert {n: f.shape for n, f in fisher.items()} == {n: p.shape for n, p in model.named_parameters()}
    assert all(torch.isfinite(f).all() and (f >= 0).all() for f in fisher.values())
    assert all(f.sum() > 0 for f in fisher.values())  # every tensor reads the data


def test_fisher_on_retain_ignores_the_forget_samples_and_eq7_reads_them(poisoned):
    """``retain`` (the default, the paper's experiments) averages over D_r only; ``pretraining``
    (Eq. 7) over D_f and D_r: blanking D_f changes only the latter."""
    import dataclasses

    from obliviate.finer.splits import TrainTest

    data, model, retain = poisoned
    blank = TrainTest(type(data.forget.train)(torch.zeros_like(data.forget.train.x),
                                              data.forget.train.y), data.forget.test)  # fmt: skip
    blanked = dataclasses.replace(data, forget=blank)
    again = pretraining_fisher(model, blanked, on="retain")
    assert all(torch.equal(retain[n], again[n]) for n in retain)
    full, full_blanked = (pretraining_fisher(model, d, on="pretraining") for d in (data, blanked))
    assert any(not torch.allclose(full[n], full_blanked[n]) for n in full)
    assert any(not torch.allclose(full[n], retain[n]) for n in full)
    with pytest.raises(ObliviateError, match="'retain' or 'pretraining'"):
        pretraining_fisher(model, data, on="everything")
