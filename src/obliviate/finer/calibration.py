"""Post-hoc calibration of the forgotten classes' logits, fitted on validation data only.

Our addition to Hayase et al. (issue 25). Their correction term trains ``D_f,clean`` towards
the chosen class, and the class's logit rises on every input: most of the ``D_r`` accuracy
that patterns B and C lose is the model predicting that class (docs/results/finer-forgetting.md,
"Where D_r goes"). A calibration moves it back: the chosen classes' logits become
``scale * z + offset`` (one ``offset`` and ``scale`` shared by the chosen classes; the other
logits are unchanged).

- :func:`fit_logit_calibration` picks ``offset`` (and, optionally, ``scale`` from a grid) that
  maximises the pattern's validation score: the lowest accuracy over the pattern's validation
  sets (:data:`PATTERN_SETS`), the score the search already ranks settings by; or, given
  ``targets`` (the goals, :func:`obliviate.finer.goals.validation_targets`), first the number
  of sets that reach their target, then the lowest margin above its target (aim ``goals``), or
  the lowest margin alone (aim ``maximin``: it never buys one goal by dropping another set far
  below its own). Accuracy is a
  step function of ``offset``, so the search over ``offset`` is exact: every interval between
  two samples' decision points is tried (at its midpoint).
- :func:`fold_calibration` writes it into the classifier's weight and bias, so the returned
  model (and a file saved from it) carries the calibration: no wrapper, no extra state.
- :func:`search_validation` builds the validation sets the search uses (a subset of ``D_r``'s
  training part, its transformed copy, and a held-out fifth of ``D_f`` / ``D_f,clean``); the
  test parts are never read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from obliviate.data import Split
from obliviate.errors import ObliviateError
from obliviate.finer.splits import FinerData, validation_folds
from obliviate.models import Classifier

#: The validation sets whose lowest accuracy a pattern's search and calibration maximise
#: (Table 1 of Hayase et al.: what each pattern must keep).
PATTERN_SETS: dict[str, tuple[str, ...]] = {
    "B": ("D_r", "D_f,clean", "D_r,extra"),
    "C": ("D_r", "D_f", "D_r,extra"),
}

#: The calibrations offered: ``none``; ``offset`` (a bias on the chosen classes' logits);
#: ``offset+scale`` (also a multiplier of those logits, i.e. a temperature of their own, chosen
#: from :data:`SCALE_GRID`).
CALIBRATIONS: tuple[str, ...] = ("none", "offset", "offset+scale")

#: What a calibration aims at: ``goals`` (the issue's goals as per-set targets,
#: :func:`obliviate.finer.goals.validation_targets`: first how many sets reach theirs, then the
#: lowest margin above them), ``maximin`` (the same targets, the lowest margin alone) or ``min``
#: (the search's score, the lowest accuracy).
CALIBRATION_AIMS: tuple[str, ...] = ("goals", "maximin", "min")

#: The multipliers ``offset+scale`` tries (1 / temperature of the chosen classes' logits).
SCALE_GRID: tuple[float, ...] = tuple(float(2.0 ** (k / 4)) for k in range(-8, 9))


@dataclass(frozen=True)
class LogitCalibration:
    """``z_c -> scale * z_c + offset`` for every chosen class ``c``, and the fit's score on
    the validation sets before and after it: the lowest accuracy (0-1) over the pattern's
    sets, or, when fitted with targets, the lowest margin above them."""

    classes: tuple[int, ...]
    offset: float
    scale: float
    score_before: float
    score_after: float

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """The calibrated logits (a copy)."""
        out = logits.clone()
        index = list(self.classes)
        out[:, index] = out[:, index] * self.scale + self.offset
        return out


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i : i + 1024].to(device)).cpu() for i in range(0, len(x), 1024)])
    model.train(was_training)
    return out


def _decision_parts(logits: torch.Tensor, y: torch.Tensor, classes: list[int],
                    scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Per sample: the offset above which a chosen class is predicted, whether the sample's
    label is a chosen class, and whether the prediction is right on its side of that point."""
    chosen = torch.zeros(logits.shape[1], dtype=torch.bool)
    chosen[classes] = True
    best_chosen, arg_chosen = logits[:, chosen].max(dim=1)
    best_other, arg_other = logits[:, ~chosen].max(dim=1)
    chosen_ids = torch.nonzero(chosen).flatten()
    other_ids = torch.nonzero(~chosen).flatten()
    threshold = best_other - scale * best_chosen
    in_chosen = chosen[y]
    right = torch.where(in_chosen, chosen_ids[arg_chosen] == y, other_ids[arg_other] == y)
    return threshold, in_chosen, right


