"""Poison -> forget -> report: the experiment behind ``obliviate backdoor``.

Pattern A compares the paper's RND, RLD and truncation (Table 2). Patterns B and C compare,
as the paper's Fig. 4 does: ``CE`` (``L_c`` only), ``CE+Fisher`` (``L_c + lambda_KL R``) and
``CE+Fisher+RLD`` (the full loss, or ``+RND`` with ``term="rnd"``). Accuracy is measured on the
test parts of the four sets, before and after.

``method="ours"`` (patterns B and C, :mod:`obliviate.finer.ours`) reports ``ours`` (the
calibrated model) and ``ours, no calibration`` (the same run before the calibration was folded
in). Every report states the pattern's goals (:func:`backdoor_goal`) as met or missed, and a
missed goal is a :class:`~obliviate.errors.GoalMissedWarning`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from obliviate import api
from obliviate.data import Dataset
from obliviate.checkpoint import save
from obliviate.errors import ObliviateError, warn_goal_missed
from obliviate.finer.calibration import CALIBRATIONS
from obliviate.finer.forgetting import (
    FORGETTING_TERMS,
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
)
from obliviate.finer.goals import pattern_goals
from obliviate.finer.ours import (
    DEFAULT_METHODS,
    FINER_METHODS,
    OURS_DEFAULTS,
    OURS_LAMBDA_OTHER_RANGE,
    calibrated_forget,
    default_method,
    ours_settings,
)
from obliviate.finer.splits import build_finer_data
from obliviate.finer.tuning import paper_settings, tune
from obliviate.training import TrainConfig


def run_backdoor(
    dataset: str | Dataset,
    classes: list[int],
    transform: str,
    pattern: str,
    *,
    method: str | None = None,
    term: str | None = None,
    calibration: str | None = None,
    model: str = "hardtanh-mlp",
    pretrain: TrainConfig | None = None,
    tune_trials: int = 0,
    tune_folds: int = 5,
    tune_split: str = "holdout",
    tune_storage: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    fisher_on: str = "retain",
    settings: dict[str, float] | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    save_model: str | Path | None = None,
    save_if_missed: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Pretrain on ``D_r ∪ D_f`` (the poisoned data), forget with the pattern, and report.

    Args:
        dataset: registered name or :class:`Dataset`.
        classes: the classes whose samples carry ``transform``.
        transform: ``line``, ``tile``, ``color``.
        pattern: ``A`` (forget the samples), ``B`` (backdoor), ``C`` (leakage).
        method: ``paper`` (Hayase et al.'s loss, the reproduction) or ``ours`` (patterns B and
            C: :mod:`obliviate.finer.ours`); ``None``: the pattern's
            :func:`~obliviate.finer.ours.default_method` (ours for C and where ours has
            measured settings, e.g. Fashion-MNIST B line; else the paper's).
            Ours without a search takes :data:`~obliviate.finer.ours.OURS_SEARCHED`'s settings
            where it has the dataset, transform, pattern and term.
        term: forgetting term: ``rld`` or ``rnd`` (the paper's), ``clean-old`` or
            ``clean-self`` (ours). Default: ``rld`` for the paper, else
            :data:`~obliviate.finer.ours.OURS_DEFAULTS`.
        calibration: ours only: ``none``, ``offset`` or ``offset+scale`` (default: the
            pattern's in :data:`~obliviate.finer.ours.OURS_DEFAULTS`).
        pretrain: the poisoned model's training (default 10 epochs, SGD lr 0.01).
        tune_trials: Optuna trials (0: the paper's Table S1 values, or A's lr 1e-5, λ_KL 1e5).
        tune_split, tune_folds: the search's validation: ``holdout`` (the paper's 20 / 80) or
            ``kfold`` with ``tune_folds`` folds.
        tune_storage: Optuna storage URL (``sqlite:///path.db``) to resume an interrupted search.
        model_kwargs: extra arguments of the model (``{"activation": "continuous"}``).
        fisher_on: the remembering term's Fisher over ``retain`` (``D_r``, the paper's
            experiments) or ``pretraining`` (``D_f ∪ D_r``, its Eq. 7).
        settings: explicit ``lr``/``lambda_kl``/``lambda_f``/``epochs`` (and ours'
            ``lambda_other``) overriding both.
        save_model: write the main variant's model here (``.safetensors`` bundle); with a
            calibration, the file carries it in its last layer.
        save_if_missed: write ``save_model`` also when the main variant missed its goal
            (the command line passes its ``--force``: it writes nothing on a missed goal).

    Returns:
        A JSON-ready dict: the settings used, accuracy of every variant on the four test sets,
        seconds of each forgetting run, the tuning trials if any, the fitted calibration if
        any, and ``goal`` (each of the pattern's goals, met or missed, for the main variant; a
        :class:`~obliviate.errors.GoalMissedWarning` when one is missed).
    """
    if pattern not in DEFAULT_METHODS:
        raise ObliviateError(f"unknown pattern {pattern!r}; known: {', '.join(DEFAULT_METHODS)}")
    if method is None:
        method = default_method(pattern, getattr(dataset, "name", dataset), transform)
    if method not in FINER_METHODS:
        raise ObliviateError(f"unknown method {method!r}; known: {', '.join(FINER_METHODS)}")
    if method == "ours" and pattern not in OURS_DEFAULTS:
        raise ObliviateError("our method is for patterns B and C; use method 'paper' for A")
    if method == "paper" and calibration not in (None, "none"):
        raise ObliviateError("a calibration belongs to our method: add method='ours'")
    if method == "paper" and (settings or {}).get("lambda_other", 0.0):
        raise ObliviateError("lambda_other belongs to our method: add method='ours'")
    term = term if term is not None else ("rld" if method == "paper" else OURS_DEFAULTS[pattern][0])
    if term not in FORGETTING_TERMS:
        raise ObliviateError(f"unknown forgetting term {term!r}; known: "
                             f"{', '.join(FORGETTING_TERMS)}")  # fmt: skip
    if method == "paper" and term not in ("rld", "rnd"):
        raise ObliviateError(f"the paper's loss uses rld or rnd; {term!r} belongs to our method: "
                             "add method='ours'")  # fmt: skip
    if method == "ours":
        calibration = calibration if calibration is not None else OURS_DEFAULTS[pattern][2]
        if calibration not in CALIBRATIONS:
            raise ObliviateError(f"unknown calibration {calibration!r}; known: "
                                 f"{', '.join(CALIBRATIONS)}")  # fmt: skip
    data_obj = api.resolve_dataset(dataset, data_dir)
    data = build_finer_data(data_obj, classes, transform)
    pretraining = Dataset(f"{data_obj.name}+{transform}", data.pretraining(), data_obj.test,
                          data_obj.num_classes, data_obj.input_shape,
                          class_names=data_obj.class_names)  # fmt: skip
    config = dataclasses.replace(pretrain or TrainConfig(), seed=seed)
    poisoned_bundle = api.train(pretraining, model, config=config, codes=None, progress=progress,
                                model_kwargs=model_kwargs)  # fmt: skip
    poisoned = poisoned_bundle.model
    fisher = pretraining_fisher(poisoned, data, on=fisher_on)
    base = paper_settings(data_obj.name, transform, pattern, seed=seed,
                          term=term if method == "paper" else "rld")  # fmt: skip
    if method == "ours":
        base = ours_settings(base, term=term, searched=(data_obj.name, transform))
    tuning = None
    if tune_trials > 0:
        ours = method == "ours"
        tuning = tune(poisoned, data, base, fisher, trials=tune_trials, split=tune_split,
                      folds=tune_folds, seed=seed, storage=tune_storage,
                      lambda_other_range=OURS_LAMBDA_OTHER_RANGE if ours else None,
                      calibration=calibration if ours else "none")  # fmt: skip
        base = tuning.best
    if settings:
        base = dataclasses.replace(base, **settings)
    variants: dict[str, ForgetSettings | str] = {}
    if method == "ours":
        variants["ours"] = base
    elif pattern == "A":
        variants["RLD"] = dataclasses.replace(base, term="rld")
        variants["RND"] = dataclasses.replace(base, term="rnd")
        variants["truncation"] = "truncation"
    else:
        name = "RLD" if term == "rld" else "RND"
        variants["CE"] = dataclasses.replace(base, lambda_kl=0.0, lambda_f=0.0)
        variants["CE+Fisher"] = dataclasses.replace(base, lambda_f=0.0)
        variants[f"CE+Fisher+{name}"] = base
    results: dict[str, Any] = {"pretrained": accuracies(poisoned, data)}
    seconds: dict[str, float] = {}
    models: dict[str, torch.nn.Module] = {}
    fitted = None
    for label, variant in variants.items():
        if variant == "truncation":
            results[label] = accuracies(poisoned, data, truncate=list(data.classes))
            continue
        start = time.perf_counter()
        if method == "ours":
            run = calibrated_forget(poisoned, data, variant, fisher=fisher, seed=seed,
                                    calibration=calibration, progress=progress)  # fmt: skip
            seconds[label] = time.perf_counter() - start
            fitted = run.calibration
            if fitted is not None:
                results["ours, no calibration"] = accuracies(run.uncalibrated, data)
            models[label] = run.model
        else:
            models[label] = selective_forget(poisoned, data, variant, fisher=fisher,
                                             progress=progress)  # fmt: skip
            seconds[label] = time.perf_counter() - start
        results[label] = accuracies(models[label], data)
    if method == "ours":
        main = "ours"
    else:
        main = ("RLD" if term == "rld" else "RND") if pattern == "A" else list(variants)[-1]
    percent = {label: {k: 100.0 * v for k, v in accs.items()} for label, accs in results.items()}
    goal = backdoor_goal(pattern, percent["pretrained"], percent[main], main)
    notes = backdoor_notes(pattern, list(data.classes), main, percent[main])
    if not goal["met"]:
        missed = [name for name, ok in goal.get("goals", {}).items() if not ok]
        ours_hint = " or method='ours'" if method == "paper" and pattern != "A" else ""
        warn_goal_missed(f"{main} missed its goal ({goal['criterion']})"
                         + (f": missed {'; '.join(missed)}" if missed else "")
                         + f"; try other settings (settings=..., tune_trials=N){ours_hint}")
    if save_model is not None and (goal["met"] or save_if_missed):
        record = {"action": "backdoor", "method": method, "pattern": pattern, "variant": main,
                  "classes": list(data.classes), "transform": data.transform,
                  "settings": dataclasses.asdict(base), "goal_met": goal["met"],
                  "calibration": None if fitted is None else dataclasses.asdict(fitted)}
        history = [*poisoned_bundle.history, record]
        # the poisoned model's statistics describe its weights, not the forgotten model's
        save(dataclasses.replace(poisoned_bundle, model=models[main], history=history,
                                 stats=None), save_model)  # fmt: skip
    return {
        "goal": goal,
        "notes": notes,
        "accuracy_unit": "%",
        "dataset": data_obj.name, "classes": list(data.classes), "transform": data.transform,
        "pattern": pattern, "method": method, "term": term,
        "calibration": None if fitted is None else dataclasses.asdict(fitted),
        "model": model, "model_kwargs": model_kwargs or {},
        "fisher_on": fisher_on,
        "seed": seed,
        "pretrain": dataclasses.asdict(config), "settings": dataclasses.asdict(base),
        "accuracy": percent, "seconds": seconds,
        "tuning": None if tuning is None else {"best_score": tuning.best_score,
                                                "trials": tuning.trials},
        "device": str(next(poisoned.parameters()).device),
        "torch": torch.__version__,
    }  # fmt: skip


