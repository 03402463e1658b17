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

/* Per channel from sum(gy) and sum(gy*(x-mean)): the affine grads, and
 * gx = a*gy + bx*(x - mean) + k. */
typedef struct BnGradCoef {
  float a, bx, k;
} BnGradCoef;

static BnGradCoef bn_grad_coef(const BnSaved *s, int ci, float g, double sg, double sgx, float *gg, float *gb) {
  const double m = (double)s->n * s->sp;
  float inv = s->invstd[ci];
  double sgxhat = sgx * inv; /* sum(gy * xhat) */
  if (gg) gg[ci] += (float)sgxhat;
  if (gb) gb[ci] += (float)sg;
  BnGradCoef k = {g * inv, 0.0f, 0.0f};
  if (s->training) {
    /* gx = a*(gy - mean(gy) - xhat*mean(gy*xhat)) */
    k.bx = (float)(-(double)k.a * inv * sgxhat / m);
    k.k = (float)(-(double)k.a * sg / m);
  }
  return k;
}

static void bn_backward_blocked(KdCtx *c, KdNode *node, float *gx, int fresh, float *gg, float *gb);

static void bn_backward(KdCtx *c, KdNode *node) {
  BnSaved *s = node->saved;
  KdTensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2];
  const float *gy = node->out->grad, *xd = x->data;
  int fresh = 0;
  float *gx = x->requires_grad ? grad_for_write(c, x, &fresh) : NULL;
  float *gg = gamma && gamma->requires_grad ? kd_grad(c, gamma) : NULL;
  float *gb = beta && beta->requires_grad ? kd_grad(c, beta) : NULL;
  if (kd_ctx_failed(c)) return;
  if (x->blocked) {
    bn_backward_blocked(c, node, gx, fresh, gg, gb);
    return;
  }
  const int n = s->n, ch = s->ch;
  const size_t sp = s->sp;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int ci = 0; ci < ch; ci++) {
    float mean = s->mean[ci];
    double sg = 0.0, sgx = 0.0;
    for (int ni = 0; ni < n; ni++) {
      size_t off = ((size_t)ni * ch + ci) * sp;
      grad_sums(gy + off, xd + off, sp, mean, &sg, &sgx);
    }
    BnGradCoef k = bn_grad_coef(s, ci, gamma ? gamma->data[ci] : 1.0f, sg, sgx, gg, gb);
    if (!gx) continue;
    for (int ni = 0; ni < n; ni++) {
      size_t off = ((size_t)ni * ch + ci) * sp;
      grad_plane(gx + off, gy + off, xd + off, sp, k.a, k.bx, mean, k.k, fresh);
    }
  }
}

/* What a forward needs per channel: the affine, the running stats it
 * reads (eval) or updates (training), and where it saves mean and 1/std. */
typedef struct BnApply {
  const float *gamma, *beta;
  float *rm, *rv;
  size_t m; /* values per channel */
  float momentum, eps;
  int training;
  float *mean, *invstd;
} BnApply;

/* Channel ci's statistics (training: from the shifted sums s1, s2 of its m
 * values; eval: the running ones), its running update, its saved mean and
 * 1/std, and y = a*x + b. */
static void bn_channel(const BnApply *ap, int ci, float shift, double s1, double s2, float *a, float *b) {
  double mu, var;
  if (ap->training) {
    double d = s1 / (double)ap->m;
    mu = shift + d;
    var = s2 / (double)ap->m - d * d;
    if (var < 0.0) var = 0.0;
    if (ap->rm) ap->rm[ci] = (1.0f - ap->momentum) * ap->rm[ci] + ap->momentum * (float)mu;
    if (ap->rv) ap->rv[ci] = (1.0f - ap->momentum) * ap->rv[ci] + ap->momentum * (float)(var * (double)ap->m / (double)(ap->m - 1));
  } else {
    mu = ap->rm[ci];
    var = ap->rv[ci];
  }
  float inv = (float)(1.0 / sqrt(var + (double)ap->eps));
  ap->mean[ci] = (float)mu;
  ap->invstd[ci] = inv;
  *a = (ap->gamma ? ap->gamma[ci] : 1.0f) * inv;
  *b = (ap->beta ? ap->beta[ci] : 0.0f) - (float)mu * *a;
}

/* ---- batch norm on the blocked layout: 16 channels in the vector lanes ---- */

