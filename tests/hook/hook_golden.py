#!/usr/bin/python3
"""The Python side of the golden files (test_hook_golden.c is the C side):

1. python/kdscope_hook.py still writes tests/hook/golden/hook_run exactly:
   make_golden.py into a temp directory, every log line equal, the
   snapshot's header equal and its arrays equal to 1e-6 (the C test reads
   the committed copy with kdscope's readers, so a change on either side
   shows);
2. the hook's reader reads tests/hook/golden/c_snapshot.safetensors, written
   by kdscope (F16 maps): metadata and every field as test_hook_golden.c's
   c_snapshot() made them;
3. the hook refuses a corrupt snapshot with a message naming the file, and
   formats numbers as kdscope's config does (core/numfmt.c).

usage: hook_golden.py [--write]   (--write regenerates hook_run; exit 77 without torch)
"""
import json
import os
import shutil
import sys
import tempfile

try:
    import numpy as np
    import torch  # noqa: F401
except ImportError:
    print("numpy / torch not available: skipped")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)
import kdscope_hook as kh  # noqa: E402
import make_golden  # noqa: E402
from hook_check import check, finish  # noqa: E402

GOLDEN = os.path.join(HERE, "golden")


if "--write" in sys.argv:
    out = os.path.join(GOLDEN, "hook_run")
    shutil.rmtree(out, ignore_errors=True)
    make_golden.write(out)
    print("wrote", out)
    sys.exit(0)

# 1. the hook writes the golden run directory
tmp = tempfile.mkdtemp(prefix="kd-hook-golden-")
mine = os.path.join(tmp, "run")
make_golden.write(mine)
gold = os.path.join(GOLDEN, "hook_run")
names = sorted(os.path.relpath(os.path.join(d, f), gold) for d, _, fs in os.walk(gold) for f in fs)
mnames = sorted(os.path.relpath(os.path.join(d, f), mine) for d, _, fs in os.walk(mine) for f in fs)
check(names == mnames, "the same files: %s" % mnames)
for name in names:
    a, b = os.path.join(gold, name), os.path.join(mine, name)
    if not os.path.exists(b):
        continue
    if name.endswith(".safetensors"):
        (ma, fa), (mb, fb) = kh.read_snapshot(a), kh.read_snapshot(b)
        check(ma == mb, "%s: the same metadata" % name)
        check(sorted(fa) == sorted(fb), "%s: the same %d fields" % (name, len(fa)))
        bad = [k for k in fa if k in fb and (fa[k].shape != fb[k].shape or fa[k].dtype != fb[k].dtype or
                                            not np.allclose(fa[k], fb[k], rtol=1e-6, atol=1e-7))]
        check(not bad, "%s: every field equal to 1e-6 %s" % (name, bad[:5]))
        ha, hb = (json.loads(open(p, "rb").read()[8:8 + int.from_bytes(open(p, "rb").read(8), "little")]) for p in (a, b))
        strip = lambda h: {k: (v["dtype"], v["shape"], v["data_offsets"]) for k, v in h.items() if k != "__metadata__"}
        check(strip(ha) == strip(hb), "%s: the same dtypes, shapes and offsets" % name)
    else:
        la, lb = open(a).read().splitlines(), open(b).read().splitlines()
        diff = [(x, y) for x, y in zip(la, lb) if x != y]
        check(len(la) == len(lb) and not diff, "%s: %d lines equal %s" % (name, len(la), diff[:2]))

# 2. kdscope's own snapshot through the hook's reader
meta, f = kh.read_snapshot(os.path.join(GOLDEN, "c_snapshot.safetensors"))
check(meta["step"] == 120 and meta["time"] == 1800000000.5 and meta["capture_s"] == 0.125 and meta["img_h"] == 8 and
      meta["img_w"] == 16 and meta["strides"] == [4, 8] and meta["images"] == [{"index": 7, "id": 1007}] and
      meta["t_channels"] == 3 and meta["s_channels"] == 2 and meta["methods"] == "fitnet,defeat" and
      meta["classes"] == ["T-shirt/top", "Bag"], "c_snapshot metadata: %s" % meta)
check(meta["parts"] == {"det.cls": 0.1 + 0.2} and meta["probe_parts"] == {"defeat.neck_bg": 0.25},
      "loss parts exact (%.17g)" % meta["parts"].get("det.cls", -1))
