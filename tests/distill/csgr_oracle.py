#!/usr/bin/python3
"""Parity of `kdscope loss --method csgr` with PyTorch (float64).

The oracle is written from the formulas of docs/METHODS-CSGR.md (KD-METHODS
8.2, an inferred formulation), not from kdscope's code: the standardisation
with torch's std, the class cells and embeddings, the cosine softmax, and
the relation over a DENSE H*W x H*W energy matrix masked to each pixel's
row and column (kdscope never forms it); the learnable variant as mmcv's
CrissCrossAttention (column branch with the pixel itself masked, row
branch, one softmax) with the module weights written into the file. It
compares the loss, both parts, d(loss)/d(student features), the CCA
parameters' gradients and the loss maps (gap.csgr.*), within 1e-4 relative.

Cases: defaults; PKD's batch standardisation with other temperatures and
weights; an adapter between unequal widths; an image without boxes (its
category map and its share of the category part are 0, the relation part
is not); the learnable CCA relation with non-zero gamma over
2 recurrences; 1-row and 1-column maps.

Usage: csgr_oracle.py KDSCOPE. Exits 77 when torch is absent."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)
import loss_oracle_b as lob  # noqa: E402  (safetensors I/O and the comparison)

LEVELS = ("P3", "P4", "P5")


def standardise(x, image):
    dims = (2, 3) if image else (0, 2, 3)
    return (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True, unbiased=True) + 1e-6)


def class_cells(boxes, h, w, stride):
    cx = (torch.arange(w, dtype=torch.float64) + 0.5) * stride
    cy = (torch.arange(h, dtype=torch.float64) + 0.5) * stride
    m = torch.zeros(h, w, dtype=torch.bool)
    for x1, y1, x2, y2 in boxes:
        b = ((cy >= y1) & (cy < y2))[:, None] & ((cx >= x1) & (cx < x2))[None, :]
        if not b.any():
            b = torch.zeros(h, w, dtype=torch.bool)
            b[min(max(int(np.floor((y1 + y2) / 2 / stride)), 0), h - 1),
              min(max(int(np.floor((x1 + x2) / 2 / stride)), 0), w - 1)] = True
        m |= b
    return m


def category_map(zt, gt, stride, tau):
    n, c, h, w = zt.shape
    a = torch.zeros(n, h, w, dtype=torch.float64)
    for i in range(n):
        for k in sorted({lab for _, lab, crowd in gt[i] if not crowd}):
            cells = class_cells([b for b, lab, crowd in gt[i] if lab == k and not crowd], h, w, stride)
            e = zt[i][:, cells].mean(dim=1)
            if e.norm() <= 1e-4 * np.sqrt(c):  # the whole map: a zero embedding, uniform attention
                a[i] = torch.maximum(a[i], torch.ones(h, w, dtype=torch.float64))
                continue
            cos = (e[:, None, None] * zt[i]).sum(0) / torch.clamp(zt[i].norm(dim=0) * e.norm(), min=1e-12)
            a[i] = torch.maximum(a[i], torch.softmax((cos / tau).reshape(-1), 0).reshape(h, w) * h * w)
    return a[:, None]


def cross_mask(h, w):
    r, c = torch.arange(h * w) // w, torch.arange(h * w) % w
    return (r[:, None] == r[None, :]) | (c[:, None] == c[None, :])


def relation_kl(zt, zs, tau):
    """Per-pixel KL(R_T || R_S) over the criss-cross, from dense masked energies: (N, H, W)."""
    n, c, h, w = zt.shape
    mask = cross_mask(h, w)

    def logr(z):
        f = z.reshape(n, c, h * w)
        e = torch.einsum("ncu,ncp->nup", f, f) / (np.sqrt(c) * tau)
        return torch.log_softmax(e.masked_fill(~mask, float("-inf")), dim=-1)

    lt, ls = logr(zt), logr(zs)
    kl = torch.where(mask, lt.exp() * (lt - ls), torch.zeros((), dtype=torch.float64)).sum(-1)
    return kl.reshape(n, h, w)


def cca(x, prm, rec):
    """mmcv's CrissCrossAttention, applied rec times with shared weights."""
    for _ in range(rec):
        q = F.conv2d(x, prm["query_conv.weight"], prm["query_conv.bias"])
        k = F.conv2d(x, prm["key_conv.weight"], prm["key_conv.bias"])
        v = F.conv2d(x, prm["value_conv.weight"], prm["value_conv.bias"])
        n, _, h, w = x.shape
        eh = torch.einsum("nchw,nciw->nhwi", q, k)
        eh = eh.masked_fill(torch.eye(h, dtype=torch.bool)[None, :, None, :].expand(n, h, w, h), float("-inf"))
        ew = torch.einsum("nchw,nchj->nhwj", q, k)
        att = torch.softmax(torch.cat([eh, ew], dim=-1), dim=-1)
        out = torch.einsum("nciw,nhwi->nchw", v, att[..., :h]) + torch.einsum("nchj,nhwj->nchw", v, att[..., h:])
        x = prm["gamma"] * out + x
    return x


