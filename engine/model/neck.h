/* The FPN neck over a backbone's C2..C5, as torchvision's
 * FeaturePyramidNetwork: a 1x1 lateral per used stage, nearest top-down
 * upsampling + add, a 3x3 output conv; first level P2 or P3; extra levels
 * P6 (and P7) as torchvision's extra blocks. Registered as
 * "backbone.fpn.*" (inner_blocks.i, layer_blocks.i, extra_blocks.p6/p7).
 * It builds the detector's level table. */
#ifndef KD_NECK_H
#define KD_NECK_H

#include "model/backbone.h"
#include "model/levels.h"

typedef enum {
  KD_EXTRA_P6P7_P5 = 0, /* LastLevelP6P7 on P5: 3x3/2 conv, ReLU, 3x3/2 conv (RetinaNet) */
  KD_EXTRA_P6P7_C5 = 1, /* the same on C5 (RetinaNet v2: LastLevelP6P7(2048, 256)) */
  KD_EXTRA_MAXPOOL = 2, /* LastLevelMaxPool: P6 = P5 subsampled (1x1/2 max pool), no parameters */
} KdExtraKind;

typedef struct KdNeckCfg {
  int channels;      /* width of every output level */
  int first_level;   /* 3: P3..P5 from C3..C5; 2: P2..P5 from C2..C5 */
  int extra_levels;  /* 0; 1: + P6; 2: + P6, P7 (not with max pool) */
  KdExtraKind extra;
} KdNeckCfg;

typedef struct KdNeck KdNeck;

int kd_neck_cfg_check(const KdNeckCfg *cfg, KdError *err);
KdNeck *kd_neck_new(const KdNeckCfg *cfg, const KdBackbone *bb, KdParams *p, KdError *err);
void kd_neck_free(KdNeck *n);
/* torchvision's init: Kaiming-uniform (a = 1) weights, zero bias. */
void kd_neck_init(KdNeck *n, KdRng *r);
const KdLevels *kd_neck_levels(const KdNeck *n);
/* c[4] = C2..C5 -> feat[levels]. */
void kd_neck_forward(const KdNeck *n, KdCtx *c, KdTensor *const *cfeat, KdTensor **feat);
/* Copies src's weights into dst level by level where the strides agree
 * and the shapes match (init_from_teacher); returns the tensors copied. */
int kd_neck_inherit(KdNeck *dst, const KdNeck *src);
/* hw[8]: C2..C5 sizes -> FLOPs; lhw[2*levels] receives the level sizes. */
double kd_neck_flops(const KdNeck *n, int batch, const int *hw, int *lhw);

#endif
