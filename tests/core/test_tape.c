/* The tape and the sticky error: with grad mode off nothing is recorded
 * and no gradient buffer exists; a bad shape makes an op return NULL with
 * a message naming it, later ops pass the NULL on and keep the first
 * message; parameter grads accumulate over backward passes while step
 * grads are cleared. */
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/params.h"
#include "core/rng.h"

static KdTensor *randt(KdCtx *c, KdRng *r, int ndim, const int *shape) {
  KdTensor *t = kd_tensor_new(c, ndim, shape);
  for (size_t i = 0; t && i < t->numel; i++) t->data[i] = kd_rng_normal(r);
  return t;
}

/* A small net touching every op kind; returns a scalar. */
static KdTensor *forward(KdCtx *c, KdRng *r, KdTensor *w, KdTensor *x) {
  int c8[1] = {8};
  KdTensor *g = randt(c, r, 1, c8), *b = randt(c, r, 1, c8);
  KdTensor *rm = kd_tensor_zeros(c, 1, c8), *rv = kd_tensor_zeros(c, 1, c8);
  kd_tensor_fill(rv, 1.0f);
  KdTensor *y = kd_conv2d(c, x, w, NULL, (KdConvCfg){.pad = 1});
  y = kd_relu(c, kd_batchnorm(c, y, g, b, rm, rv, 1, 0.1f, 1e-5f));
  y = kd_groupnorm(c, y, 2, NULL, NULL, 1e-5f);
  y = kd_maxpool2d(c, y, 2, 2, 0);
  KdTensor *u = kd_upsample_nearest(c, kd_avgpool2d(c, y, 2, 2, 0), 2);
  y = kd_add(c, y, u);
  KdTensor *f = kd_reshape(c, y, 3, (int[]){2, 8, -1});
  KdTensor *att = kd_softmax(c, kd_matmul(c, f, f, 0, 1), 2);
  KdTensor *parts[2] = {kd_slice(c, att, 2, 0, 4), kd_transpose(c, att, 1, 2)};
  KdTensor *cat = kd_concat(c, parts, 2, 2);
  KdTensor *s = kd_sum(c, kd_log_softmax(c, cat, 1), 1u << 2);
  KdTensor *gth = kd_gather(c, kd_permute(c, s, (int[]){1, 0, 2}), (int[]){0, 3, 5}, 3);
  return kd_add(c, kd_mean_all(c, kd_global_avgpool(c, y)), kd_sum_all(c, gth));
}

