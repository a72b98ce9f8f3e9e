"""One-shot forgetting with mnemonic codes (Yamashita, Yamada & Shibata, ACML 2024; Alg. 2).

Per-class diagonal Fisher information is computed from the mnemonic codes only. For every
parameter, ``eta = f_F / f_R`` (forget-classes Fisher over retain-classes Fisher, computed as
``exp(log f_F - log f_R)`` with NaN -> 0 and +-inf -> the largest finite value, as the official
code does). Each parameter tensor ``l`` is moved by ``alpha_l * eta`` with
``alpha_l = min(lambda1, lambda2 / max(eta_l))``; both signs are tried and the candidate with
the higher retain accuracy + forget error is kept, measured on the codes (data-free) or, if
the caller passes data, on that data.

Defaults (official code): FC/MNIST lambda = (1e-3, 10); CIFAR-10/ResNet-18 (1e-5, 1e4);
the paper's text also lists CUB (1e-4, 1.0) and STN (1e-5, 100). When no lambdas are given,
the architecture's ``default_lambdas`` are used.

Our decision where the paper is silent: when both signs score the same accuracy criterion
(common on codes, where both often reach 100 %), the tie is broken by the continuous margin
``CE(forget samples) - CE(retain samples)``; the official code always takes the minus sign on
ties.
"""

from __future__ import annotations

import copy

import torch

from obliviate.errors import ObliviateError
from obliviate.fisher import diagonal_fisher, warm_up
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_positive,
    class_scores,
)
from obliviate.models import Classifier


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


@METHODS.register("mnemonic")
class MnemonicForgetting(UnlearningMethod):
    """One-shot, data-free forgetting with mnemonic codes (the core method).

    Args:
        lambda1: cap on alpha (noise scale in layers insensitive to the forget classes).
        lambda2: the largest perturbation of any parameter of a layer.
            ``None`` for either takes the architecture's ``default_lambdas``.
        chunk_size: codes per vectorised Fisher pass.
    """

    name = "mnemonic"
    needs = frozenset({"codes"})
    uses = frozenset({"forget", "retain"})
    summary = "one-shot Fisher-guided noise from mnemonic codes (data-free)"

    def __init__(
        self,
        *,
        lambda1: float | None = None,
        lambda2: float | None = None,
        chunk_size: int = 64,
    ) -> None:
        check_positive(lambda1=lambda1, lambda2=lambda2, chunk_size=chunk_size)
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.chunk_size = chunk_size

    def prepare(self) -> None:
        warm_up()

    def fisher_samples(
        self, context: UnlearnContext, classes: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples whose squared gradients make the Fisher: the codes of ``classes``."""
        if context.codes is None:
            raise ObliviateError(
                "this model file has no mnemonic codes (it was trained without them), so the "
                "data-free method cannot run; use the data-based variant 'mnemonic-data' "
                "(--method mnemonic-data --data DATASET: Fisher from training images) or "
                "retrain with codes"
            )
        labels = torch.tensor(classes)
        return context.codes.tensor[labels], labels

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        lambda1 = self.lambda1 if self.lambda1 is not None else model.default_lambdas[0]
        lambda2 = self.lambda2 if self.lambda2 is not None else model.default_lambdas[1]
        forget = sorted(request.classes)
        retain = context.retain_classes(request)
        device = next(model.parameters()).device
        inputs, labels = self.fisher_samples(context, forget + retain)
        inputs, labels = inputs.to(device), labels.to(device)
        f_forget, f_retain = diagonal_fisher(
            model, inputs, labels, [forget, retain], chunk_size=self.chunk_size
        )
        deltas, alphas = forgetting_noise(f_forget, f_retain, lambda1, lambda2)
        candidates = {"+": apply_noise(model, deltas, +1), "-": apply_noise(model, deltas, -1)}
        given = context.given_data()
        if given is not None:
            judge_x, judge_y, judged_on = given.x, given.y, "data"
        else:
            judge_x, judge_y, judged_on = inputs, labels, "codes"
        scores = {}
        for sign, candidate in candidates.items():
            criterion, forget_ce, retain_ce = class_scores(
                candidate, judge_x, judge_y, forget, retain
            )
            scores[sign] = (round(criterion, 9), forget_ce - retain_ce)
        chosen = max(("-", "+"), key=lambda s: scores[s])  # ties on both keys: minus, as authors
        return MethodOutput(
            model=candidates[chosen],
            details={
                "lambda1": lambda1,
                "lambda2": lambda2,
                "sign": chosen,
                "selected_on": judged_on,
                "selection_scores": {s: {"acc_criterion": v[0], "ce_margin": v[1]}
                                     for s, v in scores.items()},
                "alphas": alphas,
            },
        )


@METHODS.register("mnemonic-data")
class MnemonicDataForgetting(MnemonicForgetting):
    """"Ours w/o MNCODE" of the mnemonic paper (Tables 2-5): Alg. 2 with the Fisher computed
    from ``per_class`` training images of every forget and retain class (paper: 200) instead of
    the codes, and the +/- candidate chosen on the training data. Works on models trained
    without codes.

    Args:
        lambda1, lambda2: as for ``mnemonic`` (default: the architecture's).
        per_class: training images per class for the Fisher (drawn with the request's seed).
        chunk_size: images per vectorised Fisher pass.
    """

    name = "mnemonic-data"
    needs = frozenset({"forget", "retain"})
    uses = frozenset()
    summary = "Alg. 2 with the Fisher from training images ('Ours w/o MNCODE')"

    def __init__(
        self,
        *,
        lambda1: float | None = None,
        lambda2: float | None = None,
        per_class: int = 200,
        chunk_size: int = 64,
    ) -> None:
        super().__init__(lambda1=lambda1, lambda2=lambda2, chunk_size=chunk_size)
        check_positive(per_class=per_class)
        self.per_class = per_class

    def fisher_samples(
        self, context: UnlearnContext, classes: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` training images of each of ``classes``."""
        data = context.given_data()
        assert data is not None  # guaranteed by ``needs``
        subset = data.of_classes(classes).per_class_subset(
            self.per_class, seed=context.seed
        )
        return subset.x, subset.y
