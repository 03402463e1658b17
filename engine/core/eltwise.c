/* Element-wise ops: unary maps, scalar affine, and NumPy-broadcast binary
 * ops. Forward and backward sit next to each other. */
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"

/* ---------- unary ---------- */

typedef enum { U_RELU, U_SIGMOID, U_TANH, U_EXP, U_LOG, U_ABS, U_SQRT, U_SQUARE } UnaryKind;
static const char *unary_names[] = {"relu", "sigmoid", "tanh", "exp", "log", "abs", "sqrt", "square"};

static void unary_backward(KdCtx *c, KdNode *n) {
  KdTensor *x = n->in[0], *y = n->out;
  if (!x->requires_grad) return;
  UnaryKind k = *(UnaryKind *)n->saved;
  float *gx = kd_grad(c, x);
  const float *gy = y->grad, *xd = x->data, *yd = y->data;
  size_t len = x->numel;
  switch (k) {
  case U_RELU: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += xd[i] > 0.0f ? gy[i] : 0.0f;
    } break;
  case U_SIGMOID: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += gy[i] * yd[i] * (1.0f - yd[i]);
    } break;
  case U_TANH: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += gy[i] * (1.0f - yd[i] * yd[i]);
    } break;
  case U_EXP: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += gy[i] * yd[i];
    } break;
  case U_LOG: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += gy[i] / xd[i];
    } break;
  case U_ABS: {
    KD_PARFOR(len)
    for (size_t i = 0; i < len; i++) gx[i] += xd[i] > 0.0f ? gy[i] : (xd[i] < 0.0f ? -gy[i] : 0.0f);
    } break;
  case U_SQRT: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += yd[i] > 0.0f ? gy[i] * 0.5f / yd[i] : 0.0f;
    } break;
  case U_SQUARE: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += 2.0f * xd[i] * gy[i];
    } break;
  }
}

static KdTensor *unary(KdCtx *c, KdTensor *x, UnaryKind k) {
  if (!x) return NULL;
  KdTensor *y = kd_tensor_like(c, x);
  if (!y) return NULL;
  const float *xd = x->data;
  float *yd = y->data;
  size_t len = x->numel;
  switch (k) {
  case U_RELU: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = xd[i] > 0.0f ? xd[i] : 0.0f;
    } break;
  case U_SIGMOID: {
    /* Split by sign so exp never overflows. */
    KD_PARFOR(len)
    for (size_t i = 0; i < len; i++) {
      float v = xd[i];
      if (v >= 0.0f) {
        yd[i] = 1.0f / (1.0f + expf(-v));
      } else {
        float e = expf(v);
        yd[i] = e / (1.0f + e);
      }
    }
    } break;
  case U_TANH: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = tanhf(xd[i]);
    } break;
  case U_EXP: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = expf(xd[i]);
    } break;
  case U_LOG: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = logf(xd[i]);
    } break;
  case U_ABS: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = fabsf(xd[i]);
    } break;
  case U_SQRT: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = sqrtf(xd[i]);
    } break;
  case U_SQUARE: {
    KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = xd[i] * xd[i];
    } break;
  }
  KdTensor *in[1] = {x};
  UnaryKind *saved = kd_record(c, unary_names[k], y, in, 1, unary_backward, sizeof(UnaryKind));
  if (saved) *saved = k;
  return y;
}

KdTensor *kd_relu(KdCtx *c, KdTensor *x) { return unary(c, x, U_RELU); }
KdTensor *kd_sigmoid(KdCtx *c, KdTensor *x) { return unary(c, x, U_SIGMOID); }
KdTensor *kd_tanh(KdCtx *c, KdTensor *x) { return unary(c, x, U_TANH); }
KdTensor *kd_exp(KdCtx *c, KdTensor *x) { return unary(c, x, U_EXP); }
KdTensor *kd_log(KdCtx *c, KdTensor *x) { return unary(c, x, U_LOG); }
KdTensor *kd_abs(KdCtx *c, KdTensor *x) { return unary(c, x, U_ABS); }
KdTensor *kd_sqrt(KdCtx *c, KdTensor *x) { return unary(c, x, U_SQRT); }
KdTensor *kd_square(KdCtx *c, KdTensor *x) { return unary(c, x, U_SQUARE); }

/* ---------- scalar affine: y = a*x + b ---------- */

typedef struct {
  float a;
} AffineSaved;

static void affine_backward(KdCtx *c, KdNode *n) {
  KdTensor *x = n->in[0];
  if (!x->requires_grad) return;
  float a = ((AffineSaved *)n->saved)->a;
  float *gx = kd_grad(c, x);
  const float *gy = n->out->grad;
  size_t len = x->numel;
  KD_PARFOR(len) for (size_t i = 0; i < len; i++) gx[i] += a * gy[i];
}

