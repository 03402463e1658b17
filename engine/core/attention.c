/* Multi-head scaled dot-product attention with a key-padding mask, the core
 * of torch.nn.MultiheadAttention after its in-projection (the projections
 * are Linear layers around it). Per image n and head h, with d = E / heads
 * and the head's slice of the last dim:
 *   S[j,s] = scale * sum_d q[n,j,hd] k[n,s,hd]      (-inf where pad[n,s])
 *   A      = softmax_s(S)
 *   o[n,j,hd] = sum_s A[j,s] v[n,s,hd]
 * A query whose keys are all padding gets A = 0 and o = 0 (PyTorch gives
 * NaN there); a padded key gets weight exactly 0.
 *
 * Work is split by (n, h): each task reads and writes only its image's
 * rows and its head's columns, summed in a fixed order, so forward and
 * backward give the same bits for any number of threads, with no atomics.
 * The attention A is kept for the backward (N*heads*Kq*L floats):
 *   dA = go v^T ; dS = A * (dA - sum_s A dA) ; dq = scale dS k ;
 *   dk = scale dS^T q ; dv = A^T go. */
#include <math.h>

#include "core/ops.h"
#include "core/parallel.h"

typedef struct {
  int heads;
  float scale;
  float *attn; /* N, heads, Kq, L */
} MhaSaved;

static void attend_fwd(const float *q, const float *k, const float *v, const unsigned char *pad, float *o, float *A,
                       float *logit, int N, int Kq, int L, int E, int heads, float scale) {
  const int d = E / heads;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int t = 0; t < N * heads; t++) {
    const int n = t / heads, h = t % heads;
    const float *qn = q + (size_t)n * Kq * E + h * d, *kn = k + (size_t)n * L * E + h * d,
                *vn = v + (size_t)n * L * E + h * d;
    const unsigned char *pn = pad ? pad + (size_t)n * L : NULL;
    float *An = A + (size_t)t * Kq * L, *on = o + (size_t)n * Kq * E + h * d;
    for (int j = 0; j < Kq; j++) {
      float *a = An + (size_t)j * L, mx = -INFINITY;
      const float *qj = qn + (size_t)j * E;
      for (int s = 0; s < L; s++) {
        if (pn && pn[s]) {
          a[s] = -INFINITY;
          continue;
        }
        const float *ks = kn + (size_t)s * E;
        float dot = 0.0f;
        for (int e = 0; e < d; e++) dot += qj[e] * ks[e];
        a[s] = dot * scale;
        if (a[s] > mx) mx = a[s];
      }
      if (logit) {
        float *lg = logit + ((size_t)t * Kq + j) * L;
        for (int s = 0; s < L; s++) lg[s] = a[s];
      }
      float *oj = on + (size_t)j * E;
      for (int e = 0; e < d; e++) oj[e] = 0.0f;
      if (mx == -INFINITY) { /* every key padded */
        for (int s = 0; s < L; s++) a[s] = 0.0f;
        continue;
      }
      float sum = 0.0f;
      for (int s = 0; s < L; s++) {
        a[s] = (pn && pn[s]) ? 0.0f : expf(a[s] - mx);
        sum += a[s];
      }
      const float inv = 1.0f / sum;
      for (int s = 0; s < L; s++) {
        a[s] *= inv;
        if (a[s] == 0.0f) continue;
        const float *vs = vn + (size_t)s * E;
        for (int e = 0; e < d; e++) oj[e] += a[s] * vs[e];
      }
    }
  }
}

