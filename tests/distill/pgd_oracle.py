#!/usr/bin/python3
"""PyTorch restatement of PGD's official code (ChenhongyiYang/PGD at 81c54d5),
written from reading it; none copied:

  pgw_assign    PGWAnchorModule.assign (mmdet/models/dense_heads/pgd_heads/
                utils/pgw_anchor_based.py) with mle_2d_gaussian_2, the jitter
                torch.rand given instead of drawn;
  back_weight   get_back_weight (utils/background_weight.py);
  cls_loss      PGDClsLoss.forward (mmdet/distillation/losses/pgd_cls.py),
                with official=True its (N,1,1,H,W) x (N,C,H,W) broadcast as
                the code has it, else each image's own mask;
  reg_loss      PGDRegLoss.forward (pgd_reg.py);
  gfl_masks     the three masks of a batch of GFL teacher outputs: per
                image, the teacher's boxes decoded from its side
                distributions (softmax expectation x stride from the point
                (x, y) * stride), the anchors of every level together (as
                ATSSIoUHeadDistill._get_target_single), then split per level.

Imported by pgd_loss_oracle.py (parity of `kdscope loss --method pgd`).
"""

EPS = 1e-10


def bbox_overlaps(torch, a, b):
    """mmdet's BboxOverlaps2D, mode iou: (A,4) x (B,4) -> (A,B), union at least 1e-6."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)
    return inter / union


def mle_2d_gaussian(torch, sampled, rand):
    """mle_2d_gaussian_2 with the draws given: sampled [G, M, 2]."""
    data = sampled + (rand - 0.5) * 0.1
    miu = data.mean(dim=1, keepdim=True)
    diff = (data - miu)[:, :, :, None]
    sigma = torch.matmul(diff, diff.transpose(2, 3)).mean(dim=1)
    deter = sigma[:, 0, 0] * sigma[:, 1, 1] - sigma[:, 0, 1] * sigma[:, 1, 0]
    inverse = torch.zeros_like(sigma)
    inverse[:, 0, 0] = sigma[:, 1, 1]
    inverse[:, 0, 1] = -1.0 * sigma[:, 0, 1]
    inverse[:, 1, 0] = -1.0 * sigma[:, 1, 0]
    inverse[:, 1, 1] = sigma[:, 0, 0]
    inverse /= deter[:, None, None] + 1e-10
    return miu, inverse


def pgw_assign(torch, anchors, cls_scores, bbox_preds, gt_bboxes, gt_labels, alpha, topk, rand):
    num_gt, num_bboxes = gt_bboxes.size(0), anchors.size(0)
    if num_gt == 0 or num_bboxes == 0:
        return torch.zeros((num_bboxes,), dtype=cls_scores.dtype)
    overlaps = bbox_overlaps(torch, bbox_preds, gt_bboxes)
    cls_cost = torch.sigmoid(cls_scores[:, gt_labels])
    overlaps = cls_cost ** (1 - alpha) * overlaps ** alpha
    bcx = (anchors[:, 0] + anchors[:, 2]) / 2.0
    bcy = (anchors[:, 1] + anchors[:, 3]) / 2.0
    _, idx = overlaps.topk(topk, dim=0, largest=True)  # [topk, G]
    ccx = bcx[idx.reshape(-1)].reshape(idx.shape)
    ccy = bcy[idx.reshape(-1)].reshape(idx.shape)
    cpos = torch.stack((ccx.t(), ccy.t()), dim=-1)  # [G, topk, 2]
    valid = (((bcx[:, None] - gt_bboxes[None, :, 0]) > EPS) & ((bcy[:, None] - gt_bboxes[None, :, 1]) > EPS) &
             ((gt_bboxes[None, :, 2] - bcx[:, None]) > EPS) & ((gt_bboxes[None, :, 3] - bcy[:, None]) > EPS))
    valid = valid.to(cls_scores.dtype)
    w = torch.zeros((num_bboxes, num_gt), dtype=cls_scores.dtype)
    if topk != 1:
        miu, inverse = mle_2d_gaussian(torch, cpos, rand)
        d = (cpos - miu)[:, :, None, :]
        cw = torch.exp(-0.5 * torch.matmul(torch.matmul(d, inverse[:, None, :, :]), d.transpose(2, 3)))
        cw = cw.reshape(num_gt, topk).t()
        for i in range(num_gt):
            w[idx[:, i], i] = cw[:, i]
    else:
        for i in range(num_gt):
            w[idx[:, i], i] = 1.0
    w = w * valid
    return torch.max(w, dim=1)[0]


def back_weight(torch, anchors, gt_bboxes):
    cx = ((anchors[:, 0] + anchors[:, 2]) * 0.5)[:, None]
    cy = ((anchors[:, 1] + anchors[:, 3]) * 0.5)[:, None]
    g = gt_bboxes
    valid = ((cx - g[None, :, 0]) > EPS) & ((cy - g[None, :, 1]) > EPS) & ((g[None, :, 2] - cx) > EPS) & \
            ((g[None, :, 3] - cy) > EPS)
    return (valid.to(anchors.dtype).sum(dim=1) == 0).to(anchors.dtype)


def attention(torch, F, preds, temp):
    N, C, H, W = preds.shape
    value = torch.abs(preds)
    fea_map = value.mean(dim=1, keepdim=True)
    s_att = (H * W * F.softmax((fea_map / temp).view(N, -1), dim=1)).view(N, H, W)
    c_att = C * F.softmax(value / temp, dim=1)
    return s_att, c_att


def cls_loss(torch, F, S, T, mask_fg, mask_bg, temp, official):
    """PGDClsLoss's (fg_loss, bg_loss, mask_loss) before their weights; masks (N,1,H,W)."""
    mask_bg = mask_bg / (mask_bg != 0).to(S.dtype).sum(dim=(2, 3), keepdim=True).clamp(min=EPS)
    mask_fg = mask_fg / (mask_fg != 0).to(S.dtype).sum(dim=(2, 3), keepdim=True).clamp(min=EPS)
    st, ct = attention(torch, F, T, temp)
    ss, cs = attention(torch, F, S, temp)
    mf, mb = (mask_fg.unsqueeze(1), mask_bg.unsqueeze(1)) if official else (mask_fg, mask_bg)
    st1 = st.unsqueeze(1)
    ft = T * torch.sqrt(st1) * torch.sqrt(ct)
    fs = S * torch.sqrt(st1) * torch.sqrt(ct)
    fg = ((fs * torch.sqrt(mf) - ft * torch.sqrt(mf)) ** 2).sum() / len(mf)
    bg = ((fs * torch.sqrt(mb) - ft * torch.sqrt(mb)) ** 2).sum() / len(mb)
    ml = torch.sum(torch.abs(cs - ct)) / (cs.size(0) * cs.size(-2) * cs.size(-1)) + \
        torch.sum(torch.abs(ss - st)) / st.size(0)
    return fg, bg, ml


