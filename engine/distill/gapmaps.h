/* The methods' loss maps (KdDistillGap): per-cell sums, over channels, of
 * what a feature loss adds up, made from the very tensors the loss used.
 * Plain step tensors N,1,H,W without gradient; NULL in -> NULL out, errors
 * on the ctx (sticky). Methods call them only when the probe asks
 * (KdDistillInputs.maps), so training steps pay nothing. */
#ifndef KD_DISTILL_GAPMAPS_H
#define KD_DISTILL_GAPMAPS_H

#include "core/tensor.h"

/* x, y: N,C,H,W (plain layout); cw: N*C channel weights or NULL (1); pw:
 * npw (0..2) maps of N*H*W values. The per-cell counterpart of
 * kd_sqdist_sums (masks.h):
 *   out[n,p] = (sum_c cw[n,c] (x - y)^2[n,c,p]) * (sum_k coef[k] pw_k[n,p]),
 * npw 0: coef[0] alone in the second factor. */
KdTensor *kd_gapmap_sqdist(KdCtx *c, const KdTensor *x, const KdTensor *y, const KdTensor *cw, KdTensor *const *pw,
                           int npw, const float *coef);

/* t, s: N,C,H,W. CWD's per-cell share of the KL between the spatial
 * softmaxes of each channel: out[n,p] = coef * sum_c P_T (log P_T - log P_S),
 * P[n,c,.] = softmax over the H*W cells of x[n,c,.] / tau. */
KdTensor *kd_gapmap_kl_spatial(KdCtx *c, const KdTensor *t, const KdTensor *s, float tau, float coef);

#endif
