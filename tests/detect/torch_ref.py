#!/usr/bin/python3
"""Reference values from PyTorch/torchvision for the detect tests.

Usage: torch_ref.py MODE IN OUT [MODE IN OUT ...] (several jobs, one
torch import). IN and OUT hold named arrays, one per line:
"name count v0 v1 ...". Exits 77 (meson's skip) when torch or torchvision
is missing. The C test writes its inputs and its own results, this script
writes torch's, and the C test compares.
"""
import sys


def read_arrays(path):
    arrs = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            n = int(parts[1])
            arrs[parts[0]] = [float(v) for v in parts[2:2 + n]]
    return arrs


def write_arrays(path, arrs):
    with open(path, "w") as f:
        for name, vals in arrs.items():
            vals = [float(v) for v in vals]
            f.write("%s %d %s\n" % (name, len(vals), " ".join(repr(v) for v in vals)))


def level_flat(torch, x, n, a, per, h, w):
    """(N, A*per, H, W) -> (N, H*W*A, per): torchvision's head layout."""
    return x.view(n, a, per, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, per)


def levels(torch, arrs, prefix, n, a, per, hw, grad):
    xs = []
    for l in range(len(hw) // 2):
        h, w = int(hw[2 * l]), int(hw[2 * l + 1])
        x = torch.tensor(arrs["%s%d" % (prefix, l)], dtype=torch.float64).view(n, a * per, h, w)
        x.requires_grad_(grad)
        xs.append(x)
    flat = torch.cat([level_flat(torch, x, n, a, per, int(hw[2 * l]), int(hw[2 * l + 1]))
                      for l, x in enumerate(xs)], dim=1)
    return xs, flat


def mode_anchors(torch, tv, arrs):
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList
    hw = [int(v) for v in arrs["hw"]]
    img_h, img_w = [int(v) for v in arrs["img"]]
    base = [int(v) for v in arrs["sizes"]]
    sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in base)
    gen = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    images = ImageList(torch.zeros(1, 3, img_h, img_w), [(img_h, img_w)])
    feats = [torch.zeros(1, 1, hw[2 * l], hw[2 * l + 1]) for l in range(len(hw) // 2)]
    anchors = gen(images, feats)[0]
    return {"anchors": anchors.flatten().tolist()}


def mode_matcher(torch, tv, arrs):
    from torchvision.models.detection import _utils as det_utils
    from torchvision.ops import box_iou
    anchors = torch.tensor(arrs["anchors"], dtype=torch.float32).view(-1, 4)
    gt = torch.tensor(arrs["gt"], dtype=torch.float32).view(-1, 4)
    matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    match = matcher(box_iou(gt, anchors))
    return {"match": match.tolist()}


def mode_focal(torch, tv, arrs):
    from torchvision.ops import sigmoid_focal_loss
    n, a, k, nlev = [int(v) for v in arrs["meta"][:4]]
    alpha, gamma, norm = arrs["meta"][4:7]
    xs, flat = levels(torch, arrs, "cls", n, a, k, arrs["hw"], True)
    tc = torch.tensor(arrs["target"], dtype=torch.int64).view(n, -1)
    valid = tc != -2
    onehot = torch.zeros_like(flat)
    pos = tc >= 0
    onehot[pos, tc[pos]] = 1.0
    loss = sigmoid_focal_loss(flat[valid], onehot[valid], alpha=alpha, gamma=gamma, reduction="sum") / norm
    loss.backward()
    out = {"loss": [loss.item()]}
    for l, x in enumerate(xs):
        out["grad%d" % l] = x.grad.flatten().tolist()
    return out


def mode_smoothl1(torch, tv, arrs):
    import torch.nn.functional as F
    n, a, nlev = [int(v) for v in arrs["meta"][:3]]
    beta, norm = arrs["meta"][3:5]
    xs, flat = levels(torch, arrs, "box", n, a, 4, arrs["hw"], True)
    td = torch.tensor(arrs["tdelta"], dtype=torch.float64).view(n, -1, 4)
    pos = torch.tensor(arrs["target"], dtype=torch.int64).view(n, -1) >= 0
    if beta == 0:
        loss = F.l1_loss(flat[pos], td[pos], reduction="sum") / norm
    else:
        loss = F.smooth_l1_loss(flat[pos], td[pos], beta=beta, reduction="sum") / norm
    loss.backward()
    out = {"loss": [loss.item()]}
    for l, x in enumerate(xs):
        out["grad%d" % l] = x.grad.flatten().tolist()
    return out


def mode_giou(torch, tv, arrs):
    from torchvision.models.detection import _utils as det_utils
    from torchvision.ops import generalized_box_iou_loss
    n, a, nlev = [int(v) for v in arrs["meta"][:3]]
    norm = arrs["meta"][3]
    xs, flat = levels(torch, arrs, "box", n, a, 4, arrs["hw"], True)
    anchors = torch.tensor(arrs["anchors"], dtype=torch.float64).view(-1, 4)
    tb = torch.tensor(arrs["tboxes"], dtype=torch.float64).view(n, -1, 4)
    pos = torch.tensor(arrs["target"], dtype=torch.int64).view(n, -1) >= 0
    coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    total = 0.0
    for i in range(n):
        p = pos[i]
        pred = coder.decode_single(flat[i][p], anchors[p])
        total = total + generalized_box_iou_loss(pred, tb[i][p], reduction="sum")
    loss = total / norm
    loss.backward()
    out = {"loss": [loss.item()]}
    for l, x in enumerate(xs):
        out["grad%d" % l] = x.grad.flatten().tolist()
    return out


def mode_nms(torch, tv, arrs):
    from torchvision.ops import batched_nms
    boxes = torch.tensor(arrs["boxes"], dtype=torch.float32).view(-1, 4)
    scores = torch.tensor(arrs["scores"], dtype=torch.float32)
    labels = torch.tensor(arrs["labels"], dtype=torch.int64)
    keep = batched_nms(boxes, scores, labels, arrs["thr"][0])
    return {"keep": keep.tolist()}


def mode_post(torch, tv, arrs):
    """torchvision RetinaNet.postprocess_detections, restated on level tensors."""
    from torchvision.models.detection import _utils as det_utils
    from torchvision.ops import batched_nms, clip_boxes_to_image
    n, a, k, nlev = [int(v) for v in arrs["meta"][:4]]
    score_thr, topk, nms_thr, max_det, img_w, img_h = arrs["meta"][4:10]
    hw = [int(v) for v in arrs["hw"]]
    coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    anchors = torch.tensor(arrs["anchors"], dtype=torch.float32).view(-1, 4)
    cls, box, offs = [], [], [0]
    for l in range(nlev):
        h, w = hw[2 * l], hw[2 * l + 1]
        c = torch.tensor(arrs["cls%d" % l], dtype=torch.float32).view(n, a * k, h, w)
        b = torch.tensor(arrs["box%d" % l], dtype=torch.float32).view(n, a * 4, h, w)
        cls.append(level_flat(torch, c, n, a, k, h, w))
        box.append(level_flat(torch, b, n, a, 4, h, w))
        offs.append(offs[-1] + h * w * a)
    out = {}
    for i in range(n):
        all_boxes, all_scores, all_labels = [], [], []
        for l in range(nlev):
            logits = cls[l][i]
            scores = torch.sigmoid(logits).flatten()
            keep = scores > score_thr
            scores = scores[keep]
            idxs = torch.where(keep)[0]
            num = min(int(topk), idxs.numel())
            scores, sel = scores.topk(num)
            idxs = idxs[sel]
            anchor_idxs = torch.div(idxs, k, rounding_mode="floor")
            labels = idxs % k
            boxes = coder.decode_single(box[l][i][anchor_idxs], anchors[offs[l]:offs[l + 1]][anchor_idxs])
            boxes = clip_boxes_to_image(boxes, (int(img_h), int(img_w)))
            all_boxes.append(boxes)
            all_scores.append(scores)
            all_labels.append(labels)
        boxes = torch.cat(all_boxes)
        scores = torch.cat(all_scores)
        labels = torch.cat(all_labels)
        keep = batched_nms(boxes, scores, labels, nms_thr)[: int(max_det)]
        det = torch.cat([boxes[keep], scores[keep, None], labels[keep, None].float()], dim=1)
        out["det%d" % i] = det.flatten().tolist()
    return out


def mode_roialign(torch, tv, arrs):
    from torchvision.ops import roi_align
    n, c, h, w, oh, ow, sr, aligned = [int(v) for v in arrs["meta"][:8]]
    x = torch.tensor(arrs["feat"], dtype=torch.float32).view(n, c, h, w).requires_grad_(True)
    rois = torch.tensor(arrs["rois"], dtype=torch.float32).view(-1, 5)
    y = roi_align(x, rois, (oh, ow), spatial_scale=arrs["meta"][8], sampling_ratio=sr, aligned=bool(aligned))
    y.backward(torch.tensor(arrs["gout"], dtype=torch.float32).view_as(y))
    return {"out": y.flatten().tolist(), "grad": x.grad.flatten().tolist()}


def mode_msroi(torch, tv, arrs):
    """MultiScaleRoIAlign on levels '0'.. of the given sizes; the RoIs come
    grouped by image, as torchvision concatenates them."""
    from collections import OrderedDict
    from torchvision.ops import MultiScaleRoIAlign
    n, c, nlev, img_h, img_w, size, sr, k0 = [int(v) for v in arrs["meta"][:8]]
    hw = [int(v) for v in arrs["hw"]]
    feats = OrderedDict()
    for l in range(nlev):
        x = torch.tensor(arrs["feat%d" % l], dtype=torch.float32).view(n, c, hw[2 * l], hw[2 * l + 1])
        feats[str(l)] = x.requires_grad_(True)
    rois = torch.tensor(arrs["rois"], dtype=torch.float32).view(-1, 5)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(n)]
    pool = MultiScaleRoIAlign(list(feats), size, sr, canonical_scale=arrs["meta"][8], canonical_level=k0)
    y = pool(feats, boxes, [(img_h, img_w)] * n)
    y.backward(torch.tensor(arrs["gout"], dtype=torch.float32).view_as(y))
    out = {"out": y.flatten().tolist(), "level": pool.map_levels(boxes).tolist()}
    for l in range(nlev):
        out["grad%d" % l] = feats[str(l)].grad.flatten().tolist()
    return out


def serve(jobs, doc, modes, *lib):
    """Runs each (MODE, IN, OUT) job: OUT = modes[MODE](*lib, arrays of IN)."""
    for i in range(0, len(jobs), 3):
        mode, path_in, path_out = jobs[i:i + 3]
        write_arrays(path_out, modes[mode](*lib, read_arrays(path_in)))
    return 0


def torch_main(argv, doc, name, modes):
    """The main of an oracle that needs torch only: modes[MODE](torch, F, arrays)."""
    if not argv or len(argv) % 3:
        print(doc)
        return 2
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print("%s: skipped, %s" % (name, e))
        return 77
    torch.set_num_threads(1)
    return serve(argv, doc, modes, torch, F)


def main():
    jobs = sys.argv[1:]
    if not jobs or len(jobs) % 3:
        print(__doc__)
        return 2
    try:
        import torch
        import torchvision
    except ImportError as e:
        print("torch_ref: skipped, %s" % e)
        return 77
    modes = {"anchors": mode_anchors, "matcher": mode_matcher, "focal": mode_focal,
             "smoothl1": mode_smoothl1, "giou": mode_giou, "nms": mode_nms, "post": mode_post,
             "roialign": mode_roialign, "msroi": mode_msroi}
    torch.set_num_threads(1)
    return serve(jobs, __doc__, modes, torch, torchvision)


if __name__ == "__main__":
    sys.exit(main())