int main(void) {
  KdRng r;
  kd_rng_seed(&r, 3, 0);
  KdCtx *c = kd_ctx_new(1 << 16);
  KdParams *p = kd_params_new();
  KdTensor *w = kd_params_add(p, "conv.weight", 4, (int[]){8, 3, 3, 3}, KD_PARAM_TRAIN);
  KdError err = {{0}};
  CHECK(kd_params_finalize(p, &err) == 0);
  for (size_t i = 0; i < w->numel; i++) w->data[i] = 0.2f * kd_rng_normal(&r);
  int xs[4] = {2, 3, 8, 8};

  /* Grad mode off: no tape, no grads. */
  int old = kd_ctx_set_grad(c, 0);
  CHECK(old == 1);
  KdTensor *x = randt(c, &r, 4, xs);
  x->requires_grad = 1;
  KdTensor *loss = forward(c, &r, w, x);
  CHECK_MSG(loss != NULL, "%s", kd_ctx_error(c));
  CHECK(kd_ctx_tape_len(c) == 0);
  CHECK(loss && !loss->requires_grad && !loss->node && !loss->grad);
  CHECK(kd_backward(c, loss) == 0); /* nothing to do, not an error */
  CHECK(!x->grad);
  for (size_t i = 0; i < w->numel; i++) CHECK(w->grad[i] == 0.0f);
  kd_ctx_set_grad(c, 1);
  kd_ctx_reset(c);

  /* Grad mode on: a tape, param grads accumulate over two passes. */
  x = randt(c, &r, 4, xs);
  x->requires_grad = 1;
  KdRng r2 = r;
  loss = forward(c, &r, w, x);
  CHECK(loss && kd_ctx_tape_len(c) > 20);
  CHECK(kd_backward(c, loss) == 0);
  float g0 = w->grad[5], gx0 = x->grad ? x->grad[7] : 0.0f;
  CHECK(g0 != 0.0f && gx0 != 0.0f);
  CHECK(kd_backward(c, loss) == 0);
  CHECK_NEAR(w->grad[5], 2.0f * g0, 1e-6 * (1 + 2 * fabsf(g0)));
  CHECK_NEAR(x->grad[7], gx0, 1e-7); /* step grads restart */
  kd_ctx_reset(c);
  (void)r2;

  /* Sticky error: first failure kept, later ops pass NULL along. */
  x = randt(c, &r, 4, xs);
  KdTensor *bad_w = randt(c, &r, 4, (int[]){8, 5, 3, 3});
  KdTensor *y = kd_conv2d(c, x, bad_w, NULL, (KdConvCfg){0});
  CHECK(y == NULL && kd_ctx_failed(c));
  CHECK_MSG(strstr(kd_ctx_error(c), "conv2d") && strstr(kd_ctx_error(c), "2,3,8,8") && strstr(kd_ctx_error(c), "8,5,3,3"),
            "message: %s", kd_ctx_error(c));
  char first[1024];
  snprintf(first, sizeof first, "%s", kd_ctx_error(c));
  CHECK(kd_relu(c, y) == NULL && kd_batchnorm(c, y, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f) == NULL);
  CHECK(kd_softmax(c, kd_slice(c, x, 9, 0, 1), 1) == NULL);
  CHECK(kd_tensor4(c, 1, 1, 1, 1) == NULL); /* allocation refuses too */
  CHECK(kd_backward(c, y) == -1);
  CHECK(strcmp(kd_ctx_error(c), first) == 0);
  kd_ctx_clear_error(c);
  kd_ctx_reset(c);

  /* Every op reports its own name on a bad shape. */
  KdTensor *a = randt(c, &r, 4, (int[]){2, 3, 4, 4}), *m2 = randt(c, &r, 2, (int[]){3, 4});
  KdTensor *v5 = randt(c, &r, 1, (int[]){5});
  KdTensor *pair[2] = {a, m2};
  struct {
    const char *name;
    KdTensor *out;
  } bad[16];
  int nb = 0;
#define BAD(nm, expr)                                                                                            \
  do {                                                                                                           \
    bad[nb].name = nm;                                                                                           \
    bad[nb].out = (expr);                                                                                        \
    CHECK_MSG(bad[nb].out == NULL && strstr(kd_ctx_error(c), nm), "%s: message '%s'", nm, kd_ctx_error(c));     \
    nb++;                                                                                                        \
    kd_ctx_clear_error(c);                                                                                       \
  } while (0)
  BAD("batchnorm", kd_batchnorm(c, a, v5, NULL, NULL, NULL, 1, 0.1f, 1e-5f));
  BAD("batchnorm", kd_batchnorm(c, a, NULL, NULL, NULL, NULL, 0, 0.1f, 1e-5f));
  BAD("groupnorm", kd_groupnorm(c, a, 2, NULL, NULL, 1e-5f));
  BAD("sum", kd_sum(c, m2, 1u << 2));
  BAD("softmax", kd_softmax(c, a, 4));
  BAD("upsample_nearest", kd_upsample_nearest(c, m2, 2));
  BAD("upsample_nearest_to", kd_upsample_nearest_to(c, a, 0, 3));
  BAD("maxpool2d", kd_maxpool2d(c, a, 3, 1, 2));
  BAD("avgpool2d", kd_avgpool2d(c, a, 7, 1, 0));
  BAD("matmul", kd_matmul(c, m2, m2, 0, 0));
  BAD("reshape", kd_reshape(c, a, 2, (int[]){5, -1}));
  BAD("permute", kd_permute(c, a, (int[]){0, 1, 1, 2}));
  BAD("concat", kd_concat(c, pair, 2, 0));
  BAD("slice", kd_slice(c, a, 1, 2, 2));
  BAD("gather", kd_gather(c, m2, (int[]){0, 12}, 2));
  BAD("add", kd_add(c, a, m2));
  CHECK(!kd_ctx_failed(c));
  /* The good neighbours of those calls work. */
  CHECK(kd_matmul(c, m2, m2, 0, 1) && kd_slice(c, a, 1, 1, 2) && kd_gather(c, m2, (int[]){0, 11}, 2));
  CHECK(!kd_ctx_failed(c));

  kd_params_free(p);
  kd_ctx_free(c);
  return check_status("tape");
}
