/* The FPN neck: laterals, top-down pathway, output convs and extra levels,
 * with the level table they define. No backbone or head code here. */
#include "model/neck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct KdNeck {
  KdNeckCfg cfg;
  int first_stage, nlat;                  /* laterals on stages first_stage..3 */
  KdConv inner[KD_BACKBONE_STAGES], layer[KD_BACKBONE_STAGES];
  KdConv p6, p7;
  KdLevels levels;
};

int kd_neck_cfg_check(const KdNeckCfg *cfg, KdError *err) {
  if (cfg->channels < 1 || cfg->channels > 1024) return kd_error(err, "model.fpn_channels: %d outside 1..1024", cfg->channels);
  if (cfg->first_level != 2 && cfg->first_level != 3)
    return kd_error(err, "model.fpn_first_level: %d is not 2 (P2) or 3 (P3)", cfg->first_level);
  if (cfg->extra_levels < 0 || cfg->extra_levels > 2) return kd_error(err, "model.extra_levels: %d outside 0..2", cfg->extra_levels);
  if (cfg->extra < KD_EXTRA_P6P7_P5 || cfg->extra > KD_EXTRA_MAXPOOL) return kd_error(err, "model.extra_from: unknown kind %d", (int)cfg->extra);
  if (cfg->extra == KD_EXTRA_MAXPOOL && cfg->extra_levels > 1)
    return kd_error(err, "model.extra_levels: %d, but the max-pool extra block gives one level (P6)", cfg->extra_levels);
  return 0;
}

KdNeck *kd_neck_new(const KdNeckCfg *cfg, const KdBackbone *bb, KdParams *p, KdError *err) {
  if (kd_neck_cfg_check(cfg, err)) return NULL;
  KdNeck *n = calloc(1, sizeof *n);
  if (!n) return kd_error(err, "out of memory"), NULL;
  n->cfg = *cfg;
  n->first_stage = cfg->first_level - 2;
  n->nlat = KD_BACKBONE_STAGES - n->first_stage;
  int f = cfg->channels, rc = 0;
  char nm[96];
  for (int l = 0; l < n->nlat; l++) {
    int s = n->first_stage + l;
    snprintf(nm, sizeof nm, "backbone.fpn.inner_blocks.%d.0", l);
    rc |= kd_conv_add(&n->inner[l], p, nm, kd_backbone_channels(bb, s), f, 1, 1, 0, 1);
    snprintf(nm, sizeof nm, "backbone.fpn.layer_blocks.%d.0", l);
    rc |= kd_conv_add(&n->layer[l], p, nm, f, f, 3, 1, 1, 1);
    n->layer[l].cfg.layout = KD_CONV_PLAIN; /* the FPN outputs are NCHW */
    kd_levels_add(&n->levels, kd_backbone_stride(bb, s));
  }
  if (cfg->extra != KD_EXTRA_MAXPOOL) {
    int in6 = cfg->extra == KD_EXTRA_P6P7_C5 ? kd_backbone_channels(bb, KD_BACKBONE_STAGES - 1) : f;
    if (cfg->extra_levels >= 1) rc |= kd_conv_add(&n->p6, p, "backbone.fpn.extra_blocks.p6", in6, f, 3, 2, 1, 1);
    if (cfg->extra_levels >= 2) rc |= kd_conv_add(&n->p7, p, "backbone.fpn.extra_blocks.p7", f, f, 3, 2, 1, 1);
    n->p6.cfg.layout = n->p7.cfg.layout = KD_CONV_PLAIN;
  }
  for (int e = 0; e < cfg->extra_levels; e++) kd_levels_add(&n->levels, 2 * n->levels.stride[n->levels.n - 1]);
  if (rc) {
    kd_neck_free(n);
    return kd_error(err, "could not build the FPN (out of memory?)"), NULL;
  }
  return n;
}

void kd_neck_free(KdNeck *n) { free(n); }

static int has_conv(const KdNeck *n, int e) { return n->cfg.extra != KD_EXTRA_MAXPOOL && n->cfg.extra_levels > e; }

