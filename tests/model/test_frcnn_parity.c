/* Our faster_rcnn kind is torchvision's FasterRCNN: a randomly initialised
 * kdscope model (ResNet-18 width 64, FPN 64 over P2..P5 + the max-pool
 * P6, a TwoMLPHead) saved as safetensors loads into torchvision by name
 * (tests/model/frcnn_parity.py) and gives, in eval mode and to 1e-4 of
 * the peak: the FPN features and the RPN's outputs per level, the test
 * proposals and their scores, the RoI Align features and the predictor's
 * outputs on our proposals, and the final detections; in training, the
 * labels of the anchors and RoIs our loss sampled and its four losses on
 * those samples. Skips (77) without torch/torchvision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/ops.h"
#include "model/detector.h"
#include "parity.h"

#define N 2
#define H 128
#define W 192
#define K 5
#define TOL 1e-4

static KdModelCfg parity_cfg(void) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 18, mc.backbone.width = 64, mc.backbone.bn = KD_BN_EVAL;
  mc.neck = (KdNeckCfg){.channels = 64, .first_level = 2, .extra_levels = 1, .extra = KD_EXTRA_MAXPOOL};
  KdHeadCfg *h = &mc.head;
  snprintf(h->kind, sizeof h->kind, "faster_rcnn");
  h->num_classes = K;
  KdRpnCfg *r = &h->rpn;
  static const float sizes[] = {16, 32, 64, 128, 256};
  memcpy(r->sizes, sizes, sizeof sizes), r->nsizes = 5;
  r->pre_nms_top_n_test = 300, r->post_nms_top_n_test = 100, r->pre_nms_top_n_train = 600, r->post_nms_top_n_train = 200;
  r->batch_size_per_image = 64;
  KdRoiHeadCfg *o = &h->roi;
  o->representation = 128, o->pool.canonical_scale = 112, o->batch_per_image = 64, o->detections_per_img = 50;
  return mc;
}

/* Larger RPN weights than the init, so logits and deltas spread (no ties
 * in the top-n and NMS). */
static void spread_rpn(KdParams *p, KdRng *r) {
  static const struct {
    const char *name;
    float std;
  } w[] = {{"rpn.head.conv.0.0.weight", 0.05f}, {"rpn.head.cls_logits.weight", 0.04f}, {"rpn.head.bbox_pred.weight", 0.03f}};
  for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
    KdTensor *t = kd_params_find(p, w[i].name);
    for (size_t j = 0; t && j < t->numel; j++) t->data[j] = w[i].std * kd_rng_normal(r);
  }
}

typedef struct {
  const char *names[64];
  const float *data[64];
  int ndims[64];
  int shapes[64][4];
  char buf[64][32];
  int n;
} Files;

static void add(Files *f, const char *name, const float *data, int ndim, int d0, int d1) {
  int i = f->n++;
  snprintf(f->buf[i], sizeof f->buf[i], "%s", name);
  f->names[i] = f->buf[i], f->data[i] = data, f->ndims[i] = ndim;
  f->shapes[i][0] = d0, f->shapes[i][1] = d1, f->shapes[i][2] = H, f->shapes[i][3] = W;
}

/* image i's rows of a [rows, 5] (image, box) list as [count, 4] */
static float *rows_of(const float *rows, int nrows, int image, int *count) {
  float *o = malloc(sizeof(float) * 4 * (size_t)(nrows > 0 ? nrows : 1));
  *count = 0;
  for (int r = 0; r < nrows; r++)
    if ((int)rows[5 * r] == image) memcpy(o + 4 * (*count)++, rows + 5 * r + 1, 4 * sizeof(float));
  return o;
}

