#!/usr/bin/env bash
# Fig. 2-4 of the mnemonic paper on Fashion-MNIST (FC protocol, seed 0), using the seed-0 model
# that `obliviate bench --config configs/fashion-mnist-fc.toml --out runs/fmnist` trained.
# Usage: scripts/paper_figures.sh [BENCH_DIR] [OUTDIR]   (default: runs/fmnist runs/fmnist/figures)
set -euo pipefail
bench=${1:-runs/fmnist}
out=${2:-$bench/figures}
mkdir -p "$out"
key=$(python -c "from obliviate.bench import load_config; print(load_config('configs/fashion-mnist-fc.toml').model_key(0))")
coded="$bench/models/fc-$key.safetensors"
plain="$out/fc-no-codes-s0.safetensors"
[ -f "$plain" ] || obliviate train --dataset fashion-mnist --model fc --epochs 10 --seed 0 \
  --no-codes --out "$plain"
obliviate sweep "$coded" --out "$out/sweep" \
  --lambda1-values 1e-6,1e-5,1e-4,1e-3,1e-2,1e-1 --lambda2-values 0.01,0.1,1,10,100,1000
obliviate analyze --with-codes "$coded" --without-codes "$plain" --out "$out/analysis"
