#!/bin/sh
# Data-parallel runs over Open MPI (docs/RUNS.md, "Distributed runs"), with
# real processes under mpirun on a small fashion-det set:
#  1. equivalence: 2 ranks x 1 thread give the losses of 1 process x 1
#     thread with the same global batch and seed (step 1 to 1e-5 relative,
#     30 steps close);
#  2. one run directory: rank 0 writes it, rank 1 writes nothing anywhere;
#  3. control: a live `kdscope set` and `kdscope stop` on the run apply on
#     both ranks at the same step (a checkpoint compares the ranks' weights:
#     a rank that missed the change would end the run), then --resume with
#     a different N (1 process) continues;
#  3b. a non-finite loss on one rank pauses every rank at the same step;
#  4. faults: rank 1 SIGKILLed ends the job (no hang) and leaves a readable
#     run that --resume with 2 ranks finishes;
#  5. sharded evaluation: `kdscope eval` under 2 and 3 ranks (one with no
#     batch of its own) prints exactly one process's numbers, left-out
#     images and detections, on a set with a corrupt image; the 2-rank
#     run's own final evaluation equals one process's on its checkpoint;
#  6. train.reduce=ordered: two 3-rank runs give the same losses and the
#     same checkpoint bytes.
# Skipped (77) only where the build has no MPI or mpirun is missing.
# Usage: mpi_run.sh KDSCOPE HAVE_MPI(1|0) [MPIRUN]
set -u
kd=$1
[ "$2" = 1 ] || { echo "skip: built without MPI (install libopenmpi-dev, reconfigure with -Dmpi=enabled)"; exit 77; }
mpirun=${3:-}
[ -n "$mpirun" ] && [ -x "$mpirun" ] || { echo "skip: mpirun not found (openmpi-bin)"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "skip: /usr/bin/python3 not found"; exit 77; }
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || [ -n "${KD_FASHION_MNIST_DIR:-}" ] || {
  echo "skip: dataset-fashion-mnist is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-mpi-XXXXXX")
fail=0
no() { echo "FAIL: $*"; fail=1; }
# mpirun refuses root without these; CI's 2 cores need --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
# Open MPI's own allocations outlive MPI_Finalize: LeakSanitizer would
# report them in an ASan build (the serial runs below keep leak checks).
mpi_env="ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0"
mpi2() { env "$mpi_env" "$mpirun" -np 2 --oversubscribe --bind-to none "$@"; }
"$kd" make-dataset --out "$tmp/data" --train 48 --val 8 --seed 2 --threads 1 >/dev/null 2>&1 || { echo "FAIL: make-dataset"; exit 1; }
S="--data $tmp/data --set train.batch=4 --set data.size=64 --set train.threads=1 --set train.eval_every=0
   --set train.eval_images=8 --set probe.budget=0 --set model.bn=eval --set distill.methods=fitnet
   --set train.warmup_steps=5 --set train.seed=3"
mkdir -p "$tmp/cwd"
cd "$tmp/cwd" || exit 1

