/* PGD's prediction-guided weighting and background mask (pgdmask.h).
 * Plain C in double: the masks are constants of the loss. */
#include "distill/pgdmask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "detect/gflloss.h"
#include "detect/postprocess.h"

#define EPS_IN 1e-10 /* the official "strictly inside" margin */

static int is_crowd(const KdGtImage *im, int j) { return im->crowd && im->crowd[j]; }

/* The centre (x, y) lies strictly inside box b, as the official valid test. */
static int inside(double x, double y, const float *b) {
  return x - b[0] > EPS_IN && y - b[1] > EPS_IN && b[2] - x > EPS_IN && b[3] - y > EPS_IN;
}

int kd_pgd_draws(const KdGtImage *gt, int n, int topk) {
  int m = 0;
  for (int i = 0; gt && i < n; i++)
    for (int j = 0; j < gt[i].n; j++) m += !is_crowd(&gt[i], j);
  return 2 * topk * m;
}

/* mmdet's BboxOverlaps2D (no +1, union at least 1e-6). */
static double iou(const double *a, const float *b) {
  double w = fmin(a[2], b[2]) - fmax(a[0], b[0]), h = fmin(a[3], b[3]) - fmax(a[1], b[1]);
  double inter = (w > 0.0 ? w : 0.0) * (h > 0.0 ? h : 0.0);
  double u = (a[2] - a[0]) * (a[3] - a[1]) + ((double)b[2] - b[0]) * ((double)b[3] - b[1]) - inter;
  return inter / fmax(u, 1e-6);
}

static int check_levels(KdCtx *c, const KdPgdLevel *lv, int nlev, int n, int *K, int *B) {
  for (int l = 0; l < nlev; l++) {
    const KdTensor *t = lv[l].cls, *d = lv[l].dist;
    if (!t || !d || t->ndim != 4 || d->ndim != 4 || t->blocked || d->blocked || t->shape[0] != n || d->shape[0] != n ||
        t->shape[2] != d->shape[2] || t->shape[3] != d->shape[3] || d->shape[1] % 4 || d->shape[1] < 8 ||
        lv[l].stride < 1) {
      kd_ctx_fail(c, "pgd mask: level %d: the teacher's cls (N,K,H,W) and dist (N,4(R+1),H,W) must be plain, of batch "
                  "%d and one H,W", l, n);
      return -1;
    }
    if (l == 0) *K = t->shape[1], *B = d->shape[1] / 4;
    if (t->shape[1] != *K || d->shape[1] != 4 * *B) {
      kd_ctx_fail(c, "pgd mask: level %d has %d classes and %d bins per side; level 0 has %d and %d", l, t->shape[1],
                  d->shape[1] / 4, *K, *B);
      return -1;
    }
  }
  return 0;
}