enum { BLK = 16, FOLD = 256 /* pixels summed in float before folding into double */ };

static void load16(const float *p, v8f *lo, v8f *hi) {
  memcpy(lo, p, sizeof *lo);
  memcpy(hi, p + 8, sizeof *hi);
}

/* The 16 channels of one (n, channel block): out[l] += sum(x - sh),
 * out[16 + l] += sum((x - sh)^2) (a = NULL), or with a = gy:
 * out[l] += sum(gy), out[16 + l] += sum(gy * (x - sh)). */
static void block_sums(const float *xp, const float *a, size_t P, const float *sh, double *out) {
  v8f s0, s1;
  load16(sh, &s0, &s1);
  for (size_t p0 = 0; p0 < P; p0 += FOLD) {
    size_t p1 = p0 + FOLD < P ? p0 + FOLD : P;
    v8f u0 = {0}, u1 = {0}, q0 = {0}, q1 = {0};
    for (size_t p = p0; p < p1; p++) {
      v8f d0, d1, g0, g1;
      load16(xp + p * BLK, &d0, &d1);
      d0 -= s0, d1 -= s1;
      if (a) {
        load16(a + p * BLK, &g0, &g1);
      } else {
        g0 = d0, g1 = d1;
      }
      u0 += g0, u1 += g1;
      q0 += g0 * d0, q1 += g1 * d1;
    }
    for (int l = 0; l < 8; l++) {
      out[l] += u0[l], out[8 + l] += u1[l];
      out[BLK + l] += q0[l], out[BLK + 8 + l] += q1[l];
    }
  }
}

/* part[nb*32 ..]: block_sums of every (n, channel block), in parallel;
 * then per channel, summed over n in a fixed order. */
static void blocked_channel_sums(const float *x, const float *gy, int n, int cb, size_t P, const float *shift, double *part,
                                 double *s1, double *s2) {
  KD_PRAGMA(omp parallel for schedule(static))
  for (int nb = 0; nb < n * cb; nb++) {
    double *o = part + (size_t)nb * 2 * BLK;
    memset(o, 0, 2 * BLK * sizeof(double));
    block_sums(x + (size_t)nb * P * BLK, gy ? gy + (size_t)nb * P * BLK : NULL, P, shift + (size_t)(nb % cb) * BLK, o);
  }
  for (int ci = 0; ci < cb * BLK; ci++) {
    s1[ci] = s2[ci] = 0.0;
    for (int ni = 0; ni < n; ni++) {
      const double *o = part + ((size_t)ni * cb + ci / BLK) * 2 * BLK;
      s1[ci] += o[ci % BLK], s2[ci] += o[BLK + ci % BLK];
    }
  }
}

static int bn_forward_blocked(KdCtx *c, const KdTensor *x, KdTensor *y, const BnApply *ap) {
  const int n = x->shape[0], ch = x->shape[1], cb = ch / BLK;
  const size_t P = (size_t)x->shape[2] * x->shape[3];
  KdArena *arena = kd_ctx_arena(c);
  KdArenaMark mark = kd_arena_mark(arena);
  float *coef = kd_ctx_alloc(c, 3 * (size_t)ch * sizeof(float)); /* a, b, shift */
  double *sums = kd_ctx_alloc(c, (2 * (size_t)ch + 2 * (size_t)n * ch) * sizeof(double));
  if (!coef || !sums) return -1;
  float *shift = coef + 2 * ch;
  for (int ci = 0; ci < ch; ci++) shift[ci] = ap->training ? x->data[(size_t)(ci / BLK) * P * BLK + ci % BLK] : 0.0f;
  if (ap->training) blocked_channel_sums(x->data, NULL, n, cb, P, shift, sums + 2 * ch, sums, sums + ch);
  for (int ci = 0; ci < ch; ci++)
    bn_channel(ap, ci, shift[ci], ap->training ? sums[ci] : 0.0, ap->training ? sums[ch + ci] : 0.0, &coef[ci], &coef[ch + ci]);
  KD_PRAGMA(omp parallel for schedule(static))
  for (int nb = 0; nb < n * cb; nb++) {
    v8f a0, a1, b0, b1;
    load16(coef + (nb % cb) * BLK, &a0, &a1);
    load16(coef + ch + (nb % cb) * BLK, &b0, &b1);
    const float *xp = x->data + (size_t)nb * P * BLK;
    float *yp = y->data + (size_t)nb * P * BLK;
    for (size_t p = 0; p < P; p++) {
      v8f d0, d1;
      load16(xp + p * BLK, &d0, &d1);
      d0 = a0 * d0 + b0, d1 = a1 * d1 + b1;
      memcpy(yp + p * BLK, &d0, sizeof d0);
      memcpy(yp + p * BLK + 8, &d1, sizeof d1);
    }
  }
  kd_arena_release(arena, mark);
  return 0;
}

