#!/bin/sh
# The default recipe's sweep (docs/RESULTS.md, "Choosing the recipe"): the
# student preset trained alone, one row per recipe, each a real run with
# its final COCO evaluation; then one table.
#   tools/recipe_sweep.sh OUT_DIR [JOBS]
# Finished rows are skipped, so the script can be re-run after a stop.
set -eu
finished() { grep -q '"event":"finish"' "$1/events.jsonl" 2>/dev/null; }
# name|steps|settings (the student preset's own otherwise)
rows='sgd-a4-b8|6000|train.optimizer=sgd train.lr=0.02 anchor.size_mult=4 train.batch=8
sgd-a2-b8|6000|train.optimizer=sgd train.lr=0.02 anchor.size_mult=2 train.batch=8
adamw1e-3-a4-b8|6000|train.optimizer=adamw train.lr=0.001 anchor.size_mult=4 train.batch=8
adamw1e-3-a2-b8|6000|train.optimizer=adamw train.lr=0.001 anchor.size_mult=2 train.batch=8
adamw2e-3-a2-b8|6000|train.optimizer=adamw train.lr=0.002 anchor.size_mult=2 train.batch=8
adamw5e-4-a2-b8|6000|train.optimizer=adamw train.lr=0.0005 anchor.size_mult=2 train.batch=8
adamw1e-3-a3-b8|6000|train.optimizer=adamw train.lr=0.001 anchor.size_mult=3 train.batch=8
adamw1e-3-a2-b16|6000|train.optimizer=adamw train.lr=0.001 anchor.size_mult=2 train.batch=16'
if [ "${1:-}" = __one ]; then
  name=$2 steps=$3 dir="$out/$2"
  shift 3
  sets=""
  for kv in "$@"; do sets="$sets --set $kv"; done
  common="--quiet --steps $steps --set train.threads=1 --set train.eval_every=0 --set train.checkpoint_every=1000 --set train.seed=${SEED:-1}"
  if [ -f "$dir/config.json" ]; then
    set -- train --resume "$dir" $common
  else
    set -- train --config "$here/assets/configs/student.json" --out "$dir" $common $sets
  fi
  /usr/bin/time -f "%e %U" -o "$dir.time" "$bin" "$@" > "$dir.log" 2>&1 || true
  exit 0
fi
out=${1:?usage: tools/recipe_sweep.sh OUT_DIR [JOBS]}
jobs=${2:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="${KDSCOPE_BIN:-$here/build/app/kdscope}"
export out here bin
mkdir -p "$out"
echo "$rows" | while IFS='|' read -r name steps sets; do
  finished "$out/$name" || echo "$name $steps $sets"
done | xargs -L 1 -P "$jobs" sh "$0" __one
/usr/bin/python3 "$here/tools/sweep_table.py" "$out"
