"""Verification with a small check set (issue 35, item 3): held-out samples of the kept classes
verify the deep forget without the training data, by a one-sided bound on the kept classes'
accuracy drop that the record states with its sample count."""

from __future__ import annotations

import math

import pytest
import torch

from obliviate import api
from obliviate.calibration import data_check, drop_upper_bound
from obliviate.data import Split
from obliviate.errors import NotVerifiedError, ObliviateError


def binomial_upper(harmed: int, n: int, confidence: float = 0.95) -> float:
    """The exact upper bound by its definition, found by bisection: the rate p at which seeing
    at most ``harmed`` of ``n`` has probability 1 - confidence (percent)."""
    def cdf(p: float) -> float:
        return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(harmed + 1))

    low, high = 0.0, 1.0
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) > 1 - confidence else (low, mid)
    return 100.0 * (low + high) / 2


@pytest.mark.parametrize("harmed,n", [(0, 300), (0, 50), (1, 100), (3, 900), (10, 200)])
def test_the_drop_bound_is_the_exact_binomial_upper_bound(harmed, n):
    assert drop_upper_bound(harmed, n) == pytest.approx(binomial_upper(harmed, n), abs=1e-6)


def test_the_drop_bound_grows_with_harm_and_shrinks_with_samples():
    assert drop_upper_bound(0, 300) < drop_upper_bound(1, 300) < drop_upper_bound(2, 300)
    assert drop_upper_bound(1, 1000) < drop_upper_bound(1, 100)
    assert drop_upper_bound(5, 5) == 100.0
    with pytest.raises(ValueError):
        drop_upper_bound(3, 2)


def _logits(pred: list[int], classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), classes).float()


def test_a_check_set_judges_the_bound_not_the_measured_drop():
    # 100 samples of kept classes 1 and 2: the oracle is right on all but one; the forget harms
    # one and fixes the oracle's one miss, so the measured drop is 0 but the bound is 4.6
    y = torch.tensor([1, 2] * 50)
    oracle = y.clone()
    oracle[0] = 2
    pred = y.clone().tolist()
    pred[1] = 1
    out = data_check(None, None, _logits(pred), y, oracle, [1, 2], min_forget_error=99.5,
                     max_retain_drop=1.0, held_out=True)  # fmt: skip
    assert out["retain_drop"] == pytest.approx(0.0, abs=1e-9) and out["harmed"] == 1
    assert out["retain_drop_bound"] == pytest.approx(binomial_upper(1, 100), abs=1e-6)
    assert not out["passed"] and "at most 4.6" in out["reason"]
    # the same numbers on training samples judge the measured drop, as before
    assert data_check(None, None, _logits(pred), y, oracle, [1, 2], min_forget_error=99.5,
                      max_retain_drop=1.0)["passed"]  # fmt: skip


def test_a_check_set_with_nothing_harmed_passes_when_large_enough():
    y = torch.tensor([1, 2] * 200)
    out = data_check(None, None, _logits(y.tolist()), y, y.clone(), [1, 2],
                     min_forget_error=99.5, max_retain_drop=1.0, held_out=True)  # fmt: skip
    assert out["passed"] and out["retain_drop_bound"] < 1.0


def test_the_deep_forget_is_verified_on_held_out_samples(digits_bundle, digits):
    result = api.forget(digits_bundle, [3], depth="features", check_data=digits, progress=False)
    record = result.history[-1]
    check = record["verification"]["checks"]["check_data"]
    kept = int((digits.test.y != 3).sum())
    assert record["verified"] is True and record["depth"] == "features"
    assert record["data"]["check_samples"] == kept == check["retain_samples"]
    assert check["retain_drop_bound"] <= check["max_retain_drop"]
    assert record["data"]["retain_samples"] == 0  # never trained or calibrated on


def test_the_check_set_judges_the_kept_classes_even_beside_training_data(digits_bundle, digits):
    record = api.forget(digits_bundle, [3], depth="features", data=digits, check_data=digits,
                        progress=False).history[-1]  # fmt: skip
    check = record["verification"]["checks"]["check_data"]
    assert check["forget_samples"] == int((digits.train.y == 3).sum())  # training: forget side
    assert check["retain_samples"] == int((digits.test.y != 3).sum())  # held out: kept classes
    assert "retain_drop_bound" in check


def test_a_check_set_whose_labels_mean_other_classes_verifies_nothing(digits_bundle, digits):
    shuffled = Split(digits.test.x, (digits.test.y + 1) % 10)
    with pytest.raises(NotVerifiedError, match="does not fit this model"):
        api.forget(digits_bundle, [3], depth="features", check_data=shuffled, progress=False)
    # nor does the output-only step vouch for data that misfits: the request is refused
    with pytest.raises(NotVerifiedError, match="check_data: the data does not fit this model"):
        api.forget(digits_bundle, [3], check_data=shuffled, progress=False)


def test_check_data_is_refused_where_it_cannot_serve(digits_bundle, digits):
    with pytest.raises(ObliviateError, match="does not verify on a check set"):
        api.forget(digits_bundle, [3], method="ssd", data=digits, check_data=digits,
                   progress=False)  # fmt: skip
    only_forgotten = digits.test.of_classes([3])
    with pytest.raises(ObliviateError, match="no samples of the classes to keep"):
        api.forget(digits_bundle, [3], check_data=only_forgotten, progress=False)


def test_the_command_line_says_what_the_check_set_verified(cli, digits_bundle, tmp_path):
    import obliviate

    model = obliviate.save(digits_bundle, tmp_path / "m.safetensors")
    code, out, err = cli("forget", model, "--classes", "3", "--check-data", "digits",
                         "--out", tmp_path / "f.safetensors")  # fmt: skip
    assert code == 0, err
    assert "check data passed (485 held-out samples of the kept classes" in err
    assert "at 95% confidence" in err and "depth: features" in err


def test_data_that_does_not_fit_the_model_is_refused_before_any_work(digits_bundle, digits):
    test, train = digits.test, digits.train
    with pytest.raises(ObliviateError, match=r"check data's inputs have shape \(1, 8, 4\)"):
        api.forget(digits_bundle, [3], check_data=Split(test.x[..., :4], test.y), progress=False)
    with pytest.raises(ObliviateError, match=r"check data's labels span 5\.\.14"):
        api.forget(digits_bundle, [3], check_data=Split(test.x, test.y + 5), progress=False)
    with pytest.raises(ObliviateError, match=r"the data's labels span 5\.\.14"):
        api.forget(digits_bundle, [3], method="ssd", data=Split(train.x, train.y + 5),
                   progress=False)  # fmt: skip
