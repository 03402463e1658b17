/* COCO evaluation of a model on a data set: forward, the model's own
 * decode, then kd_coco_eval. It trains nothing and draws nothing. */
#include "train/evaluate.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tensor.h"
#include "data/loader.h"
#include "detect/postprocess.h"
#include "train/dist.h"
#include "train/settings.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int eval_settings(const KdConfig *cfg, KdPostCfg *p, KdLoaderCfg *l, KdError *err) {
  kd_loader_cfg_eval(l);
  l->batch_size = kd_config_int(cfg, "train.batch");
  return kd_settings_post(cfg, p, err) || kd_settings_image(cfg, &l->image, err) ? -1 : 0;
}

int kd_evaluate_check(const KdConfig *cfg, KdError *err) {
  KdPostCfg p;
  KdLoaderCfg l;
  return eval_settings(cfg, &p, &l, err);
}

/* Ground truth of the first n images, COCO xywh; *out malloc'd. */
static int gather_gt(const KdDataset *ds, int n, KdCocoGt **out, int *count) {
  int cap = 0, k = 0;
  for (int i = 0; i < n; i++) cap += kd_dataset_image(ds, i).n_boxes;
  KdCocoGt *g = *out = malloc(sizeof *g * (size_t)(cap + 1));
  if (!g) return -1;
  for (int i = 0; i < n; i++) {
    KdDatasetImage im = kd_dataset_image(ds, i);
    for (int j = 0; j < im.n_boxes; j++) {
      const float *bx = &im.boxes[4 * j];
      g[k++] = (KdCocoGt){.image_id = im.id, .category = im.labels[j], .bbox = {bx[0], bx[1], bx[2] - bx[0], bx[3] - bx[1]},
                          .area = im.areas[j], .iscrowd = im.crowd[j]};
    }
  }
  *count = k;
  return 0;
}

/* Appends the batch's failures among the first total images to res->left. */
static int note_left_out(const KdBatch *b, int total, KdEvalResult *res, int *cap) {
  for (int j = 0; j < b->n_bad; j++) {
    if (b->bad[j].index >= total) continue;
    if (res->left_out == *cap) {
      int nc = *cap ? 2 * *cap : 8;
      KdBadImage *nl = realloc(res->left, sizeof *nl * (size_t)nc);
      if (!nl) return -1;
      res->left = nl, *cap = nc;
    }
    res->left[res->left_out++] = b->bad[j];
  }
  return 0;
}

/* Image i's detections (input pixels) into *dets as original-pixel xywh. */
static int keep_dets(const KdDetection *det, int n, const KdXform *xf, int64_t image_id, KdCocoDet **dets, size_t *cap,
                     int *ndets) {
  for (int k = 0; k < n; k++) {
    const KdDetection *d = &det[k];
    float in[4] = {d->x1, d->y1, d->x2, d->y2}, o[4];
    kd_xform_boxes_to_orig(xf, in, o, 1);
    if ((size_t)*ndets == *cap) {
      KdCocoDet *nd = realloc(*dets, sizeof *nd * *cap * 2);
      if (!nd) return -1;
      *dets = nd, *cap *= 2;
    }
    (*dets)[(*ndets)++] = (KdCocoDet){.image_id = image_id, .category = d->label, .bbox = {o[0], o[1], o[2] - o[0], o[3] - o[1]},
                                      .score = d->score};
  }
  return 0;
}

/* Dataset index, then the order gathered in: sorting by it puts a sharded
 * pass's detections (and left-out images) in the order one process makes. */
