"""LIRF's multi-deposit experiment (supplement Tables 2 and 3) on one dataset and seed.

Trains the original conv net, then deposits two class sets D1 and D2:
  single:        T0 -D1-> T
  once:          T0 -{D1, D2}-> T, two modules
  sequence:      T0 -D1-> T1 -D2-> T
  sequence-inv:  T0 -D2-> T1 -D1-> T
and withdraws from the sequence target at once, M1 then M2, and M2 then M1 (``--no-inverse``
skips sequence-inv, two deposits fewer).
Prints a markdown table (test accuracy %) and writes every figure to OUT/results.json and the
original to OUT/original.safetensors.

Usage: python scripts/lirf_results.py --dataset digits --out runs/lirf-digits [--seed 0]
       [--epochs 30 --lr 0.01 | --original OUT/original.safetensors] [--d1 0,1 --d2 2,3]
       [--hp KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

import obliviate
from obliviate.recoverable import LIRFSettings, deposit_bundle, lirf_accuracy, withdraw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--epochs", type=int, default=30, help="original training epochs")
    parser.add_argument("--lr", type=float, default=0.01, help="original training lr")
    parser.add_argument("--d1", default="0,1")
    parser.add_argument("--d2", default="2,3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-inverse", action="store_true", help="skip sequence-inv")
    parser.add_argument("--hp", action="append", default=[], help="LIRF setting KEY=VALUE")
    parser.add_argument("--original", type=Path, help="use this original instead of training one")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    d1 = [int(c) for c in args.d1.split(",")]
    d2 = [int(c) for c in args.d2.split(",")]
    values = dict(item.split("=", 1) for item in args.hp)
    settings = LIRFSettings.from_strings(values, seed=args.seed)
    data = obliviate.load_dataset(args.dataset)
    if args.original:
        original = obliviate.load(args.original)
    else:
        torch.manual_seed(args.seed)
        original = obliviate.train(data, args.model, codes=None, progress=False,
                                   config=obliviate.TrainConfig(epochs=args.epochs, lr=args.lr,
                                                                seed=args.seed))  # fmt: skip
        obliviate.save(original, args.out / "original.safetensors")  # --original reuses it
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

    orders = [("sequence", d1, d2)] + ([] if args.no_inverse else [("sequence-inv", d2, d1)])
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

    payload = {"dataset": args.dataset, "model": args.model, "seed": args.seed, "d1": d1,
               "d2": d2, "settings": dataclasses.asdict(settings), "rows": rows,
               "deposit_seconds": seconds}  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"{args.dataset}, {args.model}, seed {args.seed}; D1 = {d1}, D2 = {d2} (test %)\n")
    print("| order | process | Pre Acc | D1 Acc | D2 Acc | H Mean | Avg Acc |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['order']} | {r['process']} | {r['pre_acc']:.1f} | {r['d1_acc']:.1f} | "
              f"{r['d2_acc']:.1f} | {r['h_mean']:.1f} | {r['avg_acc']:.1f} |")  # fmt: skip
    print("\ndeposit seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
