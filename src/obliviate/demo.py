"""The demo: train with mnemonic codes on digits, forget class 0 without data, evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.api import evaluate, forget, train
from obliviate.checkpoint import ModelBundle
from obliviate.data import load_dataset
from obliviate.metrics import EvalReport
from obliviate.training import TrainConfig

#: Digits is tiny (1,257 training images of 8x8), so the demo trains 40 epochs at lr 0.1
#: instead of the paper's lr 0.01; everything else is the paper's FC protocol.
DEMO_TRAIN = TrainConfig(epochs=40, lr=0.1)


@dataclass
class DemoResult:
    """The two models and their evaluations."""

    original: ModelBundle
    forgotten: ModelBundle
    before: EvalReport
    after: EvalReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": "digits",
            "forget_classes": self.forgotten.history[-1]["classes"],
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "forget_record": self.forgotten.history[-1],
        }


def run_demo(*, seed: int = 0, forget_classes: tuple[int, ...] = (0,), progress: bool = True) -> DemoResult:
    """Train ``fc`` with codes on digits, forget ``forget_classes`` without data (calibrated
    strength, verified against the training statistics in the model file), and
    evaluate both models with the paper's protocol (A_R, FE, RE with 1000 relearn steps, S)."""
    data = load_dataset("digits")
    original = train(
        data, "fc", config=TrainConfig(**{**DEMO_TRAIN.__dict__, "seed": seed}), progress=progress
    )
    forgotten = forget(original, list(forget_classes), seed=seed)  # calibrated and verified
    before = evaluate(original, data, forget_classes, seed=seed)
    after = evaluate(forgotten, data, forget_classes, seed=seed)
    return DemoResult(original, forgotten, before, after)
