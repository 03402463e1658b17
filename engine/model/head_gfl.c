/* The GFL head kind (Li et al., NeurIPS 2020; mmdetection's GFLHead): one
 * square anchor per location (size anchor.size_mult x stride, centred on
 * the location's point), shared cls/reg towers (GroupNorm with
 * model.head_norm=gn), a learned scale per level on the side logits,
 * ATSS assignment, QFL + GIoU + DFL, and the integral decode. No
 * backbone, neck or distillation here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/atss.h"
#include "detect/boxes.h"
#include "detect/gflloss.h"
#include "model/head.h"
#include "model/tower.h"

#define MAX_REG 64

typedef struct Gfl {
  KdHeadCfg cfg;
  KdLevels levels;
  int channels, K, B; /* classes, bins per side (reg_max + 1) */
  KdTower cls, reg;
  KdConv out_cls, out_reg;
  KdTensor *scale[KD_MAX_LEVELS];
  KdAnchorCfg acfg;
  /* Anchors of the latest level sizes. */
  int hw[2 * KD_MAX_LEVELS], total, off[KD_MAX_LEVELS + 1];
  float *anchors;
} Gfl;

/* cls_tower0 / reg_tower0: the towers after their first conv (PGD's official hook point). */
static const char *const outputs[] = {"cls", "dist", "cls_tower", "reg_tower", "cls_tower0", "reg_tower0"};
enum { OUT_CLS, OUT_DIST, OUT_CLS_TOWER, OUT_REG_TOWER, OUT_CLS_TOWER0, OUT_REG_TOWER0, NOUT };

void kd_head_gfl_anchors(const KdHeadCfg *cfg, const KdLevels *lv, KdAnchorCfg *a) {
  *a = cfg->anchors;
  a->nscales = 1, a->scales[0] = 1.0f;
  a->nratios = 1, a->ratios[0] = 1.0f;
  a->offset = 0.0f, a->torchvision_round = 0;
  for (int l = 0; l < KD_ANCHOR_MAX_LEVELS; l++) a->level_size[l] = 0.0f;
  if (!lv) return;
  a->nlevels = lv->n;
  for (int l = 0; l < lv->n && l < KD_ANCHOR_MAX_LEVELS; l++) a->strides[l] = lv->stride[l];
}

static int check(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdError *err) {
  if (kd_dense_head_cfg_check(cfg, channels, err)) return -1;
  if (cfg->gfl.reg_max < 1 || cfg->gfl.reg_max > MAX_REG) return kd_error(err, "gfl.reg_max: %d outside 1..%d", cfg->gfl.reg_max, MAX_REG);
  if (cfg->gfl.topk < 1 || cfg->gfl.topk > KD_ATSS_MAX_TOPK)
    return kd_error(err, "atss.topk: %d outside 1..%d", cfg->gfl.topk, KD_ATSS_MAX_TOPK);
  if (lv && lv->n > KD_ANCHOR_MAX_LEVELS) return kd_error(err, "model: the GFL head takes at most %d levels", KD_ANCHOR_MAX_LEVELS);
  KdAnchorCfg a;
  kd_head_gfl_anchors(cfg, lv, &a);
  return kd_anchor_cfg_check(&a, err);
}

static void destroy(void *h) {
  Gfl *g = h;
  if (!g) return;
  free(g->anchors);
  free(g);
}

