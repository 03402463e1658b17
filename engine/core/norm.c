/* Batch and group normalisation, forward and backward.
 *
 * x is N,C,S where S is the product of the dims after C (N,C,H,W in
 * practice; N,C also works). Statistics are one pass over x: sums of
 * (x - shift) and its square in float vector lanes, folded into double
 * per plane. The shift is the first element of the group, close
 * enough to the mean that E[d^2] - E[d]^2 does not cancel. x-hat is not
 * stored: backward recomputes it from x, mean and 1/std. */
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"

/* 8-float vectors (a GCC/Clang extension). Plain loops over lane arrays
 * get vectorised with the lanes spilled to the stack, ~10x slower. */
typedef float v8f __attribute__((vector_size(32)));

/* Takes a pointer: a 32-byte vector by value draws ABI notes without AVX. */
static double hsum8(const v8f *v) {
  double s = 0.0;
  for (int l = 0; l < 8; l++) s += (*v)[l];
  return s;
}

/* s1 += sum(p - shift), s2 += sum((p - shift)^2); float lanes per call,
 * double across calls. */
static void shifted_sums(const float *p, size_t len, float shift, double *s1, double *s2) {
  v8f a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0}, sh = {0};
  sh += shift;
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    v8f d0, d1;
    memcpy(&d0, p + i, sizeof d0);
    memcpy(&d1, p + i + 8, sizeof d1);
    d0 -= sh;
    d1 -= sh;
    a0 += d0;
    a1 += d1;
    b0 += d0 * d0;
    b1 += d1 * d1;
  }
  a0 += a1;
  b0 += b1;
  double x1 = hsum8(&a0), x2 = hsum8(&b0);
  for (; i < len; i++) {
    double d = (double)p[i] - shift;
    x1 += d;
    x2 += d * d;
  }
  *s1 += x1;
  *s2 += x2;
}

/* sg += sum(gy), sgx += sum(gy * (x - mean)). */
static void grad_sums(const float *gy, const float *x, size_t len, float mean, double *sg, double *sgx) {
  v8f a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0}, mu = {0};
  mu += mean;
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    v8f g0, g1, x0, x1;
    memcpy(&g0, gy + i, sizeof g0);
    memcpy(&g1, gy + i + 8, sizeof g1);
    memcpy(&x0, x + i, sizeof x0);
    memcpy(&x1, x + i + 8, sizeof x1);
    a0 += g0;
    a1 += g1;
    b0 += g0 * (x0 - mu);
    b1 += g1 * (x1 - mu);
  }
  a0 += a1;
  b0 += b1;
  double y1 = hsum8(&a0), y2 = hsum8(&b0);
  for (; i < len; i++) {
    y1 += gy[i];
    y2 += (double)gy[i] * ((double)x[i] - mean);
  }
  *sg += y1;
  *sgx += y2;
}

/* y = a*x + b over one plane. */
static void affine_plane(const float *x, float *y, size_t len, float a, float b) {
  for (size_t i = 0; i < len; i++) y[i] = a * x[i] + b;
}

/* gx (+)= a*gy + bx*(x - mean) + k over one plane; `fresh` overwrites. */
static void grad_plane(float *gx, const float *gy, const float *x, size_t len, float a, float bx, float mean, float k,
                       int fresh) {
  if (fresh)
    for (size_t i = 0; i < len; i++) gx[i] = a * gy[i] + bx * (x[i] - mean) + k;
  else
    for (size_t i = 0; i < len; i++) gx[i] += a * gy[i] + bx * (x[i] - mean) + k;
}

/* The input grad for an op that writes every element of it: when nothing
 * has been accumulated yet (t->grad is NULL, see kd_grad), the buffer is
 * taken uninitialised and overwritten, which saves a zeroing pass and a
 * read of the whole tensor. Parameters always accumulate. */
static float *grad_for_write(KdCtx *c, KdTensor *t, int *fresh) {
  *fresh = !t->grad;
  if (t->grad) return t->grad;
  t->grad = kd_ctx_alloc(c, t->numel * sizeof(float));
  return t->grad;
}

