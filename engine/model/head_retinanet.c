/* The RetinaNet head kind: shared towers, focal + smooth-L1/GIoU on its own
 * anchors, torchvision's decode. No backbone, neck or distillation here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "detect/detloss.h"
#include "model/head.h"
#include "model/tower.h"

typedef struct Tower {
  KdTower t;
  KdConv out;
} Tower;

typedef struct Retina {
  KdHeadCfg cfg;
  KdLevels levels;
  int channels, A;
  Tower cls, reg;
  KdAssigner *assigner;
} Retina;

static const char *const outputs[] = {"cls", "box", "cls_tower"};
enum { OUT_CLS, OUT_BOX, OUT_CLS_TOWER };

/* The anchor settings with the strides of the levels. */
static void level_anchors(const KdHeadCfg *cfg, const KdLevels *lv, KdAnchorCfg *a) {
  *a = cfg->anchors;
  a->nlevels = lv->n;
  for (int l = 0; l < lv->n && l < KD_ANCHOR_MAX_LEVELS; l++) a->strides[l] = lv->stride[l];
}

static int check(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdError *err) {
  if (kd_dense_head_cfg_check(cfg, channels, err)) return -1;
  KdAnchorCfg a = cfg->anchors;
  if (lv) level_anchors(cfg, lv, &a);
  return kd_anchor_cfg_check(&a, err) || kd_assign_cfg_check(&cfg->assign, err) ? -1 : 0;
}

static int build_tower(Retina *r, KdParams *p, Tower *t, const char *name, const char *out_name, int out_ch) {
  char conv[96], gn[96], buf[128];
  snprintf(conv, sizeof conv, "head.%s.conv.%%d.0", name);
  snprintf(gn, sizeof gn, "head.%s.conv.%%d.1", name);
  int rc = kd_tower_add(&t->t, p, conv, gn, r->channels, r->cfg.convs, r->cfg.gn);
  snprintf(buf, sizeof buf, "head.%s.%s", name, out_name);
  rc |= kd_conv_add(&t->out, p, buf, r->channels, out_ch, 3, 1, 1, 1);
  /* The outputs the losses read are NCHW. */
  t->out.cfg.layout = KD_CONV_PLAIN;
  return rc;
}

static void destroy(void *h) {
  Retina *r = h;
  if (!r) return;
  kd_assigner_free(r->assigner);
  free(r);
}

static void *build(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err) {
  if (check(cfg, channels, lv, err)) return NULL;
  Retina *r = calloc(1, sizeof *r);
  if (!r) return kd_error(err, "out of memory"), NULL;
  r->cfg = *cfg, r->levels = *lv, r->channels = channels;
  KdAnchorCfg a;
  level_anchors(cfg, lv, &a);
  r->A = kd_anchors_per_loc(&a);
  if (!(r->assigner = kd_assigner_new(&a, &cfg->assign, err))) return destroy(r), NULL;
  if (build_tower(r, p, &r->cls, "classification_head", "cls_logits", r->A * cfg->num_classes) ||
      build_tower(r, p, &r->reg, "regression_head", "bbox_reg", r->A * 4)) {
    destroy(r);
    return kd_error(err, "could not build the RetinaNet head (out of memory?)"), NULL;
  }
  return r;
}

static void init(void *h, KdRng *rng) {
  Retina *r = h;
  Tower *towers[2] = {&r->cls, &r->reg};
  for (int t = 0; t < 2; t++) {
    kd_tower_init(&towers[t]->t, rng);
    kd_init_normal(towers[t]->out.w, 0.01f, rng);
    kd_init_const(towers[t]->out.b, 0.0f);
  }
  kd_init_const(r->cls.out.b, -logf((1.0f - r->cfg.prior_prob) / r->cfg.prior_prob));
}

static void info(const void *h, KdHeadInfo *out) {
  const Retina *r = h;
  *out = (KdHeadInfo){.provides = KD_HEAD_HAS_LOGITS | KD_HEAD_HAS_BOXES | KD_HEAD_HAS_ASSIGN, .A = r->A,
                      .K = r->cfg.num_classes, .anchors = kd_assigner_anchor_cfg(r->assigner),
                      .pos_iou = r->cfg.assign.pos_iou};
}

static KdTensor *tower_fwd(KdCtx *c, const Tower *t, KdTensor *x, KdTensor **last) {
  x = kd_tower_fwd(c, &t->t, x);
  if (last) *last = x;
  return kd_conv_fwd(c, &t->out, x);
}

