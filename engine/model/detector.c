/* Detector assembly: ResNet (torchvision layout), FPN over C3..C5 with
 * optional P6/P7, RetinaNet head with shared towers. */
#include "model/detector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Block {
  KdConv conv1, conv2, conv3;
  KdBn bn1, bn2, bn3;
  KdConv down;
  KdBn down_bn;
  int has_down, bottleneck;
} Block;

typedef struct Tower {
  KdConv conv[8];
  KdGn gn[8];
  KdConv out;
} Tower;

struct KdModel {
  KdModelCfg cfg;
  KdParams *params;
  KdConv stem;
  KdBn stem_bn;
  Block *blocks;
  int nblocks, stage_end[4];
  KdConv inner[3], layer[3], p6, p7;
  Tower cls, reg;
};

void kd_model_cfg_default(KdModelCfg *cfg) {
  *cfg = (KdModelCfg){.depth = 18, .width = 32, .bn = KD_BN_TRAIN, .fpn_channels = 64, .extra_levels = 0,
                      .head_convs = 4, .head_gn = 0, .num_classes = 10, .num_anchors = 9, .prior_prob = 0.01f};
}

static int stage_blocks(int depth, int *n) {
  static const int d10[4] = {1, 1, 1, 1}, d18[4] = {2, 2, 2, 2}, d34[4] = {3, 4, 6, 3};
  const int *s = depth == 10 ? d10 : depth == 18 ? d18 : (depth == 34 || depth == 50) ? d34 : NULL;
  if (!s) return -1;
  memcpy(n, s, sizeof d10);
  return 0;
}

int kd_model_cfg_check(const KdModelCfg *cfg, KdError *err) {
  int n[4];
  if (stage_blocks(cfg->depth, n)) return kd_error(err, "model.backbone.depth: %d is not one of 10, 18, 34, 50", cfg->depth);
  if (cfg->width < 1 || cfg->width > 512) return kd_error(err, "model.backbone.width: %d outside 1..512", cfg->width);
  if (cfg->fpn_channels < 1 || cfg->fpn_channels > 1024) return kd_error(err, "model.fpn.channels: %d outside 1..1024", cfg->fpn_channels);
  if (cfg->extra_levels < 0 || cfg->extra_levels > 2) return kd_error(err, "model.fpn.extra_levels: %d outside 0..2", cfg->extra_levels);
  if (cfg->head_convs < 0 || cfg->head_convs > 8) return kd_error(err, "model.head.convs: %d outside 0..8", cfg->head_convs);
  if (cfg->head_gn && cfg->fpn_channels % 32) return kd_error(err, "model.head.norm: GroupNorm(32) needs fpn channels divisible by 32, got %d", cfg->fpn_channels);
  if (cfg->num_classes < 1 || cfg->num_classes > 1000) return kd_error(err, "model.num_classes: %d outside 1..1000", cfg->num_classes);
  if (cfg->num_anchors < 1 || cfg->num_anchors > 64) return kd_error(err, "model.anchors: %d per location outside 1..64", cfg->num_anchors);
  if (!(cfg->prior_prob > 0.0f && cfg->prior_prob < 1.0f)) return kd_error(err, "model.head.prior_prob: %g outside (0, 1)", cfg->prior_prob);
  return 0;
}

static int build_tower(KdModel *m, Tower *t, const char *name, const char *out_name, int out_ch) {
  int f = m->cfg.fpn_channels;
  char buf[256];
  for (int i = 0; i < m->cfg.head_convs; i++) {
    snprintf(buf, sizeof buf, "head.%s.conv.%d.0", name, i);
    if (kd_conv_add(&t->conv[i], m->params, buf, f, f, 3, 1, 1, !m->cfg.head_gn)) return -1;
    if (m->cfg.head_gn) {
      snprintf(buf, sizeof buf, "head.%s.conv.%d.1", name, i);
      if (kd_gn_add(&t->gn[i], m->params, buf, f, 32)) return -1;
    }
  }
  snprintf(buf, sizeof buf, "head.%s.%s", name, out_name);
  if (kd_conv_add(&t->out, m->params, buf, f, out_ch, 3, 1, 1, 1)) return -1;
  /* The towers run on the blocked layout; the outputs the losses read are NCHW. */
  if (m->cfg.head_convs > 0) t->conv[0].cfg.layout = KD_CONV_BLOCKED;
  t->out.cfg.layout = KD_CONV_PLAIN;
  return 0;
}

