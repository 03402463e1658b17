/* The RoI stage of Faster R-CNN, as torchvision's RoIHeads with a box
 * head and FastRCNNPredictor: multi-scale RoI Align of the proposals,
 * a box head (TwoMLPHead, or FastRCNNConvFCHead's 4 convs + 1 fc), class
 * scores for K+1 classes (index 0 background) and class-specific box
 * deltas; the training sample of RoIs and fastrcnn_loss; and
 * postprocess_detections. Parameters are named as torchvision's
 * ("roi_heads.box_head.fc6.weight", "roi_heads.box_predictor.cls_score.
 * weight", ...). Not here: the RPN and the proposals (the faster_rcnn
 * head kind assembles both).
 *
 * Classes: GT labels and detections use kdscope's 0..K-1; the network's
 * class index is label + 1 (torchvision's, 0 is background). */
#ifndef KD_ROI_HEAD_H
#define KD_ROI_HEAD_H

#include "core/error.h"
#include "core/params.h"
#include "core/rng.h"
#include "detect/postprocess.h"
#include "detect/roi_pool.h"
#include "detect/targets.h"
#include "model/levels.h"

typedef struct KdRoiHeadCfg {
  int num_classes;       /* K foreground classes */
  char box_head[16];     /* "twomlp" (fc6, fc7) or "4conv1fc" */
  int representation;    /* fc width: 1024 */
  int conv_channels;     /* 4conv1fc: 256 */
  int conv_gn;           /* 4conv1fc: GroupNorm(32) after each conv (no conv bias); 0: conv bias, no norm */
  KdRoiPoolCfg pool;     /* 7x7, sampling 2, canonical scale 224, level 4 */
  float fg_iou, bg_iou;  /* 0.5, 0.5: RoIs >= fg_iou positive, < bg_iou background */
  int batch_per_image;   /* 512 RoIs sampled per image */
  float pos_fraction;    /* 0.25 of them positive at most */
  float box_weights[4];  /* 10, 10, 5, 5 */
  float score_thresh;    /* 0.05 */
  float nms_thresh;      /* 0.5 */
  int detections_per_img; /* 100 */
} KdRoiHeadCfg;

void kd_roi_head_cfg_default(KdRoiHeadCfg *cfg);
/* Names the field ("roi.batch_per_image: ...") on a bad value. */
int kd_roi_head_cfg_check(const KdRoiHeadCfg *cfg, KdError *err);

typedef struct KdRoiHead KdRoiHead;

/* lv: the levels the head pools from, in order (torchvision: P2..P5,
 * without the max-pool P6); strides consecutive powers of two. channels:
 * their width. Registers "roi_heads.*" in p. */
KdRoiHead *kd_roi_head_new(const KdRoiHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err);
/* The same with its tensors named "<prefix>.box_head.fc6.weight", ...
 * instead of "roi_heads." (HEAD's assistants in the distillation store). */
KdRoiHead *kd_roi_head_new_at(const KdRoiHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, const char *prefix,
                              KdError *err);
/* After the store is finalized: torchvision's init (nn.Linear defaults;
 * 4conv1fc convs kaiming_normal fan_out, zero bias; GN 1, 0). */
void kd_roi_head_init(KdRoiHead *h, KdRng *r);
void kd_roi_head_free(KdRoiHead *h);
const KdRoiHeadCfg *kd_roi_head_cfg(const KdRoiHead *h);

/* feat: the pooled levels (as lv), N,C,H_l,W_l; rois: [nrois,5] (image
 * index, x1, y1, x2, y2 in input pixels), nrois >= 1, read during the
 * call only. -> cls R,K+1 and box R,4(K+1) on the tape; features (may be
 * NULL) gets the box head's output R,representation (the RoI features).
 * Returns -1 with err (and the ctx error). */
int kd_roi_head_forward(KdRoiHead *h, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdTensor **cls,
                        KdTensor **box, KdTensor **features, KdError *err);
/* The same, and fc (may be NULL) [2] gets the outputs of the box head's
 * first and last Linear layers before their ReLU (twomlp: fc6, fc7;
 * 4conv1fc: its one fc twice): what HEAD's forward hooks on shared_fcs[0]
 * and shared_fcs[-1] record. */
int kd_roi_head_forward_fc(KdRoiHead *h, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdTensor **cls,
                           KdTensor **box, KdTensor **features, KdTensor **fc, KdError *err);

/* A training sample of RoIs for n images, in c's arena. Image i's RoIs
 * follow image i-1's; within an image they keep candidate order
 * (proposals, then GT boxes), as torchvision's torch.where. */
typedef struct KdRoiSample {
  int nrois, num_pos;
  float *rois;    /* [nrois*5] image index, x1, y1, x2, y2 */
  int *labels;    /* [nrois] GT label + 1 for positives, 0 background */
  float *targets; /* [nrois*4] the matched GT encoded on the RoI (box_weights); 0 for background */
  int *matched;   /* [nrois] matched GT index in its image, -1 for background */
  int *cand;      /* [nrois] the RoI's candidate in its image: proposal index, or
                     nprops[image] + j for the image's j-th non-crowd GT box */
  int *count;     /* [n] RoIs of each image */
} KdRoiSample;

/* proposals: image i's nprops[i] boxes (x1, y1, x2, y2) start at
 * proposals + 4*i*stride. Each image's non-crowd GT boxes are appended to
 * its proposals (add_gt_proposals), matched at fg_iou / bg_iou without
 * low-quality matches (kd_assign: crowd boxes are never targets, and
 * background RoIs mostly inside one are not sampled), then up to
 * batch_per_image are drawn with kd_sample_balanced from r, image by
 * image. An image with no GT gives background RoIs only. */
int kd_roi_head_sample(KdRoiHead *h, KdCtx *c, const float *proposals, const int *nprops, int stride, const KdGtImage *gt,
                       int n, KdRng *r, KdRoiSample *out, KdError *err);

/* fastrcnn_loss on the forward of s->rois: cross-entropy averaged over
 * the sampled RoIs, smooth-L1 (beta 1/9, summed) on the 4 deltas of each
 * positive's GT class divided by the number of sampled RoIs. Scalar {1}
 * tensors; with no RoIs (cls, box NULL) both are constant zeros. */
int kd_roi_head_loss(KdRoiHead *h, KdCtx *c, KdTensor *cls, KdTensor *box, const KdRoiSample *s, KdTensor **loss_cls,
                     KdTensor **loss_box, KdError *err);

/* postprocess_detections: softmax scores, per-class boxes decoded on the
 * RoIs and clipped to the image, background dropped, score >
 * score_thresh, boxes under 1e-2 px a side dropped, NMS per class at
 * nms_thresh, the best detections_per_img. cls [nrois*(K+1)], box
 * [nrois*4(K+1)], rois [nrois*5] as in forward (any image order);
 * image_wh [n*2] clip width, height. out: [n*detections_per_img], image
 * i's from out + i*detections_per_img, count[i] of them, by score; labels
 * 0..K-1. Ties in score go to the lower (RoI, class) index. */
int kd_roi_head_decode(KdRoiHead *h, const float *cls, const float *box, const float *rois, int nrois, int n,
                       const float *image_wh, KdDetection *out, int *count, KdError *err);

#endif
