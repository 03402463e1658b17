/* Detection losses: hand-computed values and gradients on single elements,
 * extreme logits, ignore handling, the layout (which element is which
 * anchor and class), error reporting, and finite-difference gradient
 * checks of all three ops over several levels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "detect/assign.h"
#include "detect/detloss.h"
#include "gradcheck.h"

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* One logit, K = A = 1, 1x1 level: loss and d loss / d x. */
static void focal1(double x, int target, float alpha, float gamma, float norm, double *loss, double *grad) {
  KdCtx *c = kd_ctx_new(1 << 16);
  KdTensor *t = kd_tensor4(c, 1, 1, 1, 1);
  t->data[0] = (float)x;
  t->requires_grad = 1;
  KdTensor *lv[1] = {t};
  KdTensor *l = kd_focal_loss(c, lv, 1, 1, &target, alpha, gamma, norm);
  CHECK(l && l->ndim == 1 && l->numel == 1);
  CHECK(kd_backward(c, l) == 0);
  *loss = l ? l->data[0] : NAN;
  *grad = t->grad ? t->grad[0] : 0.0;
  kd_ctx_free(c);
}

static void test_focal_hand(void) {
  double loss, grad, x = 0.3, p = sigm(x);
  /* positive: -a (1-p)^g log p; d/dx = a (1-p)^g (g p log p - (1-p)) */
  focal1(x, 0, 0.25f, 2.0f, 1.0f, &loss, &grad);
  CHECK_NEAR(loss, -0.25 * (1 - p) * (1 - p) * log(p), 1e-6);
  CHECK_NEAR(grad, 0.25 * (1 - p) * (1 - p) * (2 * p * log(p) - (1 - p)), 1e-6);
  /* negative: -(1-a) p^g log(1-p); d/dx = (1-a) p^g (p - g (1-p) log(1-p)) */
  focal1(x, KD_MATCH_NEG, 0.25f, 2.0f, 1.0f, &loss, &grad);
  CHECK_NEAR(loss, -0.75 * p * p * log(1 - p), 1e-6);
  CHECK_NEAR(grad, 0.75 * p * p * (p - 2 * (1 - p) * log(1 - p)), 1e-6);
  /* normalizer divides both */
  double l4, g4;
  focal1(x, KD_MATCH_NEG, 0.25f, 2.0f, 4.0f, &l4, &g4);
  CHECK_NEAR(l4, loss / 4, 1e-7);
  CHECK_NEAR(g4, grad / 4, 1e-7);
  /* ignored: nothing */
  focal1(x, KD_MATCH_IGNORE, 0.25f, 2.0f, 1.0f, &loss, &grad);
  CHECK(loss == 0.0 && grad == 0.0);
  /* gamma 0, no alpha: binary cross-entropy, d/dx = p - t */
  focal1(-1.7, 0, -1.0f, 0.0f, 1.0f, &loss, &grad);
  CHECK_NEAR(loss, -log(sigm(-1.7)), 1e-6);
  CHECK_NEAR(grad, sigm(-1.7) - 1.0, 1e-6);
  /* gamma 1.5 (pow path) */
  focal1(0.8, 0, 0.5f, 1.5f, 1.0f, &loss, &grad);
  CHECK_NEAR(loss, -0.5 * pow(1 - sigm(0.8), 1.5) * log(sigm(0.8)), 1e-6);
  /* extreme logits stay finite: confident and wrong costs ~|x| */
  focal1(100.0, KD_MATCH_NEG, 0.25f, 2.0f, 1.0f, &loss, &grad);
  CHECK_NEAR(loss, 0.75 * 100.0, 1e-3);
  CHECK_NEAR(grad, 0.75, 1e-5);
  focal1(-100.0, 0, 0.25f, 2.0f, 1.0f, &loss, &grad);
  CHECK_NEAR(loss, 0.25 * 100.0, 1e-3);
  CHECK_NEAR(grad, -0.25, 1e-5);
  focal1(-100.0, KD_MATCH_NEG, 0.25f, 2.0f, 1.0f, &loss, &grad);
  CHECK(loss >= 0.0 && loss < 1e-30 && isfinite(grad));
}