static int build(KdModel *m) {
  const KdModelCfg *cfg = &m->cfg;
  KdParams *p = m->params;
  int w = cfg->width, n[4];
  stage_blocks(cfg->depth, n);
  int bottleneck = cfg->depth == 50, expansion = bottleneck ? 4 : 1;
  if (kd_conv_add(&m->stem, p, "backbone.body.conv1", 3, w, 7, 2, 3, 0) || kd_bn_add(&m->stem_bn, p, "backbone.body.bn1", w))
    return -1;
  /* From the stem on, the backbone's activations stay in the blocked
   * layout (no reorder between convolutions); the FPN outputs, which the
   * distillation methods and probes read, are NCHW. */
  m->stem.cfg.layout = KD_CONV_BLOCKED;
  m->nblocks = n[0] + n[1] + n[2] + n[3];
  m->blocks = calloc((size_t)m->nblocks, sizeof *m->blocks);
  if (!m->blocks) return -1;
  int in = w, bi = 0;
  char nm[256];
  for (int s = 0; s < 4; s++) {
    int planes = w << s;
    for (int j = 0; j < n[s]; j++, bi++) {
      Block *b = &m->blocks[bi];
      int stride = (s > 0 && j == 0) ? 2 : 1, out = planes * expansion;
      b->bottleneck = bottleneck;
#define NAME(part) (snprintf(nm, sizeof nm, "backbone.body.layer%d.%d.%s", s + 1, j, part), nm)
      if (bottleneck) {
        if (kd_conv_add(&b->conv1, p, NAME("conv1"), in, planes, 1, 1, 0, 0) || kd_bn_add(&b->bn1, p, NAME("bn1"), planes) ||
            kd_conv_add(&b->conv2, p, NAME("conv2"), planes, planes, 3, stride, 1, 0) || kd_bn_add(&b->bn2, p, NAME("bn2"), planes) ||
            kd_conv_add(&b->conv3, p, NAME("conv3"), planes, out, 1, 1, 0, 0) || kd_bn_add(&b->bn3, p, NAME("bn3"), out))
          return -1;
      } else {
        if (kd_conv_add(&b->conv1, p, NAME("conv1"), in, planes, 3, stride, 1, 0) || kd_bn_add(&b->bn1, p, NAME("bn1"), planes) ||
            kd_conv_add(&b->conv2, p, NAME("conv2"), planes, planes, 3, 1, 1, 0) || kd_bn_add(&b->bn2, p, NAME("bn2"), planes))
          return -1;
      }
      if (stride != 1 || in != out) {
        b->has_down = 1;
        if (kd_conv_add(&b->down, p, NAME("downsample.0"), in, out, 1, stride, 0, 0) || kd_bn_add(&b->down_bn, p, NAME("downsample.1"), out))
          return -1;
      }
#undef NAME
      in = out;
    }
    m->stage_end[s] = bi;
  }
  int f = cfg->fpn_channels;
  for (int l = 0; l < 3; l++) {
    int cin = (w << (l + 1)) * expansion;
    snprintf(nm, sizeof nm, "backbone.fpn.inner_blocks.%d.0", l);
    if (kd_conv_add(&m->inner[l], p, nm, cin, f, 1, 1, 0, 1)) return -1;
    snprintf(nm, sizeof nm, "backbone.fpn.layer_blocks.%d.0", l);
    if (kd_conv_add(&m->layer[l], p, nm, f, f, 3, 1, 1, 1)) return -1;
    m->layer[l].cfg.layout = KD_CONV_PLAIN;
  }
  if (cfg->extra_levels >= 1 && kd_conv_add(&m->p6, p, "backbone.fpn.extra_blocks.p6", f, f, 3, 2, 1, 1)) return -1;
  if (cfg->extra_levels >= 2 && kd_conv_add(&m->p7, p, "backbone.fpn.extra_blocks.p7", f, f, 3, 2, 1, 1)) return -1;
  m->p6.cfg.layout = m->p7.cfg.layout = KD_CONV_PLAIN;
  if (build_tower(m, &m->cls, "classification_head", "cls_logits", cfg->num_anchors * cfg->num_classes)) return -1;
  if (build_tower(m, &m->reg, "regression_head", "bbox_reg", cfg->num_anchors * 4)) return -1;
  return 0;
}

