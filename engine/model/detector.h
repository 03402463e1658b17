/* A detector: backbone (ResNet) + neck (FPN) + a head kind (head.h),
 * assembled from a config, with parameters named as torchvision's
 * state_dict so a checkpoint maps onto torchvision's model and back. The
 * model carries its level table (strides, names) and owns its anchors and
 * assignment: training, evaluation, probes and `kdscope loss` call its
 * loss and decode rather than rebuilding them. One thread at a time. */
#ifndef KD_DETECTOR_H
#define KD_DETECTOR_H

#include <stdint.h>

#include "core/error.h"
#include "core/params.h"
#include "model/backbone.h"
#include "model/head.h"
#include "model/neck.h"

typedef struct KdModelCfg {
  KdBackboneCfg backbone;
  KdNeckCfg neck;
  KdHeadCfg head;
} KdModelCfg;

/* ResNet-18 width 32, FPN 64 over P3..P5, RetinaNet with 4-conv towers,
 * 10 classes, 9 anchors of size 4 x stride, IoU 0.5 / 0.4 assignment. */
void kd_model_cfg_default(KdModelCfg *cfg);
/* Checks ranges; names the offending setting. */
int kd_model_cfg_check(const KdModelCfg *cfg, KdError *err);

typedef struct KdModel KdModel;

/* Builds and initialises (deterministic for a seed). */
KdModel *kd_model_new(const KdModelCfg *cfg, uint64_t seed, KdError *err);
void kd_model_free(KdModel *m);
const KdModelCfg *kd_model_cfg(const KdModel *m);
KdParams *kd_model_params(KdModel *m);
const KdLevels *kd_model_levels(const KdModel *m);
int kd_model_num_levels(const KdModel *m);
int kd_model_stride(const KdModel *m, int level); /* from the level table */
int kd_model_channels(const KdModel *m);          /* the neck's width */
const KdHeadKind *kd_model_head_kind(const KdModel *m);
void kd_model_head_info(const KdModel *m, KdHeadInfo *out);
/* Forward FLOPs (multiply-adds x2) of convolutions for an input size. */
double kd_model_flops(const KdModel *m, int n, int h, int w);

/* feat, cls and box are NCHW; c and cls_tower may be in the blocked
 * layout (KdTensor.blocked: take kd_to_plain before reading their data). */
typedef struct KdDetOut {
  const KdLevels *levels;           /* the model's table */
  int nlev;
  KdTensor *c[KD_BACKBONE_STAGES];  /* C2..C5 backbone features */
  KdTensor *feat[KD_MAX_LEVELS];    /* neck outputs, N,F,H,W */
  KdHeadOut head;                   /* the head's outputs by name */
} KdDetOut;

/* The per-level tensors of head output `name` ("cls", "box", ...), or NULL. */
KdTensor *const *kd_det_out(const KdDetOut *o, const char *name);

/* images: N,3,H,W. training selects batch statistics in BN (unless the
 * config says eval/frozen). Returns -1 with the ctx error on failure. */
int kd_model_forward(KdModel *m, KdCtx *c, KdTensor *images, int training, KdDetOut *out);
/* The head alone on features given per level of this model (e.g. a
 * teacher's head on adapted student features); fills out's levels, feat
 * and head. */
int kd_model_head_forward(KdModel *m, KdCtx *c, KdTensor *const *feat, KdDetOut *out);
/* The detection loss of a forward's outputs for n images of GT. */
int kd_model_loss(KdModel *m, KdCtx *c, const KdDetOut *o, const KdGtImage *gt, int n, const KdDetLossCfg *lc,
                  KdDetLoss *out, KdError *err);
/* Detections per image (out[n*pc->max_det], count[n]; kd_postprocess). */
int kd_model_decode(KdModel *m, const KdDetOut *o, const KdPostCfg *pc, int n, const float *image_wh, KdDetection *out,
                    int *count, KdError *err);
/* The level a GT box belongs to in this model. */
int kd_model_box_level(const KdModel *m, const float *box);
/* Two-stage heads: the RoI head on RoIs [nrois, 5] (image, x1, y1, x2, y2);
 * an error naming the kind for heads without one. */
int kd_model_roi_forward(KdModel *m, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdHeadOut *out,
                         KdError *err);
/* Initialises dst's neck and head from src (student.init_from_teacher):
 * neck levels paired by stride, head tensors by name when both heads are
 * of one kind; only where shapes agree. Returns the tensors copied. */
int kd_model_inherit(KdModel *dst, const KdModel *src);

#endif
