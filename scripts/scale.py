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
``force=True``; verification is not what is measured here.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PAPER = "v2 paper, Table 4: ResNet-18 on ImageNet forgets in 8.66 s on one RTX 3090 (paper mode)"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(args: argparse.Namespace) -> dict:
    import torch

    import obliviate
    from obliviate.codes import MnemonicCodes
    from obliviate.pretrained import source_model

    torch.manual_seed(0)
    shape = (3, args.image_size, args.image_size)
    bundle, _ = source_model("torchvision:resnet18", num_classes=args.num_classes,
                             input_shape=shape)  # fmt: skip
    bundle.codes = MnemonicCodes.generate(args.num_classes, shape)
    device = torch.device(args.device)
    bundle.model.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stats_seconds = None
    if args.mode == "features":  # the deep forget needs the layer statistics: record them on
        # one random image per class (time and memory only), as training would on its data
        from obliviate.data import Split
        from obliviate.stats import record_statistics

        x = torch.rand(args.num_classes, *shape)
        y = torch.arange(args.num_classes)
        started = time.perf_counter()
        bundle.stats = record_statistics(bundle.model, Split(x, y), batch_size=32)
        stats_seconds = time.perf_counter() - started
        bundle.model.to(device)
    setup_rss = rss_mib()
    hyper = {"chunk_size": args.chunk}
    if args.mode == "paper":
        hyper.update(lambda1=1e-6, lambda2=0.5)  # the v1 supplement's ImageNet setting
    if args.mode == "features":
        hyper.update(depth="features")
    classes = list(range(args.forget))
    start = time.perf_counter()
    out = obliviate.forget(bundle, classes, device=device, progress=False, force=True, **hyper)
    wall = time.perf_counter() - start
    record = out.history[-1]
    row = {
        "device": args.device, "mode": args.mode, "chunk": args.chunk, "forget": args.forget,
        "num_classes": args.num_classes, "image_size": args.image_size,
        "method_seconds": record["seconds"], "wall_seconds": wall,
        "peak_rss_mib": rss_mib(), "setup_rss_mib": setup_rss,
        "threads": torch.get_num_threads(),
    }  # fmt: skip
    if stats_seconds is not None:
        layer = bundle.stats.layer
        row["statistics_seconds"] = stats_seconds
        row["statistics_mib"] = sum(t.numel() * t.element_size()
                                    for t in layer.tensors().values()) / 2**20  # fmt: skip
        row["depth"] = record.get("depth")
    if device.type == "cuda":
        row["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        row["gpu"] = torch.cuda.get_device_name()
    return row


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunks", default="16,64,256", help="calibrated-mode chunk sizes")
    parser.add_argument("--paper-chunks", default="8,32", help="paper-mode chunk sizes ('' skips)")
    parser.add_argument("--forget-counts", default="1,10")
    parser.add_argument("--features-chunks", default="64", help="deep-forget (depth features) "
                        "chunk sizes ('' skips)")  # fmt: skip
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--out", type=Path, default=Path("docs/results/scale.md"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="calibrated", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--forget", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    plan = [("calibrated", c, k) for c in _ints(args.chunks) for k in _ints(args.forget_counts)]
    plan += [("paper", c, k) for c in _ints(args.paper_chunks) for k in _ints(args.forget_counts)]
    plan += [("features", c, k) for c in _ints(args.features_chunks)
             for k in _ints(args.forget_counts)]  # fmt: skip
    rows = []
    for mode, chunk, k in plan:
        cmd = [sys.executable, __file__, "--worker", "--device", args.device, "--mode", mode,
               "--chunk", str(chunk), "--forget", str(k), "--num-classes", str(args.num_classes),
               "--image-size", str(args.image_size)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"worker failed: {' '.join(cmd)}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    gpu = rows[0].get("gpu") if rows else None
    where = f"GPU ({gpu})" if gpu else f"CPU ({rows[0]['threads']} threads)" if rows else ""
    lines = [
        f"# Forgetting at scale: {args.num_classes}-class torchvision resnet18, "
        f"{args.image_size}x{args.image_size}, {where}",
        "",
        f"Produced by `python scripts/scale.py --device {args.device} --chunks {args.chunks} "
        f"--paper-chunks '{args.paper_chunks}' --features-chunks '{args.features_chunks}' "
        f"--forget-counts {args.forget_counts}"
        + (f" --num-classes {args.num_classes}" if args.num_classes != 1000 else "")
        + (f" --image-size {args.image_size}" if args.image_size != 224 else "")
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
                  + f" (one pass over {args.num_classes} images, a second moment of the "
                  "layer's patches and a Cholesky solve with it); stored size "
                  + f"{deep[0]['statistics_mib']:.1f} MiB."]  # fmt: skip
    lines += ["", f"For comparison: {PAPER}.", ""]
    if not _ints(args.paper_chunks):
        lines.insert(-2, "Paper mode was not run (`--paper-chunks ''`): per-sample gradients of "
                         "every code take far longer than a forward pass; see the GPU page.")  # fmt: skip
    if gpu:
        lines.insert(-2, "On the GPU the memory columns are `torch.cuda.max_memory_allocated` "
                         "during the forget (model and codes included).")  # fmt: skip
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
