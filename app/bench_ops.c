/* `kdscope bench ops`: every convolution shape of the reference networks,
 * timed forward and backward through the engine, next to cblas_sgemm on
 * exactly the GEMMs the im2col path issues for them. On the im2col path
 * the ratio says how much the engine loses around the GEMMs (im2col,
 * col2im, layout copies, bias); on oneDNN's, how far past them it gets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "core/rng.h"
#include "model/detector.h"

#define MAX_SHAPES 512
#define MAX_CALLS 64

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int same_shape(const KdConvShape *a, const KdConvShape *b) { return !memcmp(a, b, sizeof *a); }

static void fill(float *p, size_t n, KdRng *r) {
  for (size_t i = 0; i < n; i++) p[i] = kd_rng_range(r, -1.0f, 1.0f);
}

/* One forward + backward of the conv (gradients of x, w, b; dy = 1). */
static int conv_once(KdCtx *c, KdTensor *x, KdTensor *w, KdTensor *b, KdConvCfg cfg, KdArenaMark base, double *tf, double *tb) {
  kd_arena_release(kd_ctx_arena(c), base);
  x->grad = w->grad = NULL;
  if (b) b->grad = NULL;
  double t0 = now_s();
  KdTensor *y = kd_conv2d(c, x, w, b, cfg);
  double t1 = now_s();
  if (!y) return -1;
  kd_grad(c, y);
  kd_tensor_fill(&(KdTensor){.numel = y->numel, .data = y->grad}, 1.0f);
  kd_grad(c, w);
  if (x->requires_grad) kd_grad(c, x);
  if (b) kd_grad(c, b);
  double t2 = now_s();
  y->node->backward(c, y->node);
  double t3 = now_s();
  *tf = t1 - t0, *tb = t3 - t2;
  return kd_ctx_failed(c) ? -1 : 0;
}

/* Times one conv shape on the engine's conv path (oneDNN: with x in the
 * blocked layout, as inside the networks); fills fwd/bwd seconds per call
 * and the raw GEMM seconds for the GEMMs the im2col path issues. */
static int time_shape(const KdConvShape *s, double min_time, double *fwd, double *bwd, double *raw) {
  KdCtx *c = kd_ctx_new(64u << 20);
  if (!c) return -1;
  KdRng r;
  kd_rng_seed(&r, 1, 1);
  KdTensor *x = kd_tensor4(c, s->n, s->cin, s->h, s->w);
  KdTensor *w = kd_tensor4(c, s->cout, s->cin / s->groups, s->k, s->k);
  int bs[1] = {s->cout};
  KdTensor *b = s->bias ? kd_tensor_new(c, 1, bs) : NULL;
  if (!x || !w || (s->bias && !b)) return -1;
  fill(x->data, x->numel, &r);
  fill(w->data, w->numel, &r);
  if (b) fill(b->data, b->numel, &r);
  x->requires_grad = s->cin != 3; /* the stem's input needs no gradient */
  w->requires_grad = 1;
  if (b) b->requires_grad = 1;
  KdConvCfg cfg = {.stride = s->stride, .pad = s->pad, .dilation = s->dilation, .groups = s->groups};
  KdArenaMark base = kd_arena_mark(kd_ctx_arena(c));
  KdGemmCall calls[MAX_CALLS];
  KdConvBackend backend = kd_conv_backend();
  kd_conv_set_backend(KD_CONV_IM2COL);
  kd_gemm_log_enable(calls, MAX_CALLS);
  double tf = 0, tb = 0, f, bw;
  int fail = conv_once(c, x, w, b, cfg, base, &f, &bw);
  int ncalls = kd_gemm_log_disable(), reps = 0;
  kd_conv_set_backend(backend);
  x->blocked = backend == KD_CONV_DNNL && kd_layout_blockable(x); /* random data: any layout */
  if (fail || conv_once(c, x, w, b, cfg, base, &f, &bw)) return -1;
  do {
    if (conv_once(c, x, w, b, cfg, base, &f, &bw)) return -1;
    tf += f, tb += bw;
    reps++;
  } while (reps < 3 || tf + tb < min_time);
  *fwd = tf / reps;
  *bwd = tb / reps;
  kd_ctx_free(c);
  /* Replay the same GEMMs on fresh buffers. */
  size_t amax = 0, bmax = 0, cmax = 0;
  for (int i = 0; i < ncalls; i++) {
    size_t a = (size_t)calls[i].m * calls[i].k, bb = (size_t)calls[i].k * calls[i].n, cc = (size_t)calls[i].m * calls[i].n;
    if (a > amax) amax = a;
    if (bb > bmax) bmax = bb;
    if (cc > cmax) cmax = cc;
  }
  float *A = calloc(amax + 1, 4), *B = calloc(bmax + 1, 4), *C = calloc(cmax + 1, 4);
  if (!A || !B || !C) return -1;
  reps = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < ncalls; i++) {
      const KdGemmCall *g = &calls[i];
      kd_gemm(g->ta, g->tb, g->m, g->n, g->k, 1.0f, A, g->ta ? g->m : g->k, B, g->tb ? g->k : g->n, 0.0f, C, g->n);
    }
    reps++;
    t = now_s() - t0;
  } while (reps < 3 || t < min_time / 2);
  *raw = t / reps;
  free(A), free(B), free(C);
  return 0;
}

