#!/bin/sh
# Builds the results table of docs/RESULTS.md from real runs: the student
# baseline, each distillation method at its defaults, over seeds; then
# summarises every run's final COCO evaluation.
#   tools/results.sh OUT_DIR [STEPS] [SEEDS] [JOBS]
# Runs are skipped when their directory already holds a finished run, so
# the script can be re-run after an interruption (--resume continues them).
set -eu
out=${1:?usage: tools/results.sh OUT_DIR [STEPS] [SEEDS] [JOBS]}
steps=${2:-6000}
seeds=${3:-"1 2 3"}
jobs=${4:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/build/app/kdscope"
methods="baseline fitnet defeat fgd pkd cwd logitkd"
mkdir -p "$out"
run_one() {
  m=$1 s=$2 dir="$out/$1-seed$2"
  if grep -q '"event":"finish"' "$dir/events.jsonl" 2>/dev/null; then return 0; fi
  threads=$((2 / jobs)); [ "$threads" -ge 1 ] || threads=1
  common="--quiet --steps $steps --set train.seed=$s --set train.threads=$threads --set train.eval_every=0"
  if [ -f "$dir/config.json" ]; then
    /usr/bin/time -f "%e" -o "$dir.time" "$bin" distill --resume "$dir" $common > "$dir.log" 2>&1 || true
  elif [ "$m" = baseline ]; then
    /usr/bin/time -f "%e" -o "$dir.time" "$bin" distill --out "$dir" $common --set distill.methods= > "$dir.log" 2>&1 || true
  else
    /usr/bin/time -f "%e" -o "$dir.time" "$bin" distill --out "$dir" $common --set distill.methods=$m > "$dir.log" 2>&1 || true
  fi
}
i=0
for s in $seeds; do
  for m in $methods; do
    run_one "$m" "$s" &
    i=$((i + 1))
    if [ $((i % jobs)) -eq 0 ]; then wait; fi
  done
done
wait
/usr/bin/python3 "$here/tools/results_table.py" "$out" "$steps"
