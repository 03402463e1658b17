"""Loads a kdscope Faster R-CNN checkpoint into torchvision's FasterRCNN and
writes what the C test compares: FPN features, the RPN's outputs per level,
its test-mode proposals, the RoI stage on given proposals (RoI Align
features, box-head output, class logits and deltas), the final detections,
the anchors' labels, and both losses on given samples (the RPN's anchors
and the RoI head's RoIs, as kdscope drew them: torch's randperm cannot be
reproduced).

usage: frcnn_parity.py WEIGHTS INPUTS OUT CONFIG
  CONFIG: JSON {"nclass": K, "rpn": {FasterRCNN rpn_* arguments and
  "sizes", "ratios"}, "roi": {"canonical_scale", "canonical_level",
  "sampling_ratio", "score_thresh", "nms_thresh", "detections_per_img",
  "fg_iou_thresh", "bg_iou_thresh"}}
  INPUTS: "images" N,3,H,W; per image i "gt.i.boxes" M,4 and "gt.i.labels"
  M (0-based classes), "props.i" P,4 (the RoI stage's given proposals),
  "rois.i" R,4 (the sampled training RoIs); "rpn_sel" (N*A_total: 1, 0, -1).
Exit 77 when torch/torchvision are missing."""
import json
import sys

try:
    import torch
    import torch.nn.functional as F
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.models.detection.faster_rcnn import (FasterRCNN, FastRCNNConvFCHead, FastRCNNPredictor,
                                                          RPNHead, TwoMLPHead)
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList
    from torchvision.models.detection.roi_heads import fastrcnn_loss
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
    from torchvision_parity import load_exact, read_st, write_st
except Exception as e:  # pragma: no cover
    print("torch/torchvision unavailable:", e)
    sys.exit(77)


def box_head(w, fpn):
    """TwoMLPHead or the ConvFC head, from the checkpoint's names."""
    if "roi_heads.box_head.fc6.weight" in w:
        rep = w["roi_heads.box_head.fc6.weight"].shape[0]
        return TwoMLPHead(fpn * 7 * 7, rep), rep
    convs = []
    while "roi_heads.box_head.%d.0.weight" % len(convs) in w:
        convs.append(w["roi_heads.box_head.%d.0.weight" % len(convs)].shape[0])
    fc = [k for k in w if k.startswith("roi_heads.box_head.") and k.endswith(".weight") and w[k].ndim == 2]
    rep = w[fc[0]].shape[0]
    gn = "roi_heads.box_head.0.1.weight" in w
    norm = (lambda ch: torch.nn.GroupNorm(32, ch)) if gn else None
    return FastRCNNConvFCHead((fpn, 7, 7), convs, [rep], norm_layer=norm), rep


def build(w, cfg):
    fpn = w["backbone.fpn.layer_blocks.0.0.weight"].shape[0]
    width = w["backbone.body.conv1.weight"].shape[0]
    assert width == 64, "torchvision's ResNet-18 is 64 wide"
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5,
                                   returned_layers=[1, 2, 3, 4], extra_blocks=LastLevelMaxPool())
    backbone.out_channels = fpn
    backbone.fpn = FeaturePyramidNetwork([64, 128, 256, 512], fpn, extra_blocks=LastLevelMaxPool())
    r, o = cfg["rpn"], cfg["roi"]
    sizes = tuple((s,) for s in r["sizes"])
    gen = AnchorGenerator(sizes, (tuple(r["ratios"]),) * len(sizes))
    depth = len([k for k in w if k.startswith("rpn.head.conv.") and k.endswith(".weight")])
    head, rep = box_head(w, fpn)
    pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, o["sampling_ratio"], canonical_scale=o["canonical_scale"],
                              canonical_level=o["canonical_level"])
    K = cfg["nclass"]
    model = FasterRCNN(backbone, rpn_anchor_generator=gen, rpn_head=RPNHead(fpn, len(r["ratios"]), conv_depth=depth),
                       box_roi_pool=pool, box_head=head, box_predictor=FastRCNNPredictor(rep, K + 1),
                       **{"rpn_" + k: v for k, v in r.items() if k not in ("sizes", "ratios")},
                       box_score_thresh=o["score_thresh"], box_nms_thresh=o["nms_thresh"],
                       box_detections_per_img=o["detections_per_img"], box_fg_iou_thresh=o["fg_iou_thresh"],
                       box_bg_iou_thresh=o["bg_iou_thresh"])
    load_exact(model, w)
    return model.eval()


