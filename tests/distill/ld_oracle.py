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


def ld_parts(torch, F, sd, td, sc, tc, labels, vlr, p):
    """LD's parts summed over levels. sd/td (N, 4B, H, W) and sc/tc (N, K, H, W) per level; labels and
    vlr (N, A_total) per flat anchor; p: ld, ld_T, vlr, vlr_T, kd, kd_T."""
    def kd_kl(pred, soft, T):
        target = F.softmax(soft / T, dim=1)
        return F.kl_div(F.log_softmax(pred / T, dim=1), target, reduction="none").mean(1) * (T * T)

    def weighted(loss, weight, avg):
        return (loss * weight).sum() / avg

    def flat(x):
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])

    parts, off = {"main": 0.0, "vlr": 0.0, "cls": 0.0}, 0
    for l in range(len(sd)):
        B = sd[l].shape[1] // 4
        h, w = sd[l].shape[2], sd[l].shape[3]
        fsd, ftd, fsc, ftc = flat(sd[l]), flat(td[l]), flat(sc[l]), flat(tc[l])
        lab = labels[:, off:off + h * w].reshape(-1)
        v = vlr[:, off:off + h * w].reshape(-1)
        off += h * w
        pos = (lab >= 0).nonzero().squeeze(1)
        wt = fsc.detach().sigmoid().max(dim=1)[0][pos]
        parts["main"] = parts["main"] + p["ld"] * weighted(
            kd_kl(fsd[pos].reshape(-1, B), ftd[pos].reshape(-1, B), p["ld_T"]), wt[:, None].expand(-1, 4).reshape(-1), 4.0)
        rem = (v > 0).nonzero().squeeze(1)
        parts["vlr"] = parts["vlr"] + p["vlr"] * weighted(
            kd_kl(fsd[rem].reshape(-1, B), ftd[rem].reshape(-1, B), p["vlr_T"]),
            v[rem][:, None].expand(-1, 4).reshape(-1), 16.0)
        if len(pos) > 0:
            parts["cls"] = parts["cls"] + p["kd"] * weighted(kd_kl(fsc[pos], ftc[pos], p["kd_T"]), 1.0, float(len(pos)))
    return parts


def mode_ld(torch, F, arrs):
    n, K, B, nlev = (int(v) for v in arrs["dims"])
    p = dict(zip(("ld", "ld_T", "vlr", "vlr_T", "kd", "kd_T"), arrs["params"]))
    hw = [int(v) for v in arrs["hw"]]
    At = sum(hw[2 * l] * hw[2 * l + 1] for l in range(nlev))
    labels = torch.tensor(arrs["labels"]).long().view(n, At)
    vlr = torch.tensor(arrs["vlr"], dtype=torch.float64).view(n, At)

    def get(name, l, ch, grad):
        x = torch.tensor(arrs["%s%d" % (name, l)], dtype=torch.float64).view(n, ch, hw[2 * l], hw[2 * l + 1])
        return x.requires_grad_(grad)

    sd = [get("sd", l, 4 * B, True) for l in range(nlev)]
    td = [get("td", l, 4 * B, False) for l in range(nlev)]
    sc = [get("sc", l, K, True) for l in range(nlev)]
    tc = [get("tc", l, K, False) for l in range(nlev)]
    parts = ld_parts(torch, F, sd, td, sc, tc, labels, vlr, p)
    total = parts["main"] + parts["vlr"] + parts["cls"]
    total.backward()
    out = {k: [float(v)] for k, v in parts.items()}
    out["loss"] = [total.item()]
    for l in range(nlev):
        out["gsd%d" % l] = sd[l].grad.flatten().tolist()
        out["gsc%d" % l] = sc[l].grad.flatten().tolist()
    return out


def main():
    return torch_main(sys.argv[1:], __doc__, "ld_oracle", {"ld": mode_ld})


if __name__ == "__main__":
    sys.exit(main())
