#!/usr/bin/python3
"""Parity of `kdscope loss --method ld` (model.head=gfl) with PyTorch.

Each case draws GFL outputs of both sides (teacher.dist.P3 / student.dist.P3
(N, 4*(R+1), H, W), teacher.cls.P3 / student.cls.P3 (N, K, H, W)) and GT
boxes, runs `kdscope loss`, and recomputes in float64: the single square
anchors (anchor.size_mult x stride on the points (x, y) * stride), ATSS and
LD's VLR (tests/detect/gfl_ref.py, restated from mmdetection's ATSSAssigner
and the LD repository's assigner) and LD's parts (ld_oracle.py, restated
from the LD repository's kernel and LDHead). Loss, parts and d(loss)/d(the
student's dist and cls) agree to 1e-4 relative.

Usage: ld_loss_oracle.py KDSCOPE. Exits 77 without torch or numpy.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "detect"))
import loss_oracle_b as lo  # noqa: E402  (exits 77 without torch)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from gfl_ref import atss_match_vlr  # noqa: E402
from ld_oracle import ld_parts  # noqa: E402

LEVELS = ("P3", "P4", "P5")


def anchors(hw, mult):
    out = []
    for l, (h, w) in enumerate(hw):
        s = 8 << l
        half = mult * s / 2.0
        for y in range(h):
            for x in range(w):
                out.append([x * s - half, y * s - half, x * s + half, y * s + half])
    return torch.tensor(out, dtype=torch.float64)


def case(kd, tmp, rng, name, sets, p, n=2, k=3, reg_max=7, img=(64, 64), mult=2.0):
    hw = [(img[0] // 8, img[1] // 8), (img[0] // 16, img[1] // 16), (img[0] // 32, img[1] // 32)]
    B = reg_max + 1
    arrays = {}
    for lv, (h, w) in zip(LEVELS, hw):
        for who in ("teacher", "student"):
            arrays["%s.dist.%s" % (who, lv)] = (rng.standard_normal((n, 4 * B, h, w)) * 2).astype(np.float32)
            arrays["%s.cls.%s" % (who, lv)] = (rng.standard_normal((n, k, h, w)) * 2).astype(np.float32)
    boxes, labels = lo.random_gt(rng, n, img, k)
    arrays["gt.boxes"], arrays["gt.labels"] = boxes, labels
    arrays["image.size"] = np.array(img, np.float32)
    sets = ["model.head=gfl", "anchor.size_mult=%g" % mult, "gfl.reg_max=%d" % reg_max] + sets

    def oracle():
        an = anchors(hw, mult)
        At = an.shape[0]
        lab = torch.full((n, At), -1, dtype=torch.long)
        vlr = torch.zeros((n, At), dtype=torch.float64)
        for i in range(n):
            rows = boxes[:, 0] == i
            gt = torch.tensor(boxes[rows, 1:], dtype=torch.float64)
            if len(gt) == 0:
                continue
            match, _, v = atss_match_vlr(torch, an, gt, [h * w for h, w in hw], 9, p["vlr_lo"])
            gl = torch.tensor(labels[rows]).long()
            lab[i] = torch.where(match >= 0, gl[match.clamp(min=0)], torch.full_like(match, -1))
            vlr[i] = v
        sd = [lo.t64(arrays["student.dist." + lv], True) for lv in LEVELS]
        sc = [lo.t64(arrays["student.cls." + lv], True) for lv in LEVELS]
        td = [lo.t64(arrays["teacher.dist." + lv]) for lv in LEVELS]
        tc = [lo.t64(arrays["teacher.cls." + lv]) for lv in LEVELS]
        parts = ld_parts(torch, F, sd, td, sc, tc, lab, vlr, p)
        sum(parts.values()).backward()
        def g(x):  # a level without positives or VLR gets no gradient at all
            return x.grad.numpy() if x.grad is not None else np.zeros(tuple(x.shape))
        grads = {"grad.student.dist." + lv: g(x) for lv, x in zip(LEVELS, sd)}
        grads.update({"grad.student.cls." + lv: g(x) for lv, x in zip(LEVELS, sc)})
        return {"ld." + k: v for k, v in parts.items()}, grads

    return lo.run_case(kd, tmp, name, "ld", arrays, sets, oracle)


def main():
    if len(sys.argv) != 2:
        print("usage: ld_loss_oracle.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(20261202)
    base = {"ld": 0.25, "ld_T": 10.0, "vlr": 0.25, "vlr_T": 10.0, "vlr_lo": 0.25, "kd": 10.0, "kd_T": 2.0}
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-ld-parity-") as tmp:
        fails += case(kd, tmp, rng, "ld_defaults", [], base)
        alt = dict(base, ld=1.0, ld_T=2.0, vlr=0.5, vlr_T=3.0, vlr_lo=0.4, kd=1.0, kd_T=1.0)
        fails += case(kd, tmp, rng, "ld_settings", ["ld.ld=1", "ld.ld_T=2", "ld.vlr=0.5", "ld.vlr_T=3", "ld.vlr_lo=0.4",
                                                    "ld.kd=1", "ld.kd_T=1"], alt, n=3, k=4, reg_max=16, img=(96, 64))
        fails += case(kd, tmp, rng, "ld_anchor3", ["anchor.size_mult=3"], base, n=1, mult=3.0)
    print("%d case(s) failed" % fails if fails else "all cases agree with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
