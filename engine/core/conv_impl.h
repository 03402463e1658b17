/* Private to core/conv*.c: a convolution's geometry and the oneDNN path
 * behind kd_conv2d (conv.c decides which path runs). */
#ifndef KD_CONV_IMPL_H
#define KD_CONV_IMPL_H

#include "core/tensor.h"

/* x N,Cin,H,W; w Cout,Cin/groups,kh,kw; y N,Cout,Ho,Wo; dil and stride >= 1.
 * x_blocked / y_blocked: the layout of x (and its grad) and of y. */
typedef struct KdConvGeom {
  int n, cin, h, w, cout, kh, kw, ho, wo;
  int stride, pad, dil, groups, bias;
  int x_blocked, y_blocked;
} KdConvGeom;

/* The primitives of one geometry, cached in the ctx (kd_ctx_conv_cache). */
typedef struct KdDnnlConv KdDnnlConv;

#ifdef KD_HAVE_DNNL
/* Cached primitives for g at the calling thread's OpenMP thread count:
 * the forward, plus backward-data / backward-weights when asked for (the
 * backward needs them later), created on first use. NULL when oneDNN has
 * no implementation for one of them: the caller runs im2col. */
KdDnnlConv *kd_dnnl_conv_get(KdCtx *c, const KdConvGeom *g, int need_dx, int need_dw);
/* y = conv(x, w) + b (b may be NULL); plain NCHW / OIHW buffers. Returns
 * 0, or -1 with the ctx error set. Scratch comes from the ctx's arena.
 * With keep_src, *keep_src gets x in the layout backward-weights reads
 * (arena, until reset) when the two passes share it, else NULL. */
int kd_dnnl_conv_forward(KdCtx *c, KdDnnlConv *p, const float *x, const KdTensor *w, const float *b, float *y, void **keep_src);
/* Accumulates (+=) into each of gx, gw, gb that is non-NULL; gx_fresh:
 * gx is uninitialised and is written, not added to. kept_src is the
 * forward's *keep_src (or NULL). */
int kd_dnnl_conv_backward(KdCtx *c, KdDnnlConv *p, const float *x, const KdTensor *w, const float *gy, void *kept_src, float *gx,
                          int gx_fresh, float *gw, float *gb);
#endif

#endif
