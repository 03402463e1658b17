/* The Faster R-CNN head kind: the RPN (model/rpn.h) on every neck level
 * and the RoI head (model/roi_head.h) on the levels up to P5 (the max-pool
 * P6 feeds the RPN only, as torchvision's MultiScaleRoIAlign over
 * ['0', '1', '2', '3']). A training forward makes the training proposals
 * and leaves the RoI head to the loss (which samples RoIs among them); an
 * evaluation forward runs the RoI head on the test proposals for decode.
 * No backbone, neck or distillation here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/head.h"

typedef struct Frcnn {
  KdHeadCfg cfg;
  KdLevels levels, roi_levels;
  KdRpn *rpn;
  KdRoiHead *roi;
  double roi_flops; /* per RoI: the box head and predictor */
} Frcnn;

static const char *const outputs[] = {"objectness", "rpn_box"};
enum { OUT_OBJ, OUT_BOX };

/* The sampling stream of a step: anchors, then RoIs, from one generator. */
#define SAMPLE_STREAM 0x66726e6e00000000ull

/* The levels up to stride 32 (P2..P5 of an FPN from P2). */
static void roi_levels(const KdLevels *lv, KdLevels *out) {
  memset(out, 0, sizeof *out);
  for (int l = 0; l < lv->n && lv->stride[l] <= 32; l++) kd_levels_add(out, lv->stride[l]);
}

static KdRoiHeadCfg roi_cfg(const KdHeadCfg *cfg) {
  KdRoiHeadCfg r = cfg->roi;
  r.num_classes = cfg->num_classes;
  return r;
}

static int check(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdError *err) {
  if (cfg->num_classes < 1 || cfg->num_classes > 1000) return kd_error(err, "model.num_classes: %d outside 1..1000", cfg->num_classes);
  if (channels < 1) return kd_error(err, "model.fpn_channels: %d", channels);
  KdRoiHeadCfg rc = roi_cfg(cfg);
  if (kd_rpn_cfg_check(&cfg->rpn, lv, err) || kd_roi_head_cfg_check(&rc, err)) return -1;
  if (!lv) return 0;
  KdLevels rl;
  roi_levels(lv, &rl);
  if (rl.n == 0) return kd_error(err, "model.fpn_first_level: the RoI head pools from levels up to P5, and the neck has none");
  return 0;
}

static void destroy(void *h) {
  Frcnn *f = h;
  if (!f) return;
  kd_rpn_free(f->rpn);
  kd_roi_head_free(f->roi);
  free(f);
}

/* FLOPs of one RoI through the box head and predictor, from the shapes of
 * the roi_heads.* tensors just registered: fully connected layers, and
 * 3x3 convs on the pooled grid. */
static double per_roi_flops(KdParams *p, int side) {
  double f = 0;
  for (int i = 0; i < kd_params_count(p); i++) {
    const KdTensor *t = kd_params_at(p, i);
    if (strncmp(t->name, "roi_heads.", 10) || !strstr(t->name, "weight")) continue;
    if (t->ndim == 2) f += 2.0 * (double)t->numel;
    else if (t->ndim == 4) f += 2.0 * (double)t->numel * side * side;
  }
  return f;
}

static void *build(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err) {
  if (check(cfg, channels, lv, err)) return NULL;
  Frcnn *f = calloc(1, sizeof *f);
  if (!f) return kd_error(err, "out of memory"), NULL;
  f->cfg = *cfg, f->levels = *lv;
  roi_levels(lv, &f->roi_levels);
  KdRoiHeadCfg rc = roi_cfg(cfg);
  /* rpn.* before roi_heads.*: torchvision's state_dict order */
  if (!(f->rpn = kd_rpn_new(&cfg->rpn, channels, lv, p, err)) ||
      !(f->roi = kd_roi_head_new(&rc, channels, &f->roi_levels, p, err)))
    return destroy(f), NULL;
  f->roi_flops = per_roi_flops(p, rc.pool.out_size);
  return f;
}

static void init(void *h, KdRng *r) {
  Frcnn *f = h;
  kd_rpn_init(f->rpn, r);
  kd_roi_head_init(f->roi, r);
}

static void info(const void *h, KdHeadInfo *out) {
  const Frcnn *f = h;
  *out = (KdHeadInfo){.provides = KD_HEAD_HAS_ROIS, .A = kd_rpn_anchors_per_loc(f->rpn), .K = f->cfg.num_classes,
                      .anchors = kd_rpn_anchor_cfg(f->rpn), .pos_iou = f->cfg.rpn.fg_iou_thresh};
}

