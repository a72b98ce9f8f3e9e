"""Paper mode of mnemonic forgetting (Yamashita et al., Alg. 2): every parameter moves by
``alpha_l * eta`` with ``eta = f_F / f_R`` from the codes' diagonal Fisher; both signs are
tried and the better one is kept (see :mod:`obliviate.methods.mnemonic` for the whole story)."""

from __future__ import annotations

import copy

import torch

from obliviate.calibration import forget_margins
from obliviate.fisher import diagonal_fisher
from obliviate.methods.base import MethodOutput, class_scores
from obliviate.methods.mnemonic_checks import verdict
from obliviate.models import Classifier
from obliviate.training import batched_eval


def noise_ratio(f_forget: torch.Tensor, f_retain: torch.Tensor) -> torch.Tensor:
    """``eta = f_forget / f_retain`` in float64, via logs; NaN -> 0, +-inf -> max finite."""
    log_eta = torch.log(f_forget.double()) - torch.log(f_retain.double())
    log_eta = torch.where(torch.isnan(log_eta), torch.zeros_like(log_eta), log_eta)
    finite = log_eta[torch.isfinite(log_eta)]
    max_finite = finite.max() if finite.numel() else torch.zeros((), dtype=log_eta.dtype)
    log_eta = torch.where(torch.isinf(log_eta), max_finite, log_eta)
    return torch.exp(log_eta)


def perturbation(
    eta: torch.Tensor, lambda1: float, lambda2: float
) -> tuple[torch.Tensor, float]:
    """``(alpha * eta, alpha)`` with ``alpha = min(lambda1, lambda2 / max(eta))`` (Eq. 6)."""
    peak = float(eta.max())
    alpha = min(lambda1, lambda2 / peak) if peak > 0 else lambda1
    return alpha * eta, alpha


def forgetting_noise(
    f_forget: dict[str, torch.Tensor],
    f_retain: dict[str, torch.Tensor],
    lambda1: float,
    lambda2: float,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The perturbation of every parameter tensor and its ``alpha``, from the two Fishers."""
    deltas, alphas = {}, {}
    for name, ff in f_forget.items():
        delta, alpha = perturbation(noise_ratio(ff, f_retain[name]), lambda1, lambda2)
        deltas[name] = delta.to(ff.dtype)
        alphas[name] = alpha
    return deltas, alphas


def apply_noise(model: Classifier, deltas: dict[str, torch.Tensor], sign: int) -> Classifier:
    """A copy of ``model`` with ``sign * delta`` added to the named parameters."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in out.named_parameters():
            if name in deltas:
                param.add_(deltas[name].to(param.device), alpha=sign)
    return out


def paper_forget(method, model, inputs, labels, forget, retain, given, context) -> MethodOutput:
    """Paper mode (Alg. 2): both signs of the Fisher-ratio noise, the better one kept and
    checked; ``method`` is the :class:`~obliviate.methods.mnemonic.MnemonicForgetting` that
    holds the lambdas, margin and limits."""
    lambda1 = method.lambda1 if method.lambda1 is not None else model.default_lambdas[0]
    lambda2 = method.lambda2 if method.lambda2 is not None else model.default_lambdas[1]
    f_forget, f_retain = diagonal_fisher(
        model, inputs, labels, [forget, retain], chunk_size=method.chunk_size
    )
    deltas, alphas = forgetting_noise(f_forget, f_retain, lambda1, lambda2)
    candidates = {"+": apply_noise(model, deltas, +1), "-": apply_noise(model, deltas, -1)}
    every = context.given_data()
    if every is not None:
        judge_x, judge_y, judged_on = every.x, every.y, "data"
    else:
        judge_x, judge_y, judged_on = inputs, labels, "codes"
    scores = {}
    for sign, candidate in candidates.items():
        criterion, forget_ce, retain_ce = class_scores(
            candidate, judge_x, judge_y, forget, retain, batch_size=method.chunk_size
        )
        scores[sign] = (round(criterion, 9), forget_ce - retain_ce)
    chosen = max(("-", "+"), key=lambda s: scores[s])  # ties on both keys: minus, as authors
    out = candidates[chosen]
    with torch.no_grad():
        out_logits = torch.cat(batched_eval(out, out, inputs, method.chunk_size))
        code_margins = forget_margins(out_logits, labels, retain)
    is_f = torch.isin(labels, torch.tensor(forget, device=labels.device))
    samples = "codes" if context.codes is not None else "fisher_samples"  # mnemonic-data
    checks: dict[str, dict] = {
        samples: {
            "forget_margin_max": float(code_margins[is_f].max()),
            "target": -method.margin,
            "passed": float(code_margins[is_f].max()) <= -method.margin,
        }
    }
    reason = None
    if given.any:
        checks[given.check_name] = given.check(
            given.logits_of(out, "forget"), given.logits_of(out, "retain"), retain,
            method.min_forget_error, method.max_retain_drop,
        )  # fmt: skip
    else:
        reason = ("paper mode changes the feature extractor, which the codes alone cannot "
                  "vouch for; pass the training data (--data DATASET) to verify on it")  # fmt: skip
    verified, reason = verdict(checks, reason, f"at lambda1={lambda1:g}, lambda2={lambda2:g}")
    return MethodOutput(
        model=out,
        details={
            "mode": "paper",
            "lambda1": lambda1,
            "lambda2": lambda2,
            "sign": chosen,
            "selected_on": judged_on,
            "selection_scores": {s: {"acc_criterion": v[0], "ce_margin": v[1]}
                                 for s, v in scores.items()},
            "alphas": alphas,
            "verified": verified,
            "verification": {"on": list(checks), "checks": checks, "reason": reason},
        },
    )
