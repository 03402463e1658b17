/* GFL's losses, integral, distance box coder and ATSS: hand-computed
 * values on single elements, ATSS and VLR on a small hand-built case, and
 * finite-difference gradient checks of every op (QFL over two levels with
 * positives, negatives and an ignored location; DFL; the integral; the
 * box coder; aligned GIoU; and the chain integral -> box -> GIoU). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "detect/assign.h"
#include "detect/atss.h"
#include "detect/boxes.h"
#include "detect/gflloss.h"
#include "gradcheck.h"

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
static double softplus(double x) { return log1p(exp(x)); }

static void test_qfl_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 16);
  /* One location, K = 2: class 1 positive with quality 0.7. */
  KdTensor *x = kd_tensor4(c, 1, 2, 1, 1);
  x->data[0] = -0.4f, x->data[1] = 0.9f;
  x->requires_grad = 1;
  int tc = 1;
  float ts = 0.7f;
  KdTensor *l = kd_qfl_loss(c, &x, 1, &tc, &ts, 2.0f, 2.0f);
  CHECK(l && kd_backward(c, l) == 0);
  double p0 = sigm(-0.4), p1 = sigm(0.9), s = 0.7f;
  double neg = softplus(-0.4) * p0 * p0, pos = (softplus(0.9) - s * 0.9) * (s - p1) * (s - p1);
  CHECK_NEAR(l->data[0], (neg + pos) / 2.0, 1e-6);
  double gneg = p0 * p0 * p0 + softplus(-0.4) * 2 * p0 * p0 * (1 - p0);
  double gpos = (p1 - s) * (s - p1) * (s - p1) + (softplus(0.9) - s * 0.9) * 2 * (p1 - s) * p1 * (1 - p1);
  CHECK_NEAR(x->grad[0], gneg / 2, 1e-6);
  CHECK_NEAR(x->grad[1], gpos / 2, 1e-6);
  /* Ignored: nothing; a negative location: both classes as background. */
  kd_ctx_reset(c);
  x = kd_tensor4(c, 1, 2, 1, 1);
  x->data[0] = 0.3f, x->data[1] = 50.0f;
  tc = KD_MATCH_IGNORE;
  l = kd_qfl_loss(c, &x, 1, &tc, &ts, 2.0f, 1.0f);
  CHECK(l && l->data[0] == 0.0f);
  tc = KD_MATCH_NEG;
  l = kd_qfl_loss(c, &x, 1, &tc, &ts, 2.0f, 1.0f);
  CHECK_NEAR(l->data[0], softplus(0.3) * sigm(0.3) * sigm(0.3) + 50.0, 1e-4); /* finite at large logits */
  /* Bad targets fail with a message. */
  tc = 5;
  CHECK(!kd_qfl_loss(c, &x, 1, &tc, &ts, 2.0f, 1.0f) && strstr(kd_ctx_error(c), "qfl_loss"));
  kd_ctx_free(c);
}

static void test_dfl_integral_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 16);
  int sh[2] = {1, 3};
  KdTensor *x = kd_tensor_new(c, 2, sh);
  x->data[0] = 0.2f, x->data[1] = -1.0f, x->data[2] = 0.5f;
  x->requires_grad = 1;
  float t = 1.25f, w = 2.0f;
  KdTensor *l = kd_dfl_loss(c, x, &t, &w);
  CHECK(l && kd_backward(c, l) == 0);
  double z = exp(0.2) + exp(-1.0) + exp(0.5), lse = log(z);
  /* left bin 1 weight 0.75, right bin 2 weight 0.25 */
  CHECK_NEAR(l->data[0], 2.0 * (0.75 * (lse + 1.0) + 0.25 * (lse - 0.5)), 1e-6);
  CHECK_NEAR(x->grad[0], 2.0 * exp(0.2) / z, 1e-6);
  CHECK_NEAR(x->grad[1], 2.0 * (exp(-1.0) / z - 0.75), 1e-6);
  CHECK_NEAR(x->grad[2], 2.0 * (exp(0.5) / z - 0.25), 1e-6);
  t = 2.0f; /* the last bin is out of range (mmdet clamps to reg_max - 0.1) */
  CHECK(!kd_dfl_loss(c, x, &t, NULL));
  kd_ctx_clear_error(c);
  KdTensor *y = kd_integral(c, x);
  CHECK(y && y->numel == 1);
  CHECK_NEAR(y->data[0], (exp(-1.0) + 2 * exp(0.5)) / z, 1e-6);
  kd_ctx_free(c);
}

