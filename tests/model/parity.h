/* Shared by the torchvision parity tests: comparing a tensor with the
 * oracle's, and norms perturbed so that eval-mode BN and GN matter. */
#ifndef KD_TEST_PARITY_H
#define KD_TEST_PARITY_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "model/safetensors.h"

/* n values of ours against the file's `name`: max |ours - theirs| over the
 * file's peak must be <= tol. Returns that relative difference (-1 when
 * the file lacks it). */
static double parity_compare(KdSafetensors *st, const char *name, const float *ours, size_t n, double tol) {
  float *want = malloc((n ? n : 1) * sizeof(float));
  KdError err;
  int ok = kd_safetensors_read_f32(st, name, want, n, &err) == 0;
  CHECK_MSG(ok, "%s: %s", name, err.msg);
  double peak = 0, worst = 0;
  for (size_t i = 0; ok && i < n; i++) peak = fmax(peak, fabs(want[i]));
  for (size_t i = 0; ok && i < n; i++) worst = fmax(worst, fabs(want[i] - ours[i]) / (peak + 1e-12));
  if (ok) {
    CHECK_MSG(worst <= tol, "%s: worst difference %.3g of the peak %.3g", name, worst, peak);
    printf("  %-16s max |ours - torchvision| / peak = %.2g (peak %.3g)\n", name, worst, peak);
  }
  free(want);
  return ok ? worst : -1;
}

static void parity_tensor(KdSafetensors *st, const char *name, const KdTensor *t, double tol) {
  parity_compare(st, name, t->data, t->numel, tol);
}

/* Non-trivial BN statistics and GN affine so eval-mode BN matters. */
static void parity_perturb_norms(KdParams *p, KdRng *r) {
  for (int i = 0; i < kd_params_count(p); i++) {
    KdTensor *t = kd_params_at(p, i);
    if (strstr(t->name, "running_var") || ((strstr(t->name, "bn") || strstr(t->name, "downsample.1") || strstr(t->name, ".1.weight")) &&
                                           t->ndim == 1 && strstr(t->name, "weight")))
      for (size_t j = 0; j < t->numel; j++) t->data[j] = kd_rng_range(r, 0.5f, 1.5f);
    else if (strstr(t->name, "running_mean") || (t->ndim == 1 && strstr(t->name, "bias")))
      for (size_t j = 0; j < t->numel; j++) t->data[j] = kd_rng_range(r, -0.2f, 0.2f);
  }
}

#endif