def _accuracy_at(offsets: torch.Tensor, threshold: torch.Tensor, in_chosen: torch.Tensor,
                 right: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Accuracy of one set at every candidate offset (none equal to a sample's threshold):
    a chosen-class sample is right when ``offset > threshold``, another when ``offset <
    threshold`` (each also needs the right class within its side)."""
    up = torch.sort(threshold[in_chosen & right]).values
    down = torch.sort(threshold[~in_chosen & right]).values
    hits = torch.searchsorted(up, offsets) + (len(down) - torch.searchsorted(down, offsets))
    return hits.double() / max(len(threshold), 1)


def fit_logit_calibration(
    model: torch.nn.Module,
    validation: dict[str, Split],
    pattern: str,
    classes: tuple[int, ...] | list[int],
    *,
    scales: tuple[float, ...] = (1.0,),
    targets: dict[str, float] | None = None,
    reached_first: bool = True,
) -> LogitCalibration:
    """The offset (and scale from ``scales``) of the chosen classes' logits that maximises
    the lowest accuracy over the pattern's validation sets.

    With ``targets`` (accuracy 0-1 per set), it maximises first how many sets reach their
    target (unless ``reached_first`` is false), then the lowest ``accuracy - target``. Ties are
    broken by the higher mean of those margins (of the accuracies without targets), then by the
    offset nearest 0.

    Args:
        model: the forgotten model (read only).
        validation: ``{"D_r": ..., "D_f": ..., "D_f,clean": ..., "D_r,extra": ...}``; only the
            pattern's sets (:data:`PATTERN_SETS`) are read. Pass validation data, never the
            test parts: the fit follows whatever it is given.
        pattern: ``B`` or ``C``.
        classes: the chosen (forgotten) classes whose logits move.
        scales: multipliers to try; ``(1.0,)`` fits the offset only.
        targets: per-set accuracy targets, e.g. the goals
            (:func:`obliviate.finer.goals.validation_targets`); ``None``: all 0. The scores
            reported (``score_before``/``score_after``) are the lowest margins.
        reached_first: rank offsets first by how many sets reach their targets (aim
            ``goals``); false ranks by the lowest margin alone (aim ``maximin``), which never
            trades a set far below its target for another reaching its own.

    Example:
        >>> import torch
        >>> from obliviate.data import Split
        >>> net = torch.nn.Linear(3, 3)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.eye(3)); _ = net.bias.zero_()
        >>> x = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.5]])  # logits = x
        >>> sets = {"D_r": Split(x[:1], torch.tensor([1])), "D_f": Split(x[1:], torch.tensor([0])),
        ...         "D_r,extra": Split(x[:1], torch.tensor([1]))}
        >>> fit_logit_calibration(net, sets, "C", [0]).score_after
        1.0
    """
    if pattern not in PATTERN_SETS:
        raise ObliviateError(f"the calibration is for patterns B and C, not {pattern!r}")
    missing = [name for name in PATTERN_SETS[pattern] if name not in validation]
    if missing:
        raise ObliviateError(f"validation sets {missing} are missing; pattern {pattern} needs "
                             f"{', '.join(PATTERN_SETS[pattern])}")  # fmt: skip
    sets = {name: validation[name] for name in PATTERN_SETS[pattern]}
    if any(len(split) == 0 for split in sets.values()):
        raise ObliviateError("a validation set is empty; give each at least one sample")
    if not scales or any(s <= 0 for s in scales):
        raise ObliviateError("scales must be positive numbers, e.g. (1.0,) or SCALE_GRID")
    classes = [int(c) for c in classes]
    logits = {name: _logits(model, split.x) for name, split in sets.items()}
    aim = torch.tensor([float((targets or {}).get(n, 0.0)) for n in sets],
                       dtype=torch.float64).unsqueeze(1)  # fmt: skip
    zero = torch.zeros(1, dtype=torch.float64)

    def score(parts: list[tuple], offsets: torch.Tensor) -> torch.Tensor:
        """[reached, lowest margin, mean margin] per offset; ``reached`` is 0 everywhere when
        the sets that reach their targets are not counted first."""
        margin = torch.stack([_accuracy_at(offsets, *p) for p in parts]) - aim
        reached = (margin >= -1e-12).double().sum(dim=0) * float(reached_first)
        return torch.stack([reached, margin.min(dim=0).values, margin.mean(dim=0)])

    best: tuple | None = None  # (reached, lowest, mean, -|b|, b, s)
    for scale in scales:
        parts = [_decision_parts(logits[n].double(), sets[n].y, classes, scale) for n in sets]
        points = torch.unique(torch.cat([p[0] for p in parts]))
        offsets = torch.cat([points[:1] - 1.0, (points[1:] + points[:-1]) / 2, points[-1:] + 1.0])
        keys = score(parts, offsets)
        tied = torch.ones(len(offsets), dtype=torch.bool)
        for row in keys:  # lexicographic: keep the offsets best on each key in turn
            tied &= row == row[tied].max()
        b = float(offsets[tied][offsets[tied].abs().argmin()])
        first = int(torch.nonzero(tied)[0])
        candidate = (*(float(k[first]) for k in keys), -abs(b), b, scale)
        if best is None or candidate[:4] > best[:4]:
            best = candidate
    assert best is not None
    before = score([_decision_parts(logits[n].double(), sets[n].y, classes, 1.0)
                    for n in sets], zero)  # fmt: skip
    return LogitCalibration(classes=tuple(classes), offset=best[4], scale=best[5],
                            score_before=float(before[1, 0]), score_after=best[1])  # fmt: skip


def fold_calibration(model: Classifier, calibration: LogitCalibration) -> Classifier:
    """A copy of ``model`` whose classifier computes the calibrated logits itself.

    Row ``c`` of the last layer's weight and bias are multiplied by ``scale`` and ``offset`` is
    added to the bias, so ``copy(x)[:, c] == scale * model(x)[:, c] + offset``.
    """
    head = getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear) or head.bias is None:
        raise ObliviateError("the calibration is written into the last layer's bias: the model "
                             "needs a final nn.Linear `classifier` with a bias (every registered "
                             "architecture has one)")  # fmt: skip
    out = copy.deepcopy(model)
    index = list(calibration.classes)
    with torch.no_grad():
        out.classifier.weight[index] *= calibration.scale
        bias = out.classifier.bias
        bias[index] = bias[index] * calibration.scale + calibration.offset
    return out


@dataclass(frozen=True)
class SearchValidation:
    """The validation sets of one seed: which ``D_f`` training samples are held out, and the
    ``D_r`` training samples standing in for ``D_r^val`` (and ``T(D_r^val)``)."""

    folds: list[tuple[torch.Tensor, torch.Tensor]]
    retain: Split
    retain_extra: Split

    def sets(self, data: FinerData, fold: int = 0) -> dict[str, Split]:
        """The four validation sets of fold ``fold``: held-out ``D_f``/``D_f,clean`` training
        samples and ``D_r^val``/``D_r,extra^val``."""
        _, held = self.folds[fold]
        return {"D_r": self.retain, "D_r,extra": self.retain_extra,
                "D_f": subset(data.forget.train, held),
                "D_f,clean": subset(data.forget_clean.train, held)}  # fmt: skip


def subset(split: Split, index: torch.Tensor) -> Split:
    """The samples ``index`` of ``split``."""
    return Split(split.x[index], split.y[index])


def search_validation(
    data: FinerData, *, split: str = "holdout", folds: int = 5, retain_val: int = 1000,
    seed: int = 0,
) -> SearchValidation:  # fmt: skip
    """The search's validation sets for ``seed``, drawn from the training parts only.

    The draw is the one :func:`obliviate.finer.tuning.tune` makes with the same arguments: first
    the ``D_f`` folds (:func:`~obliviate.finer.splits.validation_folds`), then ``retain_val``
    samples of ``D_r``'s training part.
    """
    generator = torch.Generator().manual_seed(seed)
    pairs = validation_folds(len(data.forget.train), split, folds, generator)
    pick = torch.randperm(len(data.retain.train), generator=generator)[:retain_val]
    return SearchValidation(pairs, subset(data.retain.train, pick),
                            subset(data.retain_extra.train, pick))


def calibration_targets(model: torch.nn.Module, retain_val: Split, pattern: str,
                        aim: str) -> dict[str, float] | None:  # fmt: skip
    """The ``targets`` of :func:`fit_logit_calibration` for ``aim``: ``None`` for ``min``; for
    ``goals`` and ``maximin``, the pattern's goals with ``D_r``'s measured on ``retain_val``
    with the pretrained ``model``."""
    from obliviate.finer.goals import validation_targets

    if aim not in CALIBRATION_AIMS:
        raise ObliviateError(f"unknown calibration aim {aim!r}; known: "
                             f"{', '.join(CALIBRATION_AIMS)}")  # fmt: skip
    if aim == "min":
        return None
    pretrained = float((_logits(model, retain_val.x).argmax(dim=1) == retain_val.y).double().mean())
    return validation_targets(pattern, pretrained)
