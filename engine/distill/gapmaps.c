/* The methods' loss maps on step tensors (gapmaps.h). */
#include "distill/gapmaps.h"

#include <math.h>
#include <stdlib.h>

#include "core/parallel.h"

static KdTensor *map_like(KdCtx *c, const KdTensor *x, const char *what) {
  if (x->ndim != 4 || x->blocked) {
    char sx[64];
    kd_ctx_fail(c, "%s: expected a plain N,C,H,W tensor, got %s%s", what, kd_tensor_shape_str(x, sx, sizeof sx),
                x->blocked ? " (blocked)" : "");
    return NULL;
  }
  int shape[4] = {x->shape[0], 1, x->shape[2], x->shape[3]};
  return kd_tensor_new(c, 4, shape);
}

KdTensor *kd_gapmap_sqdist(KdCtx *c, const KdTensor *x, const KdTensor *y, const KdTensor *cw, KdTensor *const *pw,
                           int npw, const float *coef) {
  if (!x || !y || npw < 0 || npw > 2) return NULL;
  for (int k = 0; k < npw; k++)
    if (!pw[k]) return NULL;
  KdTensor *out = map_like(c, x, "gapmap_sqdist");
  if (!out) return NULL;
  const int n = x->shape[0], ch = x->shape[1], hw = x->shape[2] * x->shape[3];
  int ok = kd_tensor_same_shape(x, y) && !y->blocked && (!cw || cw->numel == (size_t)n * ch);
  for (int k = 0; k < npw; k++) ok = ok && pw[k]->numel == (size_t)n * hw;
  if (!ok) {
    char sx[64], sy[64];
    kd_ctx_fail(c, "gapmap_sqdist: x %s, y %s: expected equal N,C,H,W shapes with N*C weights and N*H*W maps",
                kd_tensor_shape_str(x, sx, 64), kd_tensor_shape_str(y, sy, 64));
    return NULL;
  }
  KD_PARFOR(n)
  for (int i = 0; i < n; i++) {
    double *acc = calloc((size_t)hw, sizeof *acc);
    float *o = out->data + (size_t)i * hw;
    if (!acc) {
      for (int p = 0; p < hw; p++) o[p] = NAN;
      continue;
    }
    for (int k = 0; k < ch; k++) {
      const size_t off = ((size_t)i * ch + k) * hw;
      const double w = cw ? cw->data[(size_t)i * ch + k] : 1.0;
      for (int p = 0; p < hw; p++) {
        const double d = (double)x->data[off + p] - y->data[off + p];
        acc[p] += w * d * d;
      }
    }
    for (int p = 0; p < hw; p++) {
      double f = npw ? 0.0 : coef[0];
      for (int k = 0; k < npw; k++) f += (double)coef[k] * pw[k]->data[(size_t)i * hw + p];
      o[p] = (float)(acc[p] * f);
    }
    free(acc);
  }
  return out;
}

/* log-softmax of n values of x / tau into ls. */
static void log_softmax(const float *x, int n, double tau, double *ls) {
  double mx = -INFINITY, z = 0;
  for (int p = 0; p < n; p++) mx = fmax(mx, x[p] / tau);
  for (int p = 0; p < n; p++) z += exp(x[p] / tau - mx);
  const double lz = mx + log(z);
  for (int p = 0; p < n; p++) ls[p] = x[p] / tau - lz;
}

KdTensor *kd_gapmap_kl_spatial(KdCtx *c, const KdTensor *t, const KdTensor *s, float tau, float coef) {
  if (!t || !s) return NULL;
  KdTensor *out = map_like(c, s, "gapmap_kl_spatial");
  if (!out) return NULL;
  if (!kd_tensor_same_shape(s, t) || t->blocked || !(tau > 0)) {
    char ss[64], st[64];
    kd_ctx_fail(c, "gapmap_kl_spatial: student %s, teacher %s, tau %g: expected equal N,C,H,W shapes and tau > 0",
                kd_tensor_shape_str(s, ss, 64), kd_tensor_shape_str(t, st, 64), (double)tau);
    return NULL;
  }
  const int n = s->shape[0], ch = s->shape[1], hw = s->shape[2] * s->shape[3];
  KD_PARFOR(n)
  for (int i = 0; i < n; i++) {
    double *lt = malloc(sizeof *lt * 3 * (size_t)hw);
    float *o = out->data + (size_t)i * hw;
    if (!lt) {
      for (int p = 0; p < hw; p++) o[p] = NAN;
      continue;
    }
    double *ls = lt + hw, *acc = ls + hw;
    for (int p = 0; p < hw; p++) acc[p] = 0;
    for (int k = 0; k < ch; k++) {
      const size_t off = ((size_t)i * ch + k) * hw;
      log_softmax(t->data + off, hw, tau, lt);
      log_softmax(s->data + off, hw, tau, ls);
      for (int p = 0; p < hw; p++) acc[p] += exp(lt[p]) * (lt[p] - ls[p]);
    }
    for (int p = 0; p < hw; p++) o[p] = (float)(acc[p] * coef);
    free(lt);
  }
  return out;
}