static void forward(void *h, KdCtx *c, KdTensor *const *feat, int training, KdHeadOut *out) {
  Retina *r = h;
  (void)training;
  out->nout = 3, out->names = outputs;
  for (int l = 0; l < r->levels.n; l++) {
    out->lv[OUT_CLS][l] = tower_fwd(c, &r->cls, feat[l], &out->lv[OUT_CLS_TOWER][l]);
    out->lv[OUT_BOX][l] = tower_fwd(c, &r->reg, feat[l], NULL);
  }
}

/* Level sizes of the outputs, for the anchors; -1 when a level is missing. */
static int level_sizes(const Retina *r, const KdHeadOut *o, int *hw) {
  for (int l = 0; l < r->levels.n; l++) {
    const KdTensor *t = o->lv[OUT_CLS][l];
    if (!t || !o->lv[OUT_BOX][l]) return -1;
    hw[2 * l] = t->shape[2], hw[2 * l + 1] = t->shape[3];
  }
  return 0;
}

static int loss(void *h, KdCtx *c, const KdHeadOut *o, const KdGtImage *gt, int n, const KdDetLossCfg *lc, KdDetLoss *out,
                KdError *err) {
  Retina *r = h;
  int hw[2 * KD_MAX_LEVELS];
  if (level_sizes(r, o, hw)) return kd_error(err, "loss: the RetinaNet outputs are incomplete");
  KdDenseAssign *as = &out->assign;
  if (kd_assigner_targets(r->assigner, c, hw, gt, n, r->cfg.num_classes, as, err)) return -1;
  out->has_assign = 1;
  out->num_pos = as->num_pos;
  float norm = as->num_pos > 0 ? (float)as->num_pos : 1.0f;
  const int L = r->levels.n;
  KdTensor *cls = kd_focal_loss(c, o->lv[OUT_CLS], L, r->A, as->target_cls, lc->focal_alpha, lc->focal_gamma, norm);
  KdTensor *box = lc->giou ? kd_giou_loss(c, o->lv[OUT_BOX], L, r->A, as->anchors, as->target_boxes, as->target_cls,
                                          kd_assigner_coder(r->assigner), norm)
                           : kd_smooth_l1_loss(c, o->lv[OUT_BOX], L, r->A, as->target_deltas, as->target_cls,
                                               lc->smooth_l1_beta, norm);
  out->nparts = 2;
  out->parts[0].name = "cls", out->parts[0].value = cls;
  out->parts[1].name = "box", out->parts[1].value = box;
  out->total = kd_add(c, cls, kd_scale(c, box, lc->box_weight));
  return out->total ? 0 : kd_error(err, "loss: %s", kd_ctx_error(c));
}

static int decode(void *h, const KdHeadOut *o, const KdPostCfg *pc, int n, const float *image_wh, KdDetection *out,
                  int *count, KdError *err) {
  Retina *r = h;
  int hw[2 * KD_MAX_LEVELS], total;
  if (level_sizes(r, o, hw)) return kd_error(err, "decode: the RetinaNet outputs are incomplete");
  (void)n;
  const float *anchors = kd_assigner_anchors(r->assigner, hw, &total, err);
  if (!anchors) return -1;
  return kd_postprocess(o->lv[OUT_CLS], o->lv[OUT_BOX], r->levels.n, r->A, anchors, kd_assigner_coder(r->assigner), pc,
                        image_wh, out, count, err);
}

/* The level whose anchors fit the box best (log-size distance). */
static int box_level(const void *h, const float *b) {
  const Retina *r = h;
  const KdAnchorCfg *a = kd_assigner_anchor_cfg(r->assigner);
  double side = sqrt(fmax(1e-6, (double)(b[2] - b[0]) * (b[3] - b[1]))), best = INFINITY;
  double mid = a->nscales > 0 ? sqrt(a->scales[0] * a->scales[a->nscales - 1]) : 1;
  int lv = 0;
  for (int l = 0; l < a->nlevels; l++) {
    double d = fabs(log2(side / (kd_anchor_base_size(a, l) * mid)));
    if (d < best) best = d, lv = l;
  }
  return lv;
}

static double flops(const void *h, int n, const int *lhw) {
  const Retina *r = h;
  const Tower *t[2] = {&r->cls, &r->reg};
  double f = 0;
  for (int l = 0; l < r->levels.n; l++)
    for (int k = 0; k < 2; k++) {
      int a = lhw[2 * l], b = lhw[2 * l + 1];
      f += kd_tower_flops(&t[k]->t, n, &a, &b);
      f += kd_conv_flops(&t[k]->out, n, &a, &b);
    }
  return f;
}

static const char *const prefixes[] = {"head.", NULL};

const KdHeadKind kd_head_retinanet = {
    .name = "retinanet",
    .label = "RetinaNet",
    .outputs = outputs,
    .noutputs = 3,
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
    .flops = flops,
};
