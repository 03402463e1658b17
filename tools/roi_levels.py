#!/usr/bin/python3
"""How a COCO set's boxes spread over FPN levels under the RoI level mapper
(torchvision's LevelMapper, detect/roi_pool.h) for several canonical
scales: level floor(k0 + log2(sqrt(w*h) / s0) + 1e-6) clamped to 2..5.
Boxes are scaled to the network input as a letterbox of SIZE does.
  /usr/bin/python3 tools/roi_levels.py [ANNOTATIONS_JSON] [--size 128] [--level 4]
Default: the fashion-det train split (docs/DETECT.md)."""
import argparse, json, math, os

ap = argparse.ArgumentParser()
ap.add_argument("json", nargs="?",
                default=os.path.expanduser("~/.local/share/kdscope/fashion-det/annotations/instances_train.json"))
ap.add_argument("--size", type=int, default=128)
ap.add_argument("--level", type=int, default=4)
a = ap.parse_args()
d = json.load(open(a.json))
scale = {im["id"]: a.size / max(im["width"], im["height"]) for im in d["images"]}
sides = sorted(math.sqrt(b["bbox"][2] * b["bbox"][3]) * scale[b["image_id"]]
               for b in d["annotations"] if not b.get("iscrowd"))
n = len(sides)
print("%d boxes, sqrt(w*h) at %d px: min %.1f, median %.1f, max %.1f" % (n, a.size, sides[0], sides[n // 2], sides[-1]))
print("s0 (k0=%d)     P2      P3      P4      P5" % a.level)
for s0 in (224, 112, 64, 56, 48, 32):
    h = [0] * 4
    for v in sides:
        k = math.floor(a.level + math.log2(max(v, 1e-9) / s0) + 1e-6)
        h[min(max(k, 2), 5) - 2] += 1
    print("%-10d" % s0 + "".join("%7.1f%%" % (100.0 * x / n) for x in h))