k = np.arange(8 * 16 * 3)
check(f["img0.rgb"].dtype == np.uint8 and f["img0.rgb"].shape == (8, 16, 3) and
      (f["img0.rgb"].ravel() == (k * 5 % 251)).all(), "img0.rgb: U8 (h, w, 3)")
_, raw = kh.read_safetensors(os.path.join(GOLDEN, "c_snapshot.safetensors"))
for l, st in enumerate((4, 8)):
    H, W = 8 // st, 16 // st
    L = kh.level_name(st)
    check(L == "P%d" % (l + 2), "level name of stride %d: %s" % (st, L))
    check(raw["img0.%s.gap" % L].dtype == np.float16 and
          (f["img0.%s.gap" % L] == (0.25 * np.arange(H * W) + l).reshape(H, W)).all(), "img0.%s.gap: F16, exact" % L)
    want = (1.0 / (np.arange(3) + 3)).astype(np.float16).astype(np.float32)
    check((f["img0.%s.t_cattn" % L] == want).all(), "img0.%s.t_cattn rounded to F16: %s" % (L, f["img0.%s.t_cattn" % L]))
check((f["img0.gt"] == np.array([[1, 2, 9, 7, 1, 0]], np.float32)).all(), "img0.gt")
check(raw["grad_fgbg.det"].dtype == np.float32 and
      (f["grad_fgbg.det"].ravel() == (1.0 / (np.arange(4) + 1)).astype(np.float32)).all(), "grad_fgbg.det: F32")
check(kh.fg_map(f["img0.gt"], 4, 2, 4).tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]], "fg_map of the GT box at stride 4")

# 3. bad input, number format
data = open(os.path.join(GOLDEN, "c_snapshot.safetensors"), "rb").read()
bad = os.path.join(tmp, "cut.safetensors")
open(bad, "wb").write(data[:len(data) - 10])
try:
    kh.read_snapshot(bad)
    check(False, "a truncated snapshot is refused")
except ValueError as e:
    check("cut.safetensors" in str(e) and "truncated" in str(e), "a truncated snapshot is refused: %s" % e)
nums = {0.5: "0.5", 1.0: "1", 5e-6: "5e-6", 0.0001: "0.0001", 123456789.0: "123456789", 1e9: "1e9", 0.1 + 0.2: "0.30000000000000004",
        -2.5e-7: "-2.5e-7", 0.0: "0", 100.0: "100", 1.5e10: "1.5e10"}
got = {v: kh.num_format(v) for v in nums}
check(got == nums, "num_format as core/numfmt.c: %s" % got)

# 4. the hook's own refusals
try:
    kh.Run(mine, {"fitnet.weight": 1.0})
    check(False, "a directory holding a run is refused")
except FileExistsError as e:
    check("already holds a run" in str(e), "a directory holding a run is refused: %s" % e)
held = os.path.join(tmp, "held")
os.makedirs(held)
import fcntl  # noqa: E402
fd = os.open(os.path.join(held, "lock"), os.O_RDWR | os.O_CREAT)
os.write(fd, b"4242\n")
fcntl.flock(fd, fcntl.LOCK_EX)
try:
    kh.Run(held, {"fitnet.weight": 1.0})
    check(False, "a locked run directory is refused")
except RuntimeError as e:
    check("pid 4242" in str(e), "a run directory another process drives is refused: %s" % e)
os.close(fd)
r = kh.Run(held, {"fitnet.weight": 1.0}, steps=2)
r.log_step(loss=1.0)
try:
    r.snapshot(np.zeros((1, 8, 8, 3), np.uint8), [np.zeros((0, 6))], (8,), None, [torch.zeros(2, 4, 1, 1)])
    check(False, "a snapshot with too few images is refused")
except ValueError as e:
    check("rgb must be" in str(e) and "2 probe images" in str(e), "a snapshot with too few images is refused: %s" % e)
r.close()
ev = [json.loads(l) for l in open(os.path.join(held, "events.jsonl"))]
check(ev[-1]["event"] == "stop" and ev[-1]["source"] == "run" and ev[-1]["step"] == 1, "ended before its steps: stop (source run)")

