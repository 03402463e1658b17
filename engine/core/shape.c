/* Shape ops: reshape (a view), permute/transpose, concat, slice, gather.
 * Negative axes count from the end, as in NumPy. Only reshape shares
 * data; the others copy, so every tensor stays contiguous. */
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"

static int norm_axis(KdCtx *c, const char *op, const KdTensor *x, int axis) {
  int a = axis < 0 ? axis + x->ndim : axis;
  if (a < 0 || a >= x->ndim) {
    char sx[64];
    kd_ctx_fail(c, "%s: axis %d out of range for input %s", op, axis, kd_tensor_shape_str(x, sx, 64));
    return -1;
  }
  return a;
}

/* Product of dims [from, to). */
static size_t span(const KdTensor *x, int from, int to) {
  size_t p = 1;
  for (int d = from; d < to; d++) p *= (size_t)x->shape[d];
  return p;
}

/* ---------- reshape: a view with its own grad buffer ---------- */

static void add_grad_backward(KdCtx *c, KdNode *node) {
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const size_t len = x->numel;
  KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += gy[i];
}

KdTensor *kd_reshape(KdCtx *c, KdTensor *x, int ndim, const int *shape) {
  x = kd_to_plain(c, x); /* works on NCHW */
  if (!x) return NULL;
  char sx[64];
  int s[KD_MAX_DIMS], infer = -1;
  size_t known = 1;
  if (ndim < 1 || ndim > KD_MAX_DIMS) {
    kd_ctx_fail(c, "reshape: %d dims requested for input %s (1..%d allowed)", ndim, kd_tensor_shape_str(x, sx, 64),
                KD_MAX_DIMS);
    return NULL;
  }
  for (int d = 0; d < ndim; d++) {
    s[d] = shape[d];
    if (s[d] == -1 && infer < 0) {
      infer = d;
    } else if (s[d] < 1) {
      kd_ctx_fail(c, "reshape: bad size %d at dim %d for input %s", s[d], d, kd_tensor_shape_str(x, sx, 64));
      return NULL;
    } else {
      known *= (size_t)s[d];
    }
  }
  if (infer >= 0 && x->numel % known == 0) s[infer] = (int)(x->numel / known);
  if ((infer >= 0 ? known * (size_t)s[infer] : known) != x->numel || (infer >= 0 && s[infer] < 1)) {
    char sn[64];
    KdTensor tmp = {.ndim = ndim};
    memcpy(tmp.shape, shape, (size_t)ndim * sizeof(int));
    kd_ctx_fail(c, "reshape: cannot view %s (%zu values) as %s", kd_tensor_shape_str(x, sx, 64), x->numel,
                kd_tensor_shape_str(&tmp, sn, 64));
    return NULL;
  }
  KdTensor *y = kd_tensor_wrap(c, x->data, ndim, s);
  if (!y) return NULL;
  KdTensor *in[1] = {x};
  kd_record(c, "reshape", y, in, 1, add_grad_backward, 0);
  return y;
}

/* ---------- permute ---------- */

typedef struct {
  int os[4];      /* output as 4-D */
  size_t src[4];  /* input stride of each output dim (4-D index space) */
} PermSaved;

static void perm_backward(KdCtx *c, KdNode *node) {
  PermSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const size_t rows = (size_t)s->os[0] * s->os[1] * s->os[2];
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    size_t i2 = r % s->os[2], i1 = r / s->os[2] % s->os[1], i0 = r / ((size_t)s->os[2] * s->os[1]);
    size_t base = i0 * s->src[0] + i1 * s->src[1] + i2 * s->src[2];
    const float *g = gy + r * s->os[3];
    for (int i3 = 0; i3 < s->os[3]; i3++) gx[base + i3 * s->src[3]] += g[i3];
  }
}

