#!/usr/bin/python3
"""Parity of `kdscope loss` with PyTorch for fitnet, pkd, cwd and logitkd.

Each case draws inputs, writes them as a safetensors file, runs
`kdscope loss --method M --in F --out G`, and recomputes the loss, its
parts and d(loss)/d(student tensors and adapters) with torch autograd in
float64, from the formulas of docs/LOSS-CLI.md and KD-METHODS.md (not from
kdscope's code). Anchors and the assignment for logit KD come from
torchvision (AnchorGenerator, Matcher), i.e. "as torchvision's RetinaNet
trains". Tolerance: 1e-4 relative on the loss, every part and every
gradient (max |a-b| / max |b| over a tensor).

Usage: loss_oracle_b.py KDSCOPE. Exits 77 when torch is absent; the logit
KD cases are skipped (with a note) when torchvision is absent.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)
try:
    import torchvision  # noqa: F401
    from torchvision.models.detection import _utils as det_utils
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList
    from torchvision.ops import box_iou
    HAVE_TV = True
except ImportError:
    HAVE_TV = False

RTOL = 1e-4
LEVELS = ("P3", "P4", "P5")


# ---------- safetensors, written and read by hand ----------

def st_write(path, arrays):
    header, blobs, off = {}, [], 0
    for name, a in arrays.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(a)), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + en], dtype="<f4").reshape(e["shape"])
    return out


# ---------- the formulas ----------

def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def pearson(x):
    mu = x.mean(dim=(0, 2, 3), keepdim=True)
    sd = x.std(dim=(0, 2, 3), keepdim=True, unbiased=True)
    return (x - mu) / (sd + 1e-6)


def pkd_parts(t, s, p):
    w = p.get("pkd.weight", 10.0)
    return {"pkd." + lv: w * 0.5 * ((pearson(s[lv]) - pearson(t[lv])) ** 2).mean() for lv in t}


def cwd_parts(t, s, p):
    w, tau = p.get("cwd.weight", 10.0), p.get("cwd.tau", 1.0)
    parts = {}
    for lv in t:
        n, c = t[lv].shape[:2]
        lq = F.log_softmax(t[lv].reshape(n, c, -1) / tau, dim=2)
        lp = F.log_softmax(s[lv].reshape(n, c, -1) / tau, dim=2)
        parts["cwd." + lv] = w * tau * tau * (lq.exp() * (lq - lp)).sum() / (n * c)
    return parts


def fitnet_parts(t, s, p, adapt, tcls=None):
    """tcls (fitnet.mask=frs): per level the teacher's class logits, whose max sigmoid weights each cell."""
    w = p.get("fitnet.weight", 1.0)
    total = 0
    for i, lv in enumerate(t):
        d2 = (F.conv2d(s[lv], adapt[2 * i], adapt[2 * i + 1]) - t[lv]) ** 2
        if tcls is None:
            total = total + d2.mean()
        else:
            m = tcls[lv].sigmoid().max(dim=1, keepdim=True).values
            total = total + (d2 * m).sum() / (d2.shape[1] * m.sum())
    return {"fitnet.feat": w * total}


def assignment(n, hw, img, gt_boxes, gt_labels):
    """Class code per anchor (N, A_total): label, -1 negative, -2 ignored."""
    sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in (32, 64, 128)[:len(hw)])
    gen = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    images = ImageList(torch.zeros(1, 3, img[0], img[1]), [tuple(img)])
    anchors = gen(images, [torch.zeros(1, 1, h, w) for h, w in hw])[0]
    matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    codes = []
    for i in range(n):
        rows = gt_boxes[:, 0] == i
        boxes = torch.tensor(gt_boxes[rows, 1:], dtype=torch.float32)
        labels = torch.tensor(gt_labels[rows], dtype=torch.long)
        m = matcher(box_iou(boxes, anchors))
        codes.append(torch.where(m >= 0, labels[m.clamp(min=0)], m))
    return torch.stack(codes)


