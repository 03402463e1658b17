#!/usr/bin/python3
"""A researcher's own PyTorch distillation loop, steered through kdscope_hook.

A tiny teacher/student pair of conv nets (two FPN-like levels, strides 8
and 16, F channels each) on fashion-det images made by `kdscope
make-dataset`; the student learns a per-cell class heatmap (sigmoid BCE on
the cells of the GT boxes, fg_map's cells) plus FitNet's feature MSE to the
frozen, randomly initialised teacher, weighted by fitnet.weight read from
the hook every step. Every step's weight and lr are printed to --log (this
process's own record, which the test compares with the run's set events).

usage: torch_train.py --data DIR --out RUN_DIR [--steps N] [--log FILE] [--sleep S]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn
import torchvision.io

sys.path.insert(0, os.path.join(os.environ.get("KD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", "..")), "python"))
import kdscope_hook as kh  # noqa: E402

STRIDES = (8, 16)


class Net(nn.Module):
    """conv stride 2 x3 -> C3 (stride 8), one more -> C4 (16); 1x1 to F."""

    def __init__(self, w, F, K):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1), nn.ReLU(), nn.Conv2d(w, w, 3, 2, 1), nn.ReLU(),
                                  nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(2 * w, 2 * w, 3, 2, 1), nn.ReLU())
        self.lat = nn.ModuleList([nn.Conv2d(2 * w, F, 1), nn.Conv2d(2 * w, F, 1)])
        self.head = nn.Conv2d(F, K, 3, 1, 1)
        nn.init.constant_(self.head.bias, -2.0)

    def forward(self, x):
        c3 = self.stem(x)
        c4 = self.down(c3)
        feats = [self.lat[0](c3), self.lat[1](c4)]
        return feats, [self.head(f) for f in feats]


def load(data, split):
    ann = json.load(open(os.path.join(data, "annotations", "instances_%s.json" % split)))
    cats = [c["id"] for c in ann["categories"]]
    boxes = {im["id"]: [] for im in ann["images"]}
    for a in ann["annotations"]:
        x, y, w, h = a["bbox"]
        boxes[a["image_id"]].append([x, y, x + w, y + h, cats.index(a["category_id"]), a.get("iscrowd", 0)])
    imgs, gts, ids = [], [], []
    for im in ann["images"]:
        t = torchvision.io.read_image(os.path.join(data, "images", split, im["file_name"]), torchvision.io.ImageReadMode.RGB)
        imgs.append(t)
        gts.append(np.array(boxes[im["id"]], np.float32).reshape(-1, 6))
        ids.append(im["id"])
    return torch.stack(imgs), gts, ids, [c["name"] for c in ann["categories"]]


def targets(gts, K, shapes):
    """Per level (N, K, H, W): 1 on the cells of each class's boxes."""
    out = []
    for (H, W), st in zip(shapes, STRIDES):
        t = np.zeros((len(gts), K, H, W), np.float32)
        for i, g in enumerate(gts):
            for row in g:
                c = kh.box_cells(row[:4], st, H, W)
                if c and row[5] == 0:
                    t[i, int(row[4]), c[1]:c[3] + 1, c[0]:c[2] + 1] = 1
        out.append(torch.from_numpy(t))
    return out


def losses(student, teacher, x, gts, K, weight):
    with torch.no_grad():
        tf, _ = teacher(x)
    sf, logits = student(x)
    tg = targets(gts, K, [f.shape[2:] for f in sf])
    cls = sum(Fn.binary_cross_entropy_with_logits(z, t, reduction="sum") for z, t in zip(logits, tg)) / max(1.0, sum(float(t.sum()) for t in tg))
    # FitNet: w * mean over N, C, H, W of (S - T)^2, summed over levels
    per = [weight * (s - t).pow(2).mean() for s, t in zip(sf, tf)]
    gaps = [(weight * (s - t).pow(2).sum(1) / s[0].numel() / s.shape[0]).detach() for s, t in zip(sf, tf)]
    return cls, sum(per), sf, tf, gaps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--log", default=None)
    ap.add_argument("--sleep", type=float, default=0.0)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train_x, train_gt, _, classes = load(a.data, "train")
    val_x, val_gt, val_ids, _ = load(a.data, "val")
    K = len(classes)
    teacher, student = Net(16, 16, K).eval(), Net(8, 16, K)
    for p in teacher.parameters():
        p.requires_grad_(False)
    settings = {"distill.methods": "fitnet", "fitnet.weight": 1.0, "train.lr": 0.02}
    run = kh.Run(a.out, settings, config={"data.size": int(train_x.shape[-1]), "train.batch": a.batch}, steps=a.steps)
    opt = torch.optim.SGD(student.parameters(), lr=settings["train.lr"], momentum=0.9)
    log = open(a.log, "w") if a.log else None
    probe_x = val_x[:4].float() / 255
    g = torch.Generator().manual_seed(1)
    try:
        for _ in range(a.steps):
            s = run.poll()  # the step boundary: control commands land here
            if run.stopping:
                break
            for group in opt.param_groups:
                group["lr"] = s["train.lr"]
            idx = torch.randint(0, len(train_x), (a.batch,), generator=g)
            x = train_x[idx].float() / 255
            t0 = time.time()
            cls, feat, _, _, _ = losses(student, teacher, x, [train_gt[i] for i in idx], K, s["fitnet.weight"])
            loss = cls + feat
            opt.zero_grad()
            loss.backward()
            gn = float(torch.nn.utils.clip_grad_norm_(student.parameters(), 10.0))
            opt.step()
            step = run.log_step(loss=loss.item(), parts={"det.cls": cls.item(), "fitnet.feat": feat.item()}, lr=s["train.lr"],
                                grad_norm=gn, step_s=time.time() - t0, stats={"fitnet.weight": s["fitnet.weight"]})
            if log:
                log.write("%d %s %s\n" % (step, kh.num_format(s["fitnet.weight"]), kh.num_format(s["train.lr"])))
                log.flush()
            if run.probe_due():
                student.eval()
                pc, pf, sf, tf, gaps = losses(student, teacher, probe_x, val_gt[:4], K, s["fitnet.weight"])
                run.snapshot(probe_x, val_gt[:4], STRIDES, tf, sf, losses={"det": pc, "fitnet": pf}, gaps={"fitnet": gaps},
                             classes=classes, image_index=range(4), image_id=val_ids[:4], methods="fitnet",
                             parts={"det.cls": cls.item(), "fitnet.feat": feat.item()},
                             probe_parts={"det.cls": pc.item(), "fitnet.feat": pf.item()})
                student.train()
            if a.sleep:
                time.sleep(a.sleep)
    except BaseException as e:
        run.close(error=e)
        raise
    run.close()
    print("torch_train: %d steps, final loss %.4f" % (run.step, loss.item()))


if __name__ == "__main__":
    main()
