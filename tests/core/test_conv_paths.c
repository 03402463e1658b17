/* The two convolution paths agree: every conv geometry of the teacher and
 * student presets (traced from a real forward, batch 8, 128x128) runs
 * forward and backward through oneDNN and through im2col + OpenBLAS on the
 * same random data, and y, dx, dw, db must match. Gradients start from
 * random values, so the test also checks that both paths accumulate (+=)
 * into existing gradients instead of overwriting them. Then the same with
 * one thread in the same ctx, whose primitives are cached apart from the
 * two-thread ones; one parameter shared by convs on three map sizes; and
 * whole models (model_paths). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "core/rng.h"
#include "model/detector.h"

#define MAX_SHAPES 512

typedef struct Run {
  float *y, *gx, *gw, *gb;
} Run;

typedef struct Data {
  KdConvShape s;
  size_t nx, nw, ny;
  float *x, *w, *b, *gy, *gx0, *gw0, *gb0;
} Data;

static void fill(float *p, size_t n, float scale, KdRng *r) {
  for (size_t i = 0; i < n; i++) p[i] = scale * kd_rng_range(r, -1.0f, 1.0f);
}

static int out_size(int in, const KdConvShape *s) { return (in + 2 * s->pad - s->dilation * (s->k - 1) - 1) / s->stride + 1; }

static void data_new(Data *d, const KdConvShape *s, KdRng *r) {
  d->s = *s;
  d->nx = (size_t)s->n * s->cin * s->h * s->w;
  d->nw = (size_t)s->cout * (s->cin / s->groups) * s->k * s->k;
  d->ny = (size_t)s->n * s->cout * out_size(s->h, s) * out_size(s->w, s);
  size_t sizes[7] = {d->nx, d->nw, (size_t)s->cout, d->ny, d->nx, d->nw, (size_t)s->cout};
  float **ptrs[7] = {&d->x, &d->w, &d->b, &d->gy, &d->gx0, &d->gw0, &d->gb0};
  for (int i = 0; i < 7; i++) {
    *ptrs[i] = malloc(sizes[i] * sizeof(float));
    fill(*ptrs[i], sizes[i], i == 1 ? 1.0f / sqrtf((float)(d->nw / s->cout)) : 1.0f, r);
  }
}

static void data_free(Data *d) {
  float *ptrs[7] = {d->x, d->w, d->b, d->gy, d->gx0, d->gw0, d->gb0};
  for (int i = 0; i < 7; i++) free(ptrs[i]);
}

static void run_free(Run *r) {
  free(r->y), free(r->gx), free(r->gw), free(r->gb);
  memset(r, 0, sizeof *r);
}

static float *dup(const float *p, size_t n) {
  float *q = malloc(n * sizeof(float));
  memcpy(q, p, n * sizeof(float));
  return q;
}

/* Forward + the op's own backward with gy as the output gradient, twice
 * (the second run uses the primitives the first cached). */
static int run_conv(KdCtx *c, const Data *d, Run *out) {
  const KdConvShape *s = &d->s;
  KdConvCfg cfg = {.stride = s->stride, .pad = s->pad, .dilation = s->dilation, .groups = s->groups};
  for (int rep = 0; rep < 2; rep++) {
    kd_ctx_reset(c);
    int xs[4] = {s->n, s->cin, s->h, s->w}, ws[4] = {s->cout, s->cin / s->groups, s->k, s->k};
    KdTensor *x = kd_tensor_wrap(c, d->x, 4, xs), *w = kd_tensor_wrap(c, d->w, 4, ws);
    KdTensor *b = s->bias ? kd_tensor_wrap(c, d->b, 1, &s->cout) : NULL;
    if (!x || !w || (s->bias && !b)) return -1;
    x->requires_grad = w->requires_grad = 1;
    if (b) b->requires_grad = 1;
    KdTensor *y = kd_conv2d(c, x, w, b, cfg);
    if (!y || !y->node) return -1;
    memcpy(kd_grad(c, y), d->gy, d->ny * sizeof(float));
    memcpy(kd_grad(c, x), d->gx0, d->nx * sizeof(float));
    memcpy(kd_grad(c, w), d->gw0, d->nw * sizeof(float));
    if (b) memcpy(kd_grad(c, b), d->gb0, (size_t)s->cout * sizeof(float));
    y->node->backward(c, y->node);
    if (kd_ctx_failed(c)) return -1;
    if (rep == 1) {
      out->y = dup(y->data, d->ny);
      out->gx = dup(x->grad, d->nx);
      out->gw = dup(w->grad, d->nw);
      out->gb = b ? dup(b->grad, (size_t)s->cout) : NULL;
    }
  }
  return 0;
}

