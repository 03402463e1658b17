"""Oracle of test_tv_import: torchvision detectors with random weights,
exported with tools/export_torchvision.py, and torchvision's outputs on
given inputs for the C test to compare with the imported model's.

usage: tv_import_oracle.py CASE DIR [HxW ...]
  CASE r50   retinanet_resnet50_fpn (BatchNorm2d: num_batches_tracked),
             exported with --model --checkpoint
  CASE r18   ResNet-18 width 64, FPN 256, P6/P7 from P5 (FrozenBatchNorm2d),
             a bare .pth exported as it is
  CASE frcnn Faster R-CNN, ResNet-18 width 64, FPN 256 P2..P6 (max pool),
             TwoMLPHead 1024 (FrozenBatchNorm2d), a bare .pth; outputs
             feat.P<k>, obj.P<k>, rpn_box.P<k> and the detections (labels
             1..90, torchvision's)
  CASE image  torchvision's GeneralizedRCNNTransform on random RGB8 images:
             DIR/image_<i>.safetensors with "rgb" (H, W, 3, values 0..255),
             "cfg" (min_size, max_size) and "tv" (3, h, w: resized,
             normalised, before the batch padding), i = 0.. (an upscale, a
             downscale, one limited by max_size)
  CASE folder a COCO-layout folder DIR/data (two 192x192 JPEGs, 4 classes)
             and a ResNet-18 RetinaNet of 4 classes (DIR/model.safetensors);
             DIR/tv_dets.json: torchvision's whole model (its transform at
             min = max = 256) on the folder's images, COCO results
  CASE folder_wide  the same with three non-square JPEGs (128x192,
             192x144, 100x180) at torchvision's min_size 256, max_size 384
  CASE check DIR OURS.json: kdscope's COCO results against tv_dets.json
  CASE variants  every detection builder this torchvision has, as
             shape-only files (the data a sparse hole) for architecture
             inference: DIR/variants.txt lists "builder file" lines
For r50/r18 writes DIR/model.safetensors (the exporter's) and per size
DIR/in_HxW.safetensors ("input" 1,3,H,W) and DIR/out_HxW.safetensors:
feat.P<k>, cls.P<k> (1, A*K, H, W), box.P<k>, and the final detections
det.boxes [D,4], det.scores [D], det.labels [D] (as floats).
Exits 77 without torch/torchvision."""
import json
import os
import struct
import subprocess
import sys

try:
    import numpy as np
    import torch
    import torchvision
    from torchvision.models.detection import retinanet as tvr
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.models.detection.image_list import ImageList
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
except Exception as e:  # pragma: no cover
    print("torch/torchvision unavailable:", e)
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


sys.path.insert(0, os.path.join(ROOT, "tools"))
from export_torchvision import write_safetensors  # noqa: E402  (the exporter's writer)


def write_st(path, tensors):
    write_safetensors(path, tensors, None)


def write_shapes(path, tensors):
    """A safetensors file of these shapes whose data is a hole (zeros)."""
    head, off = {}, 0
    for k, t in tensors.items():
        n = t.numel() * 4
        head[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(head).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.truncate(8 + len(h) + off)


def perturb(model, gen):
    """Norm statistics that matter, head convs that keep the activations'
    scale (torchvision's N(0, 0.01) makes every score the prior's), and
    class biases spread so there are detections above 0.05."""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if hasattr(mod, "running_var") and mod.running_var is not None:
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
                mod.running_mean.copy_((torch.rand(mod.running_mean.shape, generator=gen) - 0.5) * 0.4)
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)
                mod.bias.copy_((torch.rand(mod.bias.shape, generator=gen) - 0.5) * 0.4)
        if hasattr(model, "rpn"):
            perturb_frcnn(model, gen)
            return
        for name, p in model.head.named_parameters():
            if p.dim() == 4 and "cls_logits" not in name and "bbox_reg" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / (p.shape[1] * 9)) ** 0.5)
        # Random ResNets' features run to 1e3: scale the output convs so
        # logits spread about 1 (saturated scores would tie) and deltas
        # about 0.3 (larger ones clip every box to the image).
        model.eval()
        x = torch.rand((1, 3, 128, 128), generator=gen) * 4 - 2
        feats = list(model.backbone(x).values())
        ho = model.head(feats)
        cl = model.head.classification_head.cls_logits
        br = model.head.regression_head.bbox_reg
        cl.weight.mul_(1.0 / float(ho["cls_logits"].std()))
        br.weight.mul_(0.3 / float(ho["bbox_regression"].std()))
        br.bias.zero_()
        cl.bias.copy_(torch.rand(cl.bias.shape, generator=gen) * 3 - 6)


