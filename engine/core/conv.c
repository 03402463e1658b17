/* 2-D convolution. Two paths behind kd_conv2d:
 * - oneDNN (conv_dnnl.c) when built with it and selected (the default);
 * - im2col + one GEMM with the batch folded into the GEMM's N dimension;
 *   1x1 stride-1 convs skip im2col and run one GEMM per image on the NCHW
 *   data directly. Backward: weight grad by GEMM against the saved
 *   columns, input grad by GEMM into columns + col2im. Also the fallback
 *   for any geometry oneDNN has no implementation for.
 *
 * Shapes: x N,Cin,H,W; w Cout,Cin/g,kh,kw; b Cout; y N,Cout,Ho,Wo.
 * Per group: K = Cin/g*kh*kw, P = Ho*Wo, NP = N*P. Columns are laid out as
 * [Cin*kh*kw, NP]: row (ci,ki,kj), column (n,oh,ow). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv_impl.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "core/parallel.h"

static KdConvShape *trace_buf;
static int trace_cap, trace_n;

void kd_conv_trace_enable(KdConvShape *buf, int cap) {
  trace_buf = buf;
  trace_cap = cap;
  trace_n = 0;
}

int kd_conv_trace_disable(void) {
  trace_buf = NULL;
  return trace_n;
}

/* -1 until first read: then KD_CONV from the environment, else the best built. */
static atomic_int backend = -1;

int kd_conv_set_backend(KdConvBackend b) {
#ifndef KD_HAVE_DNNL
  if (b == KD_CONV_DNNL) return -1;
#endif
  atomic_store(&backend, (int)b);
  return 0;
}

KdConvBackend kd_conv_backend(void) {
  int b = atomic_load(&backend);
  if (b >= 0) return (KdConvBackend)b;
  const char *env = getenv("KD_CONV");
  b = KD_CONV_IM2COL;
#ifdef KD_HAVE_DNNL
  if (!env || strcmp(env, "im2col") != 0) b = KD_CONV_DNNL;
#else
  (void)env;
#endif
  atomic_store(&backend, b);
  return (KdConvBackend)b;
}

const char *kd_conv_backend_name(void) { return kd_conv_backend() == KD_CONV_DNNL ? "onednn" : "im2col"; }

typedef struct {
  KdConvGeom g;
  int direct;       /* 1x1, stride 1, no padding, one group: no columns */
  float *col;       /* [Cin*kh*kw, NP], saved for the weight gradient */
  KdDnnlConv *dnnl; /* set: the oneDNN path ran the forward and runs the backward */
  void *dnnl_src;   /* x in backward-weights' layout, kept by the forward (or NULL) */
} ConvSaved;

static void im2col(const KdConvGeom *s, const float *x, float *col) {
  const int rows = s->cin * s->kh * s->kw;
  const size_t P = (size_t)s->ho * s->wo, NP = (size_t)s->n * P;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int r = 0; r < rows; r++) {
    int kj = r % s->kw, ki = r / s->kw % s->kh, ci = r / (s->kw * s->kh);
    int dy = ki * s->dil - s->pad, dx = kj * s->dil - s->pad;
    /* Output columns whose input x lies inside the image: ow in [ow0, ow1). */
    int ow0 = 0, ow1 = s->wo;
    while (ow0 < s->wo && ow0 * s->stride + dx < 0) ow0++;
    while (ow1 > ow0 && (ow1 - 1) * s->stride + dx >= s->w) ow1--;
    for (int n = 0; n < s->n; n++) {
      const float *xp = x + ((size_t)n * s->cin + ci) * s->h * s->w;
      float *dst = col + (size_t)r * NP + (size_t)n * P;
      for (int oh = 0; oh < s->ho; oh++, dst += s->wo) {
        int ih = oh * s->stride + dy;
        if (ih < 0 || ih >= s->h) {
          memset(dst, 0, (size_t)s->wo * sizeof(float));
          continue;
        }
        const float *src = xp + (size_t)ih * s->w + dx;
        for (int ow = 0; ow < ow0; ow++) dst[ow] = 0.0f;
        if (s->stride == 1) {
          memcpy(dst + ow0, src + ow0, (size_t)(ow1 - ow0) * sizeof(float));
        } else {
          for (int ow = ow0; ow < ow1; ow++) dst[ow] = src[ow * s->stride];
        }
        for (int ow = ow1; ow < s->wo; ow++) dst[ow] = 0.0f;
      }
    }
  }
}