/* max|a - b| / max|b|: both paths sum the same products in other orders. */
static double rel_diff(const float *a, const float *b, size_t n) {
  double md = 0, mb = 0;
  for (size_t i = 0; i < n; i++) {
    md = fmax(md, fabs((double)a[i] - b[i]));
    mb = fmax(mb, fabs((double)b[i]));
  }
  return md / (mb > 0 ? mb : 1);
}

/* The accumulated part alone must not vanish (a path that overwrote the
 * gradient would still be close on large sums otherwise). */
static double accumulated(const float *g, const float *g0, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)g[i] - g0[i]));
  return d;
}

/* cd: the oneDNN path's ctx, kept across shapes and thread counts. */
static int compare(KdCtx *cd, const Data *d, const char *what, int threads) {
  const double tol = 2e-5;
  KdCtx *ci = kd_ctx_new(1u << 20);
  Run rd = {0}, ri = {0};
  kd_conv_set_backend(KD_CONV_DNNL);
  int ok = run_conv(cd, d, &rd) == 0;
  kd_conv_set_backend(KD_CONV_IM2COL);
  ok = ok && run_conv(ci, d, &ri) == 0;
  CHECK_MSG(ok, "%s: %s / %s", what, kd_ctx_error(cd), kd_ctx_error(ci));
  const KdConvShape *s = &d->s;
  if (ok) {
    double e[4] = {rel_diff(rd.y, ri.y, d->ny), rel_diff(rd.gx, ri.gx, d->nx), rel_diff(rd.gw, ri.gw, d->nw),
                   s->bias ? rel_diff(rd.gb, ri.gb, (size_t)s->cout) : 0};
    printf("%-7s %d thr %3d,%3d,%3d,%3d -> %3d %dx%d/%d  rel diff y %.1e dx %.1e dw %.1e db %.1e\n", what, threads, s->n,
           s->cin, s->h, s->w, s->cout, s->k, s->k, s->stride, e[0], e[1], e[2], e[3]);
    for (int i = 0; i < 4; i++) CHECK_MSG(e[i] <= tol, "%s: output %d differs by %.2e (relative)", what, i, e[i]);
    CHECK(accumulated(rd.gx, d->gx0, d->nx) > 0 && accumulated(rd.gw, d->gw0, d->nw) > 0);
  }
  run_free(&rd), run_free(&ri);
  kd_ctx_free(ci);
  return ok ? 0 : -1;
}

/* One parameter on three map sizes in one ctx generation (the head's
 * convs on the FPN levels, whose weights the oneDNN path reorders once a
 * generation), then new weight values in the next generation: outputs and
 * the accumulated weight gradient must match im2col in both. */
enum { LEVELS = 3, CH = 32 };

typedef struct Shared {
  float y[LEVELS][8 * CH * 16 * 16], gx[LEVELS][8 * CH * 16 * 16], gw[CH * CH * 9];
} Shared;

static int shared_run(KdCtx *c, KdTensor *w, float *const x[LEVELS], float *const r[LEVELS], Shared *out) {
  static const int sizes[LEVELS] = {16, 8, 4};
  kd_ctx_reset(c);
  memset(w->grad, 0, w->numel * sizeof(float));
  KdTensor *loss = NULL, *xs[LEVELS];
  for (int l = 0; l < LEVELS; l++) {
    int shape[4] = {8, CH, sizes[l], sizes[l]};
    xs[l] = kd_tensor_wrap(c, x[l], 4, shape);
    if (!xs[l]) return -1;
    xs[l]->requires_grad = 1;
    KdTensor *y = kd_conv2d(c, xs[l], w, NULL, (KdConvCfg){.pad = 1});
    if (y) memcpy(out->y[l], y->data, y->numel * sizeof(float));
    KdTensor *part = kd_sum_all(c, kd_mul(c, y, kd_tensor_wrap(c, r[l], 4, shape)));
    loss = loss ? kd_add(c, loss, part) : part;
  }
  if (!loss || kd_backward(c, loss)) return -1;
  for (int l = 0; l < LEVELS; l++) memcpy(out->gx[l], xs[l]->grad, xs[l]->numel * sizeof(float));
  memcpy(out->gw, w->grad, w->numel * sizeof(float));
  return 0;
}

