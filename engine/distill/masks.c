/* The masks and attention maps declared in masks.h. Masks are drawn in
 * plain C (they carry no gradient); attention is composed from ops. */
#include "distill/masks.h"

#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"
#include "detect/postprocess.h"

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

/* ---- attention ----
 * Fused forward/backward ops: mean |x| over one set of axes, then a
 * temperature softmax over the other, in contiguous loops (the generic
 * strided reductions cost more than the rest of FGD together).
 * With s = softmax(g / temp) and out = L * s (L = H*W or C):
 *   dg = L * s * (dout - sum(dout * s)) / temp,  dx = dg * sign(x) / (count averaged). */

typedef struct {
  float temp;
  int spatial;
} AttSaved;

static int att_check(KdCtx *c, const KdTensor *x, float temp) {
  if (x->ndim == 4 && temp > 0.0f) return 0;
  kd_ctx_fail(c, "attention: expected an N,C,H,W feature and temp > 0 (got %d dims, temp %g)", x->ndim, temp);
  return -1;
}

/* s[0..len) <- len * softmax(g / temp) */
static void scaled_softmax(float *g, int len, float temp) {
  float mx = -INFINITY;
  for (int i = 0; i < len; i++) mx = fmaxf(mx, g[i] / temp);
  double z = 0.0;
  for (int i = 0; i < len; i++) z += (double)(g[i] = expf(g[i] / temp - mx));
  const float k = (float)((double)len / z);
  for (int i = 0; i < len; i++) g[i] *= k;
}

static void att_backward(KdCtx *c, KdNode *node) {
  KdTensor *x = node->in[0], *y = node->out;
  if (!x->requires_grad) return;
  const AttSaved *sv = node->saved;
  const int n = x->shape[0], ch = x->shape[1], hw = x->shape[2] * x->shape[3];
  const int len = sv->spatial ? hw : ch;
  const float avg = 1.0f / (float)(sv->spatial ? ch : hw);
  float *gx = kd_grad(c, x);
  const float *gy = y->grad, *yd = y->data, *xd = x->data;
  float *dg = kd_ctx_alloc(c, (size_t)n * len * sizeof *dg);
  if (!gx || !dg) return;
  for (int i = 0; i < n; i++) {
    const float *g = gy + (size_t)i * len, *a = yd + (size_t)i * len; /* a = len * s */
    double dot = 0.0;
    for (int k = 0; k < len; k++) dot += (double)g[k] * a[k];
    const float m = (float)(dot / len);
    for (int k = 0; k < len; k++) dg[(size_t)i * len + k] = a[k] * (g[k] - m) / sv->temp * avg;
  }
  KD_PARFOR(n * ch)
  for (int r = 0; r < n * ch; r++) {
    const int i = r / ch, cc = r % ch;
    const float *xr = xd + (size_t)r * hw;
    float *gr = gx + (size_t)r * hw;
    if (sv->spatial) {
      const float *d = dg + (size_t)i * hw;
      for (int p = 0; p < hw; p++) gr[p] += xr[p] > 0.0f ? d[p] : xr[p] < 0.0f ? -d[p] : 0.0f;
    } else {
      const float d = dg[(size_t)i * ch + cc];
      for (int p = 0; p < hw; p++) gr[p] += xr[p] > 0.0f ? d : xr[p] < 0.0f ? -d : 0.0f;
    }
  }
}

static KdTensor *attention(KdCtx *c, KdTensor *x, float temp, int spatial) {
  if (!x || att_check(c, x, temp)) return NULL;
  const int n = x->shape[0], ch = x->shape[1], h = x->shape[2], w = x->shape[3], hw = h * w;
  KdTensor *y = spatial ? kd_tensor4(c, n, 1, h, w) : kd_tensor4(c, n, ch, 1, 1);
  if (!y) return NULL;
  const float *xd = x->data;
  KD_PARFOR(n)
  for (int i = 0; i < n; i++) {
    const float *xi = xd + (size_t)i * ch * hw;
    if (spatial) {
      float *g = y->data + (size_t)i * hw;
      for (int p = 0; p < hw; p++) g[p] = 0.0f;
      for (int cc = 0; cc < ch; cc++)
        for (int p = 0; p < hw; p++) g[p] += fabsf(xi[(size_t)cc * hw + p]);
      for (int p = 0; p < hw; p++) g[p] /= (float)ch;
      scaled_softmax(g, hw, temp);
    } else {
      float *g = y->data + (size_t)i * ch;
      for (int cc = 0; cc < ch; cc++) {
        float s = 0.0f;
        for (int p = 0; p < hw; p++) s += fabsf(xi[(size_t)cc * hw + p]);
        g[cc] = s / (float)hw;
      }
      scaled_softmax(g, ch, temp);
    }
  }
  KdTensor *in[1] = {x};
  AttSaved *sv = kd_record(c, spatial ? "attention_spatial" : "attention_channel", y, in, 1, att_backward, sizeof *sv);
  if (sv) *sv = (AttSaved){temp, spatial};
  return y;
}

KdTensor *kd_attention_spatial(KdCtx *c, KdTensor *x, float temp) { return attention(c, x, temp, 1); }
KdTensor *kd_attention_channel(KdCtx *c, KdTensor *x, float temp) { return attention(c, x, temp, 0); }

/* ---- weighted squared distance ----
 * out[k] = sum_{n,c,p} cw[n,c] * pw_k[n,p] * (x - y + b[n,c])^2, one pass
 * forward and one backward, accumulated in double. */

typedef struct {
  KdTensor *cw, *pw[2];
  int npw;
} SqSaved;

