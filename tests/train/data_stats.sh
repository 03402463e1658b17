#!/bin/sh
# kdscope data-stats and make-dataset's report: on a small real fashion-det
# build (the report's box count is the json's), and on a hand-made COCO
# set whose boxes sit exactly on anchors (IoU 1 on P3 and on P5 at
# anchor.size_mult=1), a crowd box left out, and bad input.
# Usage: data_stats.sh KDSCOPE
set -u
kd=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-datastats-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
py=/usr/bin/python3
"$kd" make-dataset --out "$tmp/fd" --train 40 --val 8 --threads 1 >"$tmp/build" 2>"$tmp/build.err" || no "make-dataset exited $?: $(cat "$tmp/build.err")"
grep -q '^by COCO area range' "$tmp/build" || no "make-dataset printed no box report"
n=$($py -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["annotations"]))' "$tmp/fd/annotations/instances_train.json")
grep -q "40 images, $n boxes" "$tmp/build" || no "the report does not count the json's $n boxes: $(grep images "$tmp/build")"
"$kd" data-stats --data "$tmp/fd" --split val --json >"$tmp/val.json" 2>&1 || no "data-stats --split val exited $?"
# The hand-made set: one real image, three boxes and a crowd region.
mkdir -p "$tmp/hand/annotations" "$tmp/hand/images/train"
cp "$tmp/fd/images/train/000001.jpg" "$tmp/hand/images/train/a.jpg"
cat >"$tmp/hand/annotations/instances_train.json" <<'JSON'
{"images": [{"id": 1, "file_name": "a.jpg", "width": 128, "height": 128}],
 "categories": [{"id": 1, "name": "thing"}],
 "annotations": [
  {"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 20, 8, 8], "area": 64, "iscrowd": 0},
  {"id": 2, "image_id": 1, "category_id": 1, "bbox": [16, 16, 32, 32], "area": 1024.5, "iscrowd": 0},
  {"id": 3, "image_id": 1, "category_id": 1, "bbox": [60, 60, 40, 40], "area": 1600, "iscrowd": 0},
  {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 1}]}
JSON
"$kd" data-stats --data "$tmp/hand" --set anchor.size_mult=1 --json >"$tmp/hand.json" 2>"$tmp/hand.err" || no "data-stats on the hand set exited $?: $(cat "$tmp/hand.err")"
$py - "$tmp/hand.json" "$tmp/val.json" <<'PY' || fail=1
import json, sys
s = json.load(open(sys.argv[1]))
bad = []
def want(cond, what):
    if not cond: bad.append(what)
want(s["boxes"] == 3 and s["crowd_left_out"] == 1, f"3 boxes and 1 crowd, got {s['boxes']}, {s['crowd_left_out']}")
sm = s["by_area"]["small"]   # the 8x8 box on a P3 anchor (8 px), the 32x32 one (area 1024.5 > 32^2 is medium)
want(sm["boxes"] == 1 and abs(sm["mean_best_iou"] - 1) < 1e-6 and sm["best_level_share"]["P3"] == 1, f"small: {sm}")
md = s["by_area"]["medium"]
want(md["boxes"] == 2 and md["best_level_share"]["P5"] >= 0.5, f"medium: the 32x32 box is on P5's 32 px anchor: {md}")
b = {g["side"]: g for g in s["by_side"]}
want(b["< 16 px"]["boxes"] == 1 and b["< 16 px"]["positive_share"] == 1, f"< 16 px: {b['< 16 px']}")
want(b["32-48 px"]["boxes"] == 2, f"32-48 px holds the 32 and 40 px boxes: {b['32-48 px']}")
want(s["side_px"]["min"] == 8 and s["side_px"]["max"] == 40, f"sides: {s['side_px']}")
sw = {g["size_mult"]: g for g in s["anchor_size_sweep"]}
want(abs(sw[1]["mean_best_iou"] - s["by_area"]["all"]["mean_best_iou"]) < 1e-9, "the sweep's size 1 row is the config's")
want(sw[8]["mean_best_iou"] < sw[1]["mean_best_iou"], "8 x stride anchors fit these boxes worse than 1 x")
v = json.load(open(sys.argv[2]))
tot = sum(v["by_area"][k]["boxes"] for k in ("small", "medium", "large"))
want(tot == v["boxes"] and sum(g["boxes"] for g in v["by_side"]) == v["boxes"], "area ranges and side bins each add up to all boxes")
for g in [v["by_area"]["all"]] + v["anchor_size_sweep"]:
    want(abs(sum(g["best_level_share"].values()) - 1) < 1e-9, f"level shares sum to 1: {g}")
for w in bad: print("FAIL:", w)
sys.exit(1 if bad else 0)
PY
"$kd" data-stats --data "$tmp/none" >"$tmp/err" 2>&1 && no "a missing data set exited 0"
grep -q "instances_train.json" "$tmp/err" || no "the missing data set's message names the file: $(cat "$tmp/err")"
"$kd" data-stats --data "$tmp/hand" --set anchor.size_mult=99 >"$tmp/err" 2>&1 && no "anchor.size_mult=99 exited 0"
grep -q "anchor.size_mult" "$tmp/err" || no "the range error names anchor.size_mult: $(cat "$tmp/err")"
[ $fail = 0 ] && echo "data_stats: ok"
exit $fail
