/* Nearest-neighbour upsampling, max and average pooling on N,C,H,W maps.
 * Forward loops run over output rows, backward loops over input planes,
 * so no two threads ever add into the same gradient element. */
#include <math.h>
#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

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

/* Planes and pixel width of an N,C,H,W tensor in its layout: a blocked
 * plane is 16 channels, each pixel 16 values. */
static int layout_planes(const KdTensor *x, int *vec) {
  *vec = x->blocked ? 16 : 1;
  return x->shape[0] * (x->shape[1] / *vec);
}

static void upsample_backward(KdCtx *c, KdNode *node) {
  UpSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  int v;
  const int planes = layout_planes(x, &v);
  const size_t ip = (size_t)s->h * s->w * v, op = (size_t)s->ho * s->wo * v;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++) {
    float *g = gx + p * ip;
    const float *src = gy + p * op;
    for (int oh = 0; oh < s->ho; oh++, src += (size_t)s->wo * v) {
      float *grow = g + (size_t)s->row[oh] * s->w * v;
      for (int ow = 0; ow < s->wo; ow++)
        for (int l = 0; l < v; l++) grow[(size_t)s->col[ow] * v + l] += src[(size_t)ow * v + l];
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
  int v;
  y->blocked = x->blocked;
  const size_t rows = (size_t)layout_planes(x, &v) * ho;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    size_t p = r / ho;
    const float *src = x->data + (p * h + row[r % ho]) * w * v;
    float *dst = y->data + r * wo * v;
    for (int ow = 0; ow < wo; ow++)
      for (int l = 0; l < v; l++) dst[(size_t)ow * v + l] = src[(size_t)col[ow] * v + l];
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

/* Input rows (or columns) [lo, hi) of output row o's window, clipped. */
static inline void window_span(const PoolSaved *s, int o, int size, int *lo, int *hi) {
  int a = o * s->stride - s->pad, b = a + s->k;
  *lo = a < 0 ? 0 : a;
  *hi = b > size ? size : b;
}

/* Output row r of a forward (planes of `plane` floats, ho rows each):
 * its plane's input and the window's input rows. */
static inline const float *pool_row(const KdTensor *x, const PoolSaved *s, size_t r, size_t plane, int *h0, int *h1) {
  window_span(s, (int)(r % s->ho), s->h, h0, h1);
  return x->data + r / s->ho * plane;
}

static void maxpool_backward(KdCtx *c, KdNode *node) {
  PoolSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  int v;
  const int planes = layout_planes(x, &v);
  const size_t ip = (size_t)s->h * s->w * v, op = (size_t)s->ho * s->wo * v;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++)
    for (size_t o = 0; o < op; o++) gx[p * ip + s->arg[p * op + o]] += gy[p * op + o];
}

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* Max pooling on the blocked layout: the 16 channels of a pixel are two
 * 8-lane vectors, each lane keeps its maximum and its position (pixel*16 +
 * lane within the plane), by the same rule as window_max. */
static void maxpool_blocked(const KdTensor *x, KdTensor *y, const PoolSaved *s, int *arg) {
  const size_t ip = (size_t)s->h * s->w * 16;
  const size_t rows = (size_t)x->shape[0] * (x->shape[1] / 16) * s->ho;
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    int h0, h1, w0, w1;
    const float *xp = pool_row(x, s, r, ip, &h0, &h1);
    for (int ow = 0; ow < s->wo; ow++) {
      window_span(s, ow, s->w, &w0, &w1);
      for (int half = 0; half < 2; half++) {
        v8f best = {0};
        v8i bi = {0};
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) {
            int pos = (ih * s->w + iw) * 16 + 8 * half;
            v8f val;
            memcpy(&val, xp + pos, sizeof val);
            v8i take = (val > best) | (val != val);
            if (ih == h0 && iw == w0) take = ~(v8i){0};
            best = (v8f)(((v8i)val & take) | ((v8i)best & ~take));
            bi = ((lane + pos) & take) | (bi & ~take);
          }
        size_t o = (r * s->wo + ow) * 16 + 8 * half;
        memcpy(y->data + o, &best, sizeof best);
        if (arg) memcpy(arg + o, &bi, sizeof bi);
      }
    }
  }
}

/* Max of x[h0..h1) x [w0..w1) of one plane and its position. As PyTorch:
 * the first maximum in row-major order wins, NaN propagates. */