/* Accumulates columns back into gx; parallel over (n, ci) so no two threads
 * write the same input plane. */
static void col2im(const KdConvGeom *s, const float *col, float *gx) {
  const size_t P = (size_t)s->ho * s->wo, NP = (size_t)s->n * P;
  const int planes = s->n * s->cin;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int pl = 0; pl < planes; pl++) {
    int n = pl / s->cin, ci = pl % s->cin;
    float *gp = gx + (size_t)pl * s->h * s->w;
    for (int ki = 0; ki < s->kh; ki++)
      for (int kj = 0; kj < s->kw; kj++) {
        int r = (ci * s->kh + ki) * s->kw + kj;
        int dy = ki * s->dil - s->pad, dx = kj * s->dil - s->pad;
        int ow0 = 0, ow1 = s->wo;
        while (ow0 < s->wo && ow0 * s->stride + dx < 0) ow0++;
        while (ow1 > ow0 && (ow1 - 1) * s->stride + dx >= s->w) ow1--;
        const float *src = col + (size_t)r * NP + (size_t)n * P;
        for (int oh = 0; oh < s->ho; oh++, src += s->wo) {
          int ih = oh * s->stride + dy;
          if (ih < 0 || ih >= s->h) continue;
          float *dst = gp + (size_t)ih * s->w + dx;
          if (s->stride == 1) {
            for (int ow = ow0; ow < ow1; ow++) dst[ow] += src[ow];
          } else {
            for (int ow = ow0; ow < ow1; ow++) dst[ow * s->stride] += src[ow];
          }
        }
      }
  }
}

static void conv_backward(KdCtx *c, KdNode *node) {
  ConvSaved *sv = node->saved;
  const KdConvGeom *s = &sv->g;
  KdTensor *x = node->in[0], *w = node->in[1], *b = node->nin > 2 ? node->in[2] : NULL;
  const float *gy = node->out->grad;
  const int cout_g = s->cout / s->groups, cin_g = s->cin / s->groups;
  const int K = cin_g * s->kh * s->kw;
  const size_t P = (size_t)s->ho * s->wo, NP = (size_t)s->n * P;
  float *gw = w->requires_grad ? kd_grad(c, w) : NULL;
  float *gb = b && b->requires_grad ? kd_grad(c, b) : NULL;
#ifdef KD_HAVE_DNNL
  if (sv->dnnl) {
    /* Nothing accumulated in x's grad yet: the primitive may write it. */
    int fresh = x->requires_grad && !x->grad;
    if (fresh) x->grad = kd_ctx_alloc(c, x->numel * sizeof(float));
    float *gx = x->requires_grad ? x->grad : NULL;
    if (!x->requires_grad || gx) kd_dnnl_conv_backward(c, sv->dnnl, x->data, w, gy, sv->dnnl_src, gx, fresh, gw, gb);
    return;
  }
#endif
  float *gx = x->requires_grad ? kd_grad(c, x) : NULL;
  if (gb) {
    for (int n = 0; n < s->n; n++)
      for (int co = 0; co < s->cout; co++) {
        const float *g = gy + ((size_t)n * s->cout + co) * P;
        float acc = 0.0f;
        for (size_t p = 0; p < P; p++) acc += g[p];
        gb[co] += acc;
      }
  }
  if (sv->direct) {
    for (int n = 0; n < s->n; n++) {
      const float *gyn = gy + (size_t)n * s->cout * P;
      if (gw) kd_gemm(0, 1, s->cout, s->cin, (int)P, 1.0f, gyn, (int)P, x->data + (size_t)n * s->cin * P, (int)P, 1.0f, gw, s->cin);
      if (gx) kd_gemm(1, 0, s->cin, (int)P, s->cout, 1.0f, w->data, s->cin, gyn, (int)P, 1.0f, gx + (size_t)n * s->cin * P, (int)P);
    }
    return;
  }
  KdArena *arena = kd_ctx_arena(c);
  KdArenaMark mark = kd_arena_mark(arena);
  /* gy N,Cout,P -> [Cout, NP] so every group's rows are one GEMM operand. */
  float *gyt = kd_ctx_alloc(c, (size_t)s->cout * NP * sizeof(float));
  float *dcol = gx ? kd_ctx_alloc(c, (size_t)s->cin * s->kh * s->kw * NP * sizeof(float)) : NULL;
  if (!gyt || (gx && !dcol)) return;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int co = 0; co < s->cout; co++)
    for (int n = 0; n < s->n; n++)
      memcpy(gyt + (size_t)co * NP + (size_t)n * P, gy + ((size_t)n * s->cout + co) * P, P * sizeof(float));
  for (int g = 0; g < s->groups; g++) {
    const float *gy_g = gyt + (size_t)g * cout_g * NP;
    if (gw) kd_gemm(0, 1, cout_g, K, (int)NP, 1.0f, gy_g, (int)NP, sv->col + (size_t)g * K * NP, (int)NP, 1.0f, gw + (size_t)g * cout_g * K, K);
    if (gx) kd_gemm(1, 0, K, (int)NP, cout_g, 1.0f, w->data + (size_t)g * cout_g * K, K, gy_g, (int)NP, 0.0f, dcol + (size_t)g * K * NP, (int)NP);
  }
  if (gx) col2im(s, dcol, gx);
  kd_arena_release(arena, mark);
}