def logitkd_parts(t, s, p, codes, a_per, k):
    w, T = p.get("logitkd.weight", 10.0), p.get("logitkd.T", 8.0)
    bg = p.get("logitkd.bg_weight", 0.0)
    kl_mean = p.get("logitkd.kl_mean", 1.0)
    per_level = p.get("logitkd.norm", "level") == "level"
    off, flats = 0, []
    for lv in t:
        n, _, h, wd = t[lv].shape
        lvl_codes = codes[:, off:off + h * wd * a_per]
        off += h * wd * a_per
        # (N, A*K, H, W) -> (N, H, W, A, K) -> (N, H*W*A, K): anchors.h order
        tf = t[lv].reshape(n, a_per, k, h, wd).permute(0, 3, 4, 1, 2).reshape(n, -1, k)
        sf = s[lv].reshape(n, a_per, k, h, wd).permute(0, 3, 4, 1, 2).reshape(n, -1, k)
        flats.append((lv, tf, sf, lvl_codes))
    weights = [(c >= 0).double() + bg * (c == -1).double() for _, _, _, c in flats]
    total_w = float(sum(x.sum() for x in weights))
    parts = {}
    for (lv, tf, sf, c), wts in zip(flats, weights):
        lq = F.log_softmax(tf / T, dim=2)
        lp = F.log_softmax(sf / T, dim=2)
        kl = (lq.exp() * (lq - lp)).sum(dim=2)
        norm = float(wts.sum()) if per_level else total_w  # the positive count when bg is 0
        parts["logitkd." + lv] = w * T * T * (kl * wts).sum() / (k if kl_mean else 1) / (norm if norm > 0 else 1.0)
    return parts


# ---------- cases ----------

def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(b).max() if b.size else 0.0, 1e-30)
    return float(np.abs(a - b).max() / scale) if b.size else 0.0


def run_loss(kd, tmp, name, method, arrays, sets):
    """`kdscope loss` on arrays: (its JSON, the --out tensors), or None after printing why."""
    fin, fout = os.path.join(tmp, name + ".in.safetensors"), os.path.join(tmp, name + ".out.safetensors")
    st_write(fin, arrays)
    cmd = [kd, "loss", "--method", method, "--in", fin, "--out", fout]
    for kv in sets:
        cmd += ["--set", kv]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL %s: exit %d\n%s%s" % (name, r.returncode, r.stdout, r.stderr))
        return None
    return json.loads(r.stdout), st_read(fout)


def run_case(kd, tmp, name, method, arrays, sets, oracle):
    ran = run_loss(kd, tmp, name, method, arrays, sets)
    if ran is None:
        return 1
    res, grads = ran
    ref_parts, ref_grads = oracle()
    ref_loss = sum(ref_parts.values())
    worst, fails = rel_err(res["loss"], float(ref_loss)), 0
    msgs = []
    if worst > RTOL:
        msgs.append("loss %.9g vs torch %.9g" % (res["loss"], float(ref_loss)))
    if set(res["parts"]) != set(ref_parts):
        msgs.append("parts %s vs %s" % (sorted(res["parts"]), sorted(ref_parts)))
    for pn, pv in ref_parts.items():
        e = rel_err(res["parts"].get(pn, np.nan), float(pv))
        worst = max(worst, e)
        if not e <= RTOL:
            msgs.append("part %s %.9g vs torch %.9g" % (pn, res["parts"].get(pn, np.nan), float(pv)))
    for gn, gv in ref_grads.items():
        if gn not in grads:
            msgs.append("no %s in the output" % gn)
            continue
        if grads[gn].shape != tuple(gv.shape):
            msgs.append("%s shape %s vs %s" % (gn, grads[gn].shape, tuple(gv.shape)))
            continue
        e = rel_err(grads[gn], gv)
        worst = max(worst, e)
        if not e <= RTOL:
            msgs.append("%s rel err %.3g" % (gn, e))
    fails = len(msgs)
    print("%s %s: loss %.6g (torch %.6g), %d grads, worst rel err %.2e%s" %
          ("FAIL" if fails else "ok", name, res["loss"], float(ref_loss), len(ref_grads), worst,
           "".join("\n  " + m for m in msgs)))
    return 1 if fails else 0