static void shared_weights(KdRng *rng) {
  static Shared sd, si;
  static float xbuf[2][LEVELS][8 * CH * 16 * 16], wdata[CH * CH * 9], wgrad[CH * CH * 9];
  float *x[LEVELS], *r[LEVELS];
  for (int l = 0; l < LEVELS; l++) {
    x[l] = xbuf[0][l], r[l] = xbuf[1][l];
    fill(x[l], sizeof xbuf[0][l] / sizeof(float), 1.0f, rng);
    fill(r[l], sizeof xbuf[1][l] / sizeof(float), 1.0f, rng);
  }
  KdTensor w = {.ndim = 4, .shape = {CH, CH, 3, 3}, .numel = CH * CH * 9, .data = wdata, .grad = wgrad,
                .name = "head.conv.weight", .requires_grad = 1, .is_param = 1};
  KdCtx *cd = kd_ctx_new(1u << 20), *ci = kd_ctx_new(1u << 20);
  for (int gen = 0; gen < 2; gen++) {
    fill(wdata, w.numel, 0.1f, rng);
    kd_conv_set_backend(KD_CONV_DNNL);
    int ok = shared_run(cd, &w, x, r, &sd) == 0;
    kd_conv_set_backend(KD_CONV_IM2COL);
    ok = ok && shared_run(ci, &w, x, r, &si) == 0;
    CHECK_MSG(ok, "shared weights: %s / %s", kd_ctx_error(cd), kd_ctx_error(ci));
    if (!ok) break;
    double e = rel_diff(sd.gw, si.gw, w.numel);
    for (int l = 0; l < LEVELS; l++) {
      size_t n = (size_t)8 * CH * (16 >> l) * (16 >> l);
      e = fmax(e, fmax(rel_diff(sd.y[l], si.y[l], n), rel_diff(sd.gx[l], si.gx[l], n)));
    }
    printf("shared weights on 3 levels, generation %d: rel diff %.1e\n", gen, e);
    CHECK_MSG(e <= 2e-5, "shared weights, generation %d: outputs differ by %.2e (relative)", gen, e);
  }
  kd_ctx_free(cd), kd_ctx_free(ci);
}

/* Whole models, both paths: outputs and every parameter's gradient of a
 * loss on all outputs. Covers the model's layout boundaries (blocked
 * backbone and towers, NCHW FPN outputs) in configurations the presets do
 * not use: bottleneck blocks with P6/P7, GroupNorm in the head. */
typedef struct ModelRun {
  float *out, *grad;
  size_t nout, ngrad;
} ModelRun;

static int model_run(const KdModelCfg *mc, const float *img, int n, ModelRun *r) {
  KdError err;
  KdModel *m = kd_model_new(mc, 3, &err);
  KdCtx *c = kd_ctx_new(64u << 20);
  if (!m || !c) return -1;
  int shape[4] = {n, 3, 64, 64};
  KdDetOut o;
  int rc = kd_model_forward(m, c, kd_tensor_wrap(c, (float *)img, 4, shape), 1, &o);
  KdTensor *loss = NULL;
  r->nout = 0;
  for (int l = 0; !rc && l < o.nlev; l++) {
    KdTensor *t[3] = {o.feat[l], kd_det_out(&o, "cls")[l], kd_det_out(&o, "box")[l]};
    for (int j = 0; j < 3; j++) {
      CHECK(!t[j]->blocked);
      r->out = realloc(r->out, (r->nout + t[j]->numel) * sizeof(float));
      memcpy(r->out + r->nout, t[j]->data, t[j]->numel * sizeof(float));
      r->nout += t[j]->numel;
      KdTensor *part = kd_mean_all(c, kd_square(c, t[j]));
      loss = loss ? kd_add(c, loss, part) : part;
    }
  }
  KdParams *p = kd_model_params(m);
  kd_params_zero_grad(p);
  if (!rc && (!loss || kd_backward(c, loss))) rc = -1;
  r->ngrad = 0;
  for (int i = 0; !rc && i < kd_params_count(p); i++) {
    KdTensor *t = kd_params_at(p, i);
    if (!t->requires_grad || !t->grad) continue;
    r->grad = realloc(r->grad, (r->ngrad + t->numel) * sizeof(float));
    memcpy(r->grad + r->ngrad, t->grad, t->numel * sizeof(float));
    r->ngrad += t->numel;
  }
  if (rc) fprintf(stderr, "model run: %s\n", kd_ctx_error(c));
  kd_ctx_free(c);
  kd_model_free(m);
  return rc;
}

/* A deep net at random init with batch statistics amplifies rounding
 * (ResNet-50 here: a 1e-7 change of the input moves some gradients by 3%),
 * so the paths' difference is measured against the im2col path's own
 * difference under such a perturbation, plus a floor. */
