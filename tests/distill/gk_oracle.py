#!/usr/bin/python3
"""Parity of global knowledge's two halves with PyTorch restatements written
from KD-METHODS 4 and 10b (what the released DAVAR-Lab-ML code computes),
not from kdscope's code:

* PGM through `kdscope prototypes`: the released selection done literally,
  with the D x N residual tensors and the energy as the code writes it
  (float64): the chosen instances per class agree exactly, classes with 2
  instances or well-separated features get none.
* RDM through `kdscope loss --method gk` on instance rows and prototypes
  given per level: the crop means, q and w = 1 - |q_s - q_t|, DeFeat's
  level rule and rasterisation of the soft mask, the fg/bg normalisers, the
  1 - progress attenuation, the soft-label KL (T^2, / K, mean over
  instances) and the use_r2i SmoothL1; loss, parts and the gradients of the
  student's features, instance logits and adapters agree to 1e-4 relative.
  Cases: defaults; use_r2i with reduce mean, T 3, other weights; a class
  without prototypes; an instance with negative w; rows as a two-stage
  student's positive RoIs (model.head=faster_rcnn: the mean of each RoI's
  7x7 RoIAlign, torchvision's, for q and the projection term, the binary
  background 1 - [M > 0], K+1 logits).

Usage: gk_oracle.py KDSCOPE. Exits 77 without torch.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_oracle_b as lo  # noqa: E402  (exits 77 without torch)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
try:
    from torchvision.ops import roi_align  # noqa: E402
except ImportError:
    print("SKIP: torchvision is not installed")
    sys.exit(77)


# ---------- PGM, as prototype_generation_module.py computes it ----------

def pgm_reference(fs, ft, k_steps=10, sigma=0.1, cut=0.4, alpha=10.0):
    fs = torch.tensor(fs, dtype=torch.float64)
    ft = torch.tensor(ft, dtype=torch.float64)
    n = fs.shape[0]
    ns = fs / fs.norm(dim=1, keepdim=True)
    nt = ft / ft.norm(dim=1, keepdim=True)

    def density(f):
        d = 1 - f @ f.t()
        rho = torch.exp(-(d / sigma) ** 2).sum(1)
        return rho, torch.sort(rho)[0][int(n * cut)]

    rs, ths = density(ns)
    rt, tht = density(nt)
    cand = [i for i in range(n) if rs[i] > ths and rt[i] > tht]
    if not cand:
        return []
    Rs, Rt = ns.t().clone(), nt.t().clone()  # D x N residuals
    picks = []
    for _ in range(k_steps):
        best, best_e = None, None
        for k in cand:
            a = ns[k] @ Rs  # N
            b = nt[k] @ Rt
            ws = ((1 + alpha) * a + alpha * b) / (1 + 2 * alpha)
            wt = ((1 + alpha) * b + alpha * a) / (1 + 2 * alpha)
            e = ((ns[k][:, None] * ws[None] - Rs) ** 2).sum() + ((nt[k][:, None] * wt[None] - Rt) ** 2).sum() \
                + alpha * ((ws - wt) ** 2).sum()
            if best_e is None or e < best_e:
                best, best_e, bws, bwt = k, e, ws, wt
        picks.append(best)
        Rs = Rs - ns[best][:, None] * bws[None]
        Rt = Rt - nt[best][:, None] * bwt[None]
    return picks


def pgm_case(kd, tmp, rng):
    """Two levels: clustered classes of 20-60 instances, a class of 2, a class of orthogonal rows."""
    arrays, want = {}, {}
    for lv, (cs, ct) in (("P3", (6, 8)), ("P4", (5, 7))):
        rows_s, rows_t, labels = [], [], []
        for k in range(4):
            n = int(rng.integers(20, 60))
            cen_s, cen_t = rng.standard_normal(cs), rng.standard_normal(ct)
            for _ in range(n):
                m = int(rng.integers(0, 3))  # sub-clusters: densities differ
                rows_s.append(cen_s + 0.08 * m * rng.standard_normal(cs) + 0.05 * rng.standard_normal(cs))
                rows_t.append(cen_t + 0.08 * m * rng.standard_normal(ct) + 0.05 * rng.standard_normal(ct))
                labels.append(k)
        for _ in range(2):  # class 4: two instances
            rows_s.append(rng.standard_normal(cs)), rows_t.append(rng.standard_normal(ct)), labels.append(4)
        for i in range(min(cs, ct)):  # class 5: one-hot rows, every density 1
            es, et = np.zeros(cs), np.zeros(ct)
            es[i], et[i] = 2.0 + i, 1.0 + i
            rows_s.append(es), rows_t.append(et), labels.append(5)
        fs, ft, lab = np.array(rows_s, np.float32), np.array(rows_t, np.float32), np.array(labels, np.float32)
        arrays["student." + lv], arrays["teacher." + lv], arrays["labels." + lv] = fs, ft, lab
        want[lv] = {k: pgm_reference(fs[lab == k].astype(np.float64), ft[lab == k].astype(np.float64)) for k in range(6)}
        want[lv] = {k: [int(np.flatnonzero(lab == k)[i]) for i in v] for k, v in want[lv].items()}
    fin, fout = os.path.join(tmp, "pgm.in.safetensors"), os.path.join(tmp, "pgm.out.safetensors")
    lo.st_write(fin, arrays)
    r = subprocess.run([kd, "prototypes", "--in", fin, "--out", fout], capture_output=True, text=True)
    if r.returncode:
        print("FAIL pgm: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        return 1, None
    res, out = json.loads(r.stdout), lo.st_read(fout)
    fails = 0
    for lv in want:
        got_idx, got_lab = out["proto.index." + lv].astype(int), out["proto.labels." + lv].astype(int)
        for k, ref in want[lv].items():
            got = list(got_idx[got_lab == k])
            if got != ref:
                print("FAIL pgm %s class %d: kdscope %s, torch %s" % (lv, k, got, ref))
                fails += 1
        ok_rows = np.array_equal(out["proto.student." + lv], arrays["student." + lv][got_idx]) and \
            np.array_equal(out["proto.teacher." + lv], arrays["teacher." + lv][got_idx])
        if not ok_rows:
            print("FAIL pgm %s: prototypes are not the chosen rows" % lv)
            fails += 1
        empty = res["levels"][lv]["empty"]
        if empty != [4, 5]:
            print("FAIL pgm %s: classes without prototypes %s, expected [4, 5]" % (lv, empty))
            fails += 1
        distinct = {k: len(set(v)) for k, v in want[lv].items() if v}
        print("%s pgm %s: %s prototypes, distinct per class %s" % ("FAIL" if fails else "ok", lv,
                                                                     res["levels"][lv]["prototypes"], distinct))
    return fails, out


# ---------- RDM as the released loss computes it ----------

def defeat_level(box, fs, nlev):
    b = np.asarray(box, np.float32)
    scale = np.sqrt((b[2] - b[0] + np.float32(1)) * (b[3] - b[1] + np.float32(1)), dtype=np.float32)
    lv = int(np.floor(np.log2(scale / np.float32(fs) + np.float32(1e-6), dtype=np.float32)))
    return min(max(lv, 0), nlev - 1)


def crop(box, s, img, h, w):
    b = [min(max(float(box[0]), 0.0), img[1]), min(max(float(box[1]), 0.0), img[0]),
         min(max(float(box[2]), 0.0), img[1]), min(max(float(box[3]), 0.0), img[0])]
    x0, y0, x1, y1 = (int(v / s) for v in b)
    return min(y0, h - 1), min(y1, h - 1), min(x0, w - 1), min(x1, w - 1)


def cosine(a, b):
    den = a.norm(dim=-1, keepdim=True) * b.norm(dim=-1)[None]
    return (a @ b.t()) / torch.clamp(den, min=1e-8)


def mask_box(m, s, box, v):
    x0, y0, x1, y1 = (int(float(c) / s) for c in box)
    h, w = m.shape
    if x1 <= x0 or y1 <= y0:
        if 0 <= y0 < h and 0 <= x0 < w:
            m[y0, x0] = max(m[y0, x0], v)
        return
    m[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = v


def rdm_reference(a, p):
    """Parts of gk on the file's arrays a with settings p."""
    wgt, fg_w, bg_w, soft_w = p.get("weight", 1.0), p.get("fg", 1.0), p.get("bg", 4.0), p.get("soft", 1.0)
    T, r2i_w, fs0 = p.get("T", 2.0), p.get("r2i", 5.0), p.get("finest_scale", 56.0)
    rois = p.get("rois", 0)  # rows as a two-stage student's positive RoIs (model.head=faster_rcnn)
    levels = [lv for lv in lo.LEVELS if "teacher." + lv in a]
    L = len(levels)
    img = tuple(int(v) for v in a["image.size"])
    att = 1.0 - float(a["progress"][0]) if p.get("attenuation", 1) else 1.0
    S = {lv: lo.t64(a["student." + lv], True) for lv in levels}
    Tt = {lv: lo.t64(a["teacher." + lv]) for lv in levels}
    A = {}
    for i, lv in enumerate(levels):
        A[lv] = (lo.t64(a["distill.gk.adapt.%d.weight" % i], True), lo.t64(a["distill.gk.adapt.%d.bias" % i], True))
    boxes, labels = a["inst.boxes"], a["inst.labels"].astype(int)
    R = len(labels)
    lev = [defeat_level(b[1:], fs0, L) for b in boxes]
    w = np.ones(R)
    fg = bg = r2i = 0
    for i, lv in enumerate(levels):
        s = 8 << i
        n, C, H, W = Tt[lv].shape
        sel = [r for r in range(R) if lev[r] == i]
        ps_rows, pt_rows = [], []
        for r in sel:
            b = int(boxes[r][0])
            if rois:  # the mean of the RoI's 7x7 RoIAlign (aligned, adaptive sampling)
                roi = [torch.tensor(boxes[r][None, 1:], dtype=torch.float64)]
                ps_rows.append(roi_align(S[lv][b:b + 1], roi, 7, 1.0 / s, -1, True).mean(dim=(0, 2, 3)))
                pt_rows.append(roi_align(Tt[lv][b:b + 1], roi, 7, 1.0 / s, -1, True).mean(dim=(0, 2, 3)))
                continue
            y0, y1, x0, x1 = crop(boxes[r][1:], s, img, H, W)
            ps_rows.append(S[lv][b, :, y0:y1 + 1, x0:x1 + 1].mean(dim=(1, 2)))
            pt_rows.append(Tt[lv][b, :, y0:y1 + 1, x0:x1 + 1].mean(dim=(1, 2)))
        Pt, Ps = lo.t64(a.get("proto.teacher." + lv, np.zeros((0, C)))), lo.t64(a.get("proto.student." + lv, np.zeros((0, 1))))
        plab = a.get("proto.labels." + lv, np.zeros(0)).astype(int)
        for j, r in enumerate(sel):
            mine = plab == labels[r]
            if mine.any():
                with torch.no_grad():
                    qs = cosine(ps_rows[j][None], Ps[mine]).max()
                    qt = cosine(pt_rows[j][None], Pt[mine]).max()
                w[r] = 1.0 - abs(float(qs) - float(qt))
        m = torch.zeros(n, H, W, dtype=torch.float64)
        for r in sel:
            mask_box(m[int(boxes[r][0])], s, boxes[r][1:], w[r])
        m = m[:, None]
        bgm = (m == 0).to(m.dtype) if rois else 1 - m  # the two-stage path: box cells out entirely
        adapted = F.conv2d(S[lv], A[lv][0], A[lv][1], padding=1)
        d = (adapted - Tt[lv]) ** 2
        k = wgt * att / (L if p.get("reduce") == "mean" else 1)
        fg = fg + k * fg_w * (d * m).sum() / max(1.0, 2 * C * float(m.sum()))
        bg = bg + k * bg_w * (d * bgm).sum() / max(1.0, 2 * C * float(bgm.sum()))
        if p.get("use_r2i") and sel and len(plab):
            ps_t = torch.stack(ps_rows)
            with torch.no_grad():
                dt = cosine(torch.stack(pt_rows), Pt)
            ww = torch.tensor(w[sel])[:, None]
            r2i = r2i + F.smooth_l1_loss(cosine(ps_t, Ps) * ww, dt * ww, reduction="mean")
    parts = {"gk.feat_fg": fg, "gk.feat_bg": bg}
    sc = lo.t64(a["inst.student.cls"], True)
    tc = lo.t64(a["inst.teacher.cls"])
    K = sc.shape[1]
    kl = (F.softmax(tc / T, 1) * (F.log_softmax(tc / T, 1) - F.log_softmax(sc / T, 1))).sum(1)
    parts["gk.soft"] = wgt * soft_w * T * T * (torch.tensor(w) * kl).sum() / (K * R)
    parts["gk.r2i"] = wgt * att * r2i_w * r2i if p.get("use_r2i") else torch.zeros(())
    total = sum(parts.values())
    total.backward()
    grads = {"grad.student." + lv: S[lv].grad.numpy() for lv in levels}
    grads["grad.inst.student.cls"] = sc.grad.numpy()
    for i, lv in enumerate(levels):
        grads["grad.distill.gk.adapt.%d.weight" % i] = A[lv][0].grad.numpy()
        grads["grad.distill.gk.adapt.%d.bias" % i] = A[lv][1].grad.numpy()
    return parts, grads, w


