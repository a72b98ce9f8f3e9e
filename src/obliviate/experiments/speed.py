"""How long a calibrated `obliviate.forget` takes, against the floor, SSD and retraining.

    python scripts/speed.py --models runs/reliability/fc-s0.safetensors,runs/reliability/convnet-s0.safetensors

For each model (forgetting class 0) it prints:

floor       one forward+backward pass over the model's codes plus two forward passes (the least
            any Fisher-from-codes method must do), median of warm repetitions
forget      `obliviate.forget(bundle, [0])` as a caller waits for it: validation, cloning, the
            calibrated method, verification, weight hashes and the audit record (warm, median);
            the default without data (depth auto: the output-only step is taken, then the deep
            edit's kept-class bound is computed and, failing, the output-only result is kept)
output      the same call with `depth="output"`: the head step alone, without the attempt at
            the deep edit (the default's result whenever that attempt is refused, as it is
            without data on every request of the depth page)
deep forget the same call with `depth="features"` (the edit of the last feature layer and the
            head step on it; `force=True`, since without data it cannot verify the kept classes)
sha256      the weights' digest computed afresh (`weights_sha256(..., reuse=False)`: one SHA-256
            per tensor and one over them); the audit record needs two, but a warm forget hashes
            only the tensors it changed: the input's tensors are compared byte for byte with the
            copies they were last hashed from, and the output's with the input's copies
            (`check_weights`), each equal one keeping its digest and its finiteness
method      the method's own part of that call (the audit record's `seconds`)
cli         a fresh `obliviate forget` process: its wall time, and the record's `seconds`
ssd         `obliviate.forget(..., method="ssd", data=...)` once (the method's own time)
retrain     `obliviate.forget(..., method="retrain", data=...)` once (the method's own time);
            `--retrain-epochs` shortens it, and the table says how many epochs ran

and each time as a multiple of the floor and of the calibrated forget. It prints a Markdown
table; `--out` also writes it to a file. Every call measures afresh unless `--runs DIR` keeps
the rows (DIR/results.jsonl, one per model and settings: a rerun skips them, and `table`
writes the page from them). `--clock cpu` times the floor, forget and sha256 by the
process's CPU time instead of the wall clock (steadier on a machine shared with other work);
`--no-baselines` leaves out the cli, ssd and retrain columns.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

import obliviate
from obliviate.checkpoint import weights_sha256
from obliviate.experiments.engine import Page, Results, run_queue, write_page

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeedOptions:
    models: str = field(default="runs/reliability/fc-s0.safetensors,"
                                "runs/reliability/convnet-s0.safetensors",
                        metadata={"help": "model files, comma-separated"})  # fmt: skip
    repeats: int = 50
    retrain_epochs: int | None = field(default=None, metadata={"type": int})
    clock: str = field(default="wall", metadata={"choices": ("wall", "cpu")})
    baselines: bool = True

    def keys(self) -> list[dict]:
        """One row key per model: the model and every setting its numbers depend on."""
        return [{"model": path, "repeats": self.repeats, "retrain_epochs": self.retrain_epochs,
                 "clock": self.clock, "baselines": self.baselines}
                for path in self.models.split(",") if path]  # fmt: skip


def median_time(fn: Callable[[], object], repeats: int, clock: Callable[[], float]) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def floor(bundle: obliviate.ModelBundle) -> Callable[[], None]:
    model = bundle.model
    codes = bundle.codes.tensor
    labels = bundle.codes.labels()

    def once() -> None:
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(codes), labels)
        loss.backward()
        with torch.no_grad():
            model(codes)
            model(codes)

    return once


def cli_time(path: Path) -> tuple[float, float]:
    exe = Path(sys.executable).with_name("obliviate")
    with tempfile.TemporaryDirectory() as tmp:
        out, report = Path(tmp) / "f.safetensors", Path(tmp) / "r.json"
        start = time.perf_counter()
        subprocess.run([str(exe), "forget", str(path), "--classes", "0", "--out", str(out),
                        "--report", str(report)], check=True, capture_output=True)  # fmt: skip
        wall = time.perf_counter() - start
        return wall, json.loads(report.read_text())["seconds"]


def machine() -> dict:
    return {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}  # fmt: skip


def measure(key: dict) -> dict:
    """One model's times (seconds), as the module doc defines them."""
    path, repeats = Path(key["model"]), key["repeats"]
    clock = time.process_time if key["clock"] == "cpu" else time.perf_counter
    bundle = obliviate.load(path)
    data = obliviate.load_dataset(bundle.dataset)
    row = {**key, "name": path.name, "arch": bundle.arch, **machine()}
    row["floor"] = median_time(floor(bundle), repeats, clock)
    bundle.model.zero_grad(set_to_none=True)  # the floor's gradients are no part of a forget
    seconds = []

    def forget_once() -> None:
        out = obliviate.forget(bundle, [0], device="cpu", progress=False)
        seconds.append(out.history[-1]["seconds"])

    row["forget"] = median_time(forget_once, repeats, clock)
    row["method"] = statistics.median(seconds)
    row["output"] = median_time(lambda: obliviate.forget(
        bundle, [0], device="cpu", progress=False, depth="output"), repeats, clock)  # fmt: skip
    row["deep"] = None
    if bundle.stats is not None and bundle.stats.layer is not None:
        row["deep"] = median_time(lambda: obliviate.forget(
            bundle, [0], device="cpu", progress=False, depth="features", force=True),
            repeats, clock)  # fmt: skip
    row["sha256"] = median_time(lambda: weights_sha256(bundle.model, reuse=False), repeats, clock)
    if not key["baselines"]:
        return row
    row["cli_wall"], row["cli_method"] = cli_time(path)
    row["ssd"] = obliviate.forget(bundle, [0], method="ssd", data=data, device="cpu",
                                  progress=False, force=True).history[-1]["seconds"]  # fmt: skip
    hp = {"epochs": key["retrain_epochs"]} if key["retrain_epochs"] else {}
    retrained = obliviate.forget(bundle, [0], method="retrain", data=data, device="cpu",
                                 progress=False, force=True, **hp)  # fmt: skip
    row["retrain"] = retrained.history[-1]["seconds"]
    row["epochs"] = retrained.history[-1]["hyperparameters"].get("epochs") or "model's"
    return row


