"""Independent reader for a safetensors file written by kdscope, using only
json and struct: the header must parse, offsets must be sorted, contiguous
and cover the data, each span must equal numel * 4 (F32), and the values
must equal `index * 0.25 - offset` as the C test wrote them.
Usage: check_safetensors.py FILE EXPECTED_COUNT"""
import json
import struct
import sys


def main():
    path, expected = sys.argv[1], int(sys.argv[2])
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    assert 8 + hlen <= len(blob), "header longer than file"
    assert (8 + hlen) % 8 == 0, "data not 8-byte aligned"
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = blob[8 + hlen:]
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "metadata not str->str"
    assert meta.get("writer") == "kdscope", meta
    assert len(header) == expected, (len(header), expected)
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    pos = 0
    for begin, end, name in spans:
        info = header[name]
        assert info["dtype"] == "F32", name
        numel = 1
        for d in info["shape"]:
            numel *= d
        assert begin == pos, f"{name}: begins at {begin}, expected {pos} (not contiguous)"
        assert end - begin == 4 * numel, f"{name}: span {end - begin} for {numel} floats"
        values = struct.unpack(f"<{numel}f", data[begin:end])
        offset = float(name.rsplit(".", 1)[-1])
        for i, v in enumerate(values):
            assert v == i * 0.25 - offset, f"{name}[{i}] = {v}"
        pos = end
    assert pos == len(data), f"data has {len(data)} bytes, tensors cover {pos}"
    # Header order is the writer's order and is sorted by offset too.
    order = [v["data_offsets"][0] for v in header.values()]
    assert order == sorted(order), "header entries not in offset order"
    print(f"{path}: {len(header)} tensors, {len(data)} data bytes, header ok")


if __name__ == "__main__":
    main()
