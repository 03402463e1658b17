#!/usr/bin/python3
"""Writes a torchvision detector's weights as a safetensors file that
`kdscope import` reads, plus a JSON sidecar naming the architecture.

usage:
  export_torchvision.py --model NAME [--checkpoint FILE.pth] [--num-classes N] [--seed S] --out FILE.safetensors
  export_torchvision.py FILE.pth [--arch NAME] --out FILE.safetensors

--model builds torchvision.models.detection.NAME with weights=None and
weights_backbone=None (nothing is downloaded) and, with --checkpoint,
loads that state_dict into it (strict: a name or shape that does not fit
is an error naming it); without --checkpoint the weights are the random
initialisation after torch.manual_seed(S) (for tests). A bare FILE.pth is
a state_dict (or a dict holding one under "model" / "state_dict", or a
whole pickled module) written as it is; --arch only fills the sidecar.

Needs torch (and torchvision for --model) and nothing else: the
safetensors file is written here (8-byte header length, JSON header,
little-endian data; floats as F32, integer buffers such as
num_batches_tracked as I64). The sidecar FILE.safetensors.json holds
{"arch", "num_classes", "torch", "torchvision", "source", "tensors"}; the
same arch is in the file's __metadata__. Unpickling happens here, in
Python, never in kdscope."""
import argparse
import json
import os
import struct
import sys

try:
    import torch
except Exception as e:  # pragma: no cover
    print("export_torchvision: torch is not installed:", e, file=sys.stderr)
    sys.exit(77)


def write_safetensors(path, tensors, meta):
    """tensors: ordered name -> tensor. Floats become F32, integers I64."""
    head, blobs, off = {}, [], 0
    if meta:
        head["__metadata__"] = {str(k): str(v) for k, v in meta.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.is_floating_point():
            dtype, data = "F32", t.to(torch.float32).numpy().astype("<f4").tobytes()
        elif t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
            dtype, data = "I64", t.to(torch.int64).numpy().astype("<i8").tobytes()
        else:
            raise SystemExit("export_torchvision: tensor %s has dtype %s, not a float or integer" % (name, t.dtype))
        head[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # the data starts 8-byte aligned, as the reference writer does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def state_dict_of(obj, source):
    """A state_dict from what torch.load returned."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return state_dict_of(obj[key], source)
        sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if sd:
            return sd
    raise SystemExit("export_torchvision: %s holds no state_dict (a dict of tensors, or one under 'model'/'state_dict')" % source)


def load_pth(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")
    except Exception:
        return torch.load(path, map_location="cpu")


def build(name, num_classes):
    import torchvision.models.detection as det
    fn = getattr(det, name, None)
    if fn is None or not callable(fn):
        known = sorted(n for n in dir(det) if n[0].islower() and ("rcnn" in n or "retinanet" in n or "fcos" in n or "ssd" in n))
        raise SystemExit("export_torchvision: torchvision.models.detection has no model %r; it has: %s" % (name, ", ".join(known)))
    kw = {"weights": None, "weights_backbone": None}
    if num_classes:
        kw["num_classes"] = num_classes
    return fn(**kw)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pth", nargs="?", help="a .pth state_dict (without --model)")
    ap.add_argument("--model", help="a torchvision.models.detection builder, e.g. retinanet_resnet50_fpn")
    ap.add_argument("--checkpoint", help="with --model: a .pth state_dict to load into it")
    ap.add_argument("--arch", help="with a bare .pth: the architecture to name in the sidecar")
    ap.add_argument("--num-classes", type=int, default=0, help="with --model: classes incl. background (torchvision: 91)")
    ap.add_argument("--seed", type=int, default=0, help="with --model and no --checkpoint: torch.manual_seed")
    ap.add_argument("--out", required=True, help="the .safetensors file to write")
    a = ap.parse_args(argv)
    if bool(a.model) == bool(a.pth):
        ap.error("give either --model NAME or a .pth file")
    tv = None
    try:
        import torchvision
        tv = torchvision.__version__
    except Exception:
        if a.model:
            raise SystemExit("export_torchvision: --model needs torchvision, which is not installed")
    if a.model:
        torch.manual_seed(a.seed)
        model = build(a.model, a.num_classes)
        if a.checkpoint:
            sd = state_dict_of(load_pth(a.checkpoint), a.checkpoint)
            res = model.load_state_dict(sd, strict=False)
            if res.missing_keys or res.unexpected_keys:
                raise SystemExit("export_torchvision: %s does not fit %s: missing %s, unexpected %s" %
                                 (a.checkpoint, a.model, res.missing_keys[:6], res.unexpected_keys[:6]))
        sd, arch, source = model.state_dict(), a.model, a.checkpoint or "random init, seed %d" % a.seed
    else:
        sd, arch, source = state_dict_of(load_pth(a.pth), a.pth), a.arch or "", a.pth
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    ncls, cls, reg = 0, "head.classification_head.cls_logits.weight", "head.regression_head.bbox_reg.weight"
    if cls in tensors and reg in tensors and tensors[reg].shape[0] >= 4:
        ncls = tensors[cls].shape[0] // (tensors[reg].shape[0] // 4)  # A*K rows over A anchors
    elif "roi_heads.box_predictor.cls_score.weight" in tensors:
        ncls = tensors["roi_heads.box_predictor.cls_score.weight"].shape[0]
    meta = {"format": "pt", "arch": arch, "exporter": "kdscope tools/export_torchvision.py"}
    write_safetensors(a.out, tensors, meta)
    side = {"arch": arch, "num_classes": ncls, "torch": torch.__version__, "torchvision": tv, "source": source,
            "tensors": len(tensors)}
    with open(a.out + ".json", "w") as f:
        json.dump(side, f, indent=1)
        f.write("\n")
    print("%s: %d tensors (%s)" % (a.out, len(tensors), arch or "architecture not named"))


if __name__ == "__main__":
    main()