static void *build(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err) {
  if (check(cfg, channels, lv, err)) return NULL;
  Gfl *g = calloc(1, sizeof *g);
  if (!g) return kd_error(err, "out of memory"), NULL;
  g->cfg = *cfg, g->levels = *lv, g->channels = channels;
  g->K = cfg->num_classes, g->B = cfg->gfl.reg_max + 1;
  kd_head_gfl_anchors(cfg, lv, &g->acfg);
  int rc = kd_tower_add(&g->cls, p, "head.cls_convs.%d.conv", "head.cls_convs.%d.gn", channels, cfg->convs, cfg->gn);
  rc |= kd_tower_add(&g->reg, p, "head.reg_convs.%d.conv", "head.reg_convs.%d.gn", channels, cfg->convs, cfg->gn);
  rc |= kd_conv_add(&g->out_cls, p, "head.gfl_cls", channels, g->K, 3, 1, 1, 1);
  rc |= kd_conv_add(&g->out_reg, p, "head.gfl_reg", channels, 4 * g->B, 3, 1, 1, 1);
  g->out_cls.cfg.layout = g->out_reg.cfg.layout = KD_CONV_PLAIN;
  int one = 1;
  for (int l = 0; l < lv->n; l++) {
    char buf[64];
    snprintf(buf, sizeof buf, "head.scales.%d.scale", l);
    rc |= !(g->scale[l] = kd_params_add(p, buf, 1, &one, KD_PARAM_TRAIN));
  }
  if (rc) {
    destroy(g);
    return kd_error(err, "could not build the GFL head (out of memory?)"), NULL;
  }
  return g;
}

/* mmdet's GFLHead.init_weights: normal(0.01) convs, zero biases, the class
 * prior on gfl_cls, scales 1. */
static void init(void *h, KdRng *rng) {
  Gfl *g = h;
  kd_tower_init(&g->cls, rng);
  kd_tower_init(&g->reg, rng);
  kd_init_normal(g->out_cls.w, 0.01f, rng);
  kd_init_const(g->out_cls.b, -logf((1.0f - g->cfg.prior_prob) / g->cfg.prior_prob));
  kd_init_normal(g->out_reg.w, 0.01f, rng);
  kd_init_const(g->out_reg.b, 0.0f);
  for (int l = 0; l < g->levels.n; l++) kd_init_const(g->scale[l], 1.0f);
}

static void info(const void *h, KdHeadInfo *out) {
  const Gfl *g = h;
  *out = (KdHeadInfo){.provides = KD_HEAD_HAS_LOGITS | KD_HEAD_HAS_ASSIGN | KD_HEAD_HAS_DIST, .A = 1, .K = g->K,
                      .anchors = &g->acfg, .pos_iou = 0.0f, .reg_max = g->B - 1};
}

static void forward(void *h, KdCtx *c, KdTensor *const *feat, int training, KdHeadOut *out) {
  Gfl *g = h;
  (void)training;
  out->nout = NOUT, out->names = outputs;
  for (int l = 0; l < g->levels.n; l++) {
    KdTensor *ct = kd_tower_fwd_first(c, &g->cls, feat[l], &out->lv[OUT_CLS_TOWER0][l]);
    KdTensor *rt = kd_tower_fwd_first(c, &g->reg, feat[l], &out->lv[OUT_REG_TOWER0][l]);
    out->lv[OUT_CLS_TOWER][l] = ct, out->lv[OUT_REG_TOWER][l] = rt;
    out->lv[OUT_CLS][l] = kd_conv_fwd(c, &g->out_cls, ct);
    out->lv[OUT_DIST][l] = kd_mul(c, kd_conv_fwd(c, &g->out_reg, rt), g->scale[l]);
  }
}

/* Anchors and level offsets for the outputs' level sizes (cached). */
static const float *anchors_for(Gfl *g, const KdHeadOut *o, KdError *err) {
  int hw[2 * KD_MAX_LEVELS] = {0};
  for (int l = 0; l < g->levels.n; l++) {
    const KdTensor *t = o->lv[OUT_CLS][l], *d = o->lv[OUT_DIST][l];
    if (!t || !d || t->ndim != 4 || d->ndim != 4 || d->shape[1] != 4 * g->B || t->shape[1] != g->K)
      return kd_error(err, "gfl: level %d outputs are missing or malformed", l), NULL;
    hw[2 * l] = t->shape[2], hw[2 * l + 1] = t->shape[3];
  }
  if (g->anchors && !memcmp(hw, g->hw, sizeof hw)) return g->anchors;
  int n = kd_anchors_total(&g->acfg, hw);
  float *a = malloc((size_t)n * 4 * sizeof *a);
  if (!a) return kd_error(err, "gfl: out of memory for %d anchors", n), NULL;
  if (kd_anchors_generate(&g->acfg, hw, a, g->off, err)) return free(a), NULL;
  free(g->anchors);
  g->anchors = a, g->total = n;
  memcpy(g->hw, hw, sizeof hw);
  return a;
}

