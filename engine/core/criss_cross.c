/* Criss-cross attention (CCNet, Huang et al., ICCV 2019): pixel u = (h, w)
 * attends to the L = H + W - 1 pixels of its column and row, itself once.
 * The index order is mmcv's CrissCrossAttention with its masked entry
 * dropped: mmcv concatenates the column branch (H entries, the pixel itself
 * masked with -inf) and the row branch (W entries, itself included), so
 *   k <  H-1: column pixel (i, w), i = k < h ? k : k + 1
 *   k >= H-1: row pixel (h, k - (H-1))
 *
 * Three kernels on raw NCHW arrays cover the forward and backward of both
 * ops (p_k(u) the k-th pixel of u's cross; the cross relation is
 * symmetric, p in cross(u) iff u in cross(p)):
 *   cross_dot    E[k,u] += sum_c A[c,u] B[c,p_k(u)]       (N,L,H,W)
 *   cross_gather O[c,u] += sum_k Wt[k,u] B[c,p_k(u)]      (N,C,H,W)
 *   cross_spread G[c,p] += sum_{u in cross(p)} Wt[k_u(p),u] A[c,u]
 * cross_spread is cross_gather's transpose written as a gather over the
 * destination, so every kernel runs over destination rows (n, h), each
 * summed by one thread in a fixed order: no atomics, the same bits for any
 * number of threads. Memory is O(N L H W), never an HW x HW matrix. */
#include "core/ops.h"
#include "core/parallel.h"

static void cross_dot(const float *A, const float *B, float *E, int N, int C, int H, int W) {
  const int L = H + W - 1;
  const size_t HW = (size_t)H * W;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int r = 0; r < N * H; r++) {
    const int n = r / H, h = r % H;
    float *e = E + (size_t)n * L * HW + (size_t)h * W;
    for (int ch = 0; ch < C; ch++) {
      const float *a = A + ((size_t)n * C + ch) * HW + (size_t)h * W, *bp = B + ((size_t)n * C + ch) * HW;
      for (int i = 0, k = 0; i < H; i++) {
        if (i == h) continue;
        const float *b = bp + (size_t)i * W;
        float *ek = e + (size_t)k++ * HW;
        for (int w = 0; w < W; w++) ek[w] += a[w] * b[w];
      }
      const float *b = bp + (size_t)h * W;
      for (int j = 0; j < W; j++) {
        float *ek = e + (size_t)(H - 1 + j) * HW;
        const float bj = b[j];
        for (int w = 0; w < W; w++) ek[w] += a[w] * bj;
      }
    }
  }
}

static void cross_gather(const float *Wt, const float *B, float *O, int N, int C, int H, int W) {
  const int L = H + W - 1;
  const size_t HW = (size_t)H * W;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int r = 0; r < N * H; r++) {
    const int n = r / H, h = r % H;
    const float *wt = Wt + (size_t)n * L * HW + (size_t)h * W;
    for (int ch = 0; ch < C; ch++) {
      float *o = O + ((size_t)n * C + ch) * HW + (size_t)h * W;
      const float *bp = B + ((size_t)n * C + ch) * HW;
      for (int i = 0, k = 0; i < H; i++) {
        if (i == h) continue;
        const float *b = bp + (size_t)i * W, *wk = wt + (size_t)k++ * HW;
        for (int w = 0; w < W; w++) o[w] += wk[w] * b[w];
      }
      const float *b = bp + (size_t)h * W;
      for (int j = 0; j < W; j++) {
        const float *wk = wt + (size_t)(H - 1 + j) * HW, bj = b[j];
        for (int w = 0; w < W; w++) o[w] += wk[w] * bj;
      }
    }
  }
}

static void cross_spread(const float *Wt, const float *A, float *G, int N, int C, int H, int W) {
  const int L = H + W - 1;
  const size_t HW = (size_t)H * W;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int r = 0; r < N * H; r++) {
    const int n = r / H, i = r % H;
    const float *wt = Wt + (size_t)n * L * HW;
    for (int ch = 0; ch < C; ch++) {
      float *g = G + ((size_t)n * C + ch) * HW + (size_t)i * W;
      const float *ap = A + ((size_t)n * C + ch) * HW;
      /* p = (i, j) in the column of u = (h, j), h != i, at index i < h ? i : i - 1 */
      for (int h = 0; h < H; h++) {
        if (h == i) continue;
        const float *wk = wt + (size_t)(i < h ? i : i - 1) * HW + (size_t)h * W, *a = ap + (size_t)h * W;
        for (int j = 0; j < W; j++) g[j] += wk[j] * a[j];
      }
      /* p = (i, j) in the row of u = (i, w), at index H - 1 + j */
      const float *a = ap + (size_t)i * W;
      for (int j = 0; j < W; j++) {
        const float *wk = wt + (size_t)(H - 1 + j) * HW + (size_t)i * W;
        float s = 0.0f;
        for (int w = 0; w < W; w++) s += wk[w] * a[w];
        g[j] += s;
      }
    }
  }
}

