/* The finite-difference harness declared in gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

typedef struct {
  int flags, ndim, shape[KD_MAX_DIMS];
  size_t numel;
  float *data;
  KdTensor param; /* GC_PARAM: a tensor that lives outside the arena */
} GcIn;

struct Gc {
  char name[128];
  GcForwardFn fn;
  void *user;
  int nin;
  GcIn in[GC_MAX_IN];
  double eps, atol, rtol;
  KdRng rng;
  float *r; /* the fixed output weights R */
  size_t rn;
};

static double worst_ratio;

double gc_worst_ratio(void) { return worst_ratio; }

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

Gc *gc_new(const char *name, GcForwardFn fn, void *user) {
  Gc *g = calloc(1, sizeof *g);
  if (!g) abort();
  snprintf(g->name, sizeof g->name, "%s", name);
  g->fn = fn;
  g->user = user;
  g->eps = GC_DEFAULT_EPS;
  g->atol = GC_DEFAULT_ATOL;
  g->rtol = GC_DEFAULT_RTOL;
  kd_rng_seed(&g->rng, fnv(name), 7);
  return g;
}

void gc_tol(Gc *g, double eps, double atol, double rtol) {
  if (eps > 0) g->eps = eps;
  if (atol > 0) g->atol = atol;
  if (rtol > 0) g->rtol = rtol;
}

float *gc_input(Gc *g, int flags, int ndim, const int *shape) {
  if (g->nin == GC_MAX_IN || ndim < 1 || ndim > KD_MAX_DIMS) abort();
  GcIn *in = &g->in[g->nin++];
  in->flags = flags;
  in->ndim = ndim;
  in->numel = 1;
  for (int d = 0; d < KD_MAX_DIMS; d++) {
    in->shape[d] = d < ndim ? shape[d] : 1;
    in->numel *= (size_t)in->shape[d];
  }
  in->data = malloc(in->numel * sizeof(float));
  if (!in->data) abort();
  for (size_t i = 0; i < in->numel; i++) {
    float v = kd_rng_normal(&g->rng);
    if (flags & GC_AWAY_ZERO) v = (v < 0 ? -1.0f : 1.0f) * kd_rng_range(&g->rng, 0.2f, 2.0f);
    if (flags & GC_POSITIVE) v = kd_rng_range(&g->rng, 0.5f, 2.0f);
    in->data[i] = v;
  }
  if (flags & GC_DISTINCT) {
    for (size_t i = 0; i < in->numel; i++) in->data[i] = 0.1f * ((float)i - 0.5f * (float)in->numel);
    for (size_t i = in->numel; i > 1; i--) { /* Fisher-Yates */
      size_t j = kd_rng_below(&g->rng, (uint32_t)i);
      float t = in->data[i - 1];
      in->data[i - 1] = in->data[j];
      in->data[j] = t;
    }
  }
  return in->data;
}

/* Wraps every input for one evaluation; grads only when `grad`. */
static void make_inputs(Gc *g, KdCtx *c, KdTensor **t, int grad) {
  for (int i = 0; i < g->nin; i++) {
    GcIn *in = &g->in[i];
    int rg = grad && (in->flags & GC_CHECK);
    if (in->flags & GC_PARAM) {
      KdTensor *p = &in->param;
      p->ndim = in->ndim;
      memcpy(p->shape, in->shape, sizeof p->shape);
      p->numel = in->numel;
      p->data = in->data;
      p->is_param = 1;
      p->requires_grad = (in->flags & GC_CHECK) != 0;
      p->node = NULL;
      t[i] = p;
    } else {
      t[i] = kd_tensor_wrap(c, in->data, in->ndim, in->shape);
      if (t[i]) t[i]->requires_grad = rg;
    }
  }
}

/* The loss op: L = sum(y * R), in double; dL/dy = R. */
static void dot_backward(KdCtx *c, KdNode *n) {
  KdTensor *y = n->in[0];
  if (!y->requires_grad) return;
  const float *r = *(float **)n->saved;
  float *gy = kd_grad(c, y), g = n->out->grad[0];
  for (size_t i = 0; i < y->numel; i++) gy[i] += g * r[i];
}

static double dot_r(const KdTensor *y, const float *r) {
  double s = 0.0;
  for (size_t i = 0; i < y->numel; i++) s += (double)y->data[i] * r[i];
  return s;
}

