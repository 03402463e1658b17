/* COCO evaluation of a detector on a data split: an in-order pass without
 * augmentation, post-processing, boxes mapped back to original pixels, and
 * the twelve COCO numbers. Detections can be kept for a results file.
 *
 * An image that fails to load (corrupt, missing) is left out of the pass
 * but not of the evaluation: it counts with no detections, so its ground
 * truth lowers recall and AP exactly as a detector that found nothing
 * there would. The result names every such image and why. */
#ifndef KD_EVALUATE_H
#define KD_EVALUATE_H

#include "core/config.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "detect/cocoeval.h"
#include "model/detector.h"

typedef struct KdEvalResult {
  double stats[KD_COCO_NSTATS];
  int images;          /* in the evaluation (their ground truth counts) = evaluated + left_out */
  int evaluated;       /* of those, images the detector saw */
  int left_out;        /* of those, images that failed to load: no detections */
  KdBadImage *left;    /* [left_out] in dataset order; malloc'd */
  KdCocoDet *dets;     /* when keep_dets: malloc'd */
  int ndets;
  double seconds;
} KdEvalResult;

/* The settings an evaluation reads from cfg (image size, post-processing;
 * the anchors belong to the model, checked when it is made), checked
 * without touching any data. */
int kd_evaluate_check(const KdConfig *cfg, KdError *err);
/* The first max_images images of ds (0 = all). Settings (image size,
 * post-processing) come from cfg; decoding is the model's. Returns 0 or -1 with err;
 * either way, kd_eval_result_free(res) releases what it holds. */
int kd_evaluate(KdModel *m, const KdConfig *cfg, const KdDataset *ds, int max_images, int keep_dets, KdProgressFn progress,
                void *user, KdEvalResult *res, KdError *err);
/* Frees the lists (left, dets); the numbers stay. */
void kd_eval_result_free(KdEvalResult *res);
/* The left-out images as a JSON array, [{"file": path, "image_id": id,
 * "reason": why}, ...], malloc'd; NULL if out of memory. With max_bytes > 0
 * the list stops before the text would pass it; *listed (when not NULL)
 * gets the number of images listed. */
char *kd_eval_left_out_json(const KdDataset *ds, const KdEvalResult *res, size_t max_bytes, int *listed);

#endif
