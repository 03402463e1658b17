#!/usr/bin/python3
"""Writes the seed inputs of the safetensors, config, snapshot and
loss_inputs fuzz targets into tests/fuzz/corpus/<target>/ (named by their
SHA-1, as libFuzzer names what it adds). Small, valid or nearly valid files
that reach deep into each reader; the fuzzer mutates from there.
Run: /usr/bin/python3 tests/fuzz/make_seeds.py"""
import hashlib
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def st_bytes(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    hdr, off, data = {}, 0, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(name, a):
    a = np.asarray(a, dtype="<f4")
    return (name, "F32", a.shape, a.tobytes())


def save(target, blobs):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for b in blobs:
        with open(os.path.join(d, hashlib.sha1(b).hexdigest()), "wb") as f:
            f.write(b)


rng = np.random.default_rng(1)

# safetensors: the checkpoint names of fuzz_safetensors.c's store, every
# dtype the reader converts or refuses, scalars, empty tensors, metadata.
w = rng.standard_normal((2, 3, 1, 1)).astype("<f4")
save("safetensors", [
    st_bytes([f32("w", w), f32("b", [0.5, -1]), f32("s", [3])], {"format": "pt"}),
    st_bytes([f32("w", w), f32("b", [0.5, -1]), f32("s", 3.0)]),
    st_bytes([("w", "F16", (2, 3, 1, 1), w.astype("<f2").tobytes()), ("b", "BF16", (2,), b"\x00\x3f\x80\xbf"),
              ("s", "F64", (1,), struct.pack("<d", 2.0))]),
    st_bytes([("i", "I64", (2,), struct.pack("<qq", 1, 2)), ("u", "U8", (3,), b"abc"), ("e", "F32", (0, 4), b"")],
             {"a": "b"}),
    st_bytes([f32("x", rng.standard_normal((1, 2, 2, 2, 1)))], pad=False),
])

# config: the shipped presets and --set lines.
cfgs = []
for name in ("distill.json", "student.json", "teacher.json"):
    with open(os.path.join(HERE, "..", "..", "assets", "configs", name), "rb") as f:
        cfgs.append(f.read())
cfgs.append(b'{"train": {"lr": 1e-3, "optimizer": "adamw", "schedule": "step", "decay_norm_bias": true}, "model": {"bn": "frozen"}, '
            b'"distill": {"methods": "fitnet,fgd"}, "fgd": {"temp": 0.8}, "data": {"hflip": 0}}')
cfgs.append(b"train.lr=0.01\ntrain.steps=10\ndistill.methods=pkd\npkd.weight=2\nmodel.head_norm=gn\ndata.size=96")
save("config", cfgs)

# snapshot: first byte 0 = a snapshot file, 1 = an index.
def snapshot(f16):
    meta = {"step": 40, "time": 1712345678.25, "capture_s": 0.04, "img_h": 4, "img_w": 4,
            "images": [{"index": 0, "id": 12}], "strides": [8, 16], "t_channels": 2, "s_channels": 2,
            "attn_temp": 0.5, "methods": "defeat", "parts": {"det": 1.5, "defeat": None},
            "probe_parts": {"det": 1.25}, "classes": ["shirt", "bag"]}
    mp = rng.random((2, 2)).astype("<f4")
    maps = [("img0.P3.gap", "F16", (2, 2), mp.astype("<f2").tobytes()) if f16 else f32("img0.P3.gap", mp),
            f32("img0.P4.t_energy", [[0.25]])]
    return st_bytes([("img0.rgb", "U8", (4, 4, 3), bytes(range(48))), f32("img0.gt", [[0, 0, 3, 3, 1, 0]]),
                     f32("img0.det.s", np.zeros((0, 6)))] + maps,
                    {"format": "kdscope-snapshot-1", "snapshot": json.dumps(meta)})


index = (b'{"step":10,"file":"step_00000010.safetensors","bytes":2048,"time":1712345678.25,"capture_s":0.04}\n'
         b'{"step":20,"file":"step_00000020.safetensors","bytes":2048,"time":1712345679.5,"capture_s":0.04}\n'
         b'{"step":10,"file":"step_00000010.safetensors","bytes":4096,"time":1712345680,"capture_s":0.05}\n'
         b'{"step":30,"file":"../x","bytes":1}\n{"step":40,"fi')
save("snapshot", [b"\x00" + snapshot(False), b"\x00" + snapshot(True), b"\x01" + index, b"\x07" + index[:120]])

# loss_inputs: the method comes from the file's length modulo 6
# (fitnet, pkd, cwd, logitkd, defeat, fgd); padding to the wanted length
# goes into the header's trailing spaces.
def loss_file(tensors, method):
    b = st_bytes(tensors)
    want = ("fitnet", "pkd", "cwd", "logitkd", "defeat", "fgd").index(method)
    extra = (want - len(b)) % 6
    hl = struct.unpack("<Q", b[:8])[0] + extra
    return struct.pack("<Q", hl) + b[8:8 + hl - extra] + b" " * extra + b[8 + hl - extra:]


def feats(n=1, c=2, hw=((4, 4), (2, 2))):
    out = []
    for l, (h, w_) in enumerate(hw):
        for who in ("teacher", "student"):
            out.append(f32(f"{who}.P{l + 3}", rng.standard_normal((n, c, h, w_))))
    return out


gt = [f32("gt.boxes", [[0, 2, 3, 20, 25], [0, 10, 10, 14, 12]]), f32("gt.labels", [1, 0])]
cls = [f32(f"{who}.cls.P{l + 3}", rng.standard_normal((1, 18, h, w_)))
       for l, (h, w_) in enumerate(((4, 4), (2, 2))) for who in ("teacher", "student")]
save("loss_inputs", [loss_file(feats(), m) for m in ("fitnet", "pkd", "cwd")] + [
    loss_file(cls + gt + [f32("image.size", [32, 32])], "logitkd"),
    loss_file(feats() + cls + gt, "defeat"),
    loss_file(feats() + gt, "fgd"),
])
