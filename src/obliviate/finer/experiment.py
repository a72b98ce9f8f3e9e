"""Poison -> forget -> report: the experiment behind ``obliviate backdoor``.

Pattern A compares the paper's RND, RLD and truncation (Table 2). Patterns B and C compare,
as the paper's Fig. 4 does: ``CE`` (``L_c`` only), ``CE+Fisher`` (``L_c + lambda_KL R``) and
``CE+Fisher+RLD`` (the full loss, or ``+RND`` with ``term="rnd"``). Accuracy is measured on the
test parts of the four sets, before and after.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from obliviate import api
from obliviate.data import Dataset
from obliviate.errors import warn_goal_missed
from obliviate.finer.forgetting import (
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
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
    term: str = "rld",
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
    progress: bool = True,
) -> dict[str, Any]:
    """Pretrain on ``D_r ∪ D_f`` (the poisoned data), forget with the pattern, and report.

    Args:
        dataset: registered name or :class:`Dataset`.
        classes: the classes whose samples carry ``transform``.
        transform: ``line``, ``tile``, ``color``.
        pattern: ``A`` (forget the samples), ``B`` (backdoor), ``C`` (leakage).
        term: forgetting term ``rld`` or ``rnd``.
        pretrain: the poisoned model's training (default 10 epochs, SGD lr 0.01).
        tune_trials: Optuna trials (0: the paper's Table S1 values, or A's lr 1e-5, λ_KL 1e5).
        tune_split, tune_folds: the search's validation: ``holdout`` (the paper's 20 / 80) or
            ``kfold`` with ``tune_folds`` folds.
        tune_storage: Optuna storage URL (``sqlite:///path.db``) to resume an interrupted search.
        model_kwargs: extra arguments of the model (``{"activation": "continuous"}``).
        fisher_on: the remembering term's Fisher over ``retain`` (``D_r``, the paper's
            experiments) or ``pretraining`` (``D_f ∪ D_r``, its Eq. 7).
        settings: explicit ``lr``/``lambda_kl``/``lambda_f``/``epochs`` overriding both.

    Returns:
        A JSON-ready dict: the settings used, accuracy of every variant on the four test sets,
        seconds of each forgetting run, the tuning trials if any, and ``goal`` (whether the
        main variant met its goal; a :class:`~obliviate.errors.GoalMissedWarning` when not).
    """
    data_obj = api.resolve_dataset(dataset, data_dir)
    data = build_finer_data(data_obj, classes, transform)
    pretraining = Dataset(f"{data_obj.name}+{transform}", data.pretraining(), data_obj.test,
                          data_obj.num_classes, data_obj.input_shape)  # fmt: skip
    config = dataclasses.replace(pretrain or TrainConfig(), seed=seed)
    poisoned = api.train(pretraining, model, config=config, codes=None, progress=progress,
                         model_kwargs=model_kwargs).model  # fmt: skip
    fisher = pretraining_fisher(poisoned, data, on=fisher_on)
    base = paper_settings(data_obj.name, transform, pattern, term=term, seed=seed)
    tuning = None
    if tune_trials > 0:
        tuning = tune(poisoned, data, base, fisher, trials=tune_trials, split=tune_split,
                      folds=tune_folds, seed=seed, storage=tune_storage)  # fmt: skip
        base = tuning.best
    if settings:
        base = dataclasses.replace(base, **settings)
    variants: dict[str, ForgetSettings | str] = {}
    if pattern == "A":
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
    for label, variant in variants.items():
        if variant == "truncation":
            results[label] = accuracies(poisoned, data, truncate=list(data.classes))
            continue
        start = time.perf_counter()
        forgotten = selective_forget(poisoned, data, variant, fisher=fisher, progress=progress)
        seconds[label] = time.perf_counter() - start
        results[label] = accuracies(forgotten, data)
    main = ("RLD" if term == "rld" else "RND") if pattern == "A" else list(variants)[-1]
    percent = {label: {k: 100.0 * v for k, v in accs.items()} for label, accs in results.items()}
    goal = backdoor_goal(pattern, percent["pretrained"], percent[main], main)
    if not goal["met"]:
        warn_goal_missed(f"{main} missed its goal ({goal['criterion']}); try other settings "
                         "(settings=..., tune_trials=N)")  # fmt: skip
    return {
        "goal": goal,
        "accuracy_unit": "%",
        "dataset": data_obj.name, "classes": list(data.classes), "transform": data.transform,
        "pattern": pattern, "term": term, "model": model, "model_kwargs": model_kwargs or {},
        "fisher_on": fisher_on,
        "seed": seed,
        "pretrain": dataclasses.asdict(config), "settings": dataclasses.asdict(base),
        "accuracy": percent, "seconds": seconds,
        "tuning": None if tuning is None else {"best_score": tuning.best_score,
                                                "trials": tuning.trials},
        "device": str(next(poisoned.parameters()).device),
        "torch": torch.__version__,
    }  # fmt: skip


#: How far the retained data's accuracy may fall, and the forget set's must fall, for a run to
#: count as having met its goal (percentage points; the bounds the finer-forgetting results page
#: is judged by).
MAX_RETAIN_DROP = 10.0
MAX_FORGOTTEN_ACC = 20.0


def backdoor_goal(pattern: str, before: dict[str, float], after: dict[str, float],
                  variant: str) -> dict[str, Any]:  # fmt: skip
    """Whether ``variant`` met its pattern's goal (accuracies in %).

    Pattern A (forget samples): D_f accuracy below ``MAX_FORGOTTEN_ACC``. Patterns B and C
    (backdoor, leakage): accuracy on the transformed retained data (D_r,extra) back at least
    half way from the poisoned model's to its clean D_r accuracy. Both: D_r within
    ``MAX_RETAIN_DROP`` points of the poisoned model's.
    """
    keeps = after["D_r"] >= before["D_r"] - MAX_RETAIN_DROP
    if pattern == "A":
        target = f"D_f below {MAX_FORGOTTEN_ACC:g} %"
        reached = after["D_f"] < MAX_FORGOTTEN_ACC
    else:
        half = before["D_r,extra"] + 0.5 * (before["D_r"] - before["D_r,extra"])
        target = f"D_r,extra at least {half:.1f} % (half way to the poisoned model's D_r)"
        reached = after["D_r,extra"] >= half
    return {"variant": variant, "criterion": f"{target}; D_r within {MAX_RETAIN_DROP:g} points "
            f"of {before['D_r']:.1f} %", "met": bool(reached and keeps)}  # fmt: skip
