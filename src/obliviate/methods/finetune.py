"""Fine-tuning on the retain set: forgetting by catastrophic interference.

The original model keeps training on the retain classes only, so the forget classes fade as
the shared weights move. Defaults follow SSD's benchmark code (Foster et al. 2024): 5 epochs,
SGD lr 0.02 (momentum 0.9, weight decay 5e-4, batch 128).
"""

from __future__ import annotations

import copy

from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_positive,
    model_device,
)
from obliviate.models import Classifier
from obliviate.training import TrainConfig, fit


@METHODS.register("finetune")
class Finetune(UnlearningMethod):
    """Continue training on the retain set.

    Args:
        epochs: passes over the retain set.
        lr: SGD learning rate.
        batch_size: samples per step.
    """

    name = "finetune"
    needs = frozenset({"retain"})
    summary = "keep training on the retain set (catastrophic forgetting)"

    def __init__(self, *, epochs: int = 5, lr: float = 0.02, batch_size: int = 128) -> None:
        check_positive(epochs=epochs, lr=lr, batch_size=batch_size)
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        retain = context.require("retain")
        out = copy.deepcopy(model)
        device = model_device(out)
        config = TrainConfig(
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=context.seed
        )
        losses = fit(
            out,
            retain.x.to(device),
            retain.y.to(device),
            config,
            batch_transform=context.image_transform(),
            description="finetune",
            progress=context.progress,
        )
        return MethodOutput(model=out, details={"epoch_losses": losses})
