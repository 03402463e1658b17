/* Sums and means over chosen axes (bit i = dim i of the tensor's own ndim,
 * reduced dims kept with size 1) and over everything (shape {1}).
 *
 * Runs of contiguous values are summed in float vector lanes folded into
 * double; the full reductions use a fixed split into chunks, so a result
 * never depends on the thread count. */
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"

#define CHUNKS 64

/* 8-float vectors (a GCC/Clang extension): plain lane-array loops get
 * vectorised with the lanes spilled to the stack, several times slower. */
typedef float v8f __attribute__((vector_size(32)));

static double sum_run(const float *p, size_t len) {
  v8f a0 = {0}, a1 = {0};
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    v8f x0, x1;
    memcpy(&x0, p + i, sizeof x0);
    memcpy(&x1, p + i + 8, sizeof x1);
    a0 += x0;
    a1 += x1;
  }
  a0 += a1;
  double s = 0.0;
  for (int l = 0; l < 8; l++) s += a0[l];
  for (; i < len; i++) s += p[i];
  return s;
}

/* ---------- over axes ---------- */

typedef struct {
  int xs[4];      /* x as 4-D (left-padded) */
  size_t ostr[4]; /* output strides in x's 4-D index space, 0 on reduced dims */
  float scale;    /* 1 (sum) or 1/count (mean) */
} ReduceSaved;

static void reduce_backward(KdCtx *c, KdNode *node) {
  ReduceSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const int *xs = s->xs;
  const size_t rows = (size_t)xs[0] * xs[1] * xs[2];
  const float sc = s->scale;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    size_t i2 = r % xs[2], i1 = r / xs[2] % xs[1], i0 = r / ((size_t)xs[2] * xs[1]);
    const float *g = gy + i0 * s->ostr[0] + i1 * s->ostr[1] + i2 * s->ostr[2];
    float *dst = gx + r * xs[3];
    if (s->ostr[3])
      for (int i3 = 0; i3 < xs[3]; i3++) dst[i3] += sc * g[i3];
    else
      for (int i3 = 0; i3 < xs[3]; i3++) dst[i3] += sc * g[0];
  }
}

static KdTensor *reduce_axes(KdCtx *c, KdTensor *x, unsigned axes, int mean, const char *op) {
  x = kd_to_plain(c, x); /* works on NCHW */
  if (!x) return NULL;
  if (axes >> x->ndim) {
    char sx[64];
    kd_ctx_fail(c, "%s: axis mask 0x%x names dims beyond input %s", op, axes, kd_tensor_shape_str(x, sx, 64));
    return NULL;
  }
  const int pad = 4 - x->ndim;
  int xs[4], os[4], red[4], oshape[KD_MAX_DIMS];
  size_t count = 1;
  for (int d = 0; d < 4; d++) {
    xs[d] = kd_dim4(x, d);
    red[d] = d >= pad && (axes >> (d - pad) & 1u);
    os[d] = red[d] ? 1 : xs[d];
    if (red[d]) count *= (size_t)xs[d];
    if (d >= pad) oshape[d - pad] = os[d];
  }
  KdTensor *y = kd_tensor_new(c, x->ndim, oshape);
  if (!y) return NULL;
  ReduceSaved st = {.scale = mean ? (float)(1.0 / (double)count) : 1.0f};
  memcpy(st.xs, xs, sizeof xs);
  size_t acc = 1;
  for (int d = 3; d >= 0; d--) {
    st.ostr[d] = red[d] ? 0 : acc;
    acc *= (size_t)os[d];
  }
  /* One output at a time: walk its reduced sub-block of x. */
  const float *xd = x->data;
  const size_t nout = y->numel;
  const double dscale = mean ? 1.0 / (double)count : 1.0;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t o = 0; o < nout; o++) {
    size_t i3 = o % os[3], i2 = o / os[3] % os[2], i1 = o / ((size_t)os[3] * os[2]) % os[1],
           i0 = o / ((size_t)os[3] * os[2] * os[1]);
    double s = 0.0;
    for (int j0 = 0; j0 < (red[0] ? xs[0] : 1); j0++)
      for (int j1 = 0; j1 < (red[1] ? xs[1] : 1); j1++)
        for (int j2 = 0; j2 < (red[2] ? xs[2] : 1); j2++) {
          const float *row = xd + (((i0 + j0) * xs[1] + i1 + j1) * xs[2] + i2 + j2) * xs[3];
          if (red[3])
            s += sum_run(row, (size_t)xs[3]);
          else
            s += row[i3];
        }
    y->data[o] = (float)(s * dscale);
  }
  KdTensor *in[1] = {x};
  ReduceSaved *sv = kd_record(c, op, y, in, 1, reduce_backward, sizeof *sv);
  if (sv) *sv = st;
  return y;
}

KdTensor *kd_sum(KdCtx *c, KdTensor *x, unsigned axes) { return reduce_axes(c, x, axes, 0, "sum"); }
KdTensor *kd_mean(KdCtx *c, KdTensor *x, unsigned axes) { return reduce_axes(c, x, axes, 1, "mean"); }

/* ---------- over everything ---------- */

static void reduce_all_backward(KdCtx *c, KdNode *node) {
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float g = node->out->grad[0] * *(float *)node->saved;
  const size_t len = x->numel;
  KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += g;
}

static KdTensor *reduce_all(KdCtx *c, KdTensor *x, int mean, const char *op) {
  if (!x) return NULL;
  int one = 1;
  KdTensor *y = kd_tensor_new(c, 1, &one);
  if (!y) return NULL;
  const size_t len = x->numel, chunk = (len + CHUNKS - 1) / CHUNKS;
  double part[CHUNKS] = {0};
  const float *xd = x->data;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int k = 0; k < CHUNKS; k++) {
    size_t b = (size_t)k * chunk, e = b + chunk < len ? b + chunk : len;
    if (b < e) part[k] = sum_run(xd + b, e - b);
  }
  double s = 0.0;
  for (int k = 0; k < CHUNKS; k++) s += part[k];
  double scale = mean ? 1.0 / (double)len : 1.0;
  y->data[0] = (float)(s * scale);
  KdTensor *in[1] = {x};
  float *sv = kd_record(c, op, y, in, 1, reduce_all_backward, sizeof(float));
  if (sv) *sv = (float)scale;
  return y;
}

KdTensor *kd_sum_all(KdCtx *c, KdTensor *x) { return reduce_all(c, x, 0, "sum_all"); }
KdTensor *kd_mean_all(KdCtx *c, KdTensor *x) { return reduce_all(c, x, 1, "mean_all"); }
