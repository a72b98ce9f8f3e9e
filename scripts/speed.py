"""How long a calibrated `obliviate.forget` takes, against the floor, SSD and retraining.

    python scripts/speed.py --models runs/reliability/fc-s0.safetensors,runs/reliability/convnet-s0.safetensors

For each model (forgetting class 0) it prints:

floor       one forward+backward pass over the model's codes plus two forward passes (the least
            any Fisher-from-codes method must do), median of warm repetitions
forget      `obliviate.forget(bundle, [0])` as a caller waits for it: validation, cloning, the
            calibrated method, verification, weight hashes and the audit record (warm, median);
            the default without data (depth auto: the deep edit's kept-class bound is computed
            and, failing, the output-only step is taken)
deep forget the same call with `depth="features"` (the edit of the last feature layer and the
            head step on it; `force=True`, since without data it cannot verify the kept classes)
sha256      one SHA-256 of the model's weights computed afresh (`weights_sha256(..., reuse=False)`);
            the audit record needs two, but a warm forget computes only the output's: the
            input's is remembered from the last time those very tensors were hashed
method      the method's own part of that call (the audit record's `seconds`)
cli         a fresh `obliviate forget` process: its wall time, and the record's `seconds`
ssd         `obliviate.forget(..., method="ssd", data=...)` once (the method's own time)
retrain     `obliviate.forget(..., method="retrain", data=...)` once (the method's own time);
            `--retrain-epochs` shortens it, and the table says how many epochs ran

and each time as a multiple of the floor and of the calibrated forget. It prints a Markdown
table; `--out` also writes it to a file. `--clock cpu` times the floor, forget and sha256 by the
process's CPU time instead of the wall clock (steadier on a machine shared with other work);
`--no-baselines` leaves out the cli, ssd and retrain columns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import obliviate
from obliviate.checkpoint import weights_sha256


CLOCK = time.perf_counter


def median_time(fn, repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return statistics.median(times)


def floor(bundle: obliviate.ModelBundle) -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="runs/reliability/fc-s0.safetensors,"
                        "runs/reliability/convnet-s0.safetensors")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--retrain-epochs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(int(os.environ.get("OBLIVIATE_THREADS", torch.get_num_threads())))
    lines = [
        "# Speed of the calibrated forget",
        "",
        f"Produced by `python scripts/speed.py --models {args.models}"
        + (f" --retrain-epochs {args.retrain_epochs}" if args.retrain_epochs else "")
        + (" --clock cpu" if args.clock == "cpu" else "")
        + ("" if args.baselines else " --no-baselines") + "`; "
        "each column is defined in the script's docstring. Forget class 0. The goal: a warm "
        "`obliviate.forget` within 3x the floor.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU. "
        f"Median of {args.repeats} warm repetitions unless said otherwise"
        + (", timed by the process's CPU time." if args.clock == "cpu" else "."),
        "",
        "| model | floor ms | forget ms (x floor) | method ms (x floor) | deep forget ms (x floor) "
        "| sha256 ms | cli wall ms | cli method ms | ssd s (x forget) | retrain s (x forget) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in [Path(p) for p in args.models.split(",") if p]:
        bundle = obliviate.load(path)
        data = obliviate.load_dataset(bundle.dataset)
        t_floor = median_time(floor(bundle), args.repeats)
        bundle.model.zero_grad(set_to_none=True)  # the floor's gradients are no part of a forget
        seconds = []

        def forget_once() -> None:
            out = obliviate.forget(bundle, [0], device="cpu", progress=False)
            seconds.append(out.history[-1]["seconds"])

        t_forget = median_time(forget_once, args.repeats)
        t_method = statistics.median(seconds)
        t_deep = None
        if bundle.stats is not None and bundle.stats.layer is not None:
            t_deep = median_time(lambda: obliviate.forget(
                bundle, [0], device="cpu", progress=False, depth="features", force=True),
                args.repeats)  # fmt: skip
        t_hash = median_time(lambda: weights_sha256(bundle.model, reuse=False), args.repeats)
        row = (f"| {path.name} ({bundle.arch}) | {t_floor * 1e3:.2f} | {t_forget * 1e3:.2f} "
               f"({t_forget / t_floor:.1f}x) | {t_method * 1e3:.2f} ({t_method / t_floor:.1f}x) | "
               + ("-" if t_deep is None else f"{t_deep * 1e3:.2f} ({t_deep / t_floor:.1f}x)")
               + f" | {t_hash * 1e3:.2f} |")  # fmt: skip
        if not args.baselines:
            lines.append(row + " - | - | - | - |")
            print(lines[-1], flush=True)
            continue
        cli_wall, cli_method = cli_time(path)
        ssd = obliviate.forget(bundle, [0], method="ssd", data=data, device="cpu",
                               progress=False, force=True).history[-1]["seconds"]  # fmt: skip
        hp = {"epochs": args.retrain_epochs} if args.retrain_epochs else {}
        retrained = obliviate.forget(bundle, [0], method="retrain", data=data, device="cpu",
                                     progress=False, force=True, **hp)  # fmt: skip
        retrain = retrained.history[-1]["seconds"]
        epochs = retrained.history[-1]["hyperparameters"].get("epochs") or "model's"
        lines.append(
            f"{row} {cli_wall * 1e3:.0f} | "
            f"{cli_method * 1e3:.1f} | {ssd:.2f} ({ssd / t_forget:.0f}x) | {retrain:.1f} "
            f"({retrain / t_forget:.0f}x; {epochs} epochs) |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
