#!/usr/bin/python3
"""Parity of `kdscope loss --method pgd` (model.head=gfl) with PyTorch.

Each case draws GFL teacher outputs (teacher.cls.P3 (N, K, H, W),
teacher.dist.P3 (N, 4*(R+1), H, W)), the head towers of both sides
({teacher,student}.{cls,reg}_tower.P3 (N, C, H, W)), GT boxes and the
Gaussian fits' draws (pgd.jitter (2, M, k, 2)), runs `kdscope loss`, and
recomputes in float64 with pgd_oracle.py, a restatement of the official
code (PGWAnchorModule, get_back_weight, PGDClsLoss, PGDRegLoss): the three
masks, then per level the cls loss (loss_weight 1 + lw_step log2(s/8)) and
the reg loss. Cases: the defaults (per-image masks), pgd.mix=official (the
code's (N,N,C,H,W) broadcast, which must differ from the per-image case),
other settings, precomputed masks (pgd.{cls,reg,bg}.P3 given; no teacher
predictions or GT needed), and FitNet with the masks as pieces:
fitnet.mask=pgd, gt (DeFeat's GT mask as torch_defeat_oracle.py restates it)
and fgd-scale (FGD's, torch_fgd_oracle.py). Loss, parts and d(loss)/d(the
student's towers, features, adapters) agree to 1e-4 relative.

Usage: pgd_loss_oracle.py KDSCOPE. Exits 77 without torch or numpy.
"""
import math
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import loss_oracle_b as lo  # noqa: E402  (exits 77 without torch)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import pgd_oracle as po  # noqa: E402

LEVELS = ("P3", "P4", "P5")
BASE = {"alpha": 0.08, "beta": 0.04, "gamma": 0.128, "delta": 8e-4, "temp": 0.8, "xi_cls": 0.8, "xi_reg": 0.6,
        "topk": 9, "lw_step": 0.25, "official": False}


