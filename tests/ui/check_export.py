#!/usr/bin/python3
"""Checks exported figures listed in a manifest ("path width_pt height_pt"
per line): PDFs with pdfinfo (page size), pdffonts (fonts embedded, DejaVu,
no Type 3) and pdftoppm (renders, not blank); SVGs with an XML parser
(svg root, size in pt) and, when rsvg-convert exists, a render that is not
blank. Exit status 1 on any failure, with one line per problem."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)


def pnm_variance(path):
    """Grey variance of a binary PGM/PPM (P5/P6) written by pdftoppm."""
    with open(path, "rb") as f:
        data = f.read()
    tokens, pos = [], 0
    while len(tokens) < 4:
        m = re.compile(rb"\s*(#[^\n]*\n\s*)*(\S+)").match(data, pos)
        tokens.append(m.group(2))
        pos = m.end()
    pos += 1  # the single whitespace after maxval
    kind, w, h = tokens[0], int(tokens[1]), int(tokens[2])
    px = data[pos:]
    step = 3 if kind == b"P6" else 1
    vals = px[::step][: w * h]
    n = len(vals)
    mean = sum(vals) / n
    var = sum((v - mean) ** 2 for v in vals[:: max(1, n // 200000)]) / len(vals[:: max(1, n // 200000)])
    return w, h, var, mean


def check_pdf(path, wpt, hpt, tmp):
    r = run(["pdfinfo", path])
    if r.returncode != 0:
        return fail(f"{path}: pdfinfo failed: {r.stderr.strip()}")
    m = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", r.stdout)
    if not m:
        return fail(f"{path}: no page size in pdfinfo output")
    pw, ph = float(m.group(1)), float(m.group(2))
    if abs(pw - wpt) > 0.6 or abs(ph - hpt) > 0.6:
        fail(f"{path}: page {pw} x {ph} pt, expected {wpt:.2f} x {hpt:.2f}")
    if not re.search(r"^Pages:\s+1$", r.stdout, re.M):
        fail(f"{path}: expected one page")
    r = run(["pdffonts", path])
    rows = r.stdout.splitlines()[2:]
    if not rows:
        fail(f"{path}: no fonts (text missing?)")
    for row in rows:
        if "Type 3" in row:
            fail(f"{path}: Type 3 font (cairo found no real font): {row.strip()}")
        if "DejaVu" not in row:
            fail(f"{path}: font is not DejaVu: {row.strip()}")
        cols = row.split()
        # name type... emb sub uni id gen: emb is the 5th field from the end
        if len(cols) >= 6 and cols[-5] != "yes":
            fail(f"{path}: font not embedded: {row.strip()}")
    out = os.path.join(tmp, "page")
    r = run(["pdftoppm", "-gray", "-r", "50", "-singlefile", path, out])
    if r.returncode != 0:
        return fail(f"{path}: pdftoppm failed: {r.stderr.strip()}")
    w, h, var, mean = pnm_variance(out + ".pgm")
    exp_w = round(wpt / 72 * 50)
    if abs(w - exp_w) > 1:
        fail(f"{path}: rendered {w} px wide, expected {exp_w}")
    if var < 100 or mean > 252:
        fail(f"{path}: renders blank (variance {var:.1f}, mean {mean:.1f})")


def check_svg(path, wpt, hpt, tmp):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return fail(f"{path}: not well-formed XML: {e}")
    if not root.tag.endswith("svg"):
        return fail(f"{path}: root is {root.tag}, not svg")
    for attr, want in (("width", wpt), ("height", hpt)):
        v = root.get(attr, "")
        m = re.fullmatch(r"([\d.]+)pt", v)
        if not m or abs(float(m.group(1)) - want) > 0.6:
            fail(f"{path}: {attr}={v!r}, expected {want:.2f}pt")
    ns = "{http://www.w3.org/2000/svg}"
    for img in root.iter(ns + "image"):  # maps must not be smoothed by viewers
        if "pixelated" not in img.get("style", ""):
            fail(f"{path}: <image {img.get('id')}> is not marked pixelated")
            break
    if len(list(root.iter(ns + "path"))) + len(list(root.iter(ns + "use"))) < 10:
        fail(f"{path}: suspiciously few vector elements")
    if shutil.which("rsvg-convert"):
        out = os.path.join(tmp, "svg.png")
        r = run(["rsvg-convert", "-o", out, path])
        if r.returncode != 0:
            fail(f"{path}: rsvg-convert failed: {r.stderr.strip()}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_export.py MANIFEST")
    n = 0
    with tempfile.TemporaryDirectory() as tmp, open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            path, w, h = line.split()
            w, h = float(w), float(h)
            if not os.path.exists(path):
                fail(f"{path}: missing")
            elif path.endswith(".pdf"):
                check_pdf(path, w, h, tmp)
            elif path.endswith(".svg"):
                check_svg(path, w, h, tmp)
            n += 1
    print(f"check_export: {n} files, {len(failures)} problems")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