static void compare_dets(KdSafetensors *st, const KdDetection *det, const int *count, int md) {
  for (int i = 0; i < N; i++) {
    char nm[32];
    snprintf(nm, sizeof nm, "det.%d.scores", i);
    int j = kd_safetensors_find(st, nm), shape[4], nd;
    int theirs = j >= 0 && !kd_safetensors_shape(st, j, shape, &nd) ? shape[0] : -1;
    CHECK_MSG(theirs == count[i], "image %d: %d detections, torchvision %d", i, count[i], theirs);
    if (theirs != count[i] || !count[i]) continue;
    float *b = malloc(sizeof(float) * 4 * count[i]), *s = malloc(sizeof(float) * count[i]), *l = malloc(sizeof(float) * count[i]);
    for (int k = 0; k < count[i]; k++) {
      const KdDetection *d = &det[i * md + k];
      b[4 * k] = d->x1, b[4 * k + 1] = d->y1, b[4 * k + 2] = d->x2, b[4 * k + 3] = d->y2;
      s[k] = d->score, l[k] = (float)d->label;
    }
    parity_compare(st, nm, s, count[i], TOL);
    snprintf(nm, sizeof nm, "det.%d.boxes", i);
    parity_compare(st, nm, b, 4 * (size_t)count[i], TOL);
    snprintf(nm, sizeof nm, "det.%d.labels", i);
    parity_compare(st, nm, l, count[i], 0);
    free(b), free(s), free(l);
  }
}

/* The anchors our loss sampled carry torchvision's labels: 1 for ours
 * positive, 0 for ours negative. */
static void compare_rpn_labels(KdSafetensors *st, const signed char *sel, int total) {
  float *lab = malloc(sizeof(float) * total);
  KdError err;
  CHECK(kd_safetensors_read_f32(st, "rpn_labels", lab, total, &err) == 0);
  int bad = 0, pos = 0, sampled = 0;
  for (int i = 0; i < total; i++) {
    pos += sel[i] == 1, sampled += sel[i] >= 0;
    bad += (sel[i] == 1 && lab[i] != 1.0f) || (sel[i] == 0 && lab[i] != 0.0f);
  }
  CHECK_MSG(bad == 0 && pos > 0, "%d sampled anchors labelled otherwise by torchvision (%d positives)", bad, pos);
  printf("  rpn sample       %d of %d anchors, %d positive, all labelled so by torchvision\n", sampled, total, pos);
  free(lab);
}

static void compare_losses(KdSafetensors *st, const KdDetLoss *loss) {
  static const char *const names[4] = {"loss.rpn_cls", "loss.rpn_box", "loss.roi_cls", "loss.roi_box"};
  for (int i = 0; i < 4; i++) parity_compare(st, names[i], loss->parts[i].value->data, 1, TOL);
  const KdRoiSample *s = &loss->rois;
  float *lab = malloc(sizeof(float) * s->nrois);
  for (int r = 0; r < s->nrois; r++) lab[r] = (float)s->labels[r];
  parity_compare(st, "roi_labels", lab, s->nrois, 0);
  printf("  roi sample       %d RoIs, %d positive\n", s->nrois, s->num_pos);
  free(lab);
}

static void write_cfg(const char *path, const KdModelCfg *mc) {
  const KdRpnCfg *r = &mc->head.rpn;
  const KdRoiHeadCfg *o = &mc->head.roi;
  FILE *f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "{\"nclass\": %d, \"rpn\": {\"sizes\": [", K);
  for (int i = 0; i < r->nsizes; i++) fprintf(f, "%s%g", i ? ", " : "", r->sizes[i]);
  fprintf(f, "], \"ratios\": [");
  for (int i = 0; i < r->nratios; i++) fprintf(f, "%s%g", i ? ", " : "", r->ratios[i]);
  fprintf(f, "], \"pre_nms_top_n_train\": %d, \"pre_nms_top_n_test\": %d, \"post_nms_top_n_train\": %d, "
             "\"post_nms_top_n_test\": %d, \"nms_thresh\": %.9g, \"fg_iou_thresh\": %.9g, \"bg_iou_thresh\": %.9g, "
             "\"batch_size_per_image\": %d, \"positive_fraction\": %.9g, \"score_thresh\": %.9g}, ",
          r->pre_nms_top_n_train, r->pre_nms_top_n_test, r->post_nms_top_n_train, r->post_nms_top_n_test, r->nms_thresh,
          r->fg_iou_thresh, r->bg_iou_thresh, r->batch_size_per_image, r->positive_fraction, r->score_thresh);
  fprintf(f, "\"roi\": {\"canonical_scale\": %.9g, \"canonical_level\": %d, \"sampling_ratio\": %d, \"score_thresh\": %.9g, "
             "\"nms_thresh\": %.9g, \"detections_per_img\": %d, \"fg_iou_thresh\": %.9g, \"bg_iou_thresh\": %.9g}}\n",
          o->pool.canonical_scale, o->pool.canonical_level, o->pool.sampling_ratio, o->score_thresh, o->nms_thresh,
          o->detections_per_img, o->fg_iou, o->bg_iou);
  fclose(f);
}

