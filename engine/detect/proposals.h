/* Region proposals from an RPN's outputs, as torchvision's
 * RegionProposalNetwork.filter_proposals, per image:
 *   per level, the pre_nms_top_n anchors of highest objectness logit
 *   (ties: lower anchor index first);
 *   decode their deltas (the box coder's clamp of dw/dh included), clip to
 *   the image, drop boxes with a side < min_size, then those whose
 *   sigmoid(objectness) < score_thresh;
 *   NMS at nms_thresh within each level (torchvision's batched_nms keyed by
 *   level), keeping post_nms_top_n by score.
 * Proposals are plain numbers: nothing here is on the tape (torchvision
 * detaches them too). */
#ifndef KD_DET_PROPOSALS_H
#define KD_DET_PROPOSALS_H

#include "core/error.h"
#include "core/tensor.h"
#include "detect/boxcoder.h"

typedef struct KdProposalCfg {
  int pre_nms_top_n;  /* per level and image */
  int post_nms_top_n; /* per image */
  float nms_thresh;   /* 0.7 */
  float min_size;     /* 1e-3 px */
  float score_thresh; /* 0 */
} KdProposalCfg;

/* Checks ranges; what names the settings' prefix in messages ("rpn",
 * "rpn ... test"). */
int kd_proposal_cfg_check(const KdProposalCfg *cfg, const char *what, KdError *err);

/* obj[l]: N,A,H_l,W_l objectness logits; deltas[l]: N,4A,H_l,W_l (channel
 * a*4 + j); anchors: [A_total,4] in the flat order of anchors.h;
 * image_wh [2N]. Out, per image i: boxes [N*post_nms_top_n*4] and scores
 * [N*post_nms_top_n] (the objectness probability) from i*post_nms_top_n
 * on, count[i] of them, by score desc. Scratch comes from c's arena.
 * Returns 0, or -1 with err. */
int kd_proposals(KdCtx *c, const KdProposalCfg *cfg, KdTensor *const *obj, KdTensor *const *deltas, int nlev, int A,
                 const float *anchors, const KdBoxCoder *bc, const float *image_wh, float *boxes, float *scores,
                 int *count, KdError *err);
/* The same, and origin [N*post_nms_top_n] gets each proposal's anchor,
 * flat in the image's anchors (level offset + (y*W + x)*A + a), as its
 * box (NULL: not wanted). HEAD's student proposals remember it. */
int kd_proposals_origin(KdCtx *c, const KdProposalCfg *cfg, KdTensor *const *obj, KdTensor *const *deltas, int nlev, int A,
                        const float *anchors, const KdBoxCoder *bc, const float *image_wh, float *boxes, float *scores,
                        int *count, int *origin, KdError *err);

#endif
