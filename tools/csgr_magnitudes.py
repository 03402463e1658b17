#!/usr/bin/python3
"""CSGR's part magnitudes at the presets' shapes through `kdscope loss`:
batch 8, 64 channels, P3..P5 at 16/8/4 cells, random GT of 10 classes at
128 px, N(0,1) teacher and student features with correlation 0, 0.5, 0.9;
default settings, the CCA relation and batch standardisation
(docs/METHODS-CSGR.md, "Settings").

Usage: tools/csgr_magnitudes.py [KDSCOPE]   (default build/app/kdscope)"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "distill"))
import numpy as np  # noqa: E402
import loss_oracle_b as lob  # noqa: E402


def main():
    kd = sys.argv[1] if len(sys.argv) > 1 else "build/app/kdscope"
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="kd-csgr-mag-") as tmp:
        for corr in (0.0, 0.5, 0.9):
            for sets in ([], ["csgr.relation=cca"], ["csgr.norm=batch"]):
                a = lob.feature_inputs(rng, 8, 64, 64, [(16, 16), (8, 8), (4, 4)], corr=corr)
                boxes, labels = lob.random_gt(rng, 8, (128, 128), 10)
                a["gt.boxes"], a["gt.labels"], a["image.size"] = boxes, labels, np.array((128, 128), np.float32)
                ran = lob.run_loss(kd, tmp, "m", "csgr", a, sets)
                if ran is None:
                    return 1
                print("corr %.1f %-22s %s" % (corr, " ".join(sets) or "defaults",
                                              " ".join("%s %.4g" % kv for kv in ran[0]["parts"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
