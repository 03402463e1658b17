"""torchvision's RoIHeads as the reference for kdscope's RoI head
(tests/model/test_roi_head.c).

usage: roi_head_ref.py IN WEIGHTS OUT [IN WEIGHTS OUT ...]
IN (safetensors, from the C test): meta = [K, representation, conv4,
conv_channels, gn, nlev, img_h, img_w, canonical_scale, canonical_level,
n, seed]; feat0.. (N,C,H,W per level, strides 4, 8, ...); rois (R,5: the
RoIs to run the head on, grouped by image); sample_rois (S,5) with
sample_labels and sample_matched (kdscope's sample); gt_boxes, gt_labels
(0..K-1) and gt_count (per image).
WEIGHTS: a randomly initialised RoIHeads' state_dict ("roi_heads." names),
written here for the C side to load. OUT: the head's outputs on rois,
postprocess_detections of those outputs, torchvision's labels and
regression targets for the sampled RoIs, and fastrcnn_loss on them with
its gradients (features and parameters). Exit 77 without torch/torchvision."""
import os
import sys
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_parity import read_st, write_st  # noqa: E402  (exits 77 without torch)

import torch  # noqa: E402
from collections import OrderedDict  # noqa: E402
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead  # noqa: E402
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss  # noqa: E402
from torchvision.ops import MultiScaleRoIAlign  # noqa: E402


def build(meta, channels):
    K, rep, conv4, cc, gn, nlev = (int(v) for v in meta[:6])
    s0, k0 = float(meta[8]), int(meta[9])
    torch.manual_seed(int(meta[11]))
    pool = MultiScaleRoIAlign([str(l) for l in range(nlev)], 7, 2, canonical_scale=s0, canonical_level=k0)
    if conv4:
        norm = partial(torch.nn.GroupNorm, 32) if gn else None
        head = FastRCNNConvFCHead((channels, 7, 7), [cc] * 4, [rep], norm_layer=norm)
    else:
        head = TwoMLPHead(channels * 49, rep)
    pred = FastRCNNPredictor(rep, K + 1)
    heads = RoIHeads(pool, head, pred, 0.5, 0.5, 512, 0.25, None, 0.05, 0.5, 100)
    with torch.no_grad():  # zero-initialised biases and GN affine would hide mistakes
        for name, p in heads.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
        pred.cls_score.weight.mul_(8.0)  # peaked scores, so thresholds and NMS matter
    return heads


def per_image(rois, n):
    return [rois[rois[:, 0] == i, 1:] for i in range(n)]


def run(path_in, path_w, path_out):
    a = read_st(path_in)
    meta = a["meta"].tolist()
    nlev, img_h, img_w, n = int(meta[5]), int(meta[6]), int(meta[7]), int(meta[10])
    feats = OrderedDict((str(l), a["feat%d" % l].requires_grad_(True)) for l in range(nlev))
    heads = build(meta, feats["0"].shape[1])
    write_st(path_w, {"roi_heads." + k: v for k, v in heads.state_dict().items()})
    shapes = [(img_h, img_w)] * n
    out = {}

    def head(boxes):
        x = heads.box_head(heads.box_roi_pool(feats, boxes, shapes))
        return heads.box_predictor(x)

    # the head on given RoIs, and torchvision's decode of them
    rois = a["rois"]
    with torch.no_grad():
        cls, box = head(per_image(rois, n))
        boxes, scores, labels = heads.postprocess_detections(cls, box, per_image(rois, n), shapes)
    out["cls"], out["box"] = cls, box
    for i in range(n):  # x1, y1, x2, y2, score, label (1..K) per detection
        out["ndet%d" % i] = torch.tensor([float(len(scores[i]))])
        if len(scores[i]):
            out["det%d" % i] = torch.cat([boxes[i], scores[i][:, None], labels[i][:, None].float()], 1).reshape(-1)
    # torchvision's labels and targets for kdscope's sample, then the loss
    sr = a["sample_rois"]
    counts = [int(v) for v in a["gt_count"].tolist()]
    starts = [sum(counts[:i]) for i in range(n)]
    gt_boxes = [a["gt_boxes"][s:s + c] for s, c in zip(starts, counts)]
    gt_labels = [a["gt_labels"][s:s + c].long() + 1 for s, c in zip(starts, counts)]
    props = per_image(sr, n)
    matched, labels = heads.assign_targets_to_proposals(props, gt_boxes, gt_labels)
    matched_boxes = [g[m] if g.numel() else torch.zeros(len(m), 4) for g, m in zip(gt_boxes, matched)]
    targets = heads.box_coder.encode(matched_boxes, props)
    out["labels"] = torch.cat(labels).float()
    out["targets"] = torch.cat(targets).reshape(-1)
    cls, box = head(props)
    lc, lb = fastrcnn_loss(cls, box, labels, targets)
    (lc + lb).backward()
    out["loss_cls"], out["loss_box"] = lc.reshape(1), lb.reshape(1)
    for l in range(nlev):
        out["grad.feat%d" % l] = feats[str(l)].grad
    for k, p in heads.named_parameters():
        out["grad.roi_heads." + k] = p.grad
    write_st(path_out, {k: v.detach().float() for k, v in out.items()})


def main():
    jobs = sys.argv[1:]
    if not jobs or len(jobs) % 3:
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    for i in range(0, len(jobs), 3):
        run(*jobs[i:i + 3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
