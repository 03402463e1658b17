#!/bin/sh
# The fuzzing figures of docs/RELIABILITY.md: builds every libFuzzer target
# (clang, ASan + UBSan, coverage instrumentation of the whole engine) in
# build-fuzz/ and runs each in turn on a copy of its seed corpus.
#   tools/fuzz_campaign.sh [TARGET...]      (default: all six)
# FUZZ_SECONDS per target (default 600), FUZZ_OUT for logs, grown corpora
# and crash files (default /tmp/kd-fuzz-campaign). Prints one line per
# target: executions, exec/s, coverage (libFuzzer's cov = edges, ft =
# features), corpus size, peak RSS, crashes. Exit 1 when any target
# crashed; the reproducer is FUZZ_OUT/<target>/crash-* and replays with
#   build-fuzz/tests/fuzz/fuzz_<target> FILE
# A fixed crash goes into tests/fuzz/corpus/<target>/ (the normal suite
# replays every file there in tests replay_<target>).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-600}
out=${FUZZ_OUT:-/tmp/kd-fuzz-campaign}
build=$root/build-fuzz
targets=${*:-coco_json jpeg safetensors config snapshot loss_inputs}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" "$root" -Dfuzz=true -Dui=disabled -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized >/dev/null || { echo "fuzz_campaign: meson setup failed"; exit 1; }
fi
for t in $targets; do
  ninja -C "$build" "tests/fuzz/fuzz_$t" >/dev/null || { ninja -C "$build" "tests/fuzz/fuzz_$t"; exit 1; }
done

mkdir -p "$out"
status=0
printf '%-12s %6s %10s %7s %6s %6s %7s %7s %s\n' target secs execs exec/s cov ft corpus rss_mb crashes
for t in $targets; do
  d=$out/$t
  rm -rf "$d"
  mkdir -p "$d/corpus"
  cp "$root/tests/fuzz/corpus/$t/"* "$d/corpus/"
  # One OpenMP thread: the loss target runs kernels; the fuzzer is serial.
  OMP_NUM_THREADS=1 ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS=print_stacktrace=1 \
    nice -n "${FUZZ_NICE:-19}" "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$d/" "$d/corpus" >"$d/log" 2>&1
  rc=$?
  crashes=$(ls "$d" | grep -cE '^(crash|leak|timeout|oom)-')
  [ $rc = 0 ] && [ "$crashes" = 0 ] || status=1
  last=$(grep -E '^#[0-9]+' "$d/log" | tail -1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$d/log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$d/log")
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$d/log")
  printf '%-12s %6s %10s %7s %6s %6s %7s %7s %s\n' "$t" "${took:-?}" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "$(ls "$d/corpus" | wc -l)" "${rss:-?}" "$crashes"
  [ $rc = 0 ] || { echo "fuzz_campaign: $t stopped (exit $rc); see $d/log"; grep -m3 -E 'ERROR|runtime error' "$d/log"; }
done
exit $status
