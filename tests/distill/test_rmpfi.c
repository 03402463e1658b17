/* RM and PFI (mmrazor's reading, KD-METHODS-2 §C): hand cases (two GTs
 * with 2 and 3 positive anchors, a GT without anchors that still counts,
 * an image without GT left out of the mean; PFI's product of the two
 * channel means on two levels), a single positive anchor (KL 0, no
 * gradient), pfi.detach_pred, errors, the assigner's matched-GT index, and
 * finite-difference checks w.r.t. the student's logits and features. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "detect/assign.h"
#include "detect/assigner.h"
#include "distill/method.h"
#include "distill/side.h"
#include "gradcheck.h"

static KdConfig *cfg;
static KdLevels levels; /* the part names point into it */

typedef struct {
  int nlev, n, A, K, A_total;
  const int *codes, *match;
  const KdGtImage *gt;
  int ch; /* feature width, PFI */
} Setup;

/* The named method on logits t/s (and features ft/fs for PFI) per level. */
static KdTensor *run(KdCtx *c, const char *method, const Setup *su, KdTensor **t, KdTensor **s, KdTensor **ft, KdTensor **fs,
                     KdDistillOut *out) {
  KdDenseAssign as = {.A = su->A, .K = su->K, .A_total = su->A_total, .target_cls = su->codes, .match_gt = su->match};
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = su->n, .gt = su->gt};
  in.s.assign = su->codes ? &as : NULL;
  in.s.nout = in.t.nout = 1;
  in.s.out[0].name = in.t.out[0].name = "cls";
  in.s.channels = in.t.channels = su->ch;
  int strides[KD_MAX_LEVELS];
  for (int l = 0; l < su->nlev; l++) {
    strides[l] = 8 << l;
    in.t.out[0].lv[l] = t[l], in.s.out[0].lv[l] = s[l];
    if (ft) in.t.feat[l] = ft[l], in.s.feat[l] = fs[l];
  }
  kd_levels_from_strides(&levels, su->nlev, strides);
  kd_distill_same_levels(&in, &levels);
  const KdMethod *m = kd_method_find(method);
  KdMethodInst inst = {m, NULL, NULL};
  memset(out, 0, sizeof *out);
  int rc = kd_method_read_params(&inst, cfg, NULL) || m->loss(&inst, &in, out);
  kd_method_inst_release(&inst);
  return rc ? NULL : out->loss;
}

static void set(const char *key, double v) { CHECK(kd_config_set_num(cfg, key, v, NULL) == 0); }

/* Two images, A = 1, K = 2, one 1x5 level. Image 0: GT0 (class 0) on
 * anchors 0, 1; GT1 (class 1) on anchors 2, 3, 4; GT2 (class 0) on none.
 * Image 1: no GT. */
