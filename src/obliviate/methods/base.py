"""The one interface every unlearning method implements, and the method registry.

A method is a class with a registered ``name``, keyword-only hyperparameters (the paper's
defaults), a declaration of the data it ``needs``, and one call, :meth:`UnlearningMethod.unlearn`,
that takes a model and a forget request and returns a *new* model plus a record of what it did.
Timing, validation, cloning and the audit record are done once, by :func:`obliviate.forget`,
identically for every method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from obliviate.codes import MnemonicCodes
from obliviate.data import Split
from obliviate.models import Classifier
from obliviate.registry import Registry
from obliviate.training import batched_eval

#: What a method may need: the model's mnemonic codes, or (a part of) the training data.
DataNeed = Literal["codes", "train"]


@dataclass(frozen=True)
class ForgetRequest:
    """What to forget: class indices (sample-level requests come later)."""

    classes: tuple[int, ...]


@dataclass
class UnlearnContext:
    """Everything a method may read besides the model.

    Attributes:
        num_classes: classes of the model.
        previously_forgotten: classes forgotten by earlier requests (neither forget nor retain).
        codes: the model's mnemonic codes, if it has them.
        train: training data, only when the caller passed it.
        seed: seed for any randomness in the method.
    """

    num_classes: int
    previously_forgotten: tuple[int, ...] = ()
    codes: MnemonicCodes | None = None
    train: Split | None = None
    seed: int = 0

    def retain_classes(self, request: ForgetRequest) -> list[int]:
        """Classes to keep: all but the requested and the previously forgotten ones."""
        gone = set(request.classes) | set(self.previously_forgotten)
        return [c for c in range(self.num_classes) if c not in gone]


@dataclass
class MethodOutput:
    """A method's result: the new model and what it wants recorded in the audit trail."""

    model: Classifier
    details: dict[str, Any] = field(default_factory=dict)


class UnlearningMethod(ABC):
    """Base class of unlearning methods. Subclasses set ``name``, ``needs`` and implement
    :meth:`unlearn`; they must not modify the model they are given."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[DataNeed]]

    @abstractmethod
    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        """Return a new model that has forgotten ``request`` (the input stays untouched)."""

    def prepare(self) -> None:
        """One-time, model-independent set-up (library warm-up) run before the timer starts.

        Like CUDA context creation it is a cost of the process, not of the forget request.
        """

    def hyperparameters(self) -> dict[str, Any]:
        """The method's hyperparameters, for the audit record."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


METHODS: Registry[type[UnlearningMethod]] = Registry("unlearning method")


@torch.no_grad()
def class_scores(
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    forget_classes: list[int],
    retain_classes: list[int],
) -> tuple[float, float, float]:
    """``(retain accuracy + forget error in [0, 2], forget CE, retain CE)`` on ``(x, y)``."""
    logits = torch.cat(batched_eval(lambda xb: model(xb).cpu(), model, x, 1024))
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    correct = logits.argmax(dim=1) == y
    f_mask = torch.isin(y, torch.tensor(forget_classes))
    r_mask = torch.isin(y, torch.tensor(retain_classes))
    retain_acc = correct[r_mask].float().mean().item() if r_mask.any() else 0.0
    forget_err = 1.0 - correct[f_mask].float().mean().item() if f_mask.any() else 0.0
    forget_ce = ce[f_mask].mean().item() if f_mask.any() else 0.0
    retain_ce = ce[r_mask].mean().item() if r_mask.any() else 0.0
    return retain_acc + forget_err, forget_ce, retain_ce
