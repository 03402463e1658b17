/* The region proposal network (see rpn.h): its layers, anchors, proposals
 * and loss. The RoI stage and the head kind live elsewhere. */
#include "model/rpn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "detect/detloss.h"
#include "detect/sampler.h"

struct KdRpn {
  KdRpnCfg cfg;
  KdLevels levels;
  int A;
  KdConv conv[KD_RPN_MAX_CONVS], cls, box;
  KdAssigner *assigner;
};

void kd_rpn_cfg_default(KdRpnCfg *cfg) {
  *cfg = (KdRpnCfg){.conv_depth = 1, .nsizes = 5, .sizes = {32, 64, 128, 256, 512}, .nratios = 3, .ratios = {0.5f, 1, 2},
                    .pre_nms_top_n_train = 2000, .pre_nms_top_n_test = 1000, .post_nms_top_n_train = 2000,
                    .post_nms_top_n_test = 1000, .nms_thresh = 0.7f, .min_size = 1e-3f, .score_thresh = 0.0f,
                    .fg_iou_thresh = 0.7f, .bg_iou_thresh = 0.3f, .batch_size_per_image = 256, .positive_fraction = 0.5f};
}

KdProposalCfg kd_rpn_proposal_cfg(const KdRpnCfg *cfg, int training) {
  return (KdProposalCfg){.pre_nms_top_n = training ? cfg->pre_nms_top_n_train : cfg->pre_nms_top_n_test,
                         .post_nms_top_n = training ? cfg->post_nms_top_n_train : cfg->post_nms_top_n_test,
                         .nms_thresh = cfg->nms_thresh, .min_size = cfg->min_size, .score_thresh = cfg->score_thresh};
}

/* The anchor shapes: one size per level (scale 1) and the ratios. */
static void anchor_cfg(const KdRpnCfg *cfg, const KdLevels *lv, KdAnchorCfg *a) {
  kd_anchor_cfg_default(a);
  a->nscales = 1, a->scales[0] = 1.0f;
  a->nratios = cfg->nratios;
  for (int i = 0; i < cfg->nratios && i < KD_ANCHOR_MAX_RATIOS; i++) a->ratios[i] = cfg->ratios[i];
  a->nlevels = lv->n;
  for (int l = 0; l < lv->n && l < KD_ANCHOR_MAX_LEVELS; l++) a->strides[l] = lv->stride[l], a->level_size[l] = cfg->sizes[l];
}

static KdAssignCfg assign_cfg(const KdRpnCfg *cfg) {
  KdAssignCfg a;
  kd_assign_cfg_default(&a);
  a.pos_iou = cfg->fg_iou_thresh, a.neg_iou = cfg->bg_iou_thresh, a.low_quality = 1;
  return a;
}

int kd_rpn_cfg_check(const KdRpnCfg *cfg, const KdLevels *lv, KdError *err) {
  if (cfg->conv_depth < 1 || cfg->conv_depth > KD_RPN_MAX_CONVS)
    return kd_error(err, "rpn.conv_depth: %d outside 1..%d", cfg->conv_depth, KD_RPN_MAX_CONVS);
  if (cfg->nsizes < 1 || cfg->nsizes > KD_ANCHOR_MAX_LEVELS)
    return kd_error(err, "rpn.anchor_sizes: %d sizes, expected 1..%d", cfg->nsizes, KD_ANCHOR_MAX_LEVELS);
  if (cfg->nratios < 1 || cfg->nratios > KD_ANCHOR_MAX_RATIOS)
    return kd_error(err, "rpn.aspect_ratios: %d ratios, expected 1..%d", cfg->nratios, KD_ANCHOR_MAX_RATIOS);
  if (lv && lv->n != cfg->nsizes)
    return kd_error(err, "rpn.anchor_sizes: %d sizes for the neck's %d levels (%s..%s); give one size per level",
                    cfg->nsizes, lv->n, lv->name[0], lv->name[lv->n - 1]);
  if (!(cfg->bg_iou_thresh >= 0.0f && cfg->bg_iou_thresh <= cfg->fg_iou_thresh && cfg->fg_iou_thresh <= 1.0f))
    return kd_error(err, "rpn.fg_iou_thresh %g, rpn.bg_iou_thresh %g: expected 0 <= bg <= fg <= 1", cfg->fg_iou_thresh,
                    cfg->bg_iou_thresh);
  if (cfg->batch_size_per_image < 1 || cfg->batch_size_per_image > 1000000)
    return kd_error(err, "rpn.batch_size_per_image: %d outside 1..1000000", cfg->batch_size_per_image);
  if (!(cfg->positive_fraction >= 0.0f && cfg->positive_fraction <= 1.0f))
    return kd_error(err, "rpn.positive_fraction: %g outside [0, 1]", cfg->positive_fraction);
  KdProposalCfg tr = kd_rpn_proposal_cfg(cfg, 1), te = kd_rpn_proposal_cfg(cfg, 0);
  if (kd_proposal_cfg_check(&tr, "rpn (training):", err) || kd_proposal_cfg_check(&te, "rpn (test):", err)) return -1;
  KdAnchorCfg a;
  KdLevels one = {.n = cfg->nsizes};
  for (int l = 0; l < cfg->nsizes; l++) one.stride[l] = lv ? lv->stride[l] : 4 << l;
  anchor_cfg(cfg, &one, &a);
  KdAssignCfg as = assign_cfg(cfg);
  if (kd_anchor_cfg_check(&a, err) || kd_assign_cfg_check(&as, err)) return kd_error_prefix(err, "rpn: ");
  return 0;
}