/* The input size, as the first level's size times its stride (exact for
 * inputs that are multiples of the largest stride, as torchvision pads
 * them): [2n] width, height, from c's arena. */
static float *image_wh(const Frcnn *f, KdCtx *c, KdTensor *const *feat, int n) {
  float *wh = kd_ctx_alloc(c, 2 * (size_t)n * sizeof *wh);
  for (int i = 0; wh && i < n; i++) {
    wh[2 * i] = (float)(feat[0]->shape[3] * f->levels.stride[0]);
    wh[2 * i + 1] = (float)(feat[0]->shape[2] * f->levels.stride[0]);
  }
  return wh;
}

/* Every image's proposals as RoI rows (image, x1, y1, x2, y2). */
static float *props_as_rois(KdCtx *c, const KdRpnProposals *p, int *nrois) {
  int total = 0;
  for (int i = 0; i < p->n; i++) total += p->count[i];
  *nrois = total;
  float *rois = kd_ctx_alloc(c, (size_t)(total > 0 ? total : 1) * 5 * sizeof *rois), *o = rois;
  for (int i = 0; rois && i < p->n; i++)
    for (int k = 0; k < p->count[i]; k++, o += 5) {
      o[0] = (float)i;
      memcpy(o + 1, p->boxes + 4 * ((size_t)i * p->cap + k), 4 * sizeof(float));
    }
  return rois;
}

/* The RoI head on rois into ro (nothing to run on: no outputs, ran). */
static int run_roi(Frcnn *f, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdHeadRois *ro, KdError *err) {
  ro->rois = rois, ro->nrois = nrois, ro->ran = 1;
  ro->cls = ro->box = ro->rep = ro->fc[0] = ro->fc[1] = NULL;
  if (nrois == 0) return 0;
  return kd_roi_head_forward_fc(f->roi, c, feat, rois, nrois, &ro->cls, &ro->box, &ro->rep, ro->fc, err);
}

static void forward(void *h, KdCtx *c, KdTensor *const *feat, int training, KdHeadOut *out) {
  Frcnn *f = h;
  out->nout = 2, out->names = outputs;
  memset(&out->rois, 0, sizeof out->rois);
  kd_rpn_forward(f->rpn, c, feat, out->lv[OUT_OBJ], out->lv[OUT_BOX]);
  if (kd_ctx_failed(c)) return;
  KdHeadRois *ro = &out->rois;
  for (int l = 0; l < f->levels.n; l++) ro->feat[l] = feat[l];
  const int n = feat[0]->shape[0];
  float *wh = image_wh(f, c, feat, n);
  KdError err;
  if (!wh) return (void)kd_ctx_fail(c, "Faster R-CNN forward: out of memory");
  if (kd_rpn_proposals(f->rpn, c, out->lv[OUT_OBJ], out->lv[OUT_BOX], training, wh, &ro->props, &err))
    return (void)kd_ctx_fail(c, "%s", err.msg);
  if (training) return;
  int nrois;
  float *rois = props_as_rois(c, &ro->props, &nrois);
  if (!rois) return (void)kd_ctx_fail(c, "Faster R-CNN forward: out of memory");
  if (run_roi(f, c, feat, rois, nrois, ro, &err)) kd_ctx_fail(c, "%s", err.msg);
}

