/* Gradient checks of matmul (2-D, batched, shared operand, transposes)
 * and of the shape ops: reshape, permute, transpose, concat, slice,
 * gather. */
#include "check.h"
#include "gradcheck.h"

typedef struct {
  int ta, tb;
} MmCase;

static KdTensor *mm_fwd(KdCtx *c, KdTensor **in, void *user) {
  MmCase *m = user;
  return kd_matmul(c, in[0], in[1], m->ta, m->tb);
}

/* a: [B,]M,K (or K,M when ta); b: [B,]K,N (or N,K when tb). bat: 0 none,
 * 1 both, 2 only a, 3 only b. */
static int mm_case(const char *name, int bat, int ta, int tb) {
  static MmCase m;
  m = (MmCase){ta, tb};
  const int B = 2, M = 3, K = 4, N = 5;
  int sa[3] = {B, ta ? K : M, ta ? M : K}, sb[3] = {B, tb ? N : K, tb ? K : N};
  int a3 = bat == 1 || bat == 2, b3 = bat == 1 || bat == 3;
  Gc *g = gc_new(name, mm_fwd, &m);
  gc_input(g, GC_CHECK, a3 ? 3 : 2, a3 ? sa : sa + 1);
  gc_input(g, GC_CHECK | (bat == 2 ? GC_PARAM : 0), b3 ? 3 : 2, b3 ? sb : sb + 1);
  return gc_run(g);
}

typedef struct {
  int kind, axis, start, len, perm[4], n;
  const int *idx;
} ShapeCase;

static KdTensor *shape_fwd(KdCtx *c, KdTensor **in, void *user) {
  ShapeCase *s = user;
  switch (s->kind) {
  case 0: return kd_reshape(c, in[0], 2, (int[]){-1, 6});
  case 1: { /* two views of one tensor: their grads must add */
    KdTensor *flat = kd_reshape(c, in[0], 1, (int[]){24});
    KdTensor *v = kd_tanh(c, kd_reshape(c, in[0], 3, (int[]){4, 3, 2}));
    return kd_add(c, flat, kd_reshape(c, v, 1, (int[]){24}));
  }
  case 2: return kd_permute(c, in[0], s->perm);
  case 3: return kd_transpose(c, in[0], s->perm[0], s->perm[1]);
  case 4: return kd_concat(c, in, s->n, s->axis);
  case 5: return kd_slice(c, in[0], s->axis, s->start, s->len);
  default: return kd_gather(c, in[0], s->idx, s->n);
  }
}

static int shape_case(const char *name, ShapeCase sc, int ndim, const int *shape) {
  static ShapeCase s;
  s = sc;
  Gc *g = gc_new(name, shape_fwd, &s);
  gc_input(g, GC_CHECK, ndim, shape);
  return gc_run(g);
}

int main(void) {
  int f = 0;
  static const char *tn[4] = {"nn", "tn", "nt", "tt"};
  static const char *bn[4] = {"2d", "batched", "shared_b", "shared_a"};
  for (int bat = 0; bat < 4; bat++)
    for (int t = 0; t < 4; t++) {
      char name[64];
      snprintf(name, sizeof name, "matmul/%s_%s", bn[bat], tn[t]);
      f += mm_case(name, bat, t & 1, t >> 1);
    }
  const int s3[3] = {2, 3, 4}, s4[4] = {2, 3, 2, 4};
  f += shape_case("reshape/infer", (ShapeCase){.kind = 0}, 3, s3);
  f += shape_case("reshape/two_views", (ShapeCase){.kind = 1}, 3, s3);
  f += shape_case("permute/0231", (ShapeCase){.kind = 2, .perm = {0, 2, 3, 1}}, 4, s4);
  f += shape_case("permute/3102", (ShapeCase){.kind = 2, .perm = {3, 1, 0, 2}}, 4, s4);
  f += shape_case("permute/3d_201", (ShapeCase){.kind = 2, .perm = {2, 0, 1}}, 3, s3);
  f += shape_case("transpose/1_2", (ShapeCase){.kind = 3, .perm = {1, 2}}, 4, s4);
  f += shape_case("transpose/neg1_0", (ShapeCase){.kind = 3, .perm = {-1, 0}}, 3, s3);
  f += shape_case("slice/axis1", (ShapeCase){.kind = 5, .axis = 1, .start = 1, .len = 2}, 4, s4);
  f += shape_case("slice/axis3", (ShapeCase){.kind = 5, .axis = 3, .start = 2, .len = 2}, 4, s4);
  f += shape_case("slice/axis0", (ShapeCase){.kind = 5, .axis = 0, .start = 1, .len = 1}, 3, s3);
  static const int idx[7] = {0, 5, 5, 23, 11, 0, 7}; /* repeats accumulate */
  f += shape_case("gather/repeats", (ShapeCase){.kind = 6, .idx = idx, .n = 7}, 3, s3);
  for (int axis = 0; axis < 4; axis += 3) {
    static ShapeCase s;
    s = (ShapeCase){.kind = 4, .axis = axis, .n = 3};
    Gc *g = gc_new(axis ? "concat/axis3_one_const" : "concat/axis0", shape_fwd, &s);
    int a[4] = {2, 3, 2, 2}, b[4] = {2, 3, 2, 2}, d[4] = {2, 3, 2, 2};
    a[axis] = 1, b[axis] = 3, d[axis] = 2;
    gc_input(g, GC_CHECK, 4, a);
    gc_input(g, axis ? GC_CONST : GC_CHECK, 4, b);
    gc_input(g, GC_CHECK, 4, d);
    f += gc_run(g);
  }
  {
    static ShapeCase s = {.kind = 4, .axis = 1, .n = 2};
    Gc *g = gc_new("concat/axis1_neg", shape_fwd, &s);
    s.axis = -2;
    gc_input(g, GC_CHECK, 3, (int[]){2, 3, 4});
    gc_input(g, GC_CHECK, 3, (int[]){2, 1, 4});
    f += gc_run(g);
  }
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("grad_shape");
}