void kd_neck_init(KdNeck *n, KdRng *r) {
  KdConv *cv[2 * KD_BACKBONE_STAGES + 2];
  int k = 0;
  for (int l = 0; l < n->nlat; l++) cv[k++] = &n->inner[l], cv[k++] = &n->layer[l];
  if (has_conv(n, 0)) cv[k++] = &n->p6;
  if (has_conv(n, 1)) cv[k++] = &n->p7;
  for (int i = 0; i < k; i++) {
    kd_init_kaiming_uniform_a1(cv[i]->w, r);
    kd_init_const(cv[i]->b, 0.0f);
  }
}

const KdLevels *kd_neck_levels(const KdNeck *n) { return &n->levels; }

void kd_neck_forward(const KdNeck *n, KdCtx *c, KdTensor *const *cfeat, KdTensor **feat) {
  KdTensor *const *cin = cfeat + n->first_stage;
  int top = n->nlat - 1;
  /* Top-down from C5, nearest upsampling to the lateral's size. */
  KdTensor *last = kd_conv_fwd(c, &n->inner[top], cin[top]);
  feat[top] = kd_conv_fwd(c, &n->layer[top], last);
  for (int l = top - 1; l >= 0; l--) {
    KdTensor *lat = kd_conv_fwd(c, &n->inner[l], cin[l]);
    if (!lat || !last) return;
    KdTensor *up = kd_upsample_nearest_to(c, last, lat->shape[2], lat->shape[3]);
    last = kd_add(c, lat, up);
    feat[l] = kd_conv_fwd(c, &n->layer[l], last);
  }
  if (n->cfg.extra_levels < 1) return;
  if (n->cfg.extra == KD_EXTRA_MAXPOOL) {
    feat[top + 1] = kd_maxpool2d(c, feat[top], 1, 2, 0);
    return;
  }
  feat[top + 1] = kd_conv_fwd(c, &n->p6, n->cfg.extra == KD_EXTRA_P6P7_C5 ? cin[top] : feat[top]);
  if (n->cfg.extra_levels >= 2) feat[top + 2] = kd_conv_fwd(c, &n->p7, kd_relu(c, feat[top + 1]));
}

static int copy_conv(KdConv *dst, const KdConv *src) {
  int k = 0;
  const KdTensor *s[2] = {src->w, src->b};
  KdTensor *d[2] = {dst->w, dst->b};
  for (int i = 0; i < 2; i++)
    if (s[i] && d[i] && kd_tensor_same_shape(s[i], d[i])) memcpy(d[i]->data, s[i]->data, d[i]->numel * sizeof(float)), k++;
  return k;
}

int kd_neck_inherit(KdNeck *dst, const KdNeck *src) {
  int copied = 0;
  for (int l = 0; l < dst->nlat; l++) {
    int k = kd_levels_find(&src->levels, dst->levels.stride[l]);
    if (k < 0 || k >= src->nlat) continue;
    copied += copy_conv(&dst->inner[l], &src->inner[k]) + copy_conv(&dst->layer[l], &src->layer[k]);
  }
  if (dst->cfg.extra == src->cfg.extra)
    for (int e = 0; e < 2; e++)
      if (has_conv(dst, e) && has_conv(src, e)) copied += copy_conv(e ? &dst->p7 : &dst->p6, e ? &src->p7 : &src->p6);
  return copied;
}

double kd_neck_flops(const KdNeck *n, int batch, const int *hw, int *lhw) {
  double f = 0;
  for (int l = 0; l < n->nlat; l++) {
    int s = n->first_stage + l, a = hw[2 * s], b = hw[2 * s + 1];
    f += kd_conv_flops(&n->inner[l], batch, &a, &b);
    f += kd_conv_flops(&n->layer[l], batch, &a, &b);
    lhw[2 * l] = a, lhw[2 * l + 1] = b;
  }
  for (int e = 0, l = n->nlat; e < n->cfg.extra_levels; e++, l++) {
    int a = e == 0 && n->cfg.extra == KD_EXTRA_P6P7_C5 ? hw[2 * (KD_BACKBONE_STAGES - 1)] : lhw[2 * (l - 1)];
    int b = e == 0 && n->cfg.extra == KD_EXTRA_P6P7_C5 ? hw[2 * KD_BACKBONE_STAGES - 1] : lhw[2 * (l - 1) + 1];
    if (has_conv(n, e)) f += kd_conv_flops(e ? &n->p7 : &n->p6, batch, &a, &b);
    else a = (a - 1) / 2 + 1, b = (b - 1) / 2 + 1;
    lhw[2 * l] = a, lhw[2 * l + 1] = b;
  }
  return f;
}