/* The positive locations of a batch, in (image, level, cell) order. */
typedef struct {
  int n, level, cell; /* cell = h*W + w within the level */
  int flat;           /* n*A_total + anchor */
} Pos;

static int loss(void *h, KdCtx *c, const KdHeadOut *o, const KdGtImage *gt, int n, const KdDetLossCfg *lc, KdDetLoss *out,
                KdError *err) {
  Gfl *g = h;
  const float *anchors = anchors_for(g, o, err);
  if (!anchors) return -1;
  const int At = g->total, L = g->levels.n, B = g->B, K = g->K;
  const size_t NA = (size_t)n * At;
  int *tcls = kd_ctx_alloc(c, NA * sizeof *tcls), *match = kd_ctx_alloc(c, NA * sizeof *match);
  float *tbox = kd_ctx_alloc(c, NA * 4 * sizeof *tbox), *tscore = kd_ctx_alloc(c, NA * sizeof *tscore);
  if (!tcls || !match || !tbox || !tscore) return kd_error(err, "gfl: out of memory for the targets");
  int samples, npos = kd_atss_targets(anchors, g->off, L, gt, n, K, g->cfg.gfl.topk, match, tcls, tbox, &samples, err);
  if (npos < 0) return -1;
  memset(tscore, 0, NA * sizeof *tscore);
  Pos *pos = npos ? kd_ctx_alloc(c, (size_t)npos * sizeof *pos) : NULL;
  if (npos && !pos) return kd_error(err, "gfl: out of memory");
  /* Level-major, so that each level's positives are one run (one gather). */
  int np = 0, lstart[KD_MAX_LEVELS + 1] = {0};
  for (int l = 0; l < L; l++, lstart[l] = np)
    for (int i = 0; i < n; i++)
      for (int a = g->off[l]; a < g->off[l + 1]; a++)
        if (match[(size_t)i * At + a] >= 0) pos[np++] = (Pos){i, l, a - g->off[l], i * At + a};
  /* Per positive: the detached max class score (weight), the point and
   * target in stride units, and the decoded box's IoU (QFL's target). */
  float *w = NULL, *pts = NULL, *tgt = NULL, *tdist = NULL, *w4 = NULL;
  double wsum = 0.0;
  if (np) {
    w = kd_ctx_alloc(c, (size_t)np * sizeof *w), w4 = kd_ctx_alloc(c, (size_t)np * 4 * sizeof *w4);
    pts = kd_ctx_alloc(c, (size_t)np * 2 * sizeof *pts), tgt = kd_ctx_alloc(c, (size_t)np * 4 * sizeof *tgt);
    tdist = kd_ctx_alloc(c, (size_t)np * 4 * sizeof *tdist);
    if (!w || !w4 || !pts || !tgt || !tdist) return kd_error(err, "gfl: out of memory");
  }
  for (int q = 0; q < np; q++) {
    const Pos *p = &pos[q];
    const KdTensor *cl = o->lv[OUT_CLS][p->level], *di = o->lv[OUT_DIST][p->level];
    size_t HW = (size_t)cl->shape[2] * cl->shape[3];
    float mx = 0.0f;
    for (int k = 0; k < K; k++) mx = fmaxf(mx, kd_sigmoidf(cl->data[((size_t)p->n * K + k) * HW + p->cell]));
    w[q] = mx, wsum += mx;
    for (int j = 0; j < 4; j++) w4[4 * q + j] = mx;
    const float *an = anchors + 4 * (size_t)(p->flat - p->n * At);
    float s = (float)g->levels.stride[p->level];
    pts[2 * q] = 0.5f * (an[0] + an[2]) / s, pts[2 * q + 1] = 0.5f * (an[1] + an[3]) / s;
    for (int j = 0; j < 4; j++) tgt[4 * q + j] = tbox[4 * (size_t)p->flat + j] / s;
    kd_bbox2distance(pts + 2 * q, tgt + 4 * q, (float)(B - 1), tdist + 4 * q);
    float dec[4];
    const float *d0 = di->data + (size_t)p->n * 4 * B * HW + p->cell;
    double side[4];
    for (int j = 0; j < 4; j++) side[j] = kd_side_integral(d0 + (size_t)j * B * HW, HW, B);
    dec[0] = (float)(pts[2 * q] - side[0]), dec[1] = (float)(pts[2 * q + 1] - side[1]);
    dec[2] = (float)(pts[2 * q] + side[2]), dec[3] = (float)(pts[2 * q + 1] + side[3]);
    double iou;
    kd_giou_aligned(dec, tgt + 4 * q, 1e-6f, &iou);
    tscore[p->flat] = (float)iou;
  }
  KdDenseAssign *as = &out->assign;
  *as = (KdDenseAssign){.A = 1, .K = K, .A_total = At, .anchors = anchors, .target_cls = tcls, .target_boxes = tbox,
                        .match_gt = match, .num_pos = npos};
  out->has_assign = 1, out->num_pos = npos;
  KdTensor *cls = kd_qfl_loss(c, o->lv[OUT_CLS], L, tcls, tscore, lc->qfl_beta, (float)(samples > 1 ? samples : 1));
  KdTensor *box, *dfl;
  if (np) {
    /* Gather the positives' 4 x B logits per level, then one (4P, B) matrix. */
    KdTensor *parts[KD_MAX_LEVELS];
    int nparts = 0;
    for (int l = 0; l < L; l++) {
      int cnt = lstart[l + 1] - lstart[l];
      if (!cnt) continue;
      const KdTensor *di = o->lv[OUT_DIST][l];
      size_t HW = (size_t)di->shape[2] * di->shape[3];
      int *idx = kd_ctx_alloc(c, (size_t)cnt * 4 * B * sizeof *idx), m = 0;
      if (!idx) return kd_error(err, "gfl: out of memory");
      for (int q = lstart[l]; q < lstart[l + 1]; q++)
        for (int e = 0; e < 4 * B; e++) idx[m++] = (int)(((size_t)pos[q].n * 4 * B + e) * HW + pos[q].cell);
      parts[nparts++] = kd_gather(c, o->lv[OUT_DIST][l], idx, m);
    }
    KdTensor *flat = nparts == 1 ? parts[0] : kd_concat(c, parts, nparts, 0);
    KdTensor *logits = kd_reshape(c, flat, 2, (int[]){4 * np, B});
    KdTensor *corners = kd_reshape(c, kd_integral(c, logits), 2, (int[]){np, 4});
    KdTensor *boxes = kd_distance2bbox(c, corners, pts);
    double avg = wsum + 1e-6;
    box = kd_scale(c, kd_giou_aligned_loss(c, boxes, tgt, w, 1e-6f), (float)(1.0 / avg));
    dfl = kd_scale(c, kd_dfl_loss(c, logits, tdist, w4), (float)(1.0 / (4.0 * avg)));
  } else {
    /* No positives: zero parts that still reach the side outputs (as mmdet's bbox_pred.sum() * 0). */
    box = kd_scale(c, kd_sum_all(c, o->lv[OUT_DIST][0]), 0.0f);
    dfl = kd_scale(c, kd_sum_all(c, o->lv[OUT_DIST][0]), 0.0f);
  }
  out->nparts = 3;
  out->parts[0].name = "cls", out->parts[0].value = cls;
  out->parts[1].name = "box", out->parts[1].value = box;
  out->parts[2].name = "dfl", out->parts[2].value = dfl;
  out->total = kd_add(c, kd_add(c, cls, kd_scale(c, box, lc->box_weight)), kd_scale(c, dfl, lc->dfl_weight));
  return out->total ? 0 : kd_error(err, "loss: %s", kd_ctx_error(c));
}