static void sq_backward(KdCtx *c, KdNode *node) {
  KdTensor *x = node->in[0], *y = node->in[1], *b = node->in[2];
  const SqSaved *sv = node->saved;
  const int n = x->shape[0], ch = x->shape[1], hw = x->shape[2] * x->shape[3];
  const float *g = node->out->grad, *xd = x->data, *yd = y->data;
  float *gx = x->requires_grad ? kd_grad(c, x) : NULL, *gy = y->requires_grad ? kd_grad(c, y) : NULL;
  float *gb = b && b->requires_grad ? kd_grad(c, b) : NULL;
  const float *p0 = sv->npw > 0 ? sv->pw[0]->data : NULL, *p1 = sv->npw > 1 ? sv->pw[1]->data : NULL;
  const float g0 = g[0], g1 = sv->npw > 1 ? g[1] : 0.0f;
  KD_PARFOR(n * ch)
  for (int r = 0; r < n * ch; r++) {
    const int i = r / ch;
    const size_t o = (size_t)r * hw;
    const float bias = b ? b->data[r] : 0.0f, k = 2.0f * (sv->cw ? sv->cw->data[r] : 1.0f);
    const float *w0 = p0 ? p0 + (size_t)i * hw : NULL, *w1 = p1 ? p1 + (size_t)i * hw : NULL;
    double sb = 0.0;
    for (int p = 0; p < hw; p++) {
      float wsum = w0 ? g0 * w0[p] + (w1 ? g1 * w1[p] : 0.0f) : g0;
      float d = k * (xd[o + p] - yd[o + p] + bias) * wsum;
      if (gx) gx[o + p] += d;
      if (gy) gy[o + p] -= d;
      sb += d;
    }
    if (gb) gb[r] += (float)sb;
  }
}

KdTensor *kd_sqdist_sums(KdCtx *c, KdTensor *x, KdTensor *y, KdTensor *b, KdTensor *cw, KdTensor *const *pw, int npw) {
  if (!x || !y || npw < 0 || npw > 2) return NULL;
  for (int k = 0; k < npw; k++)
    if (!pw[k]) return NULL;
  char sx[64], sy[64];
  const int ok4 = x->ndim == 4 && kd_tensor_same_shape(x, y);
  const int n = ok4 ? x->shape[0] : 0, ch = ok4 ? x->shape[1] : 0, hw = ok4 ? x->shape[2] * x->shape[3] : 0;
  int ok = ok4 && (!b || b->numel == (size_t)n * ch) && (!cw || cw->numel == (size_t)n * ch);
  for (int k = 0; k < npw; k++) ok = ok && pw[k]->numel == (size_t)n * hw;
  if (!ok) {
    kd_ctx_fail(c, "sqdist_sums: x %s, y %s: expected equal N,C,H,W shapes with N*C biases/weights and N*H*W maps",
                kd_tensor_shape_str(x, sx, 64), kd_tensor_shape_str(y, sy, 64));
    return NULL;
  }
  int len = npw ? npw : 1;
  KdTensor *out = kd_tensor_new(c, 1, &len);
  if (!out) return NULL;
  const float *p0 = npw > 0 ? pw[0]->data : NULL, *p1 = npw > 1 ? pw[1]->data : NULL;
  double s0 = 0.0, s1 = 0.0;
  KD_PRAGMA(omp parallel for schedule(static) reduction(+ : s0, s1))
  for (int r = 0; r < n * ch; r++) {
    const int i = r / ch;
    const size_t o = (size_t)r * hw;
    const float bias = b ? b->data[r] : 0.0f, k = cw ? cw->data[r] : 1.0f;
    const float *w0 = p0 ? p0 + (size_t)i * hw : NULL, *w1 = p1 ? p1 + (size_t)i * hw : NULL;
    double a0 = 0.0, a1 = 0.0;
    for (int p = 0; p < hw; p++) {
      float d = x->data[o + p] - y->data[o + p] + bias, dd = d * d;
      a0 += w0 ? w0[p] * dd : dd;
      if (w1) a1 += w1[p] * dd;
    }
    s0 += k * a0, s1 += k * a1;
  }
  out->data[0] = (float)s0;
  if (npw > 1) out->data[1] = (float)s1;
  KdTensor *in[3] = {x, y, b};
  SqSaved *sv = kd_record(c, "sqdist_sums", out, in, 3, sq_backward, sizeof *sv);
  if (sv) *sv = (SqSaved){cw, {npw > 0 ? pw[0] : NULL, npw > 1 ? pw[1] : NULL}, npw};
  return out;
}

KdTensor *kd_mask_richness(KdCtx *c, const KdTensor *t, double *sum) {
  if (kd_ctx_failed(c)) return NULL;
  if (!t || t->ndim != 4 || t->blocked) {
    kd_ctx_fail(c, "richness mask: teacher logits must be plain N,C,H,W");
    return NULL;
  }
  const int N = t->shape[0], C = t->shape[1];
  const size_t HW = (size_t)t->shape[2] * t->shape[3];
  KdTensor *m = kd_tensor4(c, N, 1, t->shape[2], t->shape[3]);
  if (!m) return NULL;
  *sum = 0.0;
  for (int n = 0; n < N; n++)
    for (size_t i = 0; i < HW; i++) {
      float v = 0.0f;
      for (int k = 0; k < C; k++) v = fmaxf(v, kd_sigmoidf(t->data[((size_t)n * C + k) * HW + i]));
      m->data[(size_t)n * HW + i] = v;
      *sum += v;
    }
  return m;
}
