/* A dense detector: ResNet backbone + FPN neck + RetinaNet head, built
 * from a config, with parameters named as torchvision's state_dict. */
#ifndef KD_DETECTOR_H
#define KD_DETECTOR_H

#include <stdint.h>

#include "core/error.h"
#include "core/params.h"
#include "model/layers.h"

#define KD_MAX_LEVELS 5

typedef struct KdModelCfg {
  int depth;         /* 10, 18, 34, 50 */
  int width;         /* base width; torchvision's resnets use 64 */
  KdBnMode bn;       /* backbone BN: train, eval (running stats), frozen (eval + no grad) */
  int fpn_channels;
  int extra_levels;  /* 0: P3..P5; 1: +P6; 2: +P6,P7 (from P5, as torchvision) */
  int head_convs;    /* convs per tower */
  int head_gn;       /* GroupNorm(32) after each tower conv */
  int num_classes;
  int num_anchors;   /* anchors per location */
  float prior_prob;
} KdModelCfg;

void kd_model_cfg_default(KdModelCfg *cfg);
/* Checks ranges; names the offending field. */
int kd_model_cfg_check(const KdModelCfg *cfg, KdError *err);

typedef struct KdModel KdModel;

/* Builds and initialises (deterministic for a seed). */
KdModel *kd_model_new(const KdModelCfg *cfg, uint64_t seed, KdError *err);
void kd_model_free(KdModel *m);
const KdModelCfg *kd_model_cfg(const KdModel *m);
KdParams *kd_model_params(KdModel *m);
int kd_model_num_levels(const KdModel *m);
int kd_model_stride(const KdModel *m, int level); /* 8, 16, 32, ... */
/* Forward FLOPs (multiply-adds x2) of convolutions for an input size. */
double kd_model_flops(const KdModel *m, int n, int h, int w);

/* feat, cls and box are NCHW; c and cls_tower may be in the blocked
 * layout (KdTensor.blocked: take kd_to_plain before reading their data). */
typedef struct KdDetOut {
  int nlev;
  KdTensor *c[3];                  /* C3..C5 backbone features */
  KdTensor *feat[KD_MAX_LEVELS];   /* P3.. FPN outputs, N,F,H,W */
  KdTensor *cls[KD_MAX_LEVELS];    /* N,A*K,H,W logits */
  KdTensor *box[KD_MAX_LEVELS];    /* N,A*4,H,W deltas */
  KdTensor *cls_tower[KD_MAX_LEVELS]; /* last tower activations (for head-level methods) */
} KdDetOut;

/* images: N,3,H,W. training selects batch statistics in BN (unless the
 * config says eval/frozen). Returns -1 with the ctx error on failure. */
int kd_model_forward(KdModel *m, KdCtx *c, KdTensor *images, int training, KdDetOut *out);

#endif
