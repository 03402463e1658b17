/* Tensors, the per-step context (arena + autograd tape) and the sticky
 * error status. float32, row-major, at most 4 dims (NCHW for images).
 *
 * Ownership: tensors made by kd_tensor_* and by ops live in the context's
 * arena until kd_ctx_reset(); parameters live in a KdParams store (params.h).
 * Fields are read by engine code; app/ and ui/ go through higher-level APIs. */
#ifndef KD_TENSOR_H
#define KD_TENSOR_H

#include <stddef.h>

#include "core/arena.h"

#define KD_MAX_DIMS 4

typedef struct KdNode KdNode;
typedef struct KdCtx KdCtx;

typedef struct KdTensor {
  int ndim;
  int shape[KD_MAX_DIMS];
  size_t numel;
  float *data;
  float *grad;          /* params: persistent; step tensors: arena, lazily zeroed */
  KdNode *node;         /* op that produced it on the tape; NULL for leaves */
  const char *name;     /* params and named inputs only */
  unsigned requires_grad : 1;
  unsigned is_param : 1;
  /* Data (and grad) in the blocked layout N, C/16, H, W, 16 (oneDNN's
   * nChw16c; 4-D, C % 16 == 0), see core/layout.c. Convolutions make it;
   * ops that do not work on it take kd_to_plain of their input first. */
  unsigned blocked : 1;
} KdTensor;

/* ---- context: arena, tape, no-grad flag, sticky error ---- */
KdCtx *kd_ctx_new(size_t arena_bytes);
void kd_ctx_free(KdCtx *c);
/* End of step: forgets the tape and every step tensor. */
void kd_ctx_reset(KdCtx *c);
/* Counts resets. Parameters do not change within one generation (between
 * resets), so a derived copy of a parameter (a conv's weights in another
 * layout) stays valid for the generation it was made in. */
unsigned kd_ctx_generation(const KdCtx *c);
KdArena *kd_ctx_arena(KdCtx *c);
/* Returns the previous setting. With grad off, ops record nothing and
 * their outputs never require grad (teacher forwards, evaluation). */
int kd_ctx_set_grad(KdCtx *c, int enabled);
int kd_ctx_grad_enabled(const KdCtx *c);
/* Sticky error, cairo-style: the first failure is kept, later ops that get
 * a NULL input return NULL, and the caller checks once at the end. */
void kd_ctx_fail(KdCtx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kd_ctx_failed(const KdCtx *c);
const char *kd_ctx_error(const KdCtx *c);
void kd_ctx_clear_error(KdCtx *c);
/* Scratch memory from the arena, 64-byte aligned, valid until reset. */
void *kd_ctx_alloc(KdCtx *c, size_t bytes);
/* Tape length (number of recorded ops). */
int kd_ctx_tape_len(const KdCtx *c);
/* State an op keeps across steps (compiled conv primitives): one slot,
 * untouched by kd_ctx_reset, released with free_fn by kd_ctx_free. */
void *kd_ctx_conv_cache(const KdCtx *c);
void kd_ctx_set_conv_cache(KdCtx *c, void *cache, void (*free_fn)(void *));

/* ---- tensors ---- */
/* Uninitialised step tensor. Shape dims must be >= 1. NULL on failure. */
KdTensor *kd_tensor_new(KdCtx *c, int ndim, const int *shape);
KdTensor *kd_tensor4(KdCtx *c, int n, int ch, int h, int w);
KdTensor *kd_tensor_zeros(KdCtx *c, int ndim, const int *shape);
KdTensor *kd_tensor_like(KdCtx *c, const KdTensor *t); /* same shape and layout */
/* Wraps existing memory (not copied, not owned) as a leaf step tensor. */
KdTensor *kd_tensor_wrap(KdCtx *c, float *data, int ndim, const int *shape);
/* Copy of the data as a new leaf (no tape). */
KdTensor *kd_tensor_copy(KdCtx *c, const KdTensor *t);
void kd_tensor_fill(KdTensor *t, float v);
int kd_tensor_same_shape(const KdTensor *a, const KdTensor *b);
/* "N,C,H,W"-style text into buf, for messages. */
const char *kd_tensor_shape_str(const KdTensor *t, char *buf, size_t len);
/* Size of dim d counted from the left after left-padding to 4 dims. */
int kd_dim4(const KdTensor *t, int d);

/* ---- autograd ---- */
typedef void (*KdBackwardFn)(KdCtx *c, KdNode *node);

struct KdNode {
  KdBackwardFn backward;
  const char *op;
  KdTensor *out;
  KdTensor **in;
  int nin;
  void *saved;          /* op-specific, arena memory */
  KdNode *prev;
};

/* Called by ops after computing `out`. Records a node when grad mode is on
 * and some input requires grad; sets out->requires_grad accordingly.
 * Returns the node's saved area (saved_bytes, zeroed) or NULL when nothing
 * was recorded (then the op must not touch saved state). */
void *kd_record(KdCtx *c, const char *op, KdTensor *out, KdTensor *const *in, int nin,
                KdBackwardFn backward, size_t saved_bytes);
/* The gradient buffer of t, allocated zeroed on first use. */
float *kd_grad(KdCtx *c, KdTensor *t);
/* Reverse pass from a scalar: d(loss)/d(x) is accumulated into x->grad for
 * every tensor that requires grad. `seed` scales the starting gradient (1.0
 * for plain backward). Step-tensor grads of an earlier pass are cleared
 * first, parameter grads accumulate. Returns 0, or -1 with the ctx error. */
int kd_backward(KdCtx *c, KdTensor *loss);
int kd_backward_seed(KdCtx *c, KdTensor *loss, float seed);
/* Drops the gradients of step tensors (not parameters), e.g. between the
 * separate backward passes a probe uses to split gradients by source. */
void kd_ctx_clear_step_grads(KdCtx *c);

#endif
