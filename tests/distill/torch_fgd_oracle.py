"""FGD oracle: recomputes the loss parts and gradients of engine/distill/fgd.c
in float64 PyTorch, written from KD-METHODS.md section 2 (not from the C
code), and compares them with what the C test wrote: parts and gradients
(student features, align convs, both GcBlocks of every level) within 1e-4
of the reference's magnitude; the fg scale masks and teacher attention
within float rounding.

The masks use the FGD code's box scaling (box / img_shape * feature size),
which on our square un-padded inputs must equal the C side's stride rule.

Usage: torch_fgd_oracle.py FILE.safetensors   (exit 0 ok, 1 fail, 77 no torch)"""
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


def scale_masks(boxes, nbox, h, w, img):
    """M_fg (max of 1/area, inclusive floor/ceil ranges, clipped) and M_bg."""
    n = len(nbox)
    fg = torch.zeros(n, h, w, dtype=torch.float64)
    bg = torch.ones(n, h, w, dtype=torch.float64)
    for i in range(n):
        for j in range(int(nbox[i])):
            b = boxes[i, j].float()  # the reference's float32 arithmetic
            x1, x2 = b[0] / img * w, b[2] / img * w
            y1, y2 = b[1] / img * h, b[3] / img * h
            wmin, wmax = int(torch.floor(x1)), int(torch.ceil(x2))
            hmin, hmax = int(torch.floor(y1)), int(torch.ceil(y2))
            area = 1.0 / ((hmax + 1 - hmin) * (wmax + 1 - wmin))
            fg[i, hmin:hmax + 1, wmin:wmax + 1] = torch.clamp(fg[i, hmin:hmax + 1, wmin:wmax + 1], min=area)
        bg[i] = torch.where(fg[i] > 0, 0.0, 1.0)
        if bg[i].sum() > 0:
            bg[i] /= bg[i].sum()
    return fg, bg


def attention(x, temp):
    n, c, h, w = x.shape
    a = x.abs()
    sp = h * w * F.softmax((a.mean(1) / temp).reshape(n, -1), dim=1).reshape(n, h, w)
    ch = c * F.softmax(a.mean((2, 3)) / temp, dim=1)
    return sp, ch


def gc_block(x, p, side):
    n, c, h, w = x.shape
    logit = F.conv2d(x, p[f"conv_mask_{side}.weight"], p[f"conv_mask_{side}.bias"])
    attn = F.softmax(logit.reshape(n, 1, h * w), dim=2).unsqueeze(-1)           # N,1,HW,1
    ctx = torch.matmul(x.reshape(n, 1, c, h * w), attn).reshape(n, c, 1, 1)
    z = F.conv2d(ctx, p[f"channel_add_conv_{side}.0.weight"], p[f"channel_add_conv_{side}.0.bias"])
    half = z.shape[1]
    z = F.layer_norm(z, [half, 1, 1], p[f"channel_add_conv_{side}.1.weight"].reshape(half, 1, 1),
                     p[f"channel_add_conv_{side}.1.bias"].reshape(half, 1, 1), eps=1e-5)
    z = F.conv2d(F.relu(z), p[f"channel_add_conv_{side}.3.weight"], p[f"channel_add_conv_{side}.3.bias"])
    return x + z


def main():
    x = read_safetensors(sys.argv[1])
    hp = {k.split(".", 1)[1]: float(x[k]) for k in x if k.startswith("fgd.") and x[k].dim() == 0}
    img = float(x["img"])
    nlev = sum(1 for k in x if k.startswith("s_feat."))
    leaves = {}
    for k in x:
        if k.startswith("distill.fgd."):
            leaves[k] = x[k].clone().requires_grad_(True)
    sums = {"fg": 0.0, "bg": 0.0, "mask": 0.0, "rela": 0.0}
    ok = True

    def compare(what, got, want, tol=1e-4, floor=1e-6):
        nonlocal ok
        got, want = got.double().reshape(-1), want.double().reshape(-1)
        peak = max(float(want.abs().max()), floor)
        rel = float((got - want).abs().max()) / peak
        print(f"{what:<52} {want.numel():7d} values  max|diff|/max|ref| {rel:.2e}")
        if not rel <= tol or math.isnan(rel):
            ok = False

    for l in range(nlev):
        S = x[f"s_feat.{l}"].clone().requires_grad_(True)
        leaves[f"s_feat.{l}"] = S
        T = x[f"t_feat.{l}"]
        p = {k[len(f"distill.fgd.fpn_{l}."):]: v for k, v in leaves.items() if k.startswith(f"distill.fgd.fpn_{l}.")}
        if "align.weight" in p:
            S = F.conv2d(S, p["align.weight"], p["align.bias"])
        n, c, h, w = T.shape
        sp_t, ch_t = attention(T, hp["temp"])
        sp_s, ch_s = attention(S, hp["temp"])
        fg, bg = scale_masks(x["boxes"], x["nbox"], h, w, img)
        compare(f"fgd.fg.{l} (mask)", x[f"fgd.fg.{l}"], fg.unsqueeze(1), tol=1e-6)
        compare(f"fgd.att_t.{l} (teacher spatial attention)", x[f"fgd.att_t.{l}"], sp_t.unsqueeze(1), tol=1e-5)
        # The code's form: features scaled by sqrt of the weights, summed squared differences.
        wt = torch.sqrt(sp_t.unsqueeze(1) * ch_t.reshape(n, c, 1, 1))
        fs, ft = S * wt, T * wt
        sums["fg"] = sums["fg"] + ((fs - ft) ** 2 * fg.unsqueeze(1)).sum() / n
        sums["bg"] = sums["bg"] + ((fs - ft) ** 2 * bg.unsqueeze(1)).sum() / n
        sums["mask"] = sums["mask"] + (ch_s - ch_t).abs().sum() / n + (sp_s - sp_t).abs().sum() / n
        sums["rela"] = sums["rela"] + ((gc_block(S, p, "s") - gc_block(T, p, "t")) ** 2).sum() / n
    k = hp["weight"]
    parts = {"fg": k * hp["alpha"] * sums["fg"], "bg": k * hp["beta"] * sums["bg"],
             "mask": k * hp["gamma"] * sums["mask"], "rela": k * hp["lambda"] * sums["rela"]}
    sum(parts.values()).backward()
    for name, v in parts.items():
        compare(f"part.{name}", x[f"part.{name}"], v.detach())
    for name, t in leaves.items():
        if name.endswith(("conv_mask_s.bias", "conv_mask_t.bias")):
            # softmax over HW ignores a constant shift: the exact gradient is 0,
            # both sides hold rounding noise; bound it against the weight's gradient.
            scale = float(leaves[name[:-len("bias")] + "weight"].grad.abs().max())
            compare(f"grad.{name} (exactly 0)", x[f"grad.{name}"], t.grad, floor=scale)
            continue
        compare(f"grad.{name}", x[f"grad.{name}"], t.grad)
    print("fgd oracle:", "ok" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
