/* PKD and the Pearson standardisation it is built on: the closed form of
 * KD-METHODS §3.1 (loss = w (m-1)/m mean_c (1 - r_c)), perfectly
 * correlated and anti-correlated students, per-level parts, the weight,
 * the shape-mismatch error, a dead (constant) channel, and finite-difference
 * gradients of the op and of the method w.r.t. the student features. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "distill/method.h"
#include "distill/side.h"
#include "distill/norms.h"
#include "gradcheck.h"

static KdConfig *cfg;
static const KdMethod *pkd;

static void fill_normal(float *v, size_t n, KdRng *r, float scale, float shift) {
  for (size_t i = 0; i < n; i++) v[i] = scale * kd_rng_normal(r) + shift;
}

/* Runs PKD on nlev levels; returns the loss tensor or NULL. */
static KdLevels levels; /* the part names point into it */

static KdTensor *run(KdCtx *c, int nlev, KdTensor **t, KdTensor **s, KdDistillOut *out) {
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = s[0]->shape[0]};
  int strides[KD_MAX_LEVELS];
  for (int l = 0; l < nlev; l++) {
    strides[l] = 8 << l;
    in.t.feat[l] = t[l];
    in.s.feat[l] = s[l];
  }
  kd_levels_from_strides(&levels, nlev, strides);
  kd_distill_same_levels(&in, &levels);
  /* the method reads its settings from its params struct, filled from cfg */
  KdMethodInst inst = {pkd, NULL, NULL};
  memset(out, 0, sizeof *out);
  int rc = kd_method_read_params(&inst, cfg, NULL) || pkd->loss(&inst, &in, out);
  kd_method_inst_release(&inst);
  return rc ? NULL : out->loss;
}

/* (m-1)/m * mean_c (1 - r_c), r_c over the N*H*W samples of channel c. */
static double closed_form(const float *s, const float *t, int N, int C, int HW) {
  double acc = 0.0, m = (double)N * HW;
  for (int ch = 0; ch < C; ch++) {
    double ms = 0, mt = 0;
    for (int n = 0; n < N; n++)
      for (int i = 0; i < HW; i++) {
        ms += s[(n * C + ch) * HW + i];
        mt += t[(n * C + ch) * HW + i];
      }
    ms /= m, mt /= m;
    double sst = 0, sss = 0, stt = 0;
    for (int n = 0; n < N; n++)
      for (int i = 0; i < HW; i++) {
        double a = s[(n * C + ch) * HW + i] - ms, b = t[(n * C + ch) * HW + i] - mt;
        sst += a * b, sss += a * a, stt += b * b;
      }
    acc += 1.0 - sst / sqrt(sss * stt);
  }
  return (m - 1.0) / m * acc / C;
}

static void test_closed_form(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 5, 1);
  KdTensor *t = kd_tensor4(c, 2, 3, 4, 5), *s = kd_tensor4(c, 2, 3, 4, 5);
  fill_normal(t->data, t->numel, &r, 3.0f, 1.0f);
  /* partly correlated student, so r_c is far from 0 and 1 */
  for (size_t i = 0; i < s->numel; i++) s->data[i] = 0.5f * t->data[i] + kd_rng_normal(&r) - 2.0f;
  kd_config_set_num(cfg, "pkd.weight", 1.0, NULL);
  KdDistillOut out;
  KdTensor *loss = run(c, 1, &t, &s, &out);
  CHECK(loss != NULL);
  double want = closed_form(s->data, t->data, 2, 3, 20);
  CHECK(want > 0.05 && want < 1.9);
  CHECK_NEAR(loss->data[0], want, 1e-5 * want);
  /* weight scales linearly (default 10) */
  kd_config_set_num(cfg, "pkd.weight", 10.0, NULL);
  loss = run(c, 1, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 10.0 * want, 1e-4 * want);

  /* r = 1: an affine copy of the teacher; r = -1: its negation,
   * 1/2 mean (2 Z)^2 = 2 (m-1)/m. */
  for (size_t i = 0; i < s->numel; i++) s->data[i] = 2.0f * t->data[i] + 7.0f;
  kd_config_set_num(cfg, "pkd.weight", 1.0, NULL);
  loss = run(c, 1, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 0.0, 1e-6);
  for (size_t i = 0; i < s->numel; i++) s->data[i] = -t->data[i];
  loss = run(c, 1, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 2.0 * 39.0 / 40.0, 1e-5);
  kd_ctx_free(c);
}

