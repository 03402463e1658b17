/* The RoI stage (see roi_head.h): layers, forward and init. The training
 * sample and the loss are in roi_sample.c, the decode in roi_decode.c. */
#include "model/roi_head_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kd_roi_head_cfg_default(KdRoiHeadCfg *cfg) {
  *cfg = (KdRoiHeadCfg){.num_classes = 10,
                        .box_head = "twomlp",
                        .representation = 1024,
                        .conv_channels = 256,
                        .conv_gn = 0,
                        .fg_iou = 0.5f,
                        .bg_iou = 0.5f,
                        .batch_per_image = 512,
                        .pos_fraction = 0.25f,
                        .box_weights = {10.0f, 10.0f, 5.0f, 5.0f},
                        .score_thresh = 0.05f,
                        .nms_thresh = 0.5f,
                        .detections_per_img = 100};
  kd_roi_pool_cfg_default(&cfg->pool);
}

int kd_roi_head_cfg_check(const KdRoiHeadCfg *cfg, KdError *err) {
  if (cfg->num_classes < 1 || cfg->num_classes > 1000)
    return kd_error(err, "roi.num_classes: %d, expected 1..1000", cfg->num_classes);
  if (strcmp(cfg->box_head, "twomlp") && strcmp(cfg->box_head, "4conv1fc"))
    return kd_error(err, "roi.box_head: '%.16s', expected twomlp or 4conv1fc", cfg->box_head);
  if (cfg->representation < 1 || cfg->representation > 65536)
    return kd_error(err, "roi.representation: %d, expected 1..65536", cfg->representation);
  if (!strcmp(cfg->box_head, "4conv1fc")) {
    if (cfg->conv_channels < 1 || cfg->conv_channels > 4096)
      return kd_error(err, "roi.conv_channels: %d, expected 1..4096", cfg->conv_channels);
    if (cfg->conv_gn && cfg->conv_channels % 32)
      return kd_error(err, "roi.conv_gn: GroupNorm(32) needs roi.conv_channels divisible by 32, got %d", cfg->conv_channels);
  }
  if (kd_roi_pool_cfg_check(&cfg->pool, err)) return -1;
  if (!(cfg->fg_iou > 0.0f && cfg->fg_iou <= 1.0f)) return kd_error(err, "roi.fg_iou: %g, expected (0, 1]", cfg->fg_iou);
  if (!(cfg->bg_iou >= 0.0f && cfg->bg_iou <= cfg->fg_iou))
    return kd_error(err, "roi.bg_iou: %g, expected [0, roi.fg_iou=%g]", cfg->bg_iou, cfg->fg_iou);
  if (cfg->batch_per_image < 1 || cfg->batch_per_image > 100000)
    return kd_error(err, "roi.batch_per_image: %d, expected 1..100000", cfg->batch_per_image);
  if (!(cfg->pos_fraction > 0.0f && cfg->pos_fraction <= 1.0f))
    return kd_error(err, "roi.pos_fraction: %g, expected (0, 1]", cfg->pos_fraction);
  for (int i = 0; i < 4; i++)
    if (!(cfg->box_weights[i] > 0.0f && cfg->box_weights[i] < 1e6f))
      return kd_error(err, "roi.box_weights[%d]: %g, expected a positive number", i, cfg->box_weights[i]);
  if (!(cfg->score_thresh >= 0.0f && cfg->score_thresh < 1.0f))
    return kd_error(err, "roi.score_thresh: %g, expected [0, 1)", cfg->score_thresh);
  if (!(cfg->nms_thresh >= 0.0f && cfg->nms_thresh <= 1.0f))
    return kd_error(err, "roi.nms_thresh: %g, expected [0, 1]", cfg->nms_thresh);
  if (cfg->detections_per_img < 1 || cfg->detections_per_img > 100000)
    return kd_error(err, "roi.detections_per_img: %d, expected 1..100000", cfg->detections_per_img);
  return 0;
}

/* torchvision's FastRCNNConvFCHead: Conv2dNormActivation blocks 0..3,
 * Flatten (4), Linear (5), ReLU (6). */
static int build_conv_head(KdRoiHead *h, KdParams *p, const char *pre) {
  char name[160];
  int rc = 0, cin = h->channels, cout = h->cfg.conv_channels;
  for (int i = 0; i < KD_ROI_CONVS; i++, cin = cout) {
    snprintf(name, sizeof name, "%s.box_head.%d.0", pre, i);
    rc |= kd_conv_add(&h->conv[i], p, name, cin, cout, 3, 1, 1, !h->cfg.conv_gn);
    if (h->cfg.conv_gn) {
      snprintf(name, sizeof name, "%s.box_head.%d.1", pre, i);
      rc |= kd_gn_add(&h->gn[i], p, name, cout, 32);
    }
  }
  int side = h->cfg.pool.out_size;
  snprintf(name, sizeof name, "%s.box_head.5", pre);
  return rc | kd_linear_add(&h->fc6, p, name, cout * side * side, h->cfg.representation);
}

