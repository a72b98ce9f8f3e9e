"""Gradient ascent on the forget set ("NegGrad"): maximise the loss of the forget samples.

The simplest data-based unlearning: SGD on ``-CE`` of the forget set. It needs only the
forget set but nothing stops it from damaging the retain classes, so it runs for a fixed,
short budget. Defaults are Unlearn-Sparse's (Jia et al. 2023, "GA"): 5 epochs, SGD lr 1e-4,
momentum 0.9, weight decay 5e-4, batch 256. The loss is unbounded, so a too large ``lr`` or
``epochs`` wrecks every class; tune both on held-out data.
"""

from __future__ import annotations

import torch
from torch import nn

from obliviate.methods.base import (
    METHODS,
    FineTuningMethod,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
)
from obliviate.models import Classifier


def negative_cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-CE(model(x), y)``: minimising it ascends the forget samples' loss."""
    return -nn.functional.cross_entropy(model(x), y)


@METHODS.register("gradient-ascent")
class GradientAscent(FineTuningMethod):
    """Ascend the cross-entropy of the forget set.

    Args:
        epochs: passes over the forget set.
        lr: SGD learning rate.
        batch_size: samples per step.
    """

    name = "gradient-ascent"
    needs = frozenset({"forget"})
    summary = "gradient ascent on the forget set's loss (NegGrad)"

    def __init__(self, *, epochs: int = 5, lr: float = 1e-4, batch_size: int = 256) -> None:
        super().__init__(epochs=epochs, lr=lr, batch_size=batch_size)

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        forget = context.require("forget")
        return self.train_copy(
            model, forget.x, forget.y, context, objective=negative_cross_entropy
        )