typedef struct {
  int index, pos;
} OrderKey;
static int by_index(const void *a, const void *b) {
  const OrderKey *x = a, *y = b;
  return x->index != y->index ? (x->index > y->index) - (x->index < y->index) : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Reorders n items of size sz in place by the keys (filled with pos). */
static int reorder(void *items, size_t sz, OrderKey *keys, int n) {
  for (int i = 0; i < n; i++) keys[i].pos = i;
  qsort(keys, (size_t)n, sizeof *keys, by_index);
  if (n < 1) return 0;
  char *tmp = malloc(sz * (size_t)n);
  if (!tmp) return -1;
  for (int i = 0; i < n; i++) memcpy(tmp + sz * (size_t)i, (char *)items + sz * (size_t)keys[i].pos, sz);
  memcpy(items, tmp, sz * (size_t)n);
  free(tmp);
  return 0;
}

/* A sharded pass (a data-parallel run: every rank took every N-th batch):
 * the ranks' detections and left-out images to rank 0, in dataset order. */
static int gather_pass(const KdDataset *ds, KdEvalResult *res, KdCocoDet **dets, KdError *err) {
  void *all = NULL;
  size_t bytes = 0;
  double counts[1] = {res->evaluated};
  kd_dist_sum_f64(counts, 1);
  res->evaluated = (int)counts[0];
  if (kd_dist_gather(*dets, sizeof **dets * (size_t)res->ndets, &all, &bytes, err)) return -1;
  if (kd_dist_rank() == 0) free(*dets), *dets = all, res->ndets = (int)(bytes / sizeof **dets);
  if (kd_dist_gather(res->left, sizeof *res->left * (size_t)res->left_out, &all, &bytes, err)) return -1;
  free(res->left);
  res->left = all, res->left_out = kd_dist_rank() == 0 ? (int)(bytes / sizeof *res->left) : 0;
  if (kd_dist_rank() != 0) return 0;
  int nk = res->ndets > res->left_out ? res->ndets : res->left_out;
  OrderKey *keys = malloc(sizeof *keys * (size_t)(nk ? nk : 1));
  if (!keys) return kd_error(err, "out of memory ordering the gathered detections");
  for (int i = 0; i < res->ndets; i++) keys[i].index = kd_dataset_image_index(ds, (*dets)[i].image_id);
  int bad = reorder(*dets, sizeof **dets, keys, res->ndets);
  for (int i = 0; !bad && i < res->left_out; i++) keys[i].index = res->left[i].index;
  bad = bad || reorder(res->left, sizeof *res->left, keys, res->left_out);
  free(keys);
  return bad ? kd_error(err, "out of memory ordering the gathered detections") : 0;
}

/* This process's pass: every batch, or in a data-parallel run every N-th
 * (rank r takes batches r, r + N, ...). */
/* torchvision's evaluation, image by image: each image's resized content
 * (top-left) padded only up to a multiple of 32, as GeneralizedRCNNTransform
 * batches one image, so the network sees exactly the tensor torchvision's
 * does (a square input's extra padding changes the features near the
 * content's bottom and right edges and adds anchors). */
static int forward_each(KdModel *m, KdCtx *c, const KdBatch *b, const KdPostCfg *pcfg, const float *wh, KdDetection *det,
                        int *count, KdError *err) {
  const size_t plane = (size_t)b->h * b->w;
  for (int i = 0; i < b->n; i++) {
    kd_ctx_reset(c);
    int hp = ((int)wh[2 * i + 1] + 31) / 32 * 32, wp = ((int)wh[2 * i] + 31) / 32 * 32;
    hp = hp < 32 ? 32 : hp > b->h ? b->h : hp, wp = wp < 32 ? 32 : wp > b->w ? b->w : wp;
    KdTensor *x = kd_tensor_new(c, 4, (int[]){1, 3, hp, wp});
    if (!x) return kd_error(err, "out of memory for an evaluation input");
    for (int ch = 0; ch < 3; ch++)
      for (int y = 0; y < hp; y++)
        memcpy(x->data + ((size_t)ch * hp + y) * wp, b->images + (size_t)i * 3 * plane + ch * plane + (size_t)y * b->w,
               (size_t)wp * sizeof(float));
    KdDetOut out;
    if (kd_model_forward(m, c, x, 0, &out)) return kd_error(err, "evaluation forward: %s", kd_ctx_error(c));
    if (kd_model_decode(m, &out, pcfg, 1, wh + 2 * i, det + (size_t)i * pcfg->max_det, count + i, err)) return -1;
  }
  return 0;
}

static int local_pass(KdModel *m, const KdDataset *ds, int total, const KdPostCfg *pcfg, const KdLoaderCfg *lcfg, KdProgressFn progress,
                      void *user, KdEvalResult *res, KdCocoDet **dets, KdError *err) {
  int rc = -1, left_cap = 0, B = lcfg->batch_size;
  size_t dcap = 4096;
  KdLoader *ld = kd_loader_new(ds, lcfg, err);
  KdCtx *c = kd_ctx_new(32u << 20);
  KdDetection *det = malloc(sizeof *det * (size_t)B * pcfg->max_det);
  int *count = malloc(sizeof *count * (size_t)B);
  float *wh = malloc(sizeof *wh * 2 * (size_t)B);
  *dets = malloc(sizeof **dets * dcap);
  if (!ld || !c || !det || !count || !wh || !*dets) {
    if (ld) kd_error(err, "out of memory during evaluation");
    goto done;
  }
  kd_ctx_set_grad(c, 0);
  /* Batch s covers images s*B .. s*B+B-1, less those left out (its `bad` list). */
  for (int covered = 0; covered < total;) {
    const KdBatch *b;
    if (kd_loader_next(ld, &b, err)) goto done;
    if (!b) break;
    covered = (b->step + 1) * B < total ? (int)((b->step + 1) * B) : total;
    if (note_left_out(b, total, res, &left_cap)) {
      kd_error(err, "out of memory for the left-out images");
      goto done;
    }
    if (progress) progress(user, "evaluating", covered, total);
    if (b->n == 0) continue; /* every image of the batch failed to load */
    for (int i = 0; i < b->n; i++) wh[2 * i] = (float)b->w, wh[2 * i + 1] = (float)b->h;
    /* torchvision clips to the resized image, not to the padded input */
    for (int i = 0; lcfg->image.resize == KD_RESIZE_TORCHVISION && i < b->n; i++)
      wh[2 * i] = roundf(b->xform[i].sx * (float)b->xform[i].orig_w), wh[2 * i + 1] = roundf(b->xform[i].sy * (float)b->xform[i].orig_h);
    if (lcfg->image.resize == KD_RESIZE_TORCHVISION) {
      if (forward_each(m, c, b, pcfg, wh, det, count, err)) goto done;
    } else {
      kd_ctx_reset(c);
      int shape[4] = {b->n, 3, b->h, b->w};
      KdDetOut out;
      if (kd_model_forward(m, c, kd_tensor_wrap(c, b->images, 4, shape), 0, &out)) {
        kd_error(err, "evaluation forward: %s", kd_ctx_error(c));
        goto done;
      }
      if (kd_model_decode(m, &out, pcfg, b->n, wh, det, count, err)) goto done;
    }
    for (int i = 0; i < b->n; i++) {
      if (b->index[i] >= total) continue;
      res->evaluated++;
      if (keep_dets(&det[i * pcfg->max_det], count[i], &b->xform[i], kd_dataset_image(ds, b->index[i]).id, dets, &dcap,
                    &res->ndets)) {
        kd_error(err, "out of memory for detections");
        goto done;
      }
    }
  }
  rc = 0;
done:
  kd_loader_free(ld);
  kd_ctx_free(c);
  free(det), free(count), free(wh);
  return rc;
}

int kd_evaluate(KdModel *m, const KdConfig *cfg, const KdDataset *ds, int max_images, int keep, KdProgressFn progress,
                void *user, KdEvalResult *res, KdError *err) {
  memset(res, 0, sizeof *res);
  double t0 = now_s();
  KdPostCfg pcfg;
  KdLoaderCfg lcfg;
  int ranks = kd_dist_size(), rank0 = kd_dist_rank() == 0;
  /* Every rank checks the same config: they fail together here. */
  if (eval_settings(cfg, &pcfg, &lcfg, err)) return -1;
  lcfg.pass_stride = ranks, lcfg.pass_offset = kd_dist_rank();
  int total = kd_dataset_num_images(ds);
  if (max_images > 0 && max_images < total) total = max_images;
  int rc = -1;
  KdCocoDet *dets = NULL;
  KdCocoGt *gts = NULL;
  int64_t *ids = NULL;
  int bad = local_pass(m, ds, total, &pcfg, &lcfg, progress, user, res, &dets, err);
  /* No rank may wait in a collective for one that gave up. */
  if (ranks > 1 && (kd_dist_agree(bad, err) || gather_pass(ds, res, &dets, err))) goto done;
  if (bad) goto done;
  int ngt = 0;
  ids = rank0 ? malloc(sizeof *ids * (size_t)(total ? total : 1)) : NULL;
  /* Every image of the evaluation, loaded or not, with its ground truth. */
  if (rank0 && (!ids || gather_gt(ds, total, &gts, &ngt))) bad = kd_error(err, "out of memory for the ground truth");
  for (int i = 0; rank0 && !bad && i < total; i++) ids[i] = kd_dataset_image(ds, i).id;
  if (rank0 && !bad) bad = kd_coco_eval(ids, total, kd_dataset_num_classes(ds), gts, ngt, dets, res->ndets, res->stats, NULL, err);
  if (ranks > 1) {
    if (kd_dist_agree(bad, err)) goto done;
    kd_dist_bcast(res->stats, sizeof res->stats); /* every rank knows the numbers */
  } else if (bad) {
    goto done;
  }
  res->images = total;
  if (keep && rank0) {
    res->dets = dets;
    dets = NULL;
  }
  rc = 0;
done:
  res->seconds = now_s() - t0;
  free(ids), free(dets), free(gts);
  return rc;
}

void kd_eval_result_free(KdEvalResult *res) {
  free(res->left);
  free(res->dets);
  res->left = NULL, res->dets = NULL;
}

char *kd_eval_left_out_json(const KdDataset *ds, const KdEvalResult *res, size_t max_bytes, int *listed) {
  cJSON *arr = cJSON_CreateArray();
  size_t bytes = 2;
  int i = 0;
  for (; arr && i < res->left_out; i++) {
    const KdBadImage *b = &res->left[i];
    KdDatasetImage im = kd_dataset_image(ds, b->index);
    char path[4096];
    if (kd_dataset_image_path(ds, b->index, path, sizeof path)) snprintf(path, sizeof path, "%s", im.file_name);
    /* Escaping at most doubles a string; the rest is under 64 bytes. */
    bytes += 2 * (strlen(path) + strlen(b->reason)) + 64;
    if (max_bytes && bytes > max_bytes) break;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "file", path) || !cJSON_AddNumberToObject(o, "image_id", (double)im.id) ||
        !cJSON_AddStringToObject(o, "reason", b->reason) || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      cJSON_Delete(arr);
      return NULL;
    }
  }
  if (listed) *listed = i;
  char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
  cJSON_Delete(arr);
  return s;
}