static void init_weights(KdModel *m, uint64_t seed) {
  KdRng r;
  kd_rng_seed(&r, seed, 7);
  kd_init_kaiming_normal_fanout(m->stem.w, &r);
  kd_bn_init(&m->stem_bn);
  for (int i = 0; i < m->nblocks; i++) {
    Block *b = &m->blocks[i];
    kd_init_kaiming_normal_fanout(b->conv1.w, &r);
    kd_init_kaiming_normal_fanout(b->conv2.w, &r);
    kd_bn_init(&b->bn1);
    kd_bn_init(&b->bn2);
    if (b->bottleneck) {
      kd_init_kaiming_normal_fanout(b->conv3.w, &r);
      kd_bn_init(&b->bn3);
    }
    if (b->has_down) {
      kd_init_kaiming_normal_fanout(b->down.w, &r);
      kd_bn_init(&b->down_bn);
    }
  }
  KdConv *fpn[8];
  int nf = 0;
  for (int l = 0; l < 3; l++) fpn[nf++] = &m->inner[l], fpn[nf++] = &m->layer[l];
  if (m->cfg.extra_levels >= 1) fpn[nf++] = &m->p6;
  if (m->cfg.extra_levels >= 2) fpn[nf++] = &m->p7;
  for (int i = 0; i < nf; i++) {
    kd_init_kaiming_uniform_a1(fpn[i]->w, &r);
    kd_init_const(fpn[i]->b, 0.0f);
  }
  Tower *towers[2] = {&m->cls, &m->reg};
  for (int t = 0; t < 2; t++) {
    for (int i = 0; i < m->cfg.head_convs; i++) {
      kd_init_normal(towers[t]->conv[i].w, 0.01f, &r);
      if (towers[t]->conv[i].b) kd_init_const(towers[t]->conv[i].b, 0.0f);
      if (m->cfg.head_gn) {
        kd_init_const(towers[t]->gn[i].gamma, 1.0f);
        kd_init_const(towers[t]->gn[i].beta, 0.0f);
      }
    }
    kd_init_normal(towers[t]->out.w, 0.01f, &r);
    kd_init_const(towers[t]->out.b, 0.0f);
  }
  kd_init_const(m->cls.out.b, -logf((1.0f - m->cfg.prior_prob) / m->cfg.prior_prob));
}

KdModel *kd_model_new(const KdModelCfg *cfg, uint64_t seed, KdError *err) {
  if (kd_model_cfg_check(cfg, err)) return NULL;
  KdModel *m = calloc(1, sizeof *m);
  if (!m) return kd_error(err, "out of memory"), NULL;
  m->cfg = *cfg;
  m->params = kd_params_new();
  if (!m->params || build(m) || kd_params_finalize(m->params, err)) {
    kd_error(err, "could not build the model (out of memory?)");
    kd_model_free(m);
    return NULL;
  }
  init_weights(m, seed);
  if (cfg->bn == KD_BN_FROZEN) {
    /* Frozen BN: statistics and affine both fixed. */
    for (int i = 0; i < kd_params_count(m->params); i++) {
      KdTensor *t = kd_params_at(m->params, i);
      if (strncmp(t->name, "backbone.body.", 14) == 0 && strstr(t->name, "bn") && t->ndim == 1) t->requires_grad = 0;
      if (strstr(t->name, "downsample.1.")) t->requires_grad = 0;
    }
  }
  return m;
}

void kd_model_free(KdModel *m) {
  if (!m) return;
  kd_params_free(m->params);
  free(m->blocks);
  free(m);
}

const KdModelCfg *kd_model_cfg(const KdModel *m) { return &m->cfg; }
KdParams *kd_model_params(KdModel *m) { return m->params; }
int kd_model_num_levels(const KdModel *m) { return 3 + m->cfg.extra_levels; }
int kd_model_stride(const KdModel *m, int level) {
  (void)m;
  return 8 << level;
}

static KdTensor *conv_bn(KdCtx *c, const KdConv *cv, const KdBn *bn, KdTensor *x, KdBnMode mode, int relu) {
  KdTensor *y = kd_bn_fwd(c, bn, kd_conv_fwd(c, cv, x), mode);
  return relu ? kd_relu(c, y) : y;
}

static KdTensor *block_fwd(KdCtx *c, const Block *b, KdTensor *x, KdBnMode mode) {
  KdTensor *y = conv_bn(c, &b->conv1, &b->bn1, x, mode, 1);
  if (b->bottleneck) {
    y = conv_bn(c, &b->conv2, &b->bn2, y, mode, 1);
    y = conv_bn(c, &b->conv3, &b->bn3, y, mode, 0);
  } else {
    y = conv_bn(c, &b->conv2, &b->bn2, y, mode, 0);
  }
  KdTensor *id = b->has_down ? conv_bn(c, &b->down, &b->down_bn, x, mode, 0) : x;
  return kd_add_relu(c, y, id);
}

static KdTensor *tower_fwd(KdCtx *c, const KdModel *m, const Tower *t, KdTensor *x, KdTensor **last) {
  for (int i = 0; i < m->cfg.head_convs; i++) {
    x = kd_conv_fwd(c, &t->conv[i], x);
    if (m->cfg.head_gn) x = kd_groupnorm(c, x, t->gn[i].groups, t->gn[i].gamma, t->gn[i].beta, 1e-5f);
    x = kd_relu(c, x);
  }
  if (last) *last = x;
  return kd_conv_fwd(c, &t->out, x);
}

