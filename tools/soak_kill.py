#!/usr/bin/python3
"""kill -9 soak of a headless distillation (docs/RELIABILITY.md).

Runs `kdscope distill` once uninterrupted (the reference), then the same
run again, SIGKILLed --kills times at chosen moments, each followed by
`--resume`, until it finishes. Kills cycle through four kinds:
  random      a uniform moment of the process's life (start-up, resume's
              log cut, steps, evaluation, writes);
  checkpoint  0-40 ms after a checkpoint temp file appears (inotify), so
              inside or just after the optimizer/weights writes;
  snapshot    0-0.5 ms after a snapshot file's temp file appears (its
              write takes about a millisecond);
  index       right after a line is appended to snapshots/index.jsonl.
Then checks: every file of the run directory parses; each --resume
restarted from the newest complete checkpoint at the time of the kill
(nothing lost beyond the steps after it); metrics.jsonl and metrics.csv
hold every step once, and every logged loss, lr, grad norm, positive count
and evaluation equals the reference's; every checkpoint is byte-identical
to the reference's and loads (`kdscope eval` on each); every snapshot in
the index reads back.

  /usr/bin/python3 tools/soak_kill.py [--kills 36] [--steps 400] [--seed 1]
      [--kdscope build/app/kdscope] [--work /tmp/kd-soak] [--nice 19] [--data DIR]
Exit 0 when every check holds; prints the figures."""
import argparse
import ctypes
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
IN_CREATE, IN_MODIFY, IN_MOVED_TO = 0x100, 0x2, 0x80
FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL:", msg, flush=True)