static double conv_flops(const KdConvShape *s) {
  int ho = (s->h + 2 * s->pad - s->dilation * (s->k - 1) - 1) / s->stride + 1;
  int wo = (s->w + 2 * s->pad - s->dilation * (s->k - 1) - 1) / s->stride + 1;
  return 2.0 * s->n * ho * wo * (double)s->cout * (s->cin / s->groups) * s->k * s->k;
}

int kd_bench_ops(const KdBenchOpts *o, KdBenchOpsResult *res) {
  const char *names[2] = {"teacher", "student"};
  KdModelCfg cfgs[2];
  kd_model_cfg_default(&cfgs[0]);
  kd_model_cfg_default(&cfgs[1]);
  cfgs[1].backbone.depth = 10;
  cfgs[1].backbone.width = 16;
  memset(res, 0, sizeof *res);
  if (!o->json)
    printf("%-8s %-28s %4s %9s %9s %9s %7s\n", "net", "conv (N,Cin,H,W -> Cout kxk/s)", "x", "fwd GF/s", "bwd GF/s", "sgemm", "ratio");
  for (int net = 0; net < 2; net++) {
    KdError err;
    KdModel *m = kd_model_new(&cfgs[net], 1, &err);
    if (!m) {
      fprintf(stderr, "bench: %s\n", err.msg);
      return -1;
    }
    KdCtx *c = kd_ctx_new(256u << 20);
    KdTensor *img = kd_tensor4(c, o->batch, 3, o->size, o->size);
    kd_tensor_fill(img, 0.5f);
    static KdConvShape trace[MAX_SHAPES];
    kd_conv_trace_enable(trace, MAX_SHAPES);
    KdDetOut out;
    kd_ctx_set_grad(c, 0);
    kd_model_forward(m, c, img, 1, &out);
    int n = kd_conv_trace_disable();
    kd_ctx_free(c);
    kd_model_free(m);
    KdConvShape uniq[MAX_SHAPES];
    int count[MAX_SHAPES], nu = 0;
    for (int i = 0; i < n; i++) {
      int j = 0;
      while (j < nu && !same_shape(&uniq[j], &trace[i])) j++;
      if (j == nu) uniq[nu] = trace[i], count[nu++] = 0;
      count[j]++;
    }
    double sum_conv = 0, sum_raw = 0, sum_flops = 0;
    for (int i = 0; i < nu; i++) {
      double f, b, r;
      if (time_shape(&uniq[i], o->min_time, &f, &b, &r)) return -1;
      double fl = conv_flops(&uniq[i]);
      double bfl = fl * (uniq[i].cin == 3 ? 1.0 : 2.0);
      sum_conv += count[i] * (f + b);
      sum_raw += count[i] * r;
      sum_flops += count[i] * (fl + bfl);
      if (!o->json) {
        char desc[64];
        snprintf(desc, sizeof desc, "%d,%d,%d,%d -> %d %dx%d/%d", uniq[i].n, uniq[i].cin, uniq[i].h, uniq[i].w, uniq[i].cout,
                 uniq[i].k, uniq[i].k, uniq[i].stride);
        printf("%-8s %-28s %4d %9.1f %9.1f %9.1f %6.0f%%\n", names[net], desc, count[i], fl / f / 1e9, bfl / b / 1e9,
               (fl + bfl) / r / 1e9, 100.0 * r / (f + b));
      }
    }
    res->conv_s[net] = sum_conv;
    res->gemm_s[net] = sum_raw;
    res->flops[net] = sum_flops;
    if (!o->json)
      printf("%-8s all convs fwd+bwd: %.2f ms, %.1f GFLOP/s (%.1f%% of FMA peak); same GEMMs raw: %.2f ms, %.1f GFLOP/s; conv at %.0f%% of raw sgemm\n",
             names[net], 1e3 * sum_conv, sum_flops / sum_conv / 1e9, o->fma_peak > 0 ? 100 * sum_flops / sum_conv / 1e9 / o->fma_peak : 0,
             1e3 * sum_raw, sum_flops / sum_raw / 1e9, 100.0 * sum_raw / sum_conv);
  }
  return 0;
}
