#!/usr/bin/env bash
# Run scripts/finer_full.py's jobs (or FINER_SCRIPT's) as parallel processes on one device, then
# merge their rows into RUNS/results.jsonl and rewrite the results page.
#
#   scripts/finer_parallel.sh RUNS DEVICE JOB... [-- extra finer_full.py options]
#   JOB = PATTERN:TRANSFORM:FISHER:TRIALS[:WHAT], e.g. B:tile:retain:30 or A:none:retain:30;
#   WHAT is passed as --jobs WHAT (scripts/finer_ours.py: paper, ours-rld, ours-clean-self, ...)
#
#   FINER_SCRIPT=scripts/finer_ours.py scripts/finer_parallel.sh runs/finer-ours cuda \
#       B:line:retain:30:paper B:line:retain:30:ours-rld -- --data-dir DIR
#
# Each job works in RUNS/parts/PATTERN-TRANSFORM-FISHER[-WHAT]/ (its own results.jsonl, seeded
# with RUNS/results.jsonl, and its own Optuna search.db), so a rerun resumes every job where it
# stopped. Used on the lent GPU, where one process leaves most of the card idle.
set -euo pipefail
script=${FINER_SCRIPT:-scripts/finer_full.py}
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
  IFS=: read -r pattern transform fisher trials what <<<"$job"
  part="$runs/parts/$pattern-$transform-$fisher${what:+-$what}"
  what_option=()
  [[ -n $what ]] && what_option=(--jobs "$what")
  mkdir -p "$part"
  [[ -f $part/results.jsonl ]] || cp "$runs/results.jsonl" "$part/results.jsonl"
  [[ $transform == none ]] && transform=line   # Pattern A has no transform
  OMP_NUM_THREADS=2 python "$script" --runs "$part" --out "$part/page.md" \
    --device "$device" --patterns "$pattern" --transforms "$transform" --fisher "$fisher" \
    --trials "$trials" "${what_option[@]}" "${extra[@]}" >"$part/log" 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' TERM INT   # a timeout still merges what finished
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
python "$script" --runs "$runs" --merge-parts --table-only "${extra[@]}"
exit $status
