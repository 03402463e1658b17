/* Shared by the evaluation tests: a small fashion-det set at the shipped
 * teacher's input size, two of its val images damaged (one file's bytes
 * overwritten, one deleted), and the reference an evaluation of the
 * damaged set must match: the intact set's detections less those of the
 * two images, evaluated over the ground truth of every image.
 * Header-only (static functions). */
#ifndef KD_TEST_EVAL_FIXTURE_H
#define KD_TEST_EVAL_FIXTURE_H

#include "detect/cocoeval.h"
#include "run_fixture.h"

#define EVAL_VAL 16
#define EVAL_CORRUPT 2 /* val image index whose first bytes are overwritten */
#define EVAL_DELETED 9 /* val image index whose file is deleted */

/* 8 train + EVAL_VAL val images at 128 px into dir/data. */
static inline int eval_fixture_data(const char *dir, char *data, size_t len) {
  return fixture_build(dir, data, len, 8, EVAL_VAL, 128, 7);
}

/* Damages the two val images of ds (opened on data/images/val); their
 * paths into corrupt and deleted. */
static inline int eval_damage(const KdDataset *ds, char *corrupt, char *deleted, size_t len) {
  if (kd_dataset_image_path(ds, EVAL_CORRUPT, corrupt, len) || kd_dataset_image_path(ds, EVAL_DELETED, deleted, len)) return -1;
  FILE *f = fopen(corrupt, "r+b");
  if (!f) return -1;
  int bad = fwrite("this is no JPEG!", 1, 16, f) != 16;
  return fclose(f) || bad || unlink(deleted) ? -1 : 0;
}

/* COCO stats of dt over the first n images of ds, without the detections
 * of the damaged images; keep_gt 0 drops those images entirely (what an
 * evaluation that loses them would report). */
static inline int eval_reference(const KdDataset *ds, int n, const KdCocoDet *dt, int ndt, int keep_gt, double *stats) {
  int64_t drop[2] = {kd_dataset_image(ds, EVAL_CORRUPT).id, kd_dataset_image(ds, EVAL_DELETED).id};
  int64_t ids[EVAL_VAL];
  KdCocoGt gt[EVAL_VAL * 8];
  KdCocoDet *kept = malloc(sizeof *kept * (size_t)(ndt + 1));
  int nid = 0, ngt = 0, nkept = 0;
  for (int i = 0; i < n && i < EVAL_VAL; i++) {
    KdDatasetImage im = kd_dataset_image(ds, i);
    if (!keep_gt && (im.id == drop[0] || im.id == drop[1])) continue;
    ids[nid++] = im.id;
    for (int k = 0; k < im.n_boxes && ngt < EVAL_VAL * 8; k++) {
      const float *b = &im.boxes[4 * k];
      gt[ngt++] = (KdCocoGt){.image_id = im.id, .category = im.labels[k], .bbox = {b[0], b[1], b[2] - b[0], b[3] - b[1]},
                             .area = im.areas[k], .iscrowd = im.crowd[k]};
    }
  }
  for (int i = 0; kept && i < ndt; i++)
    if (dt[i].image_id != drop[0] && dt[i].image_id != drop[1]) kept[nkept++] = dt[i];
  KdError err;
  int rc = kept ? kd_coco_eval(ids, nid, kd_dataset_num_classes(ds), gt, ngt, kept, nkept, stats, NULL, &err) : -1;
  if (rc && kept) fprintf(stderr, "reference: %s\n", err.msg);
  free(kept);
  return rc;
}

#endif
