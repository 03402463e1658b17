/* Nearest-neighbour upsampling, max and average pooling on N,C,H,W maps.
 * Forward loops run over output rows, backward loops over input planes,
 * so no two threads ever add into the same gradient element. */
#include <math.h>

#include "core/ops.h"
#include "core/parallel.h"

static int need4(KdCtx *c, const char *op, const KdTensor *x) {
  if (x->ndim == 4) return 0;
  char sx[64];
  kd_ctx_fail(c, "%s: need a 4-D N,C,H,W input, got %s", op, kd_tensor_shape_str(x, sx, 64));
  return -1;
}

/* ---------- nearest upsampling ---------- */

typedef struct {
  int h, w, ho, wo;
  int *row, *col; /* source row of each output row, source column of each output column */
} UpSaved;

/* PyTorch's legacy 'nearest' index, float arithmetic included, so that a
 * size that is not a multiple maps exactly as F.interpolate(size=...). */
static int torch_nearest(int dst, int in, int out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  float scale = (float)in / (float)out;
  int src = (int)floorf((float)dst * scale);
  return src < in - 1 ? src : in - 1;
}

static void upsample_backward(KdCtx *c, KdNode *node) {
  UpSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const int planes = x->shape[0] * x->shape[1];
  const size_t ip = (size_t)s->h * s->w, op = (size_t)s->ho * s->wo;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++) {
    float *g = gx + p * ip;
    const float *src = gy + p * op;
    for (int oh = 0; oh < s->ho; oh++, src += s->wo) {
      float *grow = g + (size_t)s->row[oh] * s->w;
      for (int ow = 0; ow < s->wo; ow++) grow[s->col[ow]] += src[ow];
    }
  }
}

static KdTensor *upsample(KdCtx *c, KdTensor *x, int ho, int wo, int factor) {
  const int n = x->shape[0], ch = x->shape[1], h = x->shape[2], w = x->shape[3];
  KdTensor *y = kd_tensor4(c, n, ch, ho, wo);
  int *row = kd_ctx_alloc(c, (size_t)(ho + wo) * sizeof(int));
  if (!y || !row) return NULL;
  int *col = row + ho;
  for (int i = 0; i < ho; i++) row[i] = factor ? i / factor : torch_nearest(i, h, ho);
  for (int i = 0; i < wo; i++) col[i] = factor ? i / factor : torch_nearest(i, w, wo);
  const size_t rows = (size_t)n * ch * ho;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    size_t p = r / ho;
    const float *src = x->data + (p * h + row[r % ho]) * w;
    float *dst = y->data + r * wo;
    for (int ow = 0; ow < wo; ow++) dst[ow] = src[col[ow]];
  }
  KdTensor *in[1] = {x};
  UpSaved *s = kd_record(c, "upsample_nearest", y, in, 1, upsample_backward, sizeof *s);
  if (s) *s = (UpSaved){.h = h, .w = w, .ho = ho, .wo = wo, .row = row, .col = col};
  return y;
}

KdTensor *kd_upsample_nearest(KdCtx *c, KdTensor *x, int factor) {
  if (!x || need4(c, "upsample_nearest", x)) return NULL;
  if (factor < 1) {
    kd_ctx_fail(c, "upsample_nearest: factor %d (must be >= 1)", factor);
    return NULL;
  }
  return upsample(c, x, x->shape[2] * factor, x->shape[3] * factor, factor);
}

KdTensor *kd_upsample_nearest_to(KdCtx *c, KdTensor *x, int h, int w) {
  if (!x || need4(c, "upsample_nearest_to", x)) return NULL;
  if (h < 1 || w < 1) {
    char sx[64];
    kd_ctx_fail(c, "upsample_nearest_to: target size %dx%d for input %s", h, w, kd_tensor_shape_str(x, sx, 64));
    return NULL;
  }
  return upsample(c, x, h, w, 0);
}

/* ---------- max / average pooling ---------- */

typedef struct {
  int h, w, ho, wo, k, stride, pad;
  int *arg; /* max: input position (within the plane) of each output's max */
} PoolSaved;

static int pool_geometry(KdCtx *c, const char *op, const KdTensor *x, int k, int stride, int pad, PoolSaved *s) {
  char sx[64];
  s->k = k;
  s->stride = stride > 0 ? stride : k;
  s->pad = pad;
  s->h = x->shape[2];
  s->w = x->shape[3];
  if (k < 1 || pad < 0 || pad > k / 2) {
    kd_ctx_fail(c, "%s: kernel %d with padding %d on input %s (need k >= 1, 0 <= pad <= k/2)", op, k, pad,
                kd_tensor_shape_str(x, sx, 64));
    return -1;
  }
  s->ho = (s->h + 2 * pad - k) / s->stride + 1;
  s->wo = (s->w + 2 * pad - k) / s->stride + 1;
  if (s->h + 2 * pad < k || s->w + 2 * pad < k) {
    kd_ctx_fail(c, "%s: input %s smaller than kernel %d with padding %d", op, kd_tensor_shape_str(x, sx, 64), k, pad);
    return -1;
  }
  return 0;
}