def rdm_arrays(rng, protos, n=2, cs=6, ct=8, K=3, R=9, img=(64, 64), progress=0.3):
    a = {"image.size": np.array(img, np.float32), "progress": np.array([progress], np.float32)}
    for i, lv in enumerate(("P3", "P4")):
        h, w = img[0] >> (3 + i), img[1] >> (3 + i)
        a["teacher." + lv] = rng.standard_normal((n, ct, h, w)).astype(np.float32)
        a["student." + lv] = (0.5 * rng.standard_normal((n, cs, h, w)) + 0.2).astype(np.float32)
        a["distill.gk.adapt.%d.weight" % i] = (0.2 * rng.standard_normal((ct, cs, 3, 3))).astype(np.float32)
        a["distill.gk.adapt.%d.bias" % i] = (0.1 * rng.standard_normal(ct)).astype(np.float32)
        for side in ("teacher", "student", "labels"):
            key = "proto.%s.%s" % (side, lv)
            if key in protos:
                a[key] = protos[key]
    rows = []
    for _ in range(R):
        L = rng.uniform(6, 50)
        x, y = rng.uniform(-4, img[1] - 8), rng.uniform(-4, img[0] - 8)
        rows.append([int(rng.integers(0, n)), x, y, x + L * rng.uniform(0.5, 1.2), y + L * rng.uniform(0.5, 1.2)])
    rows.append([0, 9.0, 9.0, 9.5, 17.0])  # degenerate on x: a single cell
    a["inst.boxes"] = np.array(rows, np.float32)
    a["inst.labels"] = rng.integers(0, K, len(rows)).astype(np.float32)
    a["inst.teacher.cls"] = (2 * rng.standard_normal((len(rows), K))).astype(np.float32)
    a["inst.student.cls"] = (2 * rng.standard_normal((len(rows), K))).astype(np.float32)
    return a


