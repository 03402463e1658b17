#!/usr/bin/python3
"""PyTorch restatement of LD's losses for test_ld.c (float64): the LD
repository's KnowledgeDistillationKLDivLoss (KL of log_softmax(s/T) against
softmax(t/T), mean over the bins or classes, times T^2), mmdet's weighted
reduction (sum of loss * weight / avg_factor) and LDHead.loss_single's
three terms per level (main LD on the positives weighted by the student's
max class score, avg_factor 4; VLR LD weighted by the VLR IoU, avg_factor
16; class KD on the positives, avg_factor their count). The VLR weights
come from the C side (their region is checked against a restatement of the
LD assigner in tests/detect/gfl_ref.py). Written from reading that code;
none copied.

Usage: ld_oracle.py ld IN OUT. Exits 77 without torch.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "detect"))
from torch_ref import torch_main  # noqa: E402


def mode_ld(torch, F, arrs):
    def kd_kl(pred, soft, T):
        target = F.softmax(soft / T, dim=1)
        return F.kl_div(F.log_softmax(pred / T, dim=1), target, reduction="none").mean(1) * (T * T)

    def weighted(loss, weight, avg):
        return (loss * weight).sum() / avg

    n, K, B, nlev = (int(v) for v in arrs["dims"])
    ld, ld_T, vlr_w, vlr_T, kd, kd_T = arrs["params"]
    hw = [int(v) for v in arrs["hw"]]
    At = sum(hw[2 * l] * hw[2 * l + 1] for l in range(nlev))
    labels = torch.tensor(arrs["labels"]).long().view(n, At)
    vlr = torch.tensor(arrs["vlr"], dtype=torch.float64).view(n, At)
    out, parts, off = {}, {"main": 0.0, "vlr": 0.0, "cls": 0.0}, 0
    leaves = []
    for l in range(nlev):
        h, w = hw[2 * l], hw[2 * l + 1]
        sd = torch.tensor(arrs["sd%d" % l], dtype=torch.float64).view(n, 4 * B, h, w).requires_grad_(True)
        td = torch.tensor(arrs["td%d" % l], dtype=torch.float64).view(n, 4 * B, h, w)
        sc = torch.tensor(arrs["sc%d" % l], dtype=torch.float64).view(n, K, h, w).requires_grad_(True)
        tc = torch.tensor(arrs["tc%d" % l], dtype=torch.float64).view(n, K, h, w)
        leaves.append((sd, sc))
        flat = lambda x: x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # noqa: E731
        fsd, ftd, fsc, ftc = flat(sd), flat(td), flat(sc), flat(tc)
        lab = labels[:, off:off + h * w].reshape(-1)
        v = vlr[:, off:off + h * w].reshape(-1)
        off += h * w
        pos = (lab >= 0).nonzero().squeeze(1)
        wt = fsc.detach().sigmoid().max(dim=1)[0][pos]
        parts["main"] = parts["main"] + ld * weighted(
            kd_kl(fsd[pos].reshape(-1, B), ftd[pos].reshape(-1, B), ld_T), wt[:, None].expand(-1, 4).reshape(-1), 4.0)
        rem = (v > 0).nonzero().squeeze(1)
        parts["vlr"] = parts["vlr"] + vlr_w * weighted(
            kd_kl(fsd[rem].reshape(-1, B), ftd[rem].reshape(-1, B), vlr_T), v[rem][:, None].expand(-1, 4).reshape(-1), 16.0)
        if len(pos) > 0:
            parts["cls"] = parts["cls"] + kd * weighted(kd_kl(fsc[pos], ftc[pos], kd_T), 1.0, float(len(pos)))
    total = parts["main"] + parts["vlr"] + parts["cls"]
    total.backward()
    for k, v in parts.items():
        out[k] = [float(v)]
    out["loss"] = [total.item()]
    for l, (sd, sc) in enumerate(leaves):
        out["gsd%d" % l] = sd.grad.flatten().tolist()
        out["gsc%d" % l] = sc.grad.flatten().tolist()
    return out


def main():
    return torch_main(sys.argv[1:], __doc__, "ld_oracle", {"ld": mode_ld})


if __name__ == "__main__":
    sys.exit(main())