def parse_gt(boxes, labels, n):
    """Per image: (box, label, crowd); `kdscope loss` has no crowd flags (test_csgr.c covers them)."""
    gt = [[] for _ in range(n)]
    for row, lab in zip(boxes, labels):
        gt[int(row[0])].append((tuple(float(v) for v in row[1:]), int(lab), False))
    return gt


def csgr_oracle(arrays, hw, p, gt, adapt=None, ccap=None):
    """Parts, gradients (student features, learnable parts) and loss maps."""
    w, a_cat = p.get("weight", 1.0), p.get("alpha_cat", 1e-4)
    image = p.get("norm", "image") == "image"
    s = {lv: lob.t64(arrays["student." + lv], True) for lv in LEVELS[:len(hw)]}
    cat = rel = 0.0
    gaps = {}
    for li, lv in enumerate(LEVELS[:len(hw)]):
        T, S = lob.t64(arrays["teacher." + lv]), s[lv]
        if adapt is not None:
            S = F.conv2d(S, adapt[li][0], adapt[li][1])
        n = T.shape[0]
        zt, zs = standardise(T, image), standardise(S, image)
        A = category_map(zt, gt, 8 * 2 ** li, p.get("temp_cat", 0.5))
        sq = ((zs - zt) ** 2).sum(1, keepdim=True)
        cat = cat + w * a_cat * (A * sq).sum() / n
        gap = (w * a_cat / n * A * sq)[:, 0]
        if ccap is None:
            kl = relation_kl(zt, zs, p.get("temp_rel", 1.0))
            rel = rel + w * p.get("alpha_rel", 1.0) * kl.mean()
            gap = gap + w * p.get("alpha_rel", 1.0) * kl / kl.numel()
        else:
            rec = p.get("recurrence", 2)
            d = cca(zs, ccap[li]["s"], rec) - cca(zt, ccap[li]["t"], rec)
            rel = rel + w * p.get("alpha_cca", 5e-6) * (d ** 2).sum() / n
            gap = gap + w * p.get("alpha_cca", 5e-6) / n * (d ** 2).sum(1)
        gaps["gap.csgr." + lv] = gap.detach().numpy()
    parts = {"csgr.cat": cat, "csgr.rel": rel}
    (cat + rel).backward()
    grads = {"grad.student." + lv: x.grad.numpy() for lv, x in s.items()}
    for li, pair in enumerate(adapt or []):
        grads["grad.distill.csgr.fpn_%d.align.weight" % li] = pair[0].grad.numpy()
        grads["grad.distill.csgr.fpn_%d.align.bias" % li] = pair[1].grad.numpy()
    for li, sides in enumerate(ccap or []):
        for side, prm in sides.items():
            for name, t in prm.items():
                grads["grad.distill.csgr.fpn_%d.cca_%s.%s" % (li, side, name)] = t.grad.numpy()
    return {k: v.detach() for k, v in parts.items()}, grads, gaps