/* Layout: (N=2, A=2, K=3) on a 1x2 level; only element (n=1, a=1, k=2,
 * w=1) is a positive of class 2; its anchor index is n*A_total + w*A + a. */
static void test_focal_layout(void) {
  KdCtx *c = kd_ctx_new(1 << 16);
  KdTensor *t = kd_tensor4(c, 2, 6, 1, 2);
  kd_tensor_fill(t, 0.0f);
  t->requires_grad = 1;
  int tc[8];
  for (int i = 0; i < 8; i++) tc[i] = KD_MATCH_IGNORE;
  tc[1 * 4 + 1 * 2 + 1] = 2;
  KdTensor *lv[1] = {t};
  KdTensor *l = kd_focal_loss(c, lv, 1, 2, tc, 0.25f, 2.0f, 1.0f);
  CHECK(l && kd_backward(c, l) == 0);
  /* that anchor's 3 classes: one positive, two negatives, all at p = 0.5 */
  double pos = 0.25 * 0.25 * log(2.0), neg = 0.75 * 0.25 * log(2.0);
  CHECK_NEAR(l->data[0], pos + 2 * neg, 1e-6);
  for (int ch = 0; ch < 6; ch++)
    for (int w = 0; w < 2; w++) {
      float g = t->grad[((1 * 6) + ch) * 2 + w];
      if (w == 1 && ch / 3 == 1) CHECK(g != 0.0f);
      else CHECK(g == 0.0f);
      CHECK(t->grad[ch * 2 + w] == 0.0f); /* image 0 all ignored */
    }
  CHECK(t->grad[(6 + 5) * 2 + 1] < 0.0f); /* class 2: push the logit up */
  kd_ctx_free(c);
}

static void test_box_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 16);
  KdTensor *t = kd_tensor4(c, 1, 4, 1, 1);
  float x[4] = {0.05f, 1.0f, -0.3f, 0.0f}, td[4] = {0, 0, 0, 0};
  memcpy(t->data, x, sizeof x);
  t->requires_grad = 1;
  KdTensor *lv[1] = {t};
  int pos = 0, neg = KD_MATCH_NEG;
  KdTensor *l = kd_smooth_l1_loss(c, lv, 1, 1, td, &pos, 0.11f, 1.0f);
  CHECK(l && kd_backward(c, l) == 0);
  double b = 0.11f;
  CHECK_NEAR(l->data[0], 0.5 * 0.05f * 0.05f / b + (1.0 - 0.5 * b) + (0.3f - 0.5 * b) + 0.0, 1e-6);
  CHECK_NEAR(t->grad[0], 0.05f / b, 1e-5);
  CHECK_NEAR(t->grad[1], 1.0, 1e-7);
  CHECK_NEAR(t->grad[2], -1.0, 1e-7);
  CHECK_NEAR(t->grad[3], 0.0, 0);
  /* beta 0 is L1 */
  l = kd_smooth_l1_loss(c, lv, 1, 1, td, &pos, 0.0f, 2.0f);
  CHECK(l && fabs(l->data[0] - (0.05 + 1.0 + 0.3) / 2) < 1e-6);
  /* negatives contribute nothing */
  l = kd_smooth_l1_loss(c, lv, 1, 1, td, &neg, 0.11f, 1.0f);
  CHECK(l && l->data[0] == 0.0f);

  /* GIoU: zero deltas decode to the anchor (0,0,10,10). Target (5,0,15,10):
   * IoU 50/150, enclosing 150 = union -> loss 2/3. Target (20,0,30,10):
   * IoU 0, union 200, enclosing 300 -> loss 1 + 100/300. */
  KdTensor *z = kd_tensor4(c, 2, 4, 1, 1);
  kd_tensor_fill(z, 0.0f);
  z->requires_grad = 1;
  KdTensor *zl[1] = {z};
  float anchors[4] = {0, 0, 10, 10}, tb[8] = {5, 0, 15, 10, 20, 0, 30, 10};
  int tc2[2] = {1, 0};
  l = kd_giou_loss(c, zl, 1, 1, anchors, tb, tc2, &(KdBoxCoder){1, 1, 1, 1, 4.135f}, 1.0f);
  CHECK(l && kd_backward(c, l) == 0);
  CHECK_NEAR(l->data[0], 2.0 / 3.0 + 1.0 + 1.0 / 3.0, 1e-5);
  /* moving right (dx > 0) helps both */
  CHECK(z->grad[0] < 0.0f && z->grad[4] < 0.0f);
  kd_ctx_free(c);
}