static int norm_dims(KdCtx *c, const char *op, const KdTensor *x, int *n, int *ch, size_t *sp) {
  if (x->ndim < 2) {
    char sx[64];
    kd_ctx_fail(c, "%s: input %s needs at least 2 dims (N,C,...)", op, kd_tensor_shape_str(x, sx, 64));
    return -1;
  }
  *n = x->shape[0];
  *ch = x->shape[1];
  *sp = x->numel / ((size_t)*n * *ch);
  return 0;
}

static int check_vec(KdCtx *c, const char *op, const char *what, const KdTensor *v, int ch, const KdTensor *x) {
  if (!v || (int)v->numel == ch) return 0;
  char sx[64], sv[64];
  kd_ctx_fail(c, "%s: %s has shape %s, expected %d values for input %s", op, what, kd_tensor_shape_str(v, sv, 64), ch,
              kd_tensor_shape_str(x, sx, 64));
  return -1;
}

/* ---------- batch norm ---------- */

typedef struct {
  int n, ch;
  size_t sp;
  int training;
  float *mean, *invstd; /* C: batch stats (training) or running stats (eval) */
} BnSaved;

static void bn_backward(KdCtx *c, KdNode *node) {
  BnSaved *s = node->saved;
  KdTensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2];
  const float *gy = node->out->grad, *xd = x->data;
  int fresh = 0;
  float *gx = x->requires_grad ? grad_for_write(c, x, &fresh) : NULL;
  float *gg = gamma && gamma->requires_grad ? kd_grad(c, gamma) : NULL;
  float *gb = beta && beta->requires_grad ? kd_grad(c, beta) : NULL;
  if (kd_ctx_failed(c)) return;
  const int n = s->n, ch = s->ch;
  const size_t sp = s->sp;
  const double m = (double)n * sp;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int ci = 0; ci < ch; ci++) {
    float mean = s->mean[ci], inv = s->invstd[ci], g = gamma ? gamma->data[ci] : 1.0f;
    double sg = 0.0, sgx = 0.0;
    for (int ni = 0; ni < n; ni++) {
      size_t off = ((size_t)ni * ch + ci) * sp;
      grad_sums(gy + off, xd + off, sp, mean, &sg, &sgx);
    }
    double sgxhat = sgx * inv; /* sum(gy * xhat) */
    if (gg) gg[ci] += (float)sgxhat;
    if (gb) gb[ci] += (float)sg;
    if (!gx) continue;
    float a = g * inv, bx = 0.0f, k = 0.0f;
    if (s->training) {
      /* gx = a*(gy - mean(gy) - xhat*mean(gy*xhat)) */
      bx = (float)(-(double)a * inv * sgxhat / m);
      k = (float)(-(double)a * sg / m);
    }
    for (int ni = 0; ni < n; ni++) {
      size_t off = ((size_t)ni * ch + ci) * sp;
      grad_plane(gx + off, gy + off, xd + off, sp, a, bx, mean, k, fresh);
    }
  }
}

