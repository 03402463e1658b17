"""Loads a kdscope detector checkpoint into torchvision's RetinaNet and
writes its outputs for the given input, so the C test can compare.

usage: torchvision_parity.py WEIGHTS INPUT OUT [DEPTH FIRST EXTRA NEXTRA GN]
  DEPTH 18|101..., FIRST 2|3 (first FPN level), EXTRA p5|c5|pool (what the
  extra levels come from), NEXTRA 0..2, GN 0|1 (GroupNorm head towers);
  defaults 18 3 p5 2 1.
Exit 77 when torch/torchvision are missing. Reads/writes safetensors with
struct + json only (no safetensors package)."""
import json
import struct
import sys
from functools import partial

try:
    import numpy as np
    import torch
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead
    from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool, LastLevelP6P7
except Exception as e:  # pragma: no cover
    print("torch/torchvision unavailable:", e)
    sys.exit(77)


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32"
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").reshape(v["shape"]).copy())
    return out


def write_st(path, tensors):
    head, blobs, off = {}, [], 0
    for k, t in tensors.items():
        a = t.detach().double().numpy().astype("<f4").tobytes()
        head[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(a)]}
        blobs.append(a)
        off += len(a)
    h = json.dumps(head).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_exact(model, w):
    """Loads w into model; exits 1 naming any tensor missing on either side
    or of another shape."""
    sd = model.state_dict()
    missing = [k for k in sd if k not in w and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in w if k not in sd]
    if missing or unexpected:
        print("name mismatch: missing", missing[:8], "unexpected", unexpected[:8])
        sys.exit(1)
    for k in sd:
        if k in w and tuple(sd[k].shape) != tuple(w[k].shape):
            print("shape mismatch", k, tuple(sd[k].shape), tuple(w[k].shape))
            sys.exit(1)
    model.load_state_dict({k: w.get(k, sd[k]) for k in sd})


def main():
    weights, inp, outp = sys.argv[1:4]
    depth, first, extra, nextra, gn = (sys.argv[4:9] + ["18", "3", "p5", "2", "1"][len(sys.argv[4:9]):])
    depth, first, nextra, gn = int(depth), int(first), int(nextra), int(gn)
    w = read_st(weights)
    x = read_st(inp)["input"]
    fpn = w["backbone.fpn.layer_blocks.0.0.weight"].shape[0]
    ncls_a = w["head.classification_head.cls_logits.weight"].shape[0]
    A = 9
    K = ncls_a // A
    expansion = 4 if depth >= 50 else 1
    stages = [1, 2, 3, 4] if first == 2 else [2, 3, 4]
    in_ch = [64 * 2 ** (s - 1) * expansion for s in stages]
    if nextra == 0:
        blocks = None
    elif extra == "pool":
        blocks = LastLevelMaxPool()
    else:  # LastLevelP6P7 reads P5 when in == out channels, else C5
        blocks = LastLevelP6P7(in_ch[-1] if extra == "c5" else fpn, fpn)
        assert (extra != "c5" or in_ch[-1] != fpn) and nextra == 2
    # resnet_fpn_backbone's default norm is FrozenBatchNorm2d: eval-mode BN.
    backbone = resnet_fpn_backbone(backbone_name="resnet%d" % depth, weights=None, trainable_layers=5,
                                   returned_layers=stages, extra_blocks=blocks)
    # torchvision's resnet_fpn_backbone makes FPN 256 wide; rebuild at our width.
    backbone.out_channels = fpn
    backbone.fpn = FeaturePyramidNetwork(in_ch, fpn, extra_blocks=blocks)
    norm = partial(torch.nn.GroupNorm, 32) if gn else None
    head = RetinaNetHead(fpn, A, K, norm_layer=norm)
    model = RetinaNet(backbone, num_classes=K, head=head)
    load_exact(model, w)
    model.eval()
    with torch.no_grad():
        feats = list(model.backbone(x).values())
        out = model.head(feats)
    res = {}
    names = ["P%d" % (first + i) for i in range(len(feats))]
    for i, f in enumerate(feats):
        res["feat." + names[i]] = f
    # head outputs are permuted to (N, HWA, K); undo into per-level N,A*K,H,W
    start = 0
    for i, f in enumerate(feats):
        n, _, h, wd = f.shape
        cnt = h * wd * A
        cls = out["cls_logits"][:, start:start + cnt].reshape(n, h, wd, A * K).permute(0, 3, 1, 2)
        box = out["bbox_regression"][:, start:start + cnt].reshape(n, h, wd, A * 4).permute(0, 3, 1, 2)
        res["cls." + names[i]] = cls
        res["box." + names[i]] = box
        start += cnt
    write_st(outp, res)


if __name__ == "__main__":
    main()
