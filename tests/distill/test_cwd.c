/* CWD and the spatial softmax / KL pieces it is built on (the fused KL of
 * logits against its composition from core ops): a hand case
 * (q = (1/4, 3/4), p = (1/2, 1/2): KL = 3/4 ln 3/2 - 1/4 ln 2), the tau^2
 * scaling, the 1/(N*C) normaliser, invariance to a per-channel shift, the
 * closed-form gradient w tau (p - q) / (N C), per-level parts, shape
 * errors, and finite-difference gradients of every piece and the method. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "distill/method.h"
#include "distill/side.h"
#include "distill/norms.h"
#include "gradcheck.h"

static KdConfig *cfg;
static const KdMethod *cwd;

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
  KdMethodInst inst = {cwd, NULL, NULL};
  memset(out, 0, sizeof *out);
  int rc = kd_method_read_params(&inst, cfg, NULL) || cwd->loss(&inst, &in, out);
  kd_method_inst_release(&inst);
  return rc ? NULL : out->loss;
}

static void set(const char *key, double v) { CHECK(kd_config_set_num(cfg, key, v, NULL) == 0); }

static void test_hand(void) {
  const double kl = 0.75 * log(1.5) - 0.25 * log(2.0); /* 0.1308121 */
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *t = kd_tensor4(c, 1, 1, 1, 2), *s = kd_tensor4(c, 1, 1, 1, 2);
  t->data[0] = 0.0f, t->data[1] = logf(3.0f);
  s->data[0] = s->data[1] = 0.0f;
  s->requires_grad = 1;
  set("cwd.weight", 1.0), set("cwd.tau", 1.0);
  KdDistillOut out;
  KdTensor *loss = run(c, 1, &t, &s, &out);
  CHECK(loss && out.nparts == 1 && !strcmp(out.parts[0].name, "P3"));
  CHECK_NEAR(loss->data[0], kl, 1e-6);
  /* dL/ds = w tau (p - q) / (N C) = (1/2 - 1/4, 1/2 - 3/4) */
  CHECK(kd_backward(c, loss) == 0);
  CHECK_NEAR(s->grad[0], 0.25, 1e-6);
  CHECK_NEAR(s->grad[1], -0.25, 1e-6);

  /* tau 2 on twice the logits: the same distributions, loss x tau^2,
   * gradient w tau (p - q) = 2x; weight 10 scales both */
  t->data[1] = 2.0f * logf(3.0f);
  set("cwd.tau", 2.0), set("cwd.weight", 10.0);
  loss = run(c, 1, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 10.0 * 4.0 * kl, 1e-5);
  CHECK(kd_backward(c, loss) == 0);
  CHECK_NEAR(s->grad[0], 10.0 * 2.0 * 0.25, 1e-5);
  kd_ctx_free(c);

  /* The same channel in every (n, c) of N=2, C=3: the per-(n,c) mean is
   * unchanged (the sum is divided by N*C). A per-channel shift of the
   * student changes nothing (softmax), a different one does. */
  c = kd_ctx_new(1 << 20);
  t = kd_tensor4(c, 2, 3, 1, 2), s = kd_tensor4(c, 2, 3, 1, 2);
  for (int i = 0; i < 6; i++) {
    t->data[2 * i] = 0.0f, t->data[2 * i + 1] = logf(3.0f);
    s->data[2 * i] = s->data[2 * i + 1] = (float)i; /* shift per (n, c) */
  }
  set("cwd.tau", 1.0), set("cwd.weight", 1.0);
  loss = run(c, 1, &t, &s, &out);
  CHECK_NEAR(loss->data[0], kl, 1e-6);
  for (int i = 0; i < 6; i++) s->data[2 * i] = t->data[2 * i] + 3.0f, s->data[2 * i + 1] = t->data[2 * i + 1] + 3.0f;
  loss = run(c, 1, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 0.0, 1e-6);
  kd_ctx_free(c);
}

static void test_levels_and_errors(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 4, 1);
  KdTensor *t[2] = {kd_tensor4(c, 2, 4, 4, 4), kd_tensor4(c, 2, 4, 2, 2)};
  KdTensor *s[2] = {kd_tensor4(c, 2, 4, 4, 4), kd_tensor4(c, 2, 4, 2, 2)};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < t[l]->numel; i++) t[l]->data[i] = kd_rng_normal(&r), s[l]->data[i] = kd_rng_normal(&r);
  set("cwd.weight", 10.0), set("cwd.tau", 1.0);
  KdDistillOut out, one;
  KdTensor *loss = run(c, 2, t, s, &out);
  CHECK(loss && out.nparts == 2 && !strcmp(out.parts[1].name, "P4"));
  CHECK_NEAR(loss->data[0], out.parts[0].value->data[0] + out.parts[1].value->data[0], 1e-5);
  CHECK(out.parts[0].value->data[0] > 0 && out.parts[1].value->data[0] > 0);
  /* P4 by hand: 10 * sum_{n,c} KL / 8 */
  double want = 0;
  for (int nc = 0; nc < 8; nc++) {
    const float *tv = t[1]->data + 4 * nc, *sv = s[1]->data + 4 * nc;
    double zt = 0, zs = 0;
    for (int i = 0; i < 4; i++) zt += exp(tv[i]), zs += exp(sv[i]);
    for (int i = 0; i < 4; i++) want += exp(tv[i]) / zt * ((tv[i] - log(zt)) - (sv[i] - log(zs)));
  }
  CHECK_NEAR(out.parts[1].value->data[0], 10.0 * want / 8.0, 1e-5);
  KdTensor *l1 = run(c, 1, t, s, &one);
  CHECK_NEAR(l1->data[0], out.parts[0].value->data[0], 1e-6);

  KdTensor *bad[2] = {kd_tensor4(c, 2, 3, 4, 4), s[1]};
  kd_ctx_clear_error(c);
  CHECK(run(c, 2, t, bad, &out) == NULL);
  CHECK(kd_ctx_failed(c) && strstr(kd_ctx_error(c), "cwd: level P3"));
  kd_ctx_clear_error(c);
  CHECK(kd_norm_spatial_softmax(c, t[0], 0.0f) == NULL && strstr(kd_ctx_error(c), "temperature"));
  kd_ctx_free(c);
}

