"""kdscope_hook: a PyTorch training loop writes a kdscope run directory.

The run directory is the one `kdscope train|distill` writes (docs/RUNS.md,
docs/SNAPSHOTS.md), so `kdscope window --follow RUN`, `kdscope export` and
`kdscope set|pause|resume|stop RUN` work on it; and the hook reads the run's
control file at each step boundary, so a change sent from outside reaches the
loop at its next step, logged with the step it took effect as the C run logs
it. Standard library + numpy (+ torch for tensors and gradients); no install:
put this directory on PYTHONPATH. docs/HOOK.md has the walk-through.

    import kdscope_hook as kh
    run = kh.Run("runs/mine", settings={"distill.methods": "fitnet", "fitnet.weight": 1.0}, steps=300)
    for step in range(1, 301):
        s = run.poll()                   # applies control commands; waits while paused
        if run.stopping: break
        loss = det + s["fitnet.weight"] * feat
        ...
        run.log_step(loss=loss.item(), parts={"det.cls": ..., "fitnet.feat": ...}, lr=lr)
        if run.probe_due():
            run.snapshot(rgb, gt, strides, t_feats, s_feats, losses={"det": det, "fitnet": feat_w})
    run.close()
"""
import fcntl
import json
import math
import os
import struct
import time

import numpy as np

try:
    import torch
except ImportError:  # the reader and the logs work without torch
    torch = None

SNAPSHOT_FORMAT = "kdscope-snapshot-1"
COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


# ---------------------------------------------------------------- formats
def num_format(v):
    """A number as kdscope's config prints it (core/numfmt.c): the fewest
    significant digits that read back as the same double, fixed notation for
    exponents -4..8, else "5e-6" (no "+", no leading zeros)."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else "%g" % v
    p = 1
    while p < 17 and float("%.*e" % (p - 1, v)) != v:
        p += 1
    e = int(("%.*e" % (p - 1, v)).split("e")[1])
    if -4 <= e < 9:
        return "%.*f" % (max(p - 1 - e, 0), v)
    return "%se%d" % (("%.*e" % (p - 1, v)).split("e")[0], e)


def _g7(v):
    """%.7g as the C writers print metrics (runlog)."""
    return "%.7g" % float(v)


def _j7(v):
    """_g7 for a JSON line: null for a non-finite value (readers skip it)."""
    return _g7(v) if math.isfinite(float(v)) else "null"


def iso_time(t=None):
    t = time.time() if t is None else t
    ms = int((t - math.floor(t)) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % ms


def _esc(s):
    return json.dumps(str(s), ensure_ascii=False)[1:-1]


def _append_line(path, line):
    """One line with one write(2) on an O_APPEND descriptor (core/fileio.c):
    a kill leaves whole lines and at most one torn last line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        data = (line + "\n").encode()
        if os.write(fd, data) != len(data):
            raise OSError("%s: short write" % path)
    finally:
        os.close(fd)


