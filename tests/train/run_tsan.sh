#!/bin/sh
# ThreadSanitizer on every test where our threads meet: the run thread under
# concurrent control (test_run), resume and the non-finite pause
# (test_run_resume), real processes driving a headless run through its
# control file (test_live_cli, with kdscope itself built under TSan), the
# prober and the snapshot index followed while written (test_probe_files,
# test_probe_session), and the window's bridge to a live run (test_window,
# under Xvfb). Usage: tests/train/run_tsan.sh [BUILD_DIR] [TEST...]
# (default build-tsan next to the source tree, every test above).
#
# OMP_NUM_THREADS=1: libgomp (and the OpenMP OpenBLAS) are not built with
# TSan, so their barriers look like races between the worker threads they
# spawn. With one OpenMP thread no worker exists and every report left is
# about our own threads: the run thread, the callers, the data loader, the
# UI's main thread.
#
# ignore_noninstrumented_modules=1: GLib, GTK, Pango, fontconfig, Xlib are
# not built with TSan and sync their own worker threads (GThreadPool
# 'pool', font loading) with locks TSan cannot see (futex-based GMutex),
# so the libc calls they make (malloc, memcpy, strlen, free) on memory
# they share look racy. The flag ignores the libc calls made from inside
# those libraries only; every access of our (instrumented) code is still
# checked, on every thread and from every main-loop callback. A race put
# into kd_run_status on purpose is reported by test_window in this setup.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-tsan}
[ $# -gt 0 ] && shift
tests=${*:-test_run test_run_resume test_live_cli test_probe_files test_probe_session test_window}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" -Dwerror=true -Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false
fi
targets=""
for t in $tests; do
  case $t in
    test_run|test_run_resume) targets="$targets tests/train/$t" ;;
    test_live_cli) targets="$targets tests/train/$t app/kdscope" ;;
    test_probe_*) targets="$targets tests/probe/$t" ;;
    test_window) targets="$targets tests/ui/$t" ;;
    *) echo "run_tsan: unknown test $t"; exit 2 ;;
  esac
done
# shellcheck disable=SC2086
ninja -C "$build" $targets
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive KD_SOURCE_ROOT="$src"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 ${TSAN_OPTIONS:-}"
status=0 skipped=""
for t in $tests; do
  start=$(date +%s)
  set +e
  case $t in
    test_run|test_run_resume) "$build/tests/train/$t" ;;
    test_live_cli) "$build/tests/train/$t" "$build/app/kdscope" ;;
    test_probe_*) "$build/tests/probe/$t" ;;
    test_window) xvfb-run -a -s "-screen 0 1600x1000x24" "$build/tests/ui/$t" ;;
  esac
  rc=$?
  set -e
  case $rc in
    0) echo "run_tsan: $t clean ($(( $(date +%s) - start ))s)" ;;
    77) echo "run_tsan: $t SKIPPED"; skipped="$skipped $t" ;;
    *) echo "run_tsan: $t FAILED (exit $rc)"; status=1 ;;
  esac
done
[ $status = 0 ] && [ -z "$skipped" ] && echo "run_tsan: ThreadSanitizer reported nothing in: $tests"
[ -n "$skipped" ] && echo "run_tsan: skipped:$skipped"
exit $status
