/* Gradient checks of batch norm (train and eval) and group norm. */
#include "check.h"
#include "gradcheck.h"

typedef struct {
  int training, affine, groups;
} NormCase;

/* in: x, [gamma, beta], running_mean, running_var */
static KdTensor *bn_fwd(KdCtx *c, KdTensor **in, void *user) {
  NormCase *k = user;
  KdTensor *g = k->affine ? in[1] : NULL, *b = k->affine ? in[2] : NULL;
  int r = k->affine ? 3 : 1;
  return kd_batchnorm(c, in[0], g, b, in[r], in[r + 1], k->training, 0.1f, 1e-5f);
}

static KdTensor *gn_fwd(KdCtx *c, KdTensor **in, void *user) {
  NormCase *k = user;
  return kd_groupnorm(c, in[0], k->groups, k->affine ? in[1] : NULL, k->affine ? in[2] : NULL, 1e-5f);
}

/* BN then a nonlinearity, so the loss is not linear in x-hat alone. */
static KdTensor *bn_tanh_fwd(KdCtx *c, KdTensor **in, void *user) { return kd_tanh(c, bn_fwd(c, in, user)); }

/* x feeds BN and another op, in both tape orders: BN's backward may
 * overwrite a fresh input grad but must add to one already written. */
static KdTensor *bn_then_other_fwd(KdCtx *c, KdTensor **in, void *user) {
  KdTensor *y = bn_fwd(c, in, user);
  return kd_add(c, y, kd_tanh(c, in[0]));
}
static KdTensor *other_then_bn_fwd(KdCtx *c, KdTensor **in, void *user) {
  KdTensor *t = kd_tanh(c, in[0]);
  return kd_add(c, t, bn_fwd(c, in, user));
}
static KdTensor *gn_twice_fwd(KdCtx *c, KdTensor **in, void *user) {
  NormCase *k = user;
  KdTensor *a = kd_groupnorm(c, in[0], k->groups, NULL, NULL, 1e-5f);
  return kd_mul(c, a, kd_groupnorm(c, in[0], 1, NULL, NULL, 1e-5f));
}

static int bn_case(const char *name, KdTensor *(*fn)(KdCtx *, KdTensor **, void *), int training, int affine, int ndim,
                   const int *shape, float offset) {
  static NormCase k;
  k = (NormCase){.training = training, .affine = affine};
  int ch = shape[1];
  Gc *g = gc_new(name, fn, &k);
  float *x = gc_input(g, GC_CHECK, ndim, shape);
  size_t n = 1;
  for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
  for (size_t i = 0; i < n; i++) x[i] = x[i] * 1.5f + offset;
  if (affine) {
    gc_input(g, GC_CHECK | GC_PARAM, 1, &ch);
    gc_input(g, GC_CHECK | GC_PARAM, 1, &ch);
  }
  float *rm = gc_input(g, GC_CONST, 1, &ch);
  float *rv = gc_input(g, GC_CONST | GC_POSITIVE, 1, &ch);
  for (int i = 0; i < ch; i++) rm[i] += offset;
  (void)rv;
  return gc_run(g);
}

static int gn_case(const char *name, int groups, int affine, const int *shape) {
  static NormCase k;
  k = (NormCase){.groups = groups, .affine = affine};
  Gc *g = gc_new(name, gn_fwd, &k);
  gc_input(g, GC_CHECK, 4, shape);
  if (affine) {
    gc_input(g, GC_CHECK, 1, &shape[1]);
    gc_input(g, GC_CHECK | GC_PARAM, 1, &shape[1]);
  }
  return gc_run(g);
}

int main(void) {
  int f = 0;
  const int s4[4] = {4, 3, 5, 5}, s_small[4] = {2, 4, 2, 3}, s2[2] = {8, 5};
  f += bn_case("batchnorm/train", bn_fwd, 1, 1, 4, s4, 0.0f);
  f += bn_case("batchnorm/train_tanh", bn_tanh_fwd, 1, 1, 4, s_small, 0.0f);
  f += bn_case("batchnorm/train_offset5", bn_tanh_fwd, 1, 1, 4, s_small, 5.0f);
  f += bn_case("batchnorm/train_noaffine", bn_tanh_fwd, 1, 0, 4, s_small, 0.0f);
  f += bn_case("batchnorm/train_2d", bn_tanh_fwd, 1, 1, 2, s2, 0.0f);
  f += bn_case("batchnorm/eval", bn_fwd, 0, 1, 4, s4, 0.0f);
  f += bn_case("batchnorm/eval_tanh_offset", bn_tanh_fwd, 0, 1, 4, s_small, 2.0f);
  f += bn_case("batchnorm/eval_noaffine", bn_fwd, 0, 0, 4, s_small, 0.0f);
  f += bn_case("batchnorm/then_other", bn_then_other_fwd, 1, 1, 4, s_small, 0.0f);
  f += bn_case("batchnorm/other_then", other_then_bn_fwd, 1, 1, 4, s_small, 0.0f);
  f += bn_case("batchnorm/eval_other_then", other_then_bn_fwd, 0, 1, 4, s_small, 0.0f);
  {
    static NormCase k = {.groups = 3};
    Gc *g = gc_new("groupnorm/used_twice", gn_twice_fwd, &k);
    gc_input(g, GC_CHECK, 4, (int[]){2, 6, 2, 3});
    f += gc_run(g);
  }
  f += gn_case("groupnorm/g2", 2, 1, (int[]){2, 6, 3, 4});
  f += gn_case("groupnorm/g3_noaffine", 3, 0, (int[]){2, 6, 3, 3});
  f += gn_case("groupnorm/layernorm", 1, 1, (int[]){3, 5, 1, 1});
  f += gn_case("groupnorm/instance", 4, 1, (int[]){2, 4, 3, 3});
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("grad_norm");
}
