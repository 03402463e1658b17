/* Logit KD on dense class outputs: the anchor layout (channel a*K + k at
 * (h, w), flat anchor (h*W + w)*A + a), a hand case (q = (1/4, 3/4),
 * p = (1/2, 1/2)), the T^2 and 1/K factors, negatives with bg_weight and
 * the weight-sum normaliser, ignored anchors never counting, per-level vs
 * batch normalisers, no positives, the closed-form gradient, errors, and a
 * finite-difference check w.r.t. the student logits. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "detect/assign.h"
#include "distill/method.h"
#include "distill/side.h"
#include "gradcheck.h"
#include "kl_ref.h"

static KdConfig *cfg;
static const KdMethod *lkd;

typedef struct {
  int nlev, n, A, K, A_total;
  const int *codes;
} Setup;

static KdLevels levels; /* the part names point into it */

static KdTensor *run(KdCtx *c, const Setup *su, KdTensor **t, KdTensor **s, KdDistillOut *out) {
  KdDenseAssign as = {.A = su->A, .K = su->K, .A_total = su->A_total, .target_cls = su->codes};
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = su->n};
  in.s.assign = su->codes ? &as : NULL;
  in.s.nout = in.t.nout = 1;
  in.s.out[0].name = in.t.out[0].name = "cls";
  int strides[KD_MAX_LEVELS];
  for (int l = 0; l < su->nlev; l++) {
    strides[l] = 8 << l;
    in.t.out[0].lv[l] = t[l];
    in.s.out[0].lv[l] = s[l];
  }
  kd_levels_from_strides(&levels, su->nlev, strides);
  kd_distill_same_levels(&in, &levels);
  /* the method reads its settings from its params struct, filled from cfg */
  KdMethodInst inst = {lkd, NULL, NULL};
  memset(out, 0, sizeof *out);
  int rc = kd_method_read_params(&inst, cfg, NULL) || lkd->loss(&inst, &in, out);
  kd_method_inst_release(&inst);
  return rc ? NULL : out->loss;
}

static void set(const char *key, double v) { CHECK(kd_config_set_num(cfg, key, v, NULL) == 0); }

