/* Global-knowledge distillation's ops (gk_ops.h): crop pooling, the
 * prototype-similarity SmoothL1, cosines and the soft box mask. */
#include "distill/gk_ops.h"

#include <math.h>
#include <string.h>

#include "core/ops.h"

#define COS_EPS 1e-8

typedef struct {
  const KdGkCrop *crops;
  int R;
} PoolSaved;

static void pool_backward(KdCtx *c, KdNode *node) {
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  const PoolSaved *sv = node->saved;
  const int C = x->shape[1], H = x->shape[2], W = x->shape[3];
  float *gx = kd_grad(c, x);
  const float *g = node->out->grad;
  if (!gx) return;
  for (int i = 0; i < sv->R; i++) {
    const KdGkCrop *k = &sv->crops[i];
    const float inv = 1.0f / (float)((k->r1 - k->r0 + 1) * (k->c1 - k->c0 + 1));
    for (int ch = 0; ch < C; ch++) {
      const float gi = g[(size_t)i * C + ch] * inv;
      float *p = gx + ((size_t)k->n * C + ch) * H * W;
      for (int y = k->r0; y <= k->r1; y++)
        for (int xx = k->c0; xx <= k->c1; xx++) p[y * W + xx] += gi;
    }
  }
}

KdTensor *kd_gk_pool(KdCtx *c, KdTensor *x, const KdGkCrop *crops, int R) {
  if (!x) return NULL;
  if (x->ndim != 4 || x->blocked || R < 1) {
    kd_ctx_fail(c, "gk pool: expected a plain N,C,H,W map and at least one crop");
    return NULL;
  }
  const int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  for (int i = 0; i < R; i++) {
    const KdGkCrop *k = &crops[i];
    if (k->n < 0 || k->n >= N || k->r0 < 0 || k->r1 >= H || k->r0 > k->r1 || k->c0 < 0 || k->c1 >= W || k->c0 > k->c1) {
      kd_ctx_fail(c, "gk pool: crop %d (image %d, rows %d..%d, cols %d..%d) is off the %dx%d map", i, k->n, k->r0, k->r1,
                  k->c0, k->c1, H, W);
      return NULL;
    }
  }
  KdTensor *out = kd_tensor_new(c, 2, (int[]){R, C});
  if (!out) return NULL;
  for (int i = 0; i < R; i++) {
    const KdGkCrop *k = &crops[i];
    const double inv = 1.0 / ((k->r1 - k->r0 + 1) * (k->c1 - k->c0 + 1));
    for (int ch = 0; ch < C; ch++) {
      const float *p = x->data + ((size_t)k->n * C + ch) * H * W;
      double s = 0.0;
      for (int y = k->r0; y <= k->r1; y++)
        for (int xx = k->c0; xx <= k->c1; xx++) s += p[y * W + xx];
      out->data[(size_t)i * C + ch] = (float)(s * inv);
    }
  }
  KdGkCrop *keep = kd_ctx_alloc(c, sizeof *keep * (size_t)R);
  if (!keep) return NULL;
  memcpy(keep, crops, sizeof *keep * (size_t)R);
  PoolSaved *sv = kd_record(c, "gk_pool", out, &x, 1, pool_backward, sizeof *sv);
  if (sv) sv->crops = keep, sv->R = R;
  return out;
}

double kd_gk_cos(const float *a, const float *b, int d) {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (int k = 0; k < d; k++) ab += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
  const double den = sqrt(aa) * sqrt(bb);
  return ab / (den > COS_EPS ? den : COS_EPS);
}

typedef struct {
  const float *protos, *dt, *w;
  int M;
} R2iSaved;

/* d SmoothL1_1(u) / du */
static double huber_grad(double u) { return u > 1.0 ? 1.0 : u < -1.0 ? -1.0 : u; }

static void r2i_backward(KdCtx *c, KdNode *node) {
  KdTensor *ps = node->in[0];
  if (!ps->requires_grad) return;
  const R2iSaved *sv = node->saved;
  const int R = ps->shape[0], C = ps->shape[1], M = sv->M;
  float *gp = kd_grad(c, ps);
  if (!gp) return;
  const double g = node->out->grad[0] / ((double)R * M);
  for (int i = 0; i < R; i++) {
    const float *p = ps->data + (size_t)i * C;
    double pp = 0.0;
    for (int k = 0; k < C; k++) pp += (double)p[k] * p[k];
    const double np = sqrt(pp);
    for (int j = 0; j < M; j++) {
      const float *q = sv->protos + (size_t)j * C;
      double pq = 0.0, qq = 0.0;
      for (int k = 0; k < C; k++) pq += (double)p[k] * q[k], qq += (double)q[k] * q[k];
      const double nq = sqrt(qq), den = np * nq;
      const double cs = pq / (den > COS_EPS ? den : COS_EPS);
      const double u = sv->w[i] * cs - sv->w[i] * sv->dt[(size_t)i * M + j];
      const double gc = g * huber_grad(u) * sv->w[i]; /* d loss / d cos */
      if (gc == 0.0) continue;
      if (den > COS_EPS) {
        for (int k = 0; k < C; k++) gp[(size_t)i * C + k] += (float)(gc * (q[k] / den - cs * p[k] / pp));
      } else {
        for (int k = 0; k < C; k++) gp[(size_t)i * C + k] += (float)(gc * q[k] / COS_EPS);
      }
    }
  }
}

KdTensor *kd_gk_r2i(KdCtx *c, KdTensor *ps, const float *protos_s, int M, const float *d_t, const float *w) {
  if (!ps) return NULL;
  KdTensor *out = kd_tensor_zeros(c, 1, (int[]){1});
  if (!out) return NULL;
  const int R = ps->shape[0], C = ps->shape[1];
  if (R < 1 || M < 1) return out;
  double s = 0.0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < M; j++) {
      const double u = w[i] * kd_gk_cos(ps->data + (size_t)i * C, protos_s + (size_t)j * C, C) - w[i] * d_t[(size_t)i * M + j];
      s += fabs(u) < 1.0 ? 0.5 * u * u : fabs(u) - 0.5;
    }
  out->data[0] = (float)(s / ((double)R * M));
  R2iSaved *sv = kd_record(c, "gk_r2i", out, &ps, 1, r2i_backward, sizeof *sv);
  if (sv) *sv = (R2iSaved){.protos = protos_s, .dt = d_t, .w = w, .M = M};
  return out;
}

void kd_gk_mask_box(float *m, int h, int w, int stride, const float *box, float v) {
  const float s = (float)stride;
  int x0 = (int)(box[0] / s), y0 = (int)(box[1] / s), x1 = (int)(box[2] / s), y1 = (int)(box[3] / s);
  if (x1 <= x0 || y1 <= y0) {
    if (y0 >= 0 && y0 < h && x0 >= 0 && x0 < w && m[y0 * w + x0] < v) m[y0 * w + x0] = v;
    return;
  }
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > w) x1 = w;
  if (y1 > h) y1 = h;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) m[y * w + x] = v;
}