static void test_errors(void) {
  KdCtx *c = kd_ctx_new(1 << 16);
  KdTensor *t = kd_tensor4(c, 1, 7, 2, 2);
  kd_tensor_fill(t, 0.0f);
  KdTensor *lv[1] = {t};
  int tc[8] = {0};
  /* 7 channels are not A*K for A = 2 */
  CHECK(kd_focal_loss(c, lv, 1, 2, tc, 0.25f, 2.0f, 1.0f) == NULL);
  CHECK(kd_ctx_failed(c) && strstr(kd_ctx_error(c), "focal_loss") != NULL);
  kd_ctx_clear_error(c);
  KdTensor *u = kd_tensor4(c, 1, 2, 2, 2);
  kd_tensor_fill(u, 0.0f);
  lv[0] = u;
  tc[3] = 5; /* class 5 with K = 1 */
  CHECK(kd_focal_loss(c, lv, 1, 2, tc, 0.25f, 2.0f, 1.0f) == NULL);
  CHECK(strstr(kd_ctx_error(c), "target_cls[3] = 5") != NULL);
  kd_ctx_clear_error(c);
  tc[3] = 0;
  CHECK(kd_focal_loss(c, lv, 1, 2, tc, 0.25f, 2.0f, 0.0f) == NULL);
  CHECK(strstr(kd_ctx_error(c), "normalizer") != NULL);
  kd_ctx_clear_error(c);
  CHECK(kd_smooth_l1_loss(c, lv, 1, 2, (float[32]){0}, tc, 0.11f, 1.0f) == NULL); /* 2 channels != A*4 */
  kd_ctx_free(c);
}

/* ---- gradient checks: 2 images, 2 levels (2x3 and 1x2), A = 2, K = 3 ---- */
enum { GN = 2, GA = 2, GK = 3, GAT = (6 + 2) * 2 };
static int g_tc[GN * GAT];
static float g_td[GN * GAT * 4], g_anchors[GAT * 4], g_tb[GN * GAT * 4];

static KdTensor *focal_fwd(KdCtx *c, KdTensor **in, void *user) {
  float *ag = user;
  return kd_focal_loss(c, in, 2, GA, g_tc, ag[0], ag[1], 3.0f);
}
static KdTensor *sl1_fwd(KdCtx *c, KdTensor **in, void *user) {
  return kd_smooth_l1_loss(c, in, 2, GA, g_td, g_tc, *(float *)user, 3.0f);
}
static KdTensor *giou_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  KdBoxCoder bc = kd_box_coder_default();
  return kd_giou_loss(c, in, 2, GA, g_anchors, g_tb, g_tc, &bc, 3.0f);
}

static int grad_case(const char *name, GcForwardFn fn, void *user, int per, float scale, double eps) {
  Gc *g = gc_new(name, fn, user);
  float *x0 = gc_input(g, GC_CHECK, 4, (int[]){GN, GA * per, 2, 3});
  float *x1 = gc_input(g, GC_CHECK, 4, (int[]){GN, GA * per, 1, 2});
  for (int i = 0; i < GN * GA * per * 6; i++) x0[i] *= scale;
  for (int i = 0; i < GN * GA * per * 2; i++) x1[i] *= scale;
  if (eps > 0) gc_tol(g, eps, 0, 0);
  return gc_run(g);
}

