#!/usr/bin/env bash
# Hayase et al. on Fashion-MNIST with the paper's 10-layer MLP (10 pretraining epochs, SGD lr 0.01):
#   Pattern B, tile transform on class 0, 3 seeds, Table S1 settings (CE / CE+Fisher / CE+Fisher+RLD);
#   Pattern A, class 0 without transform, seed 0 (RLD / RND / truncation).
# Usage: scripts/finer_results.sh [OUTDIR]   (default runs/finer); prints a markdown summary.
set -euo pipefail
out=${1:-runs/finer}
mkdir -p "$out"
for seed in 0 1 2; do
  [ -f "$out/B-tile-s$seed.json" ] || obliviate backdoor --dataset fashion-mnist --class 0 \
    --transform tile --pattern B --seed "$seed" --out "$out/B-tile-s$seed.json"
done
[ -f "$out/A-s0.json" ] || obliviate backdoor --dataset fashion-mnist --class 0 --transform none \
  --pattern A --hp lr=1e-3 --hp lambda_kl=1e3 --seed 0 --out "$out/A-s0.json"
python - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
sets = ["D_r", "D_f", "D_f,clean", "D_r,extra"]
def table(files):
    reports = [json.load(open(f"{out}/{f}")) for f in files]
    print("| model | " + " | ".join(sets) + " |")
    print("|---|" + "---|" * len(sets))
    for label in reports[0]["accuracy"]:
        cells = []
        for s in sets:
            vals = [100 * r["accuracy"][label][s] for r in reports]
            cells.append(f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"
                         if len(vals) > 1 else f"{vals[0]:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
print("Pattern B, tile, seeds 0 1 2 (test accuracy %, mean ± std):\n")
table([f"B-tile-s{s}.json" for s in (0, 1, 2)])
print("Pattern A, class 0, seed 0 (test accuracy %):\n")
table(["A-s0.json"])
PY
