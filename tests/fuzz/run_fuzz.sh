#!/bin/sh
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,
# undefined) in a temp directory and runs each on a copy of its seed corpus
# for FUZZ_SECONDS (default 60). Exit 77 (skip) when clang or the libFuzzer
# runtime (libclang-rt-NN-dev) is missing. A crash fails the run and leaves
# its reproducer in FUZZ_ARTIFACTS (default /tmp/kd-fuzz-artifacts):
#   reproduce with: <target> <crash file>  (targets are built by meson
#   -Dfuzz=true with CC=clang, or by this script with FUZZ_KEEP=1).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-clang}
artifacts=${FUZZ_ARTIFACTS:-/tmp/kd-fuzz-artifacts}

command -v "$cc" >/dev/null 2>&1 || { echo "skip: $cc not found (apt-get install clang)"; exit 77; }
command -v pkg-config >/dev/null 2>&1 || { echo "skip: pkg-config not found"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-fuzz-XXXXXX")
if [ -n "${FUZZ_KEEP:-}" ]; then echo "fuzz: building in $tmp (kept)"; else trap 'rm -rf "$tmp"' EXIT; fi

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$tmp/probe.c"
"$cc" -fsanitize=fuzzer "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1 || {
  echo "skip: $cc cannot link -fsanitize=fuzzer (install libclang-rt-NN-dev)"; exit 77; }

flags="-g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
flags="$flags -I$root/engine $(pkg-config --cflags libcjson libturbojpeg)"
libs="$(pkg-config --libs libcjson libturbojpeg zlib) -lm -lpthread"
srcs=""
for s in core/error.c core/rng.c core/fileio.c data/dataset.c data/coco.c data/jpeg.c data/transform.c; do
  srcs="$srcs $root/engine/$s"
done
mkdir -p "$artifacts"
status=0
for t in coco_json jpeg; do
  # shellcheck disable=SC2086
  "$cc" $flags -o "$tmp/fuzz_$t" "$here/fuzz_$t.c" $srcs $libs || { echo "FAIL: cannot build fuzz_$t"; exit 1; }
  mkdir -p "$tmp/corpus_$t"
  cp "$here/corpus/$t/"* "$tmp/corpus_$t/"
  echo "fuzz_$t: ${secs}s on $(ls "$tmp/corpus_$t" | wc -l) seed inputs"
  if ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" \
     "$tmp/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -artifact_prefix="$artifacts/fuzz_$t-" -print_final_stats=1 "$tmp/corpus_$t" >"$tmp/$t.log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$tmp/$t.log" | sed "s/^/fuzz_$t: /"
  else
    tail -40 "$tmp/$t.log"
    echo "FAIL: fuzz_$t found a problem; reproducer in $artifacts/"
    status=1
  fi
done
[ $status = 0 ] && echo "fuzz: ok"
exit $status
