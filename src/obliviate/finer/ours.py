"""Our finer-than-sample forgetting, beside Hayase et al.'s (issue 25).

The paper's loss and settings stay the reproduction (:mod:`obliviate.finer.forgetting`,
``method="paper"``). Ours changes three things, each named and selectable, so that the
results page can measure them one by one:

1. **The correction also sees the other classes** (``lambda_other``): ``L_c`` on ``D_f,clean``
   plus the old model's logits of the other classes on those samples, held by a squared
   distance (:func:`~obliviate.finer.forgetting.other_logit_loss`).
2. **Pattern C's forgetting term keeps ``D_f``'s label** (``term="clean-self"``, or
   ``"clean-old"``): each ``D_f`` sample is distilled towards the output on its untransformed
   copy, so the transform stops mattering, instead of towards random labels.
   ``clean-old`` uses the pretrained model's output, as issue 25 proposes; but that model
   calls the untransformed samples another class (``D_f,clean`` 0 % on Fashion-MNIST), so it
   pulls ``D_f`` away from its label as RLD does. ``clean-self`` uses the model being trained
   (gradient stopped), which ``L_c`` is teaching to call them by their label. Neither
   guarantees the label: when the term outweighs ``L_c`` early, the untransformed copies are
   still called another class and ``D_f`` follows them (digits, lr 1e-4, lambda_f 5: ``D_f``
   and ``D_f,clean`` both at 0 %; tests/finer/test_ours.py).
3. **A post-hoc calibration of the chosen classes' logit** (``calibration="offset"`` or
   ``"offset+scale"``), fitted on the search's validation sets only and folded into the last
   layer (:mod:`obliviate.finer.calibration`). To keep a fifth of ``D_f`` unseen for it, the
   calibrated model is forgotten on the other four fifths (the search's split).

Which combination is "ours" by default is :data:`OURS_DEFAULTS`; the measurements that choose
it are written to docs/results/finer-forgetting.md by ``scripts/finer_ours.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from obliviate.errors import ObliviateError
from obliviate.finer.calibration import (
    CALIBRATIONS,
    calibration_targets,
    SCALE_GRID,
    LogitCalibration,
    fit_logit_calibration,
    fold_calibration,
    search_validation,
    subset,
)
from obliviate.finer.forgetting import ForgetSettings, selective_forget
from obliviate.finer.splits import FinerData, TrainTest
from obliviate.finer.tuning import SEARCH_RANGES
from obliviate.models import Classifier

#: The forgetting methods of ``obliviate backdoor``: the paper's loss, or ours beside it.
FINER_METHODS: tuple[str, ...] = ("paper", "ours")

#: Ours before any measurement chose otherwise, per pattern: (forgetting term, lambda_other,
#: calibration). Searched runs replace ``lambda_other`` (``OURS_LAMBDA_OTHER_RANGE``).
OURS_DEFAULTS: dict[str, tuple[str, float, str]] = {
    "B": ("rld", 1.0, "offset"),
    "C": ("clean-self", 1.0, "offset"),
}

#: ``obliviate backdoor``'s method per pattern when none is given and :data:`OURS_SEARCHED` has
#: no settings for the case (see :func:`default_method`): the paper's loss, the reproduction.
#: Pattern C is ours everywhere: on Fashion-MNIST C line ours met every goal on all three seeds
#: where the paper's loss met none on the held-out seeds (docs/results/finer-forgetting.md,
#: "Ours beside the paper's method").
DEFAULT_METHODS: dict[str, str] = {"A": "paper", "B": "paper", "C": "ours"}

#: Our settings as scripts/finer_ours.py's search found them on seed 0 (job
#: ``ours-TERM@narrow``), per (dataset, transform, pattern, term): (lr, lambda_KL, lambda_f,
#: lambda_other), kept only where that job (offset calibration) came closest to the goals on
#: the held-out seeds. Worst goal margin with the default maximin aim: C line +1.3 (met), C
#: tile -2.8 (-0.6 with the goal-count aim), B line -5.8 (the paper's loss without a
#: calibration: -12.1). There ``obliviate backdoor`` defaults to ours (:func:`default_method`).
#: Elsewhere ours starts from the paper's Table S1 settings and :data:`OURS_DEFAULTS`'
#: ``lambda_other``; B tile is not here: its closest was the paper's loss with a maximin
#: offset+scale (-15.2), not ours' searched settings.
OURS_SEARCHED: dict[tuple[str, str, str, str], tuple[float, float, float, float]] = {
    ("fashion-mnist", "line", "C", "clean-self"): (1.129713e-5, 6.955061e5, 0.3951098, 0.3806906),
    ("fashion-mnist", "tile", "C", "clean-self"): (6.789312e-6, 9.872872e3, 0.4252483, 0.04115188),
    ("fashion-mnist", "line", "B", "rld"): (3.251805e-5, 1.109438e5, 0.2940745, 0.4569681),
}


def default_method(pattern: str, dataset: str, transform: str) -> str:
    """``obliviate backdoor``'s method when none is given: ``ours`` where :data:`OURS_SEARCHED`
    has measured settings for the dataset, transform, pattern and ours' default term, else the
    pattern's :data:`DEFAULT_METHODS`."""
    if pattern in OURS_DEFAULTS and (dataset, transform, pattern,
                                     OURS_DEFAULTS[pattern][0]) in OURS_SEARCHED:  # fmt: skip
        return "ours"
    return DEFAULT_METHODS[pattern]