void kd_rpn_free(KdRpn *r) {
  if (!r) return;
  kd_assigner_free(r->assigner);
  free(r);
}

KdRpn *kd_rpn_new(const KdRpnCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err) {
  if (kd_rpn_cfg_check(cfg, lv, err)) return NULL;
  KdRpn *r = calloc(1, sizeof *r);
  if (!r) return kd_error(err, "out of memory"), NULL;
  r->cfg = *cfg, r->levels = *lv, r->A = cfg->nratios;
  KdAnchorCfg a;
  anchor_cfg(cfg, lv, &a);
  KdAssignCfg as = assign_cfg(cfg);
  if (!(r->assigner = kd_assigner_new(&a, &as, err))) return kd_rpn_free(r), NULL;
  int rc = 0;
  char name[64];
  for (int i = 0; i < cfg->conv_depth; i++) {
    snprintf(name, sizeof name, "rpn.head.conv.%d.0", i);
    rc |= kd_conv_add(&r->conv[i], p, name, channels, channels, 3, 1, 1, 1);
  }
  rc |= kd_conv_add(&r->cls, p, "rpn.head.cls_logits", channels, r->A, 1, 1, 0, 1);
  rc |= kd_conv_add(&r->box, p, "rpn.head.bbox_pred", channels, 4 * r->A, 1, 1, 0, 1);
  if (rc) {
    kd_rpn_free(r);
    return kd_error(err, "could not build the RPN (out of memory?)"), NULL;
  }
  /* The shared conv runs blocked where it can; the outputs are read as NCHW. */
  r->conv[0].cfg.layout = KD_CONV_BLOCKED;
  r->cls.cfg.layout = r->box.cfg.layout = KD_CONV_PLAIN;
  return r;
}

void kd_rpn_init(KdRpn *r, KdRng *rng) {
  KdConv *all[KD_RPN_MAX_CONVS + 2];
  int n = 0;
  for (int i = 0; i < r->cfg.conv_depth; i++) all[n++] = &r->conv[i];
  all[n++] = &r->cls, all[n++] = &r->box;
  for (int i = 0; i < n; i++) {
    kd_init_normal(all[i]->w, 0.01f, rng);
    kd_init_const(all[i]->b, 0.0f);
  }
}

int kd_rpn_anchors_per_loc(const KdRpn *r) { return r->A; }
const KdAnchorCfg *kd_rpn_anchor_cfg(const KdRpn *r) { return kd_assigner_anchor_cfg(r->assigner); }

void kd_rpn_forward(KdRpn *r, KdCtx *c, KdTensor *const *feat, KdTensor **obj, KdTensor **deltas) {
  for (int l = 0; l < r->levels.n; l++) {
    KdTensor *x = feat[l];
    for (int i = 0; i < r->cfg.conv_depth; i++) x = kd_relu(c, kd_conv_fwd(c, &r->conv[i], x));
    obj[l] = kd_conv_fwd(c, &r->cls, x);
    deltas[l] = kd_conv_fwd(c, &r->box, x);
  }
}

/* Level sizes of the outputs; -1 when one is missing or not of n images
 * (n < 0: any). */
static int level_sizes(const KdRpn *r, KdTensor *const *obj, int n, int *hw) {
  for (int l = 0; l < r->levels.n; l++) {
    if (!obj[l] || obj[l]->ndim != 4 || (n >= 0 && obj[l]->shape[0] != n)) return -1;
    hw[2 * l] = obj[l]->shape[2], hw[2 * l + 1] = obj[l]->shape[3];
  }
  return 0;
}