def feature_inputs(rng, n, ct, cs, hw, scale_t=1.0, scale_s=1.0, corr=0.0):
    arrays, t, s = {}, {}, {}
    for lv, (h, w) in zip(LEVELS, hw):
        tv = (rng.standard_normal((n, ct, h, w)) * scale_t).astype(np.float32)
        sv = rng.standard_normal((n, cs, h, w))
        if corr and cs == ct:
            sv = corr * tv / scale_t + (1 - corr) * sv
        sv = (sv * scale_s + 0.3).astype(np.float32)
        arrays["teacher." + lv], arrays["student." + lv] = tv, sv
    return arrays


def grads_of(parts, student):
    loss = sum(parts.values())
    loss.backward()
    return {"grad.student." + lv: x.grad.numpy() for lv, x in student.items()}


def case_features(kd, tmp, rng, method, sets, params, hw, n=2, ct=8, cs=8, corr=0.0, scale_t=1.0):
    arrays = feature_inputs(rng, n, ct, cs, hw, scale_t=scale_t, corr=corr)

    def oracle():
        t = {lv: t64(arrays["teacher." + lv]) for lv in LEVELS[:len(hw)]}
        s = {lv: t64(arrays["student." + lv], True) for lv in LEVELS[:len(hw)]}
        parts = (pkd_parts if method == "pkd" else cwd_parts)(t, s, params)
        return parts, grads_of(parts, s)

    tag = "%s%s" % (method, "".join("_" + kv.replace("=", "") for kv in sets))
    return run_case(kd, tmp, tag, method, arrays, sets, oracle)


def case_fitnet(kd, tmp, rng, sets, params, hw, n=2, ct=8, cs=6, frs=False):
    arrays = feature_inputs(rng, n, ct, cs, hw)
    if frs:  # class logits for FRS's richness mask (K = 3, A = 9: as the default anchors)
        for lv, (h, w) in zip(LEVELS, hw):
            for who in ("teacher", "student"):
                arrays["%s.cls.%s" % (who, lv)] = (rng.standard_normal((n, 27, h, w)) * 2 - 2).astype(np.float32)
    for i in range(len(hw)):
        arrays["distill.fitnet.adapt.%d.weight" % i] = (rng.standard_normal((ct, cs, 1, 1)) * 0.4).astype(np.float32)
        arrays["distill.fitnet.adapt.%d.bias" % i] = (rng.standard_normal(ct) * 0.1).astype(np.float32)

    def oracle():
        levels = LEVELS[:len(hw)]
        t = {lv: t64(arrays["teacher." + lv]) for lv in levels}
        s = {lv: t64(arrays["student." + lv], True) for lv in levels}
        adapt = []
        for i in range(len(hw)):
            adapt += [t64(arrays["distill.fitnet.adapt.%d.weight" % i], True),
                      t64(arrays["distill.fitnet.adapt.%d.bias" % i], True)]
        tcls = {lv: t64(arrays["teacher.cls." + lv]) for lv in levels} if frs else None
        parts = fitnet_parts(t, s, params, adapt, tcls)
        g = grads_of(parts, s)
        if frs:  # the student's logits get no gradient from FitNet
            g.update({"grad.student.cls." + lv: np.zeros(arrays["student.cls." + lv].shape) for lv in levels})
        for i in range(len(hw)):
            g["grad.distill.fitnet.adapt.%d.weight" % i] = adapt[2 * i].grad.numpy()
            g["grad.distill.fitnet.adapt.%d.bias" % i] = adapt[2 * i + 1].grad.numpy()
        return parts, g

    return run_case(kd, tmp, "fitnet" + "".join("_" + kv.replace("=", "") for kv in sets), "fitnet", arrays, sets,
                    oracle)