def reg_loss(torch, F, S, T, mask_fg, temp):
    """PGDRegLoss's (fea_loss, mask_loss) before gamma and delta."""
    N, C, H, W = S.shape
    s = S.permute(0, 2, 3, 1).reshape(-1, C)
    t = T.permute(0, 2, 3, 1).reshape(-1, C)
    tm = mask_fg.reshape(-1)
    pos = tm != 0
    s, t, w = s[pos], t[pos], tm[pos]
    if s.numel() == 0:
        return S.sum() * 0.0, S.sum() * 0.0
    cs = C * F.softmax(torch.abs(s) / temp, dim=1)
    ct = C * F.softmax(torch.abs(t) / temp, dim=1)
    fl = F.mse_loss(s, t, reduction="none") * ct
    fl = (fl.mean(dim=1) * w).mean()
    ml = torch.sum(torch.abs(cs - ct)) / cs.size(0)
    return fl, ml


def gfl_anchors(torch, hw, mult=2.0):
    """The GFL head's anchors: a square of mult x stride on (x, y) * stride, level by level."""
    out = []
    for l, (h, w) in enumerate(hw):
        s = 8 << l
        half = mult * s / 2.0
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
        cx, cy = xs.reshape(-1) * s, ys.reshape(-1) * s
        out.append(torch.stack((cx - half, cy - half, cx + half, cy + half), dim=1))
    return torch.cat(out)


def gfl_masks(torch, F, tcls, tdist, boxes, labels, n, xi_cls, xi_reg, topk, jitter):
    """Per level (cls, reg, bg) masks (N,1,H,W). tcls/tdist: per level tensors; boxes (M,5) rows
    (image, x1, y1, x2, y2) sorted by image; jitter (2, M, topk, 2)."""
    hw = [tuple(t.shape[2:]) for t in tcls]
    an = gfl_anchors(torch, hw)
    sizes = [h * w for h, w in hw]
    cls_m, reg_m, bg_m = [], [], []
    row = 0
    for i in range(n):
        sc, bx = [], []
        for l, (t, d) in enumerate(zip(tcls, tdist)):
            K, B = t.shape[1], d.shape[1] // 4
            s = 8 << l
            sc.append(t[i].reshape(K, -1).t())
            p = F.softmax(d[i].reshape(4, B, -1), dim=1)
            e = (p * torch.arange(B, dtype=torch.float64)[None, :, None]).sum(dim=1).t() * s  # (HW, 4)
            a = an[sum(sizes[:l]):sum(sizes[:l + 1])]
            px, py = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
            bx.append(torch.stack((px - e[:, 0], py - e[:, 1], px + e[:, 2], py + e[:, 3]), dim=1))
        sc, bx = torch.cat(sc), torch.cat(bx)
        sel = boxes[:, 0] == i
        gt = torch.tensor(boxes[sel, 1:], dtype=torch.float64)
        gl = torch.tensor(labels[sel]).long()
        g = gt.shape[0]
        r0 = torch.tensor(jitter[0, row:row + g], dtype=torch.float64)
        r1 = torch.tensor(jitter[1, row:row + g], dtype=torch.float64)
        row += g
        cls_m.append(pgw_assign(torch, an, sc, bx, gt, gl, xi_cls, topk, r0))
        reg_m.append(pgw_assign(torch, an, sc, bx, gt, gl, xi_reg, topk, r1))
        bg_m.append(back_weight(torch, an, gt))
    out = []
    for l, (h, w) in enumerate(hw):
        lo, hi = sum(sizes[:l]), sum(sizes[:l + 1])
        out.append(tuple(torch.stack([m[lo:hi] for m in ms]).reshape(n, 1, h, w) for ms in (cls_m, reg_m, bg_m)))
    return out