def perturb_frcnn(model, gen):
    """RPN scores spread (random ones tie at 0.5), some classes above 0.05."""
    rh = model.rpn.head
    for m in rh.conv.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / (m.weight.shape[1] * 9)) ** 0.5)
    model.eval()
    x = torch.rand((1, 3, 128, 128), generator=gen) * 4 - 2
    feats = list(model.backbone(x).values())
    obj, deltas = rh(feats)
    rh.cls_logits.weight.mul_(2.0 / float(torch.cat([o.flatten() for o in obj]).std()))
    rh.bbox_pred.weight.mul_(0.2 / float(torch.cat([d.flatten() for d in deltas]).std()))
    fd = model.backbone(x)
    images = ImageList(x, [(128, 128)])
    props, _ = model.rpn(images, fd)
    rh = model.roi_heads
    rep = rh.box_head(rh.box_roi_pool(fd, props, images.image_sizes))
    cs = rh.box_predictor.cls_score
    cs.weight.mul_(1.0 / float((cs(rep) - cs.bias).std()))
    cs.bias.copy_(torch.rand(cs.bias.shape, generator=gen) * 8 - 4)


def build(case):
    torch.manual_seed(3)
    if case == "r50":
        return tvr.retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    if case == "frcnn":
        from torchvision.models.detection.faster_rcnn import FasterRCNN
        return FasterRCNN(resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5), num_classes=91)
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5, returned_layers=[2, 3, 4],
                                   extra_blocks=LastLevelP6P7(256, 256))
    return tvr.RetinaNet(backbone, num_classes=91)


def export(case, model, d):
    pth = os.path.join(d, "model.pth")
    torch.save(model.state_dict(), pth)
    tool = [sys.executable, os.path.join(ROOT, "tools", "export_torchvision.py")]
    out = os.path.join(d, "model.safetensors")
    if case == "r50":
        args = ["--model", "retinanet_resnet50_fpn", "--checkpoint", pth]
    else:
        args = [pth, "--arch", "%s_resnet18_w64_fpn256" % ("fasterrcnn" if case == "frcnn" else "retinanet")]
    # (the bare .pth path: --arch only names it in the sidecar)
    subprocess.run(tool + args + ["--out", out], check=True, stdout=subprocess.DEVNULL)
    os.unlink(pth)


def outputs_frcnn(model, x):
    res = {}
    with torch.no_grad():
        fd = model.backbone(x)
        feats = list(fd.values())
        obj, deltas = model.rpn.head(feats)
        n, _, H, W = x.shape
        images = ImageList(x, [(H, W)] * n)
        props, _ = model.rpn(images, fd)
        dets = model.roi_heads(fd, props, images.image_sizes)[0][0]
    for i, f in enumerate(feats):
        nm = "P%d" % (2 + i)
        res["feat." + nm], res["obj." + nm], res["rpn_box." + nm] = f, obj[i], deltas[i]
    res["det.boxes"] = dets["boxes"].reshape(-1, 4)
    res["det.scores"] = dets["scores"].reshape(-1)
    res["det.labels"] = dets["labels"].reshape(-1).to(torch.float32)
    return res


def outputs(model, x):
    if hasattr(model, "rpn"):
        return outputs_frcnn(model, x)
    res = {}
    with torch.no_grad():
        feats = list(model.backbone(x).values())
        ho = model.head(feats)
        n, _, H, W = x.shape
        images = ImageList(x, [(H, W)] * n)
        anchors = model.anchor_generator(images, feats)
        hw = [f.shape[2] * f.shape[3] for f in feats]
        A = ho["cls_logits"].shape[1] // sum(hw)
        per = [v * A for v in hw]
        split = {k: list(ho[k].split(per, dim=1)) for k in ho}
        sa = [list(a.split(per)) for a in anchors]
        dets = model.postprocess_detections(split, sa, images.image_sizes)[0]
    K = ho["cls_logits"].shape[2]
    start = 0
    for i, f in enumerate(feats):
        nm = "P%d" % (3 + i)
        h, w = f.shape[2], f.shape[3]
        cnt = h * w * A
        res["feat." + nm] = f
        res["cls." + nm] = ho["cls_logits"][:, start:start + cnt].reshape(n, h, w, A * K).permute(0, 3, 1, 2)
        res["box." + nm] = ho["bbox_regression"][:, start:start + cnt].reshape(n, h, w, A * 4).permute(0, 3, 1, 2)
        start += cnt
    res["det.boxes"] = dets["boxes"].reshape(-1, 4)
    res["det.scores"] = dets["scores"].reshape(-1)
    res["det.labels"] = dets["labels"].reshape(-1).to(torch.float32)
    return res


def variants(d):
    import torchvision.models.detection as det
    names = [n for n in sorted(dir(det)) if n[0].islower() and callable(getattr(det, n)) and
             any(s in n for s in ("rcnn", "retinanet", "fcos", "ssd")) and not n.startswith("_")]
    # Only the shapes matter here: skip the random initialisation (most of the time).
    for fn in [f for f in dir(torch.nn.init) if f.endswith("_") and not f.startswith("_")]:
        setattr(torch.nn.init, fn, lambda t, *a, **k: t)
    lines = []
    for n in names:
        try:
            m = getattr(det, n)(weights=None, weights_backbone=None)
        except Exception as e:  # a builder the check cannot make is a check not run: fail, never skip
            sys.exit("tv_import_oracle: cannot build torchvision's %s without weights: %s" % (n, e))
        path = os.path.join(d, n + ".safetensors")
        write_shapes(path, {k: v.float() for k, v in m.state_dict().items()})
        lines.append("%s %s\n" % (n, path))
    with open(os.path.join(d, "variants.txt"), "w") as f:
        f.writelines(lines)