def inputs(rng, n, k, reg_max, ch, img, topk, teacher=True, towers=("cls_tower0", "reg_tower0")):
    hw = [(img[0] // 8, img[1] // 8), (img[0] // 16, img[1] // 16), (img[0] // 32, img[1] // 32)]
    B = reg_max + 1
    arrays = {}
    for lv, (h, w) in zip(LEVELS, hw):
        if teacher:
            arrays["teacher.cls." + lv] = (rng.standard_normal((n, k, h, w)) * 2).astype(np.float32)
            arrays["teacher.dist." + lv] = (rng.standard_normal((n, 4 * B, h, w)) * 2).astype(np.float32)
            arrays["student.cls." + lv] = (rng.standard_normal((n, k, h, w)) * 2).astype(np.float32)
            arrays["student.dist." + lv] = (rng.standard_normal((n, 4 * B, h, w)) * 2).astype(np.float32)
        for tw in towers:
            t = rng.standard_normal((n, ch, h, w))
            arrays["teacher.%s.%s" % (tw, lv)] = t.astype(np.float32)
            arrays["student.%s.%s" % (tw, lv)] = (0.6 * t + 0.8 * rng.standard_normal((n, ch, h, w))).astype(np.float32)
    boxes, labels = lo.random_gt(rng, n, img, k)
    if teacher:
        arrays["gt.boxes"], arrays["gt.labels"] = boxes, labels
        arrays["pgd.jitter"] = rng.uniform(0, 1, (2, len(boxes), topk, 2)).astype(np.float32)
    arrays["image.size"] = np.array(img, np.float32)
    return arrays, hw, boxes, labels


def pgd_parts(arrays, masks, p):
    """PGD's five parts from the masks per level; the student's towers as leaves."""
    ct, rt = ("cls_tower", "reg_tower") if p.get("last") else ("cls_tower0", "reg_tower0")
    sc = [lo.t64(arrays["student.%s.%s" % (ct, lv)], True) for lv in LEVELS]
    sr = [lo.t64(arrays["student.%s.%s" % (rt, lv)], True) for lv in LEVELS]
    parts = {k: 0.0 for k in ("fg", "bg", "cls_att", "reg", "reg_att")}
    for l, lv in enumerate(LEVELS):
        tc, tr = lo.t64(arrays["teacher.%s.%s" % (ct, lv)]), lo.t64(arrays["teacher.%s.%s" % (rt, lv)])
        mc, mr, mb = masks[l]
        lw = 1.0 + p["lw_step"] * math.log2((8 << l) / 8)
        fg, bg, ml = po.cls_loss(torch, F, sc[l], tc, mc, mb, p["temp"], p["official"])
        rf, rm = po.reg_loss(torch, F, sr[l], tr, mr, p["temp"])
        parts["fg"] = parts["fg"] + lw * p["alpha"] * fg
        parts["bg"] = parts["bg"] + lw * p["beta"] * bg
        parts["cls_att"] = parts["cls_att"] + p["delta"] * ml
        parts["reg"] = parts["reg"] + p["gamma"] * rf
        parts["reg_att"] = parts["reg_att"] + p["delta"] * rm
    sum(parts.values()).backward()
    grads = {"grad.student.%s.%s" % (ct, lv): x.grad.numpy() for lv, x in zip(LEVELS, sc)}
    grads.update({"grad.student.%s.%s" % (rt, lv): x.grad.numpy() for lv, x in zip(LEVELS, sr)})
    return {"pgd." + k: v for k, v in parts.items()}, grads


def teacher_masks(arrays, boxes, labels, n, p):
    tcls = [lo.t64(arrays["teacher.cls." + lv]) for lv in LEVELS]
    tdist = [lo.t64(arrays["teacher.dist." + lv]) for lv in LEVELS]
    return po.gfl_masks(torch, F, tcls, tdist, boxes, labels, n, p["xi_cls"], p["xi_reg"], p["topk"], arrays["pgd.jitter"])


def zero_grads(arrays, g, kinds):
    for kind in kinds:
        for lv in LEVELS:
            name = "student.%s.%s" % (kind, lv)
            if name in arrays:
                g["grad." + name] = np.zeros(arrays[name].shape)
    return g


def case(kd, tmp, rng, name, sets, p, n=2, k=3, reg_max=7, ch=8, img=(64, 64)):
    tw = ("cls_tower", "reg_tower") if p.get("last") else ("cls_tower0", "reg_tower0")
    arrays, hw, boxes, labels = inputs(rng, n, k, reg_max, ch, img, p["topk"], towers=tw)
    sets = ["model.head=gfl", "anchor.size_mult=2", "gfl.reg_max=%d" % reg_max] + sets

    def oracle():
        parts, grads = pgd_parts(arrays, teacher_masks(arrays, boxes, labels, n, p), p)
        return parts, zero_grads(arrays, grads, ("cls", "dist"))

    return lo.run_case(kd, tmp, name, "pgd", arrays, sets, oracle)


def case_given_masks(kd, tmp, rng, n=2, ch=6, img=(64, 48)):
    """Precomputed masks: only the towers and the masks, some cells 0, an image without fg cells on P5."""
    arrays, hw, _, _ = inputs(rng, n, 3, 7, ch, img, 9, teacher=False)
    masks = []
    for l, (lv, (h, w)) in enumerate(zip(LEVELS, hw)):
        m3 = []
        for j, nm in enumerate(("cls", "reg", "bg")):
            m = rng.uniform(0, 1, (n, 1, h, w)) * (rng.uniform(0, 1, (n, 1, h, w)) < 0.4)
            if j == 2:
                m = (m > 0).astype(np.float64)
            if l == 2 and j < 2:
                m[0] = 0.0
            arrays["pgd.%s.%s" % (nm, lv)] = m.astype(np.float32)
            m3.append(lo.t64(arrays["pgd.%s.%s" % (nm, lv)]))
        masks.append(tuple(m3))

    def oracle():
        return pgd_parts(arrays, masks, BASE)

    return lo.run_case(kd, tmp, "pgd_given_masks", "pgd", arrays, ["model.head=gfl"], oracle)


def add_adapters(arrays, rng, ct, cs):
    for i in range(3):
        arrays["distill.fitnet.adapt.%d.weight" % i] = (rng.standard_normal((ct, cs, 1, 1)) * 0.4).astype(np.float32)
        arrays["distill.fitnet.adapt.%d.bias" % i] = (rng.standard_normal(ct) * 0.1).astype(np.float32)


def masked_fitnet(arrays, mask_of):
    """FitNet's masked mean, sum m d^2 / (C sum m) per level (0 where m is 0), its parts and gradients."""
    s = {lv: lo.t64(arrays["student." + lv], True) for lv in LEVELS}
    adapt, total = [], 0.0
    for l, lv in enumerate(LEVELS):
        wt = lo.t64(arrays["distill.fitnet.adapt.%d.weight" % l], True)
        b = lo.t64(arrays["distill.fitnet.adapt.%d.bias" % l], True)
        adapt += [wt, b]
        d2 = (F.conv2d(s[lv], wt, b) - lo.t64(arrays["teacher." + lv])) ** 2
        m = mask_of(l)
        if m.sum() > 0:  # a level without mask cells adds 0 (as kdscope)
            total = total + (d2 * m).sum() / (d2.shape[1] * m.sum())
        else:
            total = total + 0.0 * d2.sum()
    parts = {"fitnet.feat": total}
    g = lo.grads_of(parts, s)
    for i in range(3):
        g["grad.distill.fitnet.adapt.%d.weight" % i] = adapt[2 * i].grad.numpy()
        g["grad.distill.fitnet.adapt.%d.bias" % i] = adapt[2 * i + 1].grad.numpy()
    return parts, g


def case_fitnet(kd, tmp, rng, n=2, k=3, reg_max=7, ct=8, cs=6, img=(64, 64)):
    """fitnet.mask=pgd: the FitNet MSE weighted by PGD's cls mask (first half of pgd.jitter)."""
    arrays, hw, boxes, labels = inputs(rng, n, k, reg_max, 4, img, 9)
    for kind in ("cls_tower0", "reg_tower0"):
        for who in ("teacher", "student"):
            for lv in LEVELS:
                del arrays["%s.%s.%s" % (who, kind, lv)]
    arrays.update(lo.feature_inputs(rng, n, ct, cs, hw))
    add_adapters(arrays, rng, ct, cs)
    sets = ["model.head=gfl", "anchor.size_mult=2", "gfl.reg_max=%d" % reg_max, "fitnet.mask=pgd"]

    def oracle():
        masks = teacher_masks(arrays, boxes, labels, n, BASE)
        parts, g = masked_fitnet(arrays, lambda l: masks[l][0])
        return parts, zero_grads(arrays, g, ("cls", "dist"))

    return lo.run_case(kd, tmp, "fitnet_mask_pgd", "fitnet", arrays, sets, oracle)


def case_fitnet_boxes(kd, tmp, rng, mask, n=2, ct=8, cs=6, img=(64, 64), fs=11.0):
    """fitnet.mask=gt (DeFeat's GT mask, torch_defeat_oracle.gt_mask) and fgd-scale (FGD's, torch_fgd_oracle.scale_masks)."""
    import torch_defeat_oracle as dfo
    import torch_fgd_oracle as fgo
    hw = [(img[0] // 8, img[1] // 8), (img[0] // 16, img[1] // 16), (img[0] // 32, img[1] // 32)]
    arrays = lo.feature_inputs(rng, n, ct, cs, hw)
    boxes, labels = lo.random_gt(rng, n, img, 3)
    arrays["gt.boxes"], arrays["gt.labels"] = boxes, labels
    arrays["image.size"] = np.array(img, np.float32)
    add_adapters(arrays, rng, ct, cs)
    nbox = [int((boxes[:, 0] == i).sum()) for i in range(n)]
    packed = torch.zeros(n, max(nbox), 4, dtype=torch.float32)
    for i in range(n):
        packed[i, :nbox[i]] = torch.tensor(boxes[boxes[:, 0] == i, 1:])
    sets = ["fitnet.mask=" + mask, "fitnet.finest_scale=%g" % fs]

    def mask_of(l):
        h, w = hw[l]
        if mask == "gt":
            return dfo.gt_mask(packed, nbox, l, 3, 8 << l, h, w, fs)
        return fgo.scale_masks(packed, nbox, h, w, img[0])[0][:, None]

    return lo.run_case(kd, tmp, "fitnet_mask_" + mask, "fitnet", arrays, sets, lambda: masked_fitnet(arrays, mask_of))


def main():
    if len(sys.argv) != 2:
        print("usage: pgd_loss_oracle.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-pgd-parity-") as tmp:
        fails += case(kd, tmp, np.random.default_rng(7), "pgd_defaults", [], BASE)
        fails += case(kd, tmp, np.random.default_rng(7), "pgd_official", ["pgd.mix=official"], dict(BASE, official=True))
        # The official broadcast really differs from the per-image reading on these inputs.
        a, _, b, l = inputs(np.random.default_rng(7), 2, 3, 7, 8, (64, 64), 9)
        m = teacher_masks(a, b, l, 2, BASE)
        per = sum(v.item() for v in pgd_parts(a, m, BASE)[0].values())
        off = sum(v.item() for v in pgd_parts(a, m, dict(BASE, official=True))[0].values())
        print("per-image %.6g vs official %.6g (%.0f%% apart)" % (per, off, 100 * abs(off - per) / per))
        if not abs(off - per) > 0.05 * per:
            print("FAIL the official mixing does not differ from the per-image reading")
            fails += 1
        alt = dict(BASE, alpha=0.5, beta=0.25, gamma=0.4, delta=0.05, temp=1.5, xi_cls=0.5, xi_reg=0.7, topk=5,
                   lw_step=0.5, last=True)
        fails += case(kd, tmp, np.random.default_rng(11), "pgd_settings",
                      ["pgd.alpha=0.5", "pgd.beta=0.25", "pgd.gamma=0.4", "pgd.delta=0.05", "pgd.temp=1.5",
                       "pgd.xi_cls=0.5", "pgd.xi_reg=0.7", "pgd.topk=5", "pgd.lw_step=0.5", "pgd.tower=last"], alt, n=3, k=4,
                      reg_max=16, ch=5, img=(96, 64))
        fails += case_given_masks(kd, tmp, np.random.default_rng(13))
        fails += case_fitnet(kd, tmp, np.random.default_rng(17))
        fails += case_fitnet_boxes(kd, tmp, np.random.default_rng(19), "gt")
        fails += case_fitnet_boxes(kd, tmp, np.random.default_rng(23), "fgd-scale")
    print("%d case(s) failed" % fails if fails else "all cases agree with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
