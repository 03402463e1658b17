#!/bin/sh
# A few kills of the kill -9 soak (tools/soak_kill.py, docs/RELIABILITY.md)
# on a small data set: a headless distillation with the shipped teacher,
# SIGKILLed 4 times (at a random moment, inside a checkpoint write, inside a
# snapshot write, after an index append) and resumed each time, must end
# with every file readable and every logged loss and checkpoint identical
# to an uninterrupted run. Usage: soak_smoke.sh KDSCOPE
set -u
kd=$1
here=$(cd "$(dirname "$0")" && pwd)
[ -x /usr/bin/python3 ] || { echo "skip: /usr/bin/python3 not found"; exit 77; }
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || [ -n "${KD_FASHION_MNIST_DIR:-}" ] || {
  echo "skip: dataset-fashion-mnist is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-soak-XXXXXX")
"$kd" make-dataset --out "$tmp/data" --train 48 --val 8 --seed 2 >/dev/null 2>&1 || { echo "FAIL: make-dataset"; exit 1; }
/usr/bin/python3 "$here/../../tools/soak_kill.py" --kdscope "$kd" --data "$tmp/data" --work "$tmp" --kills 4 \
  --steps 30 --ckpt 5 --eval-every 0 --max-random 3 --nice 0
rc=$?
[ $rc = 0 ] && rm -rf "$tmp" || echo "soak_smoke: kept $tmp"
exit $rc
