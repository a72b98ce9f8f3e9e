#!/usr/bin/env bash
# Reproduces docs/results/fashion-mnist.md: paper FC protocol on Fashion-MNIST, forget class 0.
# Usage: scripts/fashion_mnist_results.sh [OUTDIR] [SEEDS...]   (default: runs/fmnist-fc 0 1 2)
set -euo pipefail
out=${1:-runs/fmnist-fc}; shift || true
seeds=${*:-0 1 2}
mkdir -p "$out"
for seed in $seeds; do
  obliviate train --dataset fashion-mnist --model fc --epochs 10 --seed "$seed" \
    --out "$out/fc-s$seed.safetensors"
  obliviate forget "$out/fc-s$seed.safetensors" --classes 0 \
    --out "$out/fc-s$seed-forgot0.safetensors" --report "$out/forget-s$seed.json"
  obliviate evaluate "$out/fc-s$seed.safetensors" --dataset fashion-mnist --forget-classes 0 \
    --json > "$out/before-s$seed.json"
  obliviate evaluate "$out/fc-s$seed-forgot0.safetensors" --dataset fashion-mnist \
    --forget-classes 0 --json > "$out/after-s$seed.json"
done
python - "$out" $seeds <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
keys = ["retain_acc", "forget_err", "relearn_err", "score", "forget_seconds"]
rows = {"before": [], "after": []}
for s in seeds:
    for k in rows:
        rows[k].append(json.load(open(f"{out}/{k}-s{s}.json")))
print("| model | " + " | ".join(keys) + " |")
print("|---|" + "---|" * len(keys))
for name, rs in rows.items():
    cells = []
    for k in keys:
        vals = [r[k] for r in rs if r[k] is not None]
        if not vals:
            cells.append("-")
        elif len(vals) == 1:
            cells.append(f"{vals[0]:.3f}" if k == "forget_seconds" else f"{vals[0]:.2f}")
        else:
            fmt = "{:.3f} ± {:.3f}" if k == "forget_seconds" else "{:.2f} ± {:.2f}"
            cells.append(fmt.format(statistics.mean(vals), statistics.stdev(vals)))
    print(f"| {name} | " + " | ".join(cells) + " |")
for s, b, a in zip(seeds, rows["before"], rows["after"]):
    print(f"seed {s}: per-class acc before {[round(v, 1) for v in b['per_class_acc'].values()]}")
    print(f"seed {s}: per-class acc after  {[round(v, 1) for v in a['per_class_acc'].values()]}")
PY