def random_gt(rng, n, img, k):
    rows, labels = [], []
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            bw, bh = rng.uniform(14, 0.9 * img[1]), rng.uniform(14, 0.9 * img[0])
            x1, y1 = rng.uniform(0, img[1] - bw), rng.uniform(0, img[0] - bh)
            rows.append([i, x1, y1, x1 + bw, y1 + bh])
            labels.append(rng.integers(0, k))
    return np.array(rows, np.float32), np.array(labels, np.float32)


def case_logitkd(kd, tmp, rng, sets, params, n=2, k=3, a_per=9, img=(64, 64)):
    hw = [(img[0] // 8, img[1] // 8), (img[0] // 16, img[1] // 16), (img[0] // 32, img[1] // 32)]
    arrays = {}
    for lv, (h, w) in zip(LEVELS, hw):
        arrays["teacher.cls." + lv] = (rng.standard_normal((n, a_per * k, h, w)) * 3).astype(np.float32)
        arrays["student.cls." + lv] = (rng.standard_normal((n, a_per * k, h, w)) * 3).astype(np.float32)
    boxes, labels = random_gt(rng, n, img, k)
    arrays["gt.boxes"], arrays["gt.labels"] = boxes, labels
    arrays["image.size"] = np.array(img, np.float32)

    def oracle():
        codes = assignment(n, hw, img, boxes.astype(np.float64), labels.astype(np.int64))
        t = {lv: t64(arrays["teacher.cls." + lv]) for lv in LEVELS}
        s = {lv: t64(arrays["student.cls." + lv], True) for lv in LEVELS}
        parts = logitkd_parts(t, s, params, codes, a_per, k)
        loss = sum(parts.values())
        loss.backward()
        return parts, {"grad.student.cls." + lv: x.grad.numpy() for lv, x in s.items()}

    return run_case(kd, tmp, "logitkd" + "".join("_" + kv.replace("=", "") for kv in sets), "logitkd", arrays, sets,
                    oracle)


def main():
    if len(sys.argv) != 2:
        print("usage: loss_oracle_b.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(20240611)
    hw_small = [(8, 8), (4, 4), (2, 2)]
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-loss-parity-") as tmp:
        fails += case_features(kd, tmp, rng, "pkd", [], {}, hw_small, corr=0.6, scale_t=3.0)
        fails += case_features(kd, tmp, rng, "pkd", ["pkd.weight=2.5"], {"pkd.weight": 2.5}, [(16, 16), (8, 8)], n=3)
        fails += case_features(kd, tmp, rng, "cwd", [], {}, hw_small, corr=0.5)
        fails += case_features(kd, tmp, rng, "cwd", ["cwd.tau=3", "cwd.weight=1"], {"cwd.tau": 3.0, "cwd.weight": 1.0},
                               hw_small, scale_t=4.0)
        fails += case_fitnet(kd, tmp, rng, [], {}, hw_small)
        fails += case_fitnet(kd, tmp, rng, ["fitnet.weight=3"], {"fitnet.weight": 3.0}, [(6, 5), (3, 3)], n=1, ct=4,
                             cs=4)
        fails += case_fitnet(kd, tmp, rng, ["fitnet.mask=frs"], {}, hw_small, frs=True)
        if HAVE_TV:
            fails += case_logitkd(kd, tmp, rng, [], {})
            fails += case_logitkd(kd, tmp, rng,
                                  ["logitkd.T=2", "logitkd.bg_weight=0.25", "logitkd.norm=batch", "logitkd.kl_mean=false"],
                                  {"logitkd.T": 2.0, "logitkd.bg_weight": 0.25, "logitkd.norm": "batch",
                                   "logitkd.kl_mean": 0.0}, n=3, k=4)
            fails += case_logitkd(kd, tmp, rng, ["logitkd.weight=1", "logitkd.T=1", "logitkd.bg_weight=0.1"],
                                  {"logitkd.weight": 1.0, "logitkd.T": 1.0, "logitkd.bg_weight": 0.1}, n=1, k=2,
                                  img=(96, 64))
        else:
            print("note: torchvision is absent; the logit KD cases were skipped")
    print("%d case(s) failed" % fails if fails else "all cases agree with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
