#!/bin/sh
# Builds test_run (four threads hammering a live run) under ThreadSanitizer
# and runs it. Usage: tests/train/run_tsan.sh [BUILD_DIR] (default
# build-tsan, next to the source tree).
#
# OMP_NUM_THREADS=1: libgomp (and the OpenMP OpenBLAS) are not built with
# TSan, so their barriers look like races between the worker threads they
# spawn. With one OpenMP thread no worker exists and every report left is
# about our own threads: the run thread, the callers, the data loader.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-tsan}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" -Dwerror=true -Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false -Dui=disabled
fi
ninja -C "$build" tests/train/test_run
export OMP_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
"$build/tests/train/test_run"
echo "run_tsan: ThreadSanitizer reported nothing"