static int loss(void *h, KdCtx *c, const KdHeadOut *o, const KdGtImage *gt, int n, const KdDetLossCfg *lc, KdDetLoss *out,
                KdError *err) {
  Frcnn *f = h;
  KdTensor *const *obj = o->lv[OUT_OBJ], *const *del = o->lv[OUT_BOX];
  const KdHeadRois *ro = &o->rois;
  if (o->nout != 2 || !obj[0] || !ro->props.boxes || ro->props.n != n)
    return kd_error(err, "loss: the Faster R-CNN outputs are incomplete or not of %d images", n);
  KdRng rng;
  kd_rng_seed(&rng, lc->seed, SAMPLE_STREAM + (uint64_t)(unsigned)lc->step);
  KdDenseAssign t;
  if (kd_rpn_targets(f->rpn, c, obj, gt, n, &t, err)) return -1;
  signed char *sel = kd_ctx_alloc(c, (size_t)n * t.A_total);
  if (!sel) return kd_error(err, "loss: out of memory for the RPN sample");
  KdTensor *rpn_cls, *rpn_box, *cls = NULL, *box = NULL, *roi_cls, *roi_box;
  if (kd_rpn_sample(f->rpn, &t, n, &rng, sel, err) < 0 || kd_rpn_loss(f->rpn, c, obj, del, &t, sel, n, &rpn_cls, &rpn_box, err))
    return -1;
  KdRoiSample s;
  if (kd_roi_head_sample(f->roi, c, ro->props.boxes, ro->props.count, ro->props.cap, gt, n, &rng, &s, err)) return -1;
  if (s.nrois > 0 && kd_roi_head_forward(f->roi, c, ro->feat, s.rois, s.nrois, &cls, &box, NULL, err)) return -1;
  if (kd_roi_head_loss(f->roi, c, cls, box, &s, &roi_cls, &roi_box, err)) return -1;
  static const char *const names[4] = {"rpn_cls", "rpn_box", "roi_cls", "roi_box"};
  KdTensor *parts[4] = {rpn_cls, rpn_box, roi_cls, roi_box};
  out->nparts = 4;
  for (int i = 0; i < 4; i++) out->parts[i].name = names[i], out->parts[i].value = parts[i];
  KdTensor *boxes = kd_scale(c, kd_add(c, rpn_box, roi_box), lc->box_weight);
  out->total = kd_add(c, kd_add(c, rpn_cls, roi_cls), boxes);
  out->num_pos = s.num_pos;
  out->rpn_sel = sel, out->rois = s;
  return out->total ? 0 : kd_error(err, "loss: %s", kd_ctx_error(c));
}

static int decode(void *h, const KdHeadOut *o, const KdPostCfg *pc, int n, const float *image_wh, KdDetection *out,
                  int *count, KdError *err) {
  Frcnn *f = h;
  const KdHeadRois *ro = &o->rois;
  if (!ro->ran)
    return kd_error(err, "decode: this Faster R-CNN forward was a training one, which runs no RoI head on its proposals "
                         "(decode an evaluation forward)");
  if (ro->props.n != n) return kd_error(err, "decode: %d images asked, the forward had %d", n, ro->props.n);
  /* The RoI head decodes into its own detections_per_img slots; the
   * caller's score threshold and count apply on top. */
  const int D = kd_roi_head_cfg(f->roi)->detections_per_img;
  KdDetection *tmp = malloc(sizeof *tmp * (size_t)(n > 0 ? n : 1) * D);
  int *cnt = malloc(sizeof *cnt * (size_t)(n > 0 ? n : 1));
  if (!tmp || !cnt) {
    free(tmp), free(cnt);
    return kd_error(err, "decode: out of memory");
  }
  int rc = 0;
  if (ro->nrois > 0)
    rc = kd_roi_head_decode(f->roi, ro->cls->data, ro->box->data, ro->rois, ro->nrois, n, image_wh, tmp, cnt, err);
  else
    memset(cnt, 0, sizeof *cnt * (size_t)n);
  for (int i = 0; !rc && i < n; i++) {
    count[i] = 0;
    for (int k = 0; k < cnt[i] && count[i] < pc->max_det; k++)
      if (tmp[(size_t)i * D + k].score > pc->score_thr) out[(size_t)i * pc->max_det + count[i]++] = tmp[(size_t)i * D + k];
  }
  free(tmp), free(cnt);
  return rc;
}

static int box_level(const void *h, const float *box) {
  const Frcnn *f = h;
  return kd_roi_pool_level(&kd_roi_head_cfg(f->roi)->pool, f->roi_levels.stride, f->roi_levels.n, box);
}

static int roi_forward(void *h, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdHeadOut *out,
                       KdError *err) {
  Frcnn *f = h;
  memset(out, 0, sizeof *out);
  for (int l = 0; l < f->levels.n; l++) out->rois.feat[l] = feat[l];
  return run_roi(f, c, feat, rois, nrois, &out->rois, err);
}

/* The RPN's convs and the box head on the test proposals (every image
 * full: post_nms_top_n_test RoIs). */
static double flops(const void *h, int n, const int *lhw) {
  const Frcnn *f = h;
  return kd_rpn_flops(f->rpn, n, lhw) + f->roi_flops * n * f->cfg.rpn.post_nms_top_n_test;
}

static const char *const prefixes[] = {"rpn.", "roi_heads.", NULL};

const KdHeadKind kd_head_faster_rcnn = {
    .name = "faster_rcnn",
    .label = "Faster R-CNN",
    .outputs = outputs,
    .noutputs = 2,
    .param_prefixes = prefixes,
    .check = check,
    .build = build,
    .init = init,
    .destroy = destroy,
    .info = info,
    .forward = forward,
    .loss = loss,
    .decode = decode,
    .box_level = box_level,
    .roi_forward = roi_forward,
    .flops = flops,
};
