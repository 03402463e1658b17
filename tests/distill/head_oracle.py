"""HEAD oracle: recomputes AKD and CKD (KD-METHODS §5.2, §10b) in float64
PyTorch from what test_distill_head --oracle wrote, as LutingWang/HEAD with
todd composes them, not from kdscope's code:

    warm   = min(step / warmup_steps, 1)              (todd WarmupScheduler)
    akd.fcX = weight * akd_weight * warm * F.mse_loss(F.linear(assist.fcX, W, b), teacher.fcX)
    ckd    = weight * ckd_weight * warm * F.mse_loss(F.linear(pix, Wc, bc), teacher.fc2[keep])
    dr.obj = T_obj^2 mean_{labels>0} KL(softmax(t/T_obj) || softmax(s/T_obj)), dr.bg likewise (DeFeat, §1.5)

pix: the student tower at each RoI's (level, image, y, x) as the HEAD code
indexes it (`feat[level][image, :, y, x]`), RoIs with level -1 (GT boxes
added as proposals) dropped. Parts and the gradients of the assistant's
fc1/fc2, the tower levels and the adapters agree within 1e-4 of their
magnitude.

Usage: head_oracle.py FILE.safetensors   (exit 0 ok, 1 fail, 77 no torch)"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
    import torch.nn.functional as F
    from torch_defeat_oracle import read_safetensors
except ImportError as e:  # pragma: no cover
    print(f"skip: {e}")
    sys.exit(77)


def main(path):
    d = read_safetensors(path)
    leaf = {}
    for k in ("assist.fc1", "assist.fc2", "tower.0", "tower.1", "akd.fc1.weight", "akd.fc1.bias", "akd.fc2.weight",
              "akd.fc2.bias", "ckd.weight", "ckd.bias"):
        leaf[k] = d[k].clone().requires_grad_(True)
    warm = min(float(d["step"]) / float(d["warmup_steps"]), 1.0)
    w = float(d["weight"])
    parts = {}
    for fc in ("fc1", "fc2"):
        y = F.linear(leaf["assist." + fc], leaf[f"akd.{fc}.weight"], leaf[f"akd.{fc}.bias"])
        parts["akd." + fc] = w * float(d["akd_weight"]) * warm * F.mse_loss(y, d["teacher." + fc])
    pos = d["pos"].long()
    keep = [r for r in range(pos.shape[0]) if pos[r, 0] >= 0]
    pix = torch.stack([leaf[f"tower.{int(pos[r, 0])}"][pos[r, 1], :, pos[r, 2], pos[r, 3]] for r in keep])
    y = F.linear(pix, leaf["ckd.weight"], leaf["ckd.bias"])
    parts["ckd"] = w * float(d["ckd_weight"]) * warm * F.mse_loss(y, d["teacher.fc2"][keep])
    # DeFeat's decoupled RoI KL (KD-METHODS §1.5 as the paper defines it: the RoIs' own labels,
    # background = 0, each set with its own temperature), F.kl_div summed over classes, mean over the set
    leaf["dr.s"] = d["dr.s"].clone().requires_grad_(True)
    lab = d["dr.labels"].long()
    for name, mask, T in (("dr.obj", lab > 0, float(d["dr.T_obj"])), ("dr.bg", lab == 0, float(d["dr.T_bg"]))):
        kl = F.kl_div(F.log_softmax(leaf["dr.s"][mask] / T, 1), F.softmax(d["dr.t"][mask] / T, 1), reduction="none")
        parts[name] = T * T * kl.sum(1).mean()
    sum(parts.values()).backward()
    bad = 0
    for k, v in parts.items():
        got = float(d["part." + k])
        ok = abs(got - float(v)) <= 1e-4 * max(1.0, abs(float(v)))
        print(f"{k}: C {got:.8g} torch {float(v):.8g} {'ok' if ok else 'MISMATCH'}")
        bad += not ok
    for k, t in leaf.items():
        g = d["grad." + k]
        err = float((g - t.grad).abs().max())
        scale = max(1e-8, float(t.grad.abs().max()))
        ok = err <= 1e-4 * scale
        print(f"grad.{k}: max |diff| {err:.3g} of {scale:.3g} {'ok' if ok else 'MISMATCH'}")
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
