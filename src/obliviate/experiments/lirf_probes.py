"""Two probes that docs/results/recoverable-forgetting.md quotes.

``ablation`` (``scripts/lirf_ablation.py``): which LIRF deposit settings keep the preserved
classes, one deposit per variant of the same model. Each variant changes some ``LIRFSettings``
from the defaults; ``paper-literal`` is our first reading of the supplement (softmax KD over the
selected logits, random labels over every class, lambda_kp = lambda_at = 1, prune ratio 0.5);
``block=2`` splits the ``convnet`` before its last conv block instead of at the head. Prints
test % for the target and the recover net, and the original's, as a markdown table; writes
OUT/ablation.json::

    python scripts/lirf_ablation.py --model runs/lirf-fmnist/original.safetensors \\
        --dataset fashion-mnist --classes 2,3 --out runs/lirf-ablation

``diagnose`` (``scripts/lirf_diagnose.py``, about a minute on 2 CPU cores): why LIRF's recover
net can lose the preserved classes. On digits with the convnet (seed 0, 30 epochs, lr 0.01),
deposit D = {0, 1} with the defaults but 100 deposit epochs (digits has 3 steps per epoch) and
the setting varied, and print:

1. target and recover-net accuracy for lambda_re in 0, 0.1, 1;
2. logit levels on the test images: the largest preserved logit of T0 and of the target, and
   the largest deposit logit of T0 and of the module path, for prune_ratio 0 and 0.5
   (lambda_re 0).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

import obliviate
from obliviate.experiments.engine import ints, markdown_table, names
from obliviate.recoverable import LIRFSettings, deposit_bundle, lirf_accuracy, withdraw
from obliviate.recoverable.pruning import split_network

log = logging.getLogger(__name__)
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "paper-literal": {"logit_loss": "kd", "random_labels": "all", "lambda_kp": "1",
                      "lambda_at": "1", "prune_ratio": "0.5"},  # fmt: skip
    "lambda_kp=1": {"lambda_kp": "1"},
    "lambda_kp=10": {"lambda_kp": "10"},
    "prune_ratio=0.5": {"prune_ratio": "0.5"},
    "lambda_at=1": {"lambda_at": "1"},
    "block=2": {"block": "2"},  # convnet: the back keeps the last conv block (the old default)
}


@dataclass(frozen=True)
class AblationOptions:
    model: Path | None = field(default=None, metadata={"type": Path, "required": True})
    dataset: str = "fashion-mnist"
    classes: tuple[int, ...] = field(default=(2, 3), metadata={"type": ints})
    variants: tuple[str, ...] = field(default=tuple(VARIANTS), metadata={
        "type": names, "help": "comma-separated names"})  # fmt: skip
    out: Path | None = field(default=None, metadata={"type": Path, "required": True})


def ablation(options: AblationOptions) -> None:
    options.out.mkdir(parents=True, exist_ok=True)
    classes = list(options.classes)
    original = obliviate.load(options.model)
    data = obliviate.load_dataset(options.dataset)
    x, y = data.test.x, data.test.y

    def scores(bundle: obliviate.ModelBundle) -> dict[str, float]:
        m = lirf_accuracy(bundle.model, x, y, classes)
        return {"pre_acc": m["pre_acc"], "dep_acc": m["dep_acc"]}

    rows = [{"variant": "original", "settings": {}, "target": scores(original),
             "recover": scores(original), "seconds": 0.0}]  # fmt: skip
    for name in options.variants:
        settings = LIRFSettings.from_strings(VARIANTS[name])
        target, modules, result = deposit_bundle(original, data, [classes], settings)
        rows.append({"variant": name, "settings": VARIANTS[name], "target": scores(target),
                     "recover": scores(withdraw(target, modules)),
                     "seconds": result.seconds})  # fmt: skip
    body = [[r["variant"], f"{r['target']['pre_acc']:.2f}", f"{r['target']['dep_acc']:.2f}",
             f"{r['recover']['pre_acc']:.2f}", f"{r['recover']['dep_acc']:.2f}",
             f"{r['seconds']:.0f}"] for r in rows]  # fmt: skip
    log.info("%s", "\n".join([
        f"{options.dataset}, {original.arch}, deposit {classes}; test %", "",
        *markdown_table(["variant", "target Pre", "target Dep", "recover Pre", "recover Dep",
                         "seconds"], body)]))  # fmt: skip
    (options.out / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")


@dataclass(frozen=True)
class DiagnoseOptions:
    """None: the probe is fixed (module doc)."""


def diagnose(options: DiagnoseOptions) -> None:
    data = obliviate.load_dataset("digits")
    torch.manual_seed(0)
    original = obliviate.train(data, "convnet", config=obliviate.TrainConfig(epochs=30, lr=0.01),
                               codes=None, progress=False)  # fmt: skip
    x, y = data.test.x, data.test.y
    dep = [0, 1]
    pre = [c for c in range(10) if c not in dep]
    o = lirf_accuracy(original.model, x, y, dep)
    lines = [f"original: Pre Acc {o['pre_acc']:.1f}, Dep Acc {o['dep_acc']:.1f}", ""]
    body = []
    for lambda_re in (0.0, 0.1, 1.0):
        settings = LIRFSettings(epochs=100, lambda_re=lambda_re)
        target, modules, _ = deposit_bundle(original, data, [dep], settings)
        t = lirf_accuracy(target.model, x, y, dep)
        r = lirf_accuracy(withdraw(target, modules).model, x, y, dep)
        body.append([f"{lambda_re:g}", f"{t['pre_acc']:.1f}", f"{t['dep_acc']:.1f}",
                     f"{r['pre_acc']:.1f}", f"{r['dep_acc']:.1f}"])  # fmt: skip
    lines += markdown_table(["lambda_re", "target Pre", "target Dep", "recover Pre",
                             "recover Dep"], body)  # fmt: skip
    lines += ["", "mean over images of the largest logit (preserved images | deposit images):", ""]
    is_pre = ~torch.isin(y, torch.tensor(dep))

    def level(z: torch.Tensor, cols: list[int]) -> str:
        top = z[:, cols].max(dim=1).values
        return f"{top[is_pre].mean():.1f} \\| {top[~is_pre].mean():.1f}"

    body = []
    for ratio in (0.0, 0.5):
        settings = LIRFSettings(epochs=100, lambda_re=0.0, prune_ratio=ratio)
        target, (module,), _ = deposit_bundle(original, data, [dep], settings)
        with torch.no_grad():
            _, back = split_network(target.model, module.info["block"])
            z0, zt, zm = original.model(x), target.model(x), back(module(x))
        body.append([f"{ratio:g}", level(z0, pre), level(zt, pre), level(z0, dep),
                     level(zm, dep)])  # fmt: skip
    lines += markdown_table(["prune_ratio", "T0 preserved", "target preserved", "T0 deposit",
                             "module deposit"], body)  # fmt: skip
    log.info("%s", "\n".join(lines))
