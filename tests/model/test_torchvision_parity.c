/* Our detector is torchvision's RetinaNet: a checkpoint of ours loads into
 * torchvision.models.detection.RetinaNet by name with no missing or extra
 * tensors, and gives the same FPN features and head outputs (eval mode)
 * to 1e-4 relative. Three builds: ResNet-18 at width 64 with P3..P7 from
 * P5 and a GroupNorm head; ResNet-18 with frozen BN, P2..P6 (the max-pool
 * extra level, Faster R-CNN's FPN); ResNet-101 with P6/P7 from C5
 * (RetinaNet v2's extra block). Skips (77) without torch/torchvision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "parity.h"
#include "core/rng.h"
#include "model/detector.h"
#include "model/safetensors.h"

typedef struct {
  const char *what;
  int depth, first, extra_levels, gn, h, w;
  KdExtraKind extra;
  KdBnMode bn;
} Case;

/* Frozen BN trains nothing of the backbone's norms, everything else. */
static void check_frozen(KdParams *p) {
  int frozen = 0, bad = 0;
  for (int i = 0; i < kd_params_count(p); i++) {
    KdTensor *t = kd_params_at(p, i);
    if (kd_params_kind(p, i) != KD_PARAM_TRAIN) continue;
    int norm = !strncmp(t->name, "backbone.body.", 14) && t->ndim == 1;
    frozen += norm && !t->requires_grad;
    bad += norm == t->requires_grad;
  }
  CHECK_MSG(frozen > 0 && bad == 0, "frozen BN: %d norm tensors frozen, %d tensors wrong", frozen, bad);
}

/* 1: pass, 0: fail, 77: no torch. */
static int run_case(const char *root, const Case *k) {
  printf("%s\n", k->what);
  KdError err;
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = k->depth, mc.backbone.width = 64, mc.backbone.bn = k->bn;
  mc.neck = (KdNeckCfg){.channels = 64, .first_level = k->first, .extra_levels = k->extra_levels, .extra = k->extra};
  mc.head.gn = k->gn;
  KdModel *m = kd_model_new(&mc, 3, &err);
  CHECK_MSG(m != NULL, "%s", err.msg);
  if (!m) return 0;
  KdRng r;
  kd_rng_seed(&r, 9, 9);
  KdParams *p = kd_model_params(m);
  if (k->bn == KD_BN_FROZEN) check_frozen(p);
  parity_perturb_norms(p, &r);
  char wpath[] = "/tmp/kd_tvp_wXXXXXX", ipath[] = "/tmp/kd_tvp_iXXXXXX", opath[] = "/tmp/kd_tvp_oXXXXXX";
  close(mkstemp(wpath)), close(mkstemp(ipath)), close(mkstemp(opath));
  CHECK(kd_safetensors_save(wpath, p, NULL, &err) == 0);
  KdCtx *c = kd_ctx_new(64u << 20);
  KdTensor *x = kd_tensor4(c, 2, 3, k->h, k->w);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_range(&r, -2, 2);
  const char *names[1] = {"input"};
  const float *data[1] = {x->data};
  int ndims[1] = {4};
  int shapes[1][4] = {{2, 3, k->h, k->w}};
  CHECK(kd_safetensors_write(ipath, 1, names, data, ndims, (const int(*)[4])shapes, NULL, &err) == 0);
  static const char *const extras[] = {"p5", "c5", "pool"};
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model/torchvision_parity.py %s %s %s %d %d %s %d %d", root, wpath, ipath,
           opath, k->depth, k->first, extras[k->extra], k->extra_levels, k->gn);
  int rc = system(cmd), result = 1;
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
    result = 77;
    goto out;
  }
  CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "oracle failed (%d)", rc);
  kd_ctx_set_grad(c, 0);
  KdDetOut out;
  CHECK(kd_model_forward(m, c, x, 0, &out) == 0);
  KdSafetensors *st = kd_safetensors_open(opath, &err);
  CHECK(st != NULL);
  KdTensor *const *cls = kd_det_out(&out, "cls"), *const *box = kd_det_out(&out, "box");
  CHECK(out.nlev == 6 - k->first + k->extra_levels);
  for (int l = 0; st && l < out.nlev; l++) {
    const char *lv = out.levels->name[l];
    char nm[32];
    CHECK(out.levels->stride[l] == 1 << (k->first + l));
    snprintf(nm, sizeof nm, "feat.%s", lv);
    parity_tensor(st, nm, out.feat[l], 1e-4);
    snprintf(nm, sizeof nm, "cls.%s", lv);
    parity_tensor(st, nm, cls[l], 1e-4);
    snprintf(nm, sizeof nm, "box.%s", lv);
    parity_tensor(st, nm, box[l], 1e-4);
  }
  kd_safetensors_close(st);
out:
  unlink(wpath), unlink(ipath), unlink(opath);
  kd_ctx_free(c);
  kd_model_free(m);
  return result;
}

int main(void) {
  const char *root = getenv("KD_SOURCE_ROOT");
  if (access("/usr/bin/python3", X_OK) != 0 || !root) {
    printf("skipped: /usr/bin/python3 or KD_SOURCE_ROOT missing\n");
    return 77;
  }
  static const Case cases[] = {
      {"ResNet-18, P3..P7 from P5, GroupNorm head", 18, 3, 2, 1, 96, 80, KD_EXTRA_P6P7_P5, KD_BN_EVAL},
      {"ResNet-18, frozen BN, P2..P6 (max pool)", 18, 2, 1, 0, 96, 80, KD_EXTRA_MAXPOOL, KD_BN_FROZEN},
      /* no GroupNorm here: on the 1x1 P6/P7 maps of a small input it
       * normalises 2 values per group, which magnifies rounding 100x */
      {"ResNet-101, P3..P7 from C5", 101, 3, 2, 0, 96, 80, KD_EXTRA_P6P7_C5, KD_BN_EVAL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (run_case(root, &cases[i]) == 77) {
      printf("skipped: torch/torchvision not installed\n");
      return 77;
    }
  return check_status("torchvision_parity");
}