def rpn_losses(model, images, feats, targets, sel, res):
    """The RPN's loss on the anchors kdscope sampled, and the labels."""
    rpn = model.rpn
    obj, deltas = rpn.head(feats)
    anchors = rpn.anchor_generator(images, feats)
    labels, matched = rpn.assign_targets_to_anchors(anchors, targets)
    res["rpn_labels"] = torch.cat(labels)
    from torchvision.models.detection.rpn import concat_box_prediction_layers
    obj, deltas = concat_box_prediction_layers(obj, deltas)
    reg = rpn.box_coder.encode(matched, anchors)
    At = anchors[0].shape[0]
    masks = sel.reshape(len(anchors), At)
    rpn.fg_bg_sampler = lambda _: ([(m == 1).to(torch.uint8) for m in masks], [(m == 0).to(torch.uint8) for m in masks])
    cls, box = rpn.compute_loss(obj, deltas, labels, reg)
    res["loss.rpn_cls"], res["loss.rpn_box"] = cls.reshape(1), box.reshape(1)


def roi_losses(model, feats, sizes, rois, targets, res):
    """fastrcnn_loss on the RoIs kdscope sampled: torchvision's matcher and
    box coder label them (no low-quality matches there, so matching a
    subset is matching them in the full list)."""
    rh = model.roi_heads
    gtb = [t["boxes"] for t in targets]
    gtl = [t["labels"] for t in targets]
    matched, labels = rh.assign_targets_to_proposals(rois, gtb, gtl)
    mgt = []
    for i, r in enumerate(rois):
        g = gtb[i] if gtb[i].numel() else torch.zeros((1, 4))
        mgt.append(g[matched[i]])
    reg = rh.box_coder.encode(mgt, rois)
    x = rh.box_predictor(rh.box_head(rh.box_roi_pool(feats, rois, sizes)))
    cls, box = fastrcnn_loss(x[0], x[1], labels, reg)
    res["loss.roi_cls"], res["loss.roi_box"] = cls.reshape(1), box.reshape(1)
    res["roi_labels"] = torch.cat(labels).float()


def main():
    weights, inputs, outp, cfgp = sys.argv[1:5]
    cfg = json.load(open(cfgp))
    w = read_st(weights)
    x = read_st(inputs)
    model = build(w, cfg)
    imgs = x["images"]
    N, _, H, W = imgs.shape
    sizes = [(H, W)] * N
    images = ImageList(imgs, sizes)
    res = {}
    with torch.no_grad():
        feats = model.backbone(imgs)
        names = ["P%d" % (2 + i) for i in range(len(feats))]
        fl = list(feats.values())
        for nm, f in zip(names, fl):
            res["feat." + nm] = f
        obj, deltas = model.rpn.head(fl)
        for nm, o, d in zip(names, obj, deltas):
            res["obj." + nm], res["rpn_box." + nm] = o, d
        # test-mode proposals with their scores (filter_proposals, as forward)
        rpn = model.rpn
        anchors = rpn.anchor_generator(images, fl)
        counts = [o[0].numel() for o in obj]
        from torchvision.models.detection.rpn import concat_box_prediction_layers
        o2, d2 = concat_box_prediction_layers(obj, deltas)
        props = rpn.box_coder.decode(d2, anchors).view(N, -1, 4)
        boxes, scores = rpn.filter_proposals(props, o2, sizes, counts)
        for i in range(N):
            res["props.%d" % i], res["props_scores.%d" % i] = boxes[i], scores[i]
        # the RoI stage on kdscope's proposals
        given = [x["props.%d" % i] for i in range(N)]
        rh = model.roi_heads
        pooled = rh.box_roi_pool(feats, given, sizes)
        res["roi_feat"] = pooled
        hidden = rh.box_head(pooled)
        res["box_head"] = hidden
        cls, box = rh.box_predictor(hidden)
        res["roi_cls"], res["roi_box"] = cls, box
        # final detections from torchvision's own proposals
        dets, _ = rh(feats, boxes, sizes)
        for i, d in enumerate(dets):
            res["det.%d.boxes" % i] = d["boxes"]
            res["det.%d.scores" % i] = d["scores"]
            res["det.%d.labels" % i] = d["labels"].float() - 1
        targets = [{"boxes": x["gt.%d.boxes" % i], "labels": x["gt.%d.labels" % i].long() + 1} for i in range(N)]
        rpn_losses(model, images, fl, targets, x["rpn_sel"], res)
        roi_losses(model, feats, sizes, [x["rois.%d" % i] for i in range(N)], targets, res)
    write_st(outp, res)


if __name__ == "__main__":
    main()
