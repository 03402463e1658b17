/* The region proposal network of Faster R-CNN, as torchvision's
 * RegionProposalNetwork with its RPNHead: per level a shared 3x3 conv +
 * ReLU (conv_depth of them), a 1x1 objectness conv (A channels) and a 1x1
 * delta conv (4A), registered as "rpn.head.conv.<i>.0", "rpn.head.cls_logits",
 * "rpn.head.bbox_pred"; anchors of one size per level and A aspect ratios
 * (AnchorGenerator); proposals (detect/proposals.h) with the train or test
 * counts; its loss on sampled anchors (Matcher fg/bg IoU with low-quality
 * matches, BalancedPositiveNegativeSampler, BCE + smooth-L1 beta 1/9).
 * No RoI head here. */
#ifndef KD_RPN_H
#define KD_RPN_H

#include "detect/anchors.h"
#include "detect/assigner.h"
#include "detect/proposals.h"
#include "model/layers.h"
#include "model/levels.h"

#define KD_RPN_MAX_CONVS 4

/* torchvision's FasterRCNN arguments rpn_* by the same names. */
typedef struct KdRpnCfg {
  int conv_depth;                       /* RPNHead's 3x3 conv + ReLU layers: 1 */
  int nsizes;                           /* one anchor size per level */
  float sizes[KD_ANCHOR_MAX_LEVELS];    /* px: 32, 64, 128, 256, 512 */
  int nratios;
  float ratios[KD_ANCHOR_MAX_RATIOS];   /* h/w: 0.5, 1, 2 */
  int pre_nms_top_n_train, pre_nms_top_n_test;   /* per level: 2000, 1000 */
  int post_nms_top_n_train, post_nms_top_n_test; /* per image: 2000, 1000 */
  float nms_thresh;                     /* 0.7 */
  float min_size;                       /* 1e-3 px */
  float score_thresh;                   /* 0 */
  float fg_iou_thresh, bg_iou_thresh;   /* 0.7, 0.3 */
  int batch_size_per_image;             /* 256 anchors */
  float positive_fraction;              /* 0.5 */
} KdRpnCfg;

/* torchvision's defaults (above). */
void kd_rpn_cfg_default(KdRpnCfg *cfg);
/* Checks ranges, naming the setting ("rpn.nms_thresh: ..."); with lv, also
 * that there is one anchor size per level. */
int kd_rpn_cfg_check(const KdRpnCfg *cfg, const KdLevels *lv, KdError *err);
/* The proposal settings for training (1) or evaluation (0). */
KdProposalCfg kd_rpn_proposal_cfg(const KdRpnCfg *cfg, int training);

typedef struct KdRpn KdRpn;

KdRpn *kd_rpn_new(const KdRpnCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err);
void kd_rpn_free(KdRpn *r);
/* torchvision's init: every conv N(0, 0.01), bias 0. */
void kd_rpn_init(KdRpn *r, KdRng *rng);
int kd_rpn_anchors_per_loc(const KdRpn *r);
const KdAnchorCfg *kd_rpn_anchor_cfg(const KdRpn *r);

/* feat[levels] -> obj[l] N,A,H,W and deltas[l] N,4A,H,W (plain layout). */
void kd_rpn_forward(KdRpn *r, KdCtx *c, KdTensor *const *feat, KdTensor **obj, KdTensor **deltas);

/* A batch's proposals (from c's arena; no gradient). */
typedef struct KdRpnProposals {
  int n, cap;     /* images; slots per image (post_nms_top_n) */
  float *boxes;   /* [n*cap*4]: image i's from i*cap on */
  float *scores;  /* [n*cap] objectness probabilities, by score desc */
  int *count;     /* [n] */
} KdRpnProposals;

/* Proposals from the forward's outputs with the train or test counts;
 * image_wh [2n] clips. */
int kd_rpn_proposals(KdRpn *r, KdCtx *c, KdTensor *const *obj, KdTensor *const *deltas, int training,
                     const float *image_wh, KdRpnProposals *out, KdError *err);

/* The anchors' targets for n images of GT (the Matcher; deltas with the
 * RPN's box coder, weights 1), from c's arena. */
int kd_rpn_targets(KdRpn *r, KdCtx *c, KdTensor *const *obj, const KdGtImage *gt, int n, KdDenseAssign *out,
                   KdError *err);
/* sel [n*A_total] out: each image's batch_size_per_image anchors at
 * positive_fraction, drawn from rng (kd_sample_balanced). Returns the
 * anchors sampled over the batch, or -1. */
int kd_rpn_sample(const KdRpn *r, const KdDenseAssign *t, int n, KdRng *rng, signed char *sel, KdError *err);
/* torchvision's RPN loss on the sampled anchors sel (1 positive, 0
 * negative, -1 not sampled): BCE-with-logits averaged over the sampled
 * anchors, smooth-L1 (beta 1/9) summed over the sampled positives divided
 * by the number sampled (1 when none). */
int kd_rpn_loss(KdRpn *r, KdCtx *c, KdTensor *const *obj, KdTensor *const *deltas, const KdDenseAssign *t,
                const signed char *sel, int n, KdTensor **cls, KdTensor **box, KdError *err);

/* FLOPs of the RPN convs for level sizes lhw [2*levels]. */
double kd_rpn_flops(const KdRpn *r, int n, const int *lhw);

#endif