static KdTensor *affine(KdCtx *c, KdTensor *x, float a, float b, const char *name) {
  if (!x) return NULL;
  KdTensor *y = kd_tensor_like(c, x);
  if (!y) return NULL;
  size_t len = x->numel;
  const float *xd = x->data;
  float *yd = y->data;
  KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = a * xd[i] + b;
  KdTensor *in[1] = {x};
  AffineSaved *s = kd_record(c, name, y, in, 1, affine_backward, sizeof *s);
  if (s) s->a = a;
  return y;
}

KdTensor *kd_scale(KdCtx *c, KdTensor *x, float s) { return affine(c, x, s, 0.0f, "scale"); }
KdTensor *kd_add_scalar(KdCtx *c, KdTensor *x, float s) { return affine(c, x, 1.0f, s, "add_scalar"); }

KdTensor *kd_detach(KdCtx *c, KdTensor *x) {
  if (!x) return NULL;
  return kd_tensor_copy(c, x);
}

/* ---------- broadcast binary ---------- */

typedef enum { B_ADD, B_SUB, B_MUL, B_DIV } BinKind;
static const char *bin_names[] = {"add", "sub", "mul", "div"};

typedef struct {
  BinKind kind;
  int oshape[4];
  size_t astr[4], bstr[4]; /* strides in the output's 4-D index space; 0 where broadcast */
  int same;                /* a, b, out all the same shape */
} BinSaved;

static void strides4(const KdTensor *t, size_t *str) {
  int s[4];
  for (int d = 0; d < 4; d++) s[d] = kd_dim4(t, d);
  size_t acc = 1;
  for (int d = 3; d >= 0; d--) {
    str[d] = s[d] == 1 ? 0 : acc;
    acc *= (size_t)s[d];
  }
}

static inline float bin_apply(BinKind k, float a, float b) {
  switch (k) {
  case B_ADD: return a + b;
  case B_SUB: return a - b;
  case B_MUL: return a * b;
  default: return a / b;
  }
}

static void bin_backward(KdCtx *c, KdNode *n) {
  BinSaved *s = n->saved;
  KdTensor *a = n->in[0], *b = n->in[1];
  const float *gy = n->out->grad, *ad = a->data, *bd = b->data;
  float *ga = a->requires_grad ? kd_grad(c, a) : NULL;
  float *gb = b->requires_grad ? kd_grad(c, b) : NULL;
  BinKind k = s->kind;
  if (s->same) {
    size_t len = n->out->numel;
    KD_PARFOR(len)
    for (size_t i = 0; i < len; i++) {
      float g = gy[i];
      switch (k) {
      case B_ADD:
        if (ga) ga[i] += g;
        if (gb) gb[i] += g;
        break;
      case B_SUB:
        if (ga) ga[i] += g;
        if (gb) gb[i] -= g;
        break;
      case B_MUL:
        if (ga) ga[i] += g * bd[i];
        if (gb) gb[i] += g * ad[i];
        break;
      case B_DIV:
        if (ga) ga[i] += g / bd[i];
        if (gb) gb[i] -= g * ad[i] / (bd[i] * bd[i]);
        break;
      }
    }
    return;
  }
  /* Broadcast: reduce into the (smaller) input grads; serial, since several
   * outputs land on one input element. */
  const int *o = s->oshape;
  size_t oi = 0;
  for (int i0 = 0; i0 < o[0]; i0++)
    for (int i1 = 0; i1 < o[1]; i1++)
      for (int i2 = 0; i2 < o[2]; i2++) {
        size_t ab = i0 * s->astr[0] + i1 * s->astr[1] + i2 * s->astr[2];
        size_t bb = i0 * s->bstr[0] + i1 * s->bstr[1] + i2 * s->bstr[2];
        for (int i3 = 0; i3 < o[3]; i3++, oi++) {
          size_t ia = ab + i3 * s->astr[3], ib = bb + i3 * s->bstr[3];
          float g = gy[oi];
          switch (k) {
          case B_ADD:
            if (ga) ga[ia] += g;
            if (gb) gb[ib] += g;
            break;
          case B_SUB:
            if (ga) ga[ia] += g;
            if (gb) gb[ib] -= g;
            break;
          case B_MUL:
            if (ga) ga[ia] += g * bd[ib];
            if (gb) gb[ib] += g * ad[ia];
            break;
          case B_DIV:
            if (ga) ga[ia] += g / bd[ib];
            if (gb) gb[ib] -= g * ad[ia] / (bd[ib] * bd[ib]);
            break;
          }
        }
      }
}

