#include "core/tensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct KdCtx {
  KdArena *arena;
  KdNode *tape;      /* last recorded node; walk ->prev */
  int tape_len;
  unsigned generation;
  int grad_enabled;
  int failed;
  char err[1024];
  void *conv_cache;
  void (*conv_cache_free)(void *);
};

KdCtx *kd_ctx_new(size_t arena_bytes) {
  KdCtx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->arena = kd_arena_new(arena_bytes);
  if (!c->arena) {
    free(c);
    return NULL;
  }
  c->grad_enabled = 1;
  return c;
}

void kd_ctx_free(KdCtx *c) {
  if (!c) return;
  if (c->conv_cache_free) c->conv_cache_free(c->conv_cache);
  kd_arena_free(c->arena);
  free(c);
}

void kd_ctx_reset(KdCtx *c) {
  c->tape = NULL;
  c->tape_len = 0;
  c->generation++;
  kd_arena_reset(c->arena);
}

unsigned kd_ctx_generation(const KdCtx *c) { return c->generation; }

KdArena *kd_ctx_arena(KdCtx *c) { return c->arena; }

int kd_ctx_set_grad(KdCtx *c, int enabled) {
  int old = c->grad_enabled;
  c->grad_enabled = enabled != 0;
  return old;
}

int kd_ctx_grad_enabled(const KdCtx *c) { return c->grad_enabled; }

void kd_ctx_fail(KdCtx *c, const char *fmt, ...) {
  if (c->failed) return;
  c->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
}

int kd_ctx_failed(const KdCtx *c) { return c->failed; }
const char *kd_ctx_error(const KdCtx *c) { return c->failed ? c->err : ""; }

void kd_ctx_clear_error(KdCtx *c) {
  c->failed = 0;
  c->err[0] = 0;
}

void *kd_ctx_alloc(KdCtx *c, size_t bytes) {
  void *p = kd_arena_alloc(c->arena, bytes);
  if (!p) kd_ctx_fail(c, "out of memory (%zu bytes for a step buffer)", bytes);
  return p;
}

int kd_ctx_tape_len(const KdCtx *c) { return c->tape_len; }

void *kd_ctx_conv_cache(const KdCtx *c) { return c->conv_cache; }

void kd_ctx_set_conv_cache(KdCtx *c, void *cache, void (*free_fn)(void *)) {
  c->conv_cache = cache;
  c->conv_cache_free = free_fn;
}

/* ---- tensors ---- */

static KdTensor *tensor_header(KdCtx *c, int ndim, const int *shape) {
  if (ndim < 1 || ndim > KD_MAX_DIMS) {
    kd_ctx_fail(c, "tensor with %d dims (1..%d allowed)", ndim, KD_MAX_DIMS);
    return NULL;
  }
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 1) {
      kd_ctx_fail(c, "tensor dim %d has size %d", i, shape[i]);
      return NULL;
    }
    numel *= (size_t)shape[i];
  }
  KdTensor *t = kd_ctx_alloc(c, sizeof *t);
  if (!t) return NULL;
  memset(t, 0, sizeof *t);
  t->ndim = ndim;
  for (int i = 0; i < KD_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
  t->numel = numel;
  return t;
}

KdTensor *kd_tensor_new(KdCtx *c, int ndim, const int *shape) {
  if (c->failed) return NULL;
  KdTensor *t = tensor_header(c, ndim, shape);
  if (!t) return NULL;
  t->data = kd_ctx_alloc(c, t->numel * sizeof(float));
  return t->data ? t : NULL;
}

KdTensor *kd_tensor4(KdCtx *c, int n, int ch, int h, int w) {
  int s[4] = {n, ch, h, w};
  return kd_tensor_new(c, 4, s);
}

KdTensor *kd_tensor_zeros(KdCtx *c, int ndim, const int *shape) {
  KdTensor *t = kd_tensor_new(c, ndim, shape);
  if (t) memset(t->data, 0, t->numel * sizeof(float));
  return t;
}

KdTensor *kd_tensor_like(KdCtx *c, const KdTensor *t) {
  if (!t) return NULL;
  KdTensor *o = kd_tensor_new(c, t->ndim, t->shape);
  if (o) o->blocked = t->blocked;
  return o;
}