def random_protos(rng, cs=6, ct=8, per=(3, 2, 0)):
    out = {}
    for lv in ("P3", "P4"):
        lab = np.concatenate([np.full(k, c) for c, k in enumerate(per)]).astype(np.float32)
        out["proto.teacher." + lv] = rng.standard_normal((len(lab), ct)).astype(np.float32)
        out["proto.student." + lv] = rng.standard_normal((len(lab), cs)).astype(np.float32)
        out["proto.labels." + lv] = lab
    return out


def rdm_case(kd, tmp, name, a, sets, params, expect_negative=False):
    holder = {}

    def oracle():
        parts, grads, w = rdm_reference(a, params)
        holder["w"] = w
        return parts, grads

    fails = lo.run_case(kd, tmp, name, "gk", a, sets, oracle)
    ran = lo.st_read(os.path.join(tmp, name + ".out.safetensors"))
    got_w = ran["gk.inst"][:, 9] if "gk.inst" in ran else None
    if got_w is None or lo.rel_err(got_w, holder["w"]) > 1e-5:
        print("FAIL %s: robustness weights %s vs torch %s" % (name, got_w, holder["w"]))
        fails += 1
    if expect_negative and not (holder["w"] < 0).any():
        print("FAIL %s: no instance with negative w" % name)
        fails += 1
    return fails


