#!/usr/bin/python3
"""Parity of `kdscope loss --method head` on HEAD's RoI-level inputs (roi.*,
docs/LOSS-CLI.md) with a PyTorch restatement of the released losses
(LutingWang/HEAD with todd; KD-METHODS §5.2, §10b), written from those
formulas, not from kdscope's code:

    warm    = min(step / warmup_steps, 1)
    akd.fcX = weight * akd_weight * warm * F.mse_loss(F.linear(assist.fcX, W_X, b_X), teacher.fcX)
    ckd     = weight * ckd_weight * warm * F.mse_loss(F.linear(tower[keep], W_c, b_c), teacher.fc2[keep])

keep: the RoIs that are not GT boxes. The assistant's GT loss is not among
these inputs (0). Loss, parts and the gradients w.r.t. roi.assist.fc1/fc2,
roi.tower and the adapters agree to 1e-4 relative; bad inputs are refused
with the tensor named.

Usage: head_loss_oracle.py KDSCOPE. Exits 77 without torch.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_oracle_b as lo  # noqa: E402  (exits 77 without torch)
import numpy as np  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROI = ("roi.assist.fc1", "roi.assist.fc2", "roi.teacher.fc1", "roi.teacher.fc2", "roi.tower")
ADAPT = ("distill.head.akd.fc1", "distill.head.akd.fc2", "distill.head.ckd")


def inputs(rng, r, d, c, gt_rows, step):
    a = {k: rng.standard_normal((r, c if k == "roi.tower" else d)).astype(np.float32) for k in ROI}
    a["roi.teacher.fc1"] *= 3.0  # teacher features of another scale than the assistant's
    a["roi.gt"] = np.array([1.0 if i in gt_rows else 0.0 for i in range(r)], np.float32)
    if step is not None:
        a["step"] = np.array([step], np.float32)
    for name, (o, i) in zip(ADAPT, ((d, d), (d, d), (d, c))):
        a[name + ".weight"] = (0.3 * rng.standard_normal((o, i))).astype(np.float32)
        a[name + ".bias"] = (0.1 * rng.standard_normal(o)).astype(np.float32)
    return a


def oracle(a, weight, w_akd, w_ckd, warmup):
    def fn():
        step = float(a["step"][0]) if "step" in a else float("inf")
        warm = min(step / warmup, 1.0) if warmup > 0 else 1.0
        leaf = {k: lo.t64(a[k], True) for k in ("roi.assist.fc1", "roi.assist.fc2", "roi.tower")}
        for n in ADAPT:
            leaf[n + ".weight"], leaf[n + ".bias"] = lo.t64(a[n + ".weight"], True), lo.t64(a[n + ".bias"], True)
        parts = {"head.assist.cls": lo.t64(0.0), "head.assist.box": lo.t64(0.0)}
        for i, fc in enumerate(("fc1", "fc2")):
            y = F.linear(leaf["roi.assist." + fc], leaf[ADAPT[i] + ".weight"], leaf[ADAPT[i] + ".bias"])
            parts["head.akd." + fc] = weight * w_akd * warm * F.mse_loss(y, lo.t64(a["roi.teacher." + fc]))
        keep = [i for i in range(len(a["roi.gt"])) if a["roi.gt"][i] == 0]
        if keep:
            y = F.linear(leaf["roi.tower"][keep], leaf[ADAPT[2] + ".weight"], leaf[ADAPT[2] + ".bias"])
            parts["head.ckd"] = weight * w_ckd * warm * F.mse_loss(y, lo.t64(a["roi.teacher.fc2"])[keep])
        else:
            parts["head.ckd"] = lo.t64(0.0)
        sum(parts.values()).backward()
        grads = {}
        for k, t in leaf.items():
            g = t.grad if t.grad is not None else 0 * t
            grads["grad." + k] = g.detach().numpy()
        return {k: v.detach() for k, v in parts.items()}, grads
    return fn


def refused(kd, tmp, name, arrays, expect):
    fin = os.path.join(tmp, name + ".in.safetensors")
    lo.st_write(fin, arrays)
    r = subprocess.run([kd, "loss", "--method", "head", "--in", fin], capture_output=True, text=True)
    ok = r.returncode != 0 and expect in r.stderr
    print("%s %s: %s" % ("ok" if ok else "FAIL", name, r.stderr.strip() or r.stdout.strip()))
    return 0 if ok else 1


def main():
    kd = sys.argv[1]
    rng = np.random.default_rng(7)
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        a = inputs(rng, 7, 6, 5, {1, 4}, 30)
        sets = ["head.warmup_steps=80", "head.weight=0.7", "head.ckd_weight=1.5"]
        fails += lo.run_case(kd, tmp, "head_warm", "head", a, sets, oracle(a, 0.7, 2.0, 1.5, 80))
        b = inputs(rng, 5, 4, 3, {0}, None)  # no step: past the warm-up
        fails += lo.run_case(kd, tmp, "head_full", "head", b, [], oracle(b, 1.0, 2.0, 2.0, 200))
        g = inputs(rng, 3, 4, 3, {0, 1, 2}, 500)  # only GT boxes: CKD 0
        fails += lo.run_case(kd, tmp, "head_all_gt", "head", g, [], oracle(g, 1.0, 2.0, 2.0, 200))
        z = inputs(rng, 4, 4, 3, {2}, 0)  # step 0: every weight 0
        fails += lo.run_case(kd, tmp, "head_step0", "head", z, [], oracle(z, 1.0, 2.0, 2.0, 200))
        bad = dict(a)
        del bad["roi.gt"]
        fails += refused(kd, tmp, "missing_gt", bad, "missing tensor 'roi.gt'")
        bad = dict(a)
        bad["roi.teacher.fc2"] = bad["roi.teacher.fc2"][:3]
        fails += refused(kd, tmp, "rows", bad, "roi.teacher.fc2")
        bad = dict(a)
        bad["roi.gt"] = np.full(7, 0.5, np.float32)
        fails += refused(kd, tmp, "flags", bad, "roi.gt[0] = 0.5")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
