/* Normalisations and distances shared by the distillation methods (see
 * norms.h). Two are fused ops: Pearson standardisation, because its
 * composed form would take a square root of a variance that can be 0 (a
 * dead channel) and backpropagate 0/0; and the KL of temperature softmaxes,
 * the hot loop of CWD and logit KD (no intermediate tensors, a third of the
 * exps). The rest are compositions of core ops, whose gradients are
 * already checked. */
#include "distill/norms.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"

/* ---------- Pearson standardisation ---------- */

typedef struct {
  int n, ch;
  size_t hw;
  float *den; /* [C] std + eps */
  float *sd;  /* [C] unbiased std */
} PearsonSaved;

/* With z = (x - mean) / den, den = sd + eps, sd^2 = sum (x - mean)^2 / (m-1):
 *   gx_j = (g_j - mean(g)) / den - z_j * sum_i(g_i z_i) / ((m-1) sd)
 * (the second term is the std's dependence on x; 0 when sd = 0). */
static void pearson_backward(KdCtx *c, KdNode *node) {
  PearsonSaved *s = node->saved;
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad, *z = node->out->data;
  const int N = s->n, C = s->ch;
  const size_t HW = s->hw;
  const double m = (double)N * (double)HW;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int ch = 0; ch < C; ch++) {
    double sg = 0.0, sgz = 0.0;
    for (int n = 0; n < N; n++) {
      const size_t base = ((size_t)n * (size_t)C + (size_t)ch) * HW;
      for (size_t i = 0; i < HW; i++) {
        sg += gy[base + i];
        sgz += (double)gy[base + i] * z[base + i];
      }
    }
    const double gmean = sg / m, inv_den = s->den[ch] > 0.0f ? 1.0 / s->den[ch] : 0.0;
    const double k = s->sd[ch] > 0.0f ? sgz / ((m - 1.0) * s->sd[ch]) : 0.0;
    for (int n = 0; n < N; n++) {
      const size_t base = ((size_t)n * (size_t)C + (size_t)ch) * HW;
      for (size_t i = 0; i < HW; i++)
        gx[base + i] += (float)((gy[base + i] - gmean) * inv_den - z[base + i] * k);
    }
  }
}

KdTensor *kd_norm_pearson(KdCtx *c, KdTensor *x, float eps) {
  if (!x) return NULL;
  char sx[64];
  if (x->ndim != 4) {
    kd_ctx_fail(c, "pearson: input %s must be N,C,H,W", kd_tensor_shape_str(x, sx, sizeof sx));
    return NULL;
  }
  const int N = x->shape[0], C = x->shape[1];
  const size_t HW = (size_t)x->shape[2] * (size_t)x->shape[3];
  if ((size_t)N * HW < 2) {
    kd_ctx_fail(c, "pearson: input %s has one value per channel; the unbiased std needs N*H*W >= 2",
                kd_tensor_shape_str(x, sx, sizeof sx));
    return NULL;
  }
  if (!(eps >= 0.0f)) {
    kd_ctx_fail(c, "pearson: eps %g must be >= 0", (double)eps);
    return NULL;
  }
  KdTensor *y = kd_tensor_like(c, x);
  float *den = kd_ctx_alloc(c, 2 * (size_t)C * sizeof(float));
  if (!y || !den) return NULL;
  float *sd = den + C;
  const float *xd = x->data;
  float *yd = y->data;
  const double m = (double)N * (double)HW;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int ch = 0; ch < C; ch++) {
    double sum = 0.0;
    for (int n = 0; n < N; n++) {
      const float *v = xd + ((size_t)n * (size_t)C + (size_t)ch) * HW;
      for (size_t i = 0; i < HW; i++) sum += v[i];
    }
    const double mean = sum / m;
    double ss = 0.0;
    for (int n = 0; n < N; n++) {
      const float *v = xd + ((size_t)n * (size_t)C + (size_t)ch) * HW;
      for (size_t i = 0; i < HW; i++) ss += (v[i] - mean) * (v[i] - mean);
    }
    const double s = sqrt(ss / (m - 1.0));
    sd[ch] = (float)s;
    den[ch] = (float)(s + eps);
    /* den can still be 0 (constant channel, eps 0): map to 0, not NaN. */
    const double inv = den[ch] > 0.0f ? 1.0 / den[ch] : 0.0;
    for (int n = 0; n < N; n++) {
      const size_t base = ((size_t)n * (size_t)C + (size_t)ch) * HW;
      for (size_t i = 0; i < HW; i++) yd[base + i] = (float)((xd[base + i] - mean) * inv);
    }
  }
  KdTensor *in[1] = {x};
  PearsonSaved *sv = kd_record(c, "pearson", y, in, 1, pearson_backward, sizeof *sv);
  if (sv) *sv = (PearsonSaved){.n = N, .ch = C, .hw = HW, .den = den, .sd = sd};
  return y;
}

