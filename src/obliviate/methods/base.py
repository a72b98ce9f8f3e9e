"""The one interface every unlearning method implements, and the method registry.

A method is a class with a registered ``name``, keyword-only hyperparameters (the paper's
defaults), a declaration of the data it ``needs`` (and may optionally ``use``), and one call,
:meth:`UnlearningMethod.unlearn`, that takes a model and a forget request and returns a *new*
model plus a record of what it did. Validation, data splitting, cloning, timing and the audit
record are done once, by :func:`obliviate.forget`, identically for every method: a method only
ever sees the data it declared.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from obliviate.codes import MnemonicCodes
from obliviate.data import BatchAugment, Split
from obliviate.errors import ObliviateError
from obliviate.models import Classifier
from obliviate.registry import Registry, coerce_keywords, keyword_defaults
from obliviate.stats import TrainingStatistics
from obliviate.training import (
    BatchTransform,
    Objective,
    TrainConfig,
    batched_eval,
    cross_entropy_objective,
    fit,
)

#: What a method may need: the model's mnemonic codes, the training samples of the forget
#: classes ("forget set"), or those of the classes to keep ("retain set"). A method that needs
#: the full training set needs both sets; one that needs a retain *subset* needs "retain" and
#: draws its subset itself (with a documented hyperparameter).
DataNeed = Literal["codes", "forget", "retain", "check"]
DATA_NEEDS: tuple[DataNeed, ...] = ("codes", "forget", "retain", "check")


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
        forget_data: training samples of the forget classes, if the method declared "forget"
            and the caller passed data.
        retain_data: training samples of the retain classes, if the method declared "retain"
            and the caller passed data.
        check_data: held-out samples the caller gave to verify the kept classes with (a check
            set: never trained or calibrated on), if the method declared "check".
        train_config: the recipe the model was trained with (for methods that retrain).
        fresh_model: builds a freshly initialised model of the same architecture.
        augment: the dataset's training-time augmentation (for methods that train on images).
        seed: seed for any randomness in the method.
        progress: whether methods that train may show a progress bar.
        stats: the training statistics stored in the model file, if any (no sample), and
            only when they describe the model's weights (:func:`obliviate.stats.stale_reason`).
        stats_problem: why the file's statistics were withheld (recorded for other weights),
            for the method to say when it cannot verify without them.
    """

    num_classes: int
    previously_forgotten: tuple[int, ...] = ()
    codes: MnemonicCodes | None = None
    forget_data: Split | None = None
    retain_data: Split | None = None
    check_data: Split | None = None
    train_config: TrainConfig | None = None
    fresh_model: Callable[[], Classifier] | None = None
    augment: BatchAugment | None = None
    seed: int = 0
    progress: bool = True
    stats: TrainingStatistics | None = None
    stats_problem: str | None = None

    def retain_classes(self, request: ForgetRequest) -> list[int]:
        """Classes to keep: all but the requested and the previously forgotten ones."""
        gone = set(request.classes) | set(self.previously_forgotten)
        return [c for c in range(self.num_classes) if c not in gone]

    def given_data(self) -> Split | None:
        """The forget and retain samples the method was given, concatenated (or ``None``)."""
        parts = [s for s in (self.forget_data, self.retain_data) if s is not None]
        if not parts:
            return None
        return Split(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))

    def require(self, what: Literal["forget", "retain"]) -> Split:
        """The forget or retain set; a method calls this only for data it declared."""
        split = self.forget_data if what == "forget" else self.retain_data
        if split is None:  # only reachable if a method reads data it did not declare
            raise RuntimeError(f"the {what} set was not given to this method; declare it in needs")
        return split

    def image_transform(self) -> BatchTransform | None:
        """The dataset's augmentation as a :func:`~obliviate.training.fit` batch transform."""
        augment = self.augment
        if augment is None:
            return None

        def transform(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
            return augment(x.cpu(), generator).to(x.device), y

        return transform


def compose_transforms(*transforms: BatchTransform | None) -> BatchTransform | None:
    """Apply the given batch transforms in order (``None`` entries are skipped)."""
    active = [t for t in transforms if t is not None]
    if not active:
        return None

    def composed(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        for transform in active:
            x, y = transform(x, y, generator)
        return x, y

    return composed


@dataclass
class MethodOutput:
    """A method's result: the new model and what it wants recorded in the audit trail."""

    model: Classifier
    details: dict[str, Any] = field(default_factory=dict)
    #: training statistics that still hold for ``model`` (:mod:`obliviate.stats`); the front
    #: door clears the forgotten classes' entries and binds them to ``model``'s weights.
    #: ``None``: the model's are stale, dropped.
    statistics: Any = None


class UnlearningMethod(ABC):
    """Base class of unlearning methods.

    Subclasses set ``name``, ``needs`` (data without which the method cannot run), optionally
    ``uses`` (data it takes advantage of when given), a one-line ``summary``, and implement
    :meth:`unlearn`; they must not modify the model they are given.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[DataNeed]]
    uses: ClassVar[frozenset[DataNeed]] = frozenset()
    summary: ClassVar[str] = ""

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


class FineTuningMethod(UnlearningMethod):
    """Shared shape of the methods that train a copy of the model for a few epochs.

    Subclasses declare their own keyword defaults (so that they show in ``obliviate list``) and
    pass them up; :meth:`train_copy` runs the one training loop on a copy of the model.
    """

    def __init__(self, *, epochs: int, lr: float, batch_size: int) -> None:
        check_positive(epochs=epochs, lr=lr, batch_size=batch_size)
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def train_copy(
        self,
        model: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        context: UnlearnContext,
        *,
        objective: Objective = cross_entropy_objective,
        **config: Any,
    ) -> MethodOutput:
        """Train a copy of ``model`` on ``(x, y)`` with this method's epochs, lr and batch size
        (``config`` adds other :class:`TrainConfig` fields); return it with its epoch losses."""
        out = copy.deepcopy(model)
        device = model_device(out)
        settings = TrainConfig(
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=context.seed, **config
        )
        losses = fit(
            out,
            x.to(device),
            y.to(device),
            settings,
            objective=objective,
            batch_transform=context.image_transform(),
            description=self.name,
            progress=context.progress,
        )
        return MethodOutput(model=out, details={"epoch_losses": losses})


def hyperparameter_defaults(method: type[UnlearningMethod]) -> dict[str, Any]:
    """The keyword-only hyperparameters of a method class and their defaults."""
    return keyword_defaults(method)


def coerce_hyperparameters(
    method: type[UnlearningMethod], raw: dict[str, str]
) -> dict[str, Any]:
    """Turn ``{"alpha": "10"}`` (from a command line) into typed keyword arguments.

    Raises:
        ObliviateError: an unknown name (the known ones are listed) or a value of the wrong type.
    """
    return coerce_keywords(method, raw, owner=f"method {method.name!r}", noun="hyperparameter")


def check_positive(**values: float | int | None) -> None:
    """Raise a user error unless every given (non-None) value is a positive finite number."""
    for label, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not (
            isinstance(value, (int, float)) and value > 0 and value != float("inf")
        ):
            raise ObliviateError(f"{label} must be a positive finite number, got {value!r}")


def check_non_negative(**values: float) -> None:
    """Raise a user error unless every given value is a number >= 0 (NaN is rejected)."""
    for label, value in values.items():
        if not value >= 0:
            raise ObliviateError(f"{label} must be >= 0, got {value}")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


@torch.no_grad()
def class_scores(
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    forget_classes: list[int],
    retain_classes: list[int],
    *,
    batch_size: int = 1024,
) -> tuple[float, float, float]:
    """``(retain accuracy + forget error in [0, 2], forget CE, retain CE)`` on ``(x, y)``."""
    logits = torch.cat(batched_eval(lambda xb: model(xb).cpu(), model, x, batch_size))
    y = y.cpu()
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    correct = logits.argmax(dim=1) == y
    f_mask = torch.isin(y, torch.tensor(forget_classes))
    r_mask = torch.isin(y, torch.tensor(retain_classes))
    retain_acc = correct[r_mask].float().mean().item() if r_mask.any() else 0.0
    forget_err = 1.0 - correct[f_mask].float().mean().item() if f_mask.any() else 0.0
    forget_ce = ce[f_mask].mean().item() if f_mask.any() else 0.0
    retain_ce = ce[r_mask].mean().item() if r_mask.any() else 0.0
    return retain_acc + forget_err, forget_ce, retain_ce