/* ---- gradient checks ---- */

static KdTensor *fwd_spatial(KdCtx *c, KdTensor **in, void *user) {
  return *(int *)user ? kd_norm_spatial_log_softmax(c, in[0], 0.7f) : kd_norm_spatial_softmax(c, in[0], 1.5f);
}

static KdTensor *fwd_kl(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  /* both sides require grad: checks the teacher-side path too */
  return kd_dist_kl(c, kd_log_softmax(c, in[0], 1), kd_log_softmax(c, in[1], 1), 1u << 1);
}

static KdTensor *fwd_kl_logits(KdCtx *c, KdTensor **in, void *user) {
  return kd_dist_kl_logits(c, in[0], in[1], *(int *)user, 3.0f);
}

/* The fused op equals the composition log_softmax + kd_dist_kl, along a
 * last (contiguous) and a middle (strided) axis. */
static void test_fused_kl(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 6, 1);
  KdTensor *t = kd_tensor4(c, 2, 5, 3, 7), *s = kd_tensor4(c, 2, 5, 3, 7);
  for (size_t i = 0; i < t->numel; i++) t->data[i] = 4 * kd_rng_normal(&r), s->data[i] = 4 * kd_rng_normal(&r);
  for (int axis = 1; axis < 4; axis += 2) {
    KdTensor *f = kd_dist_kl_logits(c, t, s, axis, 1.7f);
    KdTensor *ref = kd_dist_kl(c, kd_log_softmax(c, kd_scale(c, t, 1 / 1.7f), axis),
                               kd_log_softmax(c, kd_scale(c, s, 1 / 1.7f), axis), 1u << axis);
    CHECK(f && ref && f->numel == ref->numel && f->shape[axis] == 1);
    double worst = 0;
    for (size_t i = 0; f && ref && i < f->numel; i++) worst = fmax(worst, fabs(f->data[i] - ref->data[i]));
    CHECK_MSG(worst < 1e-5, "axis %d: fused vs composed KL differ by %g", axis, worst);
  }
  kd_ctx_clear_error(c);
  CHECK(kd_dist_kl_logits(c, t, kd_tensor4(c, 2, 5, 3, 6), 3, 1.0f) == NULL && strstr(kd_ctx_error(c), "shapes differ"));
  kd_ctx_free(c);
}

static KdTensor *fwd_sq(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_dist_sq_sum(c, in[0], in[1]);
}

static KdTensor *fwd_cwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  KdTensor *t[2] = {in[0], in[2]}, *s[2] = {in[1], in[3]};
  KdDistillOut out;
  return run(c, 2, t, s, &out);
}

static int gradchecks(void) {
  int fails = 0, zero = 0, one = 1;
  Gc *g = gc_new("spatial_softmax", fwd_spatial, &zero);
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 2, 3});
  fails += gc_run(g);
  g = gc_new("spatial_log_softmax", fwd_spatial, &one);
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 2, 3});
  fails += gc_run(g);
  g = gc_new("kl", fwd_kl, NULL);
  gc_input(g, GC_CHECK, 3, (int[]){2, 5, 3});
  gc_input(g, GC_CHECK, 3, (int[]){2, 5, 3});
  fails += gc_run(g);
  int last = 2, middle = 1;
  g = gc_new("kl_logits/tau3", fwd_kl_logits, &last);
  gc_input(g, GC_CONST, 3, (int[]){3, 2, 6});
  gc_input(g, GC_CHECK, 3, (int[]){3, 2, 6});
  fails += gc_run(g);
  g = gc_new("kl_logits/strided/both-sides", fwd_kl_logits, &middle);
  gc_input(g, GC_CHECK, 3, (int[]){2, 5, 3});
  gc_input(g, GC_CHECK, 3, (int[]){2, 5, 3});
  fails += gc_run(g);
  g = gc_new("sq_sum", fwd_sq, NULL);
  gc_input(g, GC_CHECK, 2, (int[]){4, 5});
  gc_input(g, GC_CHECK, 2, (int[]){4, 5});
  fails += gc_run(g);

  set("cwd.weight", 10.0), set("cwd.tau", 2.0);
  g = gc_new("cwd/two-levels/tau2", fwd_cwd, NULL);
  gc_input(g, GC_CONST, 4, (int[]){2, 3, 4, 4});
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4, 4});
  gc_input(g, GC_CONST, 4, (int[]){2, 3, 2, 2});
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 2, 2});
  fails += gc_run(g);
  return fails;
}

int main(void) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  cwd = kd_method_find("cwd");
  CHECK(cwd != NULL);
  if (!cwd) return check_status("test_cwd");
  CHECK_NEAR(kd_config_num(cfg, "cwd.weight"), 10.0, 0.0);
  CHECK_NEAR(kd_config_num(cfg, "cwd.tau"), 1.0, 0.0);
  test_hand();
  test_levels_and_errors();
  test_fused_kl();
  CHECK(gradchecks() == 0);
  kd_config_free(cfg);
  return check_status("test_cwd");
}