/* im2col path's forward; keeps the columns in sv->col when `keep`. */
static int im2col_forward(KdCtx *c, ConvSaved *sv, const KdTensor *x, const KdTensor *w, const KdTensor *b, KdTensor *y, int keep) {
  const KdConvGeom *s = &sv->g;
  const size_t P = (size_t)s->ho * s->wo, NP = (size_t)s->n * P;
  const int cout_g = s->cout / s->groups, K = s->cin / s->groups * s->kh * s->kw;
  KdArena *arena = kd_ctx_arena(c);
  if (sv->direct) {
    for (int n = 0; n < s->n; n++)
      kd_gemm(0, 0, s->cout, (int)P, s->cin, 1.0f, w->data, s->cin, x->data + (size_t)n * s->cin * P, (int)P, 0.0f, y->data + (size_t)n * s->cout * P, (int)P);
    if (b) {
      KD_PRAGMA(omp parallel for schedule(static))
      for (int nc = 0; nc < s->n * s->cout; nc++) {
        float bv = b->data[nc % s->cout], *yp = y->data + (size_t)nc * P;
        for (size_t p = 0; p < P; p++) yp[p] += bv;
      }
    }
    return 0;
  }
  /* Columns are kept for backward; when not recording they are scratch. */
  KdArenaMark mark = kd_arena_mark(arena);
  float *col = kd_ctx_alloc(c, (size_t)s->cin * s->kh * s->kw * NP * sizeof(float));
  if (!col) return -1;
  KdArenaMark after_col = kd_arena_mark(arena);
  float *yt = kd_ctx_alloc(c, (size_t)s->cout * NP * sizeof(float));
  if (!yt) return -1;
  im2col(s, x->data, col);
  for (int g = 0; g < s->groups; g++)
    kd_gemm(0, 0, cout_g, (int)NP, K, 1.0f, w->data + (size_t)g * cout_g * K, K, col + (size_t)g * K * NP, (int)NP, 0.0f, yt + (size_t)g * cout_g * NP, (int)NP);
  KD_PRAGMA(omp parallel for schedule(static))
  for (int nc = 0; nc < s->n * s->cout; nc++) {
    int n = nc / s->cout, co = nc % s->cout;
    const float *src = yt + (size_t)co * NP + (size_t)n * P;
    float *dst = y->data + (size_t)nc * P;
    float bv = b ? b->data[co] : 0.0f;
    for (size_t p = 0; p < P; p++) dst[p] = src[p] + bv;
  }
  kd_arena_release(arena, keep ? after_col : mark);
  sv->col = keep ? col : NULL;
  return 0;
}

