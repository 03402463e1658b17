#!/usr/bin/python3
"""PyTorch references for GFL's losses, ATSS and LD's VLR (test_gfl_torch.c).

The functions below restate, in float64, what mmdetection 2.x's GFLHead
uses (quality_focal_loss, distribution_focal_loss, Integral,
distance2bbox, bbox_overlaps(mode='giou', is_aligned=True), GIoULoss,
ATSSAssigner.assign) and what HikariTJU/LD's assigner does for its
valuable localization region (all anchors as candidates, an overlap of
intersection over the anchor's area minus DIoU's centre term, the window
[0.25 t, t) with t the ATSS threshold, weight the highest IoU), and, from
these, GFLHead.loss on a head's outputs (mode gflhead). Written
from reading those sources; no code copied.

Usage: gfl_ref.py MODE IN OUT [MODE IN OUT ...]; array files as
torch_ref.py's. Exits 77 without torch.
"""
import sys

from torch_ref import torch_main


def qfl(torch, F, pred, label, score, beta):
    """pred (M, K) logits; label (M,) class or K for background."""
    p = pred.sigmoid()
    loss = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none") * p.pow(beta)
    K = pred.shape[1]
    pos = ((label >= 0) & (label < K)).nonzero().squeeze(1)
    lab = label[pos]
    sf = score[pos] - p[pos, lab]
    loss[pos, lab] = F.binary_cross_entropy_with_logits(pred[pos, lab], score[pos], reduction="none") * sf.abs().pow(beta)
    return loss.sum(dim=1)


def dfl(torch, F, pred, label):
    left = label.long()
    right = left + 1
    wl = right.double() - label
    wr = label - left.double()
    return F.cross_entropy(pred, left, reduction="none") * wl + F.cross_entropy(pred, right, reduction="none") * wr


def integral(torch, F, x, reg_max):
    p = F.softmax(x.reshape(-1, reg_max + 1), dim=1)
    return F.linear(p, torch.linspace(0, reg_max, reg_max + 1, dtype=x.dtype)).reshape(-1, 4)


def distance2bbox(torch, points, d):
    return torch.stack([points[:, 0] - d[:, 0], points[:, 1] - d[:, 1], points[:, 0] + d[:, 2], points[:, 1] + d[:, 3]], -1)