int kd_rpn_proposals(KdRpn *r, KdCtx *c, KdTensor *const *obj, KdTensor *const *deltas, int training,
                     const float *image_wh, KdRpnProposals *out, KdError *err) {
  int hw[2 * KD_MAX_LEVELS], total;
  if (level_sizes(r, obj, -1, hw)) return kd_error(err, "proposals: the RPN outputs are incomplete");
  const float *anchors = kd_assigner_anchors(r->assigner, hw, &total, err);
  if (!anchors) return -1;
  KdProposalCfg pc = kd_rpn_proposal_cfg(&r->cfg, training);
  int n = obj[0]->shape[0];
  *out = (KdRpnProposals){.n = n, .cap = pc.post_nms_top_n};
  size_t slots = (size_t)n * pc.post_nms_top_n;
  out->boxes = kd_ctx_alloc(c, slots * 4 * sizeof(float));
  out->scores = kd_ctx_alloc(c, slots * sizeof(float));
  out->count = kd_ctx_alloc(c, (size_t)n * sizeof(int));
  if (!out->boxes || !out->scores || !out->count) return kd_error(err, "proposals: out of memory for %zu proposals", slots);
  return kd_proposals(c, &pc, obj, deltas, r->levels.n, r->A, anchors, kd_assigner_coder(r->assigner), image_wh, out->boxes,
                      out->scores, out->count, err);
}

int kd_rpn_targets(KdRpn *r, KdCtx *c, KdTensor *const *obj, const KdGtImage *gt, int n, KdDenseAssign *out,
                   KdError *err) {
  int hw[2 * KD_MAX_LEVELS];
  if (level_sizes(r, obj, n, hw)) return kd_error(err, "RPN loss: the outputs are incomplete or not of %d images", n);
  /* Class-agnostic: any label is an object. */
  return kd_assigner_targets(r->assigner, c, hw, gt, n, 1 << 30, out, err);
}

int kd_rpn_sample(const KdRpn *r, const KdDenseAssign *t, int n, KdRng *rng, signed char *sel, KdError *err) {
  int sampled = 0;
  for (int i = 0; i < n; i++) {
    size_t off = (size_t)i * t->A_total;
    int k = kd_sample_balanced(t->target_cls + off, t->A_total, r->cfg.batch_size_per_image, r->cfg.positive_fraction, rng,
                               sel + off, NULL, err);
    if (k < 0) return -1;
    sampled += k;
  }
  return sampled;
}

int kd_rpn_loss(KdRpn *r, KdCtx *c, KdTensor *const *obj, KdTensor *const *deltas, const KdDenseAssign *t,
                const signed char *sel, int n, KdTensor **cls, KdTensor **box, KdError *err) {
  int hw[2 * KD_MAX_LEVELS];
  if (level_sizes(r, obj, n, hw) || level_sizes(r, deltas, n, hw) || kd_anchors_total(kd_rpn_anchor_cfg(r), hw) != t->A_total)
    return kd_error(err, "RPN loss: the outputs do not match the targets (%d images of %d anchors)", n, t->A_total);
  size_t na = (size_t)n * t->A_total;
  int *target = kd_ctx_alloc(c, na * sizeof *target), sampled = 0;
  if (!target) return kd_error(err, "RPN loss: out of memory");
  /* Sampled positives are class 0 of one, sampled negatives background,
   * the rest ignored: BCE is the focal loss at gamma 0 without alpha. */
  for (size_t i = 0; i < na; i++) {
    target[i] = sel[i] == 1 ? 0 : (sel[i] == 0 ? KD_MATCH_NEG : KD_MATCH_IGNORE);
    sampled += sel[i] >= 0;
  }
  float norm = sampled > 0 ? (float)sampled : 1.0f;
  *cls = kd_focal_loss(c, obj, r->levels.n, r->A, target, -1.0f, 0.0f, norm);
  *box = kd_smooth_l1_loss(c, deltas, r->levels.n, r->A, t->target_deltas, target, 1.0f / 9.0f, norm);
  return *cls && *box ? 0 : kd_error(err, "RPN loss: %s", kd_ctx_error(c));
}

double kd_rpn_flops(const KdRpn *r, int n, const int *lhw) {
  double f = 0;
  for (int l = 0; l < r->levels.n; l++) {
    int a = lhw[2 * l], b = lhw[2 * l + 1];
    for (int i = 0; i < r->cfg.conv_depth; i++) f += kd_conv_flops(&r->conv[i], n, &a, &b);
    int a2 = a, b2 = b;
    f += kd_conv_flops(&r->cls, n, &a, &b) + kd_conv_flops(&r->box, n, &a2, &b2);
  }
  return f;
}