static void bn_backward_blocked(KdCtx *c, KdNode *node, float *gx, int fresh, float *gg, float *gb) {
  const BnSaved *s = node->saved;
  const KdTensor *x = node->in[0], *gamma = node->in[1];
  const float *gy = node->out->grad;
  const int n = s->n, ch = s->ch, cb = ch / BLK;
  const size_t P = s->sp;
  KdArena *arena = kd_ctx_arena(c);
  KdArenaMark mark = kd_arena_mark(arena);
  float *coef = kd_ctx_alloc(c, 3 * (size_t)ch * sizeof(float)); /* a, bx, k */
  double *sums = kd_ctx_alloc(c, (2 * (size_t)ch + 2 * (size_t)n * ch) * sizeof(double));
  if (!coef || !sums) return;
  blocked_channel_sums(x->data, gy, n, cb, P, s->mean, sums + 2 * ch, sums, sums + ch);
  for (int ci = 0; ci < ch; ci++) {
    BnGradCoef k = bn_grad_coef(s, ci, gamma ? gamma->data[ci] : 1.0f, sums[ci], sums[ch + ci], gg, gb);
    coef[ci] = k.a, coef[ch + ci] = k.bx, coef[2 * ch + ci] = k.k;
  }
  if (gx) {
    KD_PRAGMA(omp parallel for schedule(static))
    for (int nb = 0; nb < n * cb; nb++) {
      const size_t o = (size_t)(nb % cb) * BLK;
      v8f a0, a1, bx0, bx1, k0, k1, m0, m1;
      load16(coef + o, &a0, &a1);
      load16(coef + ch + o, &bx0, &bx1);
      load16(coef + 2 * ch + o, &k0, &k1);
      load16(s->mean + o, &m0, &m1);
      const float *xp = x->data + (size_t)nb * P * BLK, *gp = gy + (size_t)nb * P * BLK;
      float *dp = gx + (size_t)nb * P * BLK;
      for (size_t p = 0; p < P; p++) {
        v8f x0, x1, g0, g1, r0 = {0}, r1 = {0};
        load16(xp + p * BLK, &x0, &x1);
        load16(gp + p * BLK, &g0, &g1);
        if (!fresh) load16(dp + p * BLK, &r0, &r1);
        r0 += a0 * g0 + bx0 * (x0 - m0) + k0;
        r1 += a1 * g1 + bx1 * (x1 - m1) + k1;
        memcpy(dp + p * BLK, &r0, sizeof r0);
        memcpy(dp + p * BLK + 8, &r1, sizeof r1);
      }
    }
  }
  kd_arena_release(arena, mark);
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
  BnApply ap = {.gamma = gamma ? gamma->data : NULL, .beta = beta ? beta->data : NULL,
                .rm = running_mean ? running_mean->data : NULL, .rv = running_var ? running_var->data : NULL,
                .m = m, .momentum = momentum, .eps = eps, .training = training, .mean = mean, .invstd = invstd};
  if (x->blocked) {
    if (bn_forward_blocked(c, x, y, &ap)) return NULL;
  } else {
    const float *xd = x->data;
    float *yd = y->data;
    KD_PRAGMA(omp parallel for schedule(static))
    for (int ci = 0; ci < ch; ci++) {
      double s1 = 0.0, s2 = 0.0;
      float shift = training ? xd[(size_t)ci * sp] : 0.0f;
      if (training)
        for (int ni = 0; ni < n; ni++) shifted_sums(xd + ((size_t)ni * ch + ci) * sp, sp, shift, &s1, &s2);
      float a, b;
      bn_channel(&ap, ci, shift, s1, s2, &a, &b);
      for (int ni = 0; ni < n; ni++) {
        size_t off = ((size_t)ni * ch + ci) * sp;
        affine_plane(xd + off, yd + off, sp, a, b);
      }
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
  x = kd_to_plain(c, x); /* works on NCHW */
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
