"""The pieces of the baselines that can be checked by hand: SSD's dampening, Fisher forgetting's
variance, the two importance estimators against naive loops, LwSF's distillation, the random
labels, UNSIR's noise and ERM-KTP's prohibition."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import obliviate
from obliviate.fisher import batch_gradient_importance, expected_fisher
from obliviate.methods.erm_ktp import prohibited_classifier
from obliviate.methods.fastmu import error_maximising_noise
from obliviate.fisher import fisher_penalty
from obliviate.methods.lwsf import selective_distillation
from obliviate.methods.random_label import random_retain_labels
from obliviate.methods.sfdn import noise_variance
from obliviate.methods.ssd import dampening_factors


def test_ssd_dampening_by_hand():
    imp_full = torch.tensor([1.0, 1.0, 2.0, 0.5])
    imp_forget = torch.tensor([5.0, 20.0, 100.0, 4.0])
    # alpha 10: selected where imp_f > 10 * imp_D -> entries 1 and 2 only
    factors = dampening_factors(imp_full, imp_forget, alpha=10.0, dampening=1.0)
    torch.testing.assert_close(factors, torch.tensor([1.0, 1.0 / 20, 2.0 / 100, 1.0]))
    # a large lambda caps the factor at 1 (never amplifies)
    capped = dampening_factors(imp_full, imp_forget, alpha=10.0, dampening=1e6)
    torch.testing.assert_close(capped, torch.ones(4))


def test_sfdn_variance_rules():
    fisher = torch.tensor([[1.0, 1e-6], [4.0, 4.0], [1e9, 1e9]])  # 3 classes x 2 inputs
    var = noise_variance(fisher, 1e-2, is_classifier=True, forget_rows=[1])
    # row 0: 1/(1+1e-8) and 1/(1e-6+1e-8) -> clamp 1e3 then classifier clamp 1e2; mean; *alpha*10
    row0 = (1.0 / (1.0 + 1e-8) + 100.0) / 2 * 1e-2 * 10
    torch.testing.assert_close(var[0], torch.full((2,), row0))
    torch.testing.assert_close(var[1], torch.full((2,), 1e-4 * 10))  # silenced forget row
    torch.testing.assert_close(var[2], torch.full((2,), 1e-9 * 1e-2 * 10), rtol=1e-3, atol=0)
    bias = noise_variance(torch.tensor([1e-12, 1.0]), 1.0, is_classifier=False, forget_rows=[])
    torch.testing.assert_close(bias, torch.tensor([1e3 * 10, 10 / (1 + 1e-8)]))  # 1-d: x10
    weight = noise_variance(torch.ones(2, 3), 1.0, is_classifier=False, forget_rows=[])
    torch.testing.assert_close(weight, torch.full((2, 3), 1 / (1 + 1e-8)))  # matrices: no x10


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))


def _tiny_conv() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 2), nn.Tanh(), nn.Flatten(), nn.Linear(8, 3))


@pytest.mark.parametrize("make, shape", [(_tiny_net, (3,)), (_tiny_conv, (1, 3, 3))],
                         ids=["linear-rank-one-path", "vmap-path"])
def test_expected_fisher_matches_a_naive_loop(make, shape):
    net = make()
    x = torch.randn(5, *shape)
    fast = expected_fisher(net, x, chunk_size=2, batch_size=3)
    naive = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for xi in x:
        logits = net(xi[None])
        prob = logits.softmax(1)[0].detach()
        for y in range(3):
            net.zero_grad()
            nn.functional.cross_entropy(net(xi[None]), torch.tensor([y])).backward()
            for n, p in net.named_parameters():
                naive[n] += prob[y] * p.grad.pow(2) / len(x)
    for n in naive:
        torch.testing.assert_close(fast[n], naive[n], rtol=1e-4, atol=1e-7)


def test_batch_importance_matches_a_naive_loop():
    net = _tiny_net()
    x, y = torch.randn(7, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    fast = batch_gradient_importance(net, x, y, batch_size=3)
    naive = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for start in (0, 3, 6):
        net.zero_grad()
        nn.functional.cross_entropy(net(x[start:start + 3]), y[start:start + 3]).backward()
        for n, p in net.named_parameters():
            naive[n] += p.grad.pow(2) / 3
    for n in naive:
        torch.testing.assert_close(fast[n], naive[n])


def test_lwsf_distillation_is_zero_only_at_the_target():
    deleted = torch.tensor([True, False, False])
    old = torch.tensor([[5.0, 1.0, -1.0]])
    at_target = torch.tensor([[0.0, 1.0, -1.0]])  # preserved as old, deleted logit at 0
    assert selective_distillation(at_target, old, deleted, 2.0).abs() < 1e-6
    moved = torch.tensor([[0.0, -1.0, 1.0]])
    confident = torch.tensor([[6.0, 1.0, -1.0]])
    assert selective_distillation(moved, old, deleted, 2.0) > 1e-3
    assert selective_distillation(confident, old, deleted, 2.0) > 1e-3


def test_ewc_penalty_zero_at_anchor_and_grows():
    net = _tiny_net()
    anchor = {n: p.detach().clone() for n, p in net.named_parameters()}
    fisher = {n: torch.ones_like(p) for n, p in net.named_parameters()}
    assert fisher_penalty(net, anchor, fisher).item() == 0.0
    with torch.no_grad():
        net[0].bias += 0.5
    assert fisher_penalty(net, anchor, fisher).item() == pytest.approx(4 * 0.25)
    with torch.no_grad():
        net[0].bias += 0.5
    assert fisher_penalty(net, anchor, fisher).item() == pytest.approx(4 * 1.0)  # grows


def test_random_labels_never_the_forget_class():
    labels = random_retain_labels(1000, [1, 2, 5], seed=3)
    assert set(labels.tolist()) == {1, 2, 5}
    assert torch.equal(labels, random_retain_labels(1000, [1, 2, 5], seed=3))


def test_unsir_noise_maximises_the_forget_class_error(digits_bundle):
    model = digits_bundle.clone().model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    noise = error_maximising_noise(
        model, 0, (64, 1, 8, 8), steps=40, lr=0.1, regulariser=0.1, seed=0
    )
    start = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(64, dtype=torch.long)
    with torch.no_grad():
        learned = nn.functional.cross_entropy(model(noise), labels)
        initial = nn.functional.cross_entropy(model(start), labels)
    assert learned > initial + 1.0
    # the model is handed back intact: same weights, gradients enabled again, still in eval mode
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters()) and not model.training


def test_erm_ktp_prohibits_the_forget_rows(digits, digits_bundle):
    head = prohibited_classifier(digits_bundle.model.classifier, [0, 4])
    assert head.weight[[0, 4]].abs().sum() == 0 and head.bias[[0, 4]].abs().sum() == 0
    assert torch.equal(head.weight[1], digits_bundle.model.classifier.weight[1])
    out = obliviate.forget(digits_bundle, [0], method="erm-ktp", data=digits, epochs=2)
    assert out.model.classifier.weight[0].abs().sum() == 0  # still zero after the transfer
    assert torch.equal(out.model.classifier.weight[3], digits_bundle.model.classifier.weight[3])