static KdTensor *binary(KdCtx *c, KdTensor *a, KdTensor *b, BinKind k) {
  if (!a || !b) return NULL;
  /* Element by element in either layout; broadcasting and mixed layouts on NCHW. */
  int blocked = a->blocked && b->blocked && kd_tensor_same_shape(a, b);
  if (!blocked) a = kd_to_plain(c, a), b = kd_to_plain(c, b);
  if (!a || !b) return NULL;
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  int oshape4[4], oshape[4];
  for (int d = 0; d < 4; d++) {
    int da = kd_dim4(a, d), db = kd_dim4(b, d);
    if (da != db && da != 1 && db != 1) {
      char sa[64], sb[64];
      kd_ctx_fail(c, "%s: shapes %s and %s do not broadcast", bin_names[k], kd_tensor_shape_str(a, sa, 64),
                  kd_tensor_shape_str(b, sb, 64));
      return NULL;
    }
    oshape4[d] = da > db ? da : db;
  }
  for (int d = 0; d < nd; d++) oshape[d] = oshape4[4 - nd + d];
  KdTensor *y = kd_tensor_new(c, nd, oshape);
  if (!y) return NULL;
  y->blocked = blocked;
  int same = a->numel == y->numel && b->numel == y->numel;
  const float *ad = a->data, *bd = b->data;
  float *yd = y->data;
  BinSaved tmp = {.kind = k, .same = same};
  memcpy(tmp.oshape, oshape4, sizeof oshape4);
  strides4(a, tmp.astr);
  strides4(b, tmp.bstr);
  if (same) {
    size_t len = y->numel;
    switch (k) {
    case B_ADD: { KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = ad[i] + bd[i]; } break;
    case B_SUB: { KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = ad[i] - bd[i]; } break;
    case B_MUL: { KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = ad[i] * bd[i]; } break;
    case B_DIV: { KD_PARFOR(len) for (size_t i = 0; i < len; i++) yd[i] = ad[i] / bd[i]; } break;
    }
  } else {
    const int *o = oshape4;
    size_t rows = (size_t)o[0] * o[1] * o[2];
    KD_PRAGMA(omp parallel for schedule(static))
    for (size_t r = 0; r < rows; r++) {
      int i2 = (int)(r % o[2]), i1 = (int)(r / o[2] % o[1]), i0 = (int)(r / ((size_t)o[2] * o[1]));
      size_t ab = i0 * tmp.astr[0] + i1 * tmp.astr[1] + i2 * tmp.astr[2];
      size_t bb = i0 * tmp.bstr[0] + i1 * tmp.bstr[1] + i2 * tmp.bstr[2];
      float *yr = yd + r * o[3];
      for (int i3 = 0; i3 < o[3]; i3++) yr[i3] = bin_apply(k, ad[ab + i3 * tmp.astr[3]], bd[bb + i3 * tmp.bstr[3]]);
    }
  }
  KdTensor *in[2] = {a, b};
  BinSaved *s = kd_record(c, bin_names[k], y, in, 2, bin_backward, sizeof *s);
  if (s) *s = tmp;
  return y;
}

KdTensor *kd_add(KdCtx *c, KdTensor *a, KdTensor *b) { return binary(c, a, b, B_ADD); }
KdTensor *kd_sub(KdCtx *c, KdTensor *a, KdTensor *b) { return binary(c, a, b, B_SUB); }
KdTensor *kd_mul(KdCtx *c, KdTensor *a, KdTensor *b) { return binary(c, a, b, B_MUL); }
KdTensor *kd_div(KdCtx *c, KdTensor *a, KdTensor *b) { return binary(c, a, b, B_DIV); }

/* ---------- fused residual add + relu ---------- */

static void add_relu_backward(KdCtx *c, KdNode *n) {
  KdTensor *a = n->in[0], *b = n->in[1], *y = n->out;
  const float *gy = y->grad, *yd = y->data;
  float *ga = a->requires_grad ? kd_grad(c, a) : NULL;
  float *gb = b->requires_grad ? kd_grad(c, b) : NULL;
  size_t len = y->numel;
  KD_PARFOR(len)
  for (size_t i = 0; i < len; i++) {
    float g = yd[i] > 0.0f ? gy[i] : 0.0f;
    if (ga) ga[i] += g;
    if (gb) gb[i] += g;
  }
}

KdTensor *kd_add_relu(KdCtx *c, KdTensor *a, KdTensor *b) {
  if (!a || !b) return NULL;
  if (!kd_tensor_same_shape(a, b)) {
    char sa[64], sb[64];
    kd_ctx_fail(c, "add_relu: shapes %s and %s differ", kd_tensor_shape_str(a, sa, 64), kd_tensor_shape_str(b, sb, 64));
    return NULL;
  }
  if (a->blocked != b->blocked && (!(a = kd_to_plain(c, a)) || !(b = kd_to_plain(c, b)))) return NULL;
  KdTensor *y = kd_tensor_like(c, a);
  if (!y) return NULL;
  size_t len = y->numel;
  const float *ad = a->data, *bd = b->data;
  float *yd = y->data;
  KD_PARFOR(len)
  for (size_t i = 0; i < len; i++) {
    float v = ad[i] + bd[i];
    yd[i] = v > 0.0f ? v : 0.0f;
  }
  KdTensor *in[2] = {a, b};
  kd_record(c, "add_relu", y, in, 2, add_relu_backward, 0);
  return y;
}
