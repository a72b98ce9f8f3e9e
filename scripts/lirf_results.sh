#!/usr/bin/env bash
# LIRF's multi-deposit experiment (scripts/lirf_results.py) over seeds 0 1 2, then a mean ± std
# table. Usage: scripts/lirf_results.sh DATASET OUTDIR [extra lirf_results.py flags]
# e.g. scripts/lirf_results.sh digits runs/lirf-digits   (about 1 minute per seed on 2 CPU cores)
# PARALLEL=1 runs the three seeds at once, one thread each (a seed with results.json is skipped;
# a seed whose OUTDIR/sN/original.safetensors exists deposits from it instead of training one).
set -euo pipefail
dataset=${1:?dataset}; out=${2:?outdir}; shift 2
pids=()
for seed in 0 1 2; do
  [ -f "$out/s$seed/results.json" ] && continue
  mkdir -p "$out/s$seed"
  cmd=(python scripts/lirf_results.py --dataset "$dataset" --seed "$seed" --out "$out/s$seed" "$@")
  [ -f "$out/s$seed/original.safetensors" ] && cmd+=(--original "$out/s$seed/original.safetensors")
  if [ "${PARALLEL:-0}" = 1 ]; then
    OMP_NUM_THREADS=1 "${cmd[@]}" > "$out/s$seed/log.txt" 2>&1 & pids+=($!)
  else
    "${cmd[@]}" > "$out/s$seed/log.txt" 2>&1
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
python - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
runs = [json.load(open(f"{out}/s{s}/results.json")) for s in (0, 1, 2)]
r0 = runs[0]
print(f"{r0['dataset']}, {r0['model']}, D1 = {r0['d1']}, D2 = {r0['d2']}; test %, mean ± std "
      "over seeds 0 1 2\n")
cols = ["pre_acc", "d1_acc", "d2_acc", "h_mean", "avg_acc"]
print("| order | process | Pre Acc | D1 Acc | D2 Acc | H Mean | Avg Acc |")
print("|---|---|---|---|---|---|---|")
for i, row in enumerate(r0["rows"]):
    cells = []
    for c in cols:
        vals = [r["rows"][i][c] for r in runs]
        cells.append(f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}")
    print(f"| {row['order']} | {row['process']} | " + " | ".join(cells) + " |")
secs = [v for r in runs for v in r["deposit_seconds"].values()]
print(f"\ndeposit time: {min(secs):.1f}-{max(secs):.1f} s per deposit")
PY
