/* Detection losses (see detloss.h). Each op computes the loss and its
 * per-element gradient in one pass (math in double), keeps the gradient in
 * the arena, and its backward only scales it by the incoming gradient. */
#include "detect/detloss.h"

#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "detect/assign.h"

typedef struct {
  int nlev, N, A, per; /* per: K for logits, 4 for boxes */
  int H[KD_DET_MAX_LEVELS], W[KD_DET_MAX_LEVELS];
  size_t off[KD_DET_MAX_LEVELS + 1]; /* first anchor of each level in an image */
} Layout;

typedef struct {
  int nlev;
  float *g[KD_DET_MAX_LEVELS]; /* d(loss)/d(level element) */
} LossSaved;

/* Checks level shapes; per = 4 requires A*4 channels, per = 0 derives K. */
static int layout(KdCtx *c, const char *op, KdTensor *const *lv, int nlev, int A, int per, float normalizer,
                  Layout *L) {
  if (kd_ctx_failed(c)) return -1;
  if (!lv || nlev < 1 || nlev > KD_DET_MAX_LEVELS || A < 1) {
    kd_ctx_fail(c, "%s: %d levels (1..%d) with %d anchors per location", op, nlev, KD_DET_MAX_LEVELS, A);
    return -1;
  }
  if (!(normalizer > 0.0f) || !isfinite(normalizer)) {
    kd_ctx_fail(c, "%s: normalizer %g, expected > 0", op, normalizer);
    return -1;
  }
  L->nlev = nlev;
  L->A = A;
  L->off[0] = 0;
  for (int l = 0; l < nlev; l++) {
    KdTensor *x = lv[l];
    char sb[64];
    if (!x) {
      kd_ctx_fail(c, "%s: level %d is missing", op, l);
      return -1;
    }
    int ch = x->shape[1];
    int p = per ? per : (x->ndim == 4 && ch % A == 0 ? ch / A : 0);
    if (l == 0) {
      L->N = x->shape[0];
      L->per = p;
    }
    if (x->ndim != 4 || p < 1 || ch != A * p || p != L->per || x->shape[0] != L->N) {
      kd_ctx_fail(c, "%s: level %d has shape %s, expected N=%d, A*%s=%d*%d channels, H, W", op, l,
                  kd_tensor_shape_str(x, sb, sizeof sb), L->N, per ? "4" : "K", A, L->per);
      return -1;
    }
    L->H[l] = x->shape[2];
    L->W[l] = x->shape[3];
    L->off[l + 1] = L->off[l] + (size_t)L->H[l] * L->W[l] * A;
  }
  return 0;
}

/* Checks every target class; kmax = K for the focal loss, INT_MAX-ish else. */
static int check_targets(KdCtx *c, const char *op, const int *target_cls, size_t n, int kmax) {
  if (!target_cls) {
    kd_ctx_fail(c, "%s: target classes are missing", op);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    int t = target_cls[i];
    if (t < KD_MATCH_IGNORE || t >= kmax) {
      kd_ctx_fail(c, "%s: target_cls[%zu] = %d, expected -2 (ignore), -1 (negative) or a class in 0..%d", op, i, t,
                  kmax - 1);
      return -1;
    }
  }
  return 0;
}

static void loss_backward(KdCtx *c, KdNode *node) {
  LossSaved *s = node->saved;
  float go = node->out->grad[0];
  for (int l = 0; l < s->nlev; l++) {
    KdTensor *x = node->in[l];
    if (!x->requires_grad || !s->g[l]) continue;
    float *gx = kd_grad(c, x);
    if (!gx) return;
    const float *g = s->g[l];
    size_t len = x->numel;
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += go * g[i];
  }
}

int kd_detloss_grads(KdCtx *c, KdTensor *const *lv, int nlev, int zero, float **g) {
  int need = 0;
  for (int l = 0; l < nlev; l++) need |= lv[l]->requires_grad;
  need = need && kd_ctx_grad_enabled(c);
  for (int l = 0; l < nlev; l++) {
    g[l] = NULL;
    if (need && !(g[l] = kd_ctx_alloc(c, lv[l]->numel * sizeof(float)))) return -1;
    if (g[l] && zero) memset(g[l], 0, lv[l]->numel * sizeof(float));
  }
  return 0;
}