static void test_box_coder_giou_hand(void) {
  float pt[2] = {3.0f, 4.0f}, box[4] = {1.0f, 1.5f, 6.0f, 30.0f}, d[4];
  kd_bbox2distance(pt, box, 0.0f, d);
  CHECK(d[0] == 2.0f && d[1] == 2.5f && d[2] == 3.0f && d[3] == 26.0f);
  kd_bbox2distance(pt, box, 16.0f, d);
  CHECK_NEAR(d[3], 15.9, 1e-6);
  /* Two unit squares offset by half: IoU 1/3, enclosure 2 x 1 -> GIoU 1/3 - 0. */
  float p[4] = {0, 0, 1, 1}, q[4] = {0.5f, 0, 1.5f, 1};
  double iou, g = kd_giou_aligned(p, q, 1e-6f, &iou);
  CHECK_NEAR(iou, 1.0 / 3.0, 1e-7);
  CHECK_NEAR(g, 1.0 / 3.0, 1e-7);
  /* Disjoint: IoU 0, enclosure 3 x 1 with union 2 -> GIoU -1/3. */
  float r[4] = {2, 0, 3, 1};
  CHECK_NEAR(kd_giou_aligned(p, r, 1e-6f, &iou), -1.0 / 3.0, 1e-7);
  KdCtx *c = kd_ctx_new(1 << 16);
  int sh[2] = {1, 4};
  KdTensor *dd = kd_tensor_new(c, 2, sh);
  memcpy(dd->data, (float[]){1, 2, 3, 4}, sizeof(float[4]));
  KdTensor *b = kd_distance2bbox(c, dd, pt);
  CHECK(b && b->data[0] == 2.0f && b->data[1] == 2.0f && b->data[2] == 6.0f && b->data[3] == 8.0f);
  kd_ctx_free(c);
}

/* Level 0: 4x4 points of stride 8 with anchors 16 px; level 1: 2x2 of
 * stride 16 with anchors 32 px. One GT near the level-0 centre. */