static void mha_backward(KdCtx *c, KdNode *node) {
  const MhaSaved *sv = node->saved;
  KdTensor *q = node->in[0], *k = node->in[1], *v = node->in[2];
  const int N = q->shape[0], Kq = q->shape[1], L = k->shape[1], E = q->shape[2], heads = sv->heads, d = E / heads;
  const float scale = sv->scale, *go = node->out->grad;
  float *gq = q->requires_grad ? kd_grad(c, q) : NULL, *gk = k->requires_grad ? kd_grad(c, k) : NULL,
        *gv = v->requires_grad ? kd_grad(c, v) : NULL;
  /* One row of dS per (task, query): scratch of L floats per query row. */
  float *ds = kd_ctx_alloc(c, (size_t)N * heads * Kq * L * sizeof *ds);
  if (!ds) {
    kd_ctx_fail(c, "mha_attend: out of memory in backward");
    return;
  }
  KD_PRAGMA(omp parallel for schedule(static))
  for (int t = 0; t < N * heads; t++) {
    const int n = t / heads, h = t % heads;
    const size_t qo = (size_t)n * Kq * E + h * d, ko = (size_t)n * L * E + h * d;
    const float *An = sv->attn + (size_t)t * Kq * L;
    float *dsn = ds + (size_t)t * Kq * L;
    for (int j = 0; j < Kq; j++) {
      const float *a = An + (size_t)j * L, *gj = go + qo + (size_t)j * E;
      float *r = dsn + (size_t)j * L, dot = 0.0f;
      for (int s = 0; s < L; s++) {
        float da = 0.0f;
        if (a[s] != 0.0f) {
          const float *vs = v->data + ko + (size_t)s * E;
          for (int e = 0; e < d; e++) da += gj[e] * vs[e];
        }
        r[s] = da;
        dot += a[s] * da;
      }
      for (int s = 0; s < L; s++) r[s] = a[s] * (r[s] - dot) * scale;
      if (gq) {
        float *g = gq + qo + (size_t)j * E;
        for (int s = 0; s < L; s++) {
          if (r[s] == 0.0f) continue;
          const float *ks = k->data + ko + (size_t)s * E;
          for (int e = 0; e < d; e++) g[e] += r[s] * ks[e];
        }
      }
    }
    /* Key and value rows: sums over the queries in query order. */
    for (int s = 0; s < L; s++) {
      float *gks = gk ? gk + ko + (size_t)s * E : NULL, *gvs = gv ? gv + ko + (size_t)s * E : NULL;
      for (int j = 0; j < Kq; j++) {
        const float *qj = q->data + qo + (size_t)j * E, *gj = go + qo + (size_t)j * E;
        const float a = An[(size_t)j * L + s], r = dsn[(size_t)j * L + s];
        if (gks && r != 0.0f)
          for (int e = 0; e < d; e++) gks[e] += r * qj[e];
        if (gvs && a != 0.0f)
          for (int e = 0; e < d; e++) gvs[e] += a * gj[e];
      }
    }
  }
}

KdTensor *kd_mha_attend(KdCtx *c, KdTensor *q, KdTensor *k, KdTensor *v, int heads, const unsigned char *key_pad,
                        float scale, KdTensor **logits) {
  if (logits) *logits = NULL;
  q = kd_to_plain(c, q);
  k = kd_to_plain(c, k);
  v = kd_to_plain(c, v);
  if (!q || !k || !v) return NULL;
  char sq[64], sk[64], sv[64];
  if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || k->shape[0] != q->shape[0] || !kd_tensor_same_shape(k, v) ||
      k->shape[2] != q->shape[2]) {
    kd_ctx_fail(c, "mha_attend: query %s, key %s, value %s; expected N,Kq,E and N,L,E twice", kd_tensor_shape_str(q, sq, 64),
                kd_tensor_shape_str(k, sk, 64), kd_tensor_shape_str(v, sv, 64));
    return NULL;
  }
  const int N = q->shape[0], Kq = q->shape[1], L = k->shape[1], E = q->shape[2];
  if (heads < 1 || E % heads) {
    kd_ctx_fail(c, "mha_attend: embedding width %d is not divisible by %d heads", E, heads);
    return NULL;
  }
  KdTensor *o = kd_tensor_new(c, 3, q->shape);
  float *A = kd_ctx_alloc(c, (size_t)N * heads * Kq * L * sizeof *A);
  KdTensor *lg = logits ? kd_tensor_new(c, 4, (int[]){N, heads, Kq, L}) : NULL;
  if (!o || !A || (logits && !lg)) {
    if (!kd_ctx_failed(c)) kd_ctx_fail(c, "mha_attend: out of memory");
    return NULL;
  }
  attend_fwd(q->data, k->data, v->data, key_pad, o->data, A, lg ? lg->data : NULL, N, Kq, L, E, heads, scale);
  KdTensor *in[3] = {q, k, v};
  MhaSaved *s = kd_record(c, "mha_attend", o, in, 3, mha_backward, sizeof *s);
  if (s) *s = (MhaSaved){heads, scale, A};
  if (logits) *logits = lg;
  return o;
}
