/* The masks and attention maps declared in masks.h. Masks are drawn in
 * plain C (they carry no gradient); attention is composed from ops. */
#include "distill/masks.h"

#include <math.h>
#include <string.h>

#include "core/ops.h"

static int is_crowd(const KdGtImage *im, int j) { return im->crowd && im->crowd[j]; }

static KdTensor *new_mask(KdCtx *c, KdMaskGrid g) {
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.stride < 1) {
    kd_ctx_fail(c, "mask: bad grid n=%d h=%d w=%d stride=%d", g.n, g.h, g.w, g.stride);
    return NULL;
  }
  int shape[4] = {g.n, 1, g.h, g.w};
  return kd_tensor_zeros(c, 4, shape);
}

/* ---- DeFeat ---- */

int kd_defeat_level(const float *box, float finest_scale, int nlev) {
  float scale = sqrtf((box[2] - box[0] + 1.0f) * (box[3] - box[1] + 1.0f));
  float lvl = floorf(log2f(scale / finest_scale + 1e-6f));
  /* NaN (degenerate box, bad scale) lands on the finest level. */
  if (!(lvl > 0.0f)) return 0;
  return lvl >= (float)(nlev - 1) ? nlev - 1 : (int)lvl;
}

/* Python's int() of v (truncation toward zero) for v clamped to [-1, hi+1]
 * first: the clamp keeps every comparison the rasteriser makes and avoids
 * the undefined conversion of huge or NaN floats. */
static int trunc_clamped(float v, int hi) {
  if (!(v < (float)hi + 1.0f)) v = (float)hi + 1.0f;
  if (v < -1.0f) v = -1.0f;
  return (int)v;
}

KdTensor *kd_mask_defeat(KdCtx *c, const KdGtImage *gt, KdMaskGrid g, int level, int nlev, float finest_scale) {
  KdTensor *m = new_mask(c, g);
  if (!m || !gt) return m;
  const float s = (float)g.stride;
  for (int n = 0; n < g.n; n++) {
    float *mp = m->data + (size_t)n * g.h * g.w;
    const KdGtImage *im = &gt[n];
    for (int j = 0; j < im->n; j++) {
      const float *b = im->boxes + 4 * j;
      if (is_crowd(im, j) || kd_defeat_level(b, finest_scale, nlev) != level) continue;
      int lx = trunc_clamped(b[0] / s, g.w), rx = trunc_clamped(b[2] / s, g.w);
      int ly = trunc_clamped(b[1] / s, g.h), ry = trunc_clamped(b[3] / s, g.h);
      lx = lx < 0 ? 0 : lx, ly = ly < 0 ? 0 : ly;
      rx = rx > g.w ? g.w : rx, ry = ry > g.h ? g.h : ry;
      if (lx == rx || ly == ry) {
        /* The reference indexes (ly, lx) unchecked; off the map it marks nothing. */
        if (lx < g.w && ly < g.h) mp[(size_t)ly * g.w + lx] = 1.0f;
        continue;
      }
      for (int y = ly; y < ry; y++)
        for (int x = lx; x < rx; x++) mp[(size_t)y * g.w + x] = 1.0f;
    }
  }
  return m;
}

/* ---- Gaussian ---- */

KdTensor *kd_mask_gaussian(KdCtx *c, const KdGtImage *gt, KdMaskGrid g, float sigma_ratio) {
  KdTensor *m = new_mask(c, g);
  if (!m || !gt) return m;
  const double s = g.stride;
  for (int n = 0; n < g.n; n++) {
    float *mp = m->data + (size_t)n * g.h * g.w;
    const KdGtImage *im = &gt[n];
    for (int j = 0; j < im->n; j++) {
      const float *b = im->boxes + 4 * j;
      if (is_crowd(im, j)) continue;
      double cx = 0.5 * (b[0] + b[2]), cy = 0.5 * (b[1] + b[3]);
      double sx = fmax(sigma_ratio * (double)(b[2] - b[0]), 0.5), sy = fmax(sigma_ratio * (double)(b[3] - b[1]), 0.5);
      if (!(sx < 1e30 && sy < 1e30 && cx == cx && cy == cy)) continue;
      for (int y = 0; y < g.h; y++) {
        double dy = ((y + 0.5) * s - cy) / sy;
        for (int x = 0; x < g.w; x++) {
          double dx = ((x + 0.5) * s - cx) / sx;
          float v = (float)exp(-0.5 * (dx * dx + dy * dy));
          if (v > mp[(size_t)y * g.w + x]) mp[(size_t)y * g.w + x] = v;
        }
      }
    }
  }
  return m;
}

/* ---- FGD ---- */

