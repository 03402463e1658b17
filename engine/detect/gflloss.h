/* The losses and box coding of a GFL head (Li et al., NeurIPS 2020, as
 * mmdetection's GFLHead writes them), as ops on the engine tape:
 *   - Quality Focal Loss over dense single-anchor class logits,
 *   - the integral (softmax expectation) of a side distribution over
 *     bins 0..R (R = reg_max),
 *   - the distance box coder: a point and (l, t, r, b) to a box,
 *   - Distribution Focal Loss on side distributions,
 *   - 1 - GIoU on aligned boxes (mmdet's bbox_overlaps, eps clamps).
 * Each op computes its value and gradient in one pass (math in double);
 * constant arguments (targets, weights, points) are read during the call
 * only. Errors go to the ctx (sticky) and the op returns NULL. */
#ifndef KD_DET_GFLLOSS_H
#define KD_DET_GFLLOSS_H

#include "core/tensor.h"

/* cls_levels[l]: N, K, H_l, W_l (one anchor per location). target_cls and
 * target_score are indexed n*A_total + offset_l + h*W_l + w: class of a
 * positive (with its quality target score in [0, 1]), KD_MATCH_NEG, or
 * KD_MATCH_IGNORE (no loss). Per logit x with p = sigmoid(x):
 *   the positive's class: BCE(x, s) * |s - p|^beta
 *   every other:          BCE(x, 0) * p^beta
 * summed, divided by normalizer. The modulating factors carry gradient,
 * as in mmdet (they are not detached). */
KdTensor *kd_qfl_loss(KdCtx *c, KdTensor *const *cls_levels, int nlev, const int *target_cls,
                      const float *target_score, float beta, float normalizer);

/* x: M, R+1 -> M: sum_b softmax(x)_b * b (mmdet's Integral). */
KdTensor *kd_integral(KdCtx *c, KdTensor *x);
/* The same for one side's B logits d[0], d[stride], ... read as data (no
 * tape), in double: decode and targets. */
double kd_side_integral(const float *d, size_t stride, int B);

/* d: P, 4 distances (l, t, r, b) from points [P*2] (x, y; constant) ->
 * P, 4 boxes (x - l, y - t, x + r, y + b); mmdet's distance2bbox without
 * max_shape. */
KdTensor *kd_distance2bbox(KdCtx *c, KdTensor *d, const float *points);
/* The inverse for targets: box -> (l, t, r, b) from point, each clamped
 * to [0, max_dis - 0.1] when max_dis > 0 (mmdet's bbox2distance). */
void kd_bbox2distance(const float *point, const float *box, float max_dis, float *d);

/* x: M, R+1 logits; target [M] in [0, R) (bins, fractional); weight [M]
 * or NULL (1). sum_m w_m * (CE(x_m, floor) * (floor + 1 - t) +
 * CE(x_m, floor + 1) * (t - floor)). */
KdTensor *kd_dfl_loss(KdCtx *c, KdTensor *x, const float *target, const float *weight);

/* pred: P, 4 boxes; target [P*4]; weight [P] or NULL (1): sum_p w_p *
 * (1 - GIoU(pred_p, target_p)), GIoU as mmdet's bbox_overlaps(mode='giou',
 * is_aligned=True, eps): union and enclosing area clamped below at eps. */
KdTensor *kd_giou_aligned_loss(KdCtx *c, KdTensor *pred, const float *target, const float *weight, float eps);
/* Its value for one pair (the IoU part as well: iou may be NULL). */
double kd_giou_aligned(const float *p, const float *t, float eps, double *iou);

#endif
