#!/bin/sh
# The tuned rows of the results table: for each method, its loss weight
# chosen on a held-out part of the training set (data.holdout, never val),
# then that weight run over the seeds on val like every other row.
#   tools/tune_weights.sh OUT_DIR [STEPS] [SEEDS] [JOBS]
# Phase 1: OUT_DIR/tune/METHOD-xF (seed 1, data.holdout=500) for each factor
# F of the default weight; phase 2: OUT_DIR/METHOD-tuned-seedS with the
# factor whose held-out AP was best (written to OUT_DIR/tune/METHOD.best).
# Methods: the table's six by default; KDSCOPE_METHODS overrides (e.g.
# "$(tools/results_table.py OUT_DIR STEPS --dominating)": those whose loss
# is >= 10x the detection loss at their defaults). KDSCOPE_TUNE_STEPS
# shortens the phase-1 runs (default STEPS: the table rows' schedule).
# Finished runs are skipped, so it can be re-run after a stop.
set -eu
finished() { grep -q '"event":"finish"' "$1/events.jsonl" 2>/dev/null; }
run() { # dir steps threads sets...
  dir=$1 n=$2 th=$3
  shift 3
  common="--quiet --steps $n --set train.threads=$th --set train.eval_every=0 --set probe.budget=0"
  if [ -f "$dir/config.json" ]; then set -- distill --resume "$dir" $common
  else set -- distill --out "$dir" $common "$@"
  fi
  /usr/bin/time -f "%e %U" -o "$dir.time" "$bin" "$@" > "$dir.log" 2>&1 || true
}
default_weight() { "$bin" settings "$1.weight" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["default"])'; }
if [ "${1:-}" = __tune ]; then
  m=$2 f=$3 w=$(default_weight "$2")
  wf=$(/usr/bin/python3 -c "print(f'{$w * $f:.6g}')")
  run "$out/tune/$m-x$f" "$tune_steps" "$threads" --set train.seed=1 --set data.holdout=500 --set distill.methods="$m" --set "$m.weight=$wf"
  exit 0
fi
if [ "${1:-}" = __final ]; then
  m=$2 s=$3 f=$(cat "$out/tune/$2.best") w=$(default_weight "$2")
  wf=$(/usr/bin/python3 -c "print(f'{$w * $f:.6g}')")
  run "$out/$m-tuned-seed$s" "$steps" "$threads" --set train.seed="$s" --set distill.methods="$m" --set "$m.weight=$wf"
  exit 0
fi
out=${1:?usage: tools/tune_weights.sh OUT_DIR [STEPS] [SEEDS] [JOBS]}
steps=${2:-6000}
seeds=${3:-"1 2 3"}
jobs=${4:-1}
threads=$((2 / jobs)); [ "$threads" -ge 1 ] || threads=1
here=$(cd "$(dirname "$0")/.." && pwd)
bin="${KDSCOPE_BIN:-$here/build/app/kdscope}"
tune_steps=${KDSCOPE_TUNE_STEPS:-$steps}
methods=${KDSCOPE_METHODS:-"fitnet defeat fgd pkd cwd logitkd"}
factors=${KDSCOPE_FACTORS:-"1 0.3 0.1 0.03"}
export out steps bin threads tune_steps
mkdir -p "$out/tune"
for m in $methods; do for f in $factors; do finished "$out/tune/$m-x$f" || echo "$m $f"; done; done |
  xargs -n 2 -P "$jobs" sh "$0" __tune
for m in $methods; do
  /usr/bin/python3 - "$out/tune" "$m" $factors <<'PY' > "$out/tune/$m.best"
import json, os, sys
tune, m, factors = sys.argv[1], sys.argv[2], sys.argv[3:]
best = None
for f in factors:
    ap = None
    with open(os.path.join(tune, f"{m}-x{f}", "metrics.jsonl")) as fh:
        for line in fh:
            if '"eval"' in line:
                e = json.loads(line)["eval"]
                assert e["split"] == "holdout", "tuning must not read val"
                ap = e["AP"]
    print(f"{m} x{f}: held-out AP {100 * ap:.1f}", file=sys.stderr)
    if best is None or ap > best[1]:
        best = (f, ap)
print(best[0])
PY
done
# A method whose default weight wins on held-out data has no tuned row to
# run: its tuned row is its default row.
for s in $seeds; do for m in $methods; do
  [ "$(cat "$out/tune/$m.best")" = 1 ] && continue
  finished "$out/$m-tuned-seed$s" || echo "$m $s"
done; done |
  xargs -n 2 -P "$jobs" sh "$0" __final