/* Index clamp for values already floored/ceiled (doubles, may be huge). */
static int clamp_idx(double v, int hi) { return v < 0.0 ? 0 : v > (double)hi ? hi : (int)v; }

int kd_mask_fgd(KdCtx *c, const KdGtImage *gt, KdMaskGrid g, const int *img_hw, KdTensor **fg, KdTensor **bg) {
  *fg = new_mask(c, g);
  *bg = new_mask(c, g);
  if (!*fg || !*bg) return -1;
  if (img_hw && (img_hw[0] < 1 || img_hw[1] < 1)) {
    kd_ctx_fail(c, "fgd mask: bad image size %dx%d", img_hw[0], img_hw[1]);
    return -1;
  }
  const size_t plane = (size_t)g.h * g.w;
  for (int n = 0; n < g.n; n++) {
    float *f = (*fg)->data + n * plane, *bk = (*bg)->data + n * plane;
    const KdGtImage *im = gt ? &gt[n] : NULL;
    for (int j = 0; im && j < im->n; j++) {
      const float *b = im->boxes + 4 * j;
      if (is_crowd(im, j)) continue;
      float x1, x2, y1, y2;
      if (img_hw) { /* the FGD code: box / img_shape * feature size */
        x1 = b[0] / (float)img_hw[1] * (float)g.w, x2 = b[2] / (float)img_hw[1] * (float)g.w;
        y1 = b[1] / (float)img_hw[0] * (float)g.h, y2 = b[3] / (float)img_hw[0] * (float)g.h;
      } else {
        const float s = (float)g.stride;
        x1 = b[0] / s, x2 = b[2] / s, y1 = b[1] / s, y2 = b[3] / s;
      }
      double wmin = floor(x1), wmax = ceil(x2), hmin = floor(y1), hmax = ceil(y2);
      if (!(wmax >= wmin && hmax >= hmin)) continue; /* empty slice (or NaN) */
      /* The area counts cells off the map too, as the reference does. */
      float a = (float)(1.0 / ((hmax - hmin + 1.0) * (wmax - wmin + 1.0)));
      if (hmin > g.h - 1 || wmin > g.w - 1 || hmax < 0 || wmax < 0) continue;
      int y0 = clamp_idx(hmin, g.h - 1), y1i = clamp_idx(hmax, g.h - 1);
      int x0 = clamp_idx(wmin, g.w - 1), x1i = clamp_idx(wmax, g.w - 1);
      for (int y = y0; y <= y1i; y++)
        for (int x = x0; x <= x1i; x++)
          if (a > f[(size_t)y * g.w + x]) f[(size_t)y * g.w + x] = a;
    }
    size_t cnt = 0;
    for (size_t i = 0; i < plane; i++) cnt += f[i] == 0.0f;
    for (size_t i = 0; i < plane; i++) bk[i] = f[i] == 0.0f ? 1.0f / (float)cnt : 0.0f;
  }
  return 0;
}

/* ---- attention ---- */

/* n,1,len or n,len,1.. flattened to n,len: temp-softmax scaled by len. */
static KdTensor *scaled_softmax(KdCtx *c, KdTensor *g, int n, int len, float temp) {
  int flat[2] = {n, len};
  KdTensor *s = kd_softmax(c, kd_scale(c, kd_reshape(c, g, 2, flat), 1.0f / temp), 1);
  return kd_scale(c, s, (float)len);
}

KdTensor *kd_attention_spatial(KdCtx *c, KdTensor *x, float temp) {
  if (!x) return NULL;
  if (x->ndim != 4 || !(temp > 0.0f)) {
    kd_ctx_fail(c, "attention: expected an N,C,H,W feature and temp > 0 (got %d dims, temp %g)", x->ndim, temp);
    return NULL;
  }
  const int n = x->shape[0], h = x->shape[2], w = x->shape[3];
  KdTensor *g = kd_mean(c, kd_abs(c, x), 1u << 1); /* N,1,H,W */
  int shape[4] = {n, 1, h, w};
  return kd_reshape(c, scaled_softmax(c, g, n, h * w, temp), 4, shape);
}

KdTensor *kd_attention_channel(KdCtx *c, KdTensor *x, float temp) {
  if (!x) return NULL;
  if (x->ndim != 4 || !(temp > 0.0f)) {
    kd_ctx_fail(c, "attention: expected an N,C,H,W feature and temp > 0 (got %d dims, temp %g)", x->ndim, temp);
    return NULL;
  }
  const int n = x->shape[0], ch = x->shape[1];
  KdTensor *g = kd_mean(c, kd_abs(c, x), (1u << 2) | (1u << 3)); /* N,C,1,1 */
  int shape[4] = {n, ch, 1, 1};
  return kd_reshape(c, scaled_softmax(c, g, n, ch, temp), 4, shape);
}
