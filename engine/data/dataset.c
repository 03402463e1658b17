/* KdDataset accessors, the directory layout and freeing. Parsing lives in
 * coco.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_impl.h"

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