def overlaps_aligned(torch, b1, b2, mode, eps=1e-6):
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = torch.max(b1[:, :2], b2[:, :2])
    rb = torch.min(b1[:, 2:], b2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = torch.max(a1 + a2 - inter, torch.tensor(eps, dtype=b1.dtype))
    ious = inter / union
    if mode == "iou":
        return ious
    elt = torch.min(b1[:, :2], b2[:, :2])
    erb = torch.max(b1[:, 2:], b2[:, 2:])
    ewh = (erb - elt).clamp(min=0)
    enc = torch.max(ewh[:, 0] * ewh[:, 1], torch.tensor(eps, dtype=b1.dtype))
    return ious - (enc - union) / enc


def iou_matrix(torch, a, g, eps=1e-6):
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    lt = torch.max(a[:, None, :2], g[None, :, :2])
    rb = torch.min(a[:, None, 2:], g[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area_a, inter / torch.max(area_a[:, None] + area_g[None, :] - inter, torch.tensor(eps, dtype=a.dtype))


def ld_overlap(torch, a, g, eps=1e-6):
    """The LD repo's 'diou': intersection over the anchor's area, minus rho^2 / c^2."""
    inter, area_a, _ = iou_matrix(torch, a, g, eps)
    ious = inter / torch.max(area_a, torch.tensor(eps, dtype=a.dtype))[:, None]
    rho2 = (((g[None, :, 0] + g[None, :, 2]) - (a[:, None, 0] + a[:, None, 2])) ** 2 +
            ((g[None, :, 1] + g[None, :, 3]) - (a[:, None, 1] + a[:, None, 3])) ** 2) / 4
    elt = torch.min(a[:, None, :2], g[None, :, :2])
    erb = torch.max(a[:, None, 2:], g[None, :, 2:])
    ewh = (erb - elt).clamp(min=0)
    c2 = torch.max(ewh[..., 0] ** 2 + ewh[..., 1] ** 2, torch.tensor(eps, dtype=a.dtype))
    return ious - rho2 / c2


def atss_threshold(torch, anchors, gt, nlevel, topk):
    _, _, ov = iou_matrix(torch, anchors, gt)
    acx = (anchors[:, 0] + anchors[:, 2]) / 2.0
    acy = (anchors[:, 1] + anchors[:, 3]) / 2.0
    gcx = (gt[:, 0] + gt[:, 2]) / 2.0
    gcy = (gt[:, 1] + gt[:, 3]) / 2.0
    dist = ((acx[:, None] - gcx[None]) ** 2 + (acy[:, None] - gcy[None]) ** 2).sqrt()
    cand, start = [], 0
    for n in nlevel:
        _, idx = dist[start:start + n].topk(min(topk, n), dim=0, largest=False)
        cand.append(idx + start)
        start += n
    cand = torch.cat(cand, 0)
    cov = ov[cand, torch.arange(gt.shape[0])]
    return ov, cand, cov, cov.mean(0) + cov.std(0), acx, acy


def atss_match_vlr(torch, anchors, gt, nlevel, topk, vlr_lo=0.25):
    """ATSS's matched GT per anchor (-1: negative), t_g per GT, and LD's VLR weight per anchor."""
    A, M = anchors.shape[0], gt.shape[0]
    ov, cand, cov, thr, acx, acy = atss_threshold(torch, anchors, gt, nlevel, topk)
    is_pos = cov >= thr[None]
    cx, cy = acx[cand], acy[cand]
    inside = torch.stack([cx - gt[:, 0], cy - gt[:, 1], gt[:, 2] - cx, gt[:, 3] - cy], 1).min(1)[0] > 0.01
    is_pos = is_pos & inside
    inf = torch.full((M, A), -1e8, dtype=torch.float64)
    gidx = torch.arange(M)[None].expand_as(cand)
    inf[gidx[is_pos], cand[is_pos]] = ov.t()[gidx[is_pos], cand[is_pos]]
    mx, arg = inf.t().max(1)
    match = torch.where(mx != -1e8, arg, torch.full_like(arg, -1))
    # LD's VLR: every anchor, 0.25 t <= overlap < t, weight = highest IoU.
    lo = ld_overlap(torch, anchors, gt)
    q = (lo < thr[None]) & (lo >= vlr_lo * thr[None])
    inf = torch.where(q, ov, torch.full_like(ov, -1e8))
    vmax, _ = inf.max(1)
    return match, thr, torch.where(vmax != -1e8, vmax, torch.zeros_like(vmax))


def mode_atss(torch, F, arrs):
    anchors = torch.tensor(arrs["anchors"], dtype=torch.float64).view(-1, 4)
    gt = torch.tensor(arrs["gt"], dtype=torch.float64).view(-1, 4)
    match, thr, vlr = atss_match_vlr(torch, anchors, gt, [int(v) for v in arrs["nlevel"]], int(arrs["topk"][0]))
    return {"match": match.tolist(), "thr": thr.tolist(), "vlr": vlr.tolist()}


def mode_qfl(torch, F, arrs):
    pred = torch.tensor(arrs["pred"], dtype=torch.float64).view(-1, int(arrs["K"][0])).requires_grad_(True)
    label = torch.tensor(arrs["label"], dtype=torch.float64).long()
    K = pred.shape[1]
    weight = (label != -2).double()
    label = torch.where(label < 0, torch.full_like(label, K), label)
    score = torch.tensor(arrs["score"], dtype=torch.float64)
    loss = (qfl(torch, F, pred, label, score, arrs["beta"][0]) * weight).sum() / arrs["norm"][0]
    loss.backward()
    return {"loss": [loss.item()], "grad": pred.grad.flatten().tolist()}


def mode_dfl(torch, F, arrs):
    B = int(arrs["B"][0])
    pred = torch.tensor(arrs["pred"], dtype=torch.float64).view(-1, B).requires_grad_(True)
    target = torch.tensor(arrs["target"], dtype=torch.float64)
    w = torch.tensor(arrs["weight"], dtype=torch.float64)
    loss = (dfl(torch, F, pred, target) * w).sum()
    loss.backward()
    return {"loss": [loss.item()], "grad": pred.grad.flatten().tolist()}


def mode_chain(torch, F, arrs):
    """integral -> distance2bbox -> weighted GIoU loss, and the IoU targets."""
    B = int(arrs["B"][0])
    x = torch.tensor(arrs["pred"], dtype=torch.float64).view(-1, B).requires_grad_(True)
    pts = torch.tensor(arrs["points"], dtype=torch.float64).view(-1, 2)
    tgt = torch.tensor(arrs["target"], dtype=torch.float64).view(-1, 4)
    w = torch.tensor(arrs["weight"], dtype=torch.float64)
    sides = integral(torch, F, x, B - 1)
    boxes = distance2bbox(torch, pts, sides)
    loss = ((1 - overlaps_aligned(torch, boxes, tgt, "giou")) * w).sum()
    loss.backward()
    iou = overlaps_aligned(torch, boxes.detach(), tgt, "iou")
    return {"loss": [loss.item()], "grad": x.grad.flatten().tolist(), "sides": sides.detach().flatten().tolist(),
            "iou": iou.tolist()}


def mode_gflhead(torch, F, arrs):
    """GFLHead.loss as mmdet (10b's normalisers) from the head's outputs, its anchors and the GT."""
    n, K, B, nlev = (int(v) for v in arrs["dims"])
    beta, box_w, dfl_w, mult = arrs["params"]
    hw = [int(v) for v in arrs["hw"]]
    strides = [int(v) for v in arrs["strides"]]
    R = B - 1
    cls = [torch.tensor(arrs["cls%d" % l], dtype=torch.float64).view(n, K, hw[2 * l], hw[2 * l + 1]).requires_grad_(True)
           for l in range(nlev)]
    dist = [torch.tensor(arrs["dist%d" % l], dtype=torch.float64).view(n, 4 * B, hw[2 * l], hw[2 * l + 1])
            .requires_grad_(True) for l in range(nlev)]
    anchors, lvl_of = [], []
    for l in range(nlev):
        s, half = strides[l], mult * strides[l] / 2.0
        for y in range(hw[2 * l]):
            for x in range(hw[2 * l + 1]):
                anchors.append([x * s - half, y * s - half, x * s + half, y * s + half])
    anchors = torch.tensor(anchors, dtype=torch.float64)
    nl = [hw[2 * l] * hw[2 * l + 1] for l in range(nlev)]
    gtb = torch.tensor(arrs["gt"], dtype=torch.float64).view(-1, 5)
    gtl = torch.tensor(arrs["labels"]).long()
    labels = torch.full((n, anchors.shape[0]), K, dtype=torch.long)
    targets = torch.zeros((n, anchors.shape[0], 4), dtype=torch.float64)
    samples = 0
    for i in range(n):
        rows = gtb[:, 0] == i
        g = gtb[rows, 1:]
        npos = 0
        if len(g):
            match, _, _ = atss_match_vlr(torch, anchors, g, nl, 9)
            pos = match >= 0
            labels[i, pos] = gtl[rows][match[pos]]
            targets[i, pos] = g[match[pos]]
            npos = int(pos.sum())
        samples += max(npos, 1)
    samples = max(samples, 1)
    loss_cls, loss_box, loss_dfl, avg, off = 0.0, 0.0, 0.0, 0.0, 0
    for l in range(nlev):
        s = strides[l]
        fc = cls[l].permute(0, 2, 3, 1).reshape(-1, K)
        fd = dist[l].permute(0, 2, 3, 1).reshape(-1, 4 * B)
        lab = labels[:, off:off + nl[l]].reshape(-1)
        tg = targets[:, off:off + nl[l]].reshape(-1, 4)
        an = anchors[off:off + nl[l]].repeat(n, 1)
        off += nl[l]
        centers = torch.stack([(an[:, 0] + an[:, 2]) / 2, (an[:, 1] + an[:, 3]) / 2], 1) / s
        pos = (lab < K).nonzero().squeeze(1)
        score = torch.zeros(lab.shape[0], dtype=torch.float64)
        if len(pos):
            w = fc.detach().sigmoid().max(dim=1)[0][pos]
            corners = integral(torch, F, fd[pos], R)
            pred = distance2bbox(torch, centers[pos], corners)
            tgt = tg[pos] / s
            score[pos] = overlaps_aligned(torch, pred.detach(), tgt, "iou")
            loss_box = loss_box + ((1 - overlaps_aligned(torch, pred, tgt, "giou")) * w).sum()
            d = torch.stack([centers[pos, 0] - tgt[:, 0], centers[pos, 1] - tgt[:, 1], tgt[:, 2] - centers[pos, 0],
                             tgt[:, 3] - centers[pos, 1]], -1).clamp(min=0, max=R - 0.1)
            loss_dfl = loss_dfl + (dfl(torch, F, fd[pos].reshape(-1, B), d.reshape(-1)) *
                                   w[:, None].expand(-1, 4).reshape(-1)).sum() / 4.0
            avg = avg + w.sum()
        loss_cls = loss_cls + qfl(torch, F, fc, lab, score, beta).sum() / samples
    avg = avg + 1e-6
    box, dfl_part = loss_box / avg, loss_dfl / avg
    total = loss_cls + box_w * box + dfl_w * dfl_part
    total.backward()
    out = {"cls": [float(loss_cls)], "box": [float(box)], "dfl": [float(dfl_part)], "loss": [total.item()]}
    for l in range(nlev):  # a level without positives gets no gradient on its sides
        out["gcls%d" % l] = cls[l].grad.flatten().tolist()
        out["gdist%d" % l] = (dist[l].grad if dist[l].grad is not None else torch.zeros_like(dist[l])).flatten().tolist()
    return out


def main():
    return torch_main(sys.argv[1:], __doc__, "gfl_ref", {"atss": mode_atss, "qfl": mode_qfl, "dfl": mode_dfl, "chain": mode_chain,
                                                           "gflhead": mode_gflhead})


if __name__ == "__main__":
    sys.exit(main())
