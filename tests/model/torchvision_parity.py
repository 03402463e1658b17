"""Loads a kdscope detector checkpoint into torchvision's RetinaNet and
writes its outputs for the given input, so the C test can compare.

usage: torchvision_parity.py WEIGHTS.safetensors INPUT.safetensors OUT.safetensors
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
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
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


def main():
    weights, inp, outp = sys.argv[1:4]
    w = read_st(weights)
    x = read_st(inp)["input"]
    fpn = w["backbone.fpn.layer_blocks.0.0.weight"].shape[0]
    ncls_a = w["head.classification_head.cls_logits.weight"].shape[0]
    A = 9
    K = ncls_a // A
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5,
                                   returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(fpn, fpn))
    # resnet18 at width 64 is torchvision's own; the test builds ours the same.
    backbone.out_channels = fpn
    # torchvision's resnet_fpn_backbone makes FPN 256 wide; rebuild at our width.
    from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork
    backbone.fpn = FeaturePyramidNetwork([128, 256, 512], fpn, extra_blocks=LastLevelP6P7(fpn, fpn))
    head = RetinaNetHead(fpn, A, K, norm_layer=partial(torch.nn.GroupNorm, 32))
    model = RetinaNet(backbone, num_classes=K, head=head)
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
    model.eval()
    with torch.no_grad():
        feats = list(model.backbone(x).values())
        out = model.head(feats)
    res = {}
    names = ["P3", "P4", "P5", "P6", "P7"]
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