def images(d):
    from torchvision.models.detection.transform import GeneralizedRCNNTransform
    gen = torch.Generator().manual_seed(11)
    # (H, W, min_size, max_size): up 1.28x, down 0.47x, long side limited
    for i, (H, W, lo, hi) in enumerate([(200, 300, 256, 400), (427, 640, 200, 333), (120, 400, 200, 500)]):
        rgb = torch.randint(0, 256, (H, W, 3), generator=gen, dtype=torch.uint8)
        t = GeneralizedRCNNTransform(lo, hi, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        t.eval()
        with torch.no_grad():
            img = rgb.permute(2, 0, 1).float() / 255
            out = t.resize(t.normalize(img), None)[0]
        write_st(os.path.join(d, "image_%d.safetensors" % i),
                 {"rgb": rgb.float(), "cfg": torch.tensor([lo, hi], dtype=torch.float32), "tv": out})


def folder(d, shapes=((192, 192), (192, 192)), lo=256, hi=256):
    from torchvision.io import decode_jpeg, read_file, write_jpeg
    torch.manual_seed(3)
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5, returned_layers=[2, 3, 4],
                                   extra_blocks=LastLevelP6P7(256, 256))
    model = tvr.RetinaNet(backbone, num_classes=4, min_size=lo, max_size=hi)
    perturb(model, torch.Generator().manual_seed(5))
    model.eval()
    export("folder", model, d)
    os.makedirs(os.path.join(d, "data", "images", "val"), exist_ok=True)
    os.makedirs(os.path.join(d, "data", "annotations"), exist_ok=True)
    gen = torch.Generator().manual_seed(9)
    ims, anns, dets = [], [], []
    for i, (h, w) in enumerate(shapes):
        # smooth content (JPEG keeps it) decoded back by torchvision's libjpeg, as kdscope's loader decodes it
        small = torch.randint(0, 256, (1, 3, 12, 12), generator=gen).float()
        rgb = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0].round().to(torch.uint8)
        name = "im%d.jpg" % i
        path = os.path.join(d, "data", "images", "val", name)
        write_jpeg(rgb, path, quality=95)
        rgb = decode_jpeg(read_file(path))
        ims.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i, "bbox": [20, 30, 60, 50], "area": 3000, "iscrowd": 0})
        with torch.no_grad():
            out = model([rgb.float() / 255])[0]
        for b, sc, lab in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
            dets.append({"image_id": i + 1, "category_id": lab + 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": sc})
    cats = [{"id": k + 1, "name": "c%d" % k} for k in range(4)]
    with open(os.path.join(d, "data", "annotations", "instances_val.json"), "w") as f:
        json.dump({"images": ims, "annotations": anns, "categories": cats}, f)
    with open(os.path.join(d, "tv_dets.json"), "w") as f:
        json.dump(dets, f)


def check(d, ours_path):
    """Every torchvision detection has one of ours (same image, class, box
    within 1e-3 px, score within 1e-5), and the counts agree."""
    tv = json.load(open(os.path.join(d, "tv_dets.json")))
    ours = json.load(open(ours_path))
    used, worst, matched = set(), 0.0, 0
    for t in tv:
        best, be = None, 1e9
        for j, o in enumerate(ours):
            if j in used or o["image_id"] != t["image_id"] or o["category_id"] != t["category_id"]:
                continue
            e = max(max(abs(a - b) for a, b in zip(o["bbox"], t["bbox"])), abs(o["score"] - t["score"]) * 1e3)
            if e < be:
                best, be = j, e
        if best is not None and be < 1e-2:
            used.add(best)
            matched += 1
            worst = max(worst, be)
    print("  folder: %d of torchvision's %d detections matched (ours %d), worst |box| px or 1000 |score| %.2g" %
          (matched, len(tv), len(ours), worst))
    sys.exit(0 if len(tv) > 0 and matched >= len(tv) - 2 and abs(len(ours) - len(tv)) <= 2 else 1)


def main():
    case, d = sys.argv[1], sys.argv[2]
    if case == "folder":
        folder(d)
        return
    if case == "folder_wide":  # non-square images, each resized by its short side (max 384), padded per batch
        folder(d, shapes=((128, 192), (192, 144), (100, 180)), lo=256, hi=384)
        return
    if case == "check":
        check(d, sys.argv[3])
        return
    if case == "image":
        images(d)
        return
    if case == "variants":
        variants(d)
        return
    model = build(case)
    perturb(model, torch.Generator().manual_seed(5))
    model.eval()
    export(case, model, d)
    gen = torch.Generator().manual_seed(7)
    for size in sys.argv[3:]:
        H, W = (int(v) for v in size.split("x"))
        x = torch.rand((1, 3, H, W), generator=gen) * 4 - 2
        write_st(os.path.join(d, "in_%s.safetensors" % size), {"input": x})
        write_st(os.path.join(d, "out_%s.safetensors" % size), outputs(model, x))
    print("torchvision", torchvision.__version__)


if __name__ == "__main__":
    main()
