"""Which LIRF deposit settings keep the preserved classes: one deposit per variant, same model.

Each variant changes some ``LIRFSettings`` from the defaults; ``paper-literal`` is our first
reading of the supplement (softmax KD over the selected logits, random labels over every
class, lambda_kp = lambda_at = 1, prune ratio 0.5); ``block=2`` splits the ``convnet`` before
its last conv block instead of at the head. Prints test % for the target and the
recover net, and the original's, as a markdown table; writes OUT/ablation.json.

Usage: python scripts/lirf_ablation.py --model runs/lirf-fmnist/original.safetensors \
           --dataset fashion-mnist --classes 2,3 --out runs/lirf-ablation
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import obliviate
from obliviate.recoverable import LIRFSettings, deposit_bundle, lirf_accuracy, withdraw

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--classes", default="2,3")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    classes = [int(c) for c in args.classes.split(",")]
    original = obliviate.load(args.model)
    data = obliviate.load_dataset(args.dataset)
    x, y = data.test.x, data.test.y

    def scores(bundle: obliviate.ModelBundle) -> dict[str, float]:
        m = lirf_accuracy(bundle.model, x, y, classes)
        return {"pre_acc": m["pre_acc"], "dep_acc": m["dep_acc"]}

    rows = [{"variant": "original", "settings": {}, "target": scores(original),
             "recover": scores(original), "seconds": 0.0}]  # fmt: skip
    print(f"{args.dataset}, {original.arch}, deposit {classes}; test %\n")
    print("| variant | target Pre | target Dep | recover Pre | recover Dep | seconds |")
    print("|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        settings = LIRFSettings.from_strings(VARIANTS[name])
        target, modules, result = deposit_bundle(original, data, [classes], settings)
        rows.append({"variant": name, "settings": VARIANTS[name], "target": scores(target),
                     "recover": scores(withdraw(target, modules)),
                     "seconds": result.seconds})  # fmt: skip
    for r in rows:
        t, rc = r["target"], r["recover"]
        print(f"| {r['variant']} | {t['pre_acc']:.2f} | {t['dep_acc']:.2f} | "
              f"{rc['pre_acc']:.2f} | {rc['dep_acc']:.2f} | {r['seconds']:.0f} |")  # fmt: skip
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
