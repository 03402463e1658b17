/* Criss-cross attention against PyTorch (tests/core/cc_torch.py, float64):
 * a dense masked softmax over all H*W pixels, itself checked there against
 * an mmcv-style column + row formulation. Output, attention weights and
 * the q, k, v gradients of sum(out * R1) + sum(attn * R2), each within
 * 1e-5 of the tensor's largest magnitude, on square, non-square, 1-row
 * and 1-column maps. Skips (77) when /usr/bin/python3 or torch is missing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"

static KdTensor *rnd(KdCtx *c, KdRng *r, int n, int ch, int h, int w, int grad, FILE *f) {
  KdTensor *t = kd_tensor4(c, n, ch, h, w);
  for (size_t i = 0; i < t->numel; i++) t->data[i] = kd_rng_normal(r);
  t->requires_grad = grad;
  fwrite(t->data, sizeof(float), t->numel, f);
  return t;
}

/* Returns 77 when the oracle skips, else 0 (failures through CHECK). */
static int one_case(const char *root, int N, int C, int CV, int H, int W, float scale) {
  char in_path[] = "/tmp/kd-cc-in-XXXXXX", out_path[] = "/tmp/kd-cc-out-XXXXXX";
  int fi = mkstemp(in_path), fo = mkstemp(out_path);
  CHECK(fi >= 0 && fo >= 0);
  if (fi < 0 || fo < 0) return 0;
  close(fo);
  FILE *f = fdopen(fi, "wb");
  KdRng r;
  kd_rng_seed(&r, (unsigned)(H * 31 + W), 5);
  KdCtx *c = kd_ctx_new(8 << 20);
  KdTensor *q = rnd(c, &r, N, C, H, W, 1, f), *k = rnd(c, &r, N, C, H, W, 1, f), *v = rnd(c, &r, N, CV, H, W, 1, f);
  KdTensor *r1 = rnd(c, &r, N, CV, H, W, 0, f), *r2 = rnd(c, &r, N, KD_CC_LEN(H, W), H, W, 0, f);
  fclose(f);
  KdTensor *attn = NULL, *out = kd_criss_cross(c, q, k, v, scale, &attn);
  KdTensor *loss = kd_add(c, kd_sum_all(c, kd_mul(c, out, r1)), kd_sum_all(c, kd_mul(c, attn, r2)));
  CHECK_MSG(loss && kd_backward(c, loss) == 0, "%s", kd_ctx_error(c));
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/core/cc_torch.py %s %s %d %d %d %d %d %.9g", root, in_path,
           out_path, N, C, CV, H, W, (double)scale);
  const int st = system(cmd), code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  CHECK_MSG(code == 0 || code == 77, "oracle exited with %d", code);
  FILE *o = code == 0 ? fopen(out_path, "rb") : NULL;
  const KdTensor *got[5] = {out, attn, q, k, v};
  const char *names[5] = {"out", "attn", "grad q", "grad k", "grad v"};
  for (int i = 0; o && loss && i < 5; i++) {
    const size_t n = got[i]->numel;
    float *want = malloc(n * sizeof(float));
    CHECK(fread(want, sizeof(float), n, o) == n);
    const float *g = i < 2 ? got[i]->data : got[i]->grad;
    double peak = 1e-30, err = 0.0;
    for (size_t j = 0; j < n; j++) peak = fmax(peak, fabs(want[j]));
    for (size_t j = 0; j < n; j++) err = fmax(err, g ? fabs((double)g[j] - want[j]) : INFINITY);
    printf("cc_torch %dx%dx%dx%d %-7s max|diff| %.2e  /max|ref| %.2e\n", N, C, H, W, names[i], err, err / peak);
    CHECK_MSG(err <= 1e-5 * peak, "%dx%d %s: max|diff| %g against a peak of %g", H, W, names[i], err, peak);
    free(want);
  }
  if (o) fclose(o);
  unlink(in_path);
  unlink(out_path);
  kd_ctx_free(c);
  return code == 77 ? 77 : 0;
}

int main(void) {
  const char *root = getenv("KD_SOURCE_ROOT");
  if (access("/usr/bin/python3", X_OK) != 0 || !root) {
    printf("skip: /usr/bin/python3 or KD_SOURCE_ROOT missing\n");
    return 77;
  }
  static const int cases[][5] = {{2, 8, 5, 6, 6}, {2, 4, 3, 5, 9}, {1, 3, 2, 1, 7}, {2, 3, 4, 6, 1}, {1, 16, 16, 16, 16}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (one_case(root, cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4], 0.35f) == 77) return 77;
  return check_status("cc_torch");
}
