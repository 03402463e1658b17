#!/bin/sh
# Builds the results table of docs/RESULTS.md from real runs: the student
# baseline, each distillation method at its defaults, over seeds; then
# summarises every run's final COCO evaluation.
#   tools/results.sh OUT_DIR [STEPS] [SEEDS] [JOBS]
# A method in KDSCOPE_METHODS may be a variant, LABEL:METHOD:KEY=VALUE...
# (e.g. csgr-cat:csgr:csgr.alpha_rel=0): runs METHOD with those settings
# into LABEL-seedN; the key config=FILE starts that run from FILE instead.
# Another detector family is another OUT_DIR with its own baseline and
# teacher row: KDSCOPE_CONFIG (the config every run starts from, default
# assets/configs/distill.json) and KDSCOPE_TEACHER="CONFIG CHECKPOINT"
# (the teacher row's model, default the shipped RetinaNet teacher), e.g.
#   KDSCOPE_CONFIG=assets/configs/distill-ld.json \
#   KDSCOPE_TEACHER="assets/configs/teacher-gfl.json assets/teacher-gfl.safetensors" \
#   KDSCOPE_METHODS="baseline ld ld-main:ld:ld.vlr=0:ld.kd=0" tools/results.sh OUT
# Runs are skipped when their directory already holds a finished run, so
# the script can be re-run after an interruption (--resume continues them).
set -eu
finished() { grep -q '"event":"finish"' "$1/events.jsonl" 2>/dev/null; }
run_one() {
  m=${1%%:*} s=$2 n=$steps method=$1 extra="" cfg=${KDSCOPE_CONFIG:-}
  dir="$out/$m-seed$s"
  case $method in
    *:*) method=${method#*:}; rest=${method#*:}; [ "$rest" = "$method" ] && rest=""
         method=${method%%:*}
         for kv in $(printf '%s' "$rest" | tr ':' ' '); do
           case $kv in config=*) cfg=${kv#config=} ;; *) extra="$extra --set $kv" ;; esac
         done ;;
  esac
  [ -z "$cfg" ] || cfg="--config $cfg"
  threads=$((2 / jobs)); [ "$threads" -ge 1 ] || threads=1
  [ "$m" = baseline-matched ] && n=$(cat "$out/matched_steps")
  common="--quiet --steps $n --set train.seed=$s --set train.threads=$threads --set train.eval_every=0 --set probe.budget=0"
  if [ -f "$dir/config.json" ]; then
    set -- distill --resume "$dir" $common
  elif [ "$m" = baseline ] || [ "$m" = baseline-matched ]; then
    set -- distill --out "$dir" $cfg $common --set distill.methods=
  else
    set -- distill --out "$dir" $cfg $common --set distill.methods="$method" $extra
  fi
  /usr/bin/time -f "%e %U" -o "$dir.time" "$bin" "$@" > "$dir.log" 2>&1 || true
}
if [ "${1:-}" = __one ]; then
  run_one "$2" "$3"
  exit 0
fi
out=${1:?usage: tools/results.sh OUT_DIR [STEPS] [SEEDS] [JOBS]}
steps=${2:-6000}
seeds=${3:-"1 2 3"}
jobs=${4:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
# KDSCOPE_BIN: a frozen copy of the binary, so that rebuilding the tree
# mid-table does not change the runs still to come.
bin="${KDSCOPE_BIN:-$here/build/app/kdscope}"
methods=${KDSCOPE_METHODS:-"baseline fitnet defeat fgd pkd cwd logitkd"}
mkdir -p "$out"
# A pool of JOBS workers (xargs -P) over the runs still to do, seed by
# seed, so a finished or fast run never holds a core idle.
pending=""
for s in $seeds; do
  for m in $methods; do
    finished "$out/${m%%:*}-seed$s" || pending="$pending $m $s"
  done
done
export out steps jobs bin
[ -z "$pending" ] || printf '%s\n' $pending | xargs -n 2 -P "$jobs" sh "$0" __one
labels=""
for m in $methods; do labels="$labels ${m%%:*}"; done
methods=${labels# }
# The baseline at matched compute: trained (cosine over the longer
# schedule) for as many CPU seconds as the mean distillation run took,
# its teacher forward included: steps = STEPS x CPU(distill) / CPU(baseline),
# from the finished runs' own /usr/bin/time, rounded to 100.
if [ "${KDSCOPE_MATCHED:-1}" = 1 ] && [ ! -s "$out/matched_steps" ]; then
  /usr/bin/python3 "$here/tools/results_table.py" "$out" "$steps" --matched-steps > "$out/matched_steps.tmp" &&
    mv "$out/matched_steps.tmp" "$out/matched_steps" || rm -f "$out/matched_steps.tmp"
fi
if [ "${KDSCOPE_MATCHED:-1}" = 1 ] && [ -s "$out/matched_steps" ]; then
  pending=""
  for s in $seeds; do finished "$out/baseline-matched-seed$s" || pending="$pending baseline-matched $s"; done
  [ -z "$pending" ] || printf '%s\n' $pending | xargs -n 2 -P "$jobs" sh "$0" __one
  methods="baseline baseline-matched ${methods#baseline }"
fi
# The teacher row: the shipped checkpoint on the same validation split.
set -- ${KDSCOPE_TEACHER:-"$here/assets/configs/teacher.json $here/assets/teacher.safetensors"}
[ -s "$out/teacher.json" ] || "$bin" eval --config "$1" --checkpoint "$2" --json > "$out/teacher.json"
/usr/bin/python3 "$here/tools/results_table.py" "$out" "$steps"
# The table as a figure: every finished run, a row per method (its seeds),
# the teacher as a reference line (drawn by the tree's build: the frozen
# binary may predate the figure).
fig_bin="$here/build/app/kdscope"
[ -x "$fig_bin" ] || fig_bin=$bin
set --
labels=""
for m in $methods; do
  for s in $seeds; do
    finished "$out/$m-seed$s" || continue
    set -- "$@" --run "$out/$m-seed$s"
    labels="$labels,$m"
  done
done
teacher=$(/usr/bin/python3 -c 'import json,sys; print(round(100 * json.load(open(sys.argv[1]))["AP"], 1))' "$out/teacher.json")
if [ $# -gt 0 ]; then
  for fmt in pdf png; do
    "$fig_bin" export --figure results "$@" --labels "${labels#,}" --line "teacher=$teacher" \
      --width-in 3.3 --out "$out/results.$fmt" > /dev/null && echo "figure: $out/results.$fmt"
  done
fi