KdTensor *kd_detloss_scalar(KdCtx *c, const char *op, KdTensor *const *lv, int nlev, float **g, double sum) {
  int one = 1;
  KdTensor *y = kd_tensor_new(c, 1, &one);
  if (!y) return NULL;
  y->data[0] = (float)sum;
  LossSaved *s = kd_record(c, op, y, lv, nlev, loss_backward, sizeof *s);
  if (s) {
    s->nlev = nlev;
    for (int l = 0; l < nlev; l++) s->g[l] = g[l];
  }
  return y;
}

static inline double powg(double v, double gamma) { return gamma == 2.0 ? v * v : (gamma == 0.0 ? 1.0 : pow(v, gamma)); }

KdTensor *kd_focal_loss(KdCtx *c, KdTensor *const *cls_levels, int nlev, int A, const int *target_cls, float alpha,
                        float gamma, float normalizer) {
  Layout L;
  if (layout(c, "focal_loss", cls_levels, nlev, A, 0, normalizer, &L)) return NULL;
  if (!(gamma >= 0.0f) || !(alpha <= 1.0f)) {
    kd_ctx_fail(c, "focal_loss: gamma %g (expected >= 0), alpha %g (expected <= 1)", gamma, alpha);
    return NULL;
  }
  const int K = L.per;
  const size_t At = L.off[nlev];
  if (check_targets(c, "focal_loss", target_cls, (size_t)L.N * At, K)) return NULL;
  float *g[KD_DET_MAX_LEVELS];
  if (kd_detloss_grads(c, cls_levels, nlev, 0, g)) return NULL;
  const double aw_pos = alpha >= 0.0f ? alpha : 1.0, aw_neg = alpha >= 0.0f ? 1.0 - alpha : 1.0;
  const double gm = gamma, inv = 1.0 / normalizer;
  double sum = 0.0;
  for (int l = 0; l < nlev; l++) {
    const size_t HW = (size_t)L.H[l] * L.W[l];
    const int planes = L.N * A * K;
    const float *xall = cls_levels[l]->data;
    float *gall = g[l];
    const size_t off = L.off[l];
    KD_PRAGMA(omp parallel for schedule(static) reduction(+ : sum) if (cls_levels[l]->numel >= KD_PAR_MIN))
    for (int p = 0; p < planes; p++) {
      int k = p % K, a = p / K % A, n = p / (K * A);
      const int *tc = target_cls + (size_t)n * At + off + a;
      const float *x = xall + (size_t)p * HW;
      float *gx = gall ? gall + (size_t)p * HW : NULL;
      double acc = 0.0;
      for (size_t i = 0; i < HW; i++) {
        int t = tc[i * A];
        if (t == KD_MATCH_IGNORE) {
          if (gx) gx[i] = 0.0f;
          continue;
        }
        /* p = sigmoid(x), q = 1 - p and the log terms, without overflow. */
        double v = x[i], e = exp(-fabs(v)), l1p = log1p(e);
        double pr = v >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        double q = v >= 0.0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
        double loss, grad;
        if (t == k) {
          double nlogp = fmax(-v, 0.0) + l1p, w = aw_pos * powg(q, gm);
          loss = w * nlogp;
          grad = w * (-gm * pr * nlogp - q);
        } else {
          double nlogq = fmax(v, 0.0) + l1p, w = aw_neg * powg(pr, gm);
          loss = w * nlogq;
          grad = w * (pr + gm * q * nlogq);
        }
        acc += loss;
        if (gx) gx[i] = (float)(grad * inv);
      }
      sum += acc;
    }
  }
  return kd_detloss_scalar(c, "focal_loss", cls_levels, nlev, g, sum * inv);
}

