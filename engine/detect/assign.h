/* Anchor-to-ground-truth assignment, RetinaNet style (torchvision's Matcher
 * with allow_low_quality_matches), per image:
 *   best IoU over non-crowd GTs >= pos_iou  -> that GT (ties: lowest index)
 *   best IoU < neg_iou                      -> KD_MATCH_NEG
 *   in between                              -> KD_MATCH_IGNORE
 * then low-quality matches: for each GT, every anchor whose IoU equals that
 * GT's maximum over all anchors becomes positive, matched to the anchor's
 * own best GT (as torchvision). Unlike torchvision, a GT whose maximum IoU
 * is 0 (degenerate, or off every anchor) makes nothing positive.
 * Crowd GTs are never targets; a negative anchor whose intersection with a
 * crowd box covers >= crowd_ioa of the anchor's area is ignored instead.
 *
 * Cost: one pass of A*M IoUs that also records, per GT, the anchors tied
 * at its maximum (a GT with more than 16 such anchors is rescanned, A more
 * IoUs), plus A*C for C crowd boxes; memory O(M). */
#ifndef KD_DET_ASSIGN_H
#define KD_DET_ASSIGN_H

#include "core/error.h"

#define KD_MATCH_NEG (-1)
#define KD_MATCH_IGNORE (-2)

typedef struct KdAssignCfg {
  float pos_iou;   /* 0.5 */
  float neg_iou;   /* 0.4 (<= pos_iou) */
  int low_quality; /* 1: each GT's best anchors are positive */
  float crowd_ioa; /* 0.5; > 1 disables crowd ignoring */
} KdAssignCfg;

void kd_assign_cfg_default(KdAssignCfg *cfg);
int kd_assign_cfg_check(const KdAssignCfg *cfg, KdError *err);

/* anchors: [A,4]; gt: [M,4] x1,y1,x2,y2; crowd: [M] flags or NULL (none).
 * match: [A] out, GT index >= 0, KD_MATCH_NEG or KD_MATCH_IGNORE.
 * M may be 0 (every anchor negative). Returns the number of positives,
 * or -1 with err (bad config). Thread-safe; allocates only when M > 64. */
int kd_assign(const KdAssignCfg *cfg, const float *anchors, int A, const float *gt, const int *crowd, int M,
              int *match, KdError *err);

#endif
