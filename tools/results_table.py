"""Summarises tools/results.sh runs into the markdown table of docs/RESULTS.md:
mean and spread (sample std) over seeds of the final COCO evaluation."""
import glob
import json
import os
import statistics
import sys

out, steps = sys.argv[1], sys.argv[2]
rows = {}
for d in sorted(glob.glob(os.path.join(out, "*-seed*"))):
    if not os.path.isdir(d):
        continue
    method, seed = os.path.basename(d).rsplit("-seed", 1)
    ev = None
    with open(os.path.join(d, "metrics.jsonl")) as f:
        for line in f:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if "eval" in j:
                ev = j["eval"]
    t = None
    # wall time: from the run's first to its last event
    try:
        with open(os.path.join(d, "events.jsonl")) as f:
            ev_lines = [json.loads(x) for x in f if x.strip()]
        import datetime
        ts = [datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in ev_lines if "time" in e]
        if len(ts) > 1:
            t = (max(ts) - min(ts)).total_seconds()
    except (OSError, ValueError, KeyError):
        pass
    if t is None and os.path.exists(d + ".time"):
        with open(d + ".time") as f:
            try:
                t = float(f.read().split()[-1])
            except (ValueError, IndexError):
                pass
    if ev:
        rows.setdefault(method, []).append((int(seed), ev, t))

order = ["teacher", "baseline", "fitnet", "defeat", "fgd", "pkd", "cwd", "logitkd"]
keys = ["AP", "AP50", "APs", "APm"]
print(f"| method | runs | " + " | ".join(keys) + " | wall min/run |")
print("|---|---|" + "---|" * (len(keys) + 1))
for m in order:
    if m not in rows:
        continue
    r = rows[m]
    cells = []
    for k in keys:
        v = [100 * e[k] for _, e, _ in r]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        cells.append(f"{statistics.mean(v):.1f} ± {sd:.1f}")
    tt = [x for _, _, x in r if x]
    wall = f"{statistics.mean(tt) / 60:.1f}" if tt else "?"
    print(f"| {m} | {len(r)} | " + " | ".join(cells) + f" | {wall} |")
