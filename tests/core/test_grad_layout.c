/* The blocked layout (core/layout.c): every op that works on it directly
 * (batchnorm, element-wise, max pool, upsampling, conv in and out) and
 * ones that convert their input (group norm, reductions, softmax,
 * reshape, broadcasting), each run twice on the same data, once with its
 * inputs blocked and once plain: the outputs must agree (the blocked
 * layout must not change what is computed), and the blocked run's
 * gradients must pass the finite-difference check. Runs on both conv
 * paths (meson registers it again with KD_CONV=im2col). */
#include <string.h>

#include "check.h"
#include "gradcheck.h"

/* An op on inputs in[0..nin); with `blocked` it blocks some of them
 * first (blk). The harness gets its result made plain. */
typedef struct Case {
  const char *name;
  KdTensor *(*op)(KdCtx *c, KdTensor **in, int blocked);
  int nin, flags[5], ndim[5], shape[5][4];
  double tol; /* on max|blocked - plain| / max|plain| */
} Case;

static KdTensor *blk(KdCtx *c, KdTensor *x, int on) { return on ? kd_to_blocked(c, x) : x; }

static KdTensor *op_bn_train(KdCtx *c, KdTensor **in, int b) {
  return kd_tanh(c, kd_batchnorm(c, blk(c, in[0], b), in[1], in[2], in[3], in[4], 1, 0.1f, 1e-5f));
}
static KdTensor *op_bn_eval(KdCtx *c, KdTensor **in, int b) {
  return kd_tanh(c, kd_batchnorm(c, blk(c, in[0], b), in[1], in[2], in[3], in[4], 0, 0.1f, 1e-5f));
}
/* x feeds BN and another op: BN's backward may overwrite a fresh grad but
 * must add to one already written. */
static KdTensor *op_bn_shared(KdCtx *c, KdTensor **in, int b) {
  KdTensor *x = blk(c, in[0], b);
  KdTensor *t = kd_tanh(c, x);
  return kd_add(c, t, kd_tanh(c, kd_batchnorm(c, x, NULL, NULL, in[1], in[2], 1, 0.1f, 1e-5f)));
}
/* Inputs are multiples of 0.1 (GC_DISTINCT): shifted by 0.05, no sum
 * below sits on a ReLU kink. */
static KdTensor *op_relu_add(KdCtx *c, KdTensor **in, int b) {
  KdTensor *x = kd_add_scalar(c, blk(c, in[0], b), 0.05f), *y = blk(c, in[1], b);
  return kd_mul(c, kd_add_relu(c, x, y), kd_relu(c, x));
}
/* Broadcasting and mixed layouts go through NCHW. */
static KdTensor *op_mixed(KdCtx *c, KdTensor **in, int b) {
  KdTensor *x = blk(c, in[0], b);
  return kd_add(c, kd_mul(c, x, in[1]), kd_add_relu(c, kd_add_scalar(c, x, 0.05f), in[2]));
}
static KdTensor *op_maxpool3(KdCtx *c, KdTensor **in, int b) { return kd_maxpool2d(c, blk(c, in[0], b), 3, 2, 1); }
static KdTensor *op_maxpool2(KdCtx *c, KdTensor **in, int b) { return kd_maxpool2d(c, blk(c, in[0], b), 2, 2, 0); }
static KdTensor *op_upsample(KdCtx *c, KdTensor **in, int b) {
  KdTensor *x = blk(c, in[0], b);
  return kd_add(c, kd_upsample_nearest(c, x, 2), kd_upsample_nearest_to(c, kd_tanh(c, x), 8, 10));
}
static KdTensor *op_conv_follow(KdCtx *c, KdTensor **in, int b) {
  return kd_tanh(c, kd_conv2d(c, blk(c, in[0], b), in[1], in[2], (KdConvCfg){.pad = 1}));
}
static KdTensor *op_conv_to_blocked(KdCtx *c, KdTensor **in, int b) {
  KdConvCfg cfg = {.stride = 2, .pad = 1, .layout = b ? KD_CONV_BLOCKED : KD_CONV_FOLLOW};
  KdTensor *y = kd_conv2d(c, in[0], in[1], NULL, cfg);
  return kd_mul(c, y, kd_tanh(c, y));
}
static KdTensor *op_conv_to_plain(KdCtx *c, KdTensor **in, int b) {
  return kd_conv2d(c, kd_relu(c, blk(c, in[0], b)), in[1], in[2], (KdConvCfg){.layout = KD_CONV_PLAIN});
}
/* Cout 24 cannot be blocked: the output is NCHW whatever the input. */
static KdTensor *op_conv_odd_out(KdCtx *c, KdTensor **in, int b) {
  return kd_tanh(c, kd_conv2d(c, blk(c, in[0], b), in[1], NULL, (KdConvCfg){.pad = 1}));
}
/* Ops that convert: group norm, a reduction over axes, softmax, reshape. */
static KdTensor *op_converting(KdCtx *c, KdTensor **in, int b) {
  KdTensor *x = blk(c, in[0], b);
  KdTensor *g = kd_groupnorm(c, x, 4, NULL, NULL, 1e-5f);
  KdTensor *s = kd_sum(c, kd_tanh(c, x), 1u << 1);
  KdTensor *sm = kd_softmax(c, x, 1);
  KdTensor *r = kd_reshape(c, kd_tanh(c, x), 4, (int[]){2, 16, 4, 5});
  return kd_add(c, kd_add(c, kd_mul(c, g, s), sm), r);
}
static KdTensor *op_roundtrip(KdCtx *c, KdTensor **in, int b) {
  KdTensor *x = kd_tanh(c, blk(c, in[0], b));
  return kd_mul(c, kd_to_plain(c, x), kd_sum_all(c, x));
}

