"""DeFeat oracle: recomputes the loss parts and gradients of
engine/distill/defeat.c in float64 PyTorch, written from KD-METHODS.md
section 1 (not from the C code), and compares them with what the C test
wrote: parts and gradients within 1e-4 of the reference's magnitude, the
GT masks exactly.

The head term is computed the independent way: every level's logits are
permuted to (N, H, W, A, K) and concatenated into the flat anchor order of
detect/anchors.h, then split by target class (>= 0 positive, -1 negative).

Usage: torch_defeat_oracle.py FILE.safetensors   (exit 0 ok, 1 fail, 77 no torch)"""
import json
import math
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    print(f"skip: {e}")
    sys.exit(77)


def read_safetensors(path):
    """name -> float64 tensor, with struct+json only (no safetensors package)."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    header.pop("__metadata__", None)
    data = blob[8 + hlen:]
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype="<f4").astype(np.float64)
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def gt_level(box, fs, nlev):
    """DeFeat's level rule in float32 as the reference computes it."""
    b = torch.tensor(box, dtype=torch.float32)
    scale = torch.sqrt((b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    lvl = torch.floor(torch.log2(scale / torch.tensor(fs, dtype=torch.float32) + 1e-6))
    return int(lvl.clamp(0, nlev - 1).item())


def gt_mask(boxes, nbox, level, nlev, stride, h, w, fs):
    m = torch.zeros(len(nbox), 1, h, w, dtype=torch.float64)
    for n, cnt in enumerate(nbox):
        for j in range(int(cnt)):
            box = [float(v) for v in boxes[n, j].float()]
            if gt_level(box, fs, nlev) != level:
                continue
            q = [float(np.float32(v) / np.float32(stride)) for v in box]
            lx, ly = max(int(q[0]), 0), max(int(q[1]), 0)
            rx, ry = min(int(q[2]), w), min(int(q[3]), h)
            if lx == rx or ly == ry:
                if lx < w and ly < h:
                    m[n, 0, ly, lx] = 1
            else:
                m[n, 0, ly:ry, lx:rx] = 1
    return m


def softmax_kl(s, t, T):
    """per row: T^2 * sum_k q (log q - log p), q = softmax(t/T), p = softmax(s/T)"""
    logq = F.log_softmax(t / T, dim=-1)
    logp = F.log_softmax(s / T, dim=-1)
    return T * T * (logq.exp() * (logq - logp)).sum(-1)


def main():
    x = read_safetensors(sys.argv[1])
    hp = {k.split(".", 1)[1]: float(x[k]) for k in x if k.startswith("defeat.")}
    n, A, K = int(x["n"]), int(x["A"]), int(x["K"])
    nlev = sum(1 for k in x if k.startswith("s_feat."))
    boxes, nbox = x["boxes"], x["nbox"]
    leaves, obj, bg, ok = {}, 0.0, 0.0, True
    s_cls, t_cls = [], []
    for l in range(nlev):
        S = x[f"s_feat.{l}"].clone().requires_grad_(True)
        Wt = x[f"distill.defeat.neck_adapt.{l}.weight"].clone().requires_grad_(True)
        Bs = x[f"distill.defeat.neck_adapt.{l}.bias"].clone().requires_grad_(True)
        leaves[f"s_feat.{l}"] = S
        leaves[f"distill.defeat.neck_adapt.{l}.weight"] = Wt
        leaves[f"distill.defeat.neck_adapt.{l}.bias"] = Bs
        T = x[f"t_feat.{l}"]
        C, h, w = T.shape[1], T.shape[2], T.shape[3]
        M = gt_mask(boxes, nbox, l, nlev, int(x[f"stride.{l}"]), h, w, hp["finest_scale"])
        if not torch.equal(M, x[f"mask.{l}"]):
            print(f"mask.{l}: differs in {int((M != x[f'mask.{l}']).sum())} cells")
            ok = False
        D = (F.conv2d(S, Wt, Bs, padding=1) - T) ** 2
        n_obj = max(1.0, 2 * C * float(M.sum()))
        n_bg = max(1.0, 2 * C * float((1 - M).sum()))
        obj = obj + (D * M).sum() / n_obj
        bg = bg + (D * (1 - M)).sum() / n_bg
        sc = x[f"s_cls.{l}"].clone().requires_grad_(True)
        leaves[f"s_cls.{l}"] = sc
        s_cls.append(sc.permute(0, 2, 3, 1).reshape(n, -1, K))  # (N, H*W*A, K)
        t_cls.append(x[f"t_cls.{l}"].permute(0, 2, 3, 1).reshape(n, -1, K))
    wgt = hp["weight"]
    parts = {"neck_obj": wgt * hp["alpha_obj"] * obj / nlev, "neck_bg": wgt * hp["alpha_bg"] * bg / nlev}
    s_all, t_all = torch.cat(s_cls, 1), torch.cat(t_cls, 1)
    tc = x["target_cls"]
    assert s_all.shape[1] == tc.shape[1], (s_all.shape, tc.shape)
    for name, sel, beta, T in (("head_obj", tc >= 0, hp["beta_obj"], hp["T_obj"]),
                               ("head_bg", tc == -1, hp["beta_bg"], hp["T_bg"])):
        cnt = int(sel.sum())
        kl = softmax_kl(s_all[sel], t_all[sel], T).sum() / cnt if cnt else torch.zeros((), dtype=torch.float64)
        parts[name] = wgt * beta * kl
    total = sum(parts.values())
    total.backward()

    def compare(what, got, want, floor=1e-6):
        nonlocal ok
        got, want = got.double().reshape(-1), want.double().reshape(-1)
        peak = max(float(want.abs().max()), floor)
        err = float((got - want).abs().max())
        rel = err / peak
        print(f"{what:<44} {want.numel():7d} values  max|diff|/max|ref| {rel:.2e}")
        if not rel <= 1e-4 or math.isnan(rel):
            ok = False

    for name, v in parts.items():
        compare(f"part.{name}", x[f"part.{name}"], v.detach())
    for name, t in leaves.items():
        compare(f"grad.{name}", x[f"grad.{name}"], t.grad)
    print("defeat oracle:", "ok" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
