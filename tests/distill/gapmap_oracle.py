#!/usr/bin/python3
"""The methods' loss maps (the window's gap.<method>) against PyTorch.

Each case draws features (and GT boxes, adapter weights), writes them as a
safetensors file, runs `kdscope loss --method M --in F --out G` and reads
the maps gap.M.P3.. (N, H, W) from G. torch recomputes each map in float64
from the method's formula (KD-METHODS.md, docs/SNAPSHOTS.md), not from
kdscope's code: the per-cell term of the feature loss, summed over
channels, after the adapter and normalisation, with the masks, weights and
normalisers:

  fitnet  w * sum_c (A(S) - T)^2 / (N C H W)                A: 1x1 adapter
  defeat  w / L * (a_obj M / n_obj + a_bg (1 - M) / n_bg) * sum_c (A(S) - T)^2
          A: 3x3 adapter, M: the GT mask of the level, n = max(1, 2 C sum M)
  fgd     w / N * (alpha M_fg + beta M_bg) * Asp_T * sum_c Ach_T (A(S) - T)^2
  pkd     w / 2 * sum_c (Z_S - Z_T)^2 / (N C H W)            Z: per-channel standardised
  cwd     w tau^2 / (N C) * sum_c P_T (log P_T - log P_S)    P: softmax over H*W of X / tau

Tolerance 1e-4 (max |a - b| / max |b| per map). Also: the maps sum to the
parts the method names (the loss's own numbers). Exits 77 without torch.

Usage: gapmap_oracle.py KDSCOPE
"""
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
from loss_oracle_b import LEVELS, feature_inputs, pearson, random_gt, rel_err, run_loss, t64  # noqa: E402
from torch_defeat_oracle import gt_mask  # noqa: E402
from torch_fgd_oracle import attention, scale_masks  # noqa: E402

RTOL = 1e-4
IMG = 64
GAP_PARTS = {"fitnet": ("feat",), "defeat": ("neck_obj", "neck_bg"), "fgd": ("fg", "bg"), "pkd": None, "cwd": None}


def per_image_boxes(rows, n):
    """(M, 5) rows (image, x1, y1, x2, y2) -> (N, maxb, 4) float32 tensor and counts."""
    counts = [int((rows[:, 0] == i).sum()) for i in range(n)]
    out = torch.zeros(n, max(counts + [1]), 4, dtype=torch.float32)
    for i in range(n):
        sel = rows[rows[:, 0] == i, 1:]
        out[i, :len(sel)] = torch.tensor(sel, dtype=torch.float32)
    return out, counts


def maps_fitnet(t, s, p, a):
    w = p.get("fitnet.weight", 1.0)
    return {lv: w * ((F.conv2d(s[lv], a[lv][0], a[lv][1]) - t[lv]) ** 2).sum(1) / t[lv].numel() for lv in t}


def maps_defeat(t, s, p, a, rows):
    w, L = p.get("defeat.weight", 1.0), len(t)
    a_obj, a_bg, fs = p.get("defeat.alpha_obj", 4.0), p.get("defeat.alpha_bg", 16.0), p.get("defeat.finest_scale", 56.0)
    n = next(iter(t.values())).shape[0]
    boxes, counts = per_image_boxes(rows, n)
    out = {}
    for l, lv in enumerate(t):
        c, h, wd = t[lv].shape[1:]
        d = ((F.conv2d(s[lv], a[lv][0], a[lv][1], padding=1) - t[lv]) ** 2).sum(1)
        m = gt_mask(boxes, counts, l, L, 8 << l, h, wd, fs)[:, 0]
        n_obj, n_bg = max(1.0, 2 * c * float(m.sum())), max(1.0, 2 * c * float((1 - m).sum()))
        out[lv] = w / L * (a_obj * m / n_obj + a_bg * (1 - m) / n_bg) * d
    return out


def maps_fgd(t, s, p, a, rows):
    w, temp, alpha, beta = p.get("fgd.weight", 1.0), p.get("fgd.temp", 0.5), p.get("fgd.alpha", 1e-3), p.get("fgd.beta", 5e-4)
    n = next(iter(t.values())).shape[0]
    boxes, counts = per_image_boxes(rows, n)
    out = {}
    for lv in t:
        S = F.conv2d(s[lv], a[lv][0], a[lv][1]) if lv in a else s[lv]
        h, wd = t[lv].shape[2:]
        sp, ch = attention(t[lv], temp)
        fg, bg = scale_masks(boxes, counts, h, wd, IMG)
        d = (ch[:, :, None, None] * (S - t[lv]) ** 2).sum(1)
        out[lv] = w / n * (alpha * fg + beta * bg) * sp * d
    return out


def maps_pkd(t, s, p):
    w = p.get("pkd.weight", 10.0)
    return {lv: 0.5 * w * ((pearson(s[lv]) - pearson(t[lv])) ** 2).sum(1) / t[lv].numel() for lv in t}


def maps_cwd(t, s, p):
    w, tau = p.get("cwd.weight", 10.0), p.get("cwd.tau", 1.0)
    out = {}
    for lv in t:
        n, c, h, wd = t[lv].shape
        lq = F.log_softmax(t[lv].reshape(n, c, -1) / tau, dim=2)
        lp = F.log_softmax(s[lv].reshape(n, c, -1) / tau, dim=2)
        out[lv] = (w * tau * tau / (n * c) * (lq.exp() * (lq - lp)).sum(1)).reshape(n, h, wd)
    return out


