#!/bin/sh
# A teacher distilled into itself: the student is the teacher's own
# architecture, loaded from the teacher's checkpoint, BN frozen, so both
# sides see the same images and compute the same tensors. Every
# distillation part without a learnable adapter must then be exactly 0.
# This checks the wiring the loss-level tests cannot: that the teacher's
# outputs reach each method anchor by anchor, level by level and image by
# image as the student's do (same augmentation, same layout, same RoIs),
# for the RetinaNet, GFL and Faster R-CNN families. A control run with a
# fresh student shows the same parts are not 0 when the sides differ.
# Usage: self_distill.sh KDSCOPE
set -u
kd=$1
cd "${KD_SOURCE_ROOT:?}" || exit 1
src=${KD_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [ ! -r "$src/t10k-images-idx3-ubyte.gz" ]; then
  echo "self_distill: skipped (dataset-fashion-mnist is not installed: no $src)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-self-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
common="--steps 1 --quiet --set train.lr=1e-6 --set train.threads=1 --set train.eval_images=8 --set probe.budget=0"
# run NAME CONFIG CHECKPOINT METHODS [--set K=V...]: one step; the step's
# parts into NAME.parts, one "key value" a line.
run() {
  name=$1 cfg=$2 ckpt=$3 methods=$4
  shift 4
  init=""
  [ -n "$ckpt" ] && init="--set train.init_checkpoint=$ckpt"
  # shellcheck disable=SC2086
  if ! "$kd" distill --config "$cfg" --out "$tmp/$name" $common $init --set distill.methods="$methods" "$@" \
      >"$tmp/$name.log" 2>&1; then
    no "$name: distill exited non-zero"; sed 's/^/  /' "$tmp/$name.log"; return
  fi
  grep -m1 '"parts"' "$tmp/$name/metrics.jsonl" | sed 's/.*"parts":{\([^}]*\)}.*/\1/' | tr ',' '\n' |
    sed 's/"\([^"]*\)":\(.*\)/\1 \2/' >"$tmp/$name.parts"
}
# zero NAME PART...: each part is logged and exactly 0.
zero() {
  name=$1
  shift
  [ -s "$tmp/$name.parts" ] || return
  for p in "$@"; do
    v=$(awk -v k="$p" '$1 == k { print $2 }' "$tmp/$name.parts")
    if [ -z "$v" ]; then no "$name: part $p not logged"; elif [ "$v" != 0 ]; then no "$name: $p = $v, expected 0"; fi
  done
}
teacher18="--set model.depth=18 --set model.width=32 --set model.bn=frozen"
# shellcheck disable=SC2086
run retina assets/configs/distill.json assets/teacher.safetensors rm,logitkd,pfi,pkd,cwd,defeat,fgd,csgr,frs,gk $teacher18
zero retina rm.kl logitkd.P3 logitkd.P4 logitkd.P5 pfi.P3 pfi.P4 pfi.P5 pkd.P3 pkd.P4 pkd.P5 cwd.P3 cwd.P4 cwd.P5 \
  defeat.head_obj defeat.head_bg fgd.fg fgd.bg fgd.mask fgd.rela csgr.cat csgr.rel frs.feat frs.cls gk.soft
# shellcheck disable=SC2086
run gfl assets/configs/distill-ld.json assets/teacher-gfl.safetensors ld,pgd,frs,pkd,logitkd $teacher18
zero gfl ld.main ld.vlr ld.cls pgd.fg pgd.bg pgd.cls_att pgd.reg pgd.reg_att frs.feat frs.cls pkd.P3 pkd.P5 logitkd.P4
# shellcheck disable=SC2086
run frcnn assets/configs/distill-frcnn.json assets/teacher-frcnn.safetensors defeat_roi,pkd,cwd,gk $teacher18 \
  --set roi.representation=256
zero frcnn defeat_roi.roi_obj defeat_roi.roi_bg pkd.P2 pkd.P6 cwd.P2 cwd.P6 gk.soft
# The control: the preset's own student, from scratch.
run control assets/configs/distill.json "" rm,logitkd,pkd
for p in rm.kl logitkd.P3 pkd.P3; do
  awk -v k="$p" '$1 == k && $2 + 0 > 0 { f = 1 } END { exit !f }' "$tmp/control.parts" ||
    no "control: $p is not positive with a fresh student"
done
[ $fail = 0 ] && echo "self_distill: ok (RetinaNet, GFL and Faster R-CNN teachers into themselves: every adapter-free part 0)"
exit $fail