KdTensor *kd_smooth_l1_loss(KdCtx *c, KdTensor *const *box_levels, int nlev, int A, const float *target_deltas,
                            const int *target_cls, float beta, float normalizer) {
  Layout L;
  if (layout(c, "smooth_l1_loss", box_levels, nlev, A, 4, normalizer, &L)) return NULL;
  if (!(beta >= 0.0f) || !target_deltas) {
    kd_ctx_fail(c, "smooth_l1_loss: beta %g (expected >= 0)%s", beta, target_deltas ? "" : ", target deltas missing");
    return NULL;
  }
  const size_t At = L.off[nlev];
  if (check_targets(c, "smooth_l1_loss", target_cls, (size_t)L.N * At, 1 << 30)) return NULL;
  float *g[KD_DET_MAX_LEVELS];
  if (kd_detloss_grads(c, box_levels, nlev, 0, g)) return NULL;
  const double b = beta, inv = 1.0 / normalizer;
  double sum = 0.0;
  for (int l = 0; l < nlev; l++) {
    const size_t HW = (size_t)L.H[l] * L.W[l];
    const int planes = L.N * A * 4;
    const float *xall = box_levels[l]->data;
    float *gall = g[l];
    const size_t off = L.off[l];
    KD_PRAGMA(omp parallel for schedule(static) reduction(+ : sum) if (box_levels[l]->numel >= KD_PAR_MIN))
    for (int p = 0; p < planes; p++) {
      int j = p % 4, a = p / 4 % A, n = p / (4 * A);
      size_t first = (size_t)n * At + off + a;
      const float *x = xall + (size_t)p * HW;
      float *gx = gall ? gall + (size_t)p * HW : NULL;
      double acc = 0.0;
      for (size_t i = 0; i < HW; i++) {
        size_t ai = first + i * A;
        if (target_cls[ai] < 0) {
          if (gx) gx[i] = 0.0f;
          continue;
        }
        double d = (double)x[i] - target_deltas[4 * ai + j], ad = fabs(d), grad;
        if (ad < b) {
          acc += 0.5 * d * d / b;
          grad = d / b;
        } else {
          acc += ad - 0.5 * b;
          grad = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0);
        }
        if (gx) gx[i] = (float)(grad * inv);
      }
      sum += acc;
    }
  }
  return kd_detloss_scalar(c, "smooth_l1_loss", box_levels, nlev, g, sum * inv);
}

/* d max(u, v)/du with PyTorch's convention of splitting ties. */
static inline double dmax(double u, double v) { return u > v ? 1.0 : (u == v ? 0.5 : 0.0); }

/* 1 - GIoU of p against t, as torchvision (eps 1e-7); dp = dL/dp. */
static double giou_loss1(const double *p, const double *t, double *dp) {
  const double eps = 1e-7;
  double xk1 = fmax(p[0], t[0]), yk1 = fmax(p[1], t[1]), xk2 = fmin(p[2], t[2]), yk2 = fmin(p[3], t[3]);
  int overlap = xk2 > xk1 && yk2 > yk1;
  double inter = overlap ? (xk2 - xk1) * (yk2 - yk1) : 0.0;
  double pw = p[2] - p[0], ph = p[3] - p[1];
  double uni = pw * ph + (t[2] - t[0]) * (t[3] - t[1]) - inter;
  double xc1 = fmin(p[0], t[0]), yc1 = fmin(p[1], t[1]), xc2 = fmax(p[2], t[2]), yc2 = fmax(p[3], t[3]);
  double cw = xc2 - xc1, chh = yc2 - yc1, area_c = cw * chh;
  double loss = 1.0 - inter / (uni + eps) + (area_c - uni) / (area_c + eps);
  /* Partials w.r.t. inter, union and enclosing area; union = Ap + Ag - inter. */
  double dU = inter / ((uni + eps) * (uni + eps)) - 1.0 / (area_c + eps);
  double dI = -1.0 / (uni + eps) - dU;
  double dC = (uni + eps) / ((area_c + eps) * (area_c + eps));
  dp[0] = -ph * dU - chh * dC * dmax(t[0], p[0]);
  dp[1] = -pw * dU - cw * dC * dmax(t[1], p[1]);
  dp[2] = ph * dU + chh * dC * dmax(p[2], t[2]);
  dp[3] = pw * dU + cw * dC * dmax(p[3], t[3]);
  if (overlap) {
    double iw = xk2 - xk1, ih = yk2 - yk1;
    dp[0] += -ih * dI * dmax(p[0], t[0]);
    dp[1] += -iw * dI * dmax(p[1], t[1]);
    dp[2] += ih * dI * dmax(t[2], p[2]);
    dp[3] += iw * dI * dmax(t[3], p[3]);
  }
  return loss;
}

