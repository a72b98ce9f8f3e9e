"""Three smaller runs that docs/results/finer-forgetting.md quotes.

``diagnose`` (``scripts/finer_diagnose.py``): where Pattern B/C's lost D_r accuracy goes. For
one seed, the full loss at Table S1 and at the searched settings (read from
:mod:`~obliviate.experiments.finer_full`'s rows), the share of D_r's test errors predicted as
the poisoned class, and D_r's accuracy when that class's output is ignored::

    python scripts/finer_diagnose.py --runs runs/finer-full --pattern B --transform tile

``pattern_a_grid`` (``scripts/pattern_a_grid.py``, about 6 minutes on 2 CPU cores): Pattern A
settings on Fashion-MNIST. Pretrain the paper's MLP (seed 0, as ``obliviate backdoor`` does),
then run RLD at several lr / lambda_KL and print D_r / D_f test accuracy, with the pretraining
Fisher's largest entry (SGD with momentum 0.9 on the EWC term is stable only while
lr * 2 lambda_KL max F < 3.8).

``backdoor_tables`` (``scripts/finer_results.sh``, the earlier runs through the CLI): mean ± std
of the ``obliviate backdoor`` reports OUT/B-tile-sN.json and OUT/A-sN.json over seeds 0 1 2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

import obliviate
from obliviate import ObliviateError
from obliviate.data import Dataset
from obliviate.experiments.engine import markdown_table, read_rows
from obliviate.experiments.finer_full import SETS
from obliviate.finer import ForgetSettings, accuracies, build_finer_data, pretraining_fisher
from obliviate.finer.forgetting import selective_forget, truncated_predict
from obliviate.finer.tuning import paper_settings
from obliviate.training import fit, predict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiagnoseOptions:
    runs: Path = field(default=Path("runs/finer-full"), metadata={"type": Path})
    pattern: str = "B"
    transform: str = "tile"
    seed: int = 0
    fisher: str = "retain"
    data_dir: Path | None = field(default=None, metadata={"type": Path})


def diagnose(options: DiagnoseOptions) -> None:
    """Writes RUNS/diagnose-PATTERN-TRANSFORM-SEED.json (module doc)."""
    rows = read_rows(options.runs / "results.jsonl")
    search = next(r for r in rows if r["kind"] == "search" and r["pattern"] == options.pattern
                  and r["transform"] == options.transform
                  and r.get("fisher") == options.fisher)  # fmt: skip
    base = paper_settings("fashion-mnist", options.transform, options.pattern, seed=options.seed)
    settings = {"table-s1": base, "searched": dataclasses.replace(base, **search["best"])}

    raw = obliviate.load_dataset("fashion-mnist", data_dir=options.data_dir)
    data = build_finer_data(raw, [0], options.transform)
    torch.manual_seed(options.seed)
    net = obliviate.create_model("hardtanh-mlp", input_shape=raw.input_shape, num_classes=10)
    fit(net, data.pretraining().x, data.pretraining().y,
        obliviate.TrainConfig(epochs=10, seed=options.seed), progress=False)  # fmt: skip
    net.eval()
    fisher = pretraining_fisher(net, data, on=options.fisher)
    test = data.retain.test
    out = {"pattern": options.pattern, "transform": options.transform, "seed": options.seed,
           "fisher": options.fisher}  # fmt: skip
    models = {"pretrained": net}
    for name, s in settings.items():
        models[name] = selective_forget(net, data, s, fisher=fisher)
    for name, model in models.items():
        pred = predict(model, test.x)
        wrong = pred != test.y
        masked = truncated_predict(model, test.x, list(data.classes))
        out[name] = {
            "D_r": 100 * float((~wrong).float().mean()),
            "errors_to_class_0_pct": 100 * float((pred[wrong] == 0).float().mean()),
            "D_r_with_class_0_ignored": 100 * float((masked == test.y).float().mean()),
        }
        log.info("%s", json.dumps({name: out[name]}))
    path = options.runs / f"diagnose-{options.pattern}-{options.transform}-{options.seed}.json"
    path.write_text(json.dumps(out, indent=1))
    log.info("wrote %s", path)


@dataclass(frozen=True)
class GridOptions:
    """None: the grid is fixed (module doc)."""


def pattern_a_grid(options: GridOptions) -> None:
    data = obliviate.load_dataset("fashion-mnist")
    finer = build_finer_data(data, [0], "none")
    pre = Dataset("fashion-mnist+none", finer.pretraining(), data.test, data.num_classes,
                  data.input_shape)  # fmt: skip
    model = obliviate.train(pre, "hardtanh-mlp", config=obliviate.TrainConfig(seed=0),
                            codes=None, progress=False).model  # fmt: skip
    fisher = pretraining_fisher(model, finer)
    max_f = max(float(f.max()) for f in fisher.values())
    base = accuracies(model, finer)
    log.info("max F = %.3f; pretrained D_r %.1f / D_f %.1f\n", max_f, 100 * base["D_r"],
             100 * base["D_f"])  # fmt: skip
    body = []
    for lr, lam in [(1e-3, 1e5), (1e-3, 1e3), (1e-3, 1e4), (3e-4, 1e4), (3e-4, 3e4),
                    (1e-4, 1e5), (1e-5, 1e5)]:  # fmt: skip
        try:
            out = selective_forget(model, finer, ForgetSettings(lr=lr, lambda_kl=lam),
                                   fisher=fisher)  # fmt: skip
            acc = accuracies(out, finer)
            cell = f"{100 * acc['D_r']:.1f} / {100 * acc['D_f']:.1f}"
        except ObliviateError as exc:
            cell = f"diverged ({exc})"
        body.append([f"{lr:g} / {lam:g}", f"{lr * 2 * lam * max_f:.2f}", cell])
    header = ["lr / λ_KL", "lr·2λ_KL·max F", "D_r / D_f"]
    log.info("%s", "\n".join(markdown_table(header, body)))


@dataclass(frozen=True)
class ReportsOptions:
    out: Path = field(default=Path("runs/finer"), metadata={
        "positional": True, "type": Path, "nargs": "?", "help": "the reports' folder"})  # fmt: skip


def _report_table(out: Path, files: list[str]) -> list[str]:
    reports = [json.loads((out / f).read_text()) for f in files]
    # reports written before accuracies became percentages hold fractions
    scale = [1 if r.get("accuracy_unit") == "%" else 100 for r in reports]
    body = []
    for label in reports[0]["accuracy"]:
        cells = []
        for s in SETS:
            vals = [k * r["accuracy"][label][s] for k, r in zip(scale, reports)]
            cells.append(f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"
                         if len(vals) > 1 else f"{vals[0]:.1f}")  # fmt: skip
        body.append([label, *cells])
    return markdown_table(["model", *SETS], body) + [""]


def backdoor_tables(options: ReportsOptions) -> None:
    seeds = (0, 1, 2)
    log.info("%s", "\n".join([
        "Pattern B, tile, seeds 0 1 2 (test accuracy %, mean ± std):", "",
        *_report_table(options.out, [f"B-tile-s{s}.json" for s in seeds]),
        "Pattern A, class 0, seeds 0 1 2 (test accuracy %, mean ± std):", "",
        *_report_table(options.out, [f"A-s{s}.json" for s in seeds])]))  # fmt: skip
