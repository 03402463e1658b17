/* KdDataset accessors, the directory layout and freeing. Parsing lives in
 * coco.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_impl.h"
#include "data/hash.h"

int kd_id_index_cmp(const void *a, const void *b) {
  const KdIdIndex *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return x->index - y->index;
}

int kd_id_index_find(const KdIdIndex *t, int n, int64_t id) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (t[mid].id == id) return t[mid].index;
    if (t[mid].id < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

static int open_dir(const char *data_dir, const char *split, int allow_missing, KdDataset **out, KdError *err) {
  char json[4096], images[4096];
  if (!data_dir || !split) return kd_error(err, "kd_dataset_open_dir: no directory or split given");
  if (snprintf(json, sizeof json, "%s/annotations/instances_%s.json", data_dir, split) >= (int)sizeof json ||
      snprintf(images, sizeof images, "%s/images/%s", data_dir, split) >= (int)sizeof images)
    return kd_error(err, "%s: path too long", data_dir);
  return kd_dataset_open_files(json, images, allow_missing, out, err);
}

int kd_dataset_open_dir(const char *data_dir, const char *split, KdDataset **out, KdError *err) {
  return open_dir(data_dir, split, 0, out, err);
}

int kd_dataset_open_eval(const char *data_dir, const char *split, KdDataset **out, KdError *err) {
  return open_dir(data_dir, split, 1, out, err);
}

void kd_dataset_free(KdDataset *ds) {
  if (!ds) return;
  free(ds->json_path);
  free(ds->image_dir);
  free(ds->names);
  free(ds->images);
  free(ds->image_ids);
  free(ds->class_names);
  free(ds->class_ids);
  free(ds->boxes);
  free(ds->areas);
  free(ds->labels);
  free(ds->crowd);
  free(ds);
}

int kd_dataset_num_images(const KdDataset *ds) { return ds ? ds->n_images : 0; }
int kd_dataset_num_classes(const KdDataset *ds) { return ds ? ds->n_classes : 0; }

const char *kd_dataset_class_name(const KdDataset *ds, int cls) {
  return ds && cls >= 0 && cls < ds->n_classes ? ds->class_names[cls] : NULL;
}

int64_t kd_dataset_class_coco_id(const KdDataset *ds, int cls) {
  return ds && cls >= 0 && cls < ds->n_classes ? ds->class_ids[cls] : -1;
}

int kd_dataset_class_index(const KdDataset *ds, int64_t coco_id) {
  if (!ds) return -1;
  int lo = 0, hi = ds->n_classes - 1; /* class_ids is ascending */
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (ds->class_ids[mid] == coco_id) return mid;
    if (ds->class_ids[mid] < coco_id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

int kd_dataset_image_index(const KdDataset *ds, int64_t image_id) {
  return ds ? kd_id_index_find(ds->image_ids, ds->n_images, image_id) : -1;
}

KdDatasetImage kd_dataset_image(const KdDataset *ds, int i) {
  KdDatasetImage r = {0};
  if (!ds || i < 0 || i >= ds->n_images) return r;
  const KdDsImage *im = &ds->images[i];
  r.id = im->id;
  r.file_name = im->file_name;
  r.width = im->width;
  r.height = im->height;
  r.n_boxes = im->n_boxes;
  r.boxes = ds->boxes + 4 * (size_t)im->box_off;
  r.labels = ds->labels + im->box_off;
  r.crowd = ds->crowd + im->box_off;
  r.areas = ds->areas + im->box_off;
  return r;
}

int kd_dataset_image_path(const KdDataset *ds, int i, char *buf, size_t len) {
  if (!ds || !ds->image_dir || i < 0 || i >= ds->n_images) return -1;
  int n = snprintf(buf, len, "%s/%s", ds->image_dir, ds->images[i].file_name);
  return n < 0 || (size_t)n >= len ? -1 : 0;
}

const char *kd_dataset_image_dir(const KdDataset *ds) { return ds ? ds->image_dir : NULL; }
const char *kd_dataset_json_path(const KdDataset *ds) { return ds ? ds->json_path : NULL; }

KdDatasetStats kd_dataset_stats(const KdDataset *ds) {
  KdDatasetStats s = {0};
  return ds ? ds->stats : s;
}

const char *kd_dataset_summary(const KdDataset *ds) { return ds ? ds->summary : ""; }

/* Rank of an image for the held-out split: a hash of its COCO id only, so
 * the split is the same for every seed, run and json order. */
static int holdout_cmp(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

int kd_dataset_holdout(KdDataset *ds, int n_holdout, int keep_holdout, KdError *err) {
  int n = ds->n_images;
  if (n_holdout < 1 || n_holdout >= n)
    return kd_error(err, "data.holdout: %d images of %s's %d; expected 1..%d (at least one image left to train on)", n_holdout,
                    ds->json_path, n, n - 1);
  uint64_t *rank = malloc(sizeof *rank * 2 * (size_t)n);
  uint8_t *held = calloc((size_t)n, 1);
  if (!rank || !held) {
    free(rank), free(held);
    return kd_error(err, "out of memory");
  }
  for (int i = 0; i < n; i++) rank[2 * i] = kd_mix64((uint64_t)ds->images[i].id ^ 0x686f6c646f7574ULL), rank[2 * i + 1] = (uint64_t)i;
  qsort(rank, (size_t)n, 2 * sizeof *rank, holdout_cmp);
  for (int k = 0; k < n_holdout; k++) held[rank[2 * k + 1]] = 1;
  int m = 0;
  long boxes = 0, empty = 0;
  for (int i = 0; i < n; i++) {
    if (held[i] != !!keep_holdout) continue;
    ds->images[m++] = ds->images[i];
    boxes += ds->images[i].n_boxes, empty += ds->images[i].n_boxes == 0;
  }
  ds->n_images = m;
  for (int i = 0; i < m; i++) ds->image_ids[i] = (KdIdIndex){ds->images[i].id, i};
  qsort(ds->image_ids, (size_t)m, sizeof *ds->image_ids, kd_id_index_cmp);
  ds->stats.images = m, ds->stats.images_without_boxes = empty, ds->stats.boxes = boxes;
  size_t len = strlen(ds->summary);
  snprintf(ds->summary + len, sizeof ds->summary - len, "; %s: %d of %d images (data.holdout=%d)",
           keep_holdout ? "held out" : "training part", m, n, n_holdout);
  free(rank), free(held);
  return 0;
}