static void maxpool_backward(KdCtx *c, KdNode *node) {
  PoolSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const int planes = x->shape[0] * x->shape[1];
  const size_t ip = (size_t)s->h * s->w, op = (size_t)s->ho * s->wo;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++)
    for (size_t o = 0; o < op; o++) gx[p * ip + s->arg[p * op + o]] += gy[p * op + o];
}

KdTensor *kd_maxpool2d(KdCtx *c, KdTensor *x, int k, int stride, int pad) {
  if (!x || need4(c, "maxpool2d", x)) return NULL;
  PoolSaved s = {0};
  if (pool_geometry(c, "maxpool2d", x, k, stride, pad, &s)) return NULL;
  KdTensor *y = kd_tensor4(c, x->shape[0], x->shape[1], s.ho, s.wo);
  if (!y) return NULL;
  const int rec = kd_ctx_grad_enabled(c) && x->requires_grad;
  int *arg = rec ? kd_ctx_alloc(c, y->numel * sizeof(int)) : NULL;
  if (rec && !arg) return NULL;
  const size_t rows = (size_t)x->shape[0] * x->shape[1] * s.ho, ip = (size_t)s.h * s.w;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    size_t p = r / s.ho;
    int oh = (int)(r % s.ho);
    const float *xp = x->data + p * ip;
    int h0 = oh * s.stride - pad, h1 = h0 + k;
    h0 = h0 < 0 ? 0 : h0;
    h1 = h1 > s.h ? s.h : h1;
    for (int ow = 0; ow < s.wo; ow++) {
      int w0 = ow * s.stride - pad, w1 = w0 + k;
      w0 = w0 < 0 ? 0 : w0;
      w1 = w1 > s.w ? s.w : w1;
      /* As PyTorch: first maximum wins, NaN propagates. */
      float best = -INFINITY;
      int bi = h0 * s.w + w0;
      for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
          float v = xp[ih * s.w + iw];
          if (v > best || isnan(v)) {
            best = v;
            bi = ih * s.w + iw;
          }
        }
      y->data[r * s.wo + ow] = best;
      if (arg) arg[r * s.wo + ow] = bi;
    }
  }
  KdTensor *in[1] = {x};
  PoolSaved *sv = kd_record(c, "maxpool2d", y, in, 1, maxpool_backward, sizeof *sv);
  if (sv) {
    *sv = s;
    sv->arg = arg;
  }
  return y;
}

/* Padding counts as zeros in the divisor (count_include_pad), so every
 * window divides by k*k. */
static void avgpool_backward(KdCtx *c, KdNode *node) {
  PoolSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const int planes = x->shape[0] * x->shape[1];
  const size_t ip = (size_t)s->h * s->w, op = (size_t)s->ho * s->wo;
  const float inv = 1.0f / (float)(s->k * s->k);
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++) {
    float *g = gx + p * ip;
    for (int oh = 0; oh < s->ho; oh++) {
      int h0 = oh * s->stride - s->pad, h1 = h0 + s->k;
      h0 = h0 < 0 ? 0 : h0;
      h1 = h1 > s->h ? s->h : h1;
      for (int ow = 0; ow < s->wo; ow++) {
        int w0 = ow * s->stride - s->pad, w1 = w0 + s->k;
        w0 = w0 < 0 ? 0 : w0;
        w1 = w1 > s->w ? s->w : w1;
        float v = gy[p * op + (size_t)oh * s->wo + ow] * inv;
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) g[ih * s->w + iw] += v;
      }
    }
  }
}

KdTensor *kd_avgpool2d(KdCtx *c, KdTensor *x, int k, int stride, int pad) {
  if (!x || need4(c, "avgpool2d", x)) return NULL;
  PoolSaved s = {0};
  if (pool_geometry(c, "avgpool2d", x, k, stride, pad, &s)) return NULL;
  KdTensor *y = kd_tensor4(c, x->shape[0], x->shape[1], s.ho, s.wo);
  if (!y) return NULL;
  const size_t rows = (size_t)x->shape[0] * x->shape[1] * s.ho, ip = (size_t)s.h * s.w;
  const float inv = 1.0f / (float)(k * k);
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    size_t p = r / s.ho;
    int oh = (int)(r % s.ho);
    const float *xp = x->data + p * ip;
    int h0 = oh * s.stride - pad, h1 = h0 + k;
    h0 = h0 < 0 ? 0 : h0;
    h1 = h1 > s.h ? s.h : h1;
    for (int ow = 0; ow < s.wo; ow++) {
      int w0 = ow * s.stride - pad, w1 = w0 + k;
      w0 = w0 < 0 ? 0 : w0;
      w1 = w1 > s.w ? s.w : w1;
      float acc = 0.0f;
      for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) acc += xp[ih * s.w + iw];
      y->data[r * s.wo + ow] = acc * inv;
    }
  }
  KdTensor *in[1] = {x};
  PoolSaved *sv = kd_record(c, "avgpool2d", y, in, 1, avgpool_backward, sizeof *sv);
  if (sv) {
    *sv = s;
    sv->arg = NULL;
  }
  return y;
}

KdTensor *kd_global_avgpool(KdCtx *c, KdTensor *x) {
  if (!x || need4(c, "global_avgpool", x)) return NULL;
  return kd_mean(c, x, 1u << 2 | 1u << 3);
}
