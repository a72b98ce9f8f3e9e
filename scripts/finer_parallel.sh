#!/usr/bin/env bash
# Run scripts/finer_full.py's jobs as parallel processes on one device, then merge their rows
# into RUNS/results.jsonl and rewrite the results page.
#
#   scripts/finer_parallel.sh RUNS DEVICE JOB... [-- extra finer_full.py options]
#   JOB = PATTERN:TRANSFORM:FISHER:TRIALS, e.g. B:tile:retain:30 or A:none:retain:30
#
# Each job works in RUNS/parts/PATTERN-TRANSFORM-FISHER/ (its own results.jsonl, seeded with
# RUNS/results.jsonl, and its own Optuna search.db), so a rerun resumes every job where it
# stopped. Used on the lent GPU, where one process leaves most of the card idle.
set -euo pipefail
runs=$1 device=$2
shift 2
jobs=() extra=()
while (($#)); do
  if [[ $1 == -- ]]; then shift; extra=("$@"); break; fi
  jobs+=("$1"); shift
done
mkdir -p "$runs/parts"
touch "$runs/results.jsonl"
pids=()
for job in "${jobs[@]}"; do
  IFS=: read -r pattern transform fisher trials <<<"$job"
  part="$runs/parts/$pattern-$transform-$fisher"
  mkdir -p "$part"
  [[ -f $part/results.jsonl ]] || cp "$runs/results.jsonl" "$part/results.jsonl"
  [[ $transform == none ]] && transform=line   # Pattern A has no transform
  OMP_NUM_THREADS=2 python scripts/finer_full.py --runs "$part" --out "$part/page.md" \
    --device "$device" --patterns "$pattern" --transforms "$transform" --fisher "$fisher" \
    --trials "$trials" "${extra[@]}" >"$part/log" 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' TERM INT   # a timeout still merges what finished
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
python scripts/finer_full.py --runs "$runs" --merge-parts --table-only "${extra[@]}"
exit $status