int main(void) {
  const char *root = getenv("KD_SOURCE_ROOT");
  if (access("/usr/bin/python3", X_OK) != 0 || !root) {
    printf("skipped: /usr/bin/python3 or KD_SOURCE_ROOT missing\n");
    return 77;
  }
  KdError err;
  KdModelCfg mc = parity_cfg();
  KdModel *m = kd_model_new(&mc, 3, &err);
  CHECK_MSG(m != NULL, "%s", err.msg);
  if (!m) return check_status("frcnn_parity");
  KdRng r;
  kd_rng_seed(&r, 9, 9);
  KdParams *p = kd_model_params(m);
  parity_perturb_norms(p, &r);
  spread_rpn(p, &r);
  char wpath[] = "/tmp/kd_frp_wXXXXXX", ipath[] = "/tmp/kd_frp_iXXXXXX", opath[] = "/tmp/kd_frp_oXXXXXX",
       cpath[] = "/tmp/kd_frp_cXXXXXX";
  close(mkstemp(wpath)), close(mkstemp(ipath)), close(mkstemp(opath)), close(mkstemp(cpath));
  CHECK(kd_safetensors_save(wpath, p, NULL, &err) == 0);
  write_cfg(cpath, &mc);
  KdCtx *c = kd_ctx_new(256u << 20);
  kd_ctx_set_grad(c, 0);
  KdTensor *x = kd_tensor4(c, N, 3, H, W);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_range(&r, -2, 2);
  static const float gt0[] = {10, 12, 50, 40, 60, 20, 120, 100, 100, 64, 180, 124, 30, 70, 58, 110};
  static const float gt1[] = {4, 4, 36, 28, 70, 30, 170, 90, 20, 90, 90, 126};
  static const int lb0[] = {0, 3, 4, 1}, lb1[] = {2, 2, 0};
  float lf0[4], lf1[3];
  for (int i = 0; i < 4; i++) lf0[i] = (float)lb0[i];
  for (int i = 0; i < 3; i++) lf1[i] = (float)lb1[i];
  KdGtImage gt[N] = {{gt0, lb0, NULL, 4}, {gt1, lb1, NULL, 3}};

  /* eval: features, RPN, proposals, RoI head on them, detections */
  KdDetOut ev;
  CHECK(kd_model_forward(m, c, x, 0, &ev) == 0);
  const KdHeadRois *ro = &ev.head.rois;
  KdPostCfg pc;
  kd_post_cfg_default(&pc);
  pc.max_det = mc.head.roi.detections_per_img;
  KdDetection det[N * 50];
  int count[N];
  float wh[2 * N] = {W, H, W, H};
  CHECK_MSG(kd_model_decode(m, &ev, &pc, N, wh, det, count, &err) == 0, "%s", err.msg);
  /* training: the loss and what it sampled */
  KdDetOut tr;
  CHECK(kd_model_forward(m, c, x, 1, &tr) == 0);
  KdDetLossCfg lc = {.box_weight = 1, .seed = 5, .step = 3};
  KdDetLoss loss;
  CHECK_MSG(kd_model_loss(m, c, &tr, gt, N, &lc, &loss, &err) == 0, "%s", err.msg);
  int A_total = 0;
  for (int l = 0; l < ev.nlev; l++) A_total += 3 * ev.feat[l]->shape[2] * ev.feat[l]->shape[3];
  float *sel = malloc(sizeof(float) * N * A_total);
  for (int i = 0; i < N * A_total; i++) sel[i] = loss.rpn_sel[i];

  Files f = {.n = 0};
  add(&f, "images", x->data, 4, N, 3);
  add(&f, "gt.0.boxes", gt0, 2, 4, 4), add(&f, "gt.0.labels", lf0, 1, 4, 0);
  add(&f, "gt.1.boxes", gt1, 2, 3, 4), add(&f, "gt.1.labels", lf1, 1, 3, 0);
  add(&f, "rpn_sel", sel, 1, N * A_total, 0);
  float *props[N], *rois[N];
  for (int i = 0; i < N; i++) {
    int np, nr;
    char nm[32];
    props[i] = rows_of(ro->rois, ro->nrois, i, &np);
    rois[i] = rows_of(loss.rois.rois, loss.rois.nrois, i, &nr);
    CHECK(np == ro->props.count[i] && np > 0 && nr > 0);
    snprintf(nm, sizeof nm, "props.%d", i);
    add(&f, nm, props[i], 2, np, 4);
    snprintf(nm, sizeof nm, "rois.%d", i);
    add(&f, nm, rois[i], 2, nr, 4);
  }
  CHECK(kd_safetensors_write(ipath, f.n, f.names, f.data, f.ndims, (const int(*)[4])f.shapes, NULL, &err) == 0);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model/frcnn_parity.py %s %s %s %s", root, wpath, ipath, opath, cpath);
  int rc = system(cmd), result = 0;
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
    printf("skipped: torch/torchvision not installed\n");
    result = 77;
  } else {
    CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "oracle failed (%d)", rc);
    KdSafetensors *st = kd_safetensors_open(opath, &err);
    CHECK_MSG(st != NULL, "%s", err.msg);
    KdTensor *const *obj = kd_det_out(&ev, "objectness"), *const *del = kd_det_out(&ev, "rpn_box");
    for (int l = 0; st && l < ev.nlev; l++) {
      char nm[32];
      const char *lv = ev.levels->name[l];
      snprintf(nm, sizeof nm, "feat.%s", lv), parity_tensor(st, nm, ev.feat[l], TOL);
      snprintf(nm, sizeof nm, "obj.%s", lv), parity_tensor(st, nm, obj[l], TOL);
      snprintf(nm, sizeof nm, "rpn_box.%s", lv), parity_tensor(st, nm, del[l], TOL);
    }
    for (int i = 0; st && i < N; i++) {
      char nm[32];
      snprintf(nm, sizeof nm, "props_scores.%d", i);
      int j = kd_safetensors_find(st, nm), shape[4], nd;
      int theirs = j >= 0 && !kd_safetensors_shape(st, j, shape, &nd) ? shape[0] : -1;
      CHECK_MSG(theirs == ro->props.count[i], "image %d: %d proposals, torchvision %d", i, ro->props.count[i], theirs);
      if (theirs != ro->props.count[i]) continue;
      parity_compare(st, nm, ro->props.scores + (size_t)i * ro->props.cap, theirs, TOL);
      snprintf(nm, sizeof nm, "props.%d", i);
      parity_compare(st, nm, ro->props.boxes + (size_t)i * 4 * ro->props.cap, 4 * (size_t)theirs, TOL);
    }
    if (st) {
      /* RoI Align of our proposals on P2..P5, then the predictor */
      KdTensor *pooled = kd_roi_pool(c, &mc.head.roi.pool, ev.feat, ev.levels->stride, 4, ro->rois, ro->nrois, NULL);
      CHECK(pooled != NULL);
      if (pooled) parity_tensor(st, "roi_feat", pooled, TOL);
      parity_tensor(st, "roi_cls", ro->cls, TOL);
      parity_tensor(st, "roi_box", ro->box, TOL);
      compare_dets(st, det, count, pc.max_det);
      compare_rpn_labels(st, loss.rpn_sel, N * A_total);
      compare_losses(st, &loss);
      kd_safetensors_close(st);
    }
  }
  for (int i = 0; i < N; i++) free(props[i]), free(rois[i]);
  free(sel);
  unlink(wpath), unlink(ipath), unlink(opath), unlink(cpath);
  kd_ctx_free(c);
  kd_model_free(m);
  return result ? result : check_status("frcnn_parity");
}
