#!/usr/bin/python3
"""Every GtkGrid in the window's .ui files gives each child a cell of its
own: two children on one (column, row) draw over each other, and the one
below cannot be reached (the Curves smoothing menu sat under Compare's).
Spans are counted. Exit status 1 with one line per clash."""
import sys
import xml.etree.ElementTree as ET

bad = 0
for path in sys.argv[1:]:
    for grid in ET.parse(path).getroot().iter("object"):
        if grid.get("class") != "GtkGrid":
            continue
        taken = {}
        for child in grid.findall("child"):
            obj = child.find("object")
            lay = obj.find("layout") if obj is not None else None
            if lay is None:
                continue
            p = {e.get("name"): int(e.text) for e in lay.findall("property")}
            col, row = p.get("column", 0), p.get("row", 0)
            name = obj.get("id") or next((e.text for e in obj.findall("property") if e.get("name") == "label"), obj.get("class"))
            for c in range(col, col + p.get("column-span", 1)):
                for r in range(row, row + p.get("row-span", 1)):
                    if (c, r) in taken:
                        print(f"{path}: grid {grid.get('id') or '?'}: '{name}' and '{taken[(c, r)]}' share column {c}, row {r}")
                        bad += 1
                    taken[(c, r)] = name
sys.exit(1 if bad else 0)