KdRoiHead *kd_roi_head_new(const KdRoiHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err) {
  return kd_roi_head_new_at(cfg, channels, lv, p, "roi_heads", err);
}

KdRoiHead *kd_roi_head_new_at(const KdRoiHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, const char *prefix,
                              KdError *err) {
  if (kd_roi_head_cfg_check(cfg, err)) return NULL;
  if (!prefix || !*prefix || strlen(prefix) > 100) return kd_error(err, "roi head: a bad parameter prefix"), NULL;
  if (channels < 1) return kd_error(err, "roi head: %d input channels", channels), NULL;
  if (!lv || kd_roi_pool_check_strides(lv->stride, lv->n, err)) return NULL;
  KdRoiHead *h = calloc(1, sizeof *h);
  if (!h) return kd_error(err, "out of memory"), NULL;
  h->cfg = *cfg, h->levels = *lv, h->channels = channels;
  h->conv4 = !strcmp(cfg->box_head, "4conv1fc");
  h->bc = (KdBoxCoder){cfg->box_weights[0], cfg->box_weights[1], cfg->box_weights[2], cfg->box_weights[3],
                       kd_box_coder_default().clip};
  const int side = cfg->pool.out_size, rep = cfg->representation, K1 = cfg->num_classes + 1;
  char n6[160], n7[160], nc[160], nb[160];
  snprintf(n6, sizeof n6, "%s.box_head.fc6", prefix);
  snprintf(n7, sizeof n7, "%s.box_head.fc7", prefix);
  snprintf(nc, sizeof nc, "%s.box_predictor.cls_score", prefix);
  snprintf(nb, sizeof nb, "%s.box_predictor.bbox_pred", prefix);
  int rc = h->conv4 ? build_conv_head(h, p, prefix)
                    : kd_linear_add(&h->fc6, p, n6, channels * side * side, rep) | kd_linear_add(&h->fc7, p, n7, rep, rep);
  rc |= kd_linear_add(&h->cls, p, nc, rep, K1);
  rc |= kd_linear_add(&h->bbox, p, nb, rep, 4 * K1);
  if (rc) {
    free(h);
    return kd_error(err, "could not build the RoI head (a %s.* name taken, or out of memory)", prefix), NULL;
  }
  return h;
}

void kd_roi_head_init(KdRoiHead *h, KdRng *r) {
  for (int i = 0; h->conv4 && i < KD_ROI_CONVS; i++) {
    kd_init_kaiming_normal_fanout(h->conv[i].w, r);
    if (h->conv[i].b) kd_init_const(h->conv[i].b, 0.0f);
    if (h->cfg.conv_gn) kd_init_const(h->gn[i].gamma, 1.0f), kd_init_const(h->gn[i].beta, 0.0f);
  }
  kd_linear_init(&h->fc6, r);
  if (!h->conv4) kd_linear_init(&h->fc7, r);
  kd_linear_init(&h->cls, r);
  kd_linear_init(&h->bbox, r);
}

void kd_roi_head_free(KdRoiHead *h) { free(h); }

const KdRoiHeadCfg *kd_roi_head_cfg(const KdRoiHead *h) { return &h->cfg; }

int kd_roi_head_forward(KdRoiHead *h, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdTensor **cls,
                        KdTensor **box, KdTensor **features, KdError *err) {
  return kd_roi_head_forward_fc(h, c, feat, rois, nrois, cls, box, features, NULL, err);
}

int kd_roi_head_forward_fc(KdRoiHead *h, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdTensor **cls,
                           KdTensor **box, KdTensor **features, KdTensor **fc, KdError *err) {
  *cls = *box = NULL;
  if (features) *features = NULL;
  if (fc) fc[0] = fc[1] = NULL;
  for (int l = 0; l < h->levels.n; l++)
    if (!feat || !feat[l]) return kd_error(err, "roi head: feature level %s is missing", h->levels.name[l]);
  KdTensor *x = kd_roi_pool(c, &h->cfg.pool, feat, h->levels.stride, h->levels.n, rois, nrois, NULL);
  for (int i = 0; h->conv4 && i < KD_ROI_CONVS; i++) {
    x = kd_conv_fwd(c, &h->conv[i], x);
    if (h->cfg.conv_gn) x = kd_groupnorm(c, x, h->gn[i].groups, h->gn[i].gamma, h->gn[i].beta, 1e-5f);
    x = kd_relu(c, x);
  }
  KdTensor *f6 = kd_linear_fwd(c, &h->fc6, x), *f7 = f6;
  x = kd_relu(c, f6);
  if (!h->conv4) x = kd_relu(c, f7 = kd_linear_fwd(c, &h->fc7, x));
  KdTensor *s = kd_linear_fwd(c, &h->cls, x), *b = kd_linear_fwd(c, &h->bbox, x);
  if (!s || !b) return kd_error(err, "roi head: %s", kd_ctx_error(c));
  *cls = s, *box = b;
  if (features) *features = x;
  if (fc) fc[0] = f6, fc[1] = f7;
  return 0;
}