#: Where the search looks for ``lambda_other`` (log-uniform): the search's default range.
OURS_LAMBDA_OTHER_RANGE: tuple[float, float] = SEARCH_RANGES["lambda_other"]


def ours_settings(base: ForgetSettings, *, term: str | None = None,
                  lambda_other: float | None = None,
                  searched: tuple[str, str] | None = None) -> ForgetSettings:  # fmt: skip
    """``base`` (the paper's or searched settings) with our term and ``lambda_other``; each
    ``None`` takes :data:`OURS_DEFAULTS` for the pattern.

    Args:
        searched: ``(dataset, transform)``: where :data:`OURS_SEARCHED` has settings for them,
            the pattern and the term, take its lr, lambda_KL, lambda_f and lambda_other (an
            explicit ``lambda_other`` still wins).
    """
    if base.pattern not in OURS_DEFAULTS:
        raise ObliviateError("our method is for patterns B and C; Pattern A forgets the samples "
                             "themselves: use method 'paper'")  # fmt: skip
    default_term, default_other, _ = OURS_DEFAULTS[base.pattern]
    term = term if term is not None else default_term
    found = OURS_SEARCHED.get((*searched, base.pattern, term)) if searched else None
    if found is not None:
        lr, lambda_kl, lambda_f, default_other = found
        base = dataclasses.replace(base, lr=lr, lambda_kl=lambda_kl, lambda_f=lambda_f)
    return dataclasses.replace(
        base, term=term,
        lambda_other=lambda_other if lambda_other is not None else default_other)  # fmt: skip


@dataclass(frozen=True)
class CalibratedForget:
    """The result of :func:`calibrated_forget`: the forgotten model before and after the
    calibration was folded in, and the calibration (``None`` for ``calibration="none"``)."""

    uncalibrated: Classifier
    model: Classifier
    calibration: LogitCalibration | None


def calibrated_forget(
    model: Classifier,
    data: FinerData,
    settings: ForgetSettings,
    *,
    fisher: dict | None = None,
    calibration: str = "offset",
    aim: str = "maximin",
    retain_val: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> CalibratedForget:
    """Forget with ``settings``, then fit and fold the logit calibration.

    With a calibration, the forgetting trains on four fifths of ``D_f`` / ``D_f,clean``'s
    training part; the held-out fifth, ``retain_val`` samples of ``D_r``'s training part and
    their transformed copies are the validation sets the calibration is fitted on (the split
    :func:`obliviate.finer.tuning.tune` uses with the same ``seed``). The test parts are never
    read. Without one (``"none"``), this is :func:`selective_forget` on all of ``D_f``.

    Args:
        model: the pretrained (poisoned) model; left untouched.
        data: the four sets.
        settings: the loss and its hyperparameters (the paper's or ours, see
            :func:`ours_settings`); patterns B and C.
        fisher: the pretraining Fisher, if already computed.
        calibration: ``none``, ``offset`` or ``offset+scale``.
        aim: what the calibration maximises: ``goals`` (how many of the pattern's goals the
            validation sets reach, then the lowest margin above them), ``maximin`` (the lowest
            margin above them alone, the default: on Fashion-MNIST's held-out seeds its worst
            goal margin beat ``goals``' on 17 of 24 (pattern, transform, loss, calibration)
            rows, tied on 2 and lost on 5 by at most 3.1 points, where ``goals`` fell as far as
            -88; docs/results/finer-forgetting.md) or ``min`` (the lowest validation accuracy,
            the search's score).
        retain_val: how many ``D_r`` training samples stand in for ``D_r^val``.
        seed: which validation split (the search's seed).
    """
    if calibration not in CALIBRATIONS:
        raise ObliviateError(f"unknown calibration {calibration!r}; known: "
                             f"{', '.join(CALIBRATIONS)}")  # fmt: skip
    if calibration == "none":
        out = selective_forget(model, data, settings, fisher=fisher, progress=progress)
        return CalibratedForget(out, out, None)
    if settings.pattern not in ("B", "C"):
        raise ObliviateError("the logit calibration is for patterns B and C; use calibration "
                             "'none' for Pattern A")  # fmt: skip
    val = search_validation(data, retain_val=retain_val, seed=seed)
    kept, held = val.folds[0]
    train_only = dataclasses.replace(
        data,
        forget=TrainTest(subset(data.forget.train, kept), data.forget.test),
        forget_clean=TrainTest(subset(data.forget_clean.train, kept), data.forget_clean.test),
    )  # fmt: skip
    forgotten = selective_forget(model, train_only, settings, fisher=fisher, progress=progress)
    scales = SCALE_GRID if calibration == "offset+scale" else (1.0,)
    targets = calibration_targets(model, val.retain, settings.pattern, aim)
    fitted = fit_logit_calibration(forgotten, val.sets(data), settings.pattern, data.classes,
                                   scales=scales, targets=targets,
                                   reached_first=aim != "maximin")  # fmt: skip
    return CalibratedForget(forgotten, fold_calibration(forgotten, fitted), fitted)