class Watch:
    """inotify on a few directories; wait(pred) returns the first name pred accepts."""

    def __init__(self):
        self.fd = LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wd = {}

    def add(self, path, mask):
        if path in self.wd.values() or not os.path.isdir(path):
            return path in self.wd.values()
        wd = LIBC.inotify_add_watch(self.fd, path.encode(), mask)
        if wd >= 0:
            self.wd[wd] = path
        return wd >= 0

    def events(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return []
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i + 16 <= len(buf):
            wd, mask, _, n = struct.unpack_from("iIII", buf, i)
            name = buf[i + 16:i + 16 + n].split(b"\0", 1)[0].decode()
            out.append((self.wd.get(wd, "?"), name, mask))
            i += 16 + n
        return out

    def close(self):
        os.close(self.fd)


def distill_args(a, out=None, resume=None):
    sets = {"train.steps": a.steps, "train.checkpoint_every": a.ckpt, "train.eval_every": a.eval_every,
            "train.eval_images": 16, "train.threads": 1, "train.seed": a.seed, "probe.budget": a.probe_budget}
    cmd = ["nice", "-n", str(a.nice), a.kdscope, "distill", "--quiet"]
    if out:
        cmd += ["--out", out] + (["--data", a.data] if a.data else [])
        for k, v in sets.items():
            cmd += ["--set", f"{k}={v}"]
    else:
        cmd += ["--resume", resume]
    return cmd


def complete_checkpoints(run):
    d = os.path.join(run, "checkpoints")
    names = set(os.listdir(d)) if os.path.isdir(d) else set()
    steps = []
    for n in names:
        m = re.fullmatch(r"step_(\d+)\.safetensors", n)
        if m and f"step_{m.group(1)}.optim.safetensors" in names:
            steps.append(int(m.group(1)))
    return sorted(steps)


def temp_files(run):
    out = []
    for sub in ("", "checkpoints", "snapshots"):
        d = os.path.join(run, sub)
        if os.path.isdir(d):
            out += [os.path.join(sub, n) for n in os.listdir(d) if ".tmp" in n]
    return out


def jsonl(path, torn_ok=False):
    rows = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines and not torn_ok:
        fail(f"{path}: last line has no newline")
    for i, l in enumerate(lines):
        try:
            rows.append(json.loads(l))
        except ValueError:
            if not (torn_ok and i == len(lines) - 1):
                fail(f"{path}: line {i + 1} does not parse: {l[:80]!r}")
    return rows


def max_logged_step(run):
    p = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(p):
        return 0
    return max([r.get("step", 0) for r in jsonl(p, torn_ok=True) if "loss" in r] or [0])


def start_line_step(text):
    m = re.search(r"run directory .* \(step (\d+) of \d+\)", text)
    return int(m.group(1)) if m else None


def kill_moment(a, rng, kind, proc, run):
    """Waits for the moment of this kind of kill; returns what was seen."""
    if kind == "random":
        t = rng.uniform(0.05, a.max_random)
        try:
            proc.wait(t)
        except subprocess.TimeoutExpired:
            pass
        return f"after {t:.2f}s"
    w = Watch()
    deadline = time.time() + 60
    want = {"checkpoint": (os.path.join(run, "checkpoints"), IN_CREATE, lambda n: ".tmp" in n),
            "snapshot": (os.path.join(run, "snapshots"), IN_CREATE, lambda n: n.startswith("step_") and ".tmp" in n),
            "index": (os.path.join(run, "snapshots"), IN_MODIFY | IN_MOVED_TO,
                      lambda n: n == "index.jsonl")}[kind]
    seen = None
    try:
        while seen is None and proc.poll() is None and time.time() < deadline:
            w.add(want[0], want[1])
            for d, n, _ in w.events(0.02):
                if want[2](n):
                    seen = os.path.join(os.path.basename(d), n)
                    break
    finally:
        w.close()
    if seen is None:
        return "no write seen"
    delay = rng.uniform(0, {"checkpoint": 0.040, "snapshot": 0.0005}.get(kind, 0.005))
    time.sleep(delay)
    return f"{delay * 1000:.1f} ms after {seen}"


def run_reference(a, ref):
    if a.reuse_reference and os.path.exists(os.path.join(ref, "metrics.jsonl")):
        with open(os.path.join(ref, "events.jsonl")) as f:
            if '"event":"finish"' in f.read():
                return 0.0
    shutil.rmtree(ref, ignore_errors=True)
    t0 = time.time()
    p = subprocess.run(distill_args(a, out=ref), capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"reference run failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return time.time() - t0


def soak(a, run):
    rng = random.Random(a.seed * 7919 + a.kills)
    shutil.rmtree(run, ignore_errors=True)
    kinds = a.kinds.split(",")
    log, kills, resumes, expect_from, t0 = [], 0, 0, None, time.time()
    cmd = distill_args(a, out=run)
    while True:
        err = open(os.path.join(a.work, "stderr.txt"), "w+")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        if kills < a.kills:
            kind = kinds[kills % len(kinds)]
            seen = kill_moment(a, rng, kind, proc, run)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            kind, seen = "none", ""
            proc.wait()
        err.seek(0)
        text = err.read()
        err.close()
        started = start_line_step(text)
        if expect_from is not None and started is not None and started != expect_from:
            fail(f"resume {resumes} started at step {started}, the newest complete checkpoint was {expect_from}")
        if proc.returncode == 0:
            if started is not None and expect_from is not None:
                log.append({"kind": "final", "resumed_from": started})
            break
        if proc.returncode != -signal.SIGKILL:
            fail(f"process ended with {proc.returncode}: {text[-1500:]}")
            break
        kills += 1
        ck = complete_checkpoints(run)
        logged = max_logged_step(run)
        last_ck = ck[-1] if ck else 0
        tmps = temp_files(run)
        if logged - last_ck > a.ckpt:
            fail(f"kill {kills}: step {logged} logged but the newest complete checkpoint is {last_ck}")
        log.append({"kill": kills, "kind": kind, "when": seen, "logged_step": logged, "checkpoint": last_ck,
                    "lost_steps": logged - last_ck, "temp_files": tmps, "resumed_from": started})
        print(f"kill {kills:2d} {kind:10s} {seen:48s} logged {logged:4d} checkpoint {last_ck:4d}"
              f"{'  temp: ' + ','.join(tmps) if tmps else ''}", flush=True)
        expect_from = last_ck if os.path.exists(os.path.join(run, "config.json")) else None
        if expect_from is None:  # killed before the run directory was made: start again
            shutil.rmtree(run, ignore_errors=True)
            cmd = distill_args(a, out=run)
        else:
            cmd = distill_args(a, resume=run)
            resumes += 1
    return log, kills, resumes, time.time() - t0


def loss_fields(row):
    return {k: row[k] for k in ("loss", "lr", "grad_norm", "num_pos", "parts") if k in row}


def eval_fields(row):
    return {k: v for k, v in row["eval"].items() if k != "seconds"}


def check_logs(ref, run, steps):
    out = {}
    for name in ("metrics.jsonl",):
        a, b = jsonl(os.path.join(ref, name)), jsonl(os.path.join(run, name))
        sa = [r for r in a if "loss" in r]
        sb = [r for r in b if "loss" in r]
        if [r["step"] for r in sb] != list(range(1, steps + 1)):
            fail(f"{name}: steps are not 1..{steps} once each")
        diff = [r["step"] for r, s in zip(sa, sb) if loss_fields(r) != loss_fields(s)]
        if diff:
            fail(f"{name}: {len(diff)} steps differ from the reference, first {diff[0]}")
        ea = [(r["step"], eval_fields(r)) for r in a if "eval" in r]
        eb = [(r["step"], eval_fields(r)) for r in b if "eval" in r]
        if ea != eb:
            fail(f"{name}: evaluations differ: {ea} vs {eb}")
        out["steps"], out["steps_differing"], out["evals"] = len(sb), len(diff), len(eb)
        out["final"] = loss_fields(sb[-1]) if sb else None
        out["final_eval"] = eb[-1][1] if eb else None
    # metrics.csv: step,name,value rows; the losses' rows equal the reference's.
    def csv_rows(p):
        with open(p) as f:
            lines = f.read().split("\n")
        if lines[-1] != "":
            fail(f"{p}: last line has no newline")
        rows = [l.split(",") for l in lines[1:-1]]
        if lines[0] != "step,name,value" or any(len(r) != 3 for r in rows):
            fail(f"{p}: malformed")
        return [r for r in rows if not r[1].endswith("_s") and r[1] != "eval.val.seconds"]
    ca, cb = csv_rows(os.path.join(ref, "metrics.csv")), csv_rows(os.path.join(run, "metrics.csv"))
    if ca != cb:
        fail(f"metrics.csv: {sum(x != y for x, y in zip(ca, cb)) + abs(len(ca) - len(cb))} rows differ from the reference")
    out["csv_rows"] = len(cb)
    ev = jsonl(os.path.join(run, "events.jsonl"))
    out["events"] = {k: sum(e.get("event") == k for e in ev) for k in ("start", "resume", "checkpoint", "finish")}
    if out["events"]["finish"] < 1:
        fail("events.jsonl: no finish event")
    with open(os.path.join(run, "config.json")) as f:
        json.load(f)
    return out


def check_checkpoints(a, ref, run):
    ck_ref, ck = complete_checkpoints(ref), complete_checkpoints(run)
    if ck != ck_ref:
        fail(f"checkpoints: {ck} vs reference {ck_ref}")
    same = 0
    for s in ck:
        for kind in ("", ".optim"):
            n = f"checkpoints/step_{s:08d}{kind}.safetensors"
            with open(os.path.join(ref, n), "rb") as f1, open(os.path.join(run, n), "rb") as f2:
                if f1.read() != f2.read():
                    fail(f"{n} differs from the reference")
                else:
                    same += 1
    loaded = 0
    for s in ck:
        p = subprocess.run(["nice", "-n", str(a.nice), a.kdscope, "eval", "--config", os.path.join(run, "config.json"),
                            "--checkpoint", os.path.join(run, f"checkpoints/step_{s:08d}.safetensors"),
                            "--max-images", "2", "--json"], capture_output=True, text=True)
        if p.returncode:
            fail(f"kdscope eval on checkpoint {s}: {p.stderr[-500:]}")
        else:
            loaded += 1
    return {"checkpoints": len(ck), "files_identical": same, "loaded_by_eval": loaded}


def read_safetensors_header(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    end = max([v["data_offsets"][1] for k, v in hdr.items() if k != "__metadata__"] or [0])
    if 8 + n + end != len(data):
        raise ValueError(f"{path}: {len(data)} bytes, header says {8 + n + end}")
    return hdr


def check_snapshots(run):
    d = os.path.join(run, "snapshots")
    entries = {}
    for r in jsonl(os.path.join(d, "index.jsonl")):
        entries[r["step"]] = r
    ok = 0
    for step, r in sorted(entries.items()):
        try:
            h = read_safetensors_header(os.path.join(d, r["file"]))
            if h["__metadata__"]["format"] != "kdscope-snapshot-1" or os.path.getsize(os.path.join(d, r["file"])) != r["bytes"]:
                raise ValueError("format or size")
            ok += 1
        except (OSError, ValueError, KeyError) as e:
            fail(f"snapshot of step {step}: {e}")
    files = [n for n in os.listdir(d) if n.endswith(".safetensors")]
    named = {r["file"] for r in entries.values()}
    return {"snapshots": len(entries), "read_back": ok, "files_not_in_index": len([n for n in files if n not in named])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=36)
    ap.add_argument("--kinds", default="random,checkpoint,snapshot,index", help="the cycle of kill kinds")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--ckpt", type=int, default=10, help="train.checkpoint_every")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--probe-budget", type=float, default=0.5)
    ap.add_argument("--max-random", type=float, default=6.0, help="latest random kill, seconds after start")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nice", type=int, default=19)
    ap.add_argument("--kdscope", default=os.path.join(ROOT, "build", "app", "kdscope"))
    ap.add_argument("--work", default="/tmp/kd-soak")
    ap.add_argument("--data", help="data set directory (default: the default fashion-det set)")
    ap.add_argument("--reuse-reference", action="store_true",
                    help="keep a finished reference run in WORK (same options) instead of running it again")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    ref, run = os.path.join(a.work, "reference"), os.path.join(a.work, "soak")
    t_ref = run_reference(a, ref)
    print(f"reference: {a.steps} steps uninterrupted in {t_ref:.0f}s" if t_ref else "reference: reused", flush=True)
    log, kills, resumes, t_soak = soak(a, run)
    res = {"kills": kills, "resumes": resumes, "seconds_reference": round(t_ref, 1), "seconds_soak": round(t_soak, 1),
           "kinds": {k: sum(e.get("kind") == k for e in log) for k in ("random", "checkpoint", "snapshot", "index")},
           "kills_leaving_temp_files": sum(bool(e.get("temp_files")) for e in log if "kill" in e),
           "steps_recomputed": sum(e.get("lost_steps", 0) for e in log),
           "max_lost_steps": max([e.get("lost_steps", 0) for e in log] or [0])}
    res.update(check_logs(ref, run, a.steps))
    res.update(check_checkpoints(a, ref, run))
    res.update(check_snapshots(run))
    res["stale_temp_files"] = temp_files(run)
    with open(os.path.join(a.work, "soak.json"), "w") as f:
        json.dump({"result": res, "kills": log}, f, indent=1)
    print(json.dumps(res, indent=1))
    print(f"soak: {'FAILED: ' + str(len(FAILS)) + ' problems' if FAILS else 'every check held'}; details in {a.work}/soak.json")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