static void test_hand(void) {
  const double kl = 0.75 * log(1.5) - 0.25 * log(2.0);
  KdCtx *c = kd_ctx_new(1 << 20);
  /* one image, A = 2, K = 2, a 1x2 map: anchors (hw0,a0) (hw0,a1) (hw1,a0) (hw1,a1) */
  int codes[4] = {KD_MATCH_NEG, KD_MATCH_IGNORE, KD_MATCH_NEG, 0};
  Setup su = {.nlev = 1, .n = 1, .A = 2, .K = 2, .A_total = 4, .codes = codes};
  KdTensor *t = kd_tensor4(c, 1, 4, 1, 2), *s = kd_tensor4(c, 1, 4, 1, 2);
  for (int ch = 0; ch < 4; ch++)
    for (int hw = 0; hw < 2; hw++) { /* far apart everywhere but the positive */
      t->data[ch * 2 + hw] = ch % 2 ? -5.0f : 5.0f;
      s->data[ch * 2 + hw] = ch % 2 ? 5.0f : -5.0f;
    }
  /* positive (hw1, a1): channels 2, 3 at hw 1 */
  t->data[2 * 2 + 1] = 0.0f, t->data[3 * 2 + 1] = 8.0f * logf(3.0f);
  s->data[2 * 2 + 1] = 0.0f, s->data[3 * 2 + 1] = 0.0f;
  s->requires_grad = 1;
  set("logitkd.weight", 10), set("logitkd.T", 8), set("logitkd.bg_weight", 0), set("logitkd.kl_mean", 1);
  CHECK(kd_config_set(cfg, "logitkd.norm", "level", NULL) == 0);
  KdDistillOut out;
  KdTensor *loss = run(c, &su, &t, &s, &out);
  CHECK(loss && out.nparts == 1 && !strcmp(out.parts[0].name, "P3"));
  CHECK_NEAR(loss->data[0], 10.0 * 64.0 * kl / 2.0, 1e-4);
  /* dL/ds = w T^2 / (K norm) * (p - q) / T = 40 (p - q) on the positive only */
  CHECK(kd_backward(c, loss) == 0);
  CHECK_NEAR(s->grad[2 * 2 + 1], 40.0 * 0.25, 1e-4);
  CHECK_NEAR(s->grad[3 * 2 + 1], -40.0 * 0.25, 1e-4);
  double other = 0;
  for (int i = 0; i < 8; i++)
    if (i != 5 && i != 7) other += fabs(s->grad[i]);
  CHECK_NEAR(other, 0.0, 0.0);

  /* textbook KL (no 1/K) doubles it */
  set("logitkd.kl_mean", 0);
  loss = run(c, &su, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 10.0 * 64.0 * kl, 2e-4);
  set("logitkd.kl_mean", 1);

  /* negatives at half weight; the normaliser is the weight sum 1 + 2 * 0.5 */
  set("logitkd.bg_weight", 0.5);
  double klneg = kl_ref(t->data + 0, s->data + 0, 2, 2, 8.0) + kl_ref(t->data + 1, s->data + 1, 2, 2, 8.0);
  CHECK(klneg > 0.5);
  loss = run(c, &su, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 10.0 * 64.0 * (kl + 0.5 * klneg) / 2.0 / 2.0, 1e-3);
  /* the ignored anchor (hw0, a1): channels 2,3 at hw 0 never count */
  set("logitkd.bg_weight", 1.0);
  float before = run(c, &su, &t, &s, &out)->data[0];
  s->data[2 * 2 + 0] = 40.0f;
  float after = run(c, &su, &t, &s, &out)->data[0];
  CHECK_NEAR(after, before, 0.0);
  set("logitkd.bg_weight", 0);

  /* no positives: 0 ... */
  int none[4] = {KD_MATCH_NEG, KD_MATCH_IGNORE, KD_MATCH_NEG, KD_MATCH_NEG};
  su.codes = none;
  loss = run(c, &su, &t, &s, &out);
  CHECK(loss && loss->data[0] == 0.0f);
  /* ... unless negatives count: then the weighted mean over them (bounded,
   * not a sum over every background anchor) */
  set("logitkd.bg_weight", 0.5);
  double k3 = klneg + kl_ref(t->data + 2 * 2 + 1, s->data + 2 * 2 + 1, 2, 2, 8.0);
  loss = run(c, &su, &t, &s, &out);
  CHECK_NEAR(loss->data[0], 10.0 * 64.0 / 2.0 * k3 / 3.0, 1e-3);
  set("logitkd.bg_weight", 0);
  kd_ctx_free(c);
}