#: Pattern C: a report notes when the main model names the classes on fewer than this many %
#: of their untransformed samples (not a goal of C, but what a user may assume).
CLEAN_NOTE_BELOW = 50.0


def backdoor_notes(pattern: str, classes: list[int], variant: str,
                   after: dict[str, float]) -> list[str]:  # fmt: skip
    """What a report should tell beside the goals (accuracies in %): on Pattern C, a model that
    names the classes only with the transform (``D_f,clean`` below :data:`CLEAN_NOTE_BELOW`)."""
    clean = after.get("D_f,clean", float("nan"))
    if pattern == "C" and clean < CLEAN_NOTE_BELOW:
        return [f"{variant} names class(es) {classes} on only {clean:.1f} % of their samples "
                "without the transform (D_f,clean): Pattern C's goals do not ask for it, but "
                "the model still needs the transform to name the class"]  # fmt: skip
    return []


#: Pattern A: how far the retained data's accuracy may fall, and the forget set's must fall, for
#: a run to count as having met its goal (percentage points).
MAX_RETAIN_DROP = 10.0
MAX_FORGOTTEN_ACC = 20.0


def backdoor_goal(pattern: str, before: dict[str, float], after: dict[str, float],
                  variant: str) -> dict[str, Any]:  # fmt: skip
    """Whether ``variant`` met its pattern's goal (accuracies in %).

    Pattern A (forget samples): D_f accuracy below ``MAX_FORGOTTEN_ACC`` and D_r within
    ``MAX_RETAIN_DROP`` points of the poisoned model's. Patterns B and C (backdoor, leakage):
    every goal of :func:`~obliviate.finer.goals.pattern_goals`, listed under ``goals`` as met
    (True) or missed.
    """
    if pattern != "A":
        goals = pattern_goals(pattern, before, after)
        return {"variant": variant, "criterion": "; ".join(goals), "goals": goals,
                "met": all(goals.values())}  # fmt: skip
    keeps = after["D_r"] >= before["D_r"] - MAX_RETAIN_DROP
    reached = after["D_f"] < MAX_FORGOTTEN_ACC
    goals = {f"D_f below {MAX_FORGOTTEN_ACC:g} %": reached,
             f"D_r within {MAX_RETAIN_DROP:g} points of {before['D_r']:.1f} %": keeps}  # fmt: skip
    return {"variant": variant, "criterion": "; ".join(goals), "goals": goals,
            "met": bool(reached and keeps)}  # fmt: skip
