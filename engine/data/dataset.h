/* A detection data set loaded from COCO json + an image folder: the images'
 * metadata and ground-truth boxes, with classes renumbered 0..C-1. Pixels
 * are not loaded here (see loader.h).
 *
 * Loading rules (each fix is counted and reported in the summary line):
 *  - categories sorted by COCO id get contiguous indices 0..C-1; the map
 *    back to COCO ids is kept for writing results;
 *  - images without annotations are kept (they teach "background");
 *  - iscrowd=1 boxes are kept with crowd=1: ignore regions for assignment
 *    and evaluation, never positives;
 *  - boxes are clipped to the image; boxes with zero or negative size (after
 *    clipping) are dropped;
 *  - everything else that is wrong is an error naming the file, the json
 *    path (e.g. annotations[12].bbox) and what was expected: malformed json,
 *    wrong types, a bbox that is not 4 numbers, unknown category or image
 *    ids, duplicate ids, width/height outside 1..KD_DATASET_MAX_SIDE, file
 *    names that are empty, not UTF-8, absolute or contain "..", and (when an
 *    image folder is given) image files that do not exist — except when
 *    opened for evaluation (kd_dataset_open_eval), where they are counted. */
#ifndef KD_DATASET_H
#define KD_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/progress.h"

#define KD_DATASET_MAX_SIDE 16384

typedef struct KdDataset KdDataset;

/* One image's record. Pointers stay valid until kd_dataset_free. Boxes are
 * x1,y1,x2,y2 in original pixels (float, x2 > x1, y2 > y1). */
typedef struct KdDatasetImage {
  int64_t id;            /* COCO image id */
  const char *file_name; /* as in the json, relative to the image folder */
  int width, height;     /* as declared in the json */
  int n_boxes;
  const float *boxes;    /* [n_boxes * 4] */
  const int *labels;     /* [n_boxes] contiguous class index */
  const uint8_t *crowd;  /* [n_boxes] 1 = iscrowd region */
  const float *areas;    /* [n_boxes] the json "area" (w*h if absent) */
} KdDatasetImage;

/* What loading found and fixed. */
typedef struct KdDatasetStats {
  long images, images_without_boxes;
  long boxes, crowd_boxes;
  long clipped; /* boxes that reached outside the image */
  long dropped; /* boxes with zero/negative size, dropped */
  long missing_files; /* image files that do not exist (kd_dataset_open_eval only) */
} KdDatasetStats;

/* Loads annotations_json. image_dir is where file_names resolve; when it is
 * NULL the files are not checked (and kd_dataset_image_path fails). */
int kd_dataset_open(const char *annotations_json, const char *image_dir, KdDataset **out,
                    KdError *err);
/* The kdscope layout: DIR/annotations/instances_<split>.json and
 * DIR/images/<split>/; split is "train" or "val" (any name works). */
int kd_dataset_open_dir(const char *data_dir, const char *split, KdDataset **out, KdError *err);
/* The same for evaluation: image files that do not exist are not an error
 * (unless none exists). The loader leaves each out, naming it, and the
 * evaluation keeps its ground truth, so a lost file lowers recall instead
 * of stopping the run or vanishing from the numbers. */
int kd_dataset_open_eval(const char *data_dir, const char *split, KdDataset **out, KdError *err);
/* Parses json text already in memory; name is used in messages. Used by
 * the fuzzer and by tests. */
int kd_dataset_parse(const char *json, size_t len, const char *name, const char *image_dir,
                     KdDataset **out, KdError *err);
void kd_dataset_free(KdDataset *ds);

int kd_dataset_num_images(const KdDataset *ds);
int kd_dataset_num_classes(const KdDataset *ds);
const char *kd_dataset_class_name(const KdDataset *ds, int cls);
int64_t kd_dataset_class_coco_id(const KdDataset *ds, int cls);
/* Contiguous index of a COCO category id, -1 if unknown. */
int kd_dataset_class_index(const KdDataset *ds, int64_t coco_id);
/* Index (0..n-1) of a COCO image id, -1 if unknown. */
int kd_dataset_image_index(const KdDataset *ds, int64_t image_id);
/* i in 0..num_images-1; returns a zeroed record for a bad i. */
KdDatasetImage kd_dataset_image(const KdDataset *ds, int i);
/* image_dir/file_name into buf; -1 if it does not fit or there is no dir. */
int kd_dataset_image_path(const KdDataset *ds, int i, char *buf, size_t len);
const char *kd_dataset_image_dir(const KdDataset *ds);   /* NULL if none */
const char *kd_dataset_json_path(const KdDataset *ds);
KdDatasetStats kd_dataset_stats(const KdDataset *ds);
/* One line, e.g. "instances_val.json: 500 images (3 without boxes), 1742
 * boxes (0 crowd) in 10 classes; fixed: 2 boxes clipped, 1 dropped"; with
 * ", 2 image files missing" after the classes when some are. */
const char *kd_dataset_summary(const KdDataset *ds);
/* The held-out split of a training set (data.holdout): n_holdout images
 * chosen by a hash of their COCO id (the same split for every seed and
 * run). Keeps those (keep_holdout = 1: the evaluation set for choosing
 * weights without touching val) or the rest (0: what training sees), in
 * json order; the counts in stats and summary follow. */
int kd_dataset_holdout(KdDataset *ds, int n_holdout, int keep_holdout, KdError *err);

#endif