static void test_norms(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 8, 1);
  /* two images, A = 1, K = 3; level 0 is 2x2 (anchors 0..3), level 1 1x1 (anchor 4) */
  int codes[10] = {2, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_IGNORE, 0, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_NEG,
                   KD_MATCH_NEG, 1};
  Setup su = {.nlev = 2, .n = 2, .A = 1, .K = 3, .A_total = 5, .codes = codes};
  KdTensor *t[2] = {kd_tensor4(c, 2, 3, 2, 2), kd_tensor4(c, 2, 3, 1, 1)};
  KdTensor *s[2] = {kd_tensor4(c, 2, 3, 2, 2), kd_tensor4(c, 2, 3, 1, 1)};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < t[l]->numel; i++) t[l]->data[i] = 3 * kd_rng_normal(&r), s[l]->data[i] = 3 * kd_rng_normal(&r);
  set("logitkd.weight", 2), set("logitkd.T", 2), set("logitkd.bg_weight", 0), set("logitkd.kl_mean", 1);
  /* level 0: image 0, position 0 (1 positive); level 1: both images (2) */
  double k0 = kl_ref(t[0]->data + 0, s[0]->data + 0, 3, 4, 2.0);
  double k1 = kl_ref(t[1]->data + 0, s[1]->data + 0, 3, 1, 2.0) + kl_ref(t[1]->data + 3, s[1]->data + 3, 3, 1, 2.0);
  double f = 2.0 * 4.0 / 3.0;
  CHECK(kd_config_set(cfg, "logitkd.norm", "level", NULL) == 0);
  KdDistillOut out;
  KdTensor *loss = run(c, &su, t, s, &out);
  CHECK(loss && out.nparts == 2);
  CHECK_NEAR(out.parts[0].value->data[0], f * k0 / 1.0, 1e-4);
  CHECK_NEAR(out.parts[1].value->data[0], f * k1 / 2.0, 1e-4);
  CHECK(kd_config_set(cfg, "logitkd.norm", "batch", NULL) == 0);
  loss = run(c, &su, t, s, &out);
  CHECK_NEAR(out.parts[0].value->data[0], f * k0 / 3.0, 1e-4);
  CHECK_NEAR(out.parts[1].value->data[0], f * k1 / 3.0, 1e-4);
  CHECK_NEAR(loss->data[0], f * (k0 + k1) / 3.0, 1e-4);
  CHECK(kd_config_set(cfg, "logitkd.norm", "level", NULL) == 0);

  /* errors */
  kd_ctx_clear_error(c);
  Setup bad = su;
  bad.codes = NULL;
  CHECK(run(c, &bad, t, s, &out) == NULL && strstr(kd_ctx_error(c), "no anchor assignment"));
  kd_ctx_clear_error(c);
  bad = su, bad.K = 4;
  CHECK(run(c, &bad, t, s, &out) == NULL && strstr(kd_ctx_error(c), "K=4 classes"));
  kd_ctx_clear_error(c);
  bad = su, bad.A_total = 6;
  CHECK(run(c, &bad, t, s, &out) == NULL && strstr(kd_ctx_error(c), "assignment has 6"));
  kd_ctx_free(c);
}

/* ---- gradient check ---- */

static int gc_codes[2 * (9 * 2 + 4 * 2)];

static KdTensor *fwd_lkd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  Setup su = {.nlev = 2, .n = 2, .A = 2, .K = 3, .A_total = 9 * 2 + 4 * 2, .codes = gc_codes};
  KdTensor *t[2] = {in[0], in[2]}, *s[2] = {in[1], in[3]};
  KdDistillOut out;
  return run(c, &su, t, s, &out);
}

static int gradcheck(void) {
  for (int i = 0; i < (int)(sizeof gc_codes / sizeof gc_codes[0]); i++)
    gc_codes[i] = i % 5 == 0 ? i % 3 : i % 5 == 1 ? KD_MATCH_IGNORE : KD_MATCH_NEG;
  set("logitkd.weight", 10), set("logitkd.T", 2), set("logitkd.bg_weight", 0.3), set("logitkd.kl_mean", 1);
  Gc *g = gc_new("logitkd/two-levels/bg0.3", fwd_lkd, NULL);
  gc_input(g, GC_CONST, 4, (int[]){2, 6, 3, 3});
  gc_input(g, GC_CHECK, 4, (int[]){2, 6, 3, 3});
  gc_input(g, GC_CONST, 4, (int[]){2, 6, 2, 2});
  gc_input(g, GC_CHECK, 4, (int[]){2, 6, 2, 2});
  return gc_run(g);
}

int main(void) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  lkd = kd_method_find("logitkd");
  CHECK(lkd != NULL);
  if (!lkd) return check_status("test_logitkd");
  CHECK_NEAR(kd_config_num(cfg, "logitkd.weight"), 10.0, 0.0);
  CHECK_NEAR(kd_config_num(cfg, "logitkd.T"), 8.0, 0.0);
  CHECK_NEAR(kd_config_num(cfg, "logitkd.bg_weight"), 0.0, 0.0);
  CHECK(!strcmp(kd_config_str(cfg, "logitkd.norm"), "level"));
  test_hand();
  test_norms();
  CHECK(gradcheck() == 0);
  kd_config_free(cfg);
  return check_status("test_logitkd");
}
