/* The pieces of global-knowledge distillation's loss (gk.c) that are ops of
 * their own, each with its gradient: the pooled feature of a crop, the
 * prototype-similarity term (use_r2i), and the data-only pieces (cosines
 * to prototypes, the robustness weight, the soft mask). Public for the
 * tests' gradient checks. */
#ifndef KD_DISTILL_GK_OPS_H
#define KD_DISTILL_GK_OPS_H

#include "core/tensor.h"

/* One instance's crop on a level's map: image n, rows r0..r1 and columns
 * c0..c1, both ends included (kd_gk_crop). */
typedef struct KdGkCrop {
  int n, r0, r1, c0, c1;
} KdGkCrop;

/* x: N,C,H,W (plain) -> R,C: the mean of x over each crop. Gradient to x. */
KdTensor *kd_gk_pool(KdCtx *c, KdTensor *x, const KdGkCrop *crops, int R);

/* Cosine of a and b (d floats) over max(|a| |b|, 1e-8), in double. */
double kd_gk_cos(const float *a, const float *b, int d);

/* The projection term of one level: p_s R,C_s (on the tape), protos_s M,C_s
 * (constants), d_t R*M (the teacher's cosines), w R (detached):
 *   mean over i, j of SmoothL1_1(w_i cos(p_s,i, P_s,j) - w_i d_t,ij)
 * ({1}; 0 for R or M = 0). Gradient to p_s. */
KdTensor *kd_gk_r2i(KdCtx *c, KdTensor *ps, const float *protos_s, int M, const float *d_t, const float *w);

/* DeFeat's rasterisation with soft values: on image n's h x w map of
 * `stride` (m: n*h*w floats, zeroed by the caller), box b marks cells
 * [int(y1/s), int(y2/s)) x [int(x1/s), int(x2/s)) clipped to the map with
 * value v, overwriting; a box whose range is empty on an axis marks the
 * single cell (int(y1/s), int(x1/s)) when it lies on the map, keeping the
 * larger of its value and v. */
void kd_gk_mask_box(float *m, int h, int w, int stride, const float *box, float v);

#endif
