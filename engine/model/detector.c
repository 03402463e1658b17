/* Detector assembly: a backbone, a neck and a head kind behind one API,
 * with the level table the neck defines. Layers live in their modules. */
#include "model/detector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct KdModel {
  KdModelCfg cfg;
  KdParams *params;
  KdBackbone *backbone;
  KdNeck *neck;
  const KdHeadKind *kind;
  void *head;
};

void kd_model_cfg_default(KdModelCfg *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->backbone = (KdBackboneCfg){.depth = 18, .width = 32, .bn = KD_BN_TRAIN};
  cfg->neck = (KdNeckCfg){.channels = 64, .first_level = 3, .extra_levels = 0, .extra = KD_EXTRA_P6P7_P5};
  KdHeadCfg *h = &cfg->head;
  snprintf(h->kind, sizeof h->kind, "retinanet");
  h->num_classes = 10, h->convs = 4, h->gn = 0, h->prior_prob = 0.01f;
  kd_anchor_cfg_default(&h->anchors);
  kd_assign_cfg_default(&h->assign);
  kd_rpn_cfg_default(&h->rpn);
  kd_roi_head_cfg_default(&h->roi);
  h->gfl = (KdGflCfg){.reg_max = 16, .topk = 9};
}

static const KdHeadKind *find_kind(const KdHeadCfg *h, KdError *err) {
  const KdHeadKind *k = kd_head_kind_find(h->kind);
  char names[256];
  if (!k) kd_error(err, "model.head: unknown head kind '%s' (known: %s)", h->kind, kd_head_kind_names(names, sizeof names));
  return k;
}

int kd_model_cfg_check(const KdModelCfg *cfg, KdError *err) {
  if (kd_backbone_cfg_check(&cfg->backbone, err) || kd_neck_cfg_check(&cfg->neck, err)) return -1;
  const KdHeadKind *k = find_kind(&cfg->head, err);
  if (!k) return -1;
  return k->check(&cfg->head, cfg->neck.channels, NULL, err); /* levels: checked again at build */
}

KdModel *kd_model_new(const KdModelCfg *cfg, uint64_t seed, KdError *err) {
  if (kd_model_cfg_check(cfg, err)) return NULL;
  KdModel *m = calloc(1, sizeof *m);
  if (!m) return kd_error(err, "out of memory"), NULL;
  m->cfg = *cfg;
  m->kind = kd_head_kind_find(cfg->head.kind);
  if (!(m->params = kd_params_new())) goto oom;
  /* Registration order (backbone, neck, head) is the order of the flat
   * parameter blocks and of the init stream below. */
  if (!(m->backbone = kd_backbone_new(&cfg->backbone, m->params, err))) goto fail;
  if (!(m->neck = kd_neck_new(&cfg->neck, m->backbone, m->params, err))) goto fail;
  if (!(m->head = m->kind->build(&cfg->head, cfg->neck.channels, kd_neck_levels(m->neck), m->params, err))) goto fail;
  if (kd_params_finalize(m->params, err)) goto fail;
  KdRng r;
  kd_rng_seed(&r, seed, 7);
  kd_backbone_init(m->backbone, &r);
  kd_neck_init(m->neck, &r);
  m->kind->init(m->head, &r);
  return m;
oom:
  kd_error(err, "could not build the model (out of memory?)");
fail:
  kd_model_free(m);
  return NULL;
}

void kd_model_free(KdModel *m) {
  if (!m) return;
  if (m->head) m->kind->destroy(m->head);
  kd_neck_free(m->neck);
  kd_backbone_free(m->backbone);
  kd_params_free(m->params);
  free(m);
}