static void test_norm_op(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 9, 1);
  KdTensor *x = kd_tensor4(c, 3, 2, 3, 3);
  fill_normal(x->data, x->numel, &r, 0.01f, 4.0f); /* small std: eps matters at 1e-4 */
  KdTensor *z = kd_norm_pearson(c, x, 1e-6f);
  CHECK(z != NULL);
  for (int ch = 0; ch < 2; ch++) {
    double sum = 0, ss = 0, sx = 0, ssx = 0;
    for (int n = 0; n < 3; n++)
      for (int i = 0; i < 9; i++) {
        sum += z->data[(n * 2 + ch) * 9 + i];
        sx += x->data[(n * 2 + ch) * 9 + i];
      }
    for (int n = 0; n < 3; n++)
      for (int i = 0; i < 9; i++) {
        ss += pow(z->data[(n * 2 + ch) * 9 + i] - sum / 27, 2);
        ssx += pow(x->data[(n * 2 + ch) * 9 + i] - sx / 27, 2);
      }
    double sd = sqrt(ssx / 26); /* unbiased */
    CHECK_NEAR(sum / 27, 0.0, 1e-6);
    CHECK_NEAR(sqrt(ss / 26), sd / (sd + 1e-6), 1e-5);
  }
  /* a constant channel maps to 0 and gets a finite gradient */
  for (int n = 0; n < 3; n++)
    for (int i = 0; i < 9; i++) x->data[(n * 2 + 1) * 9 + i] = 2.5f;
  x->requires_grad = 1;
  z = kd_norm_pearson(c, x, 1e-6f);
  KdTensor *l = kd_sum_all(c, kd_square(c, z));
  CHECK(l && isfinite(l->data[0]));
  CHECK(kd_backward(c, l) == 0);
  int finite = 1;
  for (size_t i = 0; i < x->numel; i++) finite &= isfinite(x->grad[i]);
  CHECK(finite);
  CHECK_NEAR(z->data[9], 0.0, 0.0);
  /* too few values for an unbiased std */
  KdTensor *one = kd_tensor4(c, 1, 2, 1, 1);
  kd_ctx_clear_error(c);
  CHECK(kd_norm_pearson(c, one, 1e-6f) == NULL);
  CHECK(kd_ctx_failed(c) && strstr(kd_ctx_error(c), "N*H*W >= 2"));
  kd_ctx_free(c);
}

static void test_levels_and_errors(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 3, 1);
  KdTensor *t[2] = {kd_tensor4(c, 2, 4, 4, 4), kd_tensor4(c, 2, 4, 2, 2)};
  KdTensor *s[2] = {kd_tensor4(c, 2, 4, 4, 4), kd_tensor4(c, 2, 4, 2, 2)};
  for (int l = 0; l < 2; l++) {
    fill_normal(t[l]->data, t[l]->numel, &r, 1, 0);
    fill_normal(s[l]->data, s[l]->numel, &r, 1, 0);
  }
  kd_config_set_num(cfg, "pkd.weight", 10.0, NULL);
  KdDistillOut out, one;
  KdTensor *loss = run(c, 2, t, s, &out);
  CHECK(loss && out.nparts == 2);
  CHECK(!strcmp(out.parts[0].name, "P3") && !strcmp(out.parts[1].name, "P4"));
  CHECK_NEAR(loss->data[0], out.parts[0].value->data[0] + out.parts[1].value->data[0], 1e-5);
  /* each level is its own closed form */
  CHECK_NEAR(out.parts[1].value->data[0], 10.0 * closed_form(s[1]->data, t[1]->data, 2, 4, 4), 1e-4);
  KdTensor *l1 = run(c, 1, t, s, &one);
  CHECK_NEAR(l1->data[0], out.parts[0].value->data[0], 1e-6);

  KdTensor *bad[2] = {kd_tensor4(c, 2, 4, 2, 4), s[1]};
  kd_ctx_clear_error(c);
  CHECK(run(c, 2, t, bad, &out) == NULL);
  CHECK(kd_ctx_failed(c) && strstr(kd_ctx_error(c), "pkd: level P3") && strstr(kd_ctx_error(c), "no resize"));
  kd_ctx_free(c);
}

/* ---- gradient checks ---- */

static KdTensor *fwd_pearson(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_norm_pearson(c, in[0], 1e-6f);
}

static KdTensor *fwd_pkd(KdCtx *c, KdTensor **in, void *user) {
  int nlev = *(int *)user;
  KdTensor *t[2] = {in[0], in[2]}, *s[2] = {in[1], in[3]};
  KdDistillOut out;
  return run(c, nlev, t, s, &out);
}

static int gradchecks(void) {
  int fails = 0;
  Gc *g = gc_new("pearson", fwd_pearson, NULL);
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 3, 4});
  fails += gc_run(g);

  g = gc_new("pearson/one-image", fwd_pearson, NULL);
  float *x = gc_input(g, GC_CHECK, 4, (int[]){1, 2, 2, 3});
  for (int i = 0; i < 12; i++) x[i] = 3.0f * x[i] + 5.0f;
  fails += gc_run(g);

  kd_config_set_num(cfg, "pkd.weight", 10.0, NULL);
  static int two = 2;
  g = gc_new("pkd/two-levels", fwd_pkd, &two);
  gc_input(g, GC_CONST, 4, (int[]){2, 3, 4, 4});
  float *s0 = gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4, 4});
  gc_input(g, GC_CONST, 4, (int[]){2, 3, 2, 2});
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 2, 2});
  for (int i = 0; i < 96; i++) s0[i] = 0.2f * s0[i] - 1.0f; /* scale and shift do not change the loss */
  fails += gc_run(g);
  return fails;
}

int main(void) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  pkd = kd_method_find("pkd");
  CHECK(pkd != NULL);
  if (!pkd) return check_status("test_pkd");
  CHECK_NEAR(kd_config_num(cfg, "pkd.weight"), 10.0, 0.0);
  test_closed_form();
  test_norm_op();
  test_levels_and_errors();
  CHECK(gradchecks() == 0);
  kd_config_free(cfg);
  return check_status("test_pkd");
}
