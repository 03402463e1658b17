/* GFL's losses and box coding (gflloss.h). Scalar losses keep their
 * gradient from the forward pass (kd_detloss_grads / kd_detloss_scalar);
 * the integral and the box coder are element-wise maps with their own
 * backward. */
#include "detect/gflloss.h"

#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "detect/assign.h"
#include "detect/detloss.h"

/* softplus(v) = BCE(v, 0) and sigmoid, without overflow. */
static inline void sp_sig(double v, double *sp, double *p) {
  double e = exp(-fabs(v));
  *sp = fmax(v, 0.0) + log1p(e);
  *p = v >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

static inline double powb(double v, double b) { return b == 2.0 ? v * v : (b == 0.0 ? 1.0 : pow(v, b)); }
/* d v^b / dv for v >= 0 (0 at v = 0 when b > 1). */
static inline double dpowb(double v, double b) {
  if (b == 2.0) return 2.0 * v;
  if (b == 0.0) return 0.0;
  return v > 0.0 ? b * pow(v, b - 1.0) : (b == 1.0 ? 1.0 : 0.0);
}

KdTensor *kd_qfl_loss(KdCtx *c, KdTensor *const *lv, int nlev, const int *target_cls, const float *target_score,
                      float beta, float normalizer) {
  if (kd_ctx_failed(c)) return NULL;
  if (!lv || nlev < 1 || nlev > KD_DET_MAX_LEVELS || !target_cls || !target_score || !(beta >= 0.0f) ||
      !(normalizer > 0.0f) || !isfinite(normalizer)) {
    kd_ctx_fail(c, "qfl_loss: %d levels (1..%d), beta %g (>= 0), normalizer %g (> 0)%s", nlev, KD_DET_MAX_LEVELS, beta,
                normalizer, target_cls && target_score ? "" : ", targets missing");
    return NULL;
  }
  size_t off[KD_DET_MAX_LEVELS + 1] = {0};
  int N = 0, K = 0;
  for (int l = 0; l < nlev; l++) {
    const KdTensor *x = lv[l];
    if (!x || x->ndim != 4 || (l > 0 && (x->shape[0] != N || x->shape[1] != K))) {
      kd_ctx_fail(c, "qfl_loss: level %d is missing or not N=%d, K=%d, H, W", l, N, K);
      return NULL;
    }
    N = x->shape[0], K = x->shape[1];
    off[l + 1] = off[l] + (size_t)x->shape[2] * x->shape[3];
  }
  const size_t At = off[nlev];
  for (size_t i = 0; i < (size_t)N * At; i++)
    if (target_cls[i] < KD_MATCH_IGNORE || target_cls[i] >= K || (target_cls[i] >= 0 && !(target_score[i] >= 0.0f))) {
      kd_ctx_fail(c, "qfl_loss: target %zu: class %d (-2..%d), score %g (>= 0)", i, target_cls[i], K - 1,
                  target_score[i]);
      return NULL;
    }
  float *g[KD_DET_MAX_LEVELS];
  if (kd_detloss_grads(c, lv, nlev, 1, g)) return NULL;
  const double b = beta, inv = 1.0 / normalizer;
  double sum = 0.0;
  for (int l = 0; l < nlev; l++) {
    const size_t HW = off[l + 1] - off[l];
    const int planes = N * K;
    KD_PRAGMA(omp parallel for schedule(static) reduction(+ : sum) if (lv[l]->numel >= KD_PAR_MIN))
    for (int pl = 0; pl < planes; pl++) {
      int k = pl % K, n = pl / K;
      const int *tc = target_cls + (size_t)n * At + off[l];
      const float *ts = target_score + (size_t)n * At + off[l];
      const float *x = lv[l]->data + (size_t)pl * HW;
      float *gx = g[l] ? g[l] + (size_t)pl * HW : NULL;
      double acc = 0.0;
      for (size_t i = 0; i < HW; i++) {
        if (tc[i] == KD_MATCH_IGNORE) continue;
        double v = x[i], sp, p, loss, grad, dp = 0.0;
        sp_sig(v, &sp, &p);
        if (tc[i] == k) {
          double s = ts[i], bce = sp - s * v, d = fabs(s - p), f = powb(d, b);
          loss = bce * f;
          /* d|s - p|/dp = sign(p - s); dp/dv = p(1 - p) */
          dp = dpowb(d, b) * (p > s ? 1.0 : (p < s ? -1.0 : 0.0));
          grad = (p - s) * f + bce * dp * p * (1.0 - p);
        } else {
          double f = powb(p, b);
          loss = sp * f;
          grad = p * f + sp * dpowb(p, b) * p * (1.0 - p);
        }
        acc += loss;
        if (gx) gx[i] = (float)(grad * inv);
      }
      sum += acc;
    }
  }
  return kd_detloss_scalar(c, "qfl_loss", lv, nlev, g, sum * inv);
}

/* ---- integral ---- */

typedef struct {
  float *p; /* softmax, M x (R+1) */
} IntSaved;

static void integral_backward(KdCtx *c, KdNode *node) {
  IntSaved *s = node->saved;
  KdTensor *x = node->in[0], *y = node->out;
  float *gx = kd_grad(c, x);
  if (!gx) return;
  const int M = x->shape[0], B = x->shape[1];
  for (int m = 0; m < M; m++) {
    double gy = y->grad[m], e = y->data[m];
    const float *p = s->p + (size_t)m * B;
    for (int j = 0; j < B; j++) gx[(size_t)m * B + j] += (float)(gy * p[j] * (j - e));
  }
}

KdTensor *kd_integral(KdCtx *c, KdTensor *x) {
  if (kd_ctx_failed(c)) return NULL;
  if (!x || x->ndim != 2 || x->shape[1] < 2 || x->blocked) {
    kd_ctx_fail(c, "integral: input must be M, R+1 with R >= 1");
    return NULL;
  }
  const int M = x->shape[0], B = x->shape[1];
  KdTensor *y = kd_tensor_new(c, 1, &x->shape[0]);
  float *p = kd_ctx_alloc(c, x->numel * sizeof *p);
  if (!y || !p) return NULL;
  for (int m = 0; m < M; m++) {
    const float *r = x->data + (size_t)m * B;
    double mx = r[0], z = 0.0, e = 0.0;
    for (int j = 1; j < B; j++) mx = fmax(mx, r[j]);
    for (int j = 0; j < B; j++) z += exp(r[j] - mx);
    for (int j = 0; j < B; j++) {
      double q = exp(r[j] - mx) / z;
      p[(size_t)m * B + j] = (float)q;
      e += q * j;
    }
    y->data[m] = (float)e;
  }
  IntSaved *s = kd_record(c, "integral", y, &x, 1, integral_backward, sizeof *s);
  if (s) s->p = p;
  return y;
}

/* ---- distance box coder ---- */

static void d2b_backward(KdCtx *c, KdNode *node) {
  KdTensor *d = node->in[0], *y = node->out;
  float *gd = kd_grad(c, d);
  if (!gd) return;
  for (size_t i = 0; i < d->numel; i++) gd[i] += (i % 4 < 2 ? -1.0f : 1.0f) * y->grad[i];
}

KdTensor *kd_distance2bbox(KdCtx *c, KdTensor *d, const float *points) {
  if (kd_ctx_failed(c)) return NULL;
  if (!d || d->ndim != 2 || d->shape[1] != 4 || !points) {
    kd_ctx_fail(c, "distance2bbox: distances must be P, 4 with P points");
    return NULL;
  }
  KdTensor *y = kd_tensor_new(c, 2, d->shape);
  if (!y) return NULL;
  for (int i = 0; i < d->shape[0]; i++) {
    const float *di = d->data + 4 * (size_t)i, *pt = points + 2 * (size_t)i;
    float *b = y->data + 4 * (size_t)i;
    b[0] = pt[0] - di[0], b[1] = pt[1] - di[1], b[2] = pt[0] + di[2], b[3] = pt[1] + di[3];
  }
  kd_record(c, "distance2bbox", y, &d, 1, d2b_backward, 0);
  return y;
}

void kd_bbox2distance(const float *pt, const float *box, float max_dis, float *d) {
  d[0] = pt[0] - box[0], d[1] = pt[1] - box[1], d[2] = box[2] - pt[0], d[3] = box[3] - pt[1];
  if (max_dis > 0.0f)
    for (int j = 0; j < 4; j++) d[j] = fminf(fmaxf(d[j], 0.0f), max_dis - 0.1f);
}

/* ---- DFL ---- */

KdTensor *kd_dfl_loss(KdCtx *c, KdTensor *x, const float *target, const float *weight) {
  if (kd_ctx_failed(c)) return NULL;
  if (!x || x->ndim != 2 || x->shape[1] < 2 || !target) {
    kd_ctx_fail(c, "dfl_loss: logits must be M, R+1 with R >= 1, and targets given");
    return NULL;
  }
  const int M = x->shape[0], B = x->shape[1];
  for (int m = 0; m < M; m++)
    if (!(target[m] >= 0.0f && target[m] < (float)(B - 1))) {
      kd_ctx_fail(c, "dfl_loss: target %d is %g, expected [0, %d)", m, target[m], B - 1);
      return NULL;
    }
  float *g;
  if (kd_detloss_grads(c, &x, 1, 1, &g)) return NULL;
  double sum = 0.0;
  for (int m = 0; m < M; m++) {
    const float *r = x->data + (size_t)m * B;
    double mx = r[0], z = 0.0, w = weight ? weight[m] : 1.0, t = target[m];
    for (int j = 1; j < B; j++) mx = fmax(mx, r[j]);
    for (int j = 0; j < B; j++) z += exp(r[j] - mx);
    double lse = mx + log(z);
    int lo = (int)floor(t);
    double wl = lo + 1 - t, wr = t - lo;
    sum += w * (wl * (lse - r[lo]) + wr * (lse - r[lo + 1]));
    if (!g) continue;
    float *gr = g + (size_t)m * B;
    for (int j = 0; j < B; j++) gr[j] = (float)(w * (wl + wr) * exp(r[j] - lse));
    gr[lo] -= (float)(w * wl);
    gr[lo + 1] -= (float)(w * wr);
  }
  return kd_detloss_scalar(c, "dfl_loss", &x, 1, &g, sum);
}

/* ---- GIoU on aligned boxes ---- */

/* d min(u, v)/du and d max(u, v)/du, ties split as PyTorch does. */
static inline double dmin(double u, double v) { return u < v ? 1.0 : (u == v ? 0.5 : 0.0); }
static inline double dmax(double u, double v) { return u > v ? 1.0 : (u == v ? 0.5 : 0.0); }

/* 1 - GIoU and, when dp, its gradient w.r.t. p. */
static double giou1(const float *pf, const float *tf, double eps, double *dp, double *iou_out) {
  double p[4], t[4];
  for (int j = 0; j < 4; j++) p[j] = pf[j], t[j] = tf[j];
  double pw = p[2] - p[0], ph = p[3] - p[1], ap = pw * ph, at = (t[2] - t[0]) * (t[3] - t[1]);
  double iw = fmin(p[2], t[2]) - fmax(p[0], t[0]), ih = fmin(p[3], t[3]) - fmax(p[1], t[1]);
  int iwp = iw > 0.0, ihp = ih > 0.0;
  iw = iwp ? iw : 0.0, ih = ihp ? ih : 0.0;
  double inter = iw * ih, uraw = ap + at - inter, u = fmax(uraw, eps);
  double ew = fmax(p[2], t[2]) - fmin(p[0], t[0]), eh = fmax(p[3], t[3]) - fmin(p[1], t[1]);
  int ewp = ew > 0.0, ehp = eh > 0.0;
  ew = ewp ? ew : 0.0, eh = ehp ? eh : 0.0;
  double eraw = ew * eh, e = fmax(eraw, eps);
  double iou = inter / u;
  if (iou_out) *iou_out = iou;
  double loss = 1.0 - (iou - (e - u) / e); /* = 2 - I/U - U/E */
  if (!dp) return loss;
  double dU = (uraw >= eps) ? inter / (u * u) - 1.0 / e : 0.0; /* through U = max(Uraw, eps) */
  double dI = -1.0 / u - dU;                                     /* Uraw = Ap + At - I */
  double dE = eraw >= eps ? u / (e * e) : 0.0;
  /* Ap */
  dp[0] = -ph * dU, dp[2] = ph * dU, dp[1] = -pw * dU, dp[3] = pw * dU;
  /* intersection: iw = min(p2, t2) - max(p0, t0) */
  if (iwp && ihp) {
    dp[0] += -ih * dI * dmax(p[0], t[0]), dp[2] += ih * dI * dmin(p[2], t[2]);
    dp[1] += -iw * dI * dmax(p[1], t[1]), dp[3] += iw * dI * dmin(p[3], t[3]);
  }
  /* enclosure: ew = max(p2, t2) - min(p0, t0) */
  if (ewp) dp[0] += -eh * dE * dmin(p[0], t[0]), dp[2] += eh * dE * dmax(p[2], t[2]);
  if (ehp) dp[1] += -ew * dE * dmin(p[1], t[1]), dp[3] += ew * dE * dmax(p[3], t[3]);
  return loss;
}

double kd_giou_aligned(const float *p, const float *t, float eps, double *iou) {
  return 1.0 - giou1(p, t, eps, NULL, iou);
}

KdTensor *kd_giou_aligned_loss(KdCtx *c, KdTensor *pred, const float *target, const float *weight, float eps) {
  if (kd_ctx_failed(c)) return NULL;
  if (!pred || pred->ndim != 2 || pred->shape[1] != 4 || !target || !(eps > 0.0f)) {
    kd_ctx_fail(c, "giou_aligned_loss: boxes must be P, 4 with targets given and eps > 0");
    return NULL;
  }
  float *g;
  if (kd_detloss_grads(c, &pred, 1, 1, &g)) return NULL;
  double sum = 0.0;
  for (int i = 0; i < pred->shape[0]; i++) {
    double w = weight ? weight[i] : 1.0, dp[4];
    sum += w * giou1(pred->data + 4 * (size_t)i, target + 4 * (size_t)i, eps, g ? dp : NULL, NULL);
    if (g)
      for (int j = 0; j < 4; j++) g[4 * (size_t)i + j] = (float)(w * dp[j]);
  }
  return kd_detloss_scalar(c, "giou_aligned_loss", &pred, 1, &g, sum);
}

double kd_side_integral(const float *d, size_t stride, int B) {
  double mx = d[0], z = 0.0, e = 0.0;
  for (int b = 1; b < B; b++) mx = fmax(mx, d[(size_t)b * stride]);
  for (int b = 0; b < B; b++) {
    double q = exp(d[(size_t)b * stride] - mx);
    z += q, e += q * b;
  }
  return e / z;
}
