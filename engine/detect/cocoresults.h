/* Detections in COCO's results format: conversion from network-input
 * boxes to original-image xywh, and the results JSON file
 * ([{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]). */
#ifndef KD_DET_COCORESULTS_H
#define KD_DET_COCORESULTS_H

#include <stdint.h>

#include "core/error.h"
#include "detect/cocoeval.h"
#include "detect/postprocess.h"

/* Undoes a letterbox: x_orig = (x - pad_x) / scale (same for y), then
 * x1y1x2y2 -> xywh. */
void kd_dets_to_coco(const KdDetection *d, int n, int64_t image_id, float scale, float pad_x, float pad_y,
                     KdCocoDet *out);

/* Writes the results file whole (temp file + rename). cat_ids maps the
 * contiguous category index to the data set's category_id (n_cat entries;
 * NULL writes the index itself). Numbers are printed with 9 significant
 * digits, exact for values that came from float32. */
int kd_coco_write_results(const char *path, const KdCocoDet *dt, int n, const int *cat_ids, int n_cat, KdError *err);
/* The same text in a malloc'd string (NULL with err on failure). */
char *kd_coco_results_json(const KdCocoDet *dt, int n, const int *cat_ids, int n_cat, KdError *err);

#endif
