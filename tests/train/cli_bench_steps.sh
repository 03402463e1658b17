#!/bin/sh
# kdscope bench steps at a small size: the JSON has every figure, the
# two-stage teacher's forward and training step among them, with
# positive times, GFLOP/s and arena peaks; the text names them too.
# Usage: cli_bench_steps.sh KDSCOPE
set -u
kd=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-bench-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
"$kd" bench steps --json --steps 1 --batch 2 --size 64 >"$tmp/b.json" 2>"$tmp/err" || no "bench steps --json exited $?: $(cat "$tmp/err")"
/usr/bin/python3 - "$tmp/b.json" <<'PY' || fail=1
import json, sys
b = json.load(open(sys.argv[1]))
bad = [k for k in ("teacher_fwd_s", "student_step_s", "teacher_train_step_s", "distill_step_s", "frcnn_fwd_s",
                   "frcnn_train_step_s", "frcnn_fwd_gflops", "frcnn_train_step_gflops", "frcnn_fwd_arena_bytes",
                   "frcnn_arena_bytes") if not b.get(k, 0) > 0]
if bad or b["batch"] != 2 or b["size"] != 64:
    print("FAIL: bench steps JSON: missing or not positive:", bad, b)
    sys.exit(1)
print("frcnn forward %.1f ms, training step %.1f ms, arena %.0f MiB" % (1e3 * b["frcnn_fwd_s"], 1e3 * b["frcnn_train_step_s"],
                                                                       b["frcnn_arena_bytes"] / 2**20))
PY
"$kd" bench steps --steps 1 --batch 2 --size 64 >"$tmp/b.txt" 2>&1 || no "bench steps exited $?"
grep -q 'two-stage teacher forward .* ms .* GFLOP/s' "$tmp/b.txt" && grep -q 'two-stage teacher train step .* arena' "$tmp/b.txt" ||
  no "text output without the two-stage figures: $(cat "$tmp/b.txt")"
[ $fail = 0 ] && echo "cli_bench_steps: ok"
exit $fail