/* One forward without grad; NAN on failure. */
static double eval_loss(Gc *g, KdCtx *c) {
  KdTensor *t[GC_MAX_IN];
  kd_ctx_reset(c);
  make_inputs(g, c, t, 0);
  KdTensor *y = g->fn(c, t, g->user);
  if (!y || y->numel != g->rn) return NAN;
  return dot_r(y, g->r);
}

int gc_run(Gc *g) {
  int fails = 0;
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *t[GC_MAX_IN];
  float *ana[GC_MAX_IN] = {0};
  size_t nchecked = 0;
  double max_abs = 0.0, max_ratio = 0.0;

  /* Analytic pass. */
  make_inputs(g, c, t, 1);
  for (int i = 0; i < g->nin; i++)
    if (g->in[i].flags & GC_PARAM) g->in[i].param.grad = calloc(g->in[i].numel, sizeof(float));
  KdTensor *y = g->fn(c, t, g->user);
  if (!y) {
    fprintf(stderr, "gradcheck %s: forward failed: %s\n", g->name, kd_ctx_error(c));
    fails = 1;
    goto out;
  }
  g->rn = y->numel;
  g->r = malloc(g->rn * sizeof(float));
  for (size_t i = 0; i < g->rn; i++) g->r[i] = kd_rng_normal(&g->rng);
  int one = 1;
  KdTensor *loss = kd_tensor_new(c, 1, &one);
  KdTensor *lin[1] = {y};
  float **saved = kd_record(c, "gc_dot", loss, lin, 1, dot_backward, sizeof(float *));
  if (!saved) {
    fprintf(stderr, "gradcheck %s: output does not require grad (op recorded nothing)\n", g->name);
    fails = 1;
    goto out;
  }
  *saved = g->r;
  loss->data[0] = (float)dot_r(y, g->r);
  if (kd_backward(c, loss)) {
    fprintf(stderr, "gradcheck %s: backward failed: %s\n", g->name, kd_ctx_error(c));
    fails = 1;
    goto out;
  }
  for (int i = 0; i < g->nin; i++) {
    if (!(g->in[i].flags & GC_CHECK)) continue;
    ana[i] = calloc(g->in[i].numel, sizeof(float));
    if (t[i]->grad) memcpy(ana[i], t[i]->grad, g->in[i].numel * sizeof(float));
  }

  /* Numeric pass, element by element. */
  kd_ctx_set_grad(c, 0);
  int printed = 0;
  for (int i = 0; i < g->nin; i++) {
    GcIn *in = &g->in[i];
    if (!(in->flags & GC_CHECK)) continue;
    for (size_t j = 0; j < in->numel; j++) {
      float orig = in->data[j];
      float xp = orig + (float)g->eps, xm = orig - (float)g->eps;
      in->data[j] = xp;
      double fp = eval_loss(g, c);
      in->data[j] = xm;
      double fm = eval_loss(g, c);
      in->data[j] = orig;
      double num = (fp - fm) / ((double)xp - (double)xm), a = ana[i][j];
      double err = fabs(a - num), tol = g->atol + g->rtol * fmax(fabs(a), fabs(num));
      nchecked++;
      if (err > max_abs) max_abs = err;
      if (err / tol > max_ratio) max_ratio = err / tol;
      if (!(err <= tol)) { /* also catches NaN */
        if (printed++ < 5)
          fprintf(stderr, "gradcheck %s: input %d element %zu: analytic %.7g numeric %.7g (err %.3g > tol %.3g)\n",
                  g->name, i, j, a, num, err, tol);
        fails++;
      }
    }
  }
  if (max_ratio > worst_ratio) worst_ratio = max_ratio;
  printf("gradcheck %-34s %5zu elems  max|a-n| %.2e  err/tol %.3f  %s\n", g->name, nchecked, max_abs, max_ratio,
         fails ? "FAIL" : "ok");
out:
  for (int i = 0; i < g->nin; i++) {
    free(ana[i]);
    free(g->in[i].data);
    if (g->in[i].flags & GC_PARAM) free(g->in[i].param.grad);
  }
  free(g->r);
  kd_ctx_free(c);
  free(g);
  return fails;
}
