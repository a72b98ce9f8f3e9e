"""Hyperparameter search for selective forgetting with Optuna (Hayase et al., supplement).

Each trial proposes ``lr``, ``lambda_KL`` and (patterns B, C) ``lambda_f``; it is scored by
k-fold cross-validation: every fold forgets with 80 % of ``D_f`` / ``D_f,clean`` and measures
top-1 accuracy on the held-out 20 % and on ``D_r^val`` and ``D_r,extra^val = T(D_r^val)``.
The score is the minimum over the pattern's validation sets (Table 1 of the paper):

- B (backdoor): ``D_r^val``, ``D_f,clean^val``, ``D_r,extra^val``;
- C (leakage): ``D_r^val``, ``D_f^val``, ``D_r,extra^val``;
- A (forget the samples; our choice, the paper does not tune A): ``D_r^val`` and
  ``1 - acc(D_f^val)``.

``D_r^val`` is a random subset of ``D_r``'s training part (the paper assumes such a validation
set is available for tuning); the test parts are never used.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch

from obliviate.data import Split
from obliviate.errors import ObliviateError
from obliviate.finer.forgetting import ForgetSettings, accuracies, selective_forget
from obliviate.finer.splits import FinerData, TrainTest
from obliviate.models import Classifier

#: Table S1 of the paper: (dataset, transform, pattern) -> (lr, lambda_KL, lambda_f).
TABLE_S1: dict[tuple[str, str, str], tuple[float, float, float]] = {
    ("fashion-mnist", "line", "B"): (9.98300e-5, 4.11225e4, 1.28336),
    ("fashion-mnist", "line", "C"): (4.37727e-5, 1.05762e5, 0.45574),
    ("fashion-mnist", "tile", "B"): (9.98345e-5, 3.56290e4, 1.73782),
    ("fashion-mnist", "tile", "C"): (5.18005e-5, 2.98540e5, 0.11402),
    ("cifar10", "line", "B"): (5.34807e-5, 1.10447e5, 0.28967),
    ("cifar10", "line", "C"): (4.43790e-5, 1.03453e5, 0.38355),
    ("cifar10", "tile", "B"): (2.57835e-5, 1.53585e5, 0.52451),
    ("cifar10", "tile", "C"): (3.04986e-5, 1.95065e5, 1.74012),
    ("cifar10", "color", "B"): (4.97583e-6, 3.00688e5, 1.81124),
    ("cifar10", "color", "C"): (6.58463e-6, 3.10743e5, 1.20910),
}


def paper_settings(dataset: str, transform: str, pattern: str, **overrides) -> ForgetSettings:
    """The paper's settings: Table S1 for patterns B/C where listed, else lr 1e-5 and
    lambda_KL 1e5 (their Pattern A values)."""
    lr, lambda_kl, lambda_f = TABLE_S1.get((dataset, transform, pattern), (1e-5, 1e5, 1.0))
    return ForgetSettings(pattern=pattern, lr=lr, lambda_kl=lambda_kl, lambda_f=lambda_f,
                          **overrides)  # fmt: skip


@dataclass(frozen=True)
class TuningResult:
    """The best settings found and every trial's parameters and score."""

    best: ForgetSettings
    best_score: float
    trials: list[dict]


def _subset(split: Split, index: torch.Tensor) -> Split:
    return Split(split.x[index], split.y[index])


def pattern_score(acc: dict[str, float], pattern: str) -> float:
    """The minimum accuracy over the pattern's validation sets (see the module docstring)."""
    if pattern == "B":
        return min(acc["D_r"], acc["D_f,clean"], acc["D_r,extra"])
    if pattern == "C":
        return min(acc["D_r"], acc["D_f"], acc["D_r,extra"])
    return min(acc["D_r"], 1.0 - acc["D_f"])


def tune(
    model: Classifier,
    data: FinerData,
    base: ForgetSettings,
    fisher: dict[str, torch.Tensor],
    *,
    trials: int = 200,
    folds: int = 5,
    retain_val: int = 1000,
    seed: int = 0,
) -> TuningResult:
    """Search ``lr``, ``lambda_kl`` (and ``lambda_f`` for B/C) with Optuna's TPE sampler."""
    import optuna

    if trials < 1 or folds < 2:
        raise ObliviateError("tuning needs at least 1 trial and 2 folds")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    generator = torch.Generator().manual_seed(seed)
    n = len(data.forget.train)
    if n < folds:
        raise ObliviateError(f"D_f has {n} training samples, fewer than the {folds} folds")
    order = torch.randperm(n, generator=generator)
    fold_index = [order[i::folds] for i in range(folds)]  # k near-equal parts (20 % for k=5)
    pick = torch.randperm(len(data.retain.train), generator=generator)[:retain_val]
    retain_val_split = _subset(data.retain.train, pick)
    extra_val_split = _subset(data.retain_extra.train, pick)

    def objective(trial: optuna.Trial) -> float:
        settings = dataclasses.replace(
            base,
            lr=trial.suggest_float("lr", 1e-6, 1e-2, log=True),
            lambda_kl=trial.suggest_float("lambda_kl", 1e2, 1e6, log=True),
            lambda_f=(trial.suggest_float("lambda_f", 0.05, 5.0, log=True)
                      if base.pattern != "A" else base.lambda_f),
        )  # fmt: skip
        scores = []
        for k in range(folds):
            held = fold_index[k]
            kept = torch.cat([fold_index[j] for j in range(folds) if j != k])
            fold = dataclasses.replace(
                data,
                retain=TrainTest(retain_val_split, retain_val_split),
                retain_extra=TrainTest(extra_val_split, extra_val_split),
                forget=TrainTest(_subset(data.forget.train, kept),
                                 _subset(data.forget.train, held)),
                forget_clean=TrainTest(_subset(data.forget_clean.train, kept),
                                       _subset(data.forget_clean.train, held)),
            )  # fmt: skip
            forgotten = selective_forget(model, fold, settings, fisher=fisher)
            scores.append(pattern_score(accuracies(forgotten, fold, part="test"), base.pattern))
        return sum(scores) / len(scores)

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))  # fmt: skip
    study.optimize(objective, n_trials=trials)
    best = dataclasses.replace(base, **study.best_params)
    history = [{**t.params, "score": t.value} for t in study.trials]
    logging.getLogger(__name__).info("best %s: %.3f", study.best_params, study.best_value)
    return TuningResult(best=best, best_score=study.best_value, trials=history)
