"""Forgetting at ImageNet scale: a 1000-class torchvision ``resnet18`` at 224x224 (random
weights: only time and memory are measured here), forgetting 1 and 10 classes, for several
chunk sizes (codes per forward pass in the calibrated default, per vectorised Fisher pass in
paper mode). Each measurement runs in a fresh process so that its peak memory is its own.

    python scripts/scale.py                                    # CPU, writes docs/results/scale.md
    python scripts/scale.py --device cuda --out docs/results/scale-gpu.md
    python scripts/scale.py --num-classes 20 --image-size 64 --out /tmp/s.md   # smoke run

Reported: the method's own seconds (what the audit record says), the forget call's wall time,
and the peak memory: resident set size on the CPU (the process's high-water mark, and its rise
over the state after set-up, model and codes built), ``torch.cuda.max_memory_allocated`` on a GPU.
The random model has no training statistics, so the forget cannot verify itself and runs with
``force=True``; verification is not what is measured here. Every call measures afresh unless
``--runs DIR`` keeps the rows (DIR/results.jsonl: a rerun skips them, ``table`` writes the page).
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from obliviate.errors import ObliviateError
from obliviate.experiments.engine import Page, Results, ints, run_queue, write_page

log = logging.getLogger(__name__)
PAPER = "v2 paper, Table 4: ResNet-18 on ImageNet forgets in 8.66 s on one RTX 3090 (paper mode)"


@dataclass(frozen=True)
class ScaleOptions:
    device: str = "cpu"
    chunks: str = field(default="16,64,256", metadata={"help": "calibrated-mode chunk sizes"})
    paper_chunks: str = field(default="8,32", metadata={
        "help": "paper-mode chunk sizes ('' skips)"})  # fmt: skip
    forget_counts: str = "1,10"
    features_chunks: str = field(default="64", metadata={
        "help": "deep-forget (depth features) chunk sizes ('' skips)"})  # fmt: skip
    num_classes: int = 1000
    image_size: int = 224

    def keys(self) -> list[dict]:
        """The rows' keys, in the page's order: mode, then chunk, then classes forgotten."""
        common = {"device": self.device, "num_classes": self.num_classes,
                  "image_size": self.image_size}  # fmt: skip
        return [{**common, "mode": mode, "chunk": chunk, "forget": k}
                for mode, chunks in (("calibrated", self.chunks), ("paper", self.paper_chunks),
                                     ("features", self.features_chunks))
                for chunk in ints(chunks) for k in ints(self.forget_counts)]  # fmt: skip


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(key: dict) -> dict:
    """One measurement, in this process (a fresh one: :func:`measure` starts it)."""
    import torch

    import obliviate
    from obliviate.codes import MnemonicCodes
    from obliviate.pretrained import source_model

    torch.manual_seed(0)
    shape = (3, key["image_size"], key["image_size"])
    num_classes, mode = key["num_classes"], key["mode"]
    bundle, _ = source_model("torchvision:resnet18", num_classes=num_classes,
                             input_shape=shape)  # fmt: skip
    bundle.codes = MnemonicCodes.generate(num_classes, shape)
    device = torch.device(key["device"])
    bundle.model.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stats_seconds = None
    if mode == "features":  # the deep forget needs the layer statistics: record them on
        # one random image per class (time and memory only), as training would on its data
        from obliviate.data import Split
        from obliviate.stats import record_statistics

        x = torch.rand(num_classes, *shape)
        y = torch.arange(num_classes)
        started = time.perf_counter()
        bundle.stats = record_statistics(bundle.model, Split(x, y), batch_size=32)
        stats_seconds = time.perf_counter() - started
        bundle.model.to(device)
    setup_rss = rss_mib()
    hyper = {"chunk_size": key["chunk"]}
    if mode == "paper":
        hyper.update(lambda1=1e-6, lambda2=0.5)  # the v1 supplement's ImageNet setting
    if mode == "features":
        hyper.update(depth="features")
    classes = list(range(key["forget"]))
    start = time.perf_counter()
    out = obliviate.forget(bundle, classes, device=device, progress=False, force=True, **hyper)
    wall = time.perf_counter() - start
    record = out.history[-1]
    row = {
        "device": key["device"], "mode": mode, "chunk": key["chunk"], "forget": key["forget"],
        "num_classes": num_classes, "image_size": key["image_size"],
        "method_seconds": record["seconds"], "wall_seconds": wall,
        "peak_rss_mib": rss_mib(), "setup_rss_mib": setup_rss,
        "threads": torch.get_num_threads(),
    }  # fmt: skip
    if stats_seconds is not None:
        row["statistics_seconds"] = stats_seconds
        # as the model file stores them (obliviate.compact), against the weights it stores
        row["statistics_mib"] = sum(t.numel() * t.element_size()
                                    for t in bundle.stats.tensors().values()) / 2**20  # fmt: skip
        row["weights_mib"] = sum(t.numel() * t.element_size()
                                 for t in bundle.model.state_dict().values()) / 2**20  # fmt: skip
        row["depth"] = record.get("depth")
    if device.type == "cuda":
        row["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        row["gpu"] = torch.cuda.get_device_name()
    return row


def measure(key: dict) -> dict:
    """:func:`worker` in a fresh process, so that its peak memory is its own."""
    cmd = [sys.executable, "-m", __name__, json.dumps(key)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        log.error("%s", done.stderr[-2000:])
        raise ObliviateError(f"worker failed: {' '.join(cmd)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(options: ScaleOptions, runs: Path, out: Path) -> None:
    run_queue(Results(runs / "results.jsonl"), options.keys(), measure)


def table(options: ScaleOptions, runs: Path, out: Path) -> None:
    results = Results(runs / "results.jsonl")
    rows = [row for row in (results.find(**key) for key in options.keys()) if row is not None]
    gpu = rows[0].get("gpu") if rows else None
    where = f"GPU ({gpu})" if gpu else f"CPU ({rows[0]['threads']} threads)" if rows else ""
    lines = [
        f"# Forgetting at scale: {options.num_classes}-class torchvision resnet18, "
        f"{options.image_size}x{options.image_size}, {where}",
        "",
        f"Produced by `python scripts/scale.py --device {options.device} --chunks '{options.chunks}' "
        f"--paper-chunks '{options.paper_chunks}' --features-chunks '{options.features_chunks}' "
        f"--forget-counts {options.forget_counts}"
        + (f" --num-classes {options.num_classes}" if options.num_classes != 1000 else "")
        + (f" --image-size {options.image_size}" if options.image_size != 224 else "")
        + "`. Random weights (time and memory only; `force=True` because a random model has "
        "no training statistics to verify against). Each row is a fresh process, so its "
        "times include the first call's set-up (on a GPU, CUDA's and cuDNN's).",
        "",
        "calibrated = the default forget (a forward pass of every code, chunk codes at a time, "
        "then a closed-form change of the forget rows); paper = Alg. 2 with λ = (1e-6, 0.5) "
        "(per-sample gradients of every code, chunk at a time, then two candidates judged on "
        "the codes); features = the deep forget (`depth features`: the closed-form redirect "
        "at layer4's last convolution, then the calibrated head step; its layer statistics "
        "recorded first on one random image per class, which the statistics columns time and "
        "size).",
        "",
        "| mode | chunk | classes forgotten | method s | wall s | peak memory MiB | rise over set-up MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "peak_cuda_mib" in r:
            peak, rise = r["peak_cuda_mib"], r["peak_cuda_mib"]
        else:
            peak, rise = r["peak_rss_mib"], r["peak_rss_mib"] - r["setup_rss_mib"]
        lines.append(f"| {r['mode']} | {r['chunk']} | {r['forget']} | {r['method_seconds']:.2f} | "
                     f"{r['wall_seconds']:.2f} | {peak:.0f} | {rise:.0f} |")  # fmt: skip
    deep = [r for r in rows if r["mode"] == "features"]
    if deep:
        lines += ["", "Layer statistics of the deep forget: recorded in "
                  + ", ".join(f"{r['statistics_seconds']:.1f} s" for r in deep)
                  + f" (one pass over {options.num_classes} images, a second moment of the "
                  "layer's patches and a Cholesky solve with it); stored size "
                  + f"{deep[0]['statistics_mib']:.1f} MiB"
                  + (f", {deep[0]['statistics_mib'] / deep[0]['weights_mib']:.2f} times the "
                     f"weights' {deep[0]['weights_mib']:.1f} MiB (every statistic the file "
                     "stores: the layer's and the output margins and feature minima)"
                     if "weights_mib" in deep[0] else "") + "."]  # fmt: skip
    lines += ["", f"For comparison: {PAPER}.", ""]
    if not ints(options.paper_chunks):
        lines.insert(-2, "Paper mode was not run (`--paper-chunks ''`): per-sample gradients of "
                         "every code take far longer than a forward pass; see the GPU page.")  # fmt: skip
    if gpu:
        lines.insert(-2, "On the GPU the memory columns are `torch.cuda.max_memory_allocated` "
                         "during the forget (model and codes included).")  # fmt: skip
    write_page(out, "\n".join(lines) + "\n")


PAGE = Page(doc=__doc__, options=ScaleOptions, run=run, table=table, runs=None,
            out=Path("docs/results/scale.md"))

if __name__ == "__main__":  # one measurement (measure starts it): its row on stdout
    print(json.dumps(worker(json.loads(sys.argv[1]))))