int kd_pgd_fg_masks(KdCtx *c, const KdPgdLevel *lv, int nlev, int n, const KdGtImage *gt, float xi, int topk,
                    const float *u, KdTensor **masks) {
  if (kd_ctx_failed(c)) return -1;
  int K = 0, B = 0, off[KD_MAX_LEVELS + 1] = {0};
  if (nlev < 1 || nlev > KD_MAX_LEVELS || n < 1 || topk < 1) {
    kd_ctx_fail(c, "pgd mask: %d levels, %d images, top-k %d", nlev, n, topk);
    return -1;
  }
  if (check_levels(c, lv, nlev, n, &K, &B)) return -1;
  for (int l = 0; l < nlev; l++) {
    off[l + 1] = off[l] + lv[l].cls->shape[2] * lv[l].cls->shape[3];
    if (!(masks[l] = kd_tensor_zeros(c, 4, (int[]){n, 1, lv[l].cls->shape[2], lv[l].cls->shape[3]}))) return -1;
  }
  const int At = off[nlev], k = topk < At ? topk : At;
  double *cx = kd_ctx_alloc(c, (size_t)At * sizeof *cx), *cy = kd_ctx_alloc(c, (size_t)At * sizeof *cy);
  double *box = kd_ctx_alloc(c, (size_t)At * 4 * sizeof *box), *q = kd_ctx_alloc(c, (size_t)At * sizeof *q);
  double *w = kd_ctx_alloc(c, (size_t)At * sizeof *w);
  int *top = kd_ctx_alloc(c, (size_t)k * sizeof *top);
  if (!cx || !cy || !box || !q || !w || !top) return -1;
  for (int l = 0; l < nlev; l++) {
    const int W = lv[l].cls->shape[3], HW = off[l + 1] - off[l];
    for (int p = 0; p < HW; p++) cx[off[l] + p] = (double)(p % W) * lv[l].stride, cy[off[l] + p] = (double)(p / W) * lv[l].stride;
  }
  const float *ud = u;
  for (int i = 0; i < n; i++) {
    const KdGtImage *im = gt ? &gt[i] : NULL;
    if (!im || im->n == 0) continue;
    /* The teacher's boxes of this image, every level. */
    for (int l = 0; l < nlev; l++) {
      const size_t HW = (size_t)(off[l + 1] - off[l]);
      const double s = lv[l].stride;
      for (size_t p = 0; p < HW; p++) {
        const float *d0 = lv[l].dist->data + (size_t)i * 4 * B * HW + p;
        double e[4], *b = box + 4 * (size_t)(off[l] + (int)p);
        for (int j = 0; j < 4; j++) e[j] = s * kd_side_integral(d0 + (size_t)j * B * HW, HW, B);
        const double px = cx[off[l] + p], py = cy[off[l] + p];
        b[0] = px - e[0], b[1] = py - e[1], b[2] = px + e[2], b[3] = py + e[3];
      }
    }
    for (int a = 0; a < At; a++) w[a] = 0.0;
    for (int g = 0; g < im->n; g++) {
      if (is_crowd(im, g)) continue;
      const float *gb = im->boxes + 4 * g;
      const int lab = im->labels ? im->labels[g] : 0;
      if (lab < 0 || lab >= K) {
        kd_ctx_fail(c, "pgd mask: image %d box %d: label %d outside [0, %d)", i, g, lab, K);
        return -1;
      }
      for (int l = 0; l < nlev; l++) {
        const size_t HW = (size_t)(off[l + 1] - off[l]);
        const float *cl = lv[l].cls->data + ((size_t)i * K + lab) * HW;
        for (size_t p = 0; p < HW; p++) {
          const int a = off[l] + (int)p;
          double sc = kd_sigmoidf(cl[p]), ov = iou(box + 4 * (size_t)a, gb);
          q[a] = pow(sc, 1.0 - xi) * pow(ov, xi);
        }
      }
      /* The k largest q, descending; ties keep the lower index. */
      int m = 0;
      for (int a = 0; a < At; a++) {
        if (m == k && !(q[a] > q[top[m - 1]])) continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && q[a] > q[top[j - 1]]) top[j] = top[j - 1], j--;
        top[j] = a;
      }
      double *wk = kd_ctx_alloc(c, (size_t)k * sizeof *wk);
      if (!wk) return -1;
      if (k == 1) {
        wk[0] = 1.0;
        ud += 2; /* the draws of a top-1 fit are unused */
      } else {
        double mx = 0.0, my = 0.0, sxx = 0.0, sxy = 0.0, syy = 0.0;
        double *jx = kd_ctx_alloc(c, (size_t)k * 2 * sizeof *jx);
        if (!jx) return -1;
        for (int j = 0; j < k; j++) {
          jx[2 * j] = cx[top[j]] + ((double)ud[2 * j] - 0.5) * 0.1;
          jx[2 * j + 1] = cy[top[j]] + ((double)ud[2 * j + 1] - 0.5) * 0.1;
          mx += jx[2 * j], my += jx[2 * j + 1];
        }
        ud += 2 * k;
        mx /= k, my /= k;
        for (int j = 0; j < k; j++) {
          double dx = jx[2 * j] - mx, dy = jx[2 * j + 1] - my;
          sxx += dx * dx, sxy += dx * dy, syy += dy * dy;
        }
        sxx /= k, sxy /= k, syy /= k;
        const double det = sxx * syy - sxy * sxy + 1e-10;
        const double ixx = syy / det, ixy = -sxy / det, iyy = sxx / det;
        for (int j = 0; j < k; j++) {
          double dx = cx[top[j]] - mx, dy = cy[top[j]] - my;
          double e = exp(-0.5 * (dx * dx * ixx + 2.0 * dx * dy * ixy + dy * dy * iyy));
          wk[j] = isfinite(e) ? e : 0.0;
        }
      }
      if (k < topk) ud += 2 * (topk - k); /* fewer anchors than top-k: the rest of the draws unused */
      for (int j = 0; j < k; j++) {
        const int a = top[j];
        if (inside(cx[a], cy[a], gb) && wk[j] > w[a]) w[a] = wk[j];
      }
    }
    for (int l = 0; l < nlev; l++) {
      const size_t HW = (size_t)(off[l + 1] - off[l]);
      float *mp = masks[l]->data + (size_t)i * HW;
      for (size_t p = 0; p < HW; p++) mp[p] = (float)w[off[l] + (int)p];
    }
  }
  return 0;
}

