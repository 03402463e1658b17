/* Anchors on a set of levels and the dense assignment of a batch to them:
 * the anchor/target pipeline of an anchor-based head, in one place (the
 * RetinaNet head trains and decodes with it, `kdscope loss` rebuilds the
 * same targets). Anchors are generated for the level sizes of the latest
 * call and kept until the sizes change. One thread at a time. */
#ifndef KD_DET_ASSIGNER_H
#define KD_DET_ASSIGNER_H

#include "core/tensor.h"
#include "detect/anchors.h"
#include "detect/assign.h"
#include "detect/boxcoder.h"
#include "detect/targets.h"

/* A batch's dense assignment, in the flat anchor order of anchors.h. */
typedef struct KdDenseAssign {
  int A, K, A_total;          /* anchors per location, classes, anchors per image */
  const float *anchors;       /* [A_total, 4] */
  const int *target_cls;      /* [N*A_total]: class (positive), KD_MATCH_NEG, KD_MATCH_IGNORE */
  const float *target_deltas; /* [N*A_total*4] encoded matched GT (0 where not positive) */
  const float *target_boxes;  /* [N*A_total*4] matched GT box (0 where not positive) */
  const int *match_gt;        /* [N*A_total]: index of the matched GT in its image (positive),
                                 KD_MATCH_NEG, KD_MATCH_IGNORE; NULL when not made */
  int num_pos;
} KdDenseAssign;

typedef struct KdAssigner KdAssigner;

/* anchors: shapes and the strides of the levels (nlevels, strides set). */
KdAssigner *kd_assigner_new(const KdAnchorCfg *anchors, const KdAssignCfg *assign, KdError *err);
void kd_assigner_free(KdAssigner *a);
const KdAnchorCfg *kd_assigner_anchor_cfg(const KdAssigner *a);
const KdBoxCoder *kd_assigner_coder(const KdAssigner *a);
/* Anchors for level sizes hw [2*nlevels] (h0, w0, h1, ...); *total gets
 * A_total. Valid until the next call with other sizes. */
const float *kd_assigner_anchors(KdAssigner *a, const int *hw, int *total, KdError *err);
/* Assignment + box coding of n images with K classes; the target arrays
 * come from c's arena (valid until it is reset). */
int kd_assigner_targets(KdAssigner *a, KdCtx *c, const int *hw, const KdGtImage *gt, int n, int K, KdDenseAssign *out,
                        KdError *err);

#endif