def _write_atomic(path, data):
    """temp + fsync + rename, the temp named NAME.tmp.PID as the C side's
    (a resume removes a killed process's)."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove_stale_temps(d):
    """NAME.tmp.PID files of processes that are gone (core/fileio.c)."""
    n = 0
    for name in os.listdir(d) if os.path.isdir(d) else []:
        head, _, pid = name.rpartition(".tmp.")
        if not head or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        os.remove(os.path.join(d, name))
        n += 1
    return n


def _nest(flat):
    """{"fitnet.weight": 1} -> {"fitnet": {"weight": 1}} (config.json's layout)."""
    out = {}
    for key, v in flat.items():
        parts = key.split(".")
        o = out
        for p in parts[:-1]:
            o = o.setdefault(p, {})
        o[parts[-1]] = v
    return out


# ---------------------------------------------------------------- safetensors
_DT = {"U8": (np.uint8, 1), "F16": (np.float16, 2), "F32": (np.float32, 4), "F64": (np.float64, 8),
       "I64": (np.int64, 8), "I32": (np.int32, 4)}


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered (name, numpy array) pairs, U8 / F16 / F32; written
    whole (temp + fsync + rename). Returns the file's size."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.uint8): "U8", np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}.get(a.dtype)
        if dt is None:
            raise ValueError("%s: %s has dtype %s (U8, F16 or F32 expected)" % (path, name, a.dtype))
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    data = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    _write_atomic(path, data)
    return len(data)


def read_safetensors(path):
    """(metadata dict or None, {name: numpy array}); a bad file raises
    ValueError naming it and what is wrong."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: not a safetensors file (shorter than 8 bytes)" % path)
    (hlen,) = struct.unpack("<Q", raw[:8])
    if hlen > len(raw) - 8:
        raise ValueError("%s: header of %d bytes in a %d-byte file (truncated?)" % (path, hlen, len(raw)))
    try:
        header = json.loads(raw[8:8 + hlen].decode())
    except ValueError as e:
        raise ValueError("%s: header is not JSON (%s)" % (path, e))
    meta = header.pop("__metadata__", None)
    body = memoryview(raw)[8 + hlen:]
    out = {}
    for name, d in header.items():
        if d.get("dtype") not in _DT:
            raise ValueError("%s: %s: dtype %r is not one of %s" % (path, name, d.get("dtype"), ", ".join(_DT)))
        dt, size = _DT[d["dtype"]]
        a, b = d["data_offsets"]
        shape = tuple(d["shape"])
        if not (0 <= a <= b <= len(body)) or b - a != size * int(np.prod(shape, dtype=np.int64)):
            raise ValueError("%s: %s: data_offsets %s do not fit shape %s %s (file truncated?)" % (path, name, [a, b], list(shape), d["dtype"]))
        out[name] = np.frombuffer(body[a:b], dtype=np.dtype(dt).newbyteorder("<")).reshape(shape)
    return meta, out


def read_snapshot(path):
    """A snapshot file (the hook's or kdscope's own): (metadata dict, fields);
    img<i>.rgb are (h, w, 3) uint8, the other fields float32."""
    meta, fields = read_safetensors(path)
    if not meta or meta.get("format") != SNAPSHOT_FORMAT or "snapshot" not in meta:
        raise ValueError('%s: not a kdscope snapshot (metadata "format" should be "%s")' % (path, SNAPSHOT_FORMAT))
    snap = json.loads(meta["snapshot"])
    for k in ("step", "img_h", "img_w", "images", "strides", "methods", "classes"):
        if k not in snap:
            raise ValueError("%s: snapshot metadata lacks %s" % (path, k))
    return snap, {k: (v if v.dtype == np.uint8 else v.astype(np.float32)) for k, v in fields.items()}


# ---------------------------------------------------------------- maps
def level_name(stride):
    """"P3" for stride 8 (probe/snapshot.c)."""
    return "P%d" % int(round(math.log2(stride)))


def box_cells(b, st, H, W):
    """Cells of an H x W level (stride st) a box covers, inclusive x0, y0, x1,
    y1, as probe/maps.c's kd_map_box_cells: centres inside, else the cell of
    the box centre; None for a box off the map."""
    f32 = np.float32
    ax, bx = int(math.ceil(f32(b[0]) / f32(st) - f32(0.5))), int(math.floor(f32(b[2]) / f32(st) - f32(0.5)))
    ay, by = int(math.ceil(f32(b[1]) / f32(st) - f32(0.5))), int(math.floor(f32(b[3]) / f32(st) - f32(0.5)))
    ax, ay, bx, by = max(ax, 0), max(ay, 0), min(bx, W - 1), min(by, H - 1)
    if ax > bx or ay > by:
        cx, cy = f32(0.5) * (f32(b[0]) + f32(b[2])), f32(0.5) * (f32(b[1]) + f32(b[3]))
        if cx < 0 or cy < 0 or cx > W * st or cy > H * st:
            return None
        ax = bx = min(max(int(math.floor(cx / f32(st))), 0), W - 1)
        ay = by = min(max(int(math.floor(cy / f32(st))), 0), H - 1)
    return ax, ay, bx, by


def fg_map(gt, st, H, W):
    """1 on the cells of the non-crowd GT boxes (rows x1,y1,x2,y2,label,crowd)."""
    m = np.zeros((H, W), np.float32)
    for row in np.asarray(gt, np.float32).reshape(-1, 6):
        if row[5] != 0:
            continue
        c = box_cells(row[:4], st, H, W)
        if c:
            m[c[1]:c[3] + 1, c[0]:c[2] + 1] = 1
    return m


def roi_avg(x, st, b):
    """x (C, H, W): the mean over the box's cells (box_cells), zeros when none."""
    c = box_cells(b, st, x.shape[1], x.shape[2])
    if c is None:
        return np.zeros(x.shape[0], np.float32)
    return x[:, c[1]:c[3] + 1, c[0]:c[2] + 1].astype(np.float64).mean((1, 2)).astype(np.float32)


def pca2(X):
    """probe/maps.c's kd_pca2 on rows X (M, C): mean (C), the two leading
    unit axes (2, C) with the largest |entry| made positive (zeros past the
    rank), var (3) = the variance along each and the total (/ (M - 1))."""
    X = np.asarray(X, np.float64)
    M, C = X.shape
    mean = X.mean(0) if M else np.zeros(C)
    axes, var = np.zeros((2, C)), np.zeros(3)
    if M >= 2:
        cov = (X - mean).T @ (X - mean) / (M - 1)
        w, v = np.linalg.eigh(cov)
        var[2] = np.trace(cov)
        for k in range(min(2, C)):
            if w[-1 - k] <= 1e-12 * (var[2] + 1e-300):
                break
            ax = v[:, -1 - k]
            ax = ax * (-1 if ax[np.argmax(np.abs(ax))] < 0 else 1)
            axes[k], var[k] = ax / np.linalg.norm(ax), w[-1 - k]
    return mean.astype(np.float32), axes.astype(np.float32), var.astype(np.float32)


def retina_level(strides, anchor_mult=4.0):
    """A box's level as a RetinaNet head assigns it: the stride whose anchor
    (anchor_mult x stride) is closest in log size to sqrt(w h)."""
    def level(b):
        size = math.sqrt(max(b[2] - b[0], 1e-6) * max(b[3] - b[1], 1e-6))
        return int(np.argmin([abs(math.log2(size) - math.log2(anchor_mult * st)) for st in strides]))
    return level


def _np(x):
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, np.float32)


