"""PyTorch oracle for test_torch_parity.c: two conv-BN-ReLU blocks.

Block 1: conv 3x3 stride 2 pad 1 with bias -> BN (training) -> ReLU.
Block 2: conv 3x3 pad 2 dilation 2 groups 2, no bias -> BN (eval) -> ReLU.
Loss = sum(y * R). Computed in float64 from the float32 inputs.

Usage: torch_parity.py IN OUT N CIN H W C1 C2
IN holds float32 little-endian arrays in the order of INPUTS below; OUT gets
the arrays of OUTPUTS, same encoding. Exit 77 when torch is missing."""
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skip: torch not importable")
    sys.exit(77)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n, cin, h, w, c1, c2 = (int(v) for v in sys.argv[3:9])
    ho, wo = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    shapes = [
        ("x", (n, cin, h, w)), ("w1", (c1, cin, 3, 3)), ("b1", (c1,)), ("g1", (c1,)), ("be1", (c1,)),
        ("rm1", (c1,)), ("rv1", (c1,)), ("w2", (c2, c1 // 2, 3, 3)), ("g2", (c2,)), ("be2", (c2,)),
        ("rm2", (c2,)), ("rv2", (c2,)), ("r", (n, c2, ho, wo)),
    ]
    with open(src, "rb") as f:
        blob = f.read()
    t, pos = {}, 0
    for name, shape in shapes:
        count = 1
        for d in shape:
            count *= d
        vals = struct.unpack_from(f"<{count}f", blob, pos)
        pos += 4 * count
        t[name] = torch.tensor(vals, dtype=torch.float64).reshape(shape)
    assert pos == len(blob), (pos, len(blob))
    leaves = ["x", "w1", "b1", "g1", "be1", "w2", "g2", "be2"]
    for k in leaves:
        t[k].requires_grad_(True)
    rm1, rv1 = t["rm1"].clone(), t["rv1"].clone()
    y = F.conv2d(t["x"], t["w1"], t["b1"], stride=2, padding=1)
    y = F.relu(F.batch_norm(y, rm1, rv1, t["g1"], t["be1"], training=True, momentum=0.1, eps=1e-5))
    y = F.conv2d(y, t["w2"], None, padding=2, dilation=2, groups=2)
    y = F.relu(F.batch_norm(y, t["rm2"], t["rv2"], t["g2"], t["be2"], training=False, eps=1e-5))
    (y * t["r"]).sum().backward()
    outs = [y.detach()] + [t[k].grad for k in leaves] + [rm1, rv1]
    with open(dst, "wb") as f:
        for o in outs:
            flat = o.detach().reshape(-1).tolist()
            f.write(struct.pack(f"<{len(flat)}f", *flat))


if __name__ == "__main__":
    main()
