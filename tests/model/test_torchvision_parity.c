/* Our detector is torchvision's RetinaNet: a checkpoint of ours (ResNet-18
 * at width 64, FPN, P6/P7 from P5, GroupNorm head) loads into
 * torchvision.models.detection.RetinaNet by name with no missing or extra
 * tensors, and gives the same FPN features and head outputs (eval mode)
 * to 1e-4 relative. Skips (77) without torch/torchvision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/rng.h"
#include "model/detector.h"
#include "model/safetensors.h"

static void compare(KdSafetensors *st, const char *name, const KdTensor *t) {
  float *want = malloc(t->numel * sizeof(float));
  KdError err;
  CHECK_MSG(kd_safetensors_read_f32(st, name, want, t->numel, &err) == 0, "%s: %s", name, err.msg);
  double peak = 0, worst = 0;
  for (size_t i = 0; i < t->numel; i++) peak = fmax(peak, fabs(want[i]));
  for (size_t i = 0; i < t->numel; i++) worst = fmax(worst, fabs(want[i] - t->data[i]) / (peak + 1e-12));
  CHECK_MSG(worst <= 1e-4, "%s: worst difference %.3g of the peak %.3g", name, worst, peak);
  printf("%-8s max |ours - torchvision| / peak = %.2g\n", name, worst);
  free(want);
}

int main(void) {
  const char *root = getenv("KD_SOURCE_ROOT");
  if (access("/usr/bin/python3", X_OK) != 0 || !root) {
    printf("skipped: /usr/bin/python3 or KD_SOURCE_ROOT missing\n");
    return 77;
  }
  KdError err;
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.depth = 18, mc.width = 64, mc.fpn_channels = 64, mc.extra_levels = 2, mc.head_gn = 1, mc.bn = KD_BN_EVAL;
  KdModel *m = kd_model_new(&mc, 3, &err);
  CHECK(m != NULL);
  /* Non-trivial BN statistics and GN affine so eval-mode BN matters. */
  KdRng r;
  kd_rng_seed(&r, 9, 9);
  KdParams *p = kd_model_params(m);
  for (int i = 0; i < kd_params_count(p); i++) {
    KdTensor *t = kd_params_at(p, i);
    if (strstr(t->name, "running_var") || ((strstr(t->name, "bn") || strstr(t->name, "downsample.1") || strstr(t->name, ".1.weight")) && t->ndim == 1 && strstr(t->name, "weight")))
      for (size_t j = 0; j < t->numel; j++) t->data[j] = kd_rng_range(&r, 0.5f, 1.5f);
    else if (strstr(t->name, "running_mean") || (t->ndim == 1 && strstr(t->name, "bias")))
      for (size_t j = 0; j < t->numel; j++) t->data[j] = kd_rng_range(&r, -0.2f, 0.2f);
  }
  char wpath[] = "/tmp/kd_tvp_wXXXXXX", ipath[] = "/tmp/kd_tvp_iXXXXXX", opath[] = "/tmp/kd_tvp_oXXXXXX";
  close(mkstemp(wpath)), close(mkstemp(ipath)), close(mkstemp(opath));
  CHECK(kd_safetensors_save(wpath, p, NULL, &err) == 0);
  KdCtx *c = kd_ctx_new(64u << 20);
  KdTensor *x = kd_tensor4(c, 2, 3, 96, 80);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_range(&r, -2, 2);
  const char *names[1] = {"input"};
  const float *data[1] = {x->data};
  int ndims[1] = {4};
  int shapes[1][4] = {{2, 3, 96, 80}};
  CHECK(kd_safetensors_write(ipath, 1, names, data, ndims, (const int(*)[4])shapes, NULL, &err) == 0);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model/torchvision_parity.py %s %s %s", root, wpath, ipath, opath);
  int rc = system(cmd);
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
    printf("skipped: torch/torchvision not installed\n");
    rc = 77;
    goto done;
  }
  CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "oracle failed (%d)", rc);
  kd_ctx_set_grad(c, 0);
  KdDetOut out;
  CHECK(kd_model_forward(m, c, x, 0, &out) == 0);
  KdSafetensors *st = kd_safetensors_open(opath, &err);
  CHECK(st != NULL);
  const char *lv[5] = {"P3", "P4", "P5", "P6", "P7"};
  for (int l = 0; st && l < out.nlev; l++) {
    char nm[32];
    snprintf(nm, sizeof nm, "feat.%s", lv[l]);
    compare(st, nm, out.feat[l]);
    snprintf(nm, sizeof nm, "cls.%s", lv[l]);
    compare(st, nm, out.cls[l]);
    snprintf(nm, sizeof nm, "box.%s", lv[l]);
    compare(st, nm, out.box[l]);
  }
  kd_safetensors_close(st);
  rc = check_status("torchvision_parity");
done:
  unlink(wpath), unlink(ipath), unlink(opath);
  kd_ctx_free(c);
  kd_model_free(m);
  return rc;
}