static void test_rm_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  static const float boxes[12] = {0};
  static const int labels[3] = {0, 1, 0};
  KdGtImage gt[2] = {{.boxes = boxes, .labels = labels, .n = 3}, {.n = 0}};
  int codes[10] = {0, 0, 1, 1, 1, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_IGNORE, KD_MATCH_NEG};
  int match[10] = {0, 0, 1, 1, 1, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_IGNORE, KD_MATCH_NEG};
  Setup su = {.nlev = 1, .n = 2, .A = 1, .K = 2, .A_total = 5, .codes = codes, .match = match, .gt = gt};
  KdTensor *t = kd_tensor4(c, 2, 2, 1, 5), *s = kd_tensor4(c, 2, 2, 1, 5);
  /* element (n, k, hw) = (n*2 + k)*5 + hw; every logit outside the sets is far off */
  for (int i = 0; i < 20; i++) t->data[i] = 7.0f * (float)(i % 3) - 6.0f, s->data[i] = -3.0f * (float)(i % 4);
  /* GT0, class 0, anchors 0, 1: teacher (0, ln 3) -> (1/4, 3/4); student (0, 0) -> (1/2, 1/2) */
  t->data[0] = 0.0f, t->data[1] = logf(3.0f), s->data[0] = 5.0f, s->data[1] = 5.0f;
  /* GT1, class 1, anchors 2..4: teacher uniform; student (ln 2, 0, 0) + 1 -> (1/2, 1/4, 1/4) */
  for (int hw = 2; hw < 5; hw++) t->data[5 + hw] = -2.0f, s->data[5 + hw] = 1.0f;
  s->data[5 + 2] = 1.0f + logf(2.0f);
  s->requires_grad = 1;
  const double kl0 = 0.25 * log(0.25 / 0.5) + 0.75 * log(0.75 / 0.5);
  const double kl1 = (log((1.0 / 3) / 0.5) + 2.0 * log((1.0 / 3) / 0.25)) / 3.0;
  CHECK(kl0 > 0.1 && kl1 > 0.05);
  set("rm.weight", 4.0);
  KdDistillOut out;
  KdTensor *loss = run(c, "rm", &su, &t, &s, NULL, NULL, &out);
  CHECK(loss && out.nparts == 1 && !strcmp(out.parts[0].name, "kl"));
  /* mean over image 0's three GTs (GT2 adds 0), image 1 left out */
  if (loss) CHECK_NEAR(loss->data[0], 4.0 * (kl0 + kl1) / 3.0, 1e-6);
  CHECK(out.nstats == 1 && !strcmp(out.stats[0].name, "mean_pos"));
  CHECK_NEAR(out.stats[0].value, (2.0 + 3.0 + 0.0) / 3.0, 1e-12);
  /* dL/dz_s = w / n_gt * (p_s - p_t) on the sets only */
  CHECK(loss && kd_backward(c, loss) == 0);
  const double g = 4.0 / 3.0;
  CHECK_NEAR(s->grad[0], g * (0.5 - 0.25), 1e-6);
  CHECK_NEAR(s->grad[1], g * (0.5 - 0.75), 1e-6);
  CHECK_NEAR(s->grad[5 + 2], g * (0.5 - 1.0 / 3), 1e-6);
  CHECK_NEAR(s->grad[5 + 3], g * (0.25 - 1.0 / 3), 1e-6);
  double other = 0;
  for (int i = 0; i < 20; i++)
    if (i != 0 && i != 1 && i != 7 && i != 8 && i != 9) other += fabs(s->grad[i]);
  CHECK(other == 0.0);

  /* the same image twice: the image mean keeps the value */
  KdGtImage gt2[2] = {gt[0], gt[0]};
  int match2[10], codes2[10];
  memcpy(match2, match, 5 * sizeof *match), memcpy(match2 + 5, match, 5 * sizeof *match);
  memcpy(codes2, codes, 5 * sizeof *codes), memcpy(codes2 + 5, codes, 5 * sizeof *codes);
  for (int i = 0; i < 10; i++) t->data[10 + i] = t->data[i], s->data[10 + i] = s->data[i];
  Setup su2 = su;
  su2.gt = gt2, su2.codes = codes2, su2.match = match2;
  loss = run(c, "rm", &su2, &t, &s, NULL, NULL, &out);
  if (loss) CHECK_NEAR(loss->data[0], 4.0 * (kl0 + kl1) / 3.0, 1e-6);

  /* a single positive anchor: KL 0 and no gradient, whatever the logits */
  static const int one_label[1] = {1};
  KdGtImage g1[2] = {{.boxes = boxes, .labels = one_label, .n = 1}, {.n = 0}};
  int m1[10] = {KD_MATCH_NEG, KD_MATCH_NEG, 0, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_NEG, KD_MATCH_NEG,
                KD_MATCH_NEG, KD_MATCH_NEG};
  int c1[10];
  for (int i = 0; i < 10; i++) c1[i] = m1[i] >= 0 ? 1 : m1[i];
  Setup su1 = su;
  su1.gt = g1, su1.codes = c1, su1.match = m1;
  KdCtx *c2 = kd_ctx_new(1 << 20);
  KdTensor *s2 = kd_tensor4(c2, 2, 2, 1, 5), *t2 = kd_tensor4(c2, 2, 2, 1, 5);
  memcpy(s2->data, s->data, 20 * sizeof(float)), memcpy(t2->data, t->data, 20 * sizeof(float));
  s2->data[5 + 2] = 9.0f, t2->data[5 + 2] = -9.0f;
  s2->requires_grad = 1;
  loss = run(c2, "rm", &su1, &t2, &s2, NULL, NULL, &out);
  CHECK(loss && loss->data[0] == 0.0f);
  CHECK(loss && kd_backward(c2, loss) == 0);
  for (int i = 0; s2->grad && i < 20; i++) CHECK(s2->grad[i] == 0.0f);

  /* no GT in the batch: 0 and no stat */
  KdGtImage g0[2] = {{.n = 0}, {.n = 0}};
  int none[10];
  for (int i = 0; i < 10; i++) none[i] = KD_MATCH_NEG;
  Setup su0 = su;
  su0.gt = g0, su0.codes = none, su0.match = none;
  loss = run(c2, "rm", &su0, &t2, &s2, NULL, NULL, &out);
  CHECK(loss && loss->data[0] == 0.0f && out.nstats == 0);

  /* errors: no matched-GT index; no assignment */
  su0.match = NULL;
  CHECK(run(c2, "rm", &su0, &t2, &s2, NULL, NULL, &out) == NULL);
  CHECK(strstr(kd_ctx_error(c2), "rm: the assignment has no matched-GT index") != NULL);
  kd_ctx_clear_error(c2);
  su0.codes = NULL;
  CHECK(run(c2, "rm", &su0, &t2, &s2, NULL, NULL, &out) == NULL);
  CHECK(strstr(kd_ctx_error(c2), "rm: no anchor assignment") != NULL);
  kd_ctx_free(c2);
  kd_ctx_free(c);
}