int kd_model_forward(KdModel *m, KdCtx *c, KdTensor *images, int training, KdDetOut *out) {
  memset(out, 0, sizeof *out);
  KdBnMode mode = (training && m->cfg.bn == KD_BN_TRAIN) ? KD_BN_TRAIN : KD_BN_EVAL;
  if (images && (images->ndim != 4 || images->shape[1] != 3)) {
    char b[64];
    kd_ctx_fail(c, "model input must be N,3,H,W, got %s", kd_tensor_shape_str(images, b, sizeof b));
    return -1;
  }
  KdTensor *x = conv_bn(c, &m->stem, &m->stem_bn, images, mode, 1);
  x = kd_maxpool2d(c, x, 3, 2, 1);
  for (int s = 0, bi = 0; s < 4; s++) {
    for (; bi < m->stage_end[s]; bi++) x = block_fwd(c, &m->blocks[bi], x, mode);
    if (s >= 1) out->c[s - 1] = x;
  }
  /* FPN: top-down from C5, nearest upsampling to the lateral's size. */
  KdTensor *last = kd_conv_fwd(c, &m->inner[2], out->c[2]);
  out->feat[2] = kd_conv_fwd(c, &m->layer[2], last);
  for (int l = 1; l >= 0; l--) {
    KdTensor *lat = kd_conv_fwd(c, &m->inner[l], out->c[l]);
    if (!lat || !last) return -1;
    KdTensor *up = kd_upsample_nearest_to(c, last, lat->shape[2], lat->shape[3]);
    last = kd_add(c, lat, up);
    out->feat[l] = kd_conv_fwd(c, &m->layer[l], last);
  }
  out->nlev = 3 + m->cfg.extra_levels;
  if (m->cfg.extra_levels >= 1) out->feat[3] = kd_conv_fwd(c, &m->p6, out->feat[2]);
  if (m->cfg.extra_levels >= 2) out->feat[4] = kd_conv_fwd(c, &m->p7, kd_relu(c, out->feat[3]));
  for (int l = 0; l < out->nlev; l++) {
    out->cls[l] = tower_fwd(c, m, &m->cls, out->feat[l], &out->cls_tower[l]);
    out->box[l] = tower_fwd(c, m, &m->reg, out->feat[l], NULL);
  }
  return kd_ctx_failed(c) ? -1 : 0;
}

static double conv_flops(const KdConv *cv, int n, int *h, int *w) {
  int k = cv->w->shape[2], s = cv->cfg.stride, pd = cv->cfg.pad;
  int ho = (*h + 2 * pd - k) / s + 1, wo = (*w + 2 * pd - k) / s + 1;
  *h = ho, *w = wo;
  return 2.0 * n * ho * wo * (double)cv->w->numel;
}

double kd_model_flops(const KdModel *m, int n, int h, int w) {
  double f = conv_flops(&m->stem, n, &h, &w);
  h = (h + 2 - 3) / 2 + 1, w = (w + 2 - 3) / 2 + 1;
  int hs[3], ws[3];
  for (int s = 0, bi = 0; s < 4; s++) {
    for (; bi < m->stage_end[s]; bi++) {
      const Block *b = &m->blocks[bi];
      int h0 = h, w0 = w;
      f += conv_flops(&b->conv1, n, &h, &w);
      f += conv_flops(&b->conv2, n, &h, &w);
      if (b->bottleneck) f += conv_flops(&b->conv3, n, &h, &w);
      if (b->has_down) f += conv_flops(&b->down, n, &h0, &w0);
    }
    if (s >= 1) hs[s - 1] = h, ws[s - 1] = w;
  }
  int lh[KD_MAX_LEVELS], lw[KD_MAX_LEVELS];
  for (int l = 0; l < 3; l++) {
    int a = hs[l], b = ws[l];
    f += conv_flops(&m->inner[l], n, &a, &b);
    f += conv_flops(&m->layer[l], n, &a, &b);
    lh[l] = a, lw[l] = b;
  }
  int nl = 3;
  if (m->cfg.extra_levels >= 1) { lh[3] = lh[2], lw[3] = lw[2]; f += conv_flops(&m->p6, n, &lh[3], &lw[3]); nl++; }
  if (m->cfg.extra_levels >= 2) { lh[4] = lh[3], lw[4] = lw[3]; f += conv_flops(&m->p7, n, &lh[4], &lw[4]); nl++; }
  for (int l = 0; l < nl; l++) {
    const Tower *t[2] = {&m->cls, &m->reg};
    for (int k = 0; k < 2; k++) {
      int a = lh[l], b = lw[l];
      for (int i = 0; i < m->cfg.head_convs; i++) f += conv_flops(&t[k]->conv[i], n, &a, &b);
      f += conv_flops(&t[k]->out, n, &a, &b);
    }
  }
  return f;
}
