"""Summarises tools/results.sh runs into the markdown table of docs/RESULTS.md:
mean and spread (sample std) over seeds of the final COCO evaluation.
  results_table.py OUT STEPS                  the table
  results_table.py OUT STEPS --matched-steps  the matched-compute baseline's steps:
      STEPS x mean CPU of the distillation runs / mean CPU of the baseline runs
  results_table.py OUT STEPS --save DIR       also write one small record per
      finished run (and the teacher, matched steps, tuned factors) to DIR
  results_table.py --from DIR STEPS           the table from saved records alone
  results_table.py OUT STEPS --dominating     the methods whose loss is >= 10x the
      detection loss at their defaults (the ones tools/tune_weights.sh tunes)
A record keeps what the table needs, so a table survives its run directories
(runs are large and not kept; the records are committed under docs/results/).
"""
import datetime
import glob
import hashlib
import json
import os
import statistics
import sys


def scan_run(d):
    """One run directory -> its record, or None if it has no final evaluation."""
    method, seed = os.path.basename(d).rsplit("-seed", 1)
    ev = None
    kd_sum = det_sum = 0.0
    last_step = 0
    norms = []  # the total gradient norm of each step, before clipping
    try:
        with open(os.path.join(d, "metrics.jsonl")) as f:
            for line in f:
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                if "eval" in j:
                    ev = j["eval"]
                last_step = max(last_step, j.get("step", 0))
                if "grad_norm" in j:
                    norms.append(j["grad_norm"])
                # the logged parts are weighted: they sum to the step's loss
                for k, v in j.get("parts", {}).items():
                    if k.startswith("det."):
                        det_sum += v
                    else:
                        kd_sum += v
    except OSError:  # a run that has not logged yet
        return None
    if not ev:
        return None
    wall = None
    # wall time: from the run's first to its last event
    try:
        with open(os.path.join(d, "events.jsonl")) as f:
            ev_lines = [json.loads(x) for x in f if x.strip()]
        ts = [datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in ev_lines if "time" in e]
        if len(ts) > 1:
            wall = (max(ts) - min(ts)).total_seconds()
    except (OSError, ValueError, KeyError):
        pass
    cpu = None
    # CPU seconds of the run's process (one thread: its compute time, not
    # stretched by whatever else the machine ran), where results.sh timed it.
    try:
        with open(d + ".time") as f:
            # "%e %U" (a failed command adds a line before it): the last such line
            lines = [l.split() for l in f if len(l.split()) == 2]
        if lines:
            cpu = float(lines[-1][1])
            wall = wall if wall is not None else float(lines[-1][0])
    except (OSError, ValueError):
        pass
    rec = {"method": method, "seed": int(seed), "steps": last_step, "eval": ev, "wall_s": wall, "cpu_s": cpu,
           "kd_det_ratio": kd_sum / det_sum if det_sum > 0 and kd_sum > 0 else None, "cpu": this_cpu()}
    try:
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        rec["methods"] = cfg.get("distill", {}).get("methods")
        rec["config"] = cfg
        ckpt = cfg.get("teacher", {}).get("checkpoint")
        if ckpt and os.path.exists(ckpt):
            # which teacher: the path alone does not say (the file is replaced when retrained)
            with open(ckpt, "rb") as f:
                rec["teacher_sha256"] = hashlib.sha256(f.read()).hexdigest()
        clip = cfg.get("train", {}).get("clip_norm", 0)
        if clip and norms:
            # a step whose norm passes the clip has every gradient scaled down,
            # the detection loss's with the distillation loss's
            rec["clipped"] = sum(n > clip for n in norms) / len(norms)
            rec["median_grad_norm"] = statistics.median(norms)
    except (OSError, ValueError):
        pass
    return rec


