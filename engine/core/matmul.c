/* Matrix products: 2-D, batched 3-D, and 3-D with a shared 2-D operand,
 * with optional transposes of the last two dims. Every product is one
 * kd_gemm call; a batched a (not transposed) times a shared b is folded
 * into a single GEMM with B*M rows.
 *
 * With op(X) = X or X^T and y = op(a) op(b), G = dL/dy:
 *   dL/d op(a) = G op(b)^T,  dL/d op(b) = op(a)^T G. */
#include "core/gemm.h"
#include "core/ops.h"

typedef struct {
  int batch, m, n, k; /* after folding, batch is 1 and m is B*M */
  int ta, tb;
  int a3, b3; /* operand has its own matrix per batch */
} MmSaved;

static void mm_backward(KdCtx *c, KdNode *node) {
  MmSaved *s = node->saved;
  KdTensor *a = node->in[0], *b = node->in[1];
  const float *g = node->out->grad;
  float *ga = a->requires_grad ? kd_grad(c, a) : NULL;
  float *gb = b->requires_grad ? kd_grad(c, b) : NULL;
  const int m = s->m, n = s->n, k = s->k, ta = s->ta, tb = s->tb;
  const int lda = ta ? m : k, ldb = tb ? k : n;
  const size_t sa = s->a3 ? (size_t)m * k : 0, sb = s->b3 ? (size_t)k * n : 0, sy = (size_t)m * n;
  /* A shared operand's grad sums over batches: the loop is serial. */
  for (int i = 0; i < s->batch; i++) {
    const float *ai = a->data + i * sa, *bi = b->data + i * sb, *gi = g + i * sy;
    if (ga) {
      if (!ta)
        kd_gemm(0, !tb, m, k, n, 1.0f, gi, n, bi, ldb, 1.0f, ga + i * sa, k);
      else
        kd_gemm(tb, 1, k, m, n, 1.0f, bi, ldb, gi, n, 1.0f, ga + i * sa, m);
    }
    if (gb) {
      if (!tb)
        kd_gemm(!ta, 0, k, n, m, 1.0f, ai, lda, gi, n, 1.0f, gb + i * sb, n);
      else
        kd_gemm(1, ta, n, k, m, 1.0f, gi, n, ai, lda, 1.0f, gb + i * sb, k);
    }
  }
}

KdTensor *kd_matmul(KdCtx *c, KdTensor *a, KdTensor *b, int trans_a, int trans_b) {
  a = kd_to_plain(c, a), b = kd_to_plain(c, b); /* works on NCHW */
  if (!a || !b) return NULL;
  char sa_[64], sb_[64];
  MmSaved s = {.ta = trans_a != 0, .tb = trans_b != 0, .a3 = a->ndim == 3, .b3 = b->ndim == 3};
  if (a->ndim < 2 || a->ndim > 3 || b->ndim < 2 || b->ndim > 3) goto bad;
  const int *as = a->shape + a->ndim - 2, *bs = b->shape + b->ndim - 2;
  s.m = s.ta ? as[1] : as[0];
  s.k = s.ta ? as[0] : as[1];
  s.n = s.tb ? bs[0] : bs[1];
  int kb = s.tb ? bs[1] : bs[0];
  if (kb != s.k || (s.a3 && s.b3 && a->shape[0] != b->shape[0])) goto bad;
  s.batch = s.a3 ? a->shape[0] : s.b3 ? b->shape[0] : 1;
  KdTensor *y;
  if (s.a3 || s.b3) {
    int shape[3] = {s.batch, s.m, s.n};
    y = kd_tensor_new(c, 3, shape);
  } else {
    int shape[2] = {s.m, s.n};
    y = kd_tensor_new(c, 2, shape);
  }
  if (!y) return NULL;
  if (s.a3 && !s.b3 && !s.ta) { /* rows of every batch are contiguous: one GEMM */
    s.m *= s.batch;
    s.batch = 1;
    s.a3 = 0;
  }
  const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  const size_t sa = s.a3 ? (size_t)s.m * s.k : 0, sb = s.b3 ? (size_t)s.k * s.n : 0, sy = (size_t)s.m * s.n;
  for (int i = 0; i < s.batch; i++)
    kd_gemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a->data + i * sa, lda, b->data + i * sb, ldb, 0.0f, y->data + i * sy, s.n);
  KdTensor *in[2] = {a, b};
  MmSaved *sv = kd_record(c, "matmul", y, in, 2, mm_backward, sizeof *sv);
  if (sv) *sv = s;
  return y;
bad:
  kd_ctx_fail(c, "matmul: cannot multiply %s%s by %s%s", kd_tensor_shape_str(a, sa_, 64), trans_a ? " (transposed)" : "",
              kd_tensor_shape_str(b, sb_, 64), trans_b ? " (transposed)" : "");
  return NULL;
}
