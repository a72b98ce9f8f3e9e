"""LIRF's multi-deposit experiment (supplement Tables 2 and 3) over training seeds, for
docs/results/recoverable-forgetting.md.

    scripts/lirf_results.sh digits runs/lirf-digits          # seeds 0 1 2, then the table
    python scripts/lirf_results.py --dataset digits --runs runs/lirf-digits [--seeds 0]
        [--epochs 30 --lr 0.01] [--d1 0,1 --d2 2,3] [--hp KEY=VALUE ...] [--no-inverse]

Per seed it trains the original conv net (kept as ORIGINALS/sN/original.safetensors, ORIGINALS
being RUNS unless ``--originals`` says otherwise, and reused when it is there), then deposits
two class sets D1 and D2:
  single:        T0 -D1-> T
  once:          T0 -{D1, D2}-> T, two modules
  sequence:      T0 -D1-> T1 -D2-> T
  sequence-inv:  T0 -D2-> T1 -D1-> T
and withdraws from the sequence target at once, M1 then M2, and M2 then M1 (``--no-inverse``
skips sequence-inv, two deposits fewer). One row per seed (every figure, test accuracy %) goes
to RUNS/results.jsonl and is printed as a table; ``table`` prints the mean ± std over the seeds
(and writes it to ``--out`` when given).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import obliviate
from obliviate.experiments.engine import (
    Page,
    Results,
    ints,
    markdown_table,
    mean_std,
    run_queue,
    write_page,
)
from obliviate.recoverable import LIRFSettings, deposit_bundle, lirf_accuracy, withdraw

log = logging.getLogger(__name__)
COLUMNS = ("pre_acc", "d1_acc", "d2_acc", "h_mean", "avg_acc")
HEADER = ["order", "process", "Pre Acc", "D1 Acc", "D2 Acc", "H Mean", "Avg Acc"]


@dataclass(frozen=True)
class LirfOptions:
    dataset: str = "digits"
    model: str = "convnet"
    epochs: int = field(default=30, metadata={"help": "original training epochs"})
    lr: float = field(default=0.01, metadata={"help": "original training lr"})
    d1: tuple[int, ...] = field(default=(0, 1), metadata={"type": ints})
    d2: tuple[int, ...] = field(default=(2, 3), metadata={"type": ints})
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"type": ints})
    no_inverse: bool = field(default=False, metadata={"help": "skip sequence-inv"})
    hp: list[str] = field(default_factory=list, metadata={
        "action": "append", "help": "LIRF setting KEY=VALUE"})  # fmt: skip
    originals: Path | None = field(default=None, metadata={
        "type": Path, "help": "the folder of sN/original.safetensors (default: RUNS)"})  # fmt: skip

    def settings(self, seed: int) -> LIRFSettings:
        return LIRFSettings.from_strings(dict(item.split("=", 1) for item in self.hp), seed=seed)

    def key(self, seed: int) -> dict:
        """A seed's row key: what its figures depend on (the settings as JSON reads them)."""
        settings = json.loads(json.dumps(dataclasses.asdict(self.settings(seed))))
        return {"dataset": self.dataset, "model": self.model, "seed": seed,
                "d1": list(self.d1), "d2": list(self.d2), "settings": settings,
                "inverse": not self.no_inverse}  # fmt: skip


def _original(options: LirfOptions, folder: Path, seed: int,
              data: obliviate.Dataset) -> obliviate.ModelBundle:  # fmt: skip
    path = folder / f"s{seed}" / "original.safetensors"
    if path.exists():
        return obliviate.load(path)
    torch.manual_seed(seed)
    original = obliviate.train(data, options.model, codes=None, progress=False,
                               config=obliviate.TrainConfig(epochs=options.epochs, lr=options.lr,
                                                            seed=seed))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    obliviate.save(original, path)
    return original