KdTensor *kd_batchnorm(KdCtx *c, KdTensor *x, KdTensor *gamma, KdTensor *beta, KdTensor *running_mean,
                       KdTensor *running_var, int training, float momentum, float eps) {
  if (!x) return NULL;
  int n, ch;
  size_t sp;
  if (norm_dims(c, "batchnorm", x, &n, &ch, &sp)) return NULL;
  if (check_vec(c, "batchnorm", "gamma", gamma, ch, x) || check_vec(c, "batchnorm", "beta", beta, ch, x) ||
      check_vec(c, "batchnorm", "running_mean", running_mean, ch, x) ||
      check_vec(c, "batchnorm", "running_var", running_var, ch, x))
    return NULL;
  const size_t m = (size_t)n * sp;
  char sx[64];
  if (!training && (!running_mean || !running_var)) {
    kd_ctx_fail(c, "batchnorm: eval mode on input %s needs running_mean and running_var", kd_tensor_shape_str(x, sx, 64));
    return NULL;
  }
  if (training && m < 2) {
    kd_ctx_fail(c, "batchnorm: training needs more than 1 value per channel, input %s", kd_tensor_shape_str(x, sx, 64));
    return NULL;
  }
  KdTensor *y = kd_tensor_like(c, x);
  float *mean = kd_ctx_alloc(c, 2 * (size_t)ch * sizeof(float));
  if (!y || !mean) return NULL;
  float *invstd = mean + ch;
  const float *xd = x->data;
  float *yd = y->data;
  float *rm = running_mean ? running_mean->data : NULL, *rv = running_var ? running_var->data : NULL;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int ci = 0; ci < ch; ci++) {
    double mu, var;
    if (training) {
      float shift = xd[(size_t)ci * sp];
      double s1 = 0.0, s2 = 0.0;
      for (int ni = 0; ni < n; ni++) shifted_sums(xd + ((size_t)ni * ch + ci) * sp, sp, shift, &s1, &s2);
      double d = s1 / (double)m;
      mu = shift + d;
      var = s2 / (double)m - d * d;
      if (var < 0.0) var = 0.0;
      if (rm) rm[ci] = (1.0f - momentum) * rm[ci] + momentum * (float)mu;
      if (rv) rv[ci] = (1.0f - momentum) * rv[ci] + momentum * (float)(var * (double)m / (double)(m - 1));
    } else {
      mu = rm[ci];
      var = rv[ci];
    }
    float inv = (float)(1.0 / sqrt(var + (double)eps));
    mean[ci] = (float)mu;
    invstd[ci] = inv;
    float a = (gamma ? gamma->data[ci] : 1.0f) * inv;
    float b = (beta ? beta->data[ci] : 0.0f) - (float)mu * a;
    for (int ni = 0; ni < n; ni++) {
      size_t off = ((size_t)ni * ch + ci) * sp;
      affine_plane(xd + off, yd + off, sp, a, b);
    }
  }
  KdTensor *in[3] = {x, gamma, beta};
  BnSaved *s = kd_record(c, "batchnorm", y, in, 3, bn_backward, sizeof *s);
  if (s) *s = (BnSaved){.n = n, .ch = ch, .sp = sp, .training = training != 0, .mean = mean, .invstd = invstd};
  return y;
}

/* ---------- group norm ---------- */

typedef struct {
  int n, ch, groups;
  size_t sp;
  float *mean, *invstd; /* N*groups */
} GnSaved;

static void gn_backward(KdCtx *c, KdNode *node) {
  GnSaved *s = node->saved;
  KdTensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2];
  const float *gy = node->out->grad, *xd = x->data;
  int fresh = 0;
  float *gx = x->requires_grad ? grad_for_write(c, x, &fresh) : NULL;
  float *gg = gamma && gamma->requires_grad ? kd_grad(c, gamma) : NULL;
  float *gb = beta && beta->requires_grad ? kd_grad(c, beta) : NULL;
  if (kd_ctx_failed(c)) return;
  const int n = s->n, ch = s->ch, cg = s->ch / s->groups;
  const size_t sp = s->sp;
  const double m = (double)cg * sp;
  /* Affine grads: per channel, summed over the batch. */
  if (gg || gb) {
    KD_PRAGMA(omp parallel for schedule(static))
    for (int ci = 0; ci < ch; ci++) {
      double sgx = 0.0, sg = 0.0;
      for (int ni = 0; ni < n; ni++) {
        int gi = ni * s->groups + ci / cg;
        size_t off = ((size_t)ni * ch + ci) * sp;
        double a = 0.0, b = 0.0;
        grad_sums(gy + off, xd + off, sp, s->mean[gi], &a, &b);
        sg += a;
        sgx += b * s->invstd[gi];
      }
      if (gg) gg[ci] += (float)sgx;
      if (gb) gb[ci] += (float)sg;
    }
  }
  if (!gx) return;
  /* Input grad: per (n, group), gx = inv*(gxh - mean(gxh) - xhat*mean(gxh*xhat))
   * with gxh = gamma*gy. */
  KD_PRAGMA(omp parallel for schedule(static))
  for (int ng = 0; ng < n * s->groups; ng++) {
    int ni = ng / s->groups, g0 = ng % s->groups * cg;
    float mean = s->mean[ng], inv = s->invstd[ng];
    double sg = 0.0, sgx = 0.0; /* sum(gxh), sum(gxh*(x-mean)) */
    for (int ci = g0; ci < g0 + cg; ci++) {
      double a = 0.0, b = 0.0;
      grad_sums(gy + ((size_t)ni * ch + ci) * sp, xd + ((size_t)ni * ch + ci) * sp, sp, mean, &a, &b);
      float gm = gamma ? gamma->data[ci] : 1.0f;
      sg += gm * a;
      sgx += gm * b;
    }
    float bx = (float)(-(double)inv * inv * inv * sgx / m);
    float k = (float)(-(double)inv * sg / m);
    for (int ci = g0; ci < g0 + cg; ci++) {
      size_t off = ((size_t)ni * ch + ci) * sp;
      grad_plane(gx + off, gy + off, xd + off, sp, (gamma ? gamma->data[ci] : 1.0f) * inv, bx, mean, k, fresh);
    }
  }
}