const KdModelCfg *kd_model_cfg(const KdModel *m) { return &m->cfg; }
KdParams *kd_model_params(KdModel *m) { return m->params; }
const KdLevels *kd_model_levels(const KdModel *m) { return kd_neck_levels(m->neck); }
int kd_model_num_levels(const KdModel *m) { return kd_model_levels(m)->n; }
int kd_model_stride(const KdModel *m, int level) { return kd_model_levels(m)->stride[level]; }
int kd_model_channels(const KdModel *m) { return m->cfg.neck.channels; }
const KdHeadKind *kd_model_head_kind(const KdModel *m) { return m->kind; }
void kd_model_head_info(const KdModel *m, KdHeadInfo *out) { m->kind->info(m->head, out); }

KdTensor *const *kd_det_out(const KdDetOut *o, const char *name) { return kd_head_out_find(&o->head, name); }

int kd_model_forward(KdModel *m, KdCtx *c, KdTensor *images, int training, KdDetOut *out) {
  memset(out, 0, sizeof *out);
  if (images && (images->ndim != 4 || images->shape[1] != 3)) {
    char b[64];
    kd_ctx_fail(c, "model input must be N,3,H,W, got %s", kd_tensor_shape_str(images, b, sizeof b));
    return -1;
  }
  kd_backbone_forward(m->backbone, c, images, training, out->c);
  kd_neck_forward(m->neck, c, out->c, out->feat);
  out->levels = kd_model_levels(m);
  out->nlev = out->levels->n;
  if (kd_ctx_failed(c)) return -1;
  m->kind->forward(m->head, c, out->feat, training, &out->head);
  return kd_ctx_failed(c) ? -1 : 0;
}

int kd_model_head_forward(KdModel *m, KdCtx *c, KdTensor *const *feat, KdDetOut *out) {
  memset(out, 0, sizeof *out);
  out->levels = kd_model_levels(m);
  out->nlev = out->levels->n;
  for (int l = 0; l < out->nlev; l++) {
    if (!feat[l]) {
      kd_ctx_fail(c, "head forward: no features for level %s", out->levels->name[l]);
      return -1;
    }
    out->feat[l] = feat[l];
  }
  m->kind->forward(m->head, c, out->feat, 0, &out->head);
  return kd_ctx_failed(c) ? -1 : 0;
}

int kd_model_loss(KdModel *m, KdCtx *c, const KdDetOut *o, const KdGtImage *gt, int n, const KdDetLossCfg *lc,
                  KdDetLoss *out, KdError *err) {
  memset(out, 0, sizeof *out);
  return m->kind->loss(m->head, c, &o->head, gt, n, lc, out, err);
}

int kd_model_decode(KdModel *m, const KdDetOut *o, const KdPostCfg *pc, int n, const float *image_wh, KdDetection *out,
                    int *count, KdError *err) {
  return m->kind->decode(m->head, &o->head, pc, n, image_wh, out, count, err);
}

int kd_model_box_level(const KdModel *m, const float *box) { return m->kind->box_level ? m->kind->box_level(m->head, box) : 0; }

int kd_model_roi_forward(KdModel *m, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdHeadOut *out,
                         KdError *err) {
  if (!m->kind->roi_forward) return kd_error(err, "the %s head has no RoI head", m->kind->label);
  return m->kind->roi_forward(m->head, c, feat, rois, nrois, out, err);
}

int kd_model_inherit(KdModel *dst, const KdModel *src) {
  int n = kd_neck_inherit(dst->neck, src->neck);
  for (int i = 0; dst->kind == src->kind && dst->kind->param_prefixes[i]; i++)
    n += kd_params_copy_matching(dst->params, src->params, dst->kind->param_prefixes[i]);
  return n;
}

double kd_model_flops(const KdModel *m, int n, int h, int w) {
  int hw[2 * KD_BACKBONE_STAGES], lhw[2 * KD_MAX_LEVELS];
  double f = kd_backbone_flops(m->backbone, n, h, w, hw);
  f += kd_neck_flops(m->neck, n, hw, lhw);
  return f + (m->kind->flops ? m->kind->flops(m->head, n, lhw) : 0.0);
}
