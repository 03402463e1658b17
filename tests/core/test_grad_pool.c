/* Gradient checks of pooling and nearest upsampling. Max pool inputs are
 * distinct values 0.1 apart (> 2*eps), so no window ever holds a tie. */
#include "check.h"
#include "gradcheck.h"

typedef struct {
  int k, stride, pad, avg;
} PoolCase;

static KdTensor *pool_fwd(KdCtx *c, KdTensor **in, void *user) {
  PoolCase *p = user;
  return p->avg ? kd_avgpool2d(c, in[0], p->k, p->stride, p->pad) : kd_maxpool2d(c, in[0], p->k, p->stride, p->pad);
}

static KdTensor *gap_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_global_avgpool(c, in[0]);
}

typedef struct {
  int factor, h, w;
} UpCase;

static KdTensor *up_fwd(KdCtx *c, KdTensor **in, void *user) {
  UpCase *u = user;
  return u->factor ? kd_upsample_nearest(c, in[0], u->factor) : kd_upsample_nearest_to(c, in[0], u->h, u->w);
}

static int pool_case(const char *name, int avg, int k, int stride, int pad, const int *shape) {
  static PoolCase p;
  p = (PoolCase){.k = k, .stride = stride, .pad = pad, .avg = avg};
  Gc *g = gc_new(name, pool_fwd, &p);
  gc_input(g, GC_CHECK | (avg ? 0 : GC_DISTINCT), 4, shape);
  return gc_run(g);
}

static int up_case(const char *name, int factor, int h, int w, const int *shape) {
  static UpCase u;
  u = (UpCase){.factor = factor, .h = h, .w = w};
  Gc *g = gc_new(name, up_fwd, &u);
  gc_input(g, GC_CHECK, 4, shape);
  return gc_run(g);
}

int main(void) {
  int f = 0;
  f += pool_case("maxpool/k3_s2_p1_odd", 0, 3, 2, 1, (int[]){2, 2, 7, 7});
  f += pool_case("maxpool/k2_s2", 0, 2, 2, 0, (int[]){1, 3, 6, 6});
  f += pool_case("maxpool/k2_s2_odd", 0, 2, 2, 0, (int[]){2, 1, 5, 7});
  f += pool_case("maxpool/k3_s1_p1", 0, 3, 1, 1, (int[]){1, 2, 4, 5});
  f += pool_case("maxpool/k3_default_stride", 0, 3, 0, 0, (int[]){1, 2, 6, 7});
  f += pool_case("avgpool/k3_s2_p1_odd", 1, 3, 2, 1, (int[]){2, 2, 7, 7});
  f += pool_case("avgpool/k2_s2", 1, 2, 2, 0, (int[]){1, 3, 6, 5});
  f += pool_case("avgpool/k3_s1_p1", 1, 3, 1, 1, (int[]){1, 2, 4, 5});
  {
    Gc *g = gc_new("global_avgpool", gap_fwd, NULL);
    gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4, 5});
    f += gc_run(g);
  }
  f += up_case("upsample/x2", 2, 0, 0, (int[]){2, 2, 3, 4});
  f += up_case("upsample/x3", 3, 0, 0, (int[]){1, 2, 2, 3});
  f += up_case("upsample_to/7x5_from_3x4", 0, 7, 5, (int[]){2, 2, 3, 4});
  f += up_case("upsample_to/3x2_from_5x5", 0, 3, 2, (int[]){1, 2, 5, 5});
  f += up_case("upsample_to/6x8_from_3x4", 0, 6, 8, (int[]){1, 2, 3, 4});
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("grad_pool");
}