/* The real assigner gives each positive anchor its GT, of that GT's class. */
static void test_match_gt(void) {
  KdAnchorCfg ac;
  kd_anchor_cfg_default(&ac);
  ac.nlevels = 2, ac.strides[0] = 8, ac.strides[1] = 16;
  KdAssignCfg sc;
  kd_assign_cfg_default(&sc);
  KdError err;
  KdAssigner *a = kd_assigner_new(&ac, &sc, &err);
  KdCtx *c = kd_ctx_new(1 << 22);
  CHECK(a && c);
  if (!a || !c) return;
  const float boxes[12] = {4, 4, 40, 36, 30, 20, 62, 60, 0, 0, 64, 64};
  const int labels[3] = {2, 0, 1}, crowd[3] = {0, 0, 1};
  KdGtImage gt[2] = {{.boxes = boxes, .labels = labels, .crowd = crowd, .n = 3}, {.boxes = boxes + 4, .labels = labels + 1, .n = 1}};
  int hw[4] = {8, 8, 4, 4};
  KdDenseAssign as;
  CHECK(kd_assigner_targets(a, c, hw, gt, 2, 3, &as, &err) == 0);
  CHECK(as.match_gt != NULL);
  int pos[2] = {0, 0}, bad = 0;
  for (int n = 0; n < 2; n++)
    for (int i = 0; i < as.A_total; i++) {
      int m = as.match_gt[n * as.A_total + i], tc = as.target_cls[n * as.A_total + i];
      if (m >= 0) bad += m >= gt[n].n || (gt[n].crowd && gt[n].crowd[m]) || tc != gt[n].labels[m], pos[n]++;
      else bad += tc != m;
    }
  CHECK(bad == 0 && pos[0] > 2 && pos[1] > 0 && pos[0] + pos[1] == as.num_pos);
  kd_ctx_free(c);
  kd_assigner_free(a);
}

