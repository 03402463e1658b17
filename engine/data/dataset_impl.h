/* Internal layout of KdDataset, shared by coco.c (parsing) and dataset.c
 * (accessors). Not part of the public API. */
#ifndef KD_DATASET_IMPL_H
#define KD_DATASET_IMPL_H

#include "data/dataset.h"

typedef struct KdDsImage {
  int64_t id;
  char *file_name; /* points into names */
  int width, height;
  int box_off, n_boxes;
} KdDsImage;

typedef struct KdIdIndex {
  int64_t id;
  int index;
} KdIdIndex;

struct KdDataset {
  char *json_path, *image_dir, *names;
  int n_images, n_classes;
  KdDsImage *images;
  KdIdIndex *image_ids; /* sorted by id, for lookups */
  char **class_names;   /* point into names */
  int64_t *class_ids;   /* contiguous -> COCO, ascending */
  float *boxes, *areas;
  int *labels;
  uint8_t *crowd;
  KdDatasetStats stats;
  char summary[512];
};

/* kd_dataset_open; allow_missing as kd_dataset_open_eval. */
int kd_dataset_open_files(const char *annotations_json, const char *image_dir, int allow_missing, KdDataset **out,
                          KdError *err);

int kd_id_index_cmp(const void *a, const void *b);
/* Finds id in a sorted table; -1 if absent. */
int kd_id_index_find(const KdIdIndex *t, int n, int64_t id);

#endif
