/* Training targets for a batch: assignment + box coding for every image,
 * in the flat anchor order of anchors.h (index n*A_total + anchor). */
#ifndef KD_DET_TARGETS_H
#define KD_DET_TARGETS_H

#include "core/error.h"
#include "detect/assign.h"
#include "detect/boxcoder.h"

/* One image's ground truth (arrays owned by the caller). */
typedef struct KdGtImage {
  const float *boxes; /* [n,4] x1,y1,x2,y2 in network-input pixels */
  const int *labels;  /* [n] contiguous class index 0..K-1 */
  const int *crowd;   /* [n] iscrowd flags, or NULL */
  int n;
} KdGtImage;

/* Fills, for N images and A_total anchors:
 *   target_cls    [N*A_total]   label of the matched GT, KD_MATCH_NEG (-1)
 *                               or KD_MATCH_IGNORE (-2)
 *   target_deltas [N*A_total*4] encoded matched GT (0 where not positive)
 *   target_boxes  [N*A_total*4] matched GT box (0 where not positive), or NULL
 *   matched_gt    [N*A_total]   matched GT index or -1/-2, or NULL
 *   num_pos       total positives over the batch; the loss normalizer is
 *                 max(1, num_pos).
 * Labels of non-crowd boxes must lie in [0, num_classes). Images run in
 * parallel (OpenMP). Returns 0, or -1 with err naming the image and box. */
int kd_build_targets(const KdAssignCfg *acfg, const KdBoxCoder *bc, const float *anchors, int A_total,
                     const KdGtImage *gt, int N, int num_classes, int *target_cls, float *target_deltas,
                     float *target_boxes, int *matched_gt, int *num_pos, KdError *err);

#endif