static int decode(void *h, const KdHeadOut *o, const KdPostCfg *pc, int n, const float *image_wh, KdDetection *out,
                  int *count, KdError *err) {
  Gfl *g = h;
  const float *anchors = anchors_for(g, o, err);
  if (!anchors) return -1;
  const int L = g->levels.n, B = g->B;
  KdTensor boxes[KD_MAX_LEVELS];
  KdTensor *bp[KD_MAX_LEVELS];
  int rc = 0;
  for (int l = 0; l < L; l++) {
    const KdTensor *d = o->lv[OUT_DIST][l];
    int H = d->shape[2], W = d->shape[3], N = d->shape[0];
    size_t HW = (size_t)H * W;
    boxes[l] = (KdTensor){.ndim = 4, .shape = {N, 4, H, W}, .numel = (size_t)N * 4 * HW};
    bp[l] = &boxes[l];
    if (!(boxes[l].data = malloc(boxes[l].numel * sizeof(float)))) rc = -1;
    if (rc) break;
    double s = g->levels.stride[l];
    for (int i = 0; i < N; i++)
      for (size_t cell = 0; cell < HW; cell++) {
        const float *an = anchors + 4 * (size_t)(g->off[l] + (int)cell);
        double px = 0.5 * (an[0] + an[2]), py = 0.5 * (an[1] + an[3]), e[4];
        const float *d0 = d->data + (size_t)i * 4 * B * HW + cell;
        for (int j = 0; j < 4; j++) e[j] = s * kd_side_integral(d0 + (size_t)j * B * HW, HW, B);
        float *b = boxes[l].data + (size_t)i * 4 * HW + cell;
        b[0] = (float)(px - e[0]), b[HW] = (float)(py - e[1]), b[2 * HW] = (float)(px + e[2]), b[3 * HW] = (float)(py + e[3]);
      }
  }
  (void)n;
  if (!rc) rc = kd_postprocess(o->lv[OUT_CLS], bp, L, 1, NULL, NULL, pc, image_wh, out, count, err);
  else kd_error(err, "gfl: out of memory for decoded boxes");
  for (int l = 0; l < L; l++) free(boxes[l].data);
  return rc;
}

