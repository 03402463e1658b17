#!/usr/bin/python3
"""Writes the golden run directory of python/kdscope_hook.py (committed as
tests/hook/golden/hook_run; the C test test_hook_golden reads it, and
hook_golden.py checks that the hook still writes exactly it).

Deterministic: a fixed clock, features from closed forms, losses whose
gradients are elementwise (dL/dS exact in float32 on any machine), and a
control.jsonl in kd_control_append's format handled at step boundaries:
a set (applied), a set of a key the loop does not read (set_refused), a
pause + resume, a resume while running (control_ignored), a malformed line
(control_error), an already-handled seq (skipped).

usage: make_golden.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import kdscope_hook as kh  # noqa: E402

N, C, SIZE, STRIDES = 2, 4, 32, (8, 16)
CLASSES = ["shirt", "shoe"]
GT = [np.array([[2, 3, 17, 20, 0, 0], [18, 18, 30, 31, 1, 0], [0, 0, 4, 4, 1, 1]], np.float32),
      np.array([[9, 9, 11, 12, 1, 0]], np.float32)]  # a box smaller than a cell: its centre's cell


def clock():
    clock.t += 0.25
    return clock.t


clock.t = 1.8e9


def features(side, n, c, h, w):
    """Closed forms: t = sin(0.3 k + 0.1 side) k-indexed, s a scaled cosine."""
    k = np.arange(n * c * h * w, dtype=np.float64).reshape(n, c, h, w)
    if side == "t":
        return np.sin(0.3 * k + 0.1).astype(np.float32)
    return (0.5 * np.cos(0.17 * k) + 0.25).astype(np.float32)


def write(out):
    settings = {"distill.methods": "fitnet", "fitnet.weight": 1.0, "train.lr": 0.01}
    run = kh.Run(out, settings, config={"data.size": SIZE, "train.batch": N}, steps=4, clock=clock)
    ctl = os.path.join(out, "control.jsonl")
    cmds = [
        '{"seq":1,"time":"2027-01-15T08:00:00.000Z","cmd":"set","key":"fitnet.weight","value":"0.5","pid":4242}',
        '{"seq":2,"time":"2027-01-15T08:00:00.000Z","cmd":"set","key":"fitnet.mask","value":"gt","pid":4242}',
        '{"seq":3,"time":"2027-01-15T08:00:01.000Z","cmd":"pause","pid":4243}',
        '{"seq":4,"time":"2027-01-15T08:00:01.500Z","cmd":"resume","pid":4244}',
        '{"seq":5,"time":"2027-01-15T08:00:02.000Z","cmd":"resume","pid":4245}',
        'not json',
        '{"seq":2,"time":"2027-01-15T08:00:03.000Z","cmd":"set","key":"fitnet.weight","value":"7","pid":4246}',
        '{"seq":6,"time":"2027-01-15T08:00:03.000Z","cmd":"set","key":"train.lr","value":"5e-6","undo":true,"pid":4247}',
    ]
    batches = {2: cmds[:2], 3: cmds[2:6], 4: cmds[6:]}
    for step in range(1, 5):
        if step in batches:
            with open(ctl, "a") as f:
                f.write("\n".join(batches[step]) + "\n")
        s = run.poll()
        w = s["fitnet.weight"]
        det = 1.0 / step
        run.log_step(loss=det + w * 0.125, parts={"det.cls": det, "fitnet.feat": w * 0.125}, lr=s["train.lr"],
                     grad_norm=0.5 * step, num_pos=3, step_s=0.125, stats={"fitnet.weight": w})
        if step == 3:
            run.log_eval({"AP": 0.125, "AP50": 0.25}, seconds=1.5, images=2)
            tf, sf = [], []
            for st in STRIDES:
                h = SIZE // st
                tf.append(torch.from_numpy(features("t", N, C, h, h)))
                sf.append(torch.from_numpy(features("s", N, C, h, h)).requires_grad_(True))
            # det: 0.5 sum S^2 (grad S); fitnet: w/2 sum (S - T)^2 (grad w (S - T))
            det_l = sum(0.5 * (x * x).sum() for x in sf)
            fit_l = sum(0.5 * w * (x - t).pow(2).sum() for x, t in zip(sf, tf))
            gaps = [(w * (x - t).pow(2).sum(1) / (N * C * x.shape[2] * x.shape[3])).detach() for x, t in zip(sf, tf)]
            masks = {"fitnet.where": [torch.from_numpy(kh.fg_map(GT[0], st, SIZE // st, SIZE // st)).expand(N, -1, -1)
                                      for st in STRIDES]}
            k = np.arange(N * SIZE * SIZE * 3)
            rgb = ((k * 37) % 256).astype(np.uint8).reshape(N, SIZE, SIZE, 3)
            dets = [np.array([[1, 2, 15, 19, 0.875, 0]], np.float32), np.zeros((0, 6), np.float32)]
            run.snapshot(rgb, GT, STRIDES, tf, sf, losses={"det": det_l, "fitnet": fit_l}, masks=masks,
                         gaps={"fitnet": gaps}, det_t=dets, det_s=dets[::-1], classes=CLASSES, image_index=[3, 5],
                         image_id=[104, 106], methods="fitnet", parts={"det.cls": det, "fitnet.feat": w * 0.125},
                         probe_parts={"det.cls": 0.75, "fitnet.feat": 0.0625})
    run.close()
    os.remove(os.path.join(out, "lock"))  # holds this process's pid


if __name__ == "__main__":
    write(sys.argv[1])
