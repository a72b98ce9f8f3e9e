"""Grid of (lambda1, lambda2) for the mnemonic method on a dataset; prints A_R / FE / RE / S.

This is how the demo's digits lambdas were chosen:
    python scripts/lambda_grid.py --dataset digits --epochs 40 --lr 0.1
(The full sweep command with plots comes with `obliviate sweep`.)
"""

from __future__ import annotations

import argparse

import obliviate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="fc")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", default="0")
    parser.add_argument("--lambda1", default="1e-3,3e-3,1e-2,3e-2,1e-1")
    parser.add_argument("--lambda2", default="1,10,100")
    args = parser.parse_args()
    classes = [int(c) for c in args.classes.split(",")]
    data = obliviate.load_dataset(args.dataset)
    bundle = obliviate.train(
        data, args.model, config=obliviate.TrainConfig(epochs=args.epochs, lr=args.lr,
                                                       seed=args.seed), progress=False
    )
    base = obliviate.evaluate(bundle, data, classes)
    print(f"before: A_R {base.retain_acc:.2f} FE {base.forget_err:.2f} RE {base.relearn_err:.2f}")
    print("lambda1  lambda2  A_R    FE     RE     S      sign")
    for l1 in map(float, args.lambda1.split(",")):
        for l2 in map(float, args.lambda2.split(",")):
            out = obliviate.forget(bundle, classes, lambda1=l1, lambda2=l2)
            r = obliviate.evaluate(out, data, classes)
            print(f"{l1:<8g} {l2:<8g} {r.retain_acc:6.2f} {r.forget_err:6.2f} "
                  f"{r.relearn_err:6.2f} {r.score:6.2f} {out.history[-1]['sign']}")


if __name__ == "__main__":
    main()