KdTensor *kd_giou_loss(KdCtx *c, KdTensor *const *box_levels, int nlev, int A, const float *anchors,
                       const float *target_boxes, const int *target_cls, const KdBoxCoder *bc, float normalizer) {
  Layout L;
  if (layout(c, "giou_loss", box_levels, nlev, A, 4, normalizer, &L)) return NULL;
  if (!anchors || !target_boxes || !bc) {
    kd_ctx_fail(c, "giou_loss: anchors, target boxes or box coder missing");
    return NULL;
  }
  const size_t At = L.off[nlev];
  if (check_targets(c, "giou_loss", target_cls, (size_t)L.N * At, 1 << 30)) return NULL;
  float *g[KD_DET_MAX_LEVELS];
  if (kd_detloss_grads(c, box_levels, nlev, 0, g)) return NULL;
  const double inv = 1.0 / normalizer;
  double sum = 0.0;
  for (int l = 0; l < nlev; l++) {
    const size_t HW = (size_t)L.H[l] * L.W[l];
    const long cells = (long)L.N * (long)HW * A;
    const float *xall = box_levels[l]->data;
    float *gall = g[l];
    const size_t off = L.off[l];
    KD_PRAGMA(omp parallel for schedule(static) reduction(+ : sum) if (cells * 4 >= KD_PAR_MIN))
    for (long q = 0; q < cells; q++) {
      int n = (int)(q / ((long)HW * A)), a = (int)(q % A);
      size_t hw = (size_t)(q / A % (long)HW);
      size_t anchor = off + hw * A + a, ai = (size_t)n * At + anchor;
      /* The 4 deltas of this anchor sit HW apart in channels a*4 .. a*4+3. */
      size_t e0 = ((size_t)n * A * 4 + (size_t)a * 4) * HW + hw;
      if (target_cls[ai] < 0) {
        if (gall)
          for (int j = 0; j < 4; j++) gall[e0 + j * HW] = 0.0f;
        continue;
      }
      const float *an = anchors + 4 * anchor;
      double aw = (double)an[2] - an[0], ah = (double)an[3] - an[1];
      double acx = an[0] + 0.5 * aw, acy = an[1] + 0.5 * ah;
      double dx = xall[e0] / bc->wx, dy = xall[e0 + HW] / bc->wy;
      double dw = xall[e0 + 2 * HW] / bc->ww, dh = xall[e0 + 3 * HW] / bc->wh;
      int cw = dw > bc->clip, chh = dh > bc->clip; /* clamped: no gradient */
      if (cw) dw = bc->clip;
      if (chh) dh = bc->clip;
      double cx = dx * aw + acx, cy = dy * ah + acy, w = exp(dw) * aw, h = exp(dh) * ah;
      double pb[4] = {cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h}, tb[4], dp[4];
      for (int j = 0; j < 4; j++) tb[j] = target_boxes[4 * ai + j];
      sum += giou_loss1(pb, tb, dp);
      if (gall) {
        gall[e0] = (float)((dp[0] + dp[2]) * aw / bc->wx * inv);
        gall[e0 + HW] = (float)((dp[1] + dp[3]) * ah / bc->wy * inv);
        gall[e0 + 2 * HW] = cw ? 0.0f : (float)(0.5 * w * (dp[2] - dp[0]) / bc->ww * inv);
        gall[e0 + 3 * HW] = chh ? 0.0f : (float)(0.5 * h * (dp[3] - dp[1]) / bc->wh * inv);
      }
    }
  }
  return kd_detloss_scalar(c, "giou_loss", box_levels, nlev, g, sum * inv);
}
