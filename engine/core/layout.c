/* Conversions between the plain NCHW layout and the blocked one
 * (N, C/16, H, W, 16: sixteen channels of one pixel side by side, as
 * oneDNN's AVX-512 convolutions keep them). Plain index ((n*C + c)*P + p)
 * is blocked index ((n*C/16 + c/16)*P + p)*16 + c%16, P = H*W. */
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"

enum { BLK = 16 };

int kd_layout_blockable(const KdTensor *x) { return x && x->ndim == 4 && x->shape[1] % BLK == 0; }

/* dst (+)= src moved to the other layout; to_blocked picks the direction.
 * One (n, channel block) per iteration: a 16 x P transpose. */
static void convert(const float *src, float *dst, const KdTensor *t, int to_blocked, int accumulate) {
  const int blocks = t->shape[0] * (t->shape[1] / BLK);
  const size_t P = (size_t)t->shape[2] * t->shape[3];
  KD_PRAGMA(omp parallel for schedule(static))
  for (int nb = 0; nb < blocks; nb++) {
    const size_t base = (size_t)nb * BLK * P;
    for (size_t p = 0; p < P; p++)
      for (int l = 0; l < BLK; l++) {
        size_t bi = base + p * BLK + l, pi = base + (size_t)l * P + p;
        size_t si = to_blocked ? pi : bi, di = to_blocked ? bi : pi;
        if (accumulate) dst[di] += src[si];
        else dst[di] = src[si];
      }
  }
}

static void layout_backward(KdCtx *c, KdNode *node) {
  KdTensor *x = node->in[0], *y = node->out;
  if (!x->requires_grad) return;
  int fresh = !x->grad;
  float *gx = fresh ? (x->grad = kd_ctx_alloc(c, x->numel * sizeof(float))) : x->grad;
  if (gx) convert(y->grad, gx, x, x->blocked, !fresh);
}

static KdTensor *to_layout(KdCtx *c, KdTensor *x, int blocked) {
  KdTensor *y = kd_tensor_like(c, x);
  if (!y) return NULL;
  y->blocked = blocked != 0;
  convert(x->data, y->data, x, blocked, 0);
  KdTensor *in[1] = {x};
  kd_record(c, blocked ? "to_blocked" : "to_plain", y, in, 1, layout_backward, 0);
  return y;
}

KdTensor *kd_to_blocked(KdCtx *c, KdTensor *x) {
  if (!x || x->blocked || !kd_layout_blockable(x)) return x;
  return to_layout(c, x, 1);
}

KdTensor *kd_to_plain(KdCtx *c, KdTensor *x) {
  if (!x || !x->blocked) return x;
  return to_layout(c, x, 0);
}
