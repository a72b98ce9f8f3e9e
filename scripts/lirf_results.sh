#!/usr/bin/env bash
# LIRF's multi-deposit experiment (scripts/lirf_results.py) over seeds 0 1 2, then a mean ± std
# table. Usage: scripts/lirf_results.sh DATASET OUTDIR [extra lirf_results.py flags]
# e.g. scripts/lirf_results.sh digits runs/lirf-digits   (about 1 minute per seed on 2 CPU cores)
# A seed whose row OUTDIR/results.jsonl holds is skipped; OUTDIR/sN/original.safetensors is
# reused. PARALLEL=1 runs the three seeds at once, one thread each, in OUTDIR/parts/sN.
set -euo pipefail
dataset=${1:?dataset}; out=${2:?outdir}; shift 2
run=(python scripts/lirf_results.py run --dataset "$dataset" --originals "$out" "$@")
if [ "${PARALLEL:-0}" = 1 ]; then
  mkdir -p "$out" && touch "$out/results.jsonl"
  pids=()
  for seed in 0 1 2; do
    part="$out/parts/s$seed" && mkdir -p "$part"
    [ -f "$part/results.jsonl" ] || cp "$out/results.jsonl" "$part/results.jsonl"
    OMP_NUM_THREADS=1 "${run[@]}" --seeds "$seed" --runs "$part" > "$part/log.txt" 2>&1 & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
else
  "${run[@]}" --runs "$out"
fi
python scripts/lirf_results.py table --merge-parts --runs "$out" --dataset "$dataset" "$@"