# metrics.jsonl's largest step, 0 if none.
last_step() { /usr/bin/python3 -c '
import json, sys
s = 0
try:
    for l in open(sys.argv[1]):
        try: s = max(s, json.loads(l).get("step", 0))
        except ValueError: pass
except OSError: pass
print(s)' "$1/metrics.jsonl"; }
# Waits until `cond` (a shell command) holds, at most $2 seconds.
wait_for() {
  n=0
  while ! sh -c "$1" 2>/dev/null; do
    n=$((n + 1))
    [ $n -gt $(($2 * 5)) ] && return 1
    sleep 0.2
  done
}

# Waits up to $2 s for background job $1 (mpirun of run directory $3) to
# end; a job still there then is killed, process by process (those whose
# command line names that run directory), and reported as hanging.
end_job() {
  n=0
  while kill -0 "$1" 2>/dev/null && [ $n -lt $(($2 * 5)) ]; do n=$((n + 1)); sleep 0.2; done
  kill -0 "$1" 2>/dev/null || return 0
  no "the job of $3 still runs after $2 s"
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "--out $3 " && kill -KILL "${p#/proc/}"
  done
}

# ---- 1, 2: equivalence and the single run directory ----
"$kd" distill --quiet --out "$tmp/one" $S --set train.steps=30 --set train.checkpoint_every=10 >"$tmp/one.log" 2>&1 ||
  no "1 process exited $?: $(tail -3 "$tmp/one.log")"
mpi2 "$kd" distill --quiet --out "$tmp/two" $S --set train.steps=30 --set train.checkpoint_every=10 >"$tmp/two.log" 2>&1 ||
  no "2 ranks exited $?: $(tail -5 "$tmp/two.log")"
/usr/bin/python3 - "$tmp/one/metrics.jsonl" "$tmp/two/metrics.jsonl" <<'EOF' || fail=1
import json, sys
def losses(path):
    out = {}
    for line in open(path):
        j = json.loads(line)
        if "loss" in j: out[j["step"]] = (j["loss"], j["parts"], j["num_pos"])
    return out
a, b = losses(sys.argv[1]), losses(sys.argv[2])
ok = sorted(a) == sorted(b) == list(range(1, 31))
if not ok: print("FAIL: steps logged: %s vs %s" % (sorted(a), sorted(b)))
rel = lambda x, y: abs(x - y) / max(abs(x), 1e-12)
r1 = max([rel(a[1][0], b[1][0])] + [rel(a[1][1][k], b[1][1][k]) for k in a[1][1]]) if ok else 1
worst = max(rel(a[s][0], b[s][0]) for s in a) if ok else 1
print("mpi_run: step 1 loss %.7g (1 process) vs %.7g (2 ranks): rel %.2g over loss and parts; "
      "30 steps: worst rel %.2g, step 30 %.6g vs %.6g" % (a[1][0], b[1][0], r1, worst, a[30][0], b[30][0]) if ok else "")
if ok and a[1][2] != b[1][2]: print("FAIL: num_pos %d vs %d" % (a[1][2], b[1][2])); ok = False
if r1 > 1e-5: print("FAIL: step 1 differs by %.3g relative" % r1); ok = False
if worst > 1e-2: print("FAIL: the curves part (worst relative difference %.3g)" % worst); ok = False
sys.exit(0 if ok else 1)
EOF
grep -q '"event":"start".*"ranks":2' "$tmp/two/events.jsonl" || no "the start event does not say 2 ranks"
for f in config.json events.jsonl metrics.jsonl metrics.csv checkpoints/step_00000030.safetensors; do
  [ -s "$tmp/two/$f" ] || no "the 2-rank run has no $f"
done
[ -z "$(ls -A "$tmp/cwd")" ] || no "a rank wrote into the working directory: $(ls -A "$tmp/cwd")"
[ "$(grep -c 'run directory' "$tmp/two.log")" = 1 ] || no "not exactly one rank reported the run"

# ---- 3: live set and stop on both ranks; resume with N = 1 ----
mpi2 "$kd" distill --quiet --out "$tmp/live" $S --set train.steps=400 --set train.checkpoint_every=1000 >"$tmp/live.log" 2>&1 &
mp=$!
wait_for "[ -s '$tmp/live/metrics.jsonl' ]" 120 || no "the live run logged no step"
"$kd" set "$tmp/live" train.lr=0.0002 >/dev/null 2>&1 || no "kdscope set failed"
wait_for "grep -q '\"event\":\"set\".*train.lr' '$tmp/live/events.jsonl'" 60 || no "no set event"
set_step=$(sed -n 's/^{"step":\([0-9]*\).*"event":"set".*train.lr.*/\1/p' "$tmp/live/events.jsonl" | head -1)
set_step=${set_step:-0}
wait_for "[ \$(grep -c '\"loss\"' '$tmp/live/metrics.jsonl') -ge $((set_step + 3)) ]" 120 ||
  no "the live run stopped stepping after the set"
"$kd" stop "$tmp/live" >/dev/null 2>&1 || no "kdscope stop failed"
end_job $mp 120 "$tmp/live"
wait $mp || no "the live run exited $? (a rank that missed the set ends it at the stop checkpoint): $(tail -5 "$tmp/live.log")"
stop_step=$(last_step "$tmp/live")
grep -q '"event":"stop"' "$tmp/live/events.jsonl" || no "no stop event"
[ -s "$tmp/live/checkpoints/step_$(printf %08d "$stop_step").safetensors" ] || no "no checkpoint at the stop (step $stop_step)"
echo "mpi_run: set train.lr at step $set_step, stopped at step $stop_step"
"$kd" distill --quiet --resume "$tmp/live" --steps $((stop_step + 4)) >"$tmp/resume1.log" 2>&1 ||
  no "resume with 1 process exited $?: $(tail -3 "$tmp/resume1.log")"
[ "$(last_step "$tmp/live")" = $((stop_step + 4)) ] || no "resume with 1 process ended at step $(last_step "$tmp/live")"

# ---- 3b: a non-finite loss on rank 1 alone: every rank skips and pauses ----
mpi2 "$kd" distill --quiet --out "$tmp/nan" $S --set train.steps=400 --set train.checkpoint_every=1000 \
  --set debug.inject_nan_step=3 --set debug.inject_nan_rank=1 >"$tmp/nan.log" 2>&1 &
mp=$!
wait_for "grep -q '\"event\":\"pause\".*nonfinite' '$tmp/nan/events.jsonl'" 120 || no "no non-finite pause"
grep -q '"event":"nonfinite".*loss on another rank' "$tmp/nan/events.jsonl" || no "rank 0 did not log rank 1's non-finite loss"
sleep 1
[ "$(last_step "$tmp/nan")" = 2 ] || no "a rank went on after rank 1's non-finite step 3 (last step $(last_step "$tmp/nan"))"
"$kd" stop "$tmp/nan" >/dev/null 2>&1 || no "kdscope stop failed"
end_job $mp 120 "$tmp/nan"
wait $mp || no "the paused run exited $? at its stop (the weights of the ranks differ?): $(tail -5 "$tmp/nan.log")"

# ---- 4: rank 1 killed; resume with N = 2 ----
mpi2 "$kd" distill --quiet --out "$tmp/kill" $S --set train.steps=400 --set train.checkpoint_every=4 >"$tmp/kill.log" 2>&1 &
mp=$!
wait_for "[ -s '$tmp/kill/checkpoints/step_00000004.safetensors' ]" 120 || no "the run wrote no checkpoint to kill after"
# The ranks are mpirun's children, under this shell's background job: find
# rank 1 by its command line (this run's directory) and its environment.
victim=
for p in /proc/[0-9]*; do
  tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "kdscope distill --quiet --out $tmp/kill " || continue
  tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=${p#/proc/}
done
if [ -n "$victim" ]; then
  kill -KILL "$victim"
  end_job $mp 60 "$tmp/kill"
  echo "mpi_run: rank 1 killed at step $(last_step "$tmp/kill"); the job ended $((n / 5)) s later"
else
  no "rank 1's process not found"
  end_job $mp 0 "$tmp/kill"
fi
wait $mp && no "the job exited 0 after a rank was killed"
/usr/bin/python3 - "$tmp/kill" <<'EOF' || fail=1
import json, os, sys
d = sys.argv[1]
json.load(open(os.path.join(d, "config.json")))
for name in ("events.jsonl", "metrics.jsonl"):
    lines = open(os.path.join(d, name)).read().split("\n")
    for l in lines[:-1]:  # a torn last line is what --resume drops
        json.loads(l)
EOF
killed=$(last_step "$tmp/kill")
mpi2 "$kd" distill --quiet --resume "$tmp/kill" --steps $((killed + 4)) >"$tmp/resume2.log" 2>&1 ||
  no "resume with 2 ranks exited $?: $(tail -5 "$tmp/resume2.log")"
[ "$(last_step "$tmp/kill")" = $((killed + 4)) ] || no "resume with 2 ranks ended at step $(last_step "$tmp/kill")"

# ---- 5: sharded evaluation ----
cp -r "$tmp/data" "$tmp/bad"
printf 'not a jpeg' >"$tmp/bad/images/val/000002.jpg"
ck="$tmp/two/checkpoints/step_00000030.safetensors"
"$kd" eval --config "$tmp/two/config.json" --checkpoint "$ck" --data "$tmp/bad" --json --dets-out "$tmp/e1.dets" \
  >"$tmp/e1.json" 2>"$tmp/e1.err" || no "eval (1 process) exited $?: $(tail -2 "$tmp/e1.err")"
grep -q '"images_left_out": 1' "$tmp/e1.json" || no "the corrupt image was not left out: $(cat "$tmp/e1.json")"
for n in 2 3; do
  env "$mpi_env" "$mpirun" -np $n --oversubscribe --bind-to none "$kd" eval --config "$tmp/two/config.json" --checkpoint "$ck" \
    --data "$tmp/bad" --json --dets-out "$tmp/e$n.dets" >"$tmp/e$n.json" 2>"$tmp/e$n.err" ||
    no "eval on $n ranks exited $?: $(tail -3 "$tmp/e$n.err")"
  cmp -s "$tmp/e1.json" "$tmp/e$n.json" || no "eval on $n ranks printed $(cat "$tmp/e$n.json"), one process $(cat "$tmp/e1.json")"
  cmp -s "$tmp/e1.dets" "$tmp/e$n.dets" || no "eval on $n ranks wrote other detections than one process"
done
"$kd" eval --config "$tmp/two/config.json" --checkpoint "$ck" --data "$tmp/data" --json >"$tmp/e0.json" 2>/dev/null ||
  no "eval of the 2-rank run's checkpoint exited $?"
/usr/bin/python3 - "$tmp/two/metrics.jsonl" "$tmp/e0.json" <<'EOF' || fail=1
import json, sys
ev = [json.loads(l)["eval"] for l in open(sys.argv[1]) if '"eval"' in l]
one = json.load(open(sys.argv[2]))
keys = ("AP", "AP50", "AP75", "AR100")
if not ev or any(abs(ev[-1][k] - one[k]) > 5e-7 for k in keys) or ev[-1]["images"] != one["images"]:
    print("FAIL: the 2-rank run's final evaluation %s, one process on its checkpoint %s" % (ev[-1:], one)); sys.exit(1)
print("mpi_run: sharded evaluation = one process's (AP %.6f over %d images)" % (one["AP"], one["images"]))
EOF

# ---- 6: the ordered reduction is bit-reproducible for a given N ----
for k in a b; do
  env "$mpi_env" "$mpirun" -np 3 --oversubscribe --bind-to none "$kd" distill --quiet --out "$tmp/ord$k" $S \
    --set train.batch=6 --set train.steps=8 --set train.reduce=ordered >"$tmp/ord$k.log" 2>&1 ||
    no "3 ranks, ordered reduction, exited $?: $(tail -3 "$tmp/ord$k.log")"
done
grep -o '"loss":[^,]*' "$tmp/orda/metrics.jsonl" >"$tmp/orda.loss"
grep -o '"loss":[^,]*' "$tmp/ordb/metrics.jsonl" >"$tmp/ordb.loss"
[ "$(wc -l <"$tmp/orda.loss")" = 8 ] && cmp -s "$tmp/orda.loss" "$tmp/ordb.loss" ||
  no "two ordered 3-rank runs logged different losses"
cmp -s "$tmp/orda/checkpoints/step_00000008.safetensors" "$tmp/ordb/checkpoints/step_00000008.safetensors" ||
  no "two ordered 3-rank runs wrote different weights"

if [ $fail = 0 ]; then
  echo "mpi_run: ok"
  rm -rf "$tmp"
else
  echo "mpi_run: kept $tmp"
fi
exit $fail