static void test_atss_hand(void) {
  float an[20 * 4];
  int off[3] = {0, 16, 20};
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) {
      float *a = an + 4 * (y * 4 + x);
      a[0] = x * 8 - 8.0f, a[1] = y * 8 - 8.0f, a[2] = x * 8 + 8.0f, a[3] = y * 8 + 8.0f;
    }
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 2; x++) {
      float *a = an + 4 * (16 + y * 2 + x);
      a[0] = x * 16 - 16.0f, a[1] = y * 16 - 16.0f, a[2] = x * 16 + 16.0f, a[3] = y * 16 + 16.0f;
    }
  float gt[8] = {1.0f, 2.0f, 17.3f, 15.1f, 40, 40, 41, 41}; /* the second far off the grid, tiny */
  int crowd[2] = {0, 1}, match[20];
  float iou[20], thr[2];
  KdError err;
  int np = kd_atss_assign(an, off, 2, gt, crowd, 2, 3, match, iou, thr, &err);
  /* By hand: GT centre (9.15, 8.55). Level 0 nearest 3: (8,8) idx 5, (8,16)?? distances:
   * (8,8): 1.29; (16,8): 6.87; (8,16): 7.54; (0,8): 9.17 -> 5, 6, 9. Level 1 (0/16 grid):
   * (16,16) 10.1, (0,16) 11.8, (16,0) 11.0, (0,0) 12.5 -> 19, 18, 17. IoUs computed below. */
  int want[6] = {5, 6, 9, 19, 17, 18};
  double v[6], mean = 0, sd = 0;
  for (int i = 0; i < 6; i++) mean += (v[i] = kd_box_iou1(an + 4 * want[i], gt)) / 6;
  for (int i = 0; i < 6; i++) sd += (v[i] - mean) * (v[i] - mean) / 5;
  double t = mean + sqrt(sd);
  CHECK_NEAR(thr[0], t, 1e-6);
  CHECK(thr[1] == 0.0f); /* crowd */
  int expect = 0;
  for (int i = 0; i < 6; i++) {
    const float *a = an + 4 * want[i];
    double cx = 0.5 * (a[0] + a[2]), cy = 0.5 * (a[1] + a[3]);
    int in = cx - gt[0] > 0.01 && cy - gt[1] > 0.01 && gt[2] - cx > 0.01 && gt[3] - cy > 0.01;
    int p = v[i] >= t && in;
    expect += p;
    CHECK_MSG((match[want[i]] == 0) == p, "candidate %d (IoU %.3f, thr %.3f, inside %d): match %d", want[i], v[i], t, in,
              match[want[i]]);
    if (p) CHECK_NEAR(iou[want[i]], v[i], 1e-7);
  }
  CHECK(np == expect && np >= 1);
  /* VLR: every anchor with 0.25 t <= overlap < t, weight its IoU. */
  float vlr[20];
  int nv = kd_ld_vlr(an, 20, gt, crowd, thr, 2, 0.25f, vlr);
  int cnt = 0;
  for (int a = 0; a < 20; a++) {
    double o = kd_ld_overlap(an + 4 * a, gt);
    int in = o >= 0.25 * thr[0] && o < thr[0];
    cnt += in;
    CHECK(in ? vlr[a] == kd_box_iou1(an + 4 * a, gt) : vlr[a] == 0.0f);
  }
  CHECK(nv == cnt && nv > 0);
  /* The overlap by hand for anchor 5 (0,0,16,16): inter (1..16 x 2..15.1) = 196.5 over 256, centres
   * (8,8) and (9.15,8.55), enclosure (0,0)-(17.3,16) */
  double o5 = 196.5 / 256.0 - (1.15 * 1.15 + 0.55 * 0.55) / (17.3 * 17.3 + 16.0 * 16.0);
  CHECK_NEAR(kd_ld_overlap(an + 20, gt), o5, 1e-5);
  /* No GT: everything negative, no VLR. */
  CHECK(kd_atss_assign(an, off, 2, gt, NULL, 0, 3, match, NULL, NULL, &err) == 0 && match[0] == KD_MATCH_NEG);
  CHECK(kd_ld_vlr(an, 20, gt, NULL, thr, 0, 0.25f, vlr) == 0 && vlr[0] == 0.0f);
  CHECK(kd_atss_assign(an, off, 2, gt, NULL, 1, 0, match, NULL, NULL, &err) < 0 && strstr(err.msg, "topk"));
}

/* ---- gradient checks ---- */

enum { QN = 2, QK = 3 };
static int q_tc[QN * 20];
static float q_ts[QN * 20];

static KdTensor *qfl_fwd(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_qfl_loss(c, in, 2, q_tc, q_ts, 2.0f, 3.0f);
}

static float *g_tgt, *g_w, *g_pts;

static KdTensor *dfl_fwd(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_dfl_loss(c, in[0], g_tgt, g_w);
}
static KdTensor *int_fwd(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_integral(c, in[0]);
}
static KdTensor *d2b_fwd(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_distance2bbox(c, in[0], g_pts);
}
static KdTensor *giou_fwd(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_giou_aligned_loss(c, in[0], g_tgt, g_w, 1e-6f);
}
/* logits (4P, B) -> sides -> boxes -> weighted 1 - GIoU */
static KdTensor *chain_fwd(KdCtx *c, KdTensor **in, void *u) {
  int P = *(int *)u;
  KdTensor *s = kd_reshape(c, kd_integral(c, in[0]), 2, (int[]){P, 4});
  return kd_giou_aligned_loss(c, kd_distance2bbox(c, s, g_pts), g_tgt, g_w, 1e-6f);
}

