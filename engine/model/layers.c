/* Convolution, batch norm and group norm as named parameters with their
 * initialisers; layers only, no model structure. */
#include "model/layers.h"

#include <math.h>
#include <stdio.h>

static KdTensor *add(KdParams *p, const char *prefix, const char *suffix, int ndim, const int *shape, KdParamKind kind) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", prefix, suffix);
  return kd_params_add(p, name, ndim, shape, kind);
}

int kd_conv_add(KdConv *cv, KdParams *p, const char *name, int cin, int cout, int k, int stride, int pad, int bias) {
  int ws[4] = {cout, cin, k, k};
  cv->w = add(p, name, "weight", 4, ws, KD_PARAM_TRAIN);
  cv->b = NULL;
  if (bias) cv->b = add(p, name, "bias", 1, &cout, KD_PARAM_TRAIN);
  cv->cfg = (KdConvCfg){.stride = stride, .pad = pad, .dilation = 1, .groups = 1};
  return cv->w && (!bias || cv->b) ? 0 : -1;
}

int kd_bn_add(KdBn *bn, KdParams *p, const char *name, int ch) {
  bn->gamma = add(p, name, "weight", 1, &ch, KD_PARAM_TRAIN);
  bn->beta = add(p, name, "bias", 1, &ch, KD_PARAM_TRAIN);
  bn->mean = add(p, name, "running_mean", 1, &ch, KD_PARAM_BUFFER);
  bn->var = add(p, name, "running_var", 1, &ch, KD_PARAM_BUFFER);
  return bn->gamma && bn->beta && bn->mean && bn->var ? 0 : -1;
}

int kd_gn_add(KdGn *gn, KdParams *p, const char *name, int ch, int groups) {
  gn->gamma = add(p, name, "weight", 1, &ch, KD_PARAM_TRAIN);
  gn->beta = add(p, name, "bias", 1, &ch, KD_PARAM_TRAIN);
  gn->groups = groups;
  return gn->gamma && gn->beta ? 0 : -1;
}

int kd_linear_add(KdLinear *fc, KdParams *p, const char *name, int in, int out) {
  fc->w = add(p, name, "weight", 2, (int[]){out, in}, KD_PARAM_TRAIN);
  fc->b = add(p, name, "bias", 1, &out, KD_PARAM_TRAIN);
  return fc->w && fc->b ? 0 : -1;
}

static int fan_in(const KdTensor *w) { return w->shape[1] * w->shape[2] * w->shape[3]; }
static int fan_out(const KdTensor *w) { return w->shape[0] * w->shape[2] * w->shape[3]; }

void kd_init_kaiming_normal_fanout(KdTensor *w, KdRng *r) {
  float std = sqrtf(2.0f / (float)fan_out(w));
  for (size_t i = 0; i < w->numel; i++) w->data[i] = std * kd_rng_normal(r);
}

void kd_init_kaiming_uniform_a1(KdTensor *w, KdRng *r) {
  /* gain sqrt(2/(1+a^2)) = 1 for a=1; bound = gain*sqrt(3/fan_in) */
  float bound = sqrtf(3.0f / (float)fan_in(w));
  for (size_t i = 0; i < w->numel; i++) w->data[i] = kd_rng_range(r, -bound, bound);
}

void kd_init_normal(KdTensor *w, float std, KdRng *r) {
  for (size_t i = 0; i < w->numel; i++) w->data[i] = std * kd_rng_normal(r);
}

void kd_init_const(KdTensor *t, float v) {
  for (size_t i = 0; i < t->numel; i++) t->data[i] = v;
}

void kd_init_bias_default(KdTensor *b, const KdTensor *w, KdRng *r) {
  float bound = 1.0f / sqrtf((float)fan_in(w));
  for (size_t i = 0; i < b->numel; i++) b->data[i] = kd_rng_range(r, -bound, bound);
}

void kd_bn_init(KdBn *bn) {
  kd_init_const(bn->gamma, 1.0f);
  kd_init_const(bn->beta, 0.0f);
  kd_init_const(bn->mean, 0.0f);
  kd_init_const(bn->var, 1.0f);
}

void kd_linear_init(KdLinear *fc, KdRng *r) {
  /* kaiming_uniform(a=sqrt(5)) has the bias's bound 1/sqrt(fan_in) */
  kd_init_bias_default(fc->w, fc->w, r);
  kd_init_bias_default(fc->b, fc->w, r);
}

KdTensor *kd_conv_fwd(KdCtx *c, const KdConv *cv, KdTensor *x) { return kd_conv2d(c, x, cv->w, cv->b, cv->cfg); }

KdTensor *kd_bn_fwd(KdCtx *c, const KdBn *bn, KdTensor *x, KdBnMode mode) {
  return kd_batchnorm(c, x, bn->gamma, bn->beta, bn->mean, bn->var, mode == KD_BN_TRAIN, 0.1f, 1e-5f);
}

KdTensor *kd_linear_fwd(KdCtx *c, const KdLinear *fc, KdTensor *x) {
  if (!x) return NULL;
  x = kd_reshape(c, x, 2, (int[]){x->shape[0], -1});
  return kd_add(c, kd_matmul(c, x, fc->w, 0, 1), fc->b);
}

double kd_conv_flops(const KdConv *cv, int n, int *h, int *w) {
  int k = cv->w->shape[2], s = cv->cfg.stride, pd = cv->cfg.pad;
  int ho = (*h + 2 * pd - k) / s + 1, wo = (*w + 2 * pd - k) / s + 1;
  *h = ho, *w = wo;
  return 2.0 * n * ho * wo * (double)cv->w->numel;
}
