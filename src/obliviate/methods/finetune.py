"""Fine-tuning on the retain set: forgetting by catastrophic interference.

The original model keeps training on the retain classes only, so the forget classes fade as
the shared weights move. Defaults follow SSD's benchmark code (Foster et al. 2024): 5 epochs,
SGD lr 0.02 (momentum 0.9, weight decay 5e-4, batch 128).
"""

from __future__ import annotations

from obliviate.methods.base import (
    METHODS,
    FineTuningMethod,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
)
from obliviate.models import Classifier


@METHODS.register("finetune")
class Finetune(FineTuningMethod):
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
        super().__init__(epochs=epochs, lr=lr, batch_size=batch_size)

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        retain = context.require("retain")
        return self.train_copy(model, retain.x, retain.y, context)