KdTensor *kd_conv2d(KdCtx *c, KdTensor *x, KdTensor *w, KdTensor *b, KdConvCfg cfg) {
  if (!x || !w) return NULL;
  ConvSaved sv = {0};
  KdConvGeom *s = &sv.g;
  s->stride = cfg.stride > 0 ? cfg.stride : 1;
  s->dil = cfg.dilation > 0 ? cfg.dilation : 1;
  s->groups = cfg.groups > 0 ? cfg.groups : 1;
  s->pad = cfg.pad;
  s->bias = b != NULL;
  s->x_blocked = x->blocked;
  char sx[64], sw[64];
  if (x->ndim != 4 || w->ndim != 4 || s->pad < 0) {
    kd_ctx_fail(c, "conv2d: need 4-D input and weight, got %s and %s", kd_tensor_shape_str(x, sx, 64), kd_tensor_shape_str(w, sw, 64));
    return NULL;
  }
  s->n = x->shape[0], s->cin = x->shape[1], s->h = x->shape[2], s->w = x->shape[3];
  s->cout = w->shape[0], s->kh = w->shape[2], s->kw = w->shape[3];
  if (s->cin % s->groups || s->cout % s->groups || w->shape[1] != s->cin / s->groups) {
    kd_ctx_fail(c, "conv2d: input %s does not match weight %s with %d groups", kd_tensor_shape_str(x, sx, 64), kd_tensor_shape_str(w, sw, 64), s->groups);
    return NULL;
  }
  if (b && (int)b->numel != s->cout) {
    kd_ctx_fail(c, "conv2d: bias has %zu values for %d output channels", b->numel, s->cout);
    return NULL;
  }
  s->ho = (s->h + 2 * s->pad - s->dil * (s->kh - 1) - 1) / s->stride + 1;
  s->wo = (s->w + 2 * s->pad - s->dil * (s->kw - 1) - 1) / s->stride + 1;
  if (s->ho < 1 || s->wo < 1) {
    kd_ctx_fail(c, "conv2d: input %s too small for a %dx%d kernel", kd_tensor_shape_str(x, sx, 64), s->kh, s->kw);
    return NULL;
  }
  if (trace_buf && trace_n < trace_cap)
    trace_buf[trace_n++] = (KdConvShape){s->n, s->cin, s->h, s->w, s->cout, s->kh, s->stride, s->pad, s->dil, s->groups, b != NULL};
  sv.direct = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0 && s->groups == 1;
  KdTensor *y = kd_tensor4(c, s->n, s->cout, s->ho, s->wo);
  if (!y) return NULL;
  const int grad = kd_ctx_grad_enabled(c);
  const int need_dx = grad && x->requires_grad, need_dw = grad && (w->requires_grad || (b && b->requires_grad));
#ifdef KD_HAVE_DNNL
  s->y_blocked = s->cout % 16 == 0 && (cfg.layout == KD_CONV_BLOCKED || (cfg.layout == KD_CONV_FOLLOW && x->blocked));
  if (kd_conv_backend() == KD_CONV_DNNL && (sv.dnnl = kd_dnnl_conv_get(c, s, need_dx, need_dw))) {
    y->blocked = s->y_blocked != 0;
    if (kd_dnnl_conv_forward(c, sv.dnnl, x->data, w, b ? b->data : NULL, y->data, need_dw ? &sv.dnnl_src : NULL)) return NULL;
  } else
#endif
  {
    /* im2col reads and writes NCHW. */
    if (x->blocked && !(x = kd_to_plain(c, x))) return NULL;
    s->x_blocked = s->y_blocked = 0;
    if (im2col_forward(c, &sv, x, w, b, y, need_dx || need_dw)) return NULL;
  }
  KdTensor *in[3] = {x, w, b};
  ConvSaved *saved = kd_record(c, "conv2d", y, in, b ? 3 : 2, conv_backward, sizeof sv);
  if (saved) *saved = sv;
  return y;
}