void kd_cc_pixel(int H, int W, int h, int w, int k, int *ph, int *pw) {
  (void)W;
  if (k < H - 1) {
    *ph = k < h ? k : k + 1;
    *pw = w;
  } else {
    *ph = h;
    *pw = k - (H - 1);
  }
}

/* x and y 4-D with one N, H, W; same_c: also one C. */
static int check_pair(KdCtx *c, const char *op, const char *what, const KdTensor *x, const KdTensor *y, int same_c) {
  char sx[64], sy[64];
  if (x->ndim != 4 || y->ndim != 4 || x->shape[0] != y->shape[0] || x->shape[2] != y->shape[2] ||
      x->shape[3] != y->shape[3] || (same_c && x->shape[1] != y->shape[1])) {
    kd_ctx_fail(c, "%s: %s %s and %s, expected N,C,H,W of one N, H, W%s", op, what, kd_tensor_shape_str(x, sx, 64),
                kd_tensor_shape_str(y, sy, 64), same_c ? " and C" : "");
    return -1;
  }
  return 0;
}

/* ---------- energy ---------- */

static void energy_backward(KdCtx *c, KdNode *node) {
  KdTensor *q = node->in[0], *k = node->in[1];
  const float *ge = node->out->grad;
  const int N = q->shape[0], C = q->shape[1], H = q->shape[2], W = q->shape[3];
  if (q->requires_grad) cross_gather(ge, k->data, kd_grad(c, q), N, C, H, W);
  if (k->requires_grad) cross_spread(ge, q->data, kd_grad(c, k), N, C, H, W);
}

KdTensor *kd_cc_energy(KdCtx *c, KdTensor *q, KdTensor *k) {
  q = kd_to_plain(c, q);
  k = kd_to_plain(c, k);
  if (!q || !k || check_pair(c, "cc_energy", "query and key", q, k, 1)) return NULL;
  const int N = q->shape[0], C = q->shape[1], H = q->shape[2], W = q->shape[3];
  KdTensor *e = kd_tensor_zeros(c, 4, (int[]){N, KD_CC_LEN(H, W), H, W});
  if (!e) return NULL;
  cross_dot(q->data, k->data, e->data, N, C, H, W);
  KdTensor *in[2] = {q, k};
  kd_record(c, "cc_energy", e, in, 2, energy_backward, 0);
  return e;
}

/* ---------- aggregation ---------- */

static void aggregate_backward(KdCtx *c, KdNode *node) {
  KdTensor *a = node->in[0], *v = node->in[1];
  const float *go = node->out->grad;
  const int N = v->shape[0], C = v->shape[1], H = v->shape[2], W = v->shape[3];
  if (a->requires_grad) cross_dot(go, v->data, kd_grad(c, a), N, C, H, W);
  if (v->requires_grad) cross_spread(a->data, go, kd_grad(c, v), N, C, H, W);
}

KdTensor *kd_cc_aggregate(KdCtx *c, KdTensor *attn, KdTensor *v) {
  attn = kd_to_plain(c, attn);
  v = kd_to_plain(c, v);
  if (!attn || !v || check_pair(c, "cc_aggregate", "attention and value", attn, v, 0)) return NULL;
  const int N = v->shape[0], C = v->shape[1], H = v->shape[2], W = v->shape[3];
  if (attn->shape[1] != KD_CC_LEN(H, W)) {
    char sa[64], sv[64];
    kd_ctx_fail(c, "cc_aggregate: attention %s has %d entries per pixel, expected H+W-1 = %d for value %s",
                kd_tensor_shape_str(attn, sa, 64), attn->shape[1], KD_CC_LEN(H, W), kd_tensor_shape_str(v, sv, 64));
    return NULL;
  }
  KdTensor *o = kd_tensor_zeros(c, 4, v->shape);
  if (!o) return NULL;
  cross_gather(attn->data, v->data, o->data, N, C, H, W);
  KdTensor *in[2] = {attn, v};
  kd_record(c, "cc_aggregate", o, in, 2, aggregate_backward, 0);
  return o;
}

KdTensor *kd_criss_cross(KdCtx *c, KdTensor *q, KdTensor *k, KdTensor *v, float scale, KdTensor **attn) {
  KdTensor *e = kd_cc_energy(c, q, k);
  if (e && scale != 1.0f) e = kd_scale(c, e, scale);
  KdTensor *a = kd_softmax(c, e, 1);
  if (attn) *attn = a;
  return kd_cc_aggregate(c, a, v);
}
