"""Grid of (lambda1, lambda2) for the mnemonic method over training seeds.

Prints, per seed and lambda pair, A_R (and its change from the model before forgetting), FE,
RE and S. This is how the demo's digits lambdas were chosen, and how their seed sensitivity was
measured:
    python scripts/lambda_grid.py --dataset digits --epochs 40 --lr 0.1 --seeds 0,1,2,3,4,5 \
        --lambda1 3e-3,6e-3,1e-2 --lambda2 10 --relearn-steps 0
(The sweep with plots comes with `obliviate sweep`.)
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
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--classes", default="0")
    parser.add_argument("--lambda1", default="1e-3,3e-3,1e-2,3e-2,1e-1")
    parser.add_argument("--lambda2", default="1,10,100")
    parser.add_argument("--relearn-steps", type=int, default=1000)
    args = parser.parse_args()
    classes = [int(c) for c in args.classes.split(",")]
    data = obliviate.load_dataset(args.dataset)

    def fmt(value: float | None) -> str:
        return "     -" if value is None else f"{value:6.2f}"

    print("seed lambda1  lambda2  A_R    dA_R   FE     RE     S      sign")
    for seed in map(int, args.seeds.split(",")):
        config = obliviate.TrainConfig(epochs=args.epochs, lr=args.lr, seed=seed)
        bundle = obliviate.train(data, args.model, config=config, progress=False)
        base = obliviate.evaluate(bundle, data, classes, relearn_steps=args.relearn_steps)
        print(f"{seed:<4} before            {base.retain_acc:6.2f}        "
              f"{base.forget_err:6.2f} {fmt(base.relearn_err)}")
        for l1 in map(float, args.lambda1.split(",")):
            for l2 in map(float, args.lambda2.split(",")):
                out = obliviate.forget(bundle, classes, lambda1=l1, lambda2=l2, force=True)
                r = obliviate.evaluate(out, data, classes, relearn_steps=args.relearn_steps)
                print(f"{seed:<4} {l1:<8g} {l2:<8g} {r.retain_acc:6.2f} "
                      f"{r.retain_acc - base.retain_acc:+6.2f} {r.forget_err:6.2f} "
                      f"{fmt(r.relearn_err)} {fmt(r.score)} {out.history[-1]['sign']}")


if __name__ == "__main__":
    main()
