/* COCO bounding-box evaluation, as pycocotools' COCOeval (iouType 'bbox',
 * useCats 1) defines it: per image and category, detections sorted by score
 * (stable) and cut at 100, greedy matching at IoU thresholds .50:.05:.95 to
 * the best-IoU unmatched GT (non-ignored GTs first; a crowd GT matches any
 * number of detections with IoU = intersection / detection area; a
 * detection matched to an ignored GT is ignored), area ranges all / small /
 * medium / large on the GT's area field (and on w*h of an unmatched
 * detection), 101-point interpolated precision, recall at 1/10/100
 * detections, categories without non-ignored GT left out of the means.
 *
 * Images are those of the ground-truth set (an image with detections but no
 * GT still counts its false positives); categories are contiguous indices
 * 0..K-1 (K = every category of the data set, with or without GT). */
#ifndef KD_DET_COCOEVAL_H
#define KD_DET_COCOEVAL_H

#include <stdint.h>

#include "core/error.h"

typedef struct KdCocoGt {
  int64_t image_id;
  int category;   /* 0..K-1 */
  double bbox[4]; /* x, y, w, h */
  double area;    /* the annotation's area field (segment area in COCO) */
  int iscrowd;
} KdCocoGt;

typedef struct KdCocoDet {
  int64_t image_id;
  int category;
  double bbox[4]; /* x, y, w, h */
  double score;
} KdCocoDet;

enum {
  KD_COCO_AP, KD_COCO_AP50, KD_COCO_AP75, KD_COCO_APS, KD_COCO_APM, KD_COCO_APL,
  KD_COCO_AR1, KD_COCO_AR10, KD_COCO_AR100, KD_COCO_ARS, KD_COCO_ARM, KD_COCO_ARL,
  KD_COCO_NSTATS
};
/* "AP", "AP50", ... for logs and CSV headers. */
extern const char *const kd_coco_stat_names[KD_COCO_NSTATS];

/* image_ids: the n_images images of the evaluation (unique, any order).
 * Every GT and detection must name one of them and a category in
 * 0..n_categories-1 (pycocotools refuses results on unknown images too).
 * stats: [12] out, -1 where undefined (no GT at all). cat_ap: [n_categories]
 * out or NULL: AP@[.5:.95] (all areas, 100 dets) per category, -1 without
 * GT. Categories run in parallel. */
int kd_coco_eval(const int64_t *image_ids, int n_images, int n_categories, const KdCocoGt *gt, int n_gt,
                 const KdCocoDet *dt, int n_dt, double *stats, double *cat_ap, KdError *err);

#endif
