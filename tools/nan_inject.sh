#!/bin/sh
# The NaN/Inf figures of docs/RELIABILITY.md, from the outside: headless
# `kdscope distill` runs with the test hook debug.inject_nan_step.
#   A  NaN loss at step 25: the process pauses with the message; `kdscope
#      stop` writes its in-memory weights as a step-24 checkpoint (its own
#      checkpoints come every 10 steps, the reference's every 8), which
#      must be byte-identical to the uninterrupted run's step-24 checkpoint;
#      `--resume --set debug.inject_nan_step=0` then finishes the run with
#      every step's losses equal to the uninterrupted run's.
#   B  NaN gradient at step 25, then `kdscope resume RUN_DIR` (the live
#      resume): the same process continues to the last step.
# Usage: tools/nan_inject.sh [KDSCOPE] (default build/app/kdscope); work in
# NAN_WORK (default /tmp/kd-nan). Exit 0 when every check holds.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
kd=${1:-$root/build/app/kdscope}
work=${NAN_WORK:-/tmp/kd-nan}
rm -rf "$work" && mkdir -p "$work"
common="--quiet --steps 40 --set train.eval_every=0 --set train.eval_images=8 --set train.threads=1 --set probe.budget=0"
fails=0
check() { if eval "$2"; then echo "ok:   $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi; }
# The metrics lines without their clock fields.
losses() { sed -e 's/"time":"[^"]*",//' -e 's/"step_s":[^,]*,"data_wait_s":[^,]*,//' -e 's/"seconds":[^,]*,//' "$1/metrics.jsonl"; }
wait_paused() { # RUN_DIR LOG: until the run logs its pause (60 s at most)
  i=0
  while [ $i -lt 600 ] && ! grep -q '"event":"pause"' "$1/events.jsonl" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
}

# shellcheck disable=SC2086
"$kd" distill $common --set train.checkpoint_every=8 --out "$work/ref" 2>"$work/ref.log" || { echo "FAIL: reference run"; exit 1; }

# A: NaN loss, stop while paused, resume without the hook.
# shellcheck disable=SC2086
"$kd" distill $common --set train.checkpoint_every=10 --set debug.inject_nan_step=25 --out "$work/a" 2>"$work/a.log" &
pid=$!
wait_paused "$work/a"
sleep 0.3
check "A: the run paused with a message naming the part and the step" \
  "grep -q 'non-finite det.cls in step 25' '$work/a.log' && grep -q '\"event\":\"nonfinite\".*\"part\":\"det.cls\"' '$work/a/events.jsonl'"
check "A: no checkpoint of step 24 before the stop" "[ ! -e '$work/a/checkpoints/step_00000024.safetensors' ]"
check "A: no step after the NaN step while paused" "[ \"\$(grep -c '\"loss\"' '$work/a/metrics.jsonl')\" = 24 ]"
"$kd" stop "$work/a" --wait >/dev/null
wait $pid
check "A: the weights written after the NaN step equal the uninterrupted run's step 24, byte for byte" \
  "cmp -s '$work/a/checkpoints/step_00000024.safetensors' '$work/ref/checkpoints/step_00000024.safetensors' && \
   cmp -s '$work/a/checkpoints/step_00000024.optim.safetensors' '$work/ref/checkpoints/step_00000024.optim.safetensors'"
"$kd" distill --quiet --resume "$work/a" --set debug.inject_nan_step=0 2>>"$work/a.log"
check "A: --resume finished the run" "grep -q '\"event\":\"finish\"' '$work/a/events.jsonl'"
losses "$work/ref" >"$work/ref.losses"
losses "$work/a" >"$work/a.losses"
check "A: all 40 steps' losses and the final evaluation equal the uninterrupted run's" "cmp -s '$work/ref.losses' '$work/a.losses'"

# B: NaN gradient, live resume in the same process.
# shellcheck disable=SC2086
"$kd" distill $common --set train.checkpoint_every=10 --set debug.inject_nan_step=25 --set debug.inject_nan_in=gradient \
  --out "$work/b" 2>"$work/b.log" &
pid=$!
wait_paused "$work/b"
check "B: the run paused on the gradient" "grep -q 'non-finite gradient in step 25' '$work/b.log'"
"$kd" resume "$work/b" --wait >/dev/null
wait $pid
rc=$?
check "B: kdscope resume continued the same process to step 40" \
  "[ $rc = 0 ] && grep -q '\"event\":\"finish\"' '$work/b/events.jsonl' && [ \"\$(grep -c '\"loss\"' '$work/b/metrics.jsonl')\" = 40 ]"
check "B: steps 1..24 equal the uninterrupted run's" \
  "[ \"\$(losses '$work/b' | head -24)\" = \"\$(head -24 '$work/ref.losses')\" ]"
[ $fails = 0 ] && echo "nan_inject: every check held" || echo "nan_inject: $fails checks failed"
exit $((fails > 0))
