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
python -m obliviate.experiments methods-table "$out" $seeds
