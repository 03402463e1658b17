/* Gradient checks of the element-wise ops: unary maps, scalar affine,
 * binary ops broadcasting over each of N, C, H, W and scalars, add_relu.
 * Also checks that the harness itself rejects a slightly wrong gradient. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"

typedef KdTensor *(*UnaryFn)(KdCtx *, KdTensor *);
typedef KdTensor *(*BinaryFn)(KdCtx *, KdTensor *, KdTensor *);

static KdTensor *unary_fwd(KdCtx *c, KdTensor **in, void *user) { return (*(UnaryFn *)user)(c, in[0]); }
static KdTensor *binary_fwd(KdCtx *c, KdTensor **in, void *user) { return (*(BinaryFn *)user)(c, in[0], in[1]); }
static KdTensor *scale_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_scale(c, in[0], -2.5f);
}
static KdTensor *add_scalar_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_add_scalar(c, in[0], 0.75f);
}
/* x used twice: grads from two uses must add up. */
static KdTensor *self_mul_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_mul(c, in[0], kd_tanh(c, in[0]));
}
/* detach cuts the path: d/dx sum(R * x * detach(x)) is R * x, which
 * finite differences (moving both) would not see; so compare with a
 * constant copy passed as a separate input instead. */
static KdTensor *detach_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_mul(c, in[0], kd_detach(c, in[1]));
}

static int unary_case(const char *name, UnaryFn fn, int init) {
  static UnaryFn f;
  f = fn;
  Gc *g = gc_new(name, unary_fwd, &f);
  gc_input(g, GC_CHECK | init, 4, (int[]){2, 3, 4, 5});
  return gc_run(g);
}

static int binary_case(const char *name, BinaryFn fn, int nda, const int *sa, int ndb, const int *sb, int binit) {
  static BinaryFn f;
  f = fn;
  Gc *g = gc_new(name, binary_fwd, &f);
  gc_input(g, GC_CHECK, nda, sa);
  gc_input(g, GC_CHECK | binit, ndb, sb);
  return gc_run(g);
}

/* ---- a deliberately wrong op: y = x, backward 1.03 * gy ---- */
static void wrong_backward(KdCtx *c, KdNode *n) {
  float *gx = kd_grad(c, n->in[0]);
  for (size_t i = 0; i < n->out->numel; i++) gx[i] += 1.03f * n->out->grad[i];
}
static KdTensor *wrong_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  KdTensor *y = kd_tensor_copy(c, in[0]);
  kd_record(c, "wrong", y, in, 1, wrong_backward, 0);
  return y;
}

int main(void) {
  int f = 0;
  f += unary_case("relu", kd_relu, GC_AWAY_ZERO);
  f += unary_case("sigmoid", kd_sigmoid, 0);
  f += unary_case("tanh", kd_tanh, 0);
  f += unary_case("exp", kd_exp, 0);
  f += unary_case("log", kd_log, GC_POSITIVE);
  f += unary_case("abs", kd_abs, GC_AWAY_ZERO);
  f += unary_case("sqrt", kd_sqrt, GC_POSITIVE);
  f += unary_case("square", kd_square, 0);
  {
    Gc *g = gc_new("scale", scale_fwd, NULL);
    gc_input(g, GC_CHECK, 3, (int[]){2, 3, 4});
    f += gc_run(g);
    g = gc_new("add_scalar", add_scalar_fwd, NULL);
    gc_input(g, GC_CHECK, 2, (int[]){3, 4});
    f += gc_run(g);
    g = gc_new("mul/self_twice", self_mul_fwd, NULL);
    gc_input(g, GC_CHECK, 2, (int[]){3, 5});
    f += gc_run(g);
    g = gc_new("detach", detach_fwd, NULL);
    float *x = gc_input(g, GC_CHECK, 2, (int[]){3, 5});
    float *xc = gc_input(g, GC_CONST, 2, (int[]){3, 5});
    memcpy(xc, x, 15 * sizeof(float));
    f += gc_run(g);
  }

  /* Binary ops: same shape, then b broadcast along each dim, scalars,
   * fewer dims (right-aligned), both sides broadcasting, a broadcast. */
  static const struct {
    const char *tag;
    int nda, sa[4], ndb, sb[4];
  } shapes[] = {
      {"same", 4, {2, 3, 4, 5}, 4, {2, 3, 4, 5}},
      {"bcast_N", 4, {3, 2, 3, 4}, 4, {1, 2, 3, 4}},
      {"bcast_C", 4, {2, 3, 3, 4}, 4, {2, 1, 3, 4}},
      {"bcast_H", 4, {2, 2, 3, 4}, 4, {2, 2, 1, 4}},
      {"bcast_W", 4, {2, 2, 3, 4}, 4, {2, 2, 3, 1}},
      {"scalar", 4, {2, 2, 3, 4}, 1, {1}},
      {"scalar4d", 3, {2, 3, 4}, 4, {1, 1, 1, 1}},
      {"vecW", 4, {2, 2, 3, 4}, 1, {4}},
      {"chan", 4, {2, 3, 2, 2}, 3, {3, 1, 1}},
      {"both", 4, {3, 1, 3, 1}, 4, {1, 2, 1, 4}},
      {"a_bcast", 4, {1, 3, 1, 4}, 4, {2, 3, 3, 4}},
  };
  static const struct {
    const char *tag;
    BinaryFn fn;
  } ops[] = {{"add", kd_add}, {"sub", kd_sub}, {"mul", kd_mul}, {"div", kd_div}};
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      char name[64];
      snprintf(name, sizeof name, "%s/%s", ops[o].tag, shapes[s].tag);
      f += binary_case(name, ops[o].fn, shapes[s].nda, shapes[s].sa, shapes[s].ndb, shapes[s].sb,
                       ops[o].fn == kd_div ? GC_POSITIVE : 0);
    }

  {
    static BinaryFn ar = kd_add_relu;
    Gc *g = gc_new("add_relu", binary_fwd, &ar);
    float *a = gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4, 4});
    float *b = gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4, 4});
    for (int i = 0; i < 96; i++) /* keep a + b away from the kink */
      if (fabsf(a[i] + b[i]) < 0.2f) a[i] += a[i] + b[i] >= 0.0f ? 0.4f : -0.4f;
    f += gc_run(g);
  }
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());

  /* The harness must notice a gradient that is 3% off. */
  Gc *g = gc_new("wrong_by_3pct (expected to fail)", wrong_fwd, NULL);
  gc_input(g, GC_CHECK, 2, (int[]){4, 4});
  CHECK(gc_run(g) > 0);
  return check_status("grad_eltwise");
}