def case(kd, tmp, rng, name, hw, sets=(), p=None, n=2, ct=8, cs=8, img=None, empty_image=None, adapt=False,
         cca_params=False):
    p = p or {}
    img = img or (8 * hw[0][0], 8 * hw[0][1])
    arrays = lob.feature_inputs(rng, n, ct, cs, hw, corr=0.5 if ct == cs else 0.0)
    boxes, labels = lob.random_gt(rng, n, img, 3)
    if empty_image is not None:
        keep = boxes[:, 0] != empty_image
        boxes, labels = boxes[keep], labels[keep]
    arrays["gt.boxes"], arrays["gt.labels"], arrays["image.size"] = boxes, labels, np.array(img, np.float32)
    adapt_t, cca_t = None, None
    if adapt:
        adapt_t = []
        for li in range(len(hw)):
            wt = (rng.standard_normal((ct, cs, 1, 1)) * 0.4).astype(np.float32)
            bt = (rng.standard_normal(ct) * 0.1).astype(np.float32)
            arrays["distill.csgr.fpn_%d.align.weight" % li], arrays["distill.csgr.fpn_%d.align.bias" % li] = wt, bt
            adapt_t.append((lob.t64(wt, True), lob.t64(bt, True)))
    if cca_params:
        cca_t, red = [], max(ct // 8, 1)
        shapes = {"query_conv.weight": (red, ct, 1, 1), "query_conv.bias": (red,), "key_conv.weight": (red, ct, 1, 1),
                  "key_conv.bias": (red,), "value_conv.weight": (ct, ct, 1, 1), "value_conv.bias": (ct,), "gamma": (1,)}
        for li in range(len(hw)):
            sides = {}
            for side in ("s", "t"):
                prm = {}
                for pn, shp in shapes.items():
                    v = (rng.standard_normal(shp) * (0.5 if pn != "gamma" else 0.7)).astype(np.float32)
                    arrays["distill.csgr.fpn_%d.cca_%s.%s" % (li, side, pn)] = v
                    prm[pn] = lob.t64(v, True)
                sides[side] = prm
            cca_t.append(sides)
    gt = parse_gt(boxes, labels, n)

    ran = lob.run_loss(kd, tmp, name, "csgr", arrays, list(sets))
    if ran is None:
        return 1
    parts, grads, gaps = csgr_oracle(arrays, hw, p, gt, adapt_t, cca_t)
    out, fails = ran[1], 0
    # Gradients that are 0 analytically (a softmax ignores the key bias's
    # constant shift, the standardisation the adapter bias's): float noise,
    # held to the scale of their weight's gradient.
    for g in [g for g in grads if g.endswith(("key_conv.bias", "align.bias"))]:
        ref = grads.pop(g)
        scale = np.abs(grads[g.replace(".bias", ".weight")]).max()
        e = np.abs(out[g] - ref).max() / scale
        if not e <= lob.RTOL:
            print("FAIL %s: %s is %.3g against a weight gradient of %.3g" % (name, g, np.abs(out[g]).max(), scale))
            fails += 1
    fails += lob.run_case(kd, tmp, name, "csgr", arrays, list(sets), lambda: (parts, grads))
    for g, ref in gaps.items():
        e = lob.rel_err(out[g], ref) if g in out else float("inf")
        if not e <= lob.RTOL:
            print("FAIL %s: %s rel err %.3g" % (name, g, e))
            fails += 1
    print("   %s: loss maps of %d levels, worst rel err %.2e" %
          (name, len(gaps), max(lob.rel_err(out[g], r) for g, r in gaps.items() if g in out)))
    if empty_image is not None:
        i = empty_image
        cat_cells = out["gap.csgr.P3"][i] - w_rel_map(arrays, hw, p, i)
        if np.abs(cat_cells).max() > 1e-5 * np.abs(out["gap.csgr.P3"]).max() or float(ran[0]["parts"]["csgr.rel"]) <= 0:
            print("FAIL %s: image %d without boxes has a category share or no relation part" % (name, i))
            fails += 1
        else:
            print("   %s: image %d (no boxes): category share of its P3 cells %.1e (of a peak %.3g), relation part %.6g"
                  % (name, i, np.abs(cat_cells).max(), np.abs(out["gap.csgr.P3"]).max(), ran[0]["parts"]["csgr.rel"]))
    return fails


def w_rel_map(arrays, hw, p, i):
    """The relation share of image i's P3 cells, for the empty-image check."""
    T, S = lob.t64(arrays["teacher.P3"]), lob.t64(arrays["student.P3"])
    image = p.get("norm", "image") == "image"
    kl = relation_kl(standardise(T, image), standardise(S, image), p.get("temp_rel", 1.0))
    return (p.get("weight", 1.0) * p.get("alpha_rel", 1.0) * kl / kl.numel())[i].numpy()


def main():
    if len(sys.argv) != 2:
        print("usage: csgr_oracle.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(20250522)
    hw = [(8, 8), (4, 4), (2, 2)]
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-csgr-parity-") as tmp:
        fails += case(kd, tmp, rng, "csgr_default", hw)
        fails += case(kd, tmp, rng, "csgr_batch_norm", [(6, 10), (3, 5)], n=3,
                      sets=["csgr.norm=batch", "csgr.temp_cat=0.2", "csgr.temp_rel=3", "csgr.alpha_cat=0.01",
                            "csgr.alpha_rel=2", "csgr.weight=1.5"],
                      p={"norm": "batch", "temp_cat": 0.2, "temp_rel": 3.0, "alpha_cat": 0.01, "alpha_rel": 2.0,
                         "weight": 1.5})
        fails += case(kd, tmp, rng, "csgr_adapter", hw, ct=8, cs=5, adapt=True, sets=["csgr.alpha_cat=0.01"],
                      p={"alpha_cat": 0.01})
        fails += case(kd, tmp, rng, "csgr_empty_image", hw, n=3, empty_image=1)
        fails += case(kd, tmp, rng, "csgr_cca", hw, cca_params=True, ct=16, cs=16,
                      sets=["csgr.relation=cca", "csgr.alpha_cca=0.01"], p={"alpha_cca": 0.01})
        fails += case(kd, tmp, rng, "csgr_cca_r1", [(5, 7)], cca_params=True, ct=8, cs=8,
                      sets=["csgr.relation=cca", "csgr.recurrence=1", "csgr.alpha_cca=0.1"],
                      p={"alpha_cca": 0.1, "recurrence": 1})
        fails += case(kd, tmp, rng, "csgr_1row", [(1, 9)], img=(16, 72))
        fails += case(kd, tmp, rng, "csgr_1col", [(7, 1)], img=(56, 16))
    print("%d case(s) failed" % fails if fails else "all cases agree with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
