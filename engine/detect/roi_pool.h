/* Multi-scale RoI Align: torchvision's MultiScaleRoIAlign with its
 * LevelMapper. A box of area A pools from level
 *   k = floor(k0 + log2(sqrt(A) / s0) + 1e-6), clamped to [k_min, k_max]
 * where level k has stride 2^k (k_min, k_max: the first and last level),
 * s0 the canonical scale and k0 the canonical level. torchvision infers
 * each level's scale from the feature and image sizes; here it is
 * 1/stride from the level table, the same for images that are multiples
 * of the largest stride. RoI Align runs with aligned=False, as there.
 *
 * The defaults (224, 4) suit 800 px inputs: they send every box whose
 * sqrt(area) is under 112 px to P2, which at 128 px inputs is every box,
 * so the canonical scale and level are settings. For 128 px (fashion-det:
 * sqrt(w*h) 4.9..80 px, median 27.9) we would take 56 at level 4: FPN's
 * rule (twice the size, one level up) with every box from 14 px up
 * pooling 3.5..7 cells a side (0.5..1 cell a bin of 7x7) from the coarsest
 * level that still gives that; the default's 14..28 cells a side only
 * boxes over 56 px (9.6%) reach at 128 px, and only on P2. The train
 * boxes then go P2 50.3%, P3 40.2%, P4 9.6% (112: 90.4/9.6/0; 32:
 * 25.2/31.9/39.3, P5 3.5): tools/roi_levels.py, docs/DETECT.md.
 * A degenerate box (zero or negative area) goes to the first level;
 * torchvision takes sqrt of the negative area there (NaN) and pools
 * nothing for it. */
#ifndef KD_DET_ROI_POOL_H
#define KD_DET_ROI_POOL_H

#include "core/error.h"
#include "core/tensor.h"

typedef struct KdRoiPoolCfg {
  int out_size;          /* 7: each RoI pools to out_size x out_size */
  int sampling_ratio;    /* 2; <= 0: adaptive, ceil(RoI size / out_size) */
  float canonical_scale; /* 224 (s0, input pixels) */
  int canonical_level;   /* 4 (k0) */
} KdRoiPoolCfg;

void kd_roi_pool_cfg_default(KdRoiPoolCfg *cfg);
int kd_roi_pool_cfg_check(const KdRoiPoolCfg *cfg, KdError *err);
/* The levels' strides must be powers of two, each twice the one before
 * (the mapper's level index is k - k_min). */
int kd_roi_pool_check_strides(const int *strides, int nlev, KdError *err);

/* Index 0..nlev-1 of the level a box (x1, y1, x2, y2, input pixels)
 * pools from. */
int kd_roi_pool_level(const KdRoiPoolCfg *cfg, const int *strides, int nlev, const float *box);

/* feat[nlev]: N,C,H_l,W_l of strides[nlev]; rois: [nrois,5] (image
 * index, x1, y1, x2, y2 in input pixels), nrois >= 1. -> nrois, C,
 * out_size, out_size in RoI order, on the tape. levels_out [nrois]: each
 * RoI's level index, or NULL. Errors go to the ctx (NULL). */
KdTensor *kd_roi_pool(KdCtx *c, const KdRoiPoolCfg *cfg, KdTensor *const *feat, const int *strides, int nlev,
                      const float *rois, int nrois, int *levels_out);

#endif
