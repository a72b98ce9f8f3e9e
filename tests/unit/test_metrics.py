import math

import pytest
import torch

from obliviate.metrics import (
    forget_error,
    per_class_accuracy,
    retain_accuracy,
    unlearning_score,
)

LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
PREDS = torch.tensor([0, 1, 1, 1, 1, 1, 2, 2, 0, 2])


def test_per_class_accuracy_by_hand():
    acc = per_class_accuracy(PREDS, LABELS, 4)
    assert acc[0] == pytest.approx(25.0)
    assert acc[1] == pytest.approx(100.0)
    assert acc[2] == pytest.approx(75.0)
    assert acc[3] is None


def test_retain_accuracy_and_forget_error_by_hand():
    # retain = classes 1, 2: 6 samples, 5 correct
    assert retain_accuracy(PREDS, LABELS, [0]) == pytest.approx(500 / 6)
    # forget = class 0: 4 samples, 1 correct -> 75 % error
    assert forget_error(PREDS, LABELS, [0]) == pytest.approx(75.0)
    assert forget_error(PREDS, LABELS, [0, 2]) == pytest.approx(100 * 4 / 8)
    assert math.isnan(forget_error(PREDS, LABELS, [3]))


def test_score_is_the_papers_formula():
    # S = (A_R + (FE + RE) / 2) / 2; paper Table 3 "Ours": 91.6, 100, 84.6 -> 91.7
    assert unlearning_score(91.6, 100.0, 84.6) == pytest.approx((91.6 + 92.3) / 2)
    assert unlearning_score(100, 100, 100) == 100
