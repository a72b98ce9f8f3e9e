"""Random-label fine-tuning ("amnesiac" unlearning, Graves, Nagisetty & Ganesh, AAAI 2021;
"RL" in Unlearn-Sparse, Jia et al. 2023).

Every forget sample gets a wrong label drawn uniformly from the retain classes (never a forget
class), fixed once per request seed, and the model is fine-tuned with cross-entropy on these
pairs, together with the retain set when it is given (as SSD's and Unlearn-Sparse's benchmark
code do); with only the forget set it fine-tunes on the relabelled forget samples alone.
Defaults follow SSD's benchmark code: Adam, lr 1e-4, 3 epochs, batch 128.
"""

from __future__ import annotations

import torch

from obliviate.methods.base import (
    METHODS,
    FineTuningMethod,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
)
from obliviate.models import Classifier


def random_retain_labels(n: int, retain_classes: list[int], seed: int) -> torch.Tensor:
    """``n`` labels drawn uniformly from ``retain_classes`` with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(retain_classes), (n,), generator=generator)
    return torch.tensor(retain_classes)[pick]


@METHODS.register("random-label")
class RandomLabel(FineTuningMethod):
    """Fine-tune on the forget set relabelled with random retain classes.

    Args:
        epochs: passes over the relabelled forget set (and the retain set, if given).
        lr: Adam learning rate.
        batch_size: samples per step.
    """

    name = "random-label"
    needs = frozenset({"forget"})
    uses = frozenset({"retain"})
    summary = "fine-tune on the forget set relabelled at random (plus the retain set if given)"

    def __init__(self, *, epochs: int = 3, lr: float = 1e-4, batch_size: int = 128) -> None:
        super().__init__(epochs=epochs, lr=lr, batch_size=batch_size)

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        forget = context.require("forget")
        x = forget.x
        y = random_retain_labels(len(forget), context.retain_classes(request), context.seed)
        if context.retain_data is not None:
            x = torch.cat([x, context.retain_data.x])
            y = torch.cat([y, context.retain_data.y])
        return self.train_copy(model, x, y, context, optimizer="adam", weight_decay=0.0)