def deposits(options: LirfOptions, key: dict, original: obliviate.ModelBundle,
             data: obliviate.Dataset) -> dict:  # fmt: skip
    """One seed's row: every deposit and withdrawal of the module doc, on the test split."""
    d1, d2, settings = key["d1"], key["d2"], options.settings(key["seed"])
    x, y = data.test.x, data.test.y

    def row(label: str, bundle: obliviate.ModelBundle, deposited: list[int], kind: str) -> dict:
        m = lirf_accuracy(bundle.model, x, y, deposited)
        acc = m["per_class"]
        mean = lambda cs: sum(acc[c] for c in cs) / len(cs)  # noqa: E731
        return {"order": label, "process": kind, "pre_acc": m["pre_acc"],
                "d1_acc": mean(d1), "d2_acc": mean(d2), "h_mean": m["h_mean"],
                "avg_acc": m["avg_acc"], "deposited": deposited}  # fmt: skip

    # the original's Pre Acc over the same classes as each later row: D1 out, then D1 and D2 out
    rows = [row("original", original, d1, "Pre: D1 out"),
            row("original", original, d1 + d2, "Pre: D1+D2 out")]
    seconds = {}

    def run(sets, source):
        start = time.perf_counter()
        out = deposit_bundle(source, data, sets, settings)
        seconds[f"{sets}"] = time.perf_counter() - start
        return out

    target, (m1,), _ = run([d1], original)
    rows.append(row("single", target, d1, "deposit"))
    rows.append(row("single", withdraw(target, [m1]), d1, "withdraw"))

    target, (m1, m2), _ = run([d1, d2], original)
    rows.append(row("once", target, d1 + d2, "deposit"))
    rows.append(row("once", withdraw(target, [m1, m2]), d1 + d2, "withdraw"))

    orders = [("sequence", d1, d2)] + ([("sequence-inv", d2, d1)] if key["inverse"] else [])
    for label, first, second in orders:
        t1, (a,), _ = run([first], original)
        rows.append(row(label, t1, first, "deposit(1)"))
        t2, (b,), _ = run([second], t1)
        rows.append(row(label, t2, d1 + d2, "deposit(2)"))
        mod = {tuple(first): a, tuple(second): b}
        k1, k2 = mod[tuple(d1)], mod[tuple(d2)]
        rows.append(row(label, withdraw(t2, [k1, k2]), d1 + d2, "withdraw once"))
        step = withdraw(t2, [k1])
        rows.append(row(label, step, d1 + d2, "withdraw M1"))
        rows.append(row(label, withdraw(step, [k2]), d1 + d2, "withdraw M1 then M2"))
        step = withdraw(t2, [k2])
        rows.append(row(label, step, d1 + d2, "withdraw M2"))
        rows.append(row(label, withdraw(step, [k1]), d1 + d2, "withdraw M2 then M1"))
    return {**key, "rows": rows, "deposit_seconds": seconds}


def seed_table(result: dict) -> str:
    """One seed's row as the table it prints."""
    body = [[r["order"], r["process"], *(f"{r[c]:.1f}" for c in COLUMNS)] for r in result["rows"]]
    return "\n".join([
        f"{result['dataset']}, {result['model']}, seed {result['seed']}; D1 = {result['d1']}, "
        f"D2 = {result['d2']} (test %)", "", *markdown_table(HEADER, body), "",
        "deposit seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in
                                        result["deposit_seconds"].items())])  # fmt: skip


def run(options: LirfOptions, runs: Path, out: Path | None) -> None:
    """Every seed whose row RUNS/results.jsonl lacks."""
    data = obliviate.load_dataset(options.dataset)
    originals = options.originals or runs

    def run_one(key: dict) -> dict:
        return deposits(options, key, _original(options, originals, key["seed"], data), data)

    run_queue(Results(runs / "results.jsonl"), [options.key(s) for s in options.seeds], run_one,
              describe=seed_table)  # fmt: skip


def table(options: LirfOptions, runs: Path, out: Path | None) -> None:
    """Mean ± std over the seeds' rows, per order and process; printed, and written to ``out``
    when given."""
    results = Results(runs / "results.jsonl")
    found = [row for row in (results.find(**options.key(s)) for s in options.seeds) if row]
    if not found:
        log.info("no rows for these settings in %s", runs / "results.jsonl")
        return
    r0 = found[0]
    body = [[row["order"], row["process"],
             *(mean_std([r["rows"][i][c] for r in found]) for c in COLUMNS)]
            for i, row in enumerate(r0["rows"])]  # fmt: skip
    secs = [v for r in found for v in r["deposit_seconds"].values()]
    text = "\n".join([
        f"{r0['dataset']}, {r0['model']}, D1 = {r0['d1']}, D2 = {r0['d2']}; test %, mean ± std "
        f"over seeds {' '.join(str(r['seed']) for r in found)}", "",
        *markdown_table(HEADER, body), "",
        f"deposit time: {min(secs):.1f}-{max(secs):.1f} s per deposit"])  # fmt: skip
    log.info("%s", text)
    if out is not None:
        write_page(out, text + "\n")


PAGE = Page(doc=__doc__, options=LirfOptions, run=run, table=table, runs=Path("runs/lirf"),
            out=None)
