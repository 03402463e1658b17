/* Detection losses as ops on the engine tape, over a head's per-level
 * outputs without permuting them:
 *   cls_levels[l]: N, A*K, H_l, W_l   (channel a*K + k)
 *   box_levels[l]: N, A*4, H_l, W_l   (channel a*4 + j)
 * Targets are indexed in the flat anchor order of anchors.h:
 * i = n*A_total + offset_l + (h*W_l + w)*A + a, with A_total over all levels.
 * target_cls[i] is the class for positives, KD_MATCH_NEG (-1) or
 * KD_MATCH_IGNORE (-2) (see targets.h). Each loss returns a scalar {1}
 * tensor = sum / normalizer (usually max(1, positives in the batch)), and
 * backpropagates into every level tensor. Targets are read during the call
 * only. Errors go to the ctx (sticky) and the op returns NULL. */
#ifndef KD_DET_DETLOSS_H
#define KD_DET_DETLOSS_H

#include "core/tensor.h"
#include "detect/boxcoder.h"

#define KD_DET_MAX_LEVELS 8

/* The scalar losses' shared mechanism: the forward writes d(loss)/d(input)
 * into buffers made only when the op will be recorded (zeroed when the loss
 * writes them sparsely), and the backward scales them by the upstream grad. */
int kd_detloss_grads(KdCtx *c, KdTensor *const *in, int nin, int zero, float **g);
KdTensor *kd_detloss_scalar(KdCtx *c, const char *op, KdTensor *const *in, int nin, float **g, double v);

/* Sigmoid focal loss (torchvision.ops.sigmoid_focal_loss, summed) over all
 * K classes of every anchor not ignored; the target is one-hot for
 * positives, all zeros for negatives. alpha < 0 disables the alpha
 * weighting; gamma >= 0. */
KdTensor *kd_focal_loss(KdCtx *c, KdTensor *const *cls_levels, int nlev, int A, const int *target_cls, float alpha,
                        float gamma, float normalizer);

/* Smooth-L1 on the deltas of positive anchors (target_deltas [N*A_total*4]):
 * |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta; beta = 0 is plain L1. */
KdTensor *kd_smooth_l1_loss(KdCtx *c, KdTensor *const *box_levels, int nlev, int A, const float *target_deltas,
                            const int *target_cls, float beta, float normalizer);

/* 1 - GIoU (torchvision.ops.generalized_box_iou_loss, eps 1e-7) between the
 * decoded prediction (anchors [A_total,4] + deltas, box coder bc) and the
 * matched GT box (target_boxes [N*A_total*4]) of positive anchors. */
KdTensor *kd_giou_loss(KdCtx *c, KdTensor *const *box_levels, int nlev, int A, const float *anchors,
                       const float *target_boxes, const int *target_cls, const KdBoxCoder *bc, float normalizer);

#endif
