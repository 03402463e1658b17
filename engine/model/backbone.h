/* ResNet backbone in torchvision's layout: 7x7/2 stem + BN + ReLU + 3x3/2
 * max pool, four stages of BasicBlocks (depth 10, 18, 34) or Bottlenecks
 * (50, 101), widths w, 2w, 4w, 8w (x4 for Bottlenecks), a 1x1 projection
 * on shape change. Registered as "backbone.body.*"; gives C2..C5 with
 * their channels and strides. */
#ifndef KD_BACKBONE_H
#define KD_BACKBONE_H

#include "core/error.h"
#include "model/layers.h"

#define KD_BACKBONE_STAGES 4 /* C2..C5 */

typedef struct KdBackboneCfg {
  int depth;   /* 10, 18, 34, 50, 101 */
  int width;   /* base width; torchvision's resnets use 64 */
  KdBnMode bn; /* train (batch statistics), eval (running ones), frozen (eval + no gradient) */
} KdBackboneCfg;

typedef struct KdBackbone KdBackbone;

int kd_backbone_cfg_check(const KdBackboneCfg *cfg, KdError *err);
/* Registers the parameters in p (before kd_params_finalize). */
KdBackbone *kd_backbone_new(const KdBackboneCfg *cfg, KdParams *p, KdError *err);
void kd_backbone_free(KdBackbone *b);
/* After finalize: torchvision's init (Kaiming-normal fan-out convs, BN 1/0);
 * frozen BN also stops the BN affine's gradients. */
void kd_backbone_init(KdBackbone *b, KdRng *r);
/* Stage s = 0..3 (C2..C5): output channels and stride in input pixels. */
int kd_backbone_channels(const KdBackbone *b, int s);
int kd_backbone_stride(const KdBackbone *b, int s);
/* c[4] = C2..C5. training selects batch statistics unless the config says
 * eval/frozen. NULL entries and the ctx error on failure. */
void kd_backbone_forward(const KdBackbone *b, KdCtx *c, KdTensor *images, int training, KdTensor **out);
/* FLOPs of the convolutions for an n x 3 x h x w input; hw[8] receives the
 * (h, w) of C2..C5. */
double kd_backbone_flops(const KdBackbone *b, int n, int h, int w, int *hw);

#endif
