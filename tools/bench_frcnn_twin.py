#!/usr/bin/python3
"""torchvision's FasterRCNN configured as kdscope's two-stage preset, timed on
the CPU: the reference for `kdscope bench steps` (docs/PERFORMANCE.md).

Reads the preset (assets/configs/teacher-frcnn.json by default) for the
network and the RPN/RoI settings: torchvision ResNet layout of BasicBlocks at
the preset's depth and width, FPN from C2 with the max-pool P6
(LastLevelMaxPool), the RPN's anchors, top-n counts and sampler, the RoI
head's TwoMLPHead, sampler and level mapping (MultiScaleRoIAlign's
canonical scale and level). Images 128x128 (no resize), 1-6 random boxes of
5-80 px per image, 10 classes. Prints JSON: the forward (eval, no_grad) and
the training step (AdamW) in ms per batch, and the peak RSS.

Usage: /usr/bin/python3 tools/bench_frcnn_twin.py [--config FILE] [--threads 2]
       [--batch 16] [--forward-batch 8] [--steps 10] [--warmup 3]
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.resnet import BasicBlock
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

IMG = 128
CLASSES = 10


class ResNetBB(nn.Module):
    """torchvision's ResNet layout with BasicBlocks at any base width."""

    def __init__(self, layers, w):
        super().__init__()
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._stage(w, layers[0], 1)
        self.layer2 = self._stage(2 * w, layers[1], 2)
        self.layer3 = self._stage(4 * w, layers[2], 2)
        self.layer4 = self._stage(8 * w, layers[3], 2)

    def _stage(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        out = [BasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        out += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*out)


def build(cfg):
    m = cfg["model"]
    depth, w, fpn = m.get("depth", 18), m.get("width", 32), m.get("fpn_channels", 64)
    layers = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth]
    body = ResNetBB(layers, w)
    backbone = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                               [w, 2 * w, 4 * w, 8 * w], fpn, extra_blocks=LastLevelMaxPool())
    rpn, roi = cfg.get("rpn", {}), cfg.get("roi", {})
    sizes = tuple((int(s),) for s in rpn.get("anchor_sizes", "32,64,128,256,512").split(","))
    ratios = tuple(float(r) for r in rpn.get("aspect_ratios", "0.5,1,2").split(","))
    anchors = AnchorGenerator(sizes, (ratios,) * len(sizes))
    rep = roi.get("representation", 1024)
    pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2, canonical_scale=roi.get("canonical_scale", 224),
                              canonical_level=roi.get("canonical_level", 4))
    return FasterRCNN(
        backbone, min_size=IMG, max_size=IMG, box_predictor=FastRCNNPredictor(rep, CLASSES + 1),
        rpn_anchor_generator=anchors, box_roi_pool=pool, box_head=TwoMLPHead(fpn * 49, rep),
        rpn_pre_nms_top_n_train=rpn.get("pre_nms_top_n_train", 2000),
        rpn_post_nms_top_n_train=rpn.get("post_nms_top_n_train", 2000),
        rpn_pre_nms_top_n_test=rpn.get("pre_nms_top_n_test", 1000),
        rpn_post_nms_top_n_test=rpn.get("post_nms_top_n_test", 1000),
        box_batch_size_per_image=roi.get("batch_per_image", 512),
        box_positive_fraction=roi.get("pos_fraction", 0.25))


def batch(n, g):
    images = [torch.rand(3, IMG, IMG, generator=g) for _ in range(n)]
    targets = []
    for _ in range(n):
        k = int(torch.randint(1, 7, (1,), generator=g))
        wh = 5 + 75 * torch.rand(k, 2, generator=g)
        xy = (IMG - wh) * torch.rand(k, 2, generator=g)
        targets.append({"boxes": torch.cat([xy, xy + wh], 1),
                        "labels": torch.randint(1, CLASSES + 1, (k,), generator=g)})
    return images, targets


def timed(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="assets/configs/teacher-frcnn.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--forward-batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = json.load(open(a.config))
    model = build(cfg)
    g = torch.Generator().manual_seed(1)
    fimg, _ = batch(a.forward_batch, g)
    timg, ttgt = batch(a.batch, g)
    model.eval()

    def forward():
        with torch.no_grad():
            model(fimg)

    fwd = timed(forward, a.steps, a.warmup)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        loss = sum(model(timg, ttgt).values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    train = timed(step, a.steps, a.warmup)
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "config": a.config,
                      "forward_batch": a.forward_batch, "forward_ms": round(fwd, 2),
                      "train_batch": a.batch, "train_step_ms": round(train, 2),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
