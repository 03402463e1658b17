/* The shared conv tower of dense heads (RetinaNet, GFL): n 3x3 convs,
 * each followed by GroupNorm(32) (then without conv bias) or not, and a
 * ReLU; normal(0.01) weights. Also the checks every dense head kind makes
 * of its config. Layers only: no head outputs, losses or anchors. */
#ifndef KD_TOWER_H
#define KD_TOWER_H

#include "model/head.h"

#define KD_TOWER_MAX 8

typedef struct KdTower {
  int n, gn;
  KdConv conv[KD_TOWER_MAX];
  KdGn gn_layer[KD_TOWER_MAX];
} KdTower;

/* conv_fmt / gn_fmt: printf formats of the module names with one %d (the
 * conv's index), e.g. "head.cls_convs.%d.conv". */
int kd_tower_add(KdTower *t, KdParams *p, const char *conv_fmt, const char *gn_fmt, int channels, int n, int gn);
void kd_tower_init(KdTower *t, KdRng *r);
KdTensor *kd_tower_fwd(KdCtx *c, const KdTower *t, KdTensor *x);
/* The same, with *first the output of the first conv (after its norm and
 * ReLU; x itself without convs): what PGD's official config distils. */
KdTensor *kd_tower_fwd_first(KdCtx *c, const KdTower *t, KdTensor *x, KdTensor **first);
/* FLOPs on n images of *h x *w (which become the output size). */
double kd_tower_flops(const KdTower *t, int n, int *h, int *w);
/* model.head_convs, model.head_norm, model.num_classes, model.prior_prob. */
int kd_dense_head_cfg_check(const KdHeadCfg *cfg, int channels, KdError *err);

#endif
