/* GFL's losses and ATSS/VLR against gfl_ref.py (PyTorch float64
 * restatements of mmdetection's and the LD repository's code): QFL over
 * two levels with positives, negatives and ignored locations; DFL with
 * weights; the chain integral -> distance2bbox -> weighted GIoU with the
 * IoU targets; ATSS matches and thresholds and LD's VLR weights on random
 * boxes over three levels. Values and every gradient to 1e-4 relative
 * (each gradient is copied before the next backward, which clears it).
 * Skips (77) without torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "detect/anchors.h"
#include "detect/assign.h"
#include "detect/atss.h"
#include "detect/gflloss.h"
#include "oracle.h"

static int close_rel(double a, double b) { return fabs(a - b) <= 1e-4 * fabs(b) + 1e-6; }

static void compare_vec(const char *what, const Oracle *o, const char *name, const float *v, size_t n) {
  size_t len;
  const double *ref = oracle_get(o, name, &len);
  CHECK_MSG(ref && len == n, "%s: %s missing or %zu values, expected %zu", what, name, len, n);
  int bad = 0;
  size_t worst = 0;
  for (size_t i = 0; ref && len == n && i < n; i++)
    if (!close_rel(v[i], ref[i])) {
      if (!bad) worst = i;
      bad++;
    }
  CHECK_MSG(bad == 0, "%s: %s: %d values differ, first [%zu] %.9g vs torch %.9g", what, name, bad, worst, v[worst],
            ref ? ref[worst] : NAN);
}

enum { N = 2, K = 4, B = 17 };

int main(void) {
  KdRng r;
  kd_rng_seed(&r, 4242, 3);
  KdCtx *c = kd_ctx_new(1 << 22);
  Oracle oq, od, oc, oa;
  Oracle *os[4] = {&oq, &od, &oc, &oa};
  const char *modes[4] = {"qfl", "dfl", "chain", "atss"};
  for (int i = 0; i < 4; i++) CHECK(oracle_open(os[i]) == 0);

  /* QFL: levels 3x5 and 2x2, At = 19. torch gets (location, class) rows in the flat order. */
  const int hw[4] = {3, 5, 2, 2}, At = 19;
  KdTensor *lv[2];
  for (int l = 0; l < 2; l++) {
    lv[l] = kd_tensor4(c, N, K, hw[2 * l], hw[2 * l + 1]);
    for (size_t i = 0; i < lv[l]->numel; i++) lv[l]->data[i] = 2.5f * kd_rng_normal(&r);
    lv[l]->requires_grad = 1;
  }
  int tc[N * 19];
  float ts[N * 19], rows[N * 19 * K];
  for (int i = 0; i < N * At; i++) {
    float u = kd_rng_uniform(&r);
    tc[i] = u < 0.1f ? KD_MATCH_IGNORE : (u < 0.5f ? (int)kd_rng_below(&r, K) : KD_MATCH_NEG);
    ts[i] = kd_rng_uniform(&r);
  }
  for (int n = 0, row = 0; n < N; n++)
    for (int l = 0; l < 2; l++) {
      int HW = hw[2 * l] * hw[2 * l + 1];
      for (int i = 0; i < HW; i++, row++)
        for (int k = 0; k < K; k++) rows[row * K + k] = lv[l]->data[((size_t)n * K + k) * HW + i];
    }
  KdTensor *q = kd_qfl_loss(c, lv, 2, tc, ts, 2.0f, 7.0f);
  CHECK(q && kd_backward(c, q) == 0);
  float grows[N * 19 * K];
  for (int n = 0, row = 0; n < N; n++)
    for (int l = 0; l < 2; l++) {
      int HW = hw[2 * l] * hw[2 * l + 1];
      for (int i = 0; i < HW; i++, row++)
        for (int k = 0; k < K; k++) grows[row * K + k] = lv[l]->grad[((size_t)n * K + k) * HW + i];
    }
  float kf = K, beta = 2.0f, norm = 7.0f;
  oracle_f(&oq, "pred", rows, (size_t)N * At * K);
  oracle_i(&oq, "label", tc, (size_t)N * At);
  oracle_f(&oq, "score", ts, (size_t)N * At);
  oracle_f(&oq, "K", &kf, 1);
  oracle_f(&oq, "beta", &beta, 1);
  oracle_f(&oq, "norm", &norm, 1);

  /* DFL: 10 rows */
  int sh[2] = {10, B};
  KdTensor *x = kd_tensor_new(c, 2, sh);
  float tg[10], w[10], bf = B;
  for (size_t i = 0; i < x->numel; i++) x->data[i] = 1.5f * kd_rng_normal(&r);
  for (int i = 0; i < 10; i++) tg[i] = 15.9f * kd_rng_uniform(&r), w[i] = kd_rng_uniform(&r);
  x->requires_grad = 1;
  KdTensor *d = kd_dfl_loss(c, x, tg, w);
  CHECK(d && kd_backward(c, d) == 0);
  float dgrad[10 * B]; /* a later backward clears this one's gradients */
  memcpy(dgrad, x->grad, sizeof dgrad);
  oracle_f(&od, "pred", x->data, x->numel);
  oracle_f(&od, "target", tg, 10);
  oracle_f(&od, "weight", w, 10);
  oracle_f(&od, "B", &bf, 1);

  /* Chain: 5 boxes, 20 side rows. */
  int sh2[2] = {20, B};
  KdTensor *y = kd_tensor_new(c, 2, sh2);
  for (size_t i = 0; i < y->numel; i++) y->data[i] = 1.2f * kd_rng_normal(&r);
  y->requires_grad = 1;
  float pts[10], tb[20], w5[5];
  for (int p = 0; p < 5; p++) {
    pts[2 * p] = 20 * kd_rng_uniform(&r), pts[2 * p + 1] = 20 * kd_rng_uniform(&r);
    for (int j = 0; j < 2; j++) tb[4 * p + j] = pts[2 * p + j] - 10 * kd_rng_uniform(&r);
    for (int j = 2; j < 4; j++) tb[4 * p + j] = pts[2 * p + j - 2] + 10 * kd_rng_uniform(&r);
    w5[p] = 0.1f + kd_rng_uniform(&r);
  }
  KdTensor *sides = kd_reshape(c, kd_integral(c, y), 2, (int[]){5, 4});
  KdTensor *boxes = kd_distance2bbox(c, sides, pts);
  KdTensor *gl = kd_giou_aligned_loss(c, boxes, tb, w5, 1e-6f);
  CHECK(gl && kd_backward(c, gl) == 0);
  float iou[5];
  for (int p = 0; p < 5; p++) {
    double v;
    kd_giou_aligned(boxes->data + 4 * p, tb + 4 * p, 1e-6f, &v);
    iou[p] = (float)v;
  }
  oracle_f(&oc, "pred", y->data, y->numel);
  oracle_f(&oc, "points", pts, 10);
  oracle_f(&oc, "target", tb, 20);
  oracle_f(&oc, "weight", w5, 5);
  oracle_f(&oc, "B", &bf, 1);

  /* ATSS + VLR: 96 px image, strides 8/16/32, anchors 3 x stride, 6 random boxes. */
  KdAnchorCfg ac;
  kd_anchor_cfg_default(&ac);
  ac.size_mult = 3.0f, ac.nscales = 1, ac.scales[0] = 1, ac.nratios = 1, ac.ratios[0] = 1, ac.torchvision_round = 0;
  int ahw[6] = {12, 12, 6, 6, 3, 3}, off[4];
  int A = kd_anchors_total(&ac, ahw);
  float *an = malloc((size_t)A * 4 * sizeof *an);
  KdError err;
  CHECK(kd_anchors_generate(&ac, ahw, an, off, &err) == 0);
  float gt[24];
  for (int g = 0; g < 6; g++) {
    float s = 6 + 70 * kd_rng_uniform(&r), a = 0.5f + kd_rng_uniform(&r);
    float cx = 90 * kd_rng_uniform(&r) + 3, cy = 90 * kd_rng_uniform(&r) + 3;
    gt[4 * g] = cx - 0.5f * s * a, gt[4 * g + 1] = cy - 0.5f * s / a, gt[4 * g + 2] = cx + 0.5f * s * a;
    gt[4 * g + 3] = cy + 0.5f * s / a;
  }
  int *match = malloc((size_t)A * sizeof *match);
  float thr[6], *vlr = malloc((size_t)A * sizeof *vlr);
  int np = kd_atss_assign(an, off, 3, gt, NULL, 6, 9, match, NULL, thr, &err);
  int nv = kd_ld_vlr(an, A, gt, NULL, thr, 6, 0.25f, vlr);
  CHECK(np > 0 && nv > 0);
  int nlev[3] = {off[1] - off[0], off[2] - off[1], off[3] - off[2]}, topk = 9;
  oracle_f(&oa, "anchors", an, (size_t)A * 4);
  oracle_f(&oa, "gt", gt, 24);
  oracle_i(&oa, "nlevel", nlev, 3);
  oracle_i(&oa, "topk", &topk, 1);

  int rc = oracle_run_many(os, modes, 4, "gfl_ref.py");
  if (rc == 77) {
    printf("gfl_torch: skipped (no torch)\n");
    for (int i = 0; i < 4; i++) oracle_close(os[i]);
    return 77;
  }
  CHECK_MSG(rc == 0, "gfl_ref.py exited %d", rc);
  if (rc == 0) {
    compare_vec("qfl", &oq, "loss", q->data, 1);
    compare_vec("qfl", &oq, "grad", grows, (size_t)N * At * K);
    compare_vec("dfl", &od, "loss", d->data, 1);
    compare_vec("dfl", &od, "grad", dgrad, x->numel);
    compare_vec("chain", &oc, "loss", gl->data, 1);
    compare_vec("chain", &oc, "grad", y->grad, y->numel);
    compare_vec("chain", &oc, "sides", sides->data, 20);
    compare_vec("chain", &oc, "iou", iou, 5);
    float *mf = malloc((size_t)A * sizeof *mf);
    for (int a = 0; a < A; a++) mf[a] = (float)match[a];
    compare_vec("atss", &oa, "match", mf, (size_t)A);
    compare_vec("atss", &oa, "thr", thr, 6);
    compare_vec("vlr", &oa, "vlr", vlr, (size_t)A);
    free(mf);
    printf("gfl_torch: %d ATSS positives, %d VLR anchors of %d; qfl %.6f dfl %.6f giou %.6f\n", np, nv, A, q->data[0],
           d->data[0], gl->data[0]);
  }
  for (int i = 0; i < 4; i++) oracle_close(os[i]);
  free(an), free(match), free(vlr);
  kd_ctx_free(c);
  return check_status("detect_gfl_torch");
}
