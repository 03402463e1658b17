#!/bin/sh
# The make-dataset verb end to end: a small build with a preview, refusal
# to overwrite, --force, the default location, --bench, and user errors
# (exit 1 with a message, never a crash). Usage: cli_make_dataset.sh KDSCOPE
set -u
kd=$1
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || [ -n "${KD_FASHION_MNIST_DIR:-}" ] || {
  echo "skip: dataset-fashion-mnist is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-cli-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check DESCRIPTION EXPECTED_STATUS GREP_PATTERN -- command...
  desc=$1 want=$2 pat=$3; shift 4
  "$@" >"$tmp/out" 2>&1; got=$?
  if [ "$got" != "$want" ]; then echo "FAIL: $desc: exit $got, expected $want"; cat "$tmp/out"; fail=1; return; fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/out"; then echo "FAIL: $desc: no '$pat' in:"; cat "$tmp/out"; fail=1; fi
}
check "help" 0 "--preview" -- "$kd" make-dataset --help
check "build" 0 "36 train + 6 val\|30 train + 6 val" -- "$kd" make-dataset --out "$tmp/fd" --train 30 --val 6 --seed 3 --preview "$tmp/p.png"
for f in fashion-det.json annotations/instances_train.json annotations/instances_val.json images/train/000030.jpg images/val/000006.jpg; do
  [ -f "$tmp/fd/$f" ] || { echo "FAIL: missing $f"; fail=1; }
done
[ -f "$tmp/fd/images/train/000031.jpg" ] && { echo "FAIL: too many images"; fail=1; }
head -c 8 "$tmp/p.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || { echo "FAIL: preview is not a PNG"; fail=1; }
check "same seed, another process" 0 "" -- "$kd" make-dataset --out "$tmp/fd2" --train 30 --val 6 --seed 3 --threads 1
diff -r "$tmp/fd" "$tmp/fd2" >/dev/null || { echo "FAIL: same seed gave different bytes"; fail=1; }
check "no overwrite" 1 "--force" -- "$kd" make-dataset --out "$tmp/fd" --train 30 --val 6
check "force" 0 "" -- "$kd" make-dataset --out "$tmp/fd" --train 30 --val 6 --force
check "preview existing" 0 "preview:" -- "$kd" make-dataset --data "$tmp/fd" --split val --preview "$tmp/v.png"
check "bench" 0 "images/s" -- "$kd" make-dataset --data "$tmp/fd" --split val --bench
check "default location" 0 "kdscope/fashion-det" -- env XDG_DATA_HOME="$tmp/xdg" "$kd" make-dataset --train 8 --val 2
[ -f "$tmp/xdg/kdscope/fashion-det/fashion-det.json" ] || { echo "FAIL: default set not built"; fail=1; }
check "bad number" 1 "--train expects a whole number" -- "$kd" make-dataset --out "$tmp/x" --train abc
check "bad size" 1 "--size expects" -- "$kd" make-dataset --out "$tmp/x" --size 5
check "unknown option" 1 "unknown option '--frobnicate'" -- "$kd" make-dataset --frobnicate
check "missing value" 1 "expects" -- "$kd" make-dataset --out
check "missing data" 1 "$tmp/nope/annotations/instances_train.json: cannot open" -- "$kd" make-dataset --data "$tmp/nope" --preview "$tmp/n.png"
check "out and data" 1 "not both" -- "$kd" make-dataset --out "$tmp/a" --data "$tmp/b"
[ -e "$tmp/x" ] && { echo "FAIL: a failed build left $tmp/x"; fail=1; }
[ $fail = 0 ] && echo "cli_make_dataset: ok"
exit $fail