KdTensor *kd_pgd_bg_mask(KdCtx *c, const KdGtImage *gt, KdMaskGrid g) {
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.stride < 1) {
    kd_ctx_fail(c, "pgd background mask: bad grid n=%d h=%d w=%d stride=%d", g.n, g.h, g.w, g.stride);
    return NULL;
  }
  KdTensor *m = kd_tensor4(c, g.n, 1, g.h, g.w);
  if (!m) return NULL;
  for (int i = 0; i < g.n; i++)
    for (int y = 0; y < g.h; y++)
      for (int x = 0; x < g.w; x++) {
        int in = 0;
        for (int j = 0; gt && j < gt[i].n && !in; j++)
          in = !is_crowd(&gt[i], j) && inside((double)x * g.stride, (double)y * g.stride, gt[i].boxes + 4 * j);
        m->data[((size_t)i * g.h + y) * g.w + x] = in ? 0.0f : 1.0f;
      }
  return m;
}

/* ---- the masks of a step ---- */

/* The draws of the two masks' Gaussian fits: given, or from the step's stream. */
static const float *draws(const KdDistillInputs *in, int which, int need, KdRng *own) {
  if (in->pgd_in && in->pgd_in->jitter) return in->pgd_in->jitter + (size_t)which * need;
  float *u = kd_ctx_alloc(in->c, (size_t)(need ? need : 1) * sizeof *u);
  if (!u) return NULL;
  KdRng *r = in->rng ? in->rng : own;
  for (int i = 0; i < need; i++) u[i] = kd_rng_uniform(r);
  return u;
}

int kd_pgd_masks(const KdDistillInputs *in, const char *method, float xi_cls, float xi_reg, int topk, KdTensor **cls,
                 KdTensor **reg, KdTensor **bg) {
  KdCtx *c = in->c;
  KdTensor *const *tc = kd_side_out(&in->t, "cls"), *const *td = kd_side_out(&in->t, "dist");
  const KdDistillPgdIn *given = in->pgd_in;
  KdPgdLevel lv[KD_DISTILL_MAX_LEVELS];
  for (int k = 0; k < in->npairs; k++) {
    const KdLevelPair *lp = &in->pairs[k];
    if (given && given->cls[k]) { /* precomputed masks (`kdscope loss`) */
      if (cls) cls[k] = given->cls[k];
      if (reg) reg[k] = given->reg[k];
      if (bg) bg[k] = given->bg[k];
      continue;
    }
    if (!tc || !td || !tc[lp->t] || !td[lp->t]) {
      kd_ctx_fail(c, "%s: the PGD masks need the teacher's class logits \"cls\" and side distributions \"dist\" "
                  "(a GFL teacher)", method);
      return -1;
    }
    lv[k] = (KdPgdLevel){lp->stride, tc[lp->t], td[lp->t]};
  }
  if (given && given->cls[0]) return 0;
  if (!in->gt && (cls || reg)) {
    kd_ctx_fail(c, "%s: the PGD masks need the ground truth", method);
    return -1;
  }
  const int need = kd_pgd_draws(in->gt, in->n, topk);
  KdRng own;
  kd_rng_seed(&own, in->cfg ? (uint64_t)kd_config_int(in->cfg, "train.seed") : 1, 0x70676400u + (uint64_t)in->step);
  const float *u0 = draws(in, 0, need, &own), *u1 = reg ? draws(in, 1, need, &own) : NULL;
  if (!u0 || (reg && !u1)) return -1;
  if (cls && kd_pgd_fg_masks(c, lv, in->npairs, in->n, in->gt, xi_cls, topk, u0, cls)) return -1;
  if (reg && kd_pgd_fg_masks(c, lv, in->npairs, in->n, in->gt, xi_reg, topk, u1, reg)) return -1;
  for (int k = 0; bg && k < in->npairs; k++) {
    const KdTensor *t = lv[k].cls;
    KdMaskGrid g = {in->n, t->shape[2], t->shape[3], in->pairs[k].stride};
    if (!(bg[k] = kd_pgd_bg_mask(c, in->gt, g))) return -1;
  }
  return 0;
}