/* ---------- spatial softmax ---------- */

static KdTensor *spatial(KdCtx *c, KdTensor *x, float tau, int log) {
  if (!x) return NULL;
  const char *op = log ? "spatial_log_softmax" : "spatial_softmax";
  char sx[64];
  if (x->ndim != 4) {
    kd_ctx_fail(c, "%s: input %s must be N,C,H,W", op, kd_tensor_shape_str(x, sx, sizeof sx));
    return NULL;
  }
  if (!(tau > 0.0f)) {
    kd_ctx_fail(c, "%s: temperature %g must be > 0", op, (double)tau);
    return NULL;
  }
  int flat[3] = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]};
  KdTensor *v = kd_reshape(c, x, 3, flat);
  if (tau != 1.0f) v = kd_scale(c, v, 1.0f / tau);
  v = log ? kd_log_softmax(c, v, 2) : kd_softmax(c, v, 2);
  return kd_reshape(c, v, 4, x->shape);
}

KdTensor *kd_norm_spatial_softmax(KdCtx *c, KdTensor *x, float tau) { return spatial(c, x, tau, 0); }
KdTensor *kd_norm_spatial_log_softmax(KdCtx *c, KdTensor *x, float tau) { return spatial(c, x, tau, 1); }

/* ---------- distances ---------- */

KdTensor *kd_dist_sq_sum(KdCtx *c, KdTensor *a, KdTensor *b) { return kd_sum_all(c, kd_square(c, kd_sub(c, a, b))); }

KdTensor *kd_dist_kl(KdCtx *c, KdTensor *log_q, KdTensor *log_p, unsigned axes) {
  if (!log_q || !log_p) return NULL;
  if (!kd_tensor_same_shape(log_q, log_p)) {
    char sq[64], sp[64];
    kd_ctx_fail(c, "kl: shapes differ: %s vs %s", kd_tensor_shape_str(log_q, sq, sizeof sq),
                kd_tensor_shape_str(log_p, sp, sizeof sp));
    return NULL;
  }
  return kd_sum(c, kd_mul(c, kd_exp(c, log_q), kd_sub(c, log_q, log_p)), axes);
}

/* ---------- KL between temperature softmaxes of logits (fused) ---------- */

typedef struct {
  size_t outer, len, inner;
  float tau;
  float *st; /* [4 * rows]: per row max and log-sum-exp (after the max) of t/tau, then of s/tau */
} KlSaved;

/* Row r = (o, i) holds elements base + k*inner, k < len. */
static inline size_t kl_base(const KlSaved *s, size_t r) { return r / s->inner * s->len * s->inner + r % s->inner; }

/* With lq = log q, lp = log p and KL the row's value:
 *   d KL / d s_k = (p_k - q_k) / tau
 *   d KL / d t_k = q_k (lq_k - lp_k - KL) / tau */
static void kl_logits_backward(KdCtx *c, KdNode *node) {
  KlSaved *s = node->saved;
  KdTensor *t = node->in[0], *x = node->in[1];
  float *gt = t->requires_grad ? kd_grad(c, t) : NULL, *gs = x->requires_grad ? kd_grad(c, x) : NULL;
  if (!gt && !gs) return;
  const float *gy = node->out->grad, *kl = node->out->data, *td = t->data, *sd = x->data;
  const size_t rows = s->outer * s->inner, L = s->len, in = s->inner;
  const float inv = 1.0f / s->tau;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    const size_t b = kl_base(s, r);
    const float g = gy[r] * inv, *m = s->st + 4 * r;
    for (size_t k = 0; k < L; k++) {
      const size_t e = b + k * in;
      const float lq = (td[e] * inv - m[0]) - m[1], lp = (sd[e] * inv - m[2]) - m[3], q = expf(lq);
      if (gs) gs[e] += g * (expf(lp) - q);
      if (gt) gt[e] += g * q * (lq - lp - kl[r]);
    }
  }
}