KdTensor *kd_groupnorm(KdCtx *c, KdTensor *x, int groups, KdTensor *gamma, KdTensor *beta, float eps) {
  if (!x) return NULL;
  int n, ch;
  size_t sp;
  if (norm_dims(c, "groupnorm", x, &n, &ch, &sp)) return NULL;
  if (groups < 1 || ch % groups) {
    char sx[64];
    kd_ctx_fail(c, "groupnorm: %d channels of input %s do not split into %d groups", ch, kd_tensor_shape_str(x, sx, 64),
                groups);
    return NULL;
  }
  if (check_vec(c, "groupnorm", "gamma", gamma, ch, x) || check_vec(c, "groupnorm", "beta", beta, ch, x)) return NULL;
  const int cg = ch / groups;
  const size_t gsize = (size_t)cg * sp;
  KdTensor *y = kd_tensor_like(c, x);
  float *mean = kd_ctx_alloc(c, 2 * (size_t)n * groups * sizeof(float));
  if (!y || !mean) return NULL;
  float *invstd = mean + (size_t)n * groups;
  const float *xd = x->data;
  float *yd = y->data;
  /* Group (n, g) is one contiguous block of cg*sp values. */
  KD_PRAGMA(omp parallel for schedule(static))
  for (int ng = 0; ng < n * groups; ng++) {
    const float *xp = xd + (size_t)ng * gsize;
    float shift = xp[0];
    double s1 = 0.0, s2 = 0.0;
    shifted_sums(xp, gsize, shift, &s1, &s2);
    double d = s1 / (double)gsize, var = s2 / (double)gsize - d * d;
    if (var < 0.0) var = 0.0;
    float mu = (float)(shift + d), inv = (float)(1.0 / sqrt(var + (double)eps));
    mean[ng] = mu;
    invstd[ng] = inv;
    int c0 = ng % groups * cg;
    for (int j = 0; j < cg; j++) {
      float a = (gamma ? gamma->data[c0 + j] : 1.0f) * inv;
      float b = (beta ? beta->data[c0 + j] : 0.0f) - mu * a;
      affine_plane(xp + (size_t)j * sp, yd + (size_t)ng * gsize + (size_t)j * sp, sp, a, b);
    }
  }
  KdTensor *in[3] = {x, gamma, beta};
  GnSaved *s = kd_record(c, "groupnorm", y, in, 3, gn_backward, sizeof *s);
  if (s) *s = (GnSaved){.n = n, .ch = ch, .groups = groups, .sp = sp, .mean = mean, .invstd = invstd};
  return y;
}