/* One image; level 0 is 1x2 (2 logit channels, 2 feature channels), level 1 1x1. */
static void test_pfi_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *zt[2] = {kd_tensor4(c, 1, 2, 1, 2), kd_tensor4(c, 1, 2, 1, 1)};
  KdTensor *zs[2] = {kd_tensor4(c, 1, 2, 1, 2), kd_tensor4(c, 1, 2, 1, 1)};
  KdTensor *ft[2] = {kd_tensor4(c, 1, 2, 1, 2), kd_tensor4(c, 1, 2, 1, 1)};
  KdTensor *fs[2] = {kd_tensor4(c, 1, 2, 1, 2), kd_tensor4(c, 1, 2, 1, 1)};
  /* level 0, (channel, cell): logit gaps (1, 0 | 3, 2) and feature gaps (2, 1 | 0, -1) */
  const float dz0[4] = {1, 0, 3, 2}, df0[4] = {2, 1, 0, -1};
  for (int i = 0; i < 4; i++) {
    zt[0]->data[i] = 0.5f * (float)i, zs[0]->data[i] = zt[0]->data[i] + dz0[i];
    ft[0]->data[i] = -0.25f * (float)i, fs[0]->data[i] = ft[0]->data[i] + df0[i];
  }
  /* level 1: logit gaps (1, -1), feature gaps (2, 2) */
  zt[1]->data[0] = 1, zt[1]->data[1] = 0, zs[1]->data[0] = 2, zs[1]->data[1] = -1;
  ft[1]->data[0] = 0, ft[1]->data[1] = 3, fs[1]->data[0] = 2, fs[1]->data[1] = 5;
  for (int l = 0; l < 2; l++) zs[l]->requires_grad = fs[l]->requires_grad = 1;
  /* cell 0: P = (1 + 9)/2 = 5, F = (4 + 0)/2 = 2; cell 1: P = 2, F = 1: mean 6.
   * level 1: P = 1, F = 4: 4. L = 1.5 * (6 + 4) / 2. */
  Setup su = {.nlev = 2, .n = 1, .A = 1, .K = 2, .ch = 2};
  set("pfi.weight", 1.5), set("pfi.detach_pred", 0);
  KdDistillOut out;
  KdTensor *loss = run(c, "pfi", &su, zt, zs, ft, fs, &out);
  CHECK(loss && out.nparts == 2 && !strcmp(out.parts[0].name, "P3") && !strcmp(out.parts[1].name, "P4"));
  if (!loss) return;
  CHECK_NEAR(loss->data[0], 7.5, 1e-6);
  CHECK_NEAR(out.parts[0].value->data[0], 4.5, 1e-6);
  CHECK_NEAR(out.parts[1].value->data[0], 3.0, 1e-6);
  CHECK(kd_backward(c, loss) == 0);
  /* dL/dzs[c, cell0] = coef/cells * F * 2 dz / 2 = (1.5/2)/2 * 2 * dz = 0.75 dz (level 0, cell 0) */
  CHECK_NEAR(zs[0]->grad[0], 0.375 * 2.0 * 1.0, 1e-6);
  /* dL/dfs[c, cell1] = 0.375 * P(cell1)=2 * df: channel 1 cell 1 = -1 */
  CHECK_NEAR(fs[0]->grad[3], 0.375 * 2.0 * -1.0, 1e-6);
  /* detached prediction factor: the same loss, no gradient to the logits */
  set("pfi.detach_pred", 1);
  KdCtx *c2 = kd_ctx_new(1 << 20);
  for (int l = 0; l < 2; l++) {
    KdTensor *x[4] = {zt[l], zs[l], ft[l], fs[l]};
    for (int k = 0; k < 4; k++) {
      KdTensor *y = kd_tensor4(c2, 1, 2, 1, x[k]->shape[3]);
      memcpy(y->data, x[k]->data, y->numel * sizeof(float));
      y->requires_grad = k % 2;
      x[k] = y;
    }
    zt[l] = x[0], zs[l] = x[1], ft[l] = x[2], fs[l] = x[3];
  }
  loss = run(c2, "pfi", &su, zt, zs, ft, fs, &out);
  CHECK(loss && kd_backward(c2, loss) == 0);
  if (loss) CHECK_NEAR(loss->data[0], 7.5, 1e-6);
  double gz = 0;
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; zs[l]->grad && i < zs[l]->numel; i++) gz += fabs(zs[l]->grad[i]);
  CHECK(gz == 0.0 && fs[0]->grad[3] != 0.0f);
  set("pfi.detach_pred", 0);
  /* widths differ: refused, no adapter */
  su.ch = 0;
  KdTensor *fw = kd_tensor4(c2, 1, 3, 1, 1);
  KdTensor *fs2[2] = {fs[0], fw};
  CHECK(run(c2, "pfi", &su, zt, zs, ft, fs2, &out) == NULL);
  CHECK(strstr(kd_ctx_error(c2), "pfi: level P4: student features") != NULL);
  kd_ctx_free(c2);
  kd_ctx_free(c);
}

