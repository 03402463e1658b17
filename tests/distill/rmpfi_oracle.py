#!/usr/bin/python3
"""Parity of `kdscope loss --method rm|pfi` with PyTorch restatements of
mmrazor's RankMimicLoss and PredictionGuidedFeatureImitation (third-party
code; KD-METHODS-2 §C), written from those formulas, not from kdscope's
code. RM's assignment comes from torchvision's Matcher (the matched GT per
anchor, as torchvision's RetinaNet trains), as the logit KD oracle's.
Loss, parts and d(loss)/d(student tensors) agree to 1e-4 relative.

Usage: rmpfi_oracle.py KDSCOPE. Exits 77 when torch or torchvision is absent.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_oracle_b as lo  # noqa: E402  (exits 77 without torch)

if not lo.HAVE_TV:
    print("skip: torchvision is absent")
    sys.exit(77)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torchvision.models.detection import _utils as det_utils  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402


def matched(n, hw, img, gt_boxes):
    """Matched GT index within its image per anchor (N, A_total), negative otherwise."""
    sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in (32, 64, 128)[:len(hw)])
    gen = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    anchors = gen(ImageList(torch.zeros(1, 3, img[0], img[1]), [tuple(img)]), [torch.zeros(1, 1, h, w) for h, w in hw])[0]
    matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    out = []
    for i in range(n):
        b = torch.tensor(gt_boxes[gt_boxes[:, 0] == i, 1:]).reshape(-1, 4)
        out.append(matcher(box_iou(b, anchors)) if len(b) else torch.full((len(anchors),), -1, dtype=torch.long))
    return out


def to_images(mlvl, k):
    """mmrazor's levels_to_images: per image, (sum_l H*W*A, K), level-major."""
    n = mlvl[0].shape[0]
    return [torch.cat([x.permute(0, 2, 3, 1).reshape(n, -1, k)[i] for x in mlvl], 0) for i in range(n)]


def rm_parts(t, s, gt_inds, labels, k, p):
    """mmrazor RankMimicLoss.loss_single per image (gt_inds 1-based there), mean over images with a GT."""
    st, tt = to_images(list(s.values()), k), to_images(list(t.values()), k)
    per_image = []
    for i, m in enumerate(gt_inds):
        num_gts = len(labels[i])
        if num_gts == 0:
            continue  # mmrazor divides 0 by 0 here; kdscope leaves the image out
        loss = 0
        for g in range(num_gts):
            sel = m == g
            ps = F.softmax(st[i][sel, labels[i][g]], dim=0)
            pt = F.softmax(tt[i][sel, labels[i][g]], dim=0)
            loss = loss + (pt * pt.log() - pt * ps.log()).sum()
        per_image.append(loss / num_gts)
    return {"rm.kl": p.get("rm.weight", 4.0) * sum(per_image) / len(per_image)}


def pfi_parts(t, s, ft, fs, p):
    w, parts = p.get("pfi.weight", 1.5), {}
    for lv in t:
        zs = s[lv]
        if p.get("pfi.detach_pred"):
            zs = zs.detach()
        pd = F.mse_loss(zs, t[lv], reduction="none").mean(dim=1)
        fd = F.mse_loss(fs[lv], ft[lv], reduction="none").mean(dim=1)
        parts["pfi." + lv] = w * (pd * fd).mean() / len(t)
    return parts


def case(kd, tmp, rng, method, sets, params, n=2, k=3, a_per=9, img=(64, 64), ch=8, empty=()):
    hw = [(img[0] // 8, img[1] // 8), (img[0] // 16, img[1] // 16), (img[0] // 32, img[1] // 32)]
    arrays = {}
    for lv, (h, w) in zip(lo.LEVELS, hw):
        arrays["teacher.cls." + lv] = (rng.standard_normal((n, a_per * k, h, w)) * 3).astype(np.float32)
        arrays["student.cls." + lv] = (rng.standard_normal((n, a_per * k, h, w)) * 3).astype(np.float32)
        if method == "pfi":
            arrays["teacher." + lv] = rng.standard_normal((n, ch, h, w)).astype(np.float32)
            arrays["student." + lv] = (rng.standard_normal((n, ch, h, w)) + 0.3).astype(np.float32)
    boxes, labels = lo.random_gt(rng, n, img, k)
    keep = ~np.isin(boxes[:, 0], np.array(empty, np.float32))
    boxes, labels = boxes[keep], labels[keep]
    if method == "rm":
        arrays["gt.boxes"], arrays["gt.labels"] = boxes, labels
        arrays["image.size"] = np.array(img, np.float32)

    def oracle():
        t = {lv: lo.t64(arrays["teacher.cls." + lv]) for lv in lo.LEVELS}
        s = {lv: lo.t64(arrays["student.cls." + lv], True) for lv in lo.LEVELS}
        grads = {}
        if method == "rm":
            m = matched(n, hw, img, boxes.astype(np.float64))
            lab = [labels[boxes[:, 0] == i].astype(np.int64) for i in range(n)]
            parts = rm_parts(t, s, m, lab, k, params)
        else:
            ft = {lv: lo.t64(arrays["teacher." + lv]) for lv in lo.LEVELS}
            fs = {lv: lo.t64(arrays["student." + lv], True) for lv in lo.LEVELS}
            parts = pfi_parts(t, s, ft, fs, params)
        sum(parts.values()).backward()
        grads = {"grad.student.cls." + lv: x.grad.numpy() if x.grad is not None else np.zeros(x.shape)
                 for lv, x in s.items()}
        if method == "pfi":
            grads.update({"grad.student." + lv: x.grad.numpy() for lv, x in fs.items()})
        return parts, grads

    tag = method + "".join("_" + kv.replace("=", "") for kv in sets) + ("_empty" if empty else "")
    return lo.run_case(kd, tmp, tag, method, arrays, sets, oracle)


def main():
    if len(sys.argv) != 2:
        print("usage: rmpfi_oracle.py KDSCOPE")
        return 2
    kd = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(20240612)
    fails = 0
    with tempfile.TemporaryDirectory(prefix="kd-rmpfi-parity-") as tmp:
        fails += case(kd, tmp, rng, "rm", [], {})
        fails += case(kd, tmp, rng, "rm", ["rm.weight=1.5"], {"rm.weight": 1.5}, n=3, k=4, img=(96, 64))
        fails += case(kd, tmp, rng, "rm", [], {}, n=3, empty=(1,))  # an image without GT
        fails += case(kd, tmp, rng, "pfi", [], {})
        fails += case(kd, tmp, rng, "pfi", ["pfi.weight=3", "pfi.detach_pred=true"],
                      {"pfi.weight": 3.0, "pfi.detach_pred": 1}, n=3, k=2, ch=4)
    print("%d case(s) failed" % fails if fails else "all cases agree with torch")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
