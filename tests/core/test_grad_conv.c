/* Gradient checks of conv2d: every path (im2col, direct 1x1) and the
 * awkward geometries (odd sizes with stride 2, padding, dilation, groups). */
#include "check.h"
#include "gradcheck.h"

typedef struct {
  KdConvCfg cfg;
  int bias;
} ConvCase;

static KdTensor *conv_fwd(KdCtx *c, KdTensor **in, void *user) {
  ConvCase *k = user;
  return kd_conv2d(c, in[0], in[1], k->bias ? in[2] : NULL, k->cfg);
}

/* x: n,cin,h,w; weight cout,cin/groups,kh,kw. */
static int conv_case(const char *name, int n, int cin, int h, int w, int cout, int kh, int kw, KdConvCfg cfg, int bias,
                     int wflags) {
  static ConvCase k; /* gc_run finishes before the next case */
  k.cfg = cfg;
  k.bias = bias;
  int groups = cfg.groups > 0 ? cfg.groups : 1;
  Gc *g = gc_new(name, conv_fwd, &k);
  gc_input(g, GC_CHECK, 4, (int[]){n, cin, h, w});
  gc_input(g, GC_CHECK | wflags, 4, (int[]){cout, cin / groups, kh, kw});
  if (bias) gc_input(g, GC_CHECK | wflags, 1, (int[]){cout});
  return gc_run(g);
}

int main(void) {
  int f = 0;
  f += conv_case("conv/3x3_s2_p1_odd", 2, 3, 7, 7, 4, 3, 3, (KdConvCfg){.stride = 2, .pad = 1}, 1, 0);
  f += conv_case("conv/3x3_s2_p0_9x7", 2, 3, 9, 7, 4, 3, 3, (KdConvCfg){.stride = 2}, 1, GC_PARAM);
  f += conv_case("conv/3x3_s1_p1_nobias", 2, 3, 5, 6, 4, 3, 3, (KdConvCfg){.pad = 1}, 0, 0);
  f += conv_case("conv/3x3_p2_dil2", 1, 2, 9, 8, 3, 3, 3, (KdConvCfg){.pad = 2, .dilation = 2}, 1, 0);
  f += conv_case("conv/3x3_s2_dil2_odd", 2, 2, 11, 9, 3, 3, 3, (KdConvCfg){.stride = 2, .pad = 1, .dilation = 2}, 1, 0);
  f += conv_case("conv/depthwise_p1", 2, 4, 6, 5, 4, 3, 3, (KdConvCfg){.pad = 1, .groups = 4}, 0, GC_PARAM);
  f += conv_case("conv/depthwise_s2_bias", 2, 4, 7, 7, 4, 3, 3, (KdConvCfg){.stride = 2, .pad = 1, .groups = 4}, 1, 0);
  f += conv_case("conv/groups2", 2, 4, 5, 5, 6, 3, 3, (KdConvCfg){.pad = 1, .groups = 2}, 1, 0);
  f += conv_case("conv/groups2_s2_nobias", 1, 4, 7, 6, 4, 3, 3, (KdConvCfg){.stride = 2, .groups = 2}, 0, 0);
  f += conv_case("conv/1x1_s1_direct", 2, 5, 4, 3, 3, 1, 1, (KdConvCfg){0}, 1, GC_PARAM);
  f += conv_case("conv/1x1_s1_direct_nobias", 3, 4, 3, 3, 5, 1, 1, (KdConvCfg){.stride = 1}, 0, 0);
  f += conv_case("conv/1x1_s2", 2, 3, 5, 5, 4, 1, 1, (KdConvCfg){.stride = 2}, 1, 0);
  f += conv_case("conv/1x1_p1", 1, 3, 3, 4, 2, 1, 1, (KdConvCfg){.pad = 1}, 1, 0);
  f += conv_case("conv/1x1_groups2", 2, 4, 3, 3, 4, 1, 1, (KdConvCfg){.groups = 2}, 1, 0);
  f += conv_case("conv/1x3_p1", 2, 2, 4, 5, 3, 1, 3, (KdConvCfg){.pad = 1}, 1, 0);
  f += conv_case("conv/7x7_s2_p3_stem", 1, 3, 9, 9, 2, 7, 7, (KdConvCfg){.stride = 2, .pad = 3}, 0, GC_PARAM);
  f += conv_case("conv/kernel_eq_input", 2, 2, 3, 3, 3, 3, 3, (KdConvCfg){0}, 1, 0);
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("grad_conv");
}
