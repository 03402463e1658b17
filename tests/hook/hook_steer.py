#!/usr/bin/python3
"""A real PyTorch training (tests/hook/torch_train.py, through
python/kdscope_hook.py) steered from outside by kdscope's own verbs:
`kdscope set RUN fitnet.weight=...` and `train.lr=...` (while paused),
pause / resume, a setting the loop does not read (refused by the run), a
value out of range (refused by the CLI), and stop on a second run. Checks
that the PyTorch process's own per-step record of the weight and lr changes
exactly at the step the set event names (in effect from step S+1), that
nothing steps while paused, and that kdscope's C readers take the run:
`kdscope export` of curves and snapshot figures, the events CSV.

usage: hook_steer.py KDSCOPE_EXE   (exit 77 without torch / torchvision)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

try:
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError:
    print("torch / torchvision not available: skipped")
    sys.exit(77)

KD = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("KD_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from hook_check import check, finish  # noqa: E402


def kd(*args, expect=0):
    p = subprocess.run([KD] + list(args), capture_output=True, text=True, timeout=120)
    if expect is not None and p.returncode != expect:
        print("kdscope %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        check(False, "kdscope %s exits %d" % (args[0], expect))
    return p


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.endswith("\n")]
    except FileNotFoundError:
        return []


def last_step(run):
    m = [l["step"] for l in lines(os.path.join(run, "metrics.jsonl")) if "loss" in l]
    return m[-1] if m else 0


def wait_for(cond, what, timeout=90):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            check(False, "timed out waiting for " + what)
            return False
        time.sleep(0.05)
    return True


def start(tmp, name, steps, sleep):
    run = os.path.join(tmp, name)
    env = dict(os.environ, KD_SOURCE_ROOT=ROOT, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "torch_train.py"), "--data", data, "--out", run,
                          "--steps", str(steps), "--sleep", str(sleep), "--log", run + ".log"], env=env)
    wait_for(lambda: os.path.exists(os.path.join(run, "lock")) and last_step(run) >= 20, name + " to reach step 20")
    return run, p


def from_step(out):
    m = re.search(r"from step (\d+) on", out)
    return int(m.group(1)) if m else -1


tmp = tempfile.mkdtemp(prefix="kd-hook-")
data = os.path.join(tmp, "data")
p = kd("make-dataset", "--out", data, "--train", "64", "--val", "8", "--size", "64", "--threads", "1", expect=None)
if p.returncode != 0:
    if "fashion-mnist" in p.stderr:
        print("no Fashion-MNIST source (dataset-fashion-mnist): skipped\n" + p.stderr)
        sys.exit(77)
    print(p.stderr)
    sys.exit(1)

# ---- run a: set, pause, set while paused, resume, refused values
run, proc = start(tmp, "a", 300, 0.03)
t0 = time.time()
p = kd("set", run, "fitnet.weight=0.25", "--wait")
s_w = from_step(p.stdout) - 1  # the set event's step: in effect from s_w + 1
check(s_w >= 20 and "fitnet.weight = 0.25 (was 1)" in p.stdout, "kdscope set --wait reports the step: " + p.stdout.strip())
print("set answered in %.2f s" % (time.time() - t0))
p = kd("pause", run, "--wait")
m = re.search(r"pause at step (\d+)", p.stdout)
s_pause = int(m.group(1)) if m else -1
check(s_pause >= s_w, "kdscope pause --wait: " + p.stdout.strip())
p = kd("set", run, "train.lr=0.005", "--wait")
s_lr = from_step(p.stdout) - 1
check(s_lr == s_pause, "a set while paused applies at the paused boundary (step %d)" % s_lr)
time.sleep(0.8)
check(last_step(run) == s_pause, "no step while paused (last logged %d, paused at %d)" % (last_step(run), s_pause))
kd("pause", run, "--wait")  # already paused: the run says so
p = kd("resume", run, "--wait")
check("resume at step %d" % s_pause in p.stdout, "kdscope resume --wait: " + p.stdout.strip())
p = kd("set", run, "fitnet.mask=gt", "--wait", expect=1)
check("refused by the run" in p.stdout and "not a setting this PyTorch run reads" in p.stdout,
      "a setting the loop does not read is refused by the run: " + p.stdout.strip())
p = kd("set", run, "fitnet.weight=1000", expect=1)
check("fitnet.weight" in p.stderr, "an out-of-range value is refused by kdscope set: " + p.stderr.strip())
kd("set", run, "--list")
rc = proc.wait(timeout=300)
check(rc == 0, "the PyTorch process finished (rc %d)" % rc)

# The PyTorch process's own record against the events.
rec = {}
for l in open(run + ".log"):
    st, w, lr = l.split()
    rec[int(st)] = (float(w), float(lr))
check(len(rec) == 300 and sorted(rec) == list(range(1, 301)), "300 steps logged by the PyTorch process")
ev = lines(os.path.join(run, "events.jsonl"))
sets = [e for e in ev if e["event"] == "set"]
check([(e["key"], e["value"], e["old"], e["source"]) for e in sets] ==
      [("fitnet.weight", "0.25", "1", "cli"), ("train.lr", "0.005", "0.02", "cli")], "set events: %s" % sets)
check(all(isinstance(e.get("seq"), int) for e in sets), "set events carry their control seq")
wsw = [s for s in sorted(rec) if s > 1 and rec[s][0] != rec[s - 1][0]]
lsw = [s for s in sorted(rec) if s > 1 and rec[s][1] != rec[s - 1][1]]
check(wsw == [sets[0]["step"] + 1] and rec[wsw[0]][0] == 0.25 and rec[1][0] == 1.0,
      "the loop's fitnet.weight changes 1 -> 0.25 at step %s, the set event's step + 1 = %d" % (wsw, sets[0]["step"] + 1))
check(lsw == [sets[1]["step"] + 1] and rec[lsw[0]][1] == 0.005, "the loop's lr changes at step %s = %d" % (lsw, sets[1]["step"] + 1))
met = [l for l in lines(os.path.join(run, "metrics.jsonl")) if "loss" in l]
check(all(m["stats"]["fitnet.weight"] == rec[m["step"]][0] and m["lr"] == rec[m["step"]][1] for m in met),
      "metrics.jsonl logs the weight and lr each step used")
kinds = [e["event"] for e in ev]
check(kinds[0] == "start" and kinds[-1] == "finish" and "pause" in kinds and "resume" in kinds and
      "set_refused" in kinds and "control_ignored" in kinds, "events: " + ",".join(kinds))
ign = [e for e in ev if e["event"] == "control_ignored"]
check(ign and ign[0]["cmd"] == "pause" and ign[0]["reason"] == "already paused", "a pause while paused: control_ignored")

# kdscope's C readers on the run the hook wrote.
for fig in ("curves", "grid", "gradients", "gradmaps", "attention", "image", "projection"):
    out = os.path.join(tmp, fig + ".png")
    p = kd("export", "--run", run, "--figure", fig, "--out", out)
    check(p.returncode == 0 and os.path.getsize(out) > 1000, "kdscope export --figure " + fig)
p = kd("export", "--run", run, "--csv", "events", "--out", os.path.join(tmp, "events.csv"))
csv = open(os.path.join(tmp, "events.csv")).read()
check(",set,fitnet.weight,0.25,1,cli" in csv, "kdscope export --csv events lists the set")
p = kd("export", "--run", run, "--csv", "metrics", "--out", os.path.join(tmp, "metrics.csv"))
check(",fitnet.feat," in open(os.path.join(tmp, "metrics.csv")).read(), "kdscope export --csv metrics has the parts")

# ---- run b: stop from outside
run, proc = start(tmp, "b", 2000, 0.01)
p = kd("stop", run, "--wait")
rc = proc.wait(timeout=120)
ev = lines(os.path.join(run, "events.jsonl"))
check(rc == 0 and ev[-1]["event"] == "stop" and ev[-1]["source"] == "cli" and isinstance(ev[-1].get("seq"), int)
      and last_step(run) < 2000, "kdscope stop: the loop ends with a stop event at step %d" % ev[-1]["step"])
check("stop at step" in p.stdout, "kdscope stop --wait: " + p.stdout.strip())
p = kd("pause", run, expect=1)
check("no process is running" in p.stderr, "pause on a finished run is refused (the lock is free)")

finish()
