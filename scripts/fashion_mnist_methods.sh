#!/usr/bin/env bash
# Every registered unlearning method at its defaults on Fashion-MNIST (paper FC protocol,
# forget class 0), run through the CLI exactly as a user would. Prints a markdown table
# (mean ± std over seeds) used in docs/methods.md.
# Usage: scripts/fashion_mnist_methods.sh [OUTDIR] [SEEDS...]   (default: runs/fmnist-methods 0)
set -euo pipefail
out=${1:-runs/fmnist-methods}; shift || true
seeds=${*:-0}
methods=$(python -c "from obliviate.methods import METHODS; print(' '.join(METHODS.names()))")
mkdir -p "$out"
for seed in $seeds; do
  model="$out/fc-s$seed.safetensors"
  [ -f "$model" ] || obliviate train --dataset fashion-mnist --model fc --epochs 10 --seed "$seed" --out "$model"
  [ -f "$out/original-s$seed.json" ] || obliviate evaluate "$model" --dataset fashion-mnist \
    --forget-classes 0 --json > "$out/original-s$seed.json"
  for method in $methods; do
    result="$out/$method-s$seed.json"
    [ -f "$result" ] && continue
    data=(--data fashion-mnist)
    # data-free methods run data-free (mnemonic would otherwise pick its sign on the data)
    case "$method" in mnemonic|lwsf) data=() ;; esac
    obliviate forget "$model" --classes 0 --method "$method" "${data[@]}" --seed "$seed" \
      --out "$out/$method-s$seed.safetensors" --report "$out/$method-s$seed-record.json"
    obliviate evaluate "$out/$method-s$seed.safetensors" --dataset fashion-mnist \
      --forget-classes 0 --json > "$result.tmp" && mv "$result.tmp" "$result"
  done
done
python - "$out" $seeds <<'PY'
import json, platform, statistics, sys
import torch
out, seeds = sys.argv[1], sys.argv[2:]
from obliviate.methods import METHODS
keys = [("score", "S"), ("retain_acc", "A_R"), ("forget_err", "FE"), ("relearn_err", "RE"),
        ("forget_seconds", "time (s)")]
def cell(vals, k):
    fmt = "{:.3f}" if k == "forget_seconds" else "{:.2f}"
    if len(vals) == 1:
        return fmt.format(vals[0])
    return (fmt + " ± " + fmt).format(statistics.mean(vals), statistics.stdev(vals))
print(f"seeds {' '.join(seeds)}; {platform.processor() or platform.machine()}, "
      f"{torch.get_num_threads()} threads, torch {torch.__version__}, CPU")
print()
print("| method | data seen | " + " | ".join(label for _, label in keys) + " |")
print("|---|---|" + "---|" * len(keys))
names = ["original"] + METHODS.names()
for name in names:
    rows = [json.load(open(f"{out}/{name}-s{s}.json")) for s in seeds]
    if name == "original":
        seen = "-"
    else:
        d = json.load(open(f"{out}/{name}-s{seeds[0]}-record.json"))["data"]
        parts = (["codes"] if d["codes"] else []) + [
            f"{k.split('_')[0]} {d[k]}" for k in ("forget_samples", "retain_samples") if d[k]]
        seen = ", ".join(parts)
    cells = [cell([r[k] for r in rows if r[k] is not None], k) if rows[0][k] is not None else "-"
             for k, _ in keys]
    print(f"| {name} | {seen} | " + " | ".join(cells) + " |")
PY
