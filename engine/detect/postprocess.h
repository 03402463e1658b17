/* From head outputs to detections, as torchvision's RetinaNet
 * postprocess_detections, per image:
 *   per level: scores = sigmoid(logits) over (anchor, class) pairs, keep
 *   score > score_thr, the top topk_per_level by score, decode the deltas
 *   of their anchors, clip to the image;
 *   then class-wise NMS at nms_iou over all levels and keep the best
 *   max_det by score.
 * Ties in score go to the lower flat index (level-major, then (h, w), then
 * anchor, then class), so output is deterministic. */
#ifndef KD_DET_POSTPROCESS_H
#define KD_DET_POSTPROCESS_H

#include <math.h>

#include "core/error.h"
#include "core/tensor.h"
#include "detect/boxcoder.h"

typedef struct KdPostCfg {
  float score_thr;    /* 0.05 */
  int topk_per_level; /* 1000 */
  float nms_iou;      /* 0.5 */
  int max_det;        /* 100 */
} KdPostCfg;

typedef struct KdDetection {
  float x1, y1, x2, y2; /* network-input pixels */
  float score;
  int label; /* contiguous class index */
} KdDetection;

void kd_post_cfg_default(KdPostCfg *cfg);
int kd_post_cfg_check(const KdPostCfg *cfg, KdError *err);

/* cls[l]: N, A*K, H_l, W_l; box[l]: N, A*4, H_l, W_l (only ->data and
 * shapes are read, no tape). anchors: [A_total,4] for these level sizes.
 * image_wh: [N*2] clip width, height per image, or NULL (no clipping).
 * out: [N*max_det]; image n's detections start at out + n*max_det, count[n]
 * of them, sorted by score desc. Images run in parallel. With bc NULL the
 * box levels hold decoded boxes (x1, y1, x2, y2 in input pixels) instead
 * of deltas and anchors is not read (heads that decode on their own: GFL). */
int kd_postprocess(KdTensor *const *cls, KdTensor *const *box, int nlev, int A, const float *anchors,
                   const KdBoxCoder *bc, const KdPostCfg *cfg, const float *image_wh, KdDetection *out, int *count,
                   KdError *err);

/* sigmoid without overflow, in float as torch.sigmoid (scores of the
 * post-processing and of proposals). */
static inline float kd_sigmoidf(float v) {
  if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
  float e = expf(v);
  return e / (1.0f + e);
}

#endif