def this_cpu():
    """The CPU the runs were timed on: CPU times from different machines do not mix."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse"
    return f"{model}, {isa}, {os.cpu_count()} cores"


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


args = sys.argv[1:]
from_dir = None
if args and args[0] == "--from":
    from_dir = args[1]
    args = [from_dir] + args[2:]
out, steps = args[0], args[1]
save = args[args.index("--save") + 1] if "--save" in args else None

records, tuned, extra = [], {}, {}
if from_dir:
    for p in sorted(glob.glob(os.path.join(from_dir, "records", "*.json"))):
        r = read_json(p)
        if r:
            records.append(r)
    teacher = read_json(os.path.join(from_dir, "teacher.json"))
    extra = read_json(os.path.join(from_dir, "table.json")) or {}
    matched_steps = extra.get("matched_steps")
    tuned = extra.get("tuned", {})
else:
    for d in sorted(glob.glob(os.path.join(out, "*-seed*"))):
        if os.path.isdir(d):
            r = scan_run(d)
            if r:
                records.append(r)
    teacher = read_json(os.path.join(out, "teacher.json"))
    matched_steps = read_text(os.path.join(out, "matched_steps"))
    for p in glob.glob(os.path.join(out, "tune", "*.best")):
        tuned[os.path.basename(p)[:-5]] = read_text(p)

if save:
    os.makedirs(os.path.join(save, "records"), exist_ok=True)
    for r in records:
        with open(os.path.join(save, "records", f"{r['method']}-seed{r['seed']}.json"), "w") as f:
            json.dump(r, f, indent=1, sort_keys=True)
            f.write("\n")
    if teacher:
        with open(os.path.join(save, "teacher.json"), "w") as f:
            json.dump(teacher, f, indent=1, sort_keys=True)
            f.write("\n")
    table = {"steps": int(steps), "matched_steps": matched_steps, "tuned": tuned}
    pinned = (read_json(os.path.join(save, "table.json")) or {}).get("machines")
    if pinned:
        table["machines"] = pinned  # saving into a pinned directory keeps its letters
    with open(os.path.join(save, "table.json"), "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")

DOMINATES = 10.0  # KD / detection loss from which a method's default weight is called dominating
rows, cpus, ratios, clipped = {}, {}, {}, {}
# Times from different CPUs do not average: a row timed on several
# machines shows one mean per machine (A, B, ... named below the table).
# A results directory may pin the letters (table.json "machines": CPU -> letter),
# so that a record added later does not rename the machines of the others.
machines, machine = dict(extra.get("machines", {})), {}


def per_machine(vals, tags):
    by = {}
    for v, t in zip(vals, tags):
        if v:
            by.setdefault(t, []).append(v)
    if not by:
        return None
    if len(used) == 1:
        return f"{statistics.mean(next(iter(by.values()))) / 60:.1f}"
    return ", ".join(f"{t} {statistics.mean(v) / 60:.1f}" for t, v in sorted(by.items()))


for r in records:
    m = r["method"]
    rows.setdefault(m, []).append((r["seed"], r["eval"], r.get("wall_s")))
    cpus.setdefault(m, []).append(r.get("cpu_s"))
    cpu = r.get("cpu") or "?"
    if cpu not in machines:
        machines[cpu] = next(chr(c) for c in range(ord("A"), ord("Z") + 1) if chr(c) not in machines.values())
    machine.setdefault(m, []).append(machines[cpu])
    if r.get("clipped") is not None:
        clipped.setdefault(m, []).append(r["clipped"])
    if r.get("kd_det_ratio"):
        ratios.setdefault(m, []).append(r["kd_det_ratio"])

if "--matched-steps" in args:
    base_cpu = [c for c in cpus.get("baseline", []) if c]
    kd_cpu = [c for m, cc in cpus.items() if not m.startswith("baseline") and not m.endswith("-tuned")
              for c in cc if c]
    if not base_cpu or not kd_cpu:
        sys.exit("results_table.py: no timed baseline and distillation runs in " + out)
    print(int(round(int(steps) * statistics.mean(kd_cpu) / statistics.mean(base_cpu) / 100.0)) * 100)
    sys.exit(0)

if "--dominating" in args:
    print(" ".join(m for m, rr in sorted(ratios.items())
                   if not m.endswith("-tuned") and statistics.mean(rr) >= DOMINATES))
    sys.exit(0)

used = {t for tags in machine.values() for t in tags}  # the letters these records use

order = ["baseline", "baseline-matched", "baseline-12k", "baseline-inherit"]
for m in ["fitnet", "defeat", "fgd", "pkd", "cwd", "logitkd"]:
    order += [m, m + "-tuned"]
order += ["csgr", "csgr-cat", "csgr-rel", "rm", "pfi", "icd", "lgd"]
order += sorted(m for m in rows if m not in order)

keys = ["AP", "AP50", "AP75", "APs", "APm"]
base = [100 * e["AP"] for _, e, _ in rows.get("baseline", [])]
matched = [100 * e["AP"] for _, e, _ in rows.get("baseline-matched", [])]


def gap_closed(ap, b):
    t = 100 * teacher["AP"]
    return f"{100 * (ap - b) / (t - b):.0f}%" if t > b else "–"


print("| method | seeds | " + " | ".join(keys) + " | gap closed (default baseline) | gap closed (matched-compute baseline) "
      "| KD / detection loss | steps clipped | wall min/run | CPU min/run |")
print("|---|---|" + "---|" * (len(keys) + 6))
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
    wall = per_machine([x for _, _, x in r], machine[m]) or "?"
    cpu = per_machine(cpus[m], machine[m]) or "–"
    seeds = ",".join(str(s) for s, _, _ in r)
    label = {"baseline-12k": "baseline, 2x schedule (12000 steps)",
             "baseline-matched": f"baseline at matched compute ({matched_steps or '?'} steps)",
             "baseline-inherit": "baseline, neck and head from the teacher (student.init_from_teacher: ICD's control)",
             "csgr": "csgr, both parts [INFERRED formulation, no published code]",
             "csgr-cat": "csgr, category part only (csgr.alpha_rel=0) [INFERRED]",
             "csgr-rel": "csgr, relation part only (csgr.alpha_cat=0) [INFERRED]",
             "rm": "rm [mmrazor's port, not the authors' code]",
             "pfi": "pfi [mmrazor's port, not the authors' code]",
             "icd": "icd (preset distill-icd.json)",
             "lgd": "lgd (no teacher)"}.get(m, m)
    if m.endswith("-tuned"):
        label = f"{m[:-6]}, tuned: weight x{tuned.get(m[:-6], '?')} (chosen on data.holdout, not val)"
    # The distillation loss against the detection loss, summed over the
    # run's logged steps; an order of magnitude or more is marked.
    rr = ratios.get(m, [])
    rq = statistics.mean(rr) if rr else 0
    ratio = "–" if m.startswith("baseline") or not rr else f"{rq:.1f}x" + (" (dominates)" if rq >= DOMINATES else "")
    cl = clipped.get(m, [])
    clip = f"{100 * statistics.mean(cl):.0f}%" if cl else "?"
    print(f"| {label} | {seeds} | " + " | ".join(cells) + f" | {gap} | {gapm} | {ratio} | {clip} | {wall} | {cpu} |")
if teacher:
    cells = [f"{100 * teacher[k]:.1f}" for k in keys]
    print("| teacher (shipped) | – | " + " | ".join(cells) + " | – | – | – | – | – | – |")
if len(used) > 1:
    print("\ntimes by machine: " + "; ".join(f"{t} = {c}" for c, t in sorted(machines.items(), key=lambda x: x[1])
                                            if t in used))