KdTensor *kd_permute(KdCtx *c, KdTensor *x, const int *perm) {
  x = kd_to_plain(c, x); /* works on NCHW */
  if (!x) return NULL;
  const int nd = x->ndim, pad = 4 - nd;
  int seen = 0, oshape[KD_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    if (perm[i] < 0 || perm[i] >= nd || (seen >> perm[i] & 1)) {
      char sx[64];
      kd_ctx_fail(c, "permute: entry %d (=%d) of the permutation is not a free dim of input %s", i, perm[i],
                  kd_tensor_shape_str(x, sx, 64));
      return NULL;
    }
    seen |= 1 << perm[i];
    oshape[i] = x->shape[perm[i]];
  }
  size_t istr[KD_MAX_DIMS], acc = 1;
  for (int d = nd - 1; d >= 0; d--) {
    istr[d] = acc;
    acc *= (size_t)x->shape[d];
  }
  PermSaved st;
  for (int d = 0; d < 4; d++) {
    st.os[d] = d < pad ? 1 : oshape[d - pad];
    st.src[d] = d < pad ? 0 : istr[perm[d - pad]];
  }
  KdTensor *y = kd_tensor_new(c, nd, oshape);
  if (!y) return NULL;
  const size_t rows = (size_t)st.os[0] * st.os[1] * st.os[2];
  const float *xd = x->data;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    size_t i2 = r % st.os[2], i1 = r / st.os[2] % st.os[1], i0 = r / ((size_t)st.os[2] * st.os[1]);
    size_t base = i0 * st.src[0] + i1 * st.src[1] + i2 * st.src[2];
    float *dst = y->data + r * st.os[3];
    for (int i3 = 0; i3 < st.os[3]; i3++) dst[i3] = xd[base + i3 * st.src[3]];
  }
  KdTensor *in[1] = {x};
  PermSaved *sv = kd_record(c, "permute", y, in, 1, perm_backward, sizeof *sv);
  if (sv) *sv = st;
  return y;
}

KdTensor *kd_transpose(KdCtx *c, KdTensor *x, int d0, int d1) {
  if (!x) return NULL;
  int a = norm_axis(c, "transpose", x, d0), b = a < 0 ? -1 : norm_axis(c, "transpose", x, d1);
  if (a < 0 || b < 0) return NULL;
  int perm[KD_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) perm[d] = d;
  perm[a] = b;
  perm[b] = a;
  return kd_permute(c, x, perm);
}

/* ---------- concat / slice: outer x (axis * inner) blocks ---------- */

typedef struct {
  size_t outer, inner;
  int axis, total; /* concat: output size along axis; slice: input size */
  int start;       /* slice only */
} BlockSaved;

static void concat_backward(KdCtx *c, KdNode *node) {
  BlockSaved *s = node->saved;
  const float *gy = node->out->grad;
  const size_t orow = (size_t)s->total * s->inner;
  size_t off = 0;
  for (int i = 0; i < node->nin; i++) {
    KdTensor *x = node->in[i];
    const size_t row = (size_t)x->shape[s->axis] * s->inner;
    if (x->requires_grad) {
      float *gx = kd_grad(c, x);
      for (size_t o = 0; o < s->outer; o++) {
        const float *src = gy + o * orow + off;
        float *dst = gx + o * row;
        for (size_t j = 0; j < row; j++) dst[j] += src[j];
      }
    }
    off += row;
  }
}

KdTensor *kd_concat(KdCtx *c, KdTensor *const *xs, int n, int axis) {
  if (n < 1) {
    kd_ctx_fail(c, "concat: %d inputs", n);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (!xs[i]) return NULL;
  for (int i = 0; i < n; i++)
    if (xs[i]->blocked) { /* works on NCHW */
      KdTensor **plain = kd_ctx_alloc(c, (size_t)n * sizeof *plain);
      if (!plain) return NULL;
      for (int j = 0; j < n; j++) plain[j] = kd_to_plain(c, xs[j]);
      return kd_concat(c, plain, n, axis);
    }
  int a = norm_axis(c, "concat", xs[0], axis);
  if (a < 0) return NULL;
  int shape[KD_MAX_DIMS], total = 0;
  memcpy(shape, xs[0]->shape, sizeof shape);
  for (int i = 0; i < n; i++) {
    int ok = xs[i]->ndim == xs[0]->ndim;
    for (int d = 0; ok && d < xs[0]->ndim; d++) ok = d == a || xs[i]->shape[d] == shape[d];
    if (!ok) {
      char s0[64], si[64];
      kd_ctx_fail(c, "concat: input %d has shape %s, input 0 has %s (they may differ only along axis %d)", i,
                  kd_tensor_shape_str(xs[i], si, 64), kd_tensor_shape_str(xs[0], s0, 64), a);
      return NULL;
    }
    total += xs[i]->shape[a];
  }
  shape[a] = total;
  KdTensor *y = kd_tensor_new(c, xs[0]->ndim, shape);
  if (!y) return NULL;
  BlockSaved st = {.outer = span(y, 0, a), .inner = span(y, a + 1, y->ndim), .axis = a, .total = total};
  const size_t orow = (size_t)total * st.inner;
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    const size_t row = (size_t)xs[i]->shape[a] * st.inner;
    for (size_t o = 0; o < st.outer; o++) memcpy(y->data + o * orow + off, xs[i]->data + o * row, row * sizeof(float));
    off += row;
  }
  BlockSaved *sv = kd_record(c, "concat", y, xs, n, concat_backward, sizeof *sv);
  if (sv) *sv = st;
  return y;
}

