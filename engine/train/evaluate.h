/* COCO evaluation of a detector on a data split: an in-order pass without
 * augmentation, post-processing, boxes mapped back to original pixels, and
 * the twelve COCO numbers. Detections can be kept for a results file. */
#ifndef KD_EVALUATE_H
#define KD_EVALUATE_H

#include "core/config.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "detect/cocoeval.h"
#include "model/detector.h"

typedef struct KdEvalResult {
  double stats[KD_COCO_NSTATS];
  int images;
  KdCocoDet *dets; /* when keep_dets: malloc'd, caller frees */
  int ndets;
  double seconds;
} KdEvalResult;

/* max_images 0 = all. Settings (image size, post-processing, anchors) come
 * from cfg. Returns 0 or -1 with err. */
int kd_evaluate(KdModel *m, const KdConfig *cfg, const KdDataset *ds, int max_images, int keep_dets, KdProgressFn progress,
                void *user, KdEvalResult *res, KdError *err);

#endif
