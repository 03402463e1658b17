/* The "how much / how far" pieces that feature and logit distillation
 * share: normalisations of a feature map and distances between two maps.
 * All are differentiable ops on the step's tape (sticky ctx errors, NULL in
 * -> NULL out), so a method composes them and gets its gradient for free.
 *
 * Normalisations (x: N,C,H,W):
 *   pearson         per channel over all N*H*W values: (x - mean_c) /
 *                   (std_c + eps), std unbiased (PKD, KD-METHODS §3.1)
 *   spatial softmax per (n, c) over the H*W positions of x/tau (CWD, §7)
 * Distances:
 *   sq_sum          sum of (a - b)^2 over every element
 *   kl              KL(q || p) from log-probabilities over some axes
 *   kl_logits       KL(softmax(t/tau) || softmax(s/tau)) along one axis (fused) */
#ifndef KD_DISTILL_NORMS_H
#define KD_DISTILL_NORMS_H

#include "core/tensor.h"

/* x: N,C,H,W -> N,C,H,W. A fused op: two passes over the data, statistics
 * in double. A constant channel maps to 0 with a gradient through the
 * mean only (the std term's 0/0 is taken as 0). Needs N*H*W >= 2. */
KdTensor *kd_norm_pearson(KdCtx *c, KdTensor *x, float eps);

/* x: N,C,H,W -> N,C,H,W holding softmax / log-softmax over the H*W values
 * of each (n, c) of x / tau (tau > 0). */
KdTensor *kd_norm_spatial_softmax(KdCtx *c, KdTensor *x, float tau);
KdTensor *kd_norm_spatial_log_softmax(KdCtx *c, KdTensor *x, float tau);

/* a, b same shape -> {1}: sum (a - b)^2. */
KdTensor *kd_dist_sq_sum(KdCtx *c, KdTensor *a, KdTensor *b);

/* log_q, log_p same shape -> that shape with the `axes` (mask, bit i = dim
 * i, as kd_sum) reduced to 1: sum_axes exp(log_q) * (log_q - log_p). */
KdTensor *kd_dist_kl(KdCtx *c, KdTensor *log_q, KdTensor *log_p, unsigned axes);

/* t (target, usually the teacher's), s: same shape -> per-row KL as
 * kd_dist_kl of log_softmax(t/tau) and log_softmax(s/tau) along axis.
 * A fused op (no intermediate tensors; gradients to both sides).
 * No tau^2 factor: methods apply their own scaling. */
KdTensor *kd_dist_kl_logits(KdCtx *c, KdTensor *t, KdTensor *s, int axis, float tau);

/* DeFeat's decoupled RoI KL (KD-METHODS §1.5) on class logits t, s (R,K+1),
 * split by labels [R] (0: background, the constant index; > 0 object):
 *   obj = T_obj^2 * mean_{labels > 0}  KL(softmax(t/T_obj) || softmax(s/T_obj))
 *   bg  = T_bg^2  * mean_{labels == 0} KL(softmax(t/T_bg)  || softmax(s/T_bg))
 * each a {1} tensor, 0 for an empty set. -1 with the ctx error. */
int kd_dist_kl_decoupled(KdCtx *c, KdTensor *t, KdTensor *s, const int *labels, float T_obj, float T_bg, KdTensor **obj,
                         KdTensor **bg);

#endif
