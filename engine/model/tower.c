/* Dense-head conv towers (tower.h). */
#include "model/tower.h"

#include <stdio.h>

#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the module-name formats come from the head kinds */

int kd_tower_add(KdTower *t, KdParams *p, const char *conv_fmt, const char *gn_fmt, int channels, int n, int gn) {
  int rc = 0;
  char buf[128];
  t->n = n, t->gn = gn;
  for (int i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, conv_fmt, i);
    rc |= kd_conv_add(&t->conv[i], p, buf, channels, channels, 3, 1, 1, !gn);
    if (gn) {
      snprintf(buf, sizeof buf, gn_fmt, i);
      rc |= kd_gn_add(&t->gn_layer[i], p, buf, channels, 32);
    }
  }
  /* The towers run on the blocked layout; the head's output convs turn it back. */
  if (n > 0) t->conv[0].cfg.layout = KD_CONV_BLOCKED;
  return rc;
}

void kd_tower_init(KdTower *t, KdRng *r) {
  for (int i = 0; i < t->n; i++) {
    kd_init_normal(t->conv[i].w, 0.01f, r);
    if (t->conv[i].b) kd_init_const(t->conv[i].b, 0.0f);
    if (t->gn) {
      kd_init_const(t->gn_layer[i].gamma, 1.0f);
      kd_init_const(t->gn_layer[i].beta, 0.0f);
    }
  }
}

KdTensor *kd_tower_fwd_first(KdCtx *c, const KdTower *t, KdTensor *x, KdTensor **first) {
  if (first) *first = x;
  for (int i = 0; i < t->n; i++) {
    x = kd_conv_fwd(c, &t->conv[i], x);
    if (t->gn) x = kd_groupnorm(c, x, t->gn_layer[i].groups, t->gn_layer[i].gamma, t->gn_layer[i].beta, 1e-5f);
    x = kd_relu(c, x);
    if (i == 0 && first) *first = x;
  }
  return x;
}

KdTensor *kd_tower_fwd(KdCtx *c, const KdTower *t, KdTensor *x) { return kd_tower_fwd_first(c, t, x, NULL); }

double kd_tower_flops(const KdTower *t, int n, int *h, int *w) {
  double f = 0;
  for (int i = 0; i < t->n; i++) f += kd_conv_flops(&t->conv[i], n, h, w);
  return f;
}

int kd_dense_head_cfg_check(const KdHeadCfg *cfg, int channels, KdError *err) {
  if (cfg->convs < 0 || cfg->convs > KD_TOWER_MAX)
    return kd_error(err, "model.head_convs: %d outside 0..%d", cfg->convs, KD_TOWER_MAX);
  if (cfg->gn && channels % 32)
    return kd_error(err, "model.head_norm: GroupNorm(32) needs fpn channels divisible by 32, got %d", channels);
  if (cfg->num_classes < 1 || cfg->num_classes > 1000)
    return kd_error(err, "model.num_classes: %d outside 1..1000", cfg->num_classes);
  if (!(cfg->prior_prob > 0.0f && cfg->prior_prob < 1.0f))
    return kd_error(err, "model.prior_prob: %g outside (0, 1)", cfg->prior_prob);
  return 0;
}
