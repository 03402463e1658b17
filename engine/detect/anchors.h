/* Dense anchors on FPN levels, RetinaNet style.
 *
 * Per level l with stride s: base size = size_mult * s, scales and aspect
 * ratios (h/w = ratio) give A = nscales * nratios shapes per location,
 * ordered ratio-major then scale (a = r*nscales + k), as torchvision's
 * AnchorGenerator. A location (y, x) is centred at ((x+offset)*s,
 * (y+offset)*s). The flat order of an image's anchors is level-major, then
 * (y, x) row-major, then a: torchvision's (H, W, A) -> HWA order, which is
 * also the order of the head's outputs after permuting (N, A*K, H, W) to
 * (N, H, W, A, K).
 *
 * With torchvision_round (the default) the geometry is exactly that of
 * torchvision's RetinaNet: sizes int(size_mult*s*scale), half-extents
 * rounded to integers, offset 0; so a checkpoint decodes to the same boxes
 * under torchvision.
 *
 * A level may instead have its own base size (level_size[l] > 0, in
 * pixels), as torchvision's AnchorGenerator takes sizes per level
 * (Faster R-CNN: 32, 64, 128, 256, 512): the size is level_size * scale,
 * used as given (no truncation), half-extents rounded as above. */
#ifndef KD_DET_ANCHORS_H
#define KD_DET_ANCHORS_H

#include "core/error.h"

#define KD_ANCHOR_MAX_LEVELS 6
#define KD_ANCHOR_MAX_SCALES 8
#define KD_ANCHOR_MAX_RATIOS 8

typedef struct KdAnchorCfg {
  int nlevels;                          /* 3 (P3..P5) .. 6 (P2..P7) */
  int strides[KD_ANCHOR_MAX_LEVELS];    /* 8, 16, 32, 64, 128 */
  float size_mult;                      /* base size = size_mult * stride; 4 */
  float level_size[KD_ANCHOR_MAX_LEVELS]; /* > 0: this level's base size in px instead */
  int nscales;
  float scales[KD_ANCHOR_MAX_SCALES];   /* 1, 2^(1/3), 2^(2/3) */
  int nratios;
  float ratios[KD_ANCHOR_MAX_RATIOS];   /* h/w: 0.5, 1, 2 */
  float offset;                         /* centre offset in strides; 0 */
  int torchvision_round;                /* 1: round as torchvision does */
} KdAnchorCfg;

/* P3..P5 (strides 8, 16, 32), 4*stride, 3 scales x 3 ratios, offset 0,
 * torchvision rounding. Set nlevels = 5 for P3..P7 (strides are filled). */
void kd_anchor_cfg_default(KdAnchorCfg *cfg);
/* Checks ranges; the message names the field ("anchor.ratios[1]: ..."). */
int kd_anchor_cfg_check(const KdAnchorCfg *cfg, KdError *err);
/* A: anchors per location. */
int kd_anchors_per_loc(const KdAnchorCfg *cfg);
/* A_total for given level sizes (hw: [nlevels*2] as h0, w0, h1, w1, ...). */
int kd_anchors_total(const KdAnchorCfg *cfg, const int *hw);
/* Writes A_total*4 floats (x1, y1, x2, y2) in the order above and, if
 * level_offset is non-NULL, the first anchor index of each level
 * ([nlevels + 1], last = A_total). */
int kd_anchors_generate(const KdAnchorCfg *cfg, const int *hw, float *out, int *level_offset, KdError *err);
/* The base size of level l (level_size[l], else size_mult * stride). */
float kd_anchor_base_size(const KdAnchorCfg *cfg, int l);
/* A comma-separated list of positive numbers ("32,64,128") into out[max]
 * for the setting `key`; returns the count, or -1 with err naming key. */
int kd_anchor_parse_list(const char *key, const char *text, float *out, int max, KdError *err);

#endif