/* GIoU has kinks where a predicted coordinate meets the target's (min/max
 * switches): targets are placed a few pixels from each decoded prediction,
 * so central differences (moving < 0.1 px) never straddle one. Every
 * fifth positive gets a disjoint target (IoU 0, enclosing-box term only). */
static int giou_case(void) {
  Gc *g = gc_new("giou_loss", giou_fwd, NULL);
  int HW[2] = {6, 2}, off[2] = {0, 12};
  float *x[2];
  x[0] = gc_input(g, GC_CHECK, 4, (int[]){GN, GA * 4, 2, 3});
  x[1] = gc_input(g, GC_CHECK, 4, (int[]){GN, GA * 4, 1, 2});
  KdBoxCoder bc = kd_box_coder_default();
  const float o[2][4] = {{3.0f, -2.5f, 4.0f, -3.5f}, {-2.0f, 3.0f, -3.0f, 2.0f}};
  for (int l = 0; l < 2; l++)
    for (int i = 0; i < GN * GA * 4 * HW[l]; i++) x[l][i] *= 0.3f;
  for (int n = 0; n < GN; n++)
    for (int l = 0; l < 2; l++)
      for (int hw = 0; hw < HW[l]; hw++)
        for (int a = 0; a < GA; a++) {
          int anchor = off[l] + hw * GA + a;
          float d[4], p[4], *t = g_tb + 4 * ((size_t)n * GAT + anchor);
          for (int j = 0; j < 4; j++) d[j] = x[l][((n * GA + a) * 4 + j) * HW[l] + hw];
          kd_box_decode(&bc, g_anchors + 4 * anchor, d, p);
          float shift = (anchor % 5 == 4) ? 3.0f * (p[2] - p[0]) : 0.0f;
          for (int j = 0; j < 4; j++) t[j] = p[j] + o[n][j] + ((j & 1) ? 0.0f : shift);
        }
  gc_tol(g, 1e-3, 0, 0);
  return gc_run(g);
}

static int test_gradcheck(void) {
  /* targets: a mix of classes, negatives and ignored anchors */
  for (int i = 0; i < GN * GAT; i++) g_tc[i] = (i % 5 == 0) ? KD_MATCH_IGNORE : ((i % 3 == 0) ? i % GK : KD_MATCH_NEG);
  for (int i = 0; i < GN * GAT * 4; i++) g_td[i] = (float)sin(1.7 * i);
  /* anchors 12..28 px near the origin (targets: see giou_case) */
  for (int a = 0; a < GAT; a++) {
    float sz = 12.0f + (float)(a % 5) * 4.0f, x = (float)(a % 4) * 6.0f, y = (float)(a / 4) * 5.0f;
    float *an = g_anchors + 4 * a;
    an[0] = x, an[1] = y, an[2] = x + sz, an[3] = y + 1.3f * sz;
  }
  int fails = 0;
  float fa[2] = {0.25f, 2.0f}, fb[2] = {-1.0f, 0.0f}, fc[2] = {0.6f, 1.5f};
  fails += grad_case("focal_loss/a0.25g2", focal_fwd, fa, GK, 2.0f, 0);
  fails += grad_case("focal_loss/bce", focal_fwd, fb, GK, 2.0f, 0);
  fails += grad_case("focal_loss/a0.6g1.5", focal_fwd, fc, GK, 2.0f, 0);
  float beta = 0.11f;
  fails += grad_case("smooth_l1_loss/beta0.11", sl1_fwd, &beta, 4, 1.0f, 1e-3);
  /* L1: targets far from the inputs so no element sits on the kink */
  float beta0 = 0.0f;
  for (int i = 0; i < GN * GAT * 4; i++) g_td[i] = (i & 1) ? 5.0f : -5.0f;
  fails += grad_case("smooth_l1_loss/l1", sl1_fwd, &beta0, 4, 1.0f, 0);
  fails += giou_case();
  return fails;
}

int main(void) {
  test_focal_hand();
  test_focal_layout();
  test_box_hand();
  test_errors();
  CHECK(test_gradcheck() == 0);
  return check_status("test_detloss");
}
