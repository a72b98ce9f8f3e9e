"""Selective Synaptic Dampening (Foster, Schoepf & Brintrup, AAAI 2024).

Retrain-free and one-shot: parameter importances are estimated on the full training set D and
on the forget set D_f (mean squared mini-batch gradients of the cross-entropy); parameters that
matter far more to the forget set than to D (``imp_f > alpha * imp_D``) are scaled down by
``beta = min(lambda * imp_D / imp_f, 1)``; all others are left alone.

Defaults (the paper's, for full-class forgetting): ``alpha = 10`` (selection), ``lambda = 1``
(dampening). The full training set is the forget set plus the retain set given to
:func:`obliviate.forget`. Importances use mini-batches of 64 in eval mode, as the authors'
``calc_importance``.

Our decision: D's mini-batches are shuffled. The authors' loader concatenates the retain and
the forget samples unshuffled, which makes the batch-gradient estimate depend on data order:
the forget samples then form homogeneous batches inside D, so ``imp_D >= (|D_f|/|D|) * imp_f``
and nothing can be selected once the forget set is a tenth of D and ``alpha = 10`` (one class
of ten; on Fashion-MNIST this left the model unchanged). ``shuffle=False`` gives the authors'
order.
"""

from __future__ import annotations

import copy

import torch

from obliviate.fisher import batch_gradient_importance
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_positive,
)
from obliviate.models import Classifier


def dampening_factors(
    imp_full: torch.Tensor, imp_forget: torch.Tensor, alpha: float, dampening: float
) -> torch.Tensor:
    """Multiplier of every parameter: ``min(lambda*imp_D/imp_f, 1)`` where selected, else 1."""
    selected = imp_forget > alpha * imp_full
    beta = (dampening * imp_full / imp_forget).clamp(max=1.0)
    return torch.where(selected, beta, torch.ones_like(beta))


@METHODS.register("ssd")
class SelectiveSynapticDampening(UnlearningMethod):
    """Dampen the parameters specialised to the forget set.

    Args:
        alpha: selection threshold (a parameter is selected if its forget importance exceeds
            ``alpha`` times its importance on the full training set).
        dampening: lambda; the selected parameters are scaled by ``min(lambda*imp_D/imp_f, 1)``.
        batch_size: mini-batch size of the importance estimates.
        shuffle: draw D's mini-batches in random order (default). ``False`` reproduces the
            authors' loader: retain samples, then forget samples, unshuffled.
    """

    name = "ssd"
    needs = frozenset({"forget", "retain"})
    summary = "scale down parameters far more important to the forget set (one shot)"

    def __init__(
        self,
        *,
        alpha: float = 10.0,
        dampening: float = 1.0,
        batch_size: int = 64,
        shuffle: bool = True,
    ) -> None:
        check_positive(alpha=alpha, dampening=dampening, batch_size=batch_size)
        self.alpha = alpha
        self.dampening = dampening
        self.batch_size = batch_size
        self.shuffle = shuffle

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        forget = context.require("forget")
        retain = context.require("retain")
        full_x, full_y = torch.cat([retain.x, forget.x]), torch.cat([retain.y, forget.y])
        if self.shuffle:
            order = torch.randperm(len(full_y), generator=torch.Generator().manual_seed(context.seed))
            full_x, full_y = full_x[order], full_y[order]
        imp_full = batch_gradient_importance(model, full_x, full_y, batch_size=self.batch_size)
        imp_forget = batch_gradient_importance(
            model, forget.x, forget.y, batch_size=self.batch_size
        )
        out = copy.deepcopy(model)
        selected: dict[str, float] = {}
        with torch.no_grad():
            for name, param in out.named_parameters():
                if name not in imp_full:
                    continue
                factor = dampening_factors(
                    imp_full[name], imp_forget[name], self.alpha, self.dampening
                )
                param.mul_(factor)
                selected[name] = float((factor < 1).float().mean())
        total = sum(p.numel() for p in out.parameters())
        dampened = sum(selected[n] * p.numel() for n, p in out.named_parameters() if n in selected)
        return MethodOutput(
            model=out,
            details={"dampened_fraction": dampened / total, "dampened_per_tensor": selected},
        )
