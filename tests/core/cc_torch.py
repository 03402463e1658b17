"""PyTorch oracle for test_cc_torch.c: criss-cross attention, float64.

Two formulations written from the definition (KD-METHODS 8.1, 10b), which
must agree with each other before either is compared with kdscope:
  dense  every pixel's softmax over all H*W pixels, those outside its row
         and column masked to -inf (an H*W x H*W matrix: fine at test sizes);
  mmcv   the column branch (H entries, the pixel itself masked with -inf)
         concatenated with the row branch (W entries), as mmcv's pure-PyTorch
         CrissCrossAttention; dropping the masked entry gives kdscope's
         N, H+W-1, H, W layout.
Loss = sum(out * R1) + sum(attn * R2); outputs: out, attn, grad q, k, v.

Usage: cc_torch.py IN OUT N C CV H W SCALE (float32 little-endian arrays q,
k, v, R1, R2 in IN; out, attn, gq, gk, gv written to OUT). Exit 77 without torch."""
import struct
import sys

try:
    import torch
except ImportError:
    print("skip: torch not importable")
    sys.exit(77)


def dense(q, k, v, scale):
    n, c, h, w = q.shape
    qf, kf, vf = q.reshape(n, c, h * w), k.reshape(n, c, h * w), v.reshape(n, v.shape[1], h * w)
    e = torch.einsum("ncu,ncp->nup", qf, kf) * scale
    rows = torch.arange(h * w) // w
    cols = torch.arange(h * w) % w
    cross = (rows[:, None] == rows[None, :]) | (cols[:, None] == cols[None, :])
    a = torch.softmax(e.masked_fill(~cross, float("-inf")), dim=-1)  # n, u, p
    out = torch.einsum("nup,ncp->ncu", a, vf).reshape(v.shape)
    # kdscope's layout: column pixels i != h, then the row (itself included)
    idx = torch.empty(h * w, h + w - 1, dtype=torch.long)
    for u in range(h * w):
        hh, ww = divmod(u, w)
        idx[u] = torch.tensor([i * w + ww for i in range(h) if i != hh] + [hh * w + j for j in range(w)])
    att = torch.gather(a, 2, idx.expand(n, -1, -1)).permute(0, 2, 1).reshape(n, h + w - 1, h, w)
    return out, att


def mmcv_style(q, k, v, scale):
    n, c, h, w = q.shape
    eh = torch.einsum("nchw,nciw->nhwi", q, k) * scale
    eh = eh.masked_fill(torch.eye(h, dtype=torch.bool)[None, :, None, :].expand(n, h, w, h), float("-inf"))
    ew = torch.einsum("nchw,nchj->nhwj", q, k) * scale
    a = torch.softmax(torch.cat([eh, ew], dim=-1), dim=-1)
    out = torch.einsum("nciw,nhwi->nchw", v, a[..., :h]) + torch.einsum("nchj,nhwj->nchw", v, a[..., h:])
    keep = ~torch.eye(h, dtype=torch.bool)[:, None, :].expand(h, w, h)  # drop the masked entry
    att = torch.cat([a[..., :h][keep.expand(n, h, w, h)].reshape(n, h, w, h - 1), a[..., h:]], dim=-1)
    return out, att.permute(0, 3, 1, 2)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n, c, cv, h, w = (int(x) for x in sys.argv[3:8])
    scale = float(sys.argv[8])
    L = h + w - 1
    shapes = [(n, c, h, w), (n, c, h, w), (n, cv, h, w), (n, cv, h, w), (n, L, h, w)]
    blob = open(src, "rb").read()
    t, pos = [], 0
    for s in shapes:
        cnt = s[0] * s[1] * s[2] * s[3]
        t.append(torch.tensor(struct.unpack_from(f"<{cnt}f", blob, pos), dtype=torch.float64).reshape(s))
        pos += 4 * cnt
    assert pos == len(blob)
    q, k, v, r1, r2 = t
    for x in (q, k, v):
        x.requires_grad_(True)
    out, att = dense(q, k, v, scale)
    out2, att2 = mmcv_style(q.detach(), k.detach(), v.detach(), scale)
    assert torch.allclose(out.detach(), out2, atol=1e-12), "dense and mmcv-style outputs differ"
    assert torch.allclose(att.detach(), att2, atol=1e-12), "dense and mmcv-style attention differ"
    ((out * r1).sum() + (att * r2).sum()).backward()
    with open(dst, "wb") as f:
        for o in (out, att, q.grad, k.grad, v.grad):
            flat = o.detach().reshape(-1).tolist()
            f.write(struct.pack(f"<{len(flat)}f", *flat))


if __name__ == "__main__":
    main()
