/* Gradient checks of reductions (sum/mean over axis masks and over all)
 * and of softmax / log-softmax along C, along H*W and along other axes. */
#include "check.h"
#include "gradcheck.h"

typedef struct {
  int kind; /* 0 sum, 1 mean, 2 sum_all, 3 mean_all, 4 softmax, 5 log_softmax */
  unsigned axes;
  int axis, flat_hw;
} RedCase;

static KdTensor *red_fwd(KdCtx *c, KdTensor **in, void *user) {
  RedCase *r = user;
  KdTensor *x = in[0];
  if (r->flat_hw) /* N,C,H,W -> N,C,H*W: softmax over space */
    x = kd_reshape(c, x, 3, (int[]){x->shape[0], x->shape[1], -1});
  switch (r->kind) {
  case 0: return kd_sum(c, x, r->axes);
  case 1: return kd_mean(c, x, r->axes);
  case 2: return kd_sum_all(c, x);
  case 3: return kd_mean_all(c, x);
  case 4: return kd_softmax(c, x, r->axis);
  default: return kd_log_softmax(c, x, r->axis);
  }
}

static int red_case(const char *name, RedCase rc, int ndim, const int *shape) {
  static RedCase r;
  r = rc;
  Gc *g = gc_new(name, red_fwd, &r);
  gc_input(g, GC_CHECK, ndim, shape);
  return gc_run(g);
}

int main(void) {
  int f = 0;
  const int s4[4] = {2, 3, 4, 5}, s3[3] = {3, 4, 5}, s2[2] = {4, 6};
  f += red_case("sum/N", (RedCase){.kind = 0, .axes = 1}, 4, s4);
  f += red_case("sum/C", (RedCase){.kind = 0, .axes = 2}, 4, s4);
  f += red_case("sum/HW", (RedCase){.kind = 0, .axes = 12}, 4, s4);
  f += red_case("sum/C_W", (RedCase){.kind = 0, .axes = 10}, 4, s4);
  f += red_case("sum/NHW", (RedCase){.kind = 0, .axes = 13}, 4, s4);
  f += red_case("sum/every_axis", (RedCase){.kind = 0, .axes = 15}, 4, s4);
  f += red_case("sum/3d_last", (RedCase){.kind = 0, .axes = 4}, 3, s3);
  f += red_case("sum/3d_first", (RedCase){.kind = 0, .axes = 1}, 3, s3);
  f += red_case("mean/C", (RedCase){.kind = 1, .axes = 2}, 4, s4);
  f += red_case("mean/HW", (RedCase){.kind = 1, .axes = 12}, 4, s4);
  f += red_case("mean/2d_rows", (RedCase){.kind = 1, .axes = 2}, 2, s2);
  f += red_case("sum_all", (RedCase){.kind = 2}, 4, s4);
  f += red_case("mean_all", (RedCase){.kind = 3}, 3, s3);
  f += red_case("softmax/C", (RedCase){.kind = 4, .axis = 1}, 4, s4);
  f += red_case("softmax/HW", (RedCase){.kind = 4, .axis = 2, .flat_hw = 1}, 4, s4);
  f += red_case("softmax/N", (RedCase){.kind = 4, .axis = 0}, 4, s4);
  f += red_case("softmax/last_neg", (RedCase){.kind = 4, .axis = -1}, 2, s2);
  f += red_case("log_softmax/C", (RedCase){.kind = 5, .axis = 1}, 4, s4);
  f += red_case("log_softmax/HW", (RedCase){.kind = 5, .axis = 2, .flat_hw = 1}, 4, s4);
  f += red_case("log_softmax/3d_mid", (RedCase){.kind = 5, .axis = 1}, 3, s3);
  f += red_case("log_softmax/last", (RedCase){.kind = 5, .axis = 1}, 2, s2);
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("grad_reduce");
}