KdTensor *kd_dist_kl_logits(KdCtx *c, KdTensor *t, KdTensor *s, int axis, float tau) {
  if (!t || !s) return NULL;
  char st[64], ss[64];
  if (!(tau > 0.0f)) {
    kd_ctx_fail(c, "kl: temperature %g must be > 0", (double)tau);
    return NULL;
  }
  if (!kd_tensor_same_shape(t, s)) {
    kd_ctx_fail(c, "kl: shapes differ: %s vs %s", kd_tensor_shape_str(t, st, sizeof st), kd_tensor_shape_str(s, ss, sizeof ss));
    return NULL;
  }
  if (axis < 0) axis += t->ndim;
  if (axis < 0 || axis >= t->ndim) {
    kd_ctx_fail(c, "kl: axis out of range for %s", kd_tensor_shape_str(t, st, sizeof st));
    return NULL;
  }
  KlSaved ks = {.outer = 1, .inner = 1, .len = (size_t)t->shape[axis], .tau = tau};
  for (int d = 0; d < axis; d++) ks.outer *= (size_t)t->shape[d];
  for (int d = axis + 1; d < t->ndim; d++) ks.inner *= (size_t)t->shape[d];
  int shape[KD_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[axis] = 1;
  const size_t rows = ks.outer * ks.inner, L = ks.len, in = ks.inner;
  KdTensor *y = kd_tensor_new(c, t->ndim, shape);
  ks.st = kd_ctx_alloc(c, 4 * rows * sizeof(float));
  if (!y || !ks.st) return NULL;
  const float inv = 1.0f / tau, *td = t->data, *sd = s->data;
  KD_PRAGMA(omp parallel for schedule(static))
  for (size_t r = 0; r < rows; r++) {
    const size_t b = kl_base(&ks, r);
    float mt = -FLT_MAX, ms = -FLT_MAX;
    for (size_t k = 0; k < L; k++) {
      mt = fmaxf(mt, td[b + k * in] * inv);
      ms = fmaxf(ms, sd[b + k * in] * inv);
    }
    double zt = 0.0, zs = 0.0;
    for (size_t k = 0; k < L; k++) {
      zt += expf(td[b + k * in] * inv - mt);
      zs += expf(sd[b + k * in] * inv - ms);
    }
    const float lzt = (float)log(zt), lzs = (float)log(zs);
    float *m = ks.st + 4 * r;
    m[0] = mt, m[1] = lzt, m[2] = ms, m[3] = lzs;
    double kl = 0.0;
    for (size_t k = 0; k < L; k++) {
      /* (x - max) - log(sum) keeps the low bits, as log_softmax does */
      const float lq = (td[b + k * in] * inv - mt) - lzt, lp = (sd[b + k * in] * inv - ms) - lzs;
      kl += (double)expf(lq) * (double)(lq - lp);
    }
    y->data[r] = (float)kl;
  }
  KdTensor *ins[2] = {t, s};
  KlSaved *sv = kd_record(c, "kl_logits", y, ins, 2, kl_logits_backward, sizeof *sv);
  if (sv) *sv = ks;
  return y;
}

/* The mean over the rows of kl (R,1) where want(labels[r]), times scale. */
static KdTensor *row_mean(KdCtx *c, KdTensor *kl, const int *labels, int obj, float scale) {
  const int R = kl->shape[0];
  int *idx = kd_ctx_alloc(c, (size_t)(R + 1) * sizeof *idx), m = 0;
  if (!idx) return NULL;
  for (int r = 0; r < R; r++)
    if ((labels[r] > 0) == obj) idx[m++] = r;
  if (!m) return kd_tensor_zeros(c, 1, (int[]){1});
  return kd_scale(c, kd_sum_all(c, kd_gather(c, kl, idx, m)), scale / (float)m);
}

int kd_dist_kl_decoupled(KdCtx *c, KdTensor *t, KdTensor *s, const int *labels, float T_obj, float T_bg, KdTensor **obj,
                         KdTensor **bg) {
  *obj = *bg = NULL;
  if (!t || !s || t->ndim != 2) return kd_ctx_fail(c, "decoupled KL: RoI logits R,K+1 expected"), -1;
  *obj = row_mean(c, kd_dist_kl_logits(c, t, s, 1, T_obj), labels, 1, T_obj * T_obj);
  *bg = row_mean(c, kd_dist_kl_logits(c, t, s, 1, T_bg), labels, 0, T_bg * T_bg);
  return *obj && *bg ? 0 : -1;
}
