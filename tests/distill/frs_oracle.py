#!/usr/bin/python3
"""PyTorch restatement of FRS's loss for test_frs.c (float64): per level the
mask is the max over channels of the teacher's sigmoid class scores
(detached); the feature term sums mask * (T - Adap(S))^2 through a 3x3
conv with bias and divides by the mask's sum; the class term is
F.binary_cross_entropy(sigmoid(s), sigmoid(t)) weighted the same way;
weights 0.005 / 0.02 and the linear warm-up (iter / warm while iter <
warm), as duzhixing/FRS's Distilling_FRS_Single.forward_train. Written
from reading that code; none copied.

Usage: frs_oracle.py frs IN OUT. Exits 77 without torch.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "detect"))
from torch_ref import torch_main  # noqa: E402


def mode_frs(torch, F, arrs):
    feat_w, cls_w, warm, it = arrs["params"]

    def get(name, grad=False):
        shape = [int(v) for v in arrs[name + "_shape"]]
        return torch.tensor(arrs[name], dtype=torch.float64).view(shape).requires_grad_(grad)

    feat, cls, leaves = 0.0, 0.0, []
    for l in range(2):
        tf, tc = get("tf%d" % l), get("tc%d" % l)
        sf, sc = get("sf%d" % l, True), get("sc%d" % l, True)
        ct, cs = tf.shape[1], sf.shape[1]
        w = torch.tensor(arrs["adap%d_w" % l], dtype=torch.float64).view(ct, cs, 3, 3).requires_grad_(True)
        b = torch.tensor(arrs["adap%d_b" % l], dtype=torch.float64).requires_grad_(True)
        leaves.append((sf, sc, w, b))
        adap = F.conv2d(sf, w, b, padding=1)
        mask = torch.max(tc.sigmoid(), dim=1).values.detach()
        fl = torch.pow(tf - adap, 2)
        cl = F.binary_cross_entropy(sc.sigmoid(), tc.sigmoid(), reduction="none")
        feat = feat + (fl * mask[:, None]).sum() / mask.sum()
        cls = cls + (cl * mask[:, None]).sum() / mask.sum()
    feat, cls = feat * feat_w, cls * cls_w
    if warm > it:
        feat, cls = (it / warm) * feat, (it / warm) * cls
    (feat + cls).backward()
    out = {"feat": [feat.item()], "cls": [cls.item()]}
    for l, (sf, sc, w, b) in enumerate(leaves):
        out["gsf%d" % l], out["gsc%d" % l] = sf.grad.flatten().tolist(), sc.grad.flatten().tolist()
        out["gw%d" % l], out["gb%d" % l] = w.grad.flatten().tolist(), b.grad.flatten().tolist()
    return out


def main():
    return torch_main(sys.argv[1:], __doc__, "frs_oracle", {"frs": mode_frs})


if __name__ == "__main__":
    sys.exit(main())