enum { X = GC_CHECK, P = GC_CHECK | GC_PARAM, R = GC_CONST, V = GC_CONST | GC_POSITIVE };
#define S4(a, b, c, d) {a, b, c, d}

static const Case cases[] = {
    {"layout/bn_train", op_bn_train, 5, {X, P, P, R, V}, {4, 1, 1, 1, 1}, {S4(2, 16, 4, 5), {16}, {16}, {16}, {16}}, 1e-5},
    {"layout/bn_eval", op_bn_eval, 5, {X, P, P, R, V}, {4, 1, 1, 1, 1}, {S4(2, 16, 4, 5), {16}, {16}, {16}, {16}}, 1e-6},
    {"layout/bn_shared_input", op_bn_shared, 3, {X, R, V}, {4, 1, 1}, {S4(3, 32, 3, 3), {32}, {32}}, 1e-5},
    {"layout/relu_add_relu", op_relu_add, 2, {X | GC_DISTINCT, X | GC_DISTINCT}, {4, 4}, {S4(2, 16, 3, 4), S4(2, 16, 3, 4)}, 0},
    {"layout/broadcast_mixed", op_mixed, 3, {X | GC_DISTINCT, X, X | GC_DISTINCT}, {4, 4, 4}, {S4(2, 16, 3, 3), S4(1, 16, 1, 1), S4(2, 16, 3, 3)}, 0},
    {"layout/maxpool_3x3s2", op_maxpool3, 1, {X | GC_DISTINCT}, {4}, {S4(2, 16, 7, 9)}, 0},
    {"layout/maxpool_2x2s2", op_maxpool2, 1, {X | GC_DISTINCT}, {4}, {S4(1, 32, 4, 6)}, 0},
    {"layout/upsample", op_upsample, 1, {X}, {4}, {S4(2, 16, 4, 5)}, 0},
    {"layout/conv_follow_bias", op_conv_follow, 3, {X, P, P}, {4, 4, 1}, {S4(2, 16, 5, 5), S4(16, 16, 3, 3), {16}}, 1e-5},
    {"layout/conv_plain_to_blocked", op_conv_to_blocked, 2, {X, P}, {4, 4}, {S4(2, 3, 9, 9), S4(16, 3, 3, 3)}, 1e-5},
    {"layout/conv_blocked_to_plain_1x1", op_conv_to_plain, 3, {X | GC_AWAY_ZERO, P, P}, {4, 4, 1},
     {S4(2, 32, 3, 4), S4(16, 32, 1, 1), {16}}, 1e-5},
    {"layout/conv_odd_cout", op_conv_odd_out, 2, {X, P}, {4, 4}, {S4(2, 16, 4, 4), S4(24, 16, 3, 3)}, 1e-5},
    {"layout/converting_ops", op_converting, 1, {X}, {4}, {S4(2, 16, 4, 5)}, 1e-5},
    {"layout/roundtrip", op_roundtrip, 1, {X}, {4}, {S4(2, 16, 3, 3)}, 1e-6},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static const Case *current;

static KdTensor *gc_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  return kd_to_plain(c, current->op(c, in, 1));
}

/* Blocked and plain runs on one set of inputs. */
static void compare_values(const Case *k, unsigned seed) {
  KdCtx *c = kd_ctx_new(1u << 20);
  KdTensor *in[5] = {0};
  unsigned s = seed;
  for (int i = 0; i < k->nin; i++) {
    in[i] = kd_tensor_new(c, k->ndim[i], k->shape[i]);
    for (size_t j = 0; in[i] && j < in[i]->numel; j++) {
      s = s * 1664525u + 1013904223u;
      float u = (float)(s >> 8) / 16777216.0f;
      in[i]->data[j] = k->flags[i] & GC_POSITIVE   ? 0.5f + u
                       : k->flags[i] & GC_DISTINCT ? 0.1f * ((float)(j * 7919 % in[i]->numel) - 0.5f * (float)in[i]->numel)
                                                   : 2.0f * u - 1.0f;
    }
  }
  KdTensor *yb = kd_to_plain(c, k->op(c, in, 1)), *yp = k->op(c, in, 0);
  CHECK_MSG(yb && yp && !yp->blocked && kd_tensor_same_shape(yb, yp), "%s: %s", k->name, kd_ctx_error(c));
  if (yb && yp && kd_tensor_same_shape(yb, yp)) {
    double md = 0, mp = 0;
    for (size_t j = 0; j < yp->numel; j++) {
      md = fmax(md, fabs((double)yb->data[j] - yp->data[j]));
      mp = fmax(mp, fabs((double)yp->data[j]));
    }
    CHECK_MSG(md <= k->tol * (mp > 0 ? mp : 1), "%s: blocked and plain runs differ by %.3g (max |y| %.3g)", k->name, md, mp);
  }
  kd_ctx_free(c);
}

int main(void) {
  int f = 0;
  for (int i = 0; i < NCASES; i++) {
    const Case *k = &cases[i];
    current = k;
    compare_values(k, 17u + (unsigned)i);
    Gc *g = gc_new(k->name, gc_fwd, NULL);
    for (int j = 0; j < k->nin; j++) gc_input(g, k->flags[j], k->ndim[j], k->shape[j]);
    f += gc_run(g);
  }
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("conv path %s, worst err/tol %.3f\n", kd_conv_backend_name(), gc_worst_ratio());
  return check_status("grad_layout");
}
