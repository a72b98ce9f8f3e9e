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
python -m obliviate.experiments core-table "$out" $seeds