static int grad_checks(void) {
  KdRng r;
  kd_rng_seed(&r, 77, 1);
  int f = 0;
  /* QFL: levels 3x4 and 2x2 (At = 16), 2 images */
  for (int i = 0; i < QN * 16; i++) {
    float u = kd_rng_uniform(&r);
    q_tc[i] = u < 0.1f ? KD_MATCH_IGNORE : (u < 0.45f ? (int)kd_rng_below(&r, QK) : KD_MATCH_NEG);
    q_ts[i] = 0.05f + 0.9f * kd_rng_uniform(&r);
  }
  Gc *g = gc_new("qfl_loss/2 levels", qfl_fwd, NULL);
  gc_input(g, GC_CHECK, 4, (int[]){QN, QK, 3, 4});
  gc_input(g, GC_CHECK, 4, (int[]){QN, QK, 2, 2});
  f += gc_run(g);
  /* DFL and the integral on 6 rows of 17 bins */
  float tg[24], w[24], pts[12];
  for (int i = 0; i < 24; i++) tg[i] = 15.85f * kd_rng_uniform(&r) + 0.02f, w[i] = 0.2f + kd_rng_uniform(&r);
  for (int i = 0; i < 12; i++) pts[i] = 4.0f * kd_rng_uniform(&r);
  g_tgt = tg, g_w = w, g_pts = pts;
  g = gc_new("dfl_loss", dfl_fwd, NULL);
  gc_input(g, GC_CHECK, 2, (int[]){6, 17});
  f += gc_run(g);
  g = gc_new("integral", int_fwd, NULL);
  gc_input(g, GC_CHECK, 2, (int[]){6, 17});
  f += gc_run(g);
  g = gc_new("distance2bbox", d2b_fwd, NULL);
  gc_input(g, GC_CHECK, 2, (int[]){3, 4});
  f += gc_run(g);
  /* GIoU: predictions near overlapping targets, one disjoint. */
  float tb[12] = {0, 0, 4, 3, 1, 1, 2, 5, 10, 10, 11, 11};
  g_tgt = tb;
  g = gc_new("giou_aligned_loss", giou_fwd, NULL);
  float *pb = gc_input(g, GC_CHECK, 2, (int[]){3, 4});
  const float base[12] = {0.5f, -0.3f, 3.2f, 2.6f, 0.7f, 1.8f, 2.9f, 4.1f, 3, 3.5f, 6, 5.2f};
  for (int i = 0; i < 12; i++) pb[i] = base[i] + 0.1f * kd_rng_uniform(&r);
  gc_tol(g, 1e-3, 0, 0);
  f += gc_run(g);
  /* The chain: targets around the points so sides of a few bins. */
  float tb2[12], pp[6] = {4, 4, 8, 6, 2, 9};
  for (int p = 0; p < 3; p++) {
    float *t = tb2 + 4 * p;
    t[0] = pp[2 * p] - 3.0f, t[1] = pp[2 * p + 1] - 2.5f, t[2] = pp[2 * p] + 4.0f, t[3] = pp[2 * p + 1] + 1.5f;
  }
  g_tgt = tb2, g_pts = pp;
  int P = 3;
  g = gc_new("integral->distance2bbox->giou", chain_fwd, &P);
  gc_input(g, GC_CHECK, 2, (int[]){12, 17});
  f += gc_run(g);
  return f;
}

int main(void) {
  test_qfl_hand();
  test_dfl_integral_hand();
  test_box_coder_giou_hand();
  test_atss_hand();
  int f = grad_checks();
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("detect_gfl");
}
