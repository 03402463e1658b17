#!/usr/bin/python3
"""Table of a recipe sweep (tools/recipe_sweep.sh): one row per finished
run in OUT, its recipe from config.json, the final COCO evaluation from
metrics.jsonl and its wall/CPU time from NAME.time (/usr/bin/time %e %U).
  /usr/bin/python3 tools/sweep_table.py OUT [--json]
"""
import json, os, sys


def final_eval(run):
    ev = None
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            if '"eval"' in line:
                ev = json.loads(line)
    return ev


def row(out, name):
    run = os.path.join(out, name)
    try:
        cfg = json.load(open(os.path.join(run, "config.json")))
        ev = final_eval(run)
    except (OSError, ValueError):
        return None
    if not ev:
        return None
    t = cfg.get("train", {})
    wall = cpu = None
    try:
        wall, cpu = (float(x) for x in open(run + ".time").read().split()[-2:])
    except (OSError, ValueError):
        pass
    e = ev["eval"]
    return dict(name=name, optimizer=t.get("optimizer"), lr=t.get("lr"), batch=t.get("batch"), steps=ev["step"],
                anchor=cfg.get("anchor", {}).get("size_mult"), AP=e["AP"], AP50=e["AP50"], AP75=e["AP75"], APs=e["APs"],
                APm=e["APm"], images=ev["step"] * t.get("batch", 0), wall_min=wall and wall / 60, cpu_min=cpu and cpu / 60)


def main():
    out = sys.argv[1]
    rows = [r for r in (row(out, n) for n in sorted(os.listdir(out)) if os.path.isdir(os.path.join(out, n))) if r]
    if "--json" in sys.argv:
        print(json.dumps(rows))
        return
    print("| run | optimizer | lr | batch | anchors | steps (images) | AP | AP50 | AP75 | APs | APm | CPU min |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: -r["AP"]):
        cpu = f"{r['cpu_min']:.1f}" if r["cpu_min"] else "-"
        print(f"| {r['name']} | {r['optimizer']} | {r['lr']:g} | {r['batch']} | {r['anchor']:g} x stride | {r['steps']} ({r['images']}) "
              f"| {100 * r['AP']:.1f} | {100 * r['AP50']:.1f} | {100 * r['AP75']:.1f} | {100 * r['APs']:.1f} | {100 * r['APm']:.1f} | {cpu} |")


main()
