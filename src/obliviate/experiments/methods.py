"""The methods compared on Fashion-MNIST: the tables of the runs made through the command line,
and the hyperparameter sweep of docs/methods.md.

``methods_table OUT SEEDS...`` (``scripts/fashion_mnist_methods.sh``, docs/methods.md): every
registered method at its defaults, from the ``obliviate evaluate --json`` reports
OUT/METHOD-sSEED.json and the audit records OUT/METHOD-sSEED-record.json, mean ± std over seeds.

``core_table OUT SEEDS...`` (``scripts/fashion_mnist_results.sh``, docs/results/fashion-mnist.md):
the model before and after the default forget, from OUT/before-sSEED.json and OUT/after-sSEED.json.

``sweep`` (``scripts/method_sweep.py``): unlearning methods with chosen hyperparameters on one
trained model. Each SPEC is ``method`` or ``method:{"key": value, ...}`` (JSON); data-based
methods get the dataset's training split, ``mnemonic`` and ``lwsf`` run data-free::

    python scripts/method_sweep.py --dataset fashion-mnist --seed 0 \\
        'gradient-ascent:{"lr":1e-5}' 'gradient-ascent:{"lr":1e-4,"epochs":1}' \\
        'ssd:{"alpha":30}' 'ssd:{"alpha":100}' 'ssd:{"shuffle":false}' 'lwsf:{"lr":0.1}'
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

import obliviate
from obliviate.experiments.engine import markdown_table
from obliviate.methods import METHODS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportsOptions:
    out: Path = field(default=Path("runs/fmnist-methods"),
                      metadata={"positional": True, "type": Path, "nargs": "?"})  # fmt: skip
    seeds: tuple[str, ...] = field(default=("0",), metadata={"positional": True, "nargs": "*"})


def _cell(values: list[float], key: str) -> str:
    spec = ".3f" if key == "forget_seconds" else ".2f"
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], spec)
    return f"{format(statistics.mean(values), spec)} ± {format(statistics.stdev(values), spec)}"


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def methods_table(options: ReportsOptions) -> None:
    out, seeds = options.out, options.seeds
    keys = [("score", "S"), ("retain_acc", "A_R"), ("forget_err", "FE"), ("relearn_err", "RE"),
            ("forget_seconds", "time (s)")]  # fmt: skip
    body = []
    for name in ["original", *METHODS.names()]:
        rows = [_read(out / f"{name}-s{s}.json") for s in seeds]
        seen = "-"
        if name != "original":
            d = _read(out / f"{name}-s{seeds[0]}-record.json")["data"]
            seen = ", ".join((["codes"] if d["codes"] else [])
                             + [f"{k.split('_')[0]} {d[k]}"
                                for k in ("forget_samples", "retain_samples") if d[k]])  # fmt: skip
        cells = [_cell([r[k] for r in rows if r[k] is not None], k)
                 if rows[0][k] is not None else "-" for k, _ in keys]  # fmt: skip
        body.append([name, seen, *cells])
    log.info("%s", "\n".join([
        f"seeds {' '.join(seeds)}; {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, CPU", "",
        *markdown_table(["method", "data seen", *(lbl for _, lbl in keys)], body)]))  # fmt: skip


def core_table(options: ReportsOptions) -> None:
    out, seeds = options.out, options.seeds
    keys = ["retain_acc", "forget_err", "relearn_err", "score", "forget_seconds"]
    rows = {k: [_read(out / f"{k}-s{s}.json") for s in seeds] for k in ("before", "after")}
    body = [[name, *(_cell([r[k] for r in rs if r[k] is not None], k) for k in keys)]
            for name, rs in rows.items()]  # fmt: skip
    lines = markdown_table(["model", *keys], body)
    for s, b, a in zip(seeds, rows["before"], rows["after"]):
        lines.append(f"seed {s}: per-class acc before "
                     f"{[round(v, 1) for v in b['per_class_acc'].values()]}")  # fmt: skip
        lines.append(f"seed {s}: per-class acc after  "
                     f"{[round(v, 1) for v in a['per_class_acc'].values()]}")  # fmt: skip
    log.info("%s", "\n".join(lines))


@dataclass(frozen=True)
class SweepOptions:
    specs: tuple[str, ...] = field(default=(), metadata={
        "positional": True, "nargs": "+", "help": 'method or method:{"key": value}'})  # fmt: skip
    dataset: str = "fashion-mnist"
    model: str = "fc"
    epochs: int = 10
    lr: float = 0.01
    seed: int = 0
    forget: str = field(default="0", metadata={"help": "classes to forget, e.g. 0,3"})
    relearn_steps: int = 1000


def sweep(options: SweepOptions) -> None:
    os.environ.setdefault("OBLIVIATE_NO_PROGRESS", "1")  # evaluate's relearn probe, too
    data = obliviate.load_dataset(options.dataset)
    config = obliviate.TrainConfig(epochs=options.epochs, lr=options.lr, seed=options.seed)
    codes = obliviate.CodeConfig(seed=options.seed)
    bundle = obliviate.train(data, options.model, config=config, codes=codes, progress=False)
    classes = [int(c) for c in options.forget.split(",")]
    base = obliviate.evaluate(bundle, data, classes, relearn_steps=options.relearn_steps)
    log.info("%s", "\n".join([
        f"{options.dataset} {options.model} seed {options.seed}, forget {classes}",
        *markdown_table(["method", "hyperparameters", "A_R", "FE", "RE", "S", "time (s)"], []),
        f"| original | - | {base.retain_acc:.2f} | {base.forget_err:.2f} | "
        f"{base.relearn_err:.2f} | {base.score:.2f} | - |"]))  # fmt: skip
    for spec in options.specs:
        name, _, text = spec.partition(":")
        hyper = json.loads(text) if text else {}
        free = "codes" in METHODS.get(name).needs
        out = obliviate.forget(bundle, classes, method=name, data=None if free else data,
                               seed=options.seed, progress=False, force=True, **hyper)  # fmt: skip
        r = obliviate.evaluate(out, data, classes, relearn_steps=options.relearn_steps)
        log.info("| %s | %s | %.2f | %.2f | %.2f | %.2f | %.3f |", name,
                 json.dumps(hyper) if hyper else "defaults", r.retain_acc, r.forget_err,
                 r.relearn_err, r.score, out.history[-1]["seconds"])  # fmt: skip
