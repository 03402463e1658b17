/* What a data set's boxes look like to a detector: their sizes by COCO
 * area range and by side, and how well the model's anchors cover them
 * (the level of each box's best anchor, its IoU, how many anchors reach
 * the positive threshold). Read by `kdscope data-stats` and after
 * `kdscope make-dataset`, to choose anchor sizes from the data. */
#ifndef KD_BOXSTATS_H
#define KD_BOXSTATS_H

#include "data/dataset.h"
#include "data/transform.h"
#include "detect/anchors.h"

#define KD_BOXSTATS_BINS 7 /* sqrt(w*h) in input px: <16, 16-24, 24-32, 32-48, 48-64, 64-96, >=96 */

extern const float kd_box_bin_edges[KD_BOXSTATS_BINS - 1];

typedef struct KdBoxGroup {
  long boxes;
  long positive;                     /* best anchor IoU >= pos_iou */
  long level[KD_ANCHOR_MAX_LEVELS];  /* boxes whose best anchor is on level l */
  double best_iou_sum;               /* sum over boxes of the best anchor IoU */
  double pos_anchors_sum;            /* sum over boxes of anchors with IoU >= pos_iou */
} KdBoxGroup;

typedef struct KdBoxStats {
  long images, crowd;                /* crowd boxes are left out (never targets) */
  KdBoxGroup area[4];                /* all, small (< 32^2), medium (< 96^2), large: the json area, as COCO eval */
  KdBoxGroup bin[KD_BOXSTATS_BINS];  /* by sqrt(w*h) in network-input pixels */
  float side_q[5];                   /* min, p10, p50, p90, max of sqrt(w*h), input px */
  int in_w, in_h;                    /* network input */
} KdBoxStats;

/* anchors: nlevels and strides filled (the model's level table). Boxes go
 * through the image pipeline's resize (img) as in training, without flips. */
int kd_box_stats(const KdDataset *ds, const KdImageCfg *img, const KdAnchorCfg *anchors, float pos_iou, KdBoxStats *out,
                 KdError *err);

#endif