def _sattn(x, temp):  # x (C, H, W): H*W softmax_hw(mean_c |x| / temp)
    a = np.abs(x.astype(np.float64)).mean(0).ravel() / temp
    e = np.exp(a - a.max())
    return (x.shape[1] * x.shape[2] * e / e.sum()).reshape(x.shape[1:]).astype(np.float32)


def _cattn(x, temp):  # C softmax_c(mean_hw |x| / temp)
    a = np.abs(x.astype(np.float64)).reshape(x.shape[0], -1).mean(1) / temp
    e = np.exp(a - a.max())
    return (x.shape[0] * e / e.sum()).astype(np.float32)


# ---------------------------------------------------------------- the run
class Run:
    """One run directory written by a PyTorch training loop.

    settings: the live settings the loop reads, under kdscope's names
      ({"distill.methods": "fitnet", "fitnet.weight": 1.0, "train.lr": 0.01});
      they go to config.json, so `kdscope set` checks values against
      kdscope's own descriptors (ranges, live or not). A set of a key not in
      settings is refused (set_refused), as the loop would not read it.
    config: other kdscope settings to record (e.g. {"data.size": 64});
      keys starting with "_" are kept and ignored by kdscope (the hook puts
      "_hook" there).
    steps: the planned number of steps (train.steps: the window's progress).
    clock: time source (tests pass a fixed one).
    pause_on_nonfinite: a step logged with a non-finite loss, part or
      gradient norm pauses the run (the next poll() waits), as kdscope
      does, so that a `kdscope set` and a resume can go on.
    resume: a step C (your own checkpoint's) to continue an existing run
      directory from, as `--resume` does (docs/RUNS.md): the logs are cut
      back to step C (a torn last line dropped), snapshots past it removed,
      the set events that survived re-applied to settings (config.json's
      values first), and control commands written since are read again as
      "before this process started" (sets replayed, pause/resume/stop
      ignored). Restoring the model and optimizer is yours.
    """

    def __init__(self, run_dir, settings, config=None, steps=None, mode="distill", clock=None, probe_budget=0.1,
                 probe_min_interval=10, probe_max_interval=0, resume=None, pause_on_nonfinite=True):
        self.dir = str(run_dir)
        self.pause_on_nonfinite = pause_on_nonfinite
        self.clock = clock or time.time
        self.settings = {}
        self._types = {}
        for k, v in settings.items():
            self._types[k] = bool if isinstance(v, bool) else int if isinstance(v, int) else float if isinstance(v, float) else str
            self.settings[k] = v
        self.step = 0            # steps completed (the events' "step")
        self.total = steps
        self.paused = False
        self.stopping = False
        self._stop_extra = None
        self._closed = False
        self._applied_seq = 0
        self._ctl_off = 0
        self._ctl_buf = b""
        self._ctl_start = 0
        self.probe_budget, self.probe_min, self.probe_max = probe_budget, probe_min_interval, probe_max_interval
        self._step_avg = None
        self._next_probe = 0
        self._last_t = None
        if resume is not None:
            self._resume(int(resume))
            return
        os.makedirs(self.dir, exist_ok=True)
        cfg_path = os.path.join(self.dir, "config.json")
        if os.path.exists(cfg_path):
            raise FileExistsError("%s already holds a run (use another directory)" % self.dir)
        self._lock_fd = self._lock()
        flat = dict(config or {})
        flat.update({k: v for k, v in settings.items()})
        if steps is not None:
            flat["train.steps"] = int(steps)
        cfg = _nest({k: v for k, v in flat.items() if not k.startswith("_")})
        cfg["_hook"] = {"writer": "kdscope_hook.py"}
        for k, v in flat.items():
            if k.startswith("_"):
                cfg[k] = v
        _write_atomic(cfg_path, (json.dumps(cfg, indent=2) + "\n").encode())
        self.event("start", {"mode": mode, "writer": "torch"})

    # -- resume (rundir.c's cut, control.c's replay)
    def _resume(self, step):
        cfg_path = os.path.join(self.dir, "config.json")
        if not os.path.exists(cfg_path):
            raise FileNotFoundError("%s: not a run directory (no config.json)" % self.dir)
        self._lock_fd = self._lock()
        flat = {}

        def walk(o, prefix):
            for k, v in o.items():
                if isinstance(v, dict) and not k.startswith("_"):
                    walk(v, prefix + k + ".")
                else:
                    flat[prefix + k] = v
        walk(json.load(open(cfg_path)), "")
        for k in self.settings:
            if k in flat:
                v = flat[k]
                self.settings[k] = self._parse(k, ("true" if v else "false") if isinstance(v, bool) else str(v))
        if self.total is None and isinstance(flat.get("train.steps"), (int, float)):
            self.total = int(flat["train.steps"])
        dropped = 0
        for name, csv in (("metrics.jsonl", False), ("events.jsonl", False), ("metrics.csv", True)):
            dropped += self._cut(os.path.join(self.dir, name), step, csv)
        index = os.path.join(self.dir, "snapshots", "index.jsonl")
        if os.path.exists(index):
            keep = []
            for line in open(index, "rb").read().split(b"\n"):
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("step", step + 1) <= step:
                    keep.append(line)
                elif "/" not in str(e.get("file", "/")):
                    try:
                        os.remove(os.path.join(self.dir, "snapshots", e["file"]))
                    except OSError:
                        pass
            _write_atomic(index, b"".join(l + b"\n" for l in keep))
        stale = sum(_remove_stale_temps(os.path.join(self.dir, d)) for d in ("", "checkpoints", "snapshots"))
        self.step = step
        self._next_probe = step
        nsets = 0
        for line in open(os.path.join(self.dir, "events.jsonl"), "rb") if os.path.exists(os.path.join(self.dir, "events.jsonl")) else []:
            e = json.loads(line)
            if isinstance(e.get("seq"), int):
                self._applied_seq = max(self._applied_seq, e["seq"])
            if e.get("event") == "set" and e.get("key") in self.settings:
                try:
                    self.settings[e["key"]] = self._parse(e["key"], e["value"])
                    nsets += 1
                except (ValueError, KeyError):
                    pass
        self.event("resume", {"dropped_lines": dropped, "stale_temps_removed": stale})
        if nsets:
            self.event("live_restored", {"sets": nsets})
        ctl = os.path.join(self.dir, "control.jsonl")
        self._ctl_start = os.path.getsize(ctl) if os.path.exists(ctl) else 0

    @staticmethod
    def _cut(path, step, csv):
        """Keeps the complete lines with step <= step (and a CSV's header);
        returns how many were dropped (a torn last line counts)."""
        if not os.path.exists(path):
            return 0
        data = open(path, "rb").read()
        lines = data.split(b"\n")
        torn = lines.pop() != b""
        keep = []
        for i, line in enumerate(lines):
            try:
                s = int(line.split(b",", 1)[0]) if csv and i else json.loads(line)["step"] if not csv else -1
            except (ValueError, KeyError, TypeError):
                s = step + 1
            if s <= step:
                keep.append(line)
        _write_atomic(path, b"".join(l + b"\n" for l in keep))
        return len(lines) - len(keep) + torn

    # -- lock (control.c: flock + pid; the kernel drops it when we die)
    def _lock(self):
        path = os.path.join(self.dir, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = os.pread(fd, 31, 0).decode(errors="replace").strip()
            os.close(fd)
            raise RuntimeError("%s is already being run by another process (pid %s)" % (self.dir, pid or "?"))
        os.ftruncate(fd, 0)
        os.pwrite(fd, ("%d\n" % os.getpid()).encode(), 0)
        return fd

    # -- logs
    def event(self, type_, members=None, step=None):
        """{"step":S,"time":...,"event":type, members...} in events.jsonl."""
        line = '{"step":%d,"time":"%s","event":"%s"' % (self.step if step is None else step, iso_time(self.clock()), _esc(type_))
        for k, v in (members or {}).items():
            line += ',"%s":%s' % (_esc(k), json.dumps(v, separators=(",", ":"), ensure_ascii=False))
        _append_line(os.path.join(self.dir, "events.jsonl"), line + "}")

    def log_step(self, loss, parts=None, lr=0.0, grad_norm=0.0, num_pos=0, step_s=None, data_wait_s=0.0, stats=None):
        """One training step done: a metrics.jsonl line and its metrics.csv
        rows, as runlog's kd_rundir_log_step. Returns the step number; None
        for a non-finite loss, part or gradient norm: that step is not
        counted (call it before opt.step() to skip the update, as kdscope
        does), a `nonfinite` event is logged and, with pause_on_nonfinite,
        the run pauses at the next poll()."""
        parts = {k: float(v) for k, v in (parts or {}).items()}
        bad = [k for k, v in parts.items() if not math.isfinite(v)]
        bad += [] if math.isfinite(float(loss)) else ["loss"]
        bad += [] if math.isfinite(float(grad_norm)) else ["gradient"]
        if bad:
            # As a kdscope run: the step does not count and is not logged;
            # nonfinite, and a pause so that a set (a lower lr, a smaller
            # weight) and a resume can go on.
            self.event("nonfinite", {"reason": "non-finite " + bad[0], "part": bad[0]})
            if self.pause_on_nonfinite and not self.paused:
                self.paused = True
                self.event("pause", {"source": "run", "reason": "nonfinite", "part": bad[0]})
            return None
        now = self.clock()
        if step_s is None:
            step_s = now - self._last_t if self._last_t is not None else 0.0
        self._last_t = now
        self.step += 1
        s = self.step
        line = '{"step":%d,"time":"%s","loss":%s,"lr":%s,"grad_norm":%s,"num_pos":%d,"step_s":%.5f,"data_wait_s":%.5f,"parts":{' % (
            s, iso_time(now), _j7(loss), _j7(lr), _j7(grad_norm), int(num_pos), step_s, data_wait_s)
        line += ",".join('"%s":%s' % (_esc(k), _j7(v)) for k, v in parts.items())
        if stats:
            line += '},"stats":{' + ",".join('"%s":%s' % (_esc(k), _j7(v)) for k, v in stats.items())
        _append_line(os.path.join(self.dir, "metrics.jsonl"), line + "}}")
        csv = os.path.join(self.dir, "metrics.csv")
        if not os.path.exists(csv):
            _append_line(csv, "step,name,value")
        rows = ["%d,loss,%s" % (s, _g7(loss)), "%d,lr,%s" % (s, _g7(lr)), "%d,grad_norm,%s" % (s, _g7(grad_norm))]
        rows += ["%d,%s,%s" % (s, k, _g7(v)) for k, v in list(parts.items()) + list((stats or {}).items())]
        _append_line(csv, "\n".join(rows))
        a = self._step_avg
        self._step_avg = step_s if a is None else 0.8 * a + 0.2 * step_s
        return s

    def log_eval(self, stats, split="val", seconds=0.0, images=0, evaluated=None, left_out=0):
        """A COCO evaluation at the current step: stats {"AP": 0.123, ...}
        (fractions, kdscope's names: COCO_STATS); missing ones are -1."""
        now = self.clock()
        evaluated = images if evaluated is None else evaluated
        line = '{"step":%d,"time":"%s","eval":{"split":"%s","seconds":%.2f,"images":%d,"images_evaluated":%d,"images_left_out":%d' % (
            self.step, iso_time(now), _esc(split), seconds, images, evaluated, left_out)
        vals = [float(stats.get(k, -1)) for k in COCO_STATS]
        line += "".join(',"%s":%.6f' % (k, v) for k, v in zip(COCO_STATS, vals)) + "}}"
        _append_line(os.path.join(self.dir, "metrics.jsonl"), line)
        csv = os.path.join(self.dir, "metrics.csv")
        if not os.path.exists(csv):
            _append_line(csv, "step,name,value")
        _append_line(csv, "\n".join("%d,eval.%s.%s,%.6f" % (self.step, split, k, v) for k, v in zip(COCO_STATS, vals)))

    # -- control (control.c's reader, run.c's handling)
    def _fmt(self, key, v):
        t = self._types[key]
        if t is bool:
            return "true" if v else "false"
        if t is int:
            return "%d" % v
        if t is float:
            return num_format(v)
        return str(v)

    def _parse(self, key, text):
        t = self._types[key]
        if t is bool:
            if text not in ("true", "false", "1", "0"):
                raise ValueError("%s expects true or false, got '%s'" % (key, text))
            return text in ("true", "1")
        if t is int:
            f = float(text)
            if f != int(f):
                raise ValueError("%s expects an integer, got '%s'" % (key, text))
            return int(f)
        if t is float:
            f = float(text)
            if not math.isfinite(f):
                raise ValueError("%s expects a finite number, got '%s'" % (key, text))
            return f
        return text

    def _apply_set(self, cmd, replayed=False):
        key, value = cmd.get("key"), cmd.get("value")
        tail = {}
        if replayed:
            tail["replayed"] = True
        if cmd.get("undo") is True:
            tail["undo"] = True
        tail["seq"] = cmd["seq"]
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = "%.17g" % value
        if not isinstance(key, str) or not key or not isinstance(value, str):
            self.event("control_error", {"message": "control.jsonl: set needs a \"key\" string and a \"value\""})
            return
        msg = None
        if key not in self.settings:
            msg = "%s is not a setting this PyTorch run reads (it reads %s)" % (key, ", ".join(sorted(self.settings)))
        else:
            try:
                new = self._parse(key, value)
            except ValueError as e:
                msg = str(e)
        if msg:
            self.event("set_refused", dict({"key": key, "value": value, "source": "cli", "message": msg}, **tail))
            return
        old = self._fmt(key, self.settings[key])
        self.settings[key] = new
        self.event("set", dict({"key": key, "value": self._fmt(key, new), "old": old, "source": "cli"}, **tail))

    def _handle(self, cmd, before=False):
        kind = cmd.get("cmd")
        seq = cmd["seq"]
        if before and kind != "set":  # meant for a process that is gone
            self.event("control_ignored", {"cmd": kind, "reason": "written before this process started", "seq": seq})
        elif kind == "set":
            self._apply_set(cmd, replayed=before)
        elif kind == "pause":
            if self.paused:
                self.event("control_ignored", {"cmd": "pause", "reason": "already paused", "seq": seq})
            else:
                self.paused = True
                self.event("pause", {"source": "cli", "seq": seq})
        elif kind == "resume":
            if not self.paused:
                self.event("control_ignored", {"cmd": "resume", "reason": "not paused", "seq": seq})
            else:
                self.paused = False
                self.event("resume", {"source": "cli", "seq": seq})
        elif kind == "stop":
            if not self.stopping:
                self.stopping = True
                self._stop_extra = {"source": "cli", "seq": seq}

    def _read_control(self):
        path = os.path.join(self.dir, "control.jsonl")
        try:
            with open(path, "rb") as f:
                f.seek(self._ctl_off)
                new = f.read()
        except FileNotFoundError:
            return
        self._ctl_off += len(new)
        buf = self._ctl_buf + new
        at = self._ctl_off - len(buf)
        while b"\n" in buf:  # a line without its newline waits for the next read
            line, buf = buf.split(b"\n", 1)
            where, at = at, at + len(line) + 1
            if not line.strip():
                continue
            try:
                cmd = json.loads(line.decode())
                if not isinstance(cmd, dict):
                    raise ValueError("malformed JSON")
                seq = cmd.get("seq")
                if isinstance(seq, bool) or not isinstance(seq, (int, float)) or seq < 1:
                    raise ValueError('"seq" must be a positive number')
                if cmd.get("cmd") not in ("set", "pause", "resume", "stop"):
                    raise ValueError('"cmd" must be one of set, pause, resume, stop')
            except ValueError as e:
                msg = str(e) if str(e).startswith(('"seq"', '"cmd"')) else "malformed JSON"
                self.event("control_error", {"message": "control.jsonl at byte %d: %s" % (where, msg)})
                continue
            cmd["seq"] = int(seq)
            if cmd["seq"] <= self._applied_seq:
                continue
            self._applied_seq = cmd["seq"]
            self._handle(cmd, before=where < self._ctl_start)
        self._ctl_buf = buf

    def poll(self):
        """The step boundary: applies the commands written since the last
        call, waits while paused (polling every 100 ms; a stop ends the
        wait) and returns the current settings (a copy). A change logged
        at step S is what steps S+1 on see. Check .stopping after it."""
        self._read_control()
        waited = self.paused
        while self.paused and not self.stopping:
            time.sleep(0.1)
            self._read_control()
        if waited:  # the pause is not the next step's time
            self._last_t = self.clock()
        return dict(self.settings)

    # -- probes
    def probe_due(self):
        """True when a snapshot is due: about probe_budget of training time
        (prober.c's rule: after a capture costing c at step k, the next is
        due at k + clamp(ceil(c / (budget * step time)), min, max))."""
        return self.step >= self._next_probe

    def snapshot(self, rgb, gt, strides, t_feats, s_feats, losses=None, masks=None, gaps=None, det_t=None, det_s=None,
                 classes=(), image_index=None, image_id=None, methods=None, parts=None, probe_parts=None,
                 attn_temp=0.5, f16_maps=False, box_level=None):
        """Writes snapshots/step_<N>.safetensors for the current step and
        appends its line to snapshots/index.jsonl (docs/SNAPSHOTS.md).

        rgb: (N, H, W, 3) uint8, or (N, 3, H, W) float in [0, 1]: the inputs as
          an image. gt: per image an array (G, 6) x1,y1,x2,y2,label,crowd in
          input pixels (or (G, 5) without crowd). strides: per level.
        t_feats, s_feats: per level (N, C, H, W) teacher / student FPN
          features (t_feats None: no teacher fields).
        losses: {"det": tensor, "<method>": tensor (weighted)}: scalar losses
          of the probe images whose graphs reach s_feats; the hook takes
          dL/dS per source (torch.autograd.grad) for grad.<src> and "total".
        masks: {"<method>.<name>": per level (N, H, W) or (N, C)} ->
          img<i>.<L>.mask.<method>.<name>. gaps: {"<method>": per level
          (N, H, W)} -> gap.<method> (the method's loss per cell).
        det_t, det_s: per image (D, 6) x1,y1,x2,y2,score,label.
        box_level: box -> level index, the level a GT box's instance feature
          is pooled on (default retina_level(strides): anchors of 4 x stride);
          the instances (inst.*) are projected on the teacher's PCA (pca.*).
        """
        t0 = self.clock()
        N = len(s_feats[0])
        nlev = len(strides)
        if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8:
            img = rgb
        else:
            a = _np(rgb)
            if a.ndim == 4 and a.shape[1] == 3:
                a = a.transpose(0, 2, 3, 1)
            img = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
        img = np.ascontiguousarray(img)
        if img.shape[0] != N or img.ndim != 4 or img.shape[3] != 3:
            raise ValueError("snapshot: rgb must be (N, H, W, 3) uint8 or (N, 3, H, W) float for the %d probe images, got %s" % (N, list(img.shape)))
        H, W = img.shape[1], img.shape[2]
        gts = []
        for i in range(N):
            g = _np(gt[i]).reshape(-1, _np(gt[i]).shape[-1] if _np(gt[i]).size else 6)
            if g.shape[1] == 5:
                g = np.concatenate([g, np.zeros((len(g), 1), np.float32)], 1)
            if g.shape[1] != 6:
                raise ValueError("snapshot: gt[%d] must be (G, 5) or (G, 6), got %s" % (i, list(g.shape)))
            gts.append(g.astype(np.float32))
        S = [_np(x) for x in s_feats]
        T = [_np(x) for x in t_feats] if t_feats is not None else None
        fields = []

        def add(name, a):
            fields.append((name, np.ascontiguousarray(a, np.float32)))

        for i in range(N):
            add("img%d.gt" % i, gts[i])
            for side, dets in (("t", det_t), ("s", det_s)):
                if dets is not None:
                    add("img%d.det.%s" % (i, side), _np(dets[i]).reshape(-1, 6))
        fg = {}
        for l, st in enumerate(strides):
            L = level_name(st)
            for i in range(N):
                s = S[l][i]
                if T is not None:
                    t = T[l][i]
                    add("img%d.%s.t_energy" % (i, L), (t.astype(np.float64) ** 2).mean(0))
                add("img%d.%s.s_energy" % (i, L), (s.astype(np.float64) ** 2).mean(0))
                if T is not None and T[l].shape[1] == S[l].shape[1]:
                    add("img%d.%s.gap" % (i, L), ((s.astype(np.float64) - T[l][i]) ** 2).mean(0))
                for m, maps in (gaps or {}).items():
                    add("img%d.%s.gap.%s" % (i, L, m), _np(maps[l])[i])
                if T is not None:
                    add("img%d.%s.t_sattn" % (i, L), _sattn(T[l][i], attn_temp))
                    add("img%d.%s.t_cattn" % (i, L), _cattn(T[l][i], attn_temp))
                add("img%d.%s.s_sattn" % (i, L), _sattn(s, attn_temp))
                add("img%d.%s.s_cattn" % (i, L), _cattn(s, attn_temp))
                for name, maps in (masks or {}).items():
                    add("img%d.%s.mask.%s" % (i, L, name), _np(maps[l])[i])
                fg[l, i] = fg_map(gts[i], st, s.shape[1], s.shape[2])
                add("img%d.%s.fg" % (i, L), fg[l, i])
        self._instances(gts, strides, T, S, box_level or retina_level(strides), add)
        if losses:
            self._grad_fields(losses, s_feats, strides, fg, N, add)
        meth = methods if methods is not None else ",".join(k for k in (losses or {}) if k != "det")
        imgs = [{"index": int(image_index[i]) if image_index is not None else i,
                 "id": int(image_id[i]) if image_id is not None else -1} for i in range(N)]
        now = self.clock()
        capture_s = now - t0
        meta = {"step": self.step, "time": now, "capture_s": capture_s, "img_h": H, "img_w": W, "images": imgs,
                "strides": [int(s) for s in strides], "t_channels": int(T[0].shape[1]) if T is not None else 0,
                "s_channels": int(S[0].shape[1]), "attn_temp": attn_temp, "methods": meth,
                "parts": {k: float(v) for k, v in (parts or {}).items()},
                "probe_parts": {k: float(v) for k, v in (probe_parts or {}).items()}, "classes": list(classes)}
        tensors = [("img%d.rgb" % i, img[i]) for i in range(N)]
        for name, a in fields:
            half = f16_maps and name.startswith("img") and ".P" in name
            tensors.append((name, a.astype(np.float16) if half else a))
        sdir = os.path.join(self.dir, "snapshots")
        os.makedirs(sdir, exist_ok=True)
        fname = "step_%08d.safetensors" % self.step
        size = write_safetensors(os.path.join(sdir, fname), tensors,
                                 {"format": SNAPSHOT_FORMAT, "snapshot": json.dumps(meta, separators=(",", ":"))})
        cost = self.clock() - t0
        _append_line(os.path.join(sdir, "index.jsonl"), '{"step":%d,"file":"%s","bytes":%d,"time":%.3f,"capture_s":%.6f}' % (
            self.step, fname, size, now, capture_s))
        step_t = self._step_avg or 0.0
        gap = self.probe_min if step_t <= 0 else max(self.probe_min, math.ceil(cost / (self.probe_budget * step_t)))
        if self.probe_max:
            gap = min(gap, self.probe_max)
        self._next_probe = self.step + gap
        return os.path.join(sdir, fname)

    @staticmethod
    def _instances(gts, strides, T, S, box_level, add):
        """inst.* and pca.* as probe/capture.c's instances(): each non-crowd
        GT box's features averaged over its cells on its level, projected
        on the teacher's two leading axes (the student's own without one)."""
        rows, tf, sf = [], [], []
        for i, g in enumerate(gts):
            for k, b in enumerate(g):
                if b[5] != 0:
                    continue
                l = int(box_level(b[:4]))
                sf.append(roi_avg(S[l][i], strides[l], b[:4]))
                if T is not None:
                    tf.append(roi_avg(T[l][i], strides[l], b[:4]))
                rows.append((i, k, l, b[4]))
        if not rows:
            return
        base = np.array(tf if T is not None else sf)
        mean, axes, var = pca2(base)
        rows = np.array(rows, np.float32)
        for c, name in enumerate(("inst.image", "inst.gt", "inst.level", "inst.label")):
            add(name, rows[:, c])
        if T is not None:
            add("inst.t_xy", (base - mean) @ axes.T)
        if T is None or S[0].shape[1] == T[0].shape[1]:
            add("inst.s_xy", (np.array(sf) - mean) @ axes.T)
        add("pca.mean", mean)
        add("pca.axes", axes)
        add("pca.var", var)

    def _grad_fields(self, losses, s_feats, strides, fg, N, add):
        if torch is None:
            raise RuntimeError("snapshot: losses need torch (gradients by source)")
        names = list(losses)
        gsum = [None] * len(s_feats)
        per = {}
        for name in names:
            loss = losses[name]
            if not (isinstance(loss, torch.Tensor) and loss.requires_grad):  # no graph to the features: zero maps
                per[name] = [None] * len(s_feats)
                continue
            g = torch.autograd.grad(loss, list(s_feats), retain_graph=True, allow_unused=True)
            per[name] = [None if x is None else x.detach().float() for x in g]
            for l, x in enumerate(per[name]):
                if x is not None:
                    gsum[l] = x.clone() if gsum[l] is None else gsum[l] + x
        per["total"] = gsum
        counts = np.zeros((N, len(strides), 2), np.float32)
        stats = {}
        for src in names + ["total"]:
            fb = np.zeros((N, len(strides), 2), np.float32)
            for l, st in enumerate(strides):
                L = level_name(st)
                Hl, Wl = s_feats[l].shape[2], s_feats[l].shape[3]
                g = per[src][l]
                norm = np.zeros((N, Hl, Wl), np.float32) if g is None else g.pow(2).sum(1).sqrt().cpu().numpy()
                for i in range(N):
                    add("img%d.%s.grad.%s" % (i, L, src), norm[i])
                    m = fg[l, i] > 0.5
                    for k, sel in enumerate((m, ~m)):
                        n = int(sel.sum())
                        fb[i, l, k] = float(norm[i][sel].astype(np.float64).mean()) if n else 0.0
                        counts[i, l, k] = n
            stats[src] = fb
        add("fgbg_count", counts)
        for src in names + ["total"]:
            add("grad_fgbg.%s" % src, stats[src])

    # -- end
    def close(self, error=None):
        """Ends the run: an `error` event (error given), `stop` (stopped from
        outside, or fewer than `steps` steps) or `finish`; drops the lock."""
        if self._closed:
            return
        self._closed = True
        if isinstance(error, KeyboardInterrupt):
            self.event("stop", {"source": "signal"})
        elif error is not None:
            self.event("error", {"message": str(error)})
        elif self.stopping or (self.total is not None and self.step < self.total):
            self.event("stop", self._stop_extra or {"source": "run"})
        else:
            self.event("finish")
        os.close(self._lock_fd)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close(error=ev if et is not None else None)
        return False
