#!/usr/bin/python3
"""The engine against the PyTorch twin in one run (docs/PERFORMANCE.md).

Runs `kdscope bench steps --json` twice around `torch_twin.py --skip-r50
--json` (better of the two kdscope runs), then kdscope's teacher training
step at the twin's batch (16), and prints the ratio table. Reports the load
and vmstat's idle/steal before each part: numbers taken under steal or
another process's load are not comparable.
  /usr/bin/python3 tools/bench_twin.py [--kdscope BIN] [--twin PATH] [--steps N]
"""
import argparse, json, os, subprocess, sys

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    load = open("/proc/loadavg").read().split()[0]
    out = subprocess.run(["vmstat", "1", "2"], capture_output=True, text=True).stdout.split("\n")
    head, last = out[1].split(), out[-2].split()
    v = dict(zip(head, last))
    return f"load {load}, idle {v.get('id')}%, steal {v.get('st')}%"


def last_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().split("\n")[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kdscope", default=os.path.join(here, "build/app/kdscope"))
    ap.add_argument("--twin", default=os.path.join(here, "../shared/bench/torch_twin.py"))
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    kd = [a.kdscope, "bench", "steps", "--json", "--steps", str(a.steps)]
    notes = []
    notes.append("kdscope 1: " + machine())
    k1 = last_json(kd)
    notes.append("twin: " + machine())
    tw = last_json(["/usr/bin/python3", a.twin, "--skip-r50", "--json", "--threads", str(k1["threads"])])
    notes.append("kdscope 2: " + machine())
    k2 = last_json(kd)
    notes.append("kdscope batch 16: " + machine())
    k16 = last_json(kd + ["--batch", "16"])
    best = {k: min(k1[k], k2[k]) for k in k1 if k.endswith("_s")}
    peak = max(k["fma_peak_gflops"] for k in (k1, k2, k16))
    rows = [
        ("teacher forward, no tape", "teacher_fwd_s", best["teacher_fwd_s"], k1),
        ("student step (fwd + det. loss + bwd + optimizer)", "student_step_s", best["student_step_s"], k1),
        ("distillation step (teacher fwd + student step + DeFeat)", "distill_step_s", best["distill_step_s"], k1),
        ("teacher training step, batch 16", "teacher_train_step_s", k16["teacher_train_step_s"], k16),
    ]
    print(f"# {k1['blas']}, conv {k1['conv']}, {k1['threads']} threads, FMA peak {peak:.0f} GFLOP/s (best of the runs)")
    for n in notes:
        print("# " + n)
    print("| step | kdscope | GFLOP/s (share of FMA peak) | PyTorch twin | ratio |")
    print("|---|---|---|---|---|")
    for name, key, ours, src in rows:
        g = src[key[:-2] + "_gflops"] * src[key] / ours
        share = g / peak
        print(f"| {name} | {1e3 * ours:.1f} ms | {g:.0f} ({100 * share:.0f}%) | {1e3 * tw[key]:.1f} ms | **{ours / tw[key]:.2f}** |")
    print(f"peak RSS {k1['peak_rss_bytes'] / 2**20:.0f} MiB; step arenas: student {k1['student_arena_bytes'] / 2**20:.0f} MiB, "
          f"teacher training {k1['teacher_arena_bytes'] / 2**20:.0f} MiB, distillation {k1['distill_arena_bytes'] / 2**20:.0f} MiB")


main()