static void slice_backward(KdCtx *c, KdNode *node) {
  BlockSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const size_t row = (size_t)node->out->shape[s->axis] * s->inner, xrow = (size_t)s->total * s->inner;
  for (size_t o = 0; o < s->outer; o++) {
    float *dst = gx + o * xrow + (size_t)s->start * s->inner;
    const float *src = gy + o * row;
    for (size_t j = 0; j < row; j++) dst[j] += src[j];
  }
}

KdTensor *kd_slice(KdCtx *c, KdTensor *x, int axis, int start, int len) {
  x = kd_to_plain(c, x); /* works on NCHW */
  if (!x) return NULL;
  int a = norm_axis(c, "slice", x, axis);
  if (a < 0) return NULL;
  if (start < 0 || len < 1 || start > x->shape[a] - len) {
    char sx[64];
    kd_ctx_fail(c, "slice: [%d, %d+%d) outside dim %d (size %d) of input %s", start, start, len, a, x->shape[a],
                kd_tensor_shape_str(x, sx, 64));
    return NULL;
  }
  int shape[KD_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[a] = len;
  KdTensor *y = kd_tensor_new(c, x->ndim, shape);
  if (!y) return NULL;
  BlockSaved st = {.outer = span(x, 0, a), .inner = span(x, a + 1, x->ndim), .axis = a, .total = x->shape[a], .start = start};
  const size_t row = (size_t)len * st.inner, xrow = (size_t)x->shape[a] * st.inner;
  for (size_t o = 0; o < st.outer; o++)
    memcpy(y->data + o * row, x->data + o * xrow + (size_t)start * st.inner, row * sizeof(float));
  KdTensor *in[1] = {x};
  BlockSaved *sv = kd_record(c, "slice", y, in, 1, slice_backward, sizeof *sv);
  if (sv) *sv = st;
  return y;
}

/* ---------- gather by flat index ---------- */

static void gather_backward(KdCtx *c, KdNode *node) {
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const int *idx = *(int **)node->saved;
  const float *gy = node->out->grad;
  /* Serial: an index may repeat. */
  for (size_t i = 0; i < node->out->numel; i++) gx[idx[i]] += gy[i];
}

KdTensor *kd_gather(KdCtx *c, KdTensor *x, const int *idx, int n) {
  x = kd_to_plain(c, x); /* works on NCHW */
  if (!x) return NULL;
  char sx[64];
  if (n < 1) {
    kd_ctx_fail(c, "gather: %d indices into input %s", n, kd_tensor_shape_str(x, sx, 64));
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (idx[i] < 0 || (size_t)idx[i] >= x->numel) {
      kd_ctx_fail(c, "gather: index %d (at %d) outside input %s with %zu values", idx[i], i,
                  kd_tensor_shape_str(x, sx, 64), x->numel);
      return NULL;
    }
  KdTensor *y = kd_tensor_new(c, 1, &n);
  if (!y) return NULL;
  for (int i = 0; i < n; i++) y->data[i] = x->data[idx[i]];
  KdTensor *in[1] = {x};
  int **sv = kd_record(c, "gather", y, in, 1, gather_backward, sizeof(int *));
  if (sv) {
    /* The caller's index array may not outlive the step. */
    int *copy = kd_ctx_alloc(c, (size_t)n * sizeof(int));
    if (copy) memcpy(copy, idx, (size_t)n * sizeof(int));
    *sv = copy;
  }
  return y;
}
