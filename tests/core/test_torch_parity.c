/* Parity with PyTorch (tests/core/torch_parity.py, float64) for two
 * conv-BN-ReLU blocks: forward output, every input/parameter gradient and
 * the running-stat update, each within 1e-4 of the tensor's largest
 * magnitude. Skips (77) when /usr/bin/python3 or torch is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"

enum { N = 4, CIN = 6, H = 15, W = 14, C1 = 8, C2 = 6 };
#define HO ((H + 2 - 3) / 2 + 1)
#define WO ((W + 2 - 3) / 2 + 1)

static KdTensor *mk(KdCtx *c, KdRng *r, int ndim, const int *shape, float scale, float shift, int grad, FILE *f) {
  KdTensor *t = kd_tensor_new(c, ndim, shape);
  for (size_t i = 0; i < t->numel; i++) t->data[i] = shift + scale * kd_rng_normal(r);
  t->requires_grad = grad;
  fwrite(t->data, sizeof(float), t->numel, f);
  return t;
}

/* max|got - want| <= 1e-4 * max(max|want|, floor). */
static void compare(const char *what, const float *got, const float *want, size_t n, double floor) {
  double peak = 0.0, err = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) peak = fmax(peak, fabs(want[i]));
  peak = fmax(peak, floor);
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]);
    if (e > err || e != e) err = e, at = i;
  }
  double rel = err / (peak > 0 ? peak : 1.0);
  printf("%-12s %6zu values  max|diff|/max|ref| %.2e\n", what, n, rel);
  CHECK_MSG(rel <= 1e-4, "%s: element %zu: ours %.8g torch %.8g (peak %.3g)", what, at, got[at], want[at], peak);
}

int main(void) {
  const char *py = "/usr/bin/python3", *root = getenv("KD_SOURCE_ROOT");
  if (access(py, X_OK) != 0 || !root) {
    printf("skip: %s or KD_SOURCE_ROOT missing\n", py);
    return 77;
  }
  char in_path[] = "/tmp/kd-parity-in-XXXXXX", out_path[] = "/tmp/kd-parity-out-XXXXXX";
  int fi = mkstemp(in_path), fo = mkstemp(out_path);
  if (fi < 0 || fo < 0) return 1;
  close(fo);
  FILE *f = fdopen(fi, "wb");
  KdRng r;
  kd_rng_seed(&r, 2024, 3);
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *x = mk(c, &r, 4, (int[]){N, CIN, H, W}, 1.0f, 0.5f, 1, f);
  KdTensor *w1 = mk(c, &r, 4, (int[]){C1, CIN, 3, 3}, 0.3f, 0.0f, 1, f);
  KdTensor *b1 = mk(c, &r, 1, (int[]){C1}, 0.5f, 0.0f, 1, f);
  KdTensor *g1 = mk(c, &r, 1, (int[]){C1}, 0.2f, 1.0f, 1, f);
  KdTensor *be1 = mk(c, &r, 1, (int[]){C1}, 0.2f, 0.1f, 1, f);
  KdTensor *rm1 = mk(c, &r, 1, (int[]){C1}, 0.1f, 0.0f, 0, f);
  KdTensor *rv1 = mk(c, &r, 1, (int[]){C1}, 0.1f, 1.0f, 0, f);
  KdTensor *w2 = mk(c, &r, 4, (int[]){C2, C1 / 2, 3, 3}, 0.3f, 0.0f, 1, f);
  KdTensor *g2 = mk(c, &r, 1, (int[]){C2}, 0.2f, 1.0f, 1, f);
  KdTensor *be2 = mk(c, &r, 1, (int[]){C2}, 0.2f, 0.1f, 1, f);
  KdTensor *rm2 = mk(c, &r, 1, (int[]){C2}, 0.3f, 0.2f, 0, f);
  KdTensor *rv2 = mk(c, &r, 1, (int[]){C2}, 0.2f, 1.5f, 0, f);
  KdTensor *rr = mk(c, &r, 4, (int[]){N, C2, HO, WO}, 1.0f, 0.0f, 0, f);
  fclose(f);

  KdTensor *y = kd_conv2d(c, x, w1, b1, (KdConvCfg){.stride = 2, .pad = 1});
  y = kd_relu(c, kd_batchnorm(c, y, g1, be1, rm1, rv1, 1, 0.1f, 1e-5f));
  y = kd_conv2d(c, y, w2, NULL, (KdConvCfg){.pad = 2, .dilation = 2, .groups = 2});
  y = kd_relu(c, kd_batchnorm(c, y, g2, be2, rm2, rv2, 0, 0.1f, 1e-5f));
  KdTensor *loss = kd_sum_all(c, kd_mul(c, y, rr));
  CHECK_MSG(loss && kd_backward(c, loss) == 0, "%s", kd_ctx_error(c));

  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s/tests/core/torch_parity.py %s %s %d %d %d %d %d %d", py, root, in_path, out_path, N, CIN,
           H, W, C1, C2);
  int st = system(cmd);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (code == 77) {
    unlink(in_path);
    unlink(out_path);
    kd_ctx_free(c);
    return 77;
  }
  CHECK_MSG(code == 0, "oracle exited with %d", code);
  KdTensor *outs[11] = {y, x, w1, b1, g1, be1, w2, g2, be2, rm1, rv1};
  const char *names[11] = {"output", "grad x", "grad w1", "grad b1", "grad gamma1", "grad beta1",
                           "grad w2",  "grad gamma2", "grad beta2", "running_mean", "running_var"};
  float *want[11] = {0};
  FILE *o = fopen(out_path, "rb");
  for (int i = 0; code == 0 && o && i < 11; i++) {
    want[i] = malloc(outs[i]->numel * sizeof(float));
    CHECK(fread(want[i], sizeof(float), outs[i]->numel, o) == outs[i]->numel);
  }
  double beta1_peak = 0.0;
  for (int i = 0; want[5] && i < C1; i++) beta1_peak = fmax(beta1_peak, fabs(want[5][i]));
  for (int i = 0; code == 0 && o && loss && i < 11; i++) {
    const float *got = i == 0 || i >= 9 ? outs[i]->data : outs[i]->grad;
    CHECK_MSG(got != NULL, "%s missing", names[i]);
    /* The bias before a training-mode BN has an exactly zero gradient (BN
     * removes the mean); ours is float noise, measured against the scale
     * of that BN's beta gradient. */
    if (got) compare(names[i], got, want[i], outs[i]->numel, i == 3 ? beta1_peak : 0.0);
  }
  for (int i = 0; i < 11; i++) free(want[i]);
  if (o) fclose(o);
  unlink(in_path);
  unlink(out_path);
  kd_ctx_free(c);
  return check_status("torch_parity");
}