static inline void window_max(const float *xp, int w, int h0, int h1, int w0, int w1, float *best_out, int *bi_out) {
  float best = -INFINITY;
  int bi = h0 * w + w0;
  for (int ih = h0; ih < h1; ih++)
    for (int iw = w0; iw < w1; iw++) {
      float v = xp[ih * w + iw];
      if (v > best || isnan(v)) {
        best = v;
        bi = ih * w + iw;
      }
    }
  *best_out = best;
  *bi_out = bi;
}

#ifdef __AVX512F__
static inline __mmask16 first_lanes(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* The ResNet stem's 3x3/2 pad-1 pool, 16 outputs of one output row at a
 * time: columns 2ow-1, 2ow, 2ow+1 are the even and odd lanes of two
 * loads. Same rule as window_max (scan order, ties, NaN). Column 0 (its
 * window is clipped) is left to the caller; returns the first output
 * column not written: wo, or the column whose window leaves the plane. */
static int maxpool_row_k3s2(const float *xp, int w, int h0, int h1, int wo, float *y, int *arg) {
  int end = (w - 2) / 2 + 1; /* last full window: 2ow+1 <= w-1 */
  if (end > wo) end = wo;
  if (end <= 1) return 0;
  float b0;
  int i0;
  window_max(xp, w, h0, h1, 0, 2, &b0, &i0);
  y[0] = b0;
  if (arg) arg[0] = i0;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int ow = 1; ow < end; ow += 16) {
    int n = end - ow < 16 ? end - ow : 16;
    __m512 best = _mm512_set1_ps(-INFINITY);
    __m512i bi = _mm512_setzero_si512();
    for (int ih = h0; ih < h1; ih++) {
      const float *left = xp + (size_t)ih * w + 2 * ow - 1, *right = left + 2;
      __m512 l0 = _mm512_maskz_loadu_ps(first_lanes(2 * n), left), l1 = _mm512_maskz_loadu_ps(first_lanes(2 * n - 16), left + 16);
      __m512 r0 = _mm512_maskz_loadu_ps(first_lanes(2 * n - 1), right);
      __m512 r1 = _mm512_maskz_loadu_ps(first_lanes(2 * n - 17), right + 16);
      __m512 v[3] = {_mm512_permutex2var_ps(l0, even, l1), _mm512_permutex2var_ps(l0, odd, l1), _mm512_permutex2var_ps(r0, even, r1)};
      __m512i pos = _mm512_add_epi32(_mm512_set1_epi32(ih * w + 2 * ow - 1), even);
      for (int j = 0; j < 3; j++) {
        __mmask16 t = _mm512_cmp_ps_mask(v[j], best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v[j], v[j], _CMP_UNORD_Q);
        if (ih == h0 && j == 0) t = 0xffff;
        best = _mm512_mask_mov_ps(best, t, v[j]);
        bi = _mm512_mask_mov_epi32(bi, t, _mm512_add_epi32(pos, _mm512_set1_epi32(j)));
      }
    }
    _mm512_mask_storeu_ps(y + ow, first_lanes(n), best);
    if (arg) _mm512_mask_storeu_epi32(arg + ow, first_lanes(n), bi);
  }
  return end;
}
#endif

static void maxpool_plain(const KdTensor *x, KdTensor *y, const PoolSaved *s, int *arg) {
  const size_t rows = (size_t)x->shape[0] * x->shape[1] * s->ho, ip = (size_t)s->h * s->w;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    int h0, h1, w0, w1;
    const float *xp = pool_row(x, s, r, ip, &h0, &h1);
    float *yr = y->data + r * s->wo;
    int *ar = arg ? arg + r * s->wo : NULL;
    int ow = 0;
#ifdef __AVX512F__
    if (s->k == 3 && s->stride == 2 && s->pad == 1) ow = maxpool_row_k3s2(xp, s->w, h0, h1, s->wo, yr, ar);
#endif
    for (; ow < s->wo; ow++) {
      window_span(s, ow, s->w, &w0, &w1);
      float best;
      int bi;
      window_max(xp, s->w, h0, h1, w0, w1, &best, &bi);
      yr[ow] = best;
      if (ar) ar[ow] = bi;
    }
  }
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
  y->blocked = x->blocked;
  if (x->blocked) maxpool_blocked(x, y, &s, arg);
  else maxpool_plain(x, y, &s, arg);
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
  x = kd_to_plain(c, x);
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
