#!/usr/bin/python3
"""Parity of `kdscope loss --method icd` with a PyTorch restatement of the
official ICD release (megvii-research/ICD, pytorch_release: models/utils.py
InstanceEncoder, OfficialDecoderLayer, PositionEmbeddingSine, MLP;
models/teacher.py ModelTeacher_II; models/distiller.py
InstanceConditionalDistillation), as KD-METHODS-2 §A states it, written from
those formulas, not from kdscope's code. The instances (real GTs and fakes,
jittered centres) are given to both as icd.instances, every learnable part
as distill.icd.*. The decoder's attention is checked against
torch.nn.MultiheadAttention too. Loss, the parts mimic/conf/reg, the
gradients w.r.t. the student's features and every ICD parameter, and the
loss maps gap.icd.P<l> agree to 1e-4 relative. One case keeps the default icd.bypass (kdscope loss runs at
progress 0: the student's features are detached, so their gradient is 0).

Usage: icd_oracle.py KDSCOPE. Exits 77 when torch is absent.
"""
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_oracle_b as lo  # noqa: E402  (exits 77 without torch)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HEADS = 8
GAPS = {}


def sine_1d(x, nf=128, temp=10000.0):
    """InstanceEncoder's centre embedding: all sines of the even dims, then the cosines of the odd ones."""
    dim_t = temp ** (2 * (torch.arange(nf, dtype=torch.float64) // 2) / nf)
    p = x[:, None] * 2 * math.pi / dim_t
    return torch.cat([p[:, 0::2].sin(), p[:, 1::2].cos()], 1)


def size_bin(px):
    return torch.clamp((1.44 * torch.log(px) - 5).trunc(), 0, 4).long()


def pos_sine(h, w, npf, temp=10000.0):
    """DETR PositionEmbeddingSine(normalize=True) of an unpadded h x w map: (h*w, 2*npf), y block then x."""
    ones = torch.ones(1, h, w, dtype=torch.float64)
    y, x = ones.cumsum(1), ones.cumsum(2)
    y = y / (y[:, -1:, :] + 1e-6) * 2 * math.pi
    x = x / (x[:, :, -1:] + 1e-6) * 2 * math.pi
    dim_t = temp ** (2 * (torch.arange(npf, dtype=torch.float64) // 2) / npf)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), 4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), 4).flatten(3)
    return torch.cat((py, px), 3)[0].reshape(h * w, 2 * npf)


def lin(P, name, x):
    return F.linear(x, P[name + ".weight"], P[name + ".bias"])


def icd_parts(P, tf, sf, inst, img, ncls, p, n):
    """The official teacher forward + aux loss and the distiller's mimic (seq-first [L, N, E] as there)."""
    E = tf[0].shape[1]
    d = E // HEADS
    tseq = torch.cat([x.flatten(2).permute(2, 0, 1) for x in tf], 0)  # L, N, E
    sseq = torch.cat([x.flatten(2).permute(2, 0, 1) for x in sf], 0)
    pos = torch.cat([pos_sine(x.shape[2], x.shape[3], E // 2) for x in tf], 0)[:, None, :].expand(-1, n, -1)
    L = tseq.shape[0]
    # instances, padded per image, real first as given
    per = [inst[inst[:, 0] == i] for i in range(n)]
    K = max(1, max(len(r) for r in per))
    desc = torch.zeros(K, n, ncls + 266, dtype=torch.float64)
    tgt = torch.zeros(K, n, 4, dtype=torch.float64)
    valid = torch.zeros(K, n, dtype=torch.bool)
    real = torch.zeros(K, n, dtype=torch.float64)
    H, W = img
    for i, r in enumerate(per):
        for j, row in enumerate(r):
            cls = int(row[2])
            x1, y1, x2, y2 = row[3] / W, row[4] / H, row[5] / W, row[6] / H
            cx, cy = row[7] / W, row[8] / H
            emb = torch.cat([sine_1d(torch.tensor([float(cx)]))[0], sine_1d(torch.tensor([float(cy)]))[0]])
            sb = torch.zeros(10, dtype=torch.float64)
            sb[size_bin(torch.tensor(float((x2 - x1) * W)))] = 1
            sb[5 + size_bin(torch.tensor(float((y2 - y1) * H)))] = 1
            desc[j, i, cls] = 1
            desc[j, i, ncls:ncls + 256] = emb
            desc[j, i, ncls + 256:] = sb
            tgt[j, i] = torch.tensor([cx - x1, cy - y1, x2 - cx, y2 - cy])
            valid[j, i] = True
            real[j, i] = row[1]
    # InstanceEncoder: MLP 3 layers, ReLU between
    q0 = F.relu(lin(P, "encoder.0", desc))
    q0 = lin(P, "encoder.2", F.relu(lin(P, "encoder.1", q0)))
    # OfficialDecoderLayer with the modified MHA (pre-softmax logits and v returned)
    key = tseq + lin(P, "decoder.pos_proj", pos)
    Wi, bi = P["decoder.attn.in_proj_weight"], P["decoder.attn.in_proj_bias"]
    q = F.linear(q0, Wi[:E], bi[:E]) * d ** -0.5
    k = F.linear(key, Wi[E:2 * E], bi[E:2 * E])
    v = F.linear(tseq, Wi[2 * E:], bi[2 * E:])
    qh = q.reshape(K, n * HEADS, d).transpose(0, 1)
    kh = k.reshape(L, n * HEADS, d).transpose(0, 1)
    vh = v.reshape(L, n * HEADS, d).transpose(0, 1)
    logits = torch.bmm(qh, kh.transpose(1, 2))  # n*heads, K, L (no padding at these sizes)
    att = torch.bmm(F.softmax(logits, -1), vh).transpose(0, 1).reshape(K, n, E)
    att = lin(P, "decoder.attn.out_proj", att)
    mha = torch.nn.MultiheadAttention(E, HEADS).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(Wi), mha.in_proj_bias.copy_(bi)
        mha.out_proj.weight.copy_(P["decoder.attn.out_proj.weight"]), mha.out_proj.bias.copy_(P["decoder.attn.out_proj.bias"])
        ref = mha(q0, key, tseq, need_weights=False)[0]
    assert (ref - att).abs().max() < 1e-9, "the restated attention differs from nn.MultiheadAttention"
    q1 = F.layer_norm(q0 + att, (E,), P["decoder.norm1.weight"], P["decoder.norm1.bias"], 1e-5)
    ff = lin(P, "decoder.linear2", F.relu(lin(P, "decoder.linear1", q1)))
    q1 = F.layer_norm(q1 + ff, (E,), P["decoder.norm2.weight"], P["decoder.norm2.bias"], 1e-5)
    o = lin(P, "predictor.2", F.relu(lin(P, "predictor.1", F.relu(lin(P, "predictor.0", q1)))))
    conf, box = o[..., 0], o[..., 1:].sigmoid()
    # ModelTeacher_II losses
    nvalid = max(valid.sum().item(), 1e-6)
    l_conf = F.binary_cross_entropy_with_logits(conf[valid], real[valid], reduction="sum") / nvalid
    rm = real > 0
    nreal = max(rm.sum().item(), 1e-6)
    w, h = tgt[..., 0] + tgt[..., 2], tgt[..., 1] + tgt[..., 3]
    scale = torch.stack([w, h, w, h], -1).clamp(min=1e-7)
    l_reg = ((box - tgt).abs() / scale)[rm].sum() / nreal
    # InstanceConditionalDistillation: student value projection, LN over the head dim, attention mask
    if p.get("detach"):
        sseq = sseq.detach()
    vs = F.linear(sseq, P["student.value.weight"], P["student.value.bias"]).reshape(L, n, HEADS, d)
    vt = v.detach().reshape(L, n, HEADS, d)
    vs, vt = F.layer_norm(vs, (d,), eps=1e-5), F.layer_norm(vt, (d,), eps=1e-5)
    att_mask = F.softmax(logits.detach() / p.get("icd.temp", 1.0), -1).reshape(n, HEADS, K, L)
    m = (att_mask * real.t()[:, None, :, None]).sum(2)  # n, heads, L
    diff = ((vs - vt) ** 2).permute(1, 2, 0, 3)  # n, heads, L, d
    lam = p.get("icd.weight", 8.0)
    if p.get("icd.norm", "per_image") == "per_image":
        per_nh = (m[..., None] * diff).sum(2) / m.sum(-1, keepdim=True).clamp(min=1e-6)
        l_mimic = per_nh.mean()
        cell = (m[..., None] * diff / m.sum(-1, keepdim=True)[..., None].clamp(min=1e-6)).sum((1, 3)) / (n * HEADS * d)
    else:  # MegEngine: one pooled weighted mean
        l_mimic = (m * diff.mean(-1)).sum() / m.sum().clamp(min=1e-6)
        cell = (m * diff.mean(-1)).sum(1) / m.sum().clamp(min=1e-6)
    # the loss map per cell (gap.icd.P<l>: N,H,W), the levels' maps summing to the part
    gaps, s0 = {}, 0
    for lv, x in zip(lo.LEVELS, tf):
        hw = x.shape[2] * x.shape[3]
        gaps["gap.icd." + lv] = (lam * cell[:, s0:s0 + hw]).detach().reshape(n, x.shape[2], x.shape[3]).numpy()
        s0 += hw
    GAPS.clear()
    GAPS.update(gaps)
    return {"icd.mimic": p.get("icd.weight", 8.0) * l_mimic,
            "icd.conf": p.get("icd.conf", 1.0) * l_conf,
            "icd.reg": p.get("icd.reg", 1.0) * l_reg}


def param_shapes(E, ncls):
    din = ncls + 266
    s = {"encoder.0": (E, din), "encoder.1": (E, E), "encoder.2": (E, E), "decoder.pos_proj": (E, E),
         "decoder.attn.out_proj": (E, E), "decoder.linear1": (4 * E, E), "decoder.linear2": (E, 4 * E),
         "predictor.0": (E, E), "predictor.1": (E, E), "predictor.2": (5, E), "student.value": (E, E)}
    out = {}
    for k, (o, i) in s.items():
        out[k + ".weight"], out[k + ".bias"] = (o, i), (o,)
    out["decoder.attn.in_proj_weight"], out["decoder.attn.in_proj_bias"] = (3 * E, E), (3 * E,)
    for k in ("decoder.norm1", "decoder.norm2"):
        out[k + ".weight"], out[k + ".bias"] = (E,), (E,)
    return out


def case(kd, tmp, rng, tag, sets, params, n=2, E=16, img=(64, 64), fakes=3):
    hw = [(img[0] // 8, img[1] // 8), (img[0] // 16, img[1] // 16), (img[0] // 32, img[1] // 32)]
    arrays = {}
    for lv, (h, w) in zip(lo.LEVELS, hw):
        arrays["teacher." + lv] = rng.standard_normal((n, E, h, w)).astype(np.float32)
        arrays["student." + lv] = (0.5 * arrays["teacher." + lv] + rng.standard_normal((n, E, h, w))).astype(np.float32)
    ncls = 4
    boxes, labels = lo.random_gt(rng, n, img, ncls)
    labels[0] = ncls - 1  # K = max label + 1 for kdscope loss
    arrays["gt.boxes"], arrays["gt.labels"] = boxes, labels
    arrays["image.size"] = np.array(img, np.float32)
    rows = []
    for i in range(n):
        for b in boxes[boxes[:, 0] == i]:
            w, h = b[3] - b[1], b[4] - b[2]
            cx, cy = (b[1] + b[3]) / 2 + rng.uniform(-0.3, 0.3) * w, (b[2] + b[4]) / 2 + rng.uniform(-0.3, 0.3) * h
            rows.append([i, 1, 0, b[1], b[2], b[3], b[4], cx, cy])
        for _ in range(fakes + i):
            w, h = rng.uniform(2, 0.6 * img[1]), rng.uniform(2, 0.6 * img[0])
            x1, y1 = rng.uniform(0, img[1] - w), rng.uniform(0, img[0] - h)
            rows.append([i, 0, rng.integers(0, ncls), x1, y1, x1 + w, y1 + h,
                         x1 + w / 2 + rng.uniform(-0.3, 0.3) * w, y1 + h / 2 + rng.uniform(-0.3, 0.3) * h])
    # the real rows' classes are their GTs'
    gi = 0
    for r in rows:
        if r[1] == 1:
            r[2] = labels[gi]
            gi += 1
    arrays["icd.instances"] = np.array(rows, np.float32)
    for name, shape in param_shapes(E, ncls).items():
        scale = 1.0 / math.sqrt(shape[-1]) if len(shape) == 2 else 0.3
        v = rng.uniform(-scale, scale, shape)
        if name.startswith("decoder.norm") and name.endswith("weight"):
            v = 1.0 + v
        arrays["distill.icd." + name] = v.astype(np.float32)

    def oracle():
        P = {k[len("distill.icd."):]: lo.t64(v, True) for k, v in arrays.items() if k.startswith("distill.icd.")}
        tf = [lo.t64(arrays["teacher." + lv]) for lv in lo.LEVELS]
        sf = [lo.t64(arrays["student." + lv], True) for lv in lo.LEVELS]
        parts = icd_parts(P, tf, sf, torch.tensor(arrays["icd.instances"], dtype=torch.float64), img, ncls, params, n)
        sum(parts.values()).backward()
        grads = {"grad.student." + lv: (x.grad.numpy() if x.grad is not None else np.zeros(x.shape))
                 for lv, x in zip(lo.LEVELS, sf)}
        # pos_proj's bias adds one vector to every key: softmax over keys is
        # shift-invariant per query, so its exact gradient is 0 and both sides
        # give rounding noise there, which a relative check cannot compare.
        grads.update({"grad.distill.icd." + k: (x.grad.numpy() if x.grad is not None else np.zeros(x.shape))
                      for k, x in P.items() if k != "decoder.pos_proj.bias"})
        grads.update(GAPS)
        return parts, grads

    return lo.run_case(kd, tmp, "icd_" + tag, "icd", arrays, sets, oracle)


def main():
    if len(sys.argv) != 2:
        print("usage: icd_oracle.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(20261202)
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-icd-parity-") as tmp:
        fails += case(kd, tmp, rng, "default", ["icd.bypass=0"], {})
        fails += case(kd, tmp, rng, "weights", ["icd.bypass=0", "icd.weight=3", "icd.conf=0.5", "icd.reg=2", "icd.temp=2"],
                      {"icd.weight": 3.0, "icd.conf": 0.5, "icd.reg": 2.0, "icd.temp": 2.0}, n=3, E=24, img=(96, 64))
        fails += case(kd, tmp, rng, "pooled", ["icd.bypass=0", "icd.norm=pooled"], {"icd.norm": "pooled"}, fakes=0)
        fails += case(kd, tmp, rng, "detached", [], {"detach": 1})
    print("%d case(s) failed" % fails if fails else "all cases agree with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