/* ---- gradient checks ---- */

static int gc_codes[2 * (9 * 2 + 4 * 2)], gc_match[2 * (9 * 2 + 4 * 2)];
static const int gc_labels[4] = {0, 2, 1, 2};
static const float gc_boxes[16] = {0};
static KdGtImage gc_gt[2] = {{.boxes = gc_boxes, .labels = gc_labels, .n = 3}, {.boxes = gc_boxes, .labels = gc_labels + 3, .n = 1}};

static KdTensor *fwd_rm(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  Setup su = {.nlev = 2, .n = 2, .A = 2, .K = 3, .A_total = 26, .codes = gc_codes, .match = gc_match, .gt = gc_gt};
  KdTensor *t[2] = {in[0], in[2]}, *s[2] = {in[1], in[3]};
  KdDistillOut out;
  return run(c, "rm", &su, t, s, NULL, NULL, &out);
}

static KdTensor *fwd_pfi(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  Setup su = {.nlev = 2, .n = 2, .A = 2, .K = 3, .ch = 4};
  KdTensor *t[2] = {in[0], in[4]}, *s[2] = {in[1], in[5]}, *ft[2] = {in[2], in[6]}, *fs[2] = {in[3], in[7]};
  KdDistillOut out;
  return run(c, "pfi", &su, t, s, ft, fs, &out);
}

static int gradcheck(void) {
  /* positives spread over both levels; image 0's GT1 spans P3 and P4 */
  for (int i = 0; i < 52; i++) {
    int n = i / 26, a = i % 26;
    int m = n == 0 ? (a % 4 == 0 ? 0 : a % 4 == 1 ? 1 : a % 7 == 3 ? 2 : KD_MATCH_NEG) : (a % 3 == 0 ? 0 : KD_MATCH_NEG);
    gc_match[i] = m;
    gc_codes[i] = m >= 0 ? gc_gt[n].labels[m] : m;
  }
  int fails = 0;
  set("rm.weight", 4.0);
  Gc *g = gc_new("rm/two-levels", fwd_rm, NULL);
  gc_input(g, GC_CONST, 4, (int[]){2, 6, 3, 3});
  gc_input(g, GC_CHECK, 4, (int[]){2, 6, 3, 3});
  gc_input(g, GC_CONST, 4, (int[]){2, 6, 2, 2});
  gc_input(g, GC_CHECK, 4, (int[]){2, 6, 2, 2});
  fails += gc_run(g);
  for (int d = 0; d < 2; d++) {
    set("pfi.weight", 1.5), set("pfi.detach_pred", d);
    g = gc_new(d ? "pfi/detach_pred" : "pfi/both-factors", fwd_pfi, NULL);
    for (int l = 0; l < 2; l++) {
      int hw = 3 - l;
      gc_input(g, GC_CONST, 4, (int[]){2, 6, hw, hw});
      /* detached, P depends on the logits but sends them no gradient (the hand case checks that) */
      gc_input(g, d ? GC_CONST : GC_CHECK, 4, (int[]){2, 6, hw, hw});
      gc_input(g, GC_CONST, 4, (int[]){2, 4, hw, hw});
      gc_input(g, GC_CHECK, 4, (int[]){2, 4, hw, hw});
    }
    fails += gc_run(g);
  }
  set("pfi.detach_pred", 0);
  return fails;
}

int main(void) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  CHECK(kd_method_find("rm") && kd_method_find("pfi"));
  if (!kd_method_find("rm") || !kd_method_find("pfi")) return check_status("test_rmpfi");
  CHECK_NEAR(kd_config_num(cfg, "rm.weight"), 4.0, 0.0);
  CHECK_NEAR(kd_config_num(cfg, "pfi.weight"), 1.5, 0.0);
  CHECK(kd_config_int(cfg, "pfi.detach_pred") == 0);
  test_rm_hand();
  test_match_gt();
  test_pfi_hand();
  CHECK(gradcheck() == 0);
  kd_config_free(cfg);
  return check_status("test_rmpfi");
}