# 4b. a non-finite step: not counted, nonfinite + pause, a set and a resume go on
nf = os.path.join(tmp, "nonfinite")
r = kh.Run(nf, {"fitnet.weight": 1.0}, steps=3)
r.log_step(loss=1.0, parts={"det.cls": 1.0})
check(r.log_step(loss=float("nan"), parts={"det.cls": 0.5, "fitnet.feat": float("inf")}) is None and r.step == 1 and r.paused,
      "a non-finite step is not counted and pauses the run")
with open(os.path.join(nf, "control.jsonl"), "a") as f:
    f.write('{"seq":1,"cmd":"set","key":"fitnet.weight","value":"0.1"}\n{"seq":2,"cmd":"resume"}\n')
s = r.poll()
ev = [json.loads(l) for l in open(os.path.join(nf, "events.jsonl"))]
check([(e["event"], e["step"]) for e in ev[1:]] == [("nonfinite", 1), ("pause", 1), ("set", 1), ("resume", 1)] and
      ev[1]["part"] == "fitnet.feat" and ev[1]["reason"] == "non-finite fitnet.feat" and ev[2]["reason"] == "nonfinite" and
      ev[2]["source"] == "run" and s["fitnet.weight"] == 0.1 and not r.paused, "nonfinite, pause (run), set, resume: %s" % ev[1:])
check(len(open(os.path.join(nf, "metrics.jsonl")).read().splitlines()) == 1, "the non-finite step is not in metrics.jsonl")
r.close()

# 5. resume from a checkpoint of the loop's own at step 2 (docs/RUNS.md's cut and replay)
rdir = os.path.join(tmp, "resumed")
shutil.copytree(gold, rdir)
with open(os.path.join(rdir, "metrics.jsonl"), "a") as f:
    f.write('{"step":5,"loss":')  # a torn last line of a killed process
open(os.path.join(rdir, "snapshots", "step_00000009.safetensors.tmp.999999999"), "w").close()
r = kh.Run(rdir, {"distill.methods": "fitnet", "fitnet.weight": 1.0, "train.lr": 0.01}, resume=2, clock=make_golden.clock)
check(r.step == 2 and r.total == 4 and r.settings["fitnet.weight"] == 0.5 and r.settings["train.lr"] == 0.01,
      "resumed at step 2 with the set of step 1 re-applied: %s" % r.settings)
met = [json.loads(l) for l in open(os.path.join(rdir, "metrics.jsonl"))]
rows = open(os.path.join(rdir, "metrics.csv")).read().splitlines()
check([m["step"] for m in met] == [1, 2] and rows[0] == "step,name,value" and all(int(x.split(",")[0]) <= 2 for x in rows[1:]),
      "metrics.jsonl and metrics.csv cut back to step 2")
check(open(os.path.join(rdir, "snapshots", "index.jsonl")).read() == "" and
      os.listdir(os.path.join(rdir, "snapshots")) == ["index.jsonl"], "the snapshot past step 2 and the stale temp removed")
ev = [json.loads(l) for l in open(os.path.join(rdir, "events.jsonl"))]
check(ev[-2]["event"] == "resume" and ev[-2]["step"] == 2 and ev[-2]["dropped_lines"] == 30 and
      ev[-2]["stale_temps_removed"] == 1 and ev[-1] == dict(ev[-1], event="live_restored", sets=1),
      "resume and live_restored events: %s" % ev[-2:])
with open(os.path.join(rdir, "control.jsonl"), "a") as f:
    f.write('{"seq":7,"time":"2027-01-15T08:00:09.000Z","cmd":"stop","pid":4250}\n')
s = r.poll()
ev = [json.loads(l) for l in open(os.path.join(rdir, "events.jsonl"))][len(ev):]
check([e["event"] for e in ev] == ["control_error", "set"] and ev[1]["replayed"] is True and ev[1]["undo"] is True and
      ev[1]["seq"] == 6 and ev[1]["step"] == 2 and s["train.lr"] == 5e-6,
      "commands written before the resume: the set replayed at step 2, handled seqs skipped: %s" % ev)
check(r.stopping, "a stop written after the resume is handled")
r.close()
ev = [json.loads(l) for l in open(os.path.join(rdir, "events.jsonl"))]
check(ev[-1]["event"] == "stop" and ev[-1]["seq"] == 7 and ev[-1]["source"] == "cli", "stop event: %s" % ev[-1])
shutil.rmtree(tmp)
finish()
