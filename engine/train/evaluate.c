/* COCO evaluation of a model on a data set: forward, the model's own
 * decode, then kd_coco_eval. It trains nothing and draws nothing. */
#include "train/evaluate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tensor.h"
#include "data/loader.h"
#include "detect/postprocess.h"
#include "train/settings.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kd_evaluate(KdModel *m, const KdConfig *cfg, const KdDataset *ds, int max_images, int keep_dets, KdProgressFn progress,
                void *user, KdEvalResult *res, KdError *err) {
  memset(res, 0, sizeof *res);
  double t0 = now_s();
  KdPostCfg pcfg;
  KdLoaderCfg lcfg;
  kd_loader_cfg_eval(&lcfg);
  lcfg.batch_size = kd_config_int(cfg, "train.batch");
  if (kd_settings_post(cfg, &pcfg, err) || kd_settings_image(cfg, &lcfg.image, err))
    return -1;
  int total = kd_dataset_num_images(ds);
  if (max_images > 0 && max_images < total) total = max_images;
  int rc = -1;
  KdLoader *ld = kd_loader_new(ds, &lcfg, err);
  KdCtx *c = kd_ctx_new(32u << 20);
  int64_t *ids = malloc(sizeof *ids * (size_t)total);
  KdDetection *det = malloc(sizeof *det * (size_t)lcfg.batch_size * pcfg.max_det);
  int *count = malloc(sizeof *count * (size_t)lcfg.batch_size);
  float *wh = malloc(sizeof *wh * 2 * (size_t)lcfg.batch_size);
  size_t dcap = 4096;
  KdCocoDet *dets = malloc(sizeof *dets * dcap);
  KdCocoGt *gts = NULL;
  if (!ld || !c || !ids || !det || !count || !wh || !dets) {
    if (ld) kd_error(err, "out of memory during evaluation");
    goto done;
  }
  kd_ctx_set_grad(c, 0);
  int done_images = 0;
  while (done_images < total) {
    const KdBatch *b;
    if (kd_loader_next(ld, &b, err)) goto done;
    if (!b) break;
    if (b->n == 0) continue; /* every image of the batch failed to decode (warned) */
    kd_ctx_reset(c);
    int shape[4] = {b->n, 3, b->h, b->w};
    KdDetOut out;
    if (kd_model_forward(m, c, kd_tensor_wrap(c, b->images, 4, shape), 0, &out)) {
      kd_error(err, "evaluation forward: %s", kd_ctx_error(c));
      goto done;
    }
    for (int i = 0; i < b->n; i++) wh[2 * i] = (float)b->w, wh[2 * i + 1] = (float)b->h;
    if (kd_model_decode(m, &out, &pcfg, b->n, wh, det, count, err)) goto done;
    for (int i = 0; i < b->n && done_images < total; i++, done_images++) {
      KdDatasetImage im = kd_dataset_image(ds, b->index[i]);
      ids[done_images] = im.id;
      for (int k = 0; k < count[i]; k++) {
        const KdDetection *d = &det[i * pcfg.max_det + k];
        float in[4] = {d->x1, d->y1, d->x2, d->y2}, o[4];
        kd_xform_boxes_to_orig(&b->xform[i], in, o, 1);
        if ((size_t)res->ndets == dcap) {
          KdCocoDet *nd = realloc(dets, sizeof *dets * dcap * 2);
          if (!nd) {
            kd_error(err, "out of memory for detections");
            goto done;
          }
          dets = nd, dcap *= 2;
        }
        dets[res->ndets++] = (KdCocoDet){.image_id = im.id, .category = d->label, .bbox = {o[0], o[1], o[2] - o[0], o[3] - o[1]}, .score = d->score};
      }
    }
    if (progress) progress(user, "evaluating", done_images, total);
  }
  /* Ground truth of the evaluated images. */
  int ngt = 0, cap = 0;
  for (int i = 0; i < done_images; i++) cap += kd_dataset_image(ds, kd_dataset_image_index(ds, ids[i])).n_boxes;
  gts = malloc(sizeof *gts * (size_t)(cap + 1));
  if (!gts) goto done;
  for (int i = 0; i < done_images; i++) {
    KdDatasetImage im = kd_dataset_image(ds, kd_dataset_image_index(ds, ids[i]));
    for (int k = 0; k < im.n_boxes; k++) {
      const float *bx = &im.boxes[4 * k];
      gts[ngt++] = (KdCocoGt){.image_id = im.id, .category = im.labels[k], .bbox = {bx[0], bx[1], bx[2] - bx[0], bx[3] - bx[1]},
                              .area = im.areas[k], .iscrowd = im.crowd[k]};
    }
  }
  if (kd_coco_eval(ids, done_images, kd_dataset_num_classes(ds), gts, ngt, dets, res->ndets, res->stats, NULL, err)) goto done;
  res->images = done_images;
  if (keep_dets) {
    res->dets = dets;
    dets = NULL;
  }
  rc = 0;
done:
  res->seconds = now_s() - t0;
  kd_loader_free(ld);
  kd_ctx_free(c);
  free(ids), free(det), free(count), free(wh), free(dets), free(gts);
  return rc;
}
