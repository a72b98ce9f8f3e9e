"""Run unlearning methods with chosen hyperparameters on one trained model; print a table.

A quick way to see how a method's hyperparameters trade retain accuracy for forgetting
(``obliviate sweep`` in the benchmark issue will grow out of this). Each SPEC is
``method`` or ``method:{"key": value, ...}`` (JSON). Data-based methods get the dataset's
training split; ``mnemonic`` and ``lwsf`` run data-free.

Example (the numbers quoted in docs/methods.md):
    python scripts/method_sweep.py --dataset fashion-mnist --seed 0 \\
        'gradient-ascent:{"lr":1e-5}' 'gradient-ascent:{"lr":1e-4,"epochs":1}' \\
        'ssd:{"alpha":30}' 'ssd:{"alpha":100}' 'ssd:{"shuffle":false}' 'lwsf:{"lr":0.1}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("OBLIVIATE_NO_PROGRESS", "1")

import obliviate  # noqa: E402
from obliviate.methods import METHODS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+", help='method or method:{"key": value}')
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--model", default="fc")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forget", default="0", help="classes to forget, e.g. 0,3")
    parser.add_argument("--relearn-steps", type=int, default=1000)
    args = parser.parse_args()

    data = obliviate.load_dataset(args.dataset)
    config = obliviate.TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)
    bundle = obliviate.train(data, args.model, config=config,
                             codes=obliviate.CodeConfig(seed=args.seed), progress=False)
    classes = [int(c) for c in args.forget.split(",")]
    base = obliviate.evaluate(bundle, data, classes, relearn_steps=args.relearn_steps)
    print(f"{args.dataset} {args.model} seed {args.seed}, forget {classes}")
    print("| method | hyperparameters | A_R | FE | RE | S | time (s) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| original | - | {base.retain_acc:.2f} | {base.forget_err:.2f} | "
          f"{base.relearn_err:.2f} | {base.score:.2f} | - |")
    for spec in args.specs:
        name, _, text = spec.partition(":")
        hyper = json.loads(text) if text else {}
        free = "codes" in METHODS.get(name).needs
        out = obliviate.forget(bundle, classes, method=name, data=None if free else data,
                               seed=args.seed, progress=False, force=True, **hyper)
        r = obliviate.evaluate(out, data, classes, relearn_steps=args.relearn_steps)
        print(f"| {name} | {json.dumps(hyper) if hyper else 'defaults'} | {r.retain_acc:.2f} | "
              f"{r.forget_err:.2f} | {r.relearn_err:.2f} | {r.score:.2f} | "
              f"{out.history[-1]['seconds']:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
