"""The mnemonic paper's analyses: lambda sweeps (Fig. 3), the overlap of per-class Fisher
information with and without codes (Fig. 2), and gradient norms at the trained optimum
(Fig. 4, the check of the Laplace/Taylor assumption). Each writes its numbers as CSV and a PNG.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate import api
from obliviate.checkpoint import ModelBundle
from obliviate.data import Dataset
from obliviate.errors import ObliviateError
from obliviate.fisher import per_class_fisher

# --- Fig. 3: lambda sweeps --------------------------------------------------------------------


def lambda_sweep(
    bundle: ModelBundle,
    data: Dataset,
    forget_classes: Sequence[int],
    *,
    lambda1_values: Sequence[float],
    lambda2_values: Sequence[float],
    lambda1: float | None = None,
    lambda2: float | None = None,
    relearn_steps: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """A_R, FE, RE of ``mnemonic`` while one lambda moves and the other stays fixed.

    The fixed values default to the architecture's ``default_lambdas``.
    """
    if bundle.codes is None:
        raise ObliviateError("the lambda sweep needs a model trained with mnemonic codes")
    default1, default2 = bundle.model.default_lambdas
    fixed1 = lambda1 if lambda1 is not None else default1
    fixed2 = lambda2 if lambda2 is not None else default2
    runs = [("lambda1", v, v, fixed2) for v in lambda1_values]
    runs += [("lambda2", v, fixed1, v) for v in lambda2_values]
    rows = []
    for varied, value, l1, l2 in runs:
        out = api.forget(bundle, forget_classes, lambda1=l1, lambda2=l2, seed=seed,
                         progress=False, force=True)  # fmt: skip  (the sweep measures it)
        report = api.evaluate(out, data, forget_classes, relearn_steps=relearn_steps, seed=seed)
        rows.append({"varied": varied, "value": value, "lambda1": l1, "lambda2": l2,
                     "retain_acc": report.retain_acc, "forget_err": report.forget_err,
                     "relearn_err": report.relearn_err, "score": report.score,
                     "sign": out.history[-1]["sign"], "seconds": out.history[-1]["seconds"]})
    return rows


def plot_lambda_sweep(rows: list[dict[str, Any]], path: Path) -> None:
    """Two panels (lambda1, lambda2), log x axis, A_R / FE / RE curves."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, varied in zip(axes, ("lambda1", "lambda2")):
        part = sorted((r for r in rows if r["varied"] == varied), key=lambda r: r["value"])
        if not part:
            ax.set_visible(False)
            continue
        xs = [r["value"] for r in part]
        for key, label in (("retain_acc", "A_R"), ("forget_err", "FE"), ("relearn_err", "RE")):
            ys = [r[key] for r in part]
            if all(y is not None for y in ys):
                ax.plot(xs, ys, marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel(varied)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("%")
    fig.suptitle("mnemonic: effect of lambda1 and lambda2 (the other fixed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- Fig. 2: overlap of per-class Fisher information --------------------------------------------


def fisher_overlap(
    bundle: ModelBundle,
    data: Dataset | None = None,
    *,
    forget_class: int = 0,
    per_class: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Mean cosine similarity between the forget class's Fisher and every other class's, per
    parameter tensor. The Fisher comes from the codes if the model has them, else from
    ``per_class`` training images per class (``data`` needed)."""
    if bundle.codes is not None:
        x = bundle.codes.tensor
        y = torch.arange(bundle.num_classes)
    else:
        if data is None:
            raise ObliviateError("a model without codes needs data for its per-class Fisher")
        subset = data.train.per_class_subset(per_class, seed=seed)
        x, y = subset.x, subset.y
    fishers = per_class_fisher(bundle.model.eval(), x, y, bundle.num_classes)
    out = {}
    for name in fishers[forget_class]:
        target = fishers[forget_class][name].flatten()
        sims = [
            nn.functional.cosine_similarity(target, fishers[c][name].flatten(), dim=0).item()
            for c in range(bundle.num_classes) if c != forget_class
        ]  # fmt: skip
        out[name] = sum(sims) / len(sims)
    return out


# --- Fig. 4: gradient norms at the optimum ------------------------------------------------------


def gradient_norms(
    bundle: ModelBundle, data: Dataset, forget_classes: Sequence[int]
) -> dict[str, dict[str, float]]:
    """L2 norm, per parameter tensor, of the mean loss gradient on the training data D, on the
    forget classes' codes and on the retain classes' codes (small values support the paper's
    second-order Taylor expansion around the trained weights)."""
    if bundle.codes is None:
        raise ObliviateError("gradient norms on codes need a model trained with mnemonic codes")
    model = bundle.model.eval()
    forget = sorted(set(forget_classes))
    retain = [c for c in range(bundle.num_classes) if c not in forget]
    sets = {
        "train data D": (data.train.x, data.train.y),
        "forget codes": (bundle.codes.tensor[forget], torch.tensor(forget)),
        "retain codes": (bundle.codes.tensor[retain], torch.tensor(retain)),
    }
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    out: dict[str, dict[str, float]] = {}
    for label, (x, y) in sets.items():
        total = [torch.zeros_like(p) for _, p in params]
        for start in range(0, len(y), 1024):
            xb, yb = x[start : start + 1024], y[start : start + 1024]
            loss = nn.functional.cross_entropy(model(xb), yb, reduction="sum")
            for acc, g in zip(total, torch.autograd.grad(loss, [p for _, p in params])):
                acc += g
        out[label] = {n: (g / len(y)).norm().item() for (n, _), g in zip(params, total)}
    return out


def plot_per_layer(values: dict[str, dict[str, float]], title: str, ylabel: str, path: Path,
                   log: bool = False) -> None:  # fmt: skip
    """Grouped bars: one group per parameter tensor, one bar per series."""
    plt = _pyplot()
    series = list(values)
    layers = list(next(iter(values.values())))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, len(layers) * 1.2), 4))
    for i, name in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(layers))]
        ax.bar(xs, [values[name][layer] for layer in layers], width=width, label=name)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=30, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_rows_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Rows of dicts with the same keys as CSV."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def per_layer_rows(values: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """``{series: {layer: v}}`` as rows ``{"layer": ..., series: v, ...}``."""
    layers = list(next(iter(values.values())))
    return [{"layer": layer, **{s: values[s][layer] for s in values}} for layer in layers]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
