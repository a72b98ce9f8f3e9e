"""Retraining from scratch on the retain set: the gold standard every method is compared with.

The model is rebuilt with a fresh initialisation (same architecture and constructor arguments)
and trained with the recipe the original model was trained with (its stored
:class:`~obliviate.training.TrainConfig`: optimiser, learning rate, epochs, batch size) on the
training samples of the retain classes only. If the original model was trained with mnemonic
codes, the retrained one is too, with the codes of the retain classes, so that it can itself be
forgotten without data later. Any hyperparameter given here overrides the stored recipe.
"""

from __future__ import annotations

import dataclasses

from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_positive,
    compose_transforms,
    model_device,
)
from obliviate.models import Classifier
from obliviate.training import TrainConfig, fit


@METHODS.register("retrain")
class Retrain(UnlearningMethod):
    """Train a fresh model on the retain set (the reference an unlearned model should match).

    Args:
        epochs: passes over the retain set (default: the original recipe's).
        lr: learning rate (default: the original recipe's).
        batch_size: samples per step (default: the original recipe's).
    """

    name = "retrain"
    needs = frozenset({"retain"})
    uses = frozenset({"codes"})
    summary = "train from scratch on the retain set (gold standard)"

    def __init__(
        self, *, epochs: int | None = None, lr: float | None = None, batch_size: int | None = None
    ) -> None:
        check_positive(epochs=epochs, lr=lr, batch_size=batch_size)
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        retain = context.require("retain")
        base = context.train_config or TrainConfig()
        overrides = {"seed": context.seed}
        if self.epochs is not None:
            overrides.update(epochs=self.epochs, steps=None)
        if self.lr is not None:
            overrides["lr"] = self.lr
        if self.batch_size is not None:
            overrides["batch_size"] = self.batch_size
        config = dataclasses.replace(base, **overrides)
        assert context.fresh_model is not None  # always set by obliviate.forget
        fresh = context.fresh_model()
        device = model_device(model)
        fresh.to(device)
        codes = context.codes
        transform = compose_transforms(
            context.image_transform(), codes.augment if codes is not None else None
        )
        fit(
            fresh,
            retain.x.to(device),
            retain.y.to(device),
            config,
            batch_transform=transform,
            description="retrain",
            progress=context.progress,
        )
        return MethodOutput(
            model=fresh,
            details={"train_config": dataclasses.asdict(config), "with_codes": codes is not None},
        )