def table_row(r: dict) -> str:
    t_floor, t_forget, t_method, t_deep = r["floor"], r["forget"], r["method"], r["deep"]
    t_output = r.get("output")  # rows measured before the column have none
    row = (f"| {r['name']} ({r['arch']}) | {t_floor * 1e3:.2f} | {t_forget * 1e3:.2f} "
           f"({t_forget / t_floor:.1f}x) | {t_method * 1e3:.2f} ({t_method / t_floor:.1f}x) | "
           + ("-" if t_output is None else f"{t_output * 1e3:.2f} ({t_output / t_floor:.1f}x)")
           + " | "
           + ("-" if t_deep is None else f"{t_deep * 1e3:.2f} ({t_deep / t_floor:.1f}x)")
           + f" | {r['sha256'] * 1e3:.2f} |")  # fmt: skip
    if not r["baselines"]:
        return row + " - | - | - | - |"
    ssd, retrain = r["ssd"], r["retrain"]
    return (f"{row} {r['cli_wall'] * 1e3:.0f} | {r['cli_method'] * 1e3:.1f} | {ssd:.2f} "
            f"({ssd / t_forget:.0f}x) | {retrain:.1f} ({retrain / t_forget:.0f}x; "
            f"{r['epochs']} epochs) |")  # fmt: skip


def run(options: SpeedOptions, runs: Path, out: Path | None) -> None:
    torch.set_num_threads(int(os.environ.get("OBLIVIATE_THREADS", torch.get_num_threads())))
    run_queue(Results(runs / "results.jsonl"), options.keys(), measure, describe=table_row)


def table(options: SpeedOptions, runs: Path, out: Path | None) -> None:
    """The page: printed, and written to ``out`` when given."""
    results = Results(runs / "results.jsonl")
    rows = [row for row in (results.find(**key) for key in options.keys()) if row is not None]
    m = rows[0] if rows else machine()
    lines = [
        "# Speed of the calibrated forget",
        "",
        f"Produced by `python scripts/speed.py --models {options.models}"
        + (f" --retrain-epochs {options.retrain_epochs}" if options.retrain_epochs else "")
        + (" --clock cpu" if options.clock == "cpu" else "")
        + ("" if options.baselines else " --no-baselines") + "`; "
        "each column is defined in the script's docstring. Forget class 0. The goal: a warm "
        "`obliviate.forget` within 3x the floor.",
        "",
        f"Machine: {m['processor']}, {m['cores']} cores, torch {m['torch']}, {m['threads']} "
        f"threads, CPU. Median of {options.repeats} warm repetitions unless said otherwise"
        + (", timed by the process's CPU time." if options.clock == "cpu" else "."),
        "",
        "| model | floor ms | forget ms (x floor) | method ms (x floor) | output forget ms "
        "(x floor) | deep forget ms (x floor) | sha256 ms | cli wall ms | cli method ms | ssd s "
        "(x forget) | retrain s (x forget) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *map(table_row, rows),
    ]
    text = "\n".join(lines) + "\n"
    log.info("%s", text)
    if out is not None:
        write_page(out, text)


PAGE = Page(doc=__doc__, options=SpeedOptions, run=run, table=table, runs=None, out=None)
