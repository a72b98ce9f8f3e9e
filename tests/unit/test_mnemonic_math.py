"""The eta/alpha math of Alg. 2, by hand and as properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import obliviate
from obliviate.checkpoint import ModelBundle
from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.methods.mnemonic_paper import noise_ratio, perturbation
from obliviate.models import Classifier


class Linear2(Classifier):
    """z = W x + b on 2-d inputs, 2 classes: gradients are easy to write by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Linear(2, 2)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 2)


def test_eta_and_alpha_by_hand():
    # W = 0, b = 0 -> p = (1/2, 1/2); dL/dz = p - e_y; dL/dW = (p - e_y) x^T; dL/db = p - e_y.
    # code 0 = (1, 0): dW = [[-1/2, 0], [1/2, 0]], db = (-1/2, 1/2)
    # code 1 = (0, 2): dW = [[0, 1], [0, -1]],     db = (1/2, -1/2)
    # f_F = 1e-16 + g0^2, f_R = 1e-16 + g1^2 (one code each)
    # eta_W = [[0.25/1e-16, 1e-16/1], ...], eta_b = (1, 1)
    # lambda = (0.1, 10): alpha_W = min(0.1, 10 / 2.5e15) = 4e-15, alpha_b = min(0.1, 10/1) = 0.1
    codes = MnemonicCodes(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), CodeConfig())
    bundle = ModelBundle(Linear2(), "linear2", 2, (2,), "hand", codes=codes)
    out = obliviate.forget(bundle, [0], lambda1=0.1, lambda2=10.0, device="cpu", force=True)
    record = out.history[-1]
    big = (0.25 + 1e-16) / 1e-16
    assert record["alphas"]["classifier.weight"] == pytest.approx(10.0 / big, rel=1e-9)
    assert record["alphas"]["classifier.bias"] == pytest.approx(0.1)
    sign = 1.0 if record["sign"] == "+" else -1.0
    expected_w = sign * torch.tensor([[10.0, 4e-31], [10.0, 4e-31]])
    torch.testing.assert_close(
        out.model.classifier.weight.detach(), expected_w, rtol=1e-6, atol=1e-35
    )
    torch.testing.assert_close(out.model.classifier.bias.detach(), sign * torch.tensor([0.1, 0.1]))
    # the input bundle is untouched
    assert torch.count_nonzero(bundle.model.classifier.weight) == 0


def test_noise_ratio_sanitises_like_the_authors():
    f_forget = torch.tensor([float("nan"), float("inf"), 1.0, 4.0, 0.0])
    f_retain = torch.tensor([1.0, 1.0, 2.0, 1.0, 1.0])
    eta = noise_ratio(f_forget, f_retain)
    # log: nan -> 0 (eta 1); +inf -> max finite (log 4); -inf (0/1) -> max finite as well
    torch.testing.assert_close(eta, torch.tensor([1.0, 4.0, 0.5, 4.0, 4.0], dtype=torch.float64))


positive = st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(positive, min_size=1, max_size=30),
    st.floats(min_value=1e-9, max_value=1e3),
    st.floats(min_value=1e-6, max_value=1e5),
)
def test_perturbation_properties(values, lambda1, lambda2):
    eta = torch.tensor(values, dtype=torch.float64)
    delta, alpha = perturbation(eta, lambda1, lambda2)
    assert alpha <= lambda1 * (1 + 1e-12)
    assert float(delta.max()) <= lambda2 * (1 + 1e-9)
    # delta is eta scaled by one alpha per tensor
    torch.testing.assert_close(delta, alpha * eta)
    peak = float(eta.max())
    if lambda1 * peak <= lambda2:
        assert alpha == lambda1
    else:
        assert math.isclose(float(delta.max()), lambda2, rel_tol=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(positive, min_size=2, max_size=20), st.floats(min_value=1e-3, max_value=1e3))
def test_eta_is_invariant_to_scaling_both_fishers(values, scale):
    f_forget = torch.tensor(values, dtype=torch.float64)
    f_retain = f_forget.flip(0)
    torch.testing.assert_close(
        noise_ratio(f_forget, f_retain), noise_ratio(scale * f_forget, scale * f_retain)
    )
