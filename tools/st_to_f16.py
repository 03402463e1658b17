"""Converts a safetensors checkpoint to F16 (halves a shipped checkpoint;
kdscope reads F16 back into float32). Keeps the metadata.
usage: /usr/bin/python3 tools/st_to_f16.py IN.safetensors OUT.safetensors"""
import json
import struct
import sys

import numpy as np


def main():
    src, dst = sys.argv[1:3]
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out_head, blobs, off = {}, [], 0
    for k, v in head.items():
        if k == "__metadata__":
            out_head[k] = v
            continue
        b, e = v["data_offsets"]
        a = np.frombuffer(data[b:e], dtype="<f4")
        if np.any(np.abs(a[np.isfinite(a)]) > 65504):
            sys.exit(f"{k}: values beyond the F16 range")
        h = a.astype("<f2").tobytes()
        out_head[k] = {"dtype": "F16", "shape": v["shape"], "data_offsets": [off, off + len(h)]}
        blobs.append(h)
        off += len(h)
    hj = json.dumps(out_head, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(dst + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    import os
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