KdTensor *kd_tensor_wrap(KdCtx *c, float *data, int ndim, const int *shape) {
  if (c->failed) return NULL;
  KdTensor *t = tensor_header(c, ndim, shape);
  if (t) t->data = data;
  return t;
}

KdTensor *kd_tensor_copy(KdCtx *c, const KdTensor *t) {
  KdTensor *o = kd_tensor_like(c, t);
  if (o) memcpy(o->data, t->data, t->numel * sizeof(float));
  return o;
}

void kd_tensor_fill(KdTensor *t, float v) {
  for (size_t i = 0; i < t->numel; i++) t->data[i] = v;
}

int kd_tensor_same_shape(const KdTensor *a, const KdTensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

const char *kd_tensor_shape_str(const KdTensor *t, char *buf, size_t len) {
  if (!t) {
    snprintf(buf, len, "(null)");
    return buf;
  }
  size_t off = 0;
  buf[0] = 0;
  for (int i = 0; i < t->ndim && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, i ? ",%d" : "%d", t->shape[i]);
  return buf;
}

int kd_dim4(const KdTensor *t, int d) {
  int pad = 4 - t->ndim;
  return d < pad ? 1 : t->shape[d - pad];
}

/* ---- autograd ---- */

void *kd_record(KdCtx *c, const char *op, KdTensor *out, KdTensor *const *in, int nin,
                KdBackwardFn backward, size_t saved_bytes) {
  if (!out) return NULL;
  out->requires_grad = 0;
  if (!c->grad_enabled || c->failed) return NULL;
  int any = 0;
  for (int i = 0; i < nin; i++)
    if (in[i] && in[i]->requires_grad) any = 1;
  if (!any) return NULL;
  KdNode *n = kd_ctx_alloc(c, sizeof *n);
  KdTensor **ins = kd_ctx_alloc(c, (size_t)nin * sizeof *ins);
  void *saved = kd_ctx_alloc(c, saved_bytes ? saved_bytes : 1);
  if (!n || !ins || !saved) return NULL;
  memcpy(ins, in, (size_t)nin * sizeof *ins);
  memset(saved, 0, saved_bytes ? saved_bytes : 1);
  n->backward = backward;
  n->op = op;
  n->out = out;
  n->in = ins;
  n->nin = nin;
  n->saved = saved;
  n->prev = c->tape;
  c->tape = n;
  c->tape_len++;
  out->node = n;
  out->requires_grad = 1;
  return saved;
}

float *kd_grad(KdCtx *c, KdTensor *t) {
  if (!t->grad) {
    t->grad = kd_ctx_alloc(c, t->numel * sizeof(float));
    if (t->grad) memset(t->grad, 0, t->numel * sizeof(float));
  }
  return t->grad;
}

void kd_ctx_clear_step_grads(KdCtx *c) {
  for (KdNode *n = c->tape; n; n = n->prev) {
    if (!n->out->is_param) n->out->grad = NULL;
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] && !n->in[i]->is_param) n->in[i]->grad = NULL;
  }
}

int kd_backward_seed(KdCtx *c, KdTensor *loss, float seed) {
  if (c->failed) return -1;
  if (!loss) {
    kd_ctx_fail(c, "backward from a missing loss");
    return -1;
  }
  if (loss->numel != 1) {
    char b[64];
    kd_ctx_fail(c, "backward needs a scalar loss, got shape %s", kd_tensor_shape_str(loss, b, sizeof b));
    return -1;
  }
  if (!loss->requires_grad) return 0;
  kd_ctx_clear_step_grads(c);
  float *g = kd_grad(c, loss);
  if (!g) return -1;
  g[0] += seed;
  /* The tape is in creation order, a valid topological order; a node whose
   * output received no gradient contributes nothing and is skipped. */
  for (KdNode *n = c->tape; n; n = n->prev) {
    if (!n->out->grad) continue;
    n->backward(c, n);
    if (c->failed) return -1;
  }
  return 0;
}

int kd_backward(KdCtx *c, KdTensor *loss) { return kd_backward_seed(c, loss, 1.0f); }
