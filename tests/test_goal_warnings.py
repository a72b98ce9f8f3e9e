"""A Python caller hears every missed goal a command checks, as a ``GoalMissedWarning``."""

from __future__ import annotations

import warnings

import pytest

import obliviate
from obliviate import GoalMissedWarning, TrainConfig
from obliviate.finer.experiment import run_backdoor
from obliviate.recoverable import LIRFSettings, deposit_bundle


def test_public_errors_and_the_warning_are_importable_from_obliviate():
    from obliviate import errors

    assert obliviate.NotVerifiedError is errors.NotVerifiedError
    assert issubclass(obliviate.NotVerifiedError, obliviate.ObliviateError)
    assert obliviate.GoalMissedWarning is errors.GoalMissedWarning
    assert issubclass(obliviate.GoalMissedWarning, UserWarning)
    public = {n for n in dir(errors) if n.endswith(("Error", "Warning"))}
    assert public <= set(obliviate.__all__)


def test_a_retrofit_that_misses_its_goal_warns(digits, digits_bundle_no_codes):
    with pytest.warns(GoalMissedWarning, match="retrofit missed its goal: the codes of classes"):
        out = obliviate.retrofit(digits_bundle_no_codes, digits, steps=5, progress=False)
    assert out.retrofit["goal_met"] is False


def test_a_deposit_that_misses_its_goal_warns(digits, digits_bundle):
    with pytest.warns(GoalMissedWarning, match="the deposit missed its goal"):
        _, _, result = deposit_bundle(digits_bundle, digits, [[0]],
                                      LIRFSettings(epochs=1, lr=1e-6))  # fmt: skip
    assert result.goal["met"] is False and result.goal["target"]["dep_acc"] >= 20.0


def test_a_backdoor_forget_that_misses_its_goal_warns(digits):
    with pytest.warns(GoalMissedWarning, match="missed its goal"):
        report = run_backdoor(digits, [0], "tile", "A", pretrain=TrainConfig(epochs=20),
                              settings={"epochs": 1, "lr": 1e-9}, progress=False)  # fmt: skip
    assert report["goal"]["met"] is False


def test_a_forced_unverified_forget_warns_and_a_verified_one_does_not(digits_bundle):
    with pytest.warns(GoalMissedWarning, match="not verified as forgotten"):
        forced = obliviate.forget(digits_bundle, [0], lambda1=1e-3, lambda2=10.0, force=True,
                                  device="cpu")  # fmt: skip
    assert forced.history[-1]["verified"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", GoalMissedWarning)
        assert obliviate.forget(digits_bundle, [0], device="cpu").history[-1]["verified"] is True
