/* Softmax and log-softmax along one axis of any tensor.
 *
 * The tensor is seen as outer x L x inner (L = the axis' size, inner = the
 * product of the dims after it). Work is split into tiles of up to TILE
 * inner positions, each handled by one thread: the L values of a position
 * are strided by `inner`, so a tile walks L contiguous rows of TILE floats,
 * which keeps softmax over C of an NCHW map cache-friendly. The max is
 * subtracted first, so exp never overflows. */
#include <float.h>
#include <math.h>

#include "core/ops.h"
#include "core/parallel.h"

#define TILE 256

typedef struct {
  size_t outer, len, inner;
  int log; /* log-softmax */
} SoftmaxSaved;

static int axis_dims(KdCtx *c, const char *op, const KdTensor *x, int axis, SoftmaxSaved *s) {
  if (axis < 0) axis += x->ndim;
  if (axis < 0 || axis >= x->ndim) {
    char sx[64];
    kd_ctx_fail(c, "%s: axis %d out of range for input %s", op, axis, kd_tensor_shape_str(x, sx, 64));
    return -1;
  }
  s->outer = s->inner = 1;
  for (int d = 0; d < axis; d++) s->outer *= (size_t)x->shape[d];
  for (int d = axis + 1; d < x->ndim; d++) s->inner *= (size_t)x->shape[d];
  s->len = (size_t)x->shape[axis];
  return 0;
}

/* Backward, tile by tile:
 *   softmax:     gx = y * (gy - sum(gy * y))
 *   log-softmax: gx = gy - exp(y) * sum(gy) */
static void softmax_backward(KdCtx *c, KdNode *node) {
  SoftmaxSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad, *yd = node->out->data;
  const size_t L = s->len, inner = s->inner, tiles = (inner + TILE - 1) / TILE;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t t = 0; t < s->outer * tiles; t++) {
    size_t o = t / tiles, i0 = t % tiles * TILE, w = inner - i0 < TILE ? inner - i0 : TILE;
    size_t base = o * L * inner + i0;
    float dot[TILE];
    for (size_t i = 0; i < w; i++) dot[i] = 0.0f;
    for (size_t l = 0; l < L; l++) {
      const float *g = gy + base + l * inner, *y = yd + base + l * inner;
      if (s->log)
        for (size_t i = 0; i < w; i++) dot[i] += g[i];
      else
        for (size_t i = 0; i < w; i++) dot[i] += g[i] * y[i];
    }
    for (size_t l = 0; l < L; l++) {
      const float *g = gy + base + l * inner, *y = yd + base + l * inner;
      float *dst = gx + base + l * inner;
      if (s->log)
        for (size_t i = 0; i < w; i++) dst[i] += g[i] - expf(y[i]) * dot[i];
      else
        for (size_t i = 0; i < w; i++) dst[i] += y[i] * (g[i] - dot[i]);
    }
  }
}

static KdTensor *softmax_impl(KdCtx *c, KdTensor *x, int axis, int log) {
  x = kd_to_plain(c, x); /* works on NCHW */
  if (!x) return NULL;
  const char *op = log ? "log_softmax" : "softmax";
  SoftmaxSaved st = {.log = log};
  if (axis_dims(c, op, x, axis, &st)) return NULL;
  KdTensor *y = kd_tensor_like(c, x);
  if (!y) return NULL;
  const float *xd = x->data;
  float *yd = y->data;
  const size_t L = st.len, inner = st.inner, tiles = (inner + TILE - 1) / TILE;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t t = 0; t < st.outer * tiles; t++) {
    size_t o = t / tiles, i0 = t % tiles * TILE, w = inner - i0 < TILE ? inner - i0 : TILE;
    size_t base = o * L * inner + i0;
    float mx[TILE], sum[TILE];
    for (size_t i = 0; i < w; i++) {
      mx[i] = -FLT_MAX;
      sum[i] = 0.0f;
    }
    for (size_t l = 0; l < L; l++) {
      const float *v = xd + base + l * inner;
      for (size_t i = 0; i < w; i++) mx[i] = v[i] > mx[i] ? v[i] : mx[i];
    }
    for (size_t l = 0; l < L; l++) {
      const float *v = xd + base + l * inner;
      float *e = yd + base + l * inner;
      for (size_t i = 0; i < w; i++) {
        e[i] = expf(v[i] - mx[i]);
        sum[i] += e[i];
      }
    }
    if (log) {
      /* (x - max) - log(sum), not x - (max + log(sum)): keeps the low bits
       * when |max| is large. */
      for (size_t i = 0; i < w; i++) sum[i] = logf(sum[i]);
      for (size_t l = 0; l < L; l++) {
        const float *v = xd + base + l * inner;
        float *e = yd + base + l * inner;
        for (size_t i = 0; i < w; i++) e[i] = (v[i] - mx[i]) - sum[i];
      }
    } else {
      for (size_t i = 0; i < w; i++) sum[i] = 1.0f / sum[i];
      for (size_t l = 0; l < L; l++) {
        float *e = yd + base + l * inner;
        for (size_t i = 0; i < w; i++) e[i] *= sum[i];
      }
    }
  }
  KdTensor *in[1] = {x};
  SoftmaxSaved *sv = kd_record(c, op, y, in, 1, softmax_backward, sizeof *sv);
  if (sv) *sv = st;
  return y;
}

KdTensor *kd_softmax(KdCtx *c, KdTensor *x, int axis) { return softmax_impl(c, x, axis, 0); }
KdTensor *kd_log_softmax(KdCtx *c, KdTensor *x, int axis) { return softmax_impl(c, x, axis, 1); }
