"""Summarises tools/results.sh runs into the markdown table of docs/RESULTS.md:
mean and spread (sample std) over seeds of the final COCO evaluation.
  results_table.py OUT STEPS                  the table
  results_table.py OUT STEPS --matched-steps  the matched-compute baseline's steps:
      STEPS x mean CPU of the distillation runs / mean CPU of the baseline runs
"""
import glob
import json
import os
import statistics
import sys

out, steps = sys.argv[1], sys.argv[2]
rows = {}
cpus = {}
ratios = {}  # method -> per run: distillation parts / detection parts, over the run
for d in sorted(glob.glob(os.path.join(out, "*-seed*"))):
    if not os.path.isdir(d):
        continue
    method, seed = os.path.basename(d).rsplit("-seed", 1)
    ev = None
    kd_sum = det_sum = 0.0
    try:
        with open(os.path.join(d, "metrics.jsonl")) as f:
            for line in f:
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                if "eval" in j:
                    ev = j["eval"]
                # the logged parts are weighted: they sum to the step's loss
                for k, v in j.get("parts", {}).items():
                    if k.startswith("det."):
                        det_sum += v
                    else:
                        kd_sum += v
    except OSError:  # a run that has not logged yet
        continue
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
    cpu = None
    # CPU seconds of the run's process (one thread: its compute time, not
    # stretched by whatever else the machine ran), where results.sh timed it.
    try:
        with open(d + ".time") as f:
            fields = f.read().split()
        if len(fields) >= 2:
            cpu = float(fields[-1])
    except (OSError, ValueError):
        pass
    if ev:
        rows.setdefault(method, []).append((int(seed), ev, t))
        cpus.setdefault(method, []).append(cpu)
        if det_sum > 0:
            ratios.setdefault(method, []).append(kd_sum / det_sum)

if "--matched-steps" in sys.argv:
    base_cpu = [c for c in cpus.get("baseline", []) if c]
    kd_cpu = [c for m, cc in cpus.items() if not m.startswith("baseline") for c in cc if c]
    if not base_cpu or not kd_cpu:
        sys.exit("results_table.py: no timed baseline and distillation runs in " + out)
    print(int(round(int(steps) * statistics.mean(kd_cpu) / statistics.mean(base_cpu) / 100.0)) * 100)
    sys.exit(0)

order = ["baseline", "baseline-matched", "baseline-12k"]
for m in ["fitnet", "defeat", "fgd", "pkd", "cwd", "logitkd"]:
    order += [m, m + "-tuned"]


def tuned_factor(m):
    try:
        return open(os.path.join(out, "tune", m + ".best")).read().strip()
    except OSError:
        return "?"

keys = ["AP", "AP50", "AP75", "APs", "APm"]
teacher = None
try:
    with open(os.path.join(out, "teacher.json")) as f:
        teacher = json.load(f)
except (OSError, ValueError):
    pass
base = [100 * e["AP"] for _, e, _ in rows.get("baseline", [])]
matched = [100 * e["AP"] for _, e, _ in rows.get("baseline-matched", [])]
try:
    matched_steps = open(os.path.join(out, "matched_steps")).read().strip()
except OSError:
    matched_steps = "?"


def gap_closed(ap, b):
    t = 100 * teacher["AP"]
    return f"{100 * (ap - b) / (t - b):.0f}%" if t > b else "–"


print("| method | seeds | " + " | ".join(keys) + " | gap closed (default baseline) | gap closed (matched-compute baseline) "
      "| KD / detection loss | wall min/run | CPU min/run |")
print("|---|---|" + "---|" * (len(keys) + 5))
for m in order:
    if m not in rows:
        continue
    r = sorted(rows[m], key=lambda x: x[0])
    cells = []
    for k in keys:
        v = [100 * e[k] for _, e, _ in r]
        if len(v) > 1:
            cells.append(f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}")
        else:
            cells.append(f"{v[0]:.1f}")
    # Share of the teacher-student gap closed, on the seed means.
    gap = gapm = "–"
    ap = statistics.mean(100 * e["AP"] for _, e, _ in r)
    if teacher and base and m != "baseline":
        gap = gap_closed(ap, statistics.mean(base))
    if teacher and matched and not m.startswith("baseline"):
        gapm = gap_closed(ap, statistics.mean(matched))
    tt = [x for _, _, x in r if x]
    wall = f"{statistics.mean(tt) / 60:.1f}" if tt else "?"
    cc = [x for x in cpus[m] if x]
    cpu = f"{statistics.mean(cc) / 60:.1f}" if cc else "–"
    seeds = ",".join(str(s) for s, _, _ in r)
    label = {"baseline-12k": "baseline, 2x schedule (12000 steps)",
             "baseline-matched": f"baseline at matched compute ({matched_steps} steps)"}.get(m, m)
    if m.endswith("-tuned"):
        label = f"{m[:-6]}, tuned: weight x{tuned_factor(m[:-6])} (chosen on data.holdout, not val)"
    # The distillation loss against the detection loss, summed over the
    # run's logged steps; an order of magnitude or more is marked.
    rr = ratios.get(m, [])
    rq = statistics.mean(rr) if rr else 0
    ratio = "–" if m.startswith("baseline") or not rr else f"{rq:.1f}x" + (" (dominates)" if rq >= 10 else "")
    print(f"| {label} | {seeds} | " + " | ".join(cells) + f" | {gap} | {gapm} | {ratio} | {wall} | {cpu} |")
if teacher:
    cells = [f"{100 * teacher[k]:.1f}" for k in keys]
    print("| teacher (shipped) | – | " + " | ".join(cells) + " | – | – | – | – | – |")