def run_case(kd, tmp, name, method, arrays, sets, oracle):
    ran = run_loss(kd, tmp, name, method, arrays, sets)
    if ran is None:
        return 1
    res, got = ran
    want = oracle()
    msgs, worst, total = [], 0.0, 0.0
    for lv, ref in want.items():
        key = "gap.%s.%s" % (method, lv)
        if key not in got:
            msgs.append("no %s in the output" % key)
            continue
        ref = ref.detach().numpy()
        if got[key].shape != ref.shape:
            msgs.append("%s shape %s vs torch %s" % (key, got[key].shape, ref.shape))
            continue
        e = rel_err(got[key], ref)
        worst, total = max(worst, e), total + float(got[key].astype(np.float64).sum())
        if not e <= RTOL:
            msgs.append("%s rel err %.3g (max %.4g)" % (key, e, np.abs(ref).max()))
    named = GAP_PARTS[method]
    parts = sum(v for k, v in res["parts"].items() if named is None or k.split(".", 1)[1] in named)
    if not abs(total - parts) <= RTOL * abs(parts):
        msgs.append("maps sum to %.9g, the parts %s to %.9g" % (total, named or "(all)", parts))
    print("%s %s: %d maps, worst rel err %.2e, sum %.6g = parts %.6g%s" %
          ("FAIL" if msgs else "ok", name, len(want), worst, total, parts, "".join("\n  " + m for m in msgs)))
    return 1 if msgs else 0


def case_name(method, sets):
    return method + ("" if not sets else " (" + ", ".join(sets) + ")")


def tensors(arrays, levels):
    return ({lv: t64(arrays["teacher." + lv]) for lv in levels}, {lv: t64(arrays["student." + lv]) for lv in levels})


def adapters(rng, arrays, fmt, levels, ct, cs, k, scale):
    a = {}
    for i, lv in enumerate(levels):
        wn, bn = fmt % i + ".weight", fmt % i + ".bias"
        arrays[wn] = (rng.standard_normal((ct, cs, k, k)) * scale).astype(np.float32)
        arrays[bn] = (rng.standard_normal(ct) * 0.1).astype(np.float32)
        a[lv] = (t64(arrays[wn]), t64(arrays[bn]))
    return a


def case_plain(kd, tmp, rng, method, sets, params, hw, n=2, c=8, corr=0.5, scale_t=1.0):
    arrays = feature_inputs(rng, n, c, c, hw, scale_t=scale_t, corr=corr)
    levels = LEVELS[:len(hw)]

    def oracle():
        t, s = tensors(arrays, levels)
        return (maps_pkd if method == "pkd" else maps_cwd)(t, s, params)

    return run_case(kd, tmp, case_name(method, sets), method, arrays, sets, oracle)


def case_adapted(kd, tmp, rng, method, sets, params, hw, n=2, ct=8, cs=6):
    arrays = feature_inputs(rng, n, ct, cs, hw)
    levels = LEVELS[:len(hw)]
    rows, labels = random_gt(rng, n, (IMG, IMG), 3)
    if method != "fitnet":
        arrays["gt.boxes"], arrays["gt.labels"] = rows, labels
        arrays["image.size"] = np.array([IMG, IMG], np.float32)
    if method == "fitnet":
        a = adapters(rng, arrays, "distill.fitnet.adapt.%d", levels, ct, cs, 1, 0.4)
    elif method == "defeat":
        a = adapters(rng, arrays, "distill.defeat.neck_adapt.%d", levels, ct, cs, 3, 0.2)
    else:
        a = adapters(rng, arrays, "distill.fgd.fpn_%d.align", levels, ct, cs, 1, 0.4) if ct != cs else {}

    def oracle():
        t, s = tensors(arrays, levels)
        if method == "fitnet":
            return maps_fitnet(t, s, params, a)
        return (maps_defeat if method == "defeat" else maps_fgd)(t, s, params, a, rows.astype(np.float64))

    return run_case(kd, tmp, case_name(method, sets), method, arrays, sets, oracle)


def main():
    if len(sys.argv) != 2:
        print("usage: gapmap_oracle.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(20250117)
    hw = [(8, 8), (4, 4), (2, 2)]
    no_head = ["defeat.beta_obj=0", "defeat.beta_bg=0", "defeat.finest_scale=11"]
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-gapmap-") as tmp:
        fails += case_plain(kd, tmp, rng, "pkd", [], {}, hw, corr=0.6, scale_t=3.0)
        fails += case_plain(kd, tmp, rng, "pkd", ["pkd.weight=2.5"], {"pkd.weight": 2.5}, [(16, 16), (8, 8)], n=3)
        fails += case_plain(kd, tmp, rng, "cwd", [], {}, hw)
        fails += case_plain(kd, tmp, rng, "cwd", ["cwd.tau=3", "cwd.weight=1"], {"cwd.tau": 3.0, "cwd.weight": 1.0}, hw,
                            scale_t=4.0)
        dp = {"defeat.finest_scale": 11.0}
        fails += case_adapted(kd, tmp, rng, "defeat", no_head, dp, hw)
        fails += case_adapted(kd, tmp, rng, "defeat", no_head + ["defeat.alpha_obj=7", "defeat.alpha_bg=0.5",
                                                                 "defeat.weight=2"],
                              dict(dp, **{"defeat.alpha_obj": 7.0, "defeat.alpha_bg": 0.5, "defeat.weight": 2.0}), hw,
                              n=3, ct=8, cs=8)
        fails += case_adapted(kd, tmp, rng, "fitnet", ["fitnet.weight=3"], {"fitnet.weight": 3.0}, hw)
        fails += case_adapted(kd, tmp, rng, "fgd", [], {}, hw)
        fails += case_adapted(kd, tmp, rng, "fgd", ["fgd.temp=2", "fgd.alpha=0.01", "fgd.beta=0.1"],
                              {"fgd.temp": 2.0, "fgd.alpha": 0.01, "fgd.beta": 0.1}, hw, ct=8, cs=8)
    print("%d case(s) failed" % fails if fails else "every loss map agrees with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