/* The level whose anchor fits the box best (log-size distance). */
static int box_level(const void *h, const float *b) {
  const Gfl *g = h;
  double side = sqrt(fmax(1e-6, (double)(b[2] - b[0]) * (b[3] - b[1]))), best = INFINITY;
  int lv = 0;
  for (int l = 0; l < g->acfg.nlevels; l++) {
    double d = fabs(log2(side / kd_anchor_base_size(&g->acfg, l)));
    if (d < best) best = d, lv = l;
  }
  return lv;
}

static double flops(const void *h, int n, const int *lhw) {
  const Gfl *g = h;
  const KdTower *t[2] = {&g->cls, &g->reg};
  const KdConv *outs[2] = {&g->out_cls, &g->out_reg};
  double f = 0;
  for (int l = 0; l < g->levels.n; l++)
    for (int k = 0; k < 2; k++) {
      int a = lhw[2 * l], b = lhw[2 * l + 1];
      f += kd_tower_flops(t[k], n, &a, &b);
      f += kd_conv_flops(outs[k], n, &a, &b);
    }
  return f;
}

static const char *const prefixes[] = {"head.", NULL};

const KdHeadKind kd_head_gfl = {
    .name = "gfl",
    .label = "GFL",
    .outputs = outputs,
    .noutputs = NOUT,
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