def main():
    if len(sys.argv) != 2:
        print("usage: gk_oracle.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(20260212)
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-gk-parity-") as tmp:
        f, _ = pgm_case(kd, tmp, rng)
        fails += f
        fails += rdm_case(kd, tmp, "gk_default", rdm_arrays(rng, random_protos(rng)), [], {})
        sets = ["gk.use_r2i=true", "gk.reduce=mean", "gk.T=3", "gk.fg=2", "gk.bg=3", "gk.soft=0.5", "gk.r2i=2",
                "gk.finest_scale=11", "gk.weight=1.5"]
        params = {"use_r2i": 1, "reduce": "mean", "T": 3.0, "fg": 2.0, "bg": 3.0, "soft": 0.5, "r2i": 2.0,
                  "finest_scale": 11.0, "weight": 1.5}
        fails += rdm_case(kd, tmp, "gk_r2i_mean", rdm_arrays(rng, random_protos(rng), n=3, K=4, R=12), sets, params)
        # Class 1 has no prototype on any level; attenuation off.
        fails += rdm_case(kd, tmp, "gk_no_protos", rdm_arrays(rng, random_protos(rng, per=(2, 0, 3)), progress=0.8),
                          ["gk.attenuation=false", "gk.use_r2i=true"], {"attenuation": 0, "use_r2i": 1})
        # Negative w: instance 0's own crop means as its class's prototypes,
        # the student's negated (q_s = -1, q_t = 1: w = -1).
        a = rdm_arrays(rng, {}, R=6)
        a["inst.boxes"][0] = [0, 2, 2, 14, 14]  # P3 at s_0 56
        lab0 = a["inst.labels"][0]
        y0, y1, x0, x1 = crop(a["inst.boxes"][0][1:], 8, (64, 64), 8, 8)
        p_s = a["student.P3"][0, :, y0:y1 + 1, x0:x1 + 1].mean(axis=(1, 2))
        p_t = a["teacher.P3"][0, :, y0:y1 + 1, x0:x1 + 1].mean(axis=(1, 2))
        for lv in ("P3", "P4"):
            a["proto.teacher." + lv] = p_t[None].astype(np.float32)
            a["proto.student." + lv] = (-p_s)[None].astype(np.float32)
            a["proto.labels." + lv] = np.array([lab0], np.float32)
        fails += rdm_case(kd, tmp, "gk_negative_w", a, ["gk.use_r2i=true"], {"use_r2i": 1}, expect_negative=True)
        # A two-stage student: the rows are its positive RoIs, pooled by
        # RoIAlign, the background binary, K+1 logits (K = 3), levels averaged.
        fails += rdm_case(kd, tmp, "gk_rois", rdm_arrays(rng, random_protos(rng), K=4, R=10),
                          ["model.head=faster_rcnn", "gk.use_r2i=true", "gk.reduce=mean"],
                          {"rois": 1, "use_r2i": 1, "reduce": "mean"})
    print("%d case(s) failed" % fails if fails else "all cases agree with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