static void model_paths(const char *name, const KdModelCfg *mc, KdRng *rng) {
  enum { N = 2 };
  static float img[N * 3 * 64 * 64], bumped[N * 3 * 64 * 64];
  fill(img, sizeof img / sizeof img[0], 1.0f, rng);
  for (size_t i = 0; i < sizeof img / sizeof img[0]; i++) bumped[i] = img[i] * (1.0f + 1e-7f * kd_rng_range(rng, -1.0f, 1.0f));
  ModelRun rd = {0}, ri = {0}, rb = {0};
  kd_conv_set_backend(KD_CONV_DNNL);
  int ok = model_run(mc, img, N, &rd) == 0;
  kd_conv_set_backend(KD_CONV_IM2COL);
  ok = ok && model_run(mc, img, N, &ri) == 0 && model_run(mc, bumped, N, &rb) == 0;
  ok = ok && rd.nout == ri.nout && rd.ngrad == ri.ngrad && rb.ngrad == ri.ngrad && rd.ngrad > 0;
  CHECK_MSG(ok, "%s: runs failed or differ in size", name);
  if (ok) {
    double eo = rel_diff(rd.out, ri.out, rd.nout), eg = rel_diff(rd.grad, ri.grad, rd.ngrad);
    double po = rel_diff(rb.out, ri.out, ri.nout), pg = rel_diff(rb.grad, ri.grad, ri.ngrad);
    printf("model %-26s rel diff outputs %.1e, %zu parameter gradients %.1e (im2col, input x(1 +- 1e-7): %.1e, %.1e)\n", name,
           eo, rd.ngrad, eg, po, pg);
    CHECK_MSG(eo <= 4 * po + 1e-5 && eg <= 4 * pg + 1e-5, "%s: outputs differ by %.2e, gradients by %.2e (relative)", name, eo, eg);
  }
  free(rd.out), free(rd.grad), free(ri.out), free(ri.grad), free(rb.out), free(rb.grad);
}

/* Unique conv geometries of one preset's forward. */
static int trace_preset(int student, int batch, KdConvShape *uniq, int nu) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  if (student) mc.backbone.depth = 10, mc.backbone.width = 16;
  KdError err;
  KdModel *m = kd_model_new(&mc, 1, &err);
  KdCtx *c = kd_ctx_new(64u << 20);
  CHECK(m && c);
  if (!m || !c) return nu;
  KdTensor *img = kd_tensor4(c, batch, 3, 128, 128);
  kd_tensor_fill(img, 0.5f);
  static KdConvShape trace[MAX_SHAPES];
  kd_conv_trace_enable(trace, MAX_SHAPES);
  KdDetOut out;
  kd_ctx_set_grad(c, 0);
  CHECK(kd_model_forward(m, c, img, 1, &out) == 0);
  int n = kd_conv_trace_disable();
  for (int i = 0; i < n; i++) {
    int j = 0;
    while (j < nu && memcmp(&uniq[j], &trace[i], sizeof trace[i])) j++;
    if (j == nu && nu < MAX_SHAPES) uniq[nu++] = trace[i];
  }
  kd_ctx_free(c);
  kd_model_free(m);
  return nu;
}

int main(void) {
  if (kd_conv_set_backend(KD_CONV_DNNL)) {
    printf("conv_paths: this build has no oneDNN path\n");
    return 77;
  }
  static KdConvShape uniq[MAX_SHAPES];
  int nu = trace_preset(0, 8, uniq, 0);
  nu = trace_preset(1, 8, uniq, nu);
  CHECK_MSG(nu >= 15, "only %d conv geometries traced", nu);
  KdRng r;
  kd_rng_seed(&r, 11, 3);
  int threads = kd_threads();
  KdCtx *cd = kd_ctx_new(1u << 20);
  for (int i = 0; i < nu; i++) {
    Data d;
    data_new(&d, &uniq[i], &r);
    compare(cd, &d, "preset", threads);
    data_free(&d);
  }
  /* One thread: new primitives (the cache key holds the thread count). */
  kd_set_threads(1);
  for (int i = 0; i < nu; i += 5) {
    Data d;
    data_new(&d, &uniq[i], &r);
    compare(cd, &d, "preset", 1);
    data_free(&d);
  }
  kd_set_threads(threads);
  kd_ctx_free(cd);
  shared_weights(&r);
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 16;
  model_paths("student preset", &mc, &r);
  mc.backbone.depth = 50, mc.backbone.width = 16, mc.neck.extra_levels = 2;
  model_paths("resnet-50 w16 with P6/P7", &mc, &r);

  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 32, mc.head.gn = 1, mc.head.convs = 2;
  model_paths("head with GroupNorm", &mc, &r);
  printf("%d geometries\n", nu);
  return check_status("conv_paths");
}
