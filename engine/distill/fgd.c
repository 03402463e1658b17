/* FGD: focal and global knowledge distillation for detectors (Yang et al.,
 * CVPR 2022), KD-METHODS section 2. Per FPN level, with its own learnable
 * parts (an optional 1x1 align conv, two GcBlocks):
 *   W = Att_sp_T * Att_ch_T                 (teacher attention weights both)
 *   L_fg   = sum M_fg * W * (S - T)^2 / N   M_fg: 1/area of the boxes (masks.h)
 *   L_bg   = sum M_bg * W * (S - T)^2 / N   M_bg: normalised complement
 *   L_mask = (sum |Ach_S - Ach_T| + sum |Asp_S - Asp_T|) / N
 *   L_rela = sum (GC_s(S) - GC_t(T))^2 / N
 * summed over levels and weighted alpha, beta, gamma, lambda. N is the batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ops.h"
#include "distill/gapmaps.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "model/layers.h"

/* GCNet context block as FGD builds it: attention pooling, then
 * conv1x1 C->C/2, LayerNorm over (C/2,1,1), ReLU, conv1x1 C/2->C, added. */
typedef struct {
  KdConv mask, add0, add1;
  KdGn ln;
} GcBlock;

typedef struct {
  int has_align;
  KdConv align;
  GcBlock gc_s, gc_t;
} FgdLevel;

typedef struct {
  int nlev;
  FgdLevel lv[KD_DISTILL_MAX_LEVELS];
} Fgd;

typedef struct {
  float weight, temp, alpha, beta, gamma, lambda;
} FgdParams;

#define F(field, ...) KD_METHOD_FLOAT(FgdParams, "fgd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "FGD weight", 1.0, 0.0, 1000.0, 1, "1,2,5",
      "Overall weight of the FGD loss (all four parts)"),
    F(temp, "T", "Attention temperature", 0.5, 0.05, 10.0, 1, "1,1.5,2,3,5,8",
      "Temperature of the spatial and channel attention (RetinaNet configs 0.5)"),
    F(alpha, "α", "Foreground weight", 1e-3, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "alpha: attention-weighted feature MSE inside the boxes (RetinaNet configs 1e-3). Not negligible here: at init "
      "on fashion-det this part is ~13 against a detection loss of ~2 (docs/METHODS-DEFEAT-FGD.md)"),
    F(beta, "β", "Background weight", 5e-4, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "beta: attention-weighted feature MSE outside the boxes (RetinaNet configs 5e-4)"),
    F(gamma, "γ", "Attention weight", 5e-4, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "gamma: L1 between student and teacher attention maps (RetinaNet configs 5e-4; class default 1e-3)"),
    F(lambda, "λ", "Global relation weight", 5e-6, 0.0, 1.0, 1, "1,1.6,2,2.5,5,8",
      "lambda: MSE between GcBlock outputs of student and teacher (RetinaNet configs 5e-6)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int gc_add(GcBlock *g, KdParams *p, const char *lv, char side, int ch) {
  char name[96];
  int half = ch / 2 > 0 ? ch / 2 : 1, rc = 0;
  snprintf(name, sizeof name, "%s.conv_mask_%c", lv, side);
  rc |= kd_conv_add(&g->mask, p, name, ch, 1, 1, 1, 0, 1);
  snprintf(name, sizeof name, "%s.channel_add_conv_%c.0", lv, side);
  rc |= kd_conv_add(&g->add0, p, name, ch, half, 1, 1, 0, 1);
  snprintf(name, sizeof name, "%s.channel_add_conv_%c.1", lv, side);
  rc |= kd_gn_add(&g->ln, p, name, half, 1);
  snprintf(name, sizeof name, "%s.channel_add_conv_%c.3", lv, side);
  rc |= kd_conv_add(&g->add1, p, name, half, ch, 1, 1, 0, 1);
  return rc;
}

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Fgd *f = calloc(1, sizeof *f);
  if (!f) return kd_error(err, "out of memory");
  inst->state = f;
  f->nlev = sh->nlev;
  for (int l = 0; l < sh->nlev; l++) {
    FgdLevel *v = &f->lv[l];
    char lv[64], name[96];
    snprintf(lv, sizeof lv, "distill.fgd.fpn_%d", l);
    v->has_align = sh->s_channels != sh->t_channels;
    snprintf(name, sizeof name, "%s.align", lv);
    if ((v->has_align && kd_conv_add(&v->align, store, name, sh->s_channels, sh->t_channels, 1, 1, 0, 1)) ||
        gc_add(&v->gc_s, store, lv, 's', sh->t_channels) || gc_add(&v->gc_t, store, lv, 't', sh->t_channels))
      return kd_error(err, "fgd: cannot register the parameters of %s", lv);
  }
  return 0;
}

static void gc_init(GcBlock *g, KdRng *r) {
  /* mmcv kaiming_init(mode='fan_in'): normal, std sqrt(2/fan_in), bias 0. */
  kd_init_normal(g->mask.w, sqrtf(2.0f / (float)g->mask.w->shape[1]), r);
  kd_init_const(g->mask.b, 0.0f);
  /* PyTorch defaults for the first conv and the LayerNorm. */
  kd_init_bias_default(g->add0.w, g->add0.w, r);
  kd_init_bias_default(g->add0.b, g->add0.w, r);
  kd_init_const(g->ln.gamma, 1.0f);
  kd_init_const(g->ln.beta, 0.0f);
  /* constant_init(0): the block starts as the identity. */
  kd_init_const(g->add1.w, 0.0f);
  kd_init_const(g->add1.b, 0.0f);
}

static void init_weights(KdMethodInst *inst, KdRng *r) {
  Fgd *f = inst->state;
  for (int l = 0; l < f->nlev; l++) {
    FgdLevel *v = &f->lv[l];
    if (v->has_align) { /* PyTorch's default Conv2d init */
      kd_init_bias_default(v->align.w, v->align.w, r);
      kd_init_bias_default(v->align.b, v->align.w, r);
    }
    gc_init(&v->gc_s, r);
    gc_init(&v->gc_t, r);
  }
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

/* x: N,C,H,W -> the block's channel term z (N,C,1,1); GC(x) = x + z. */
static KdTensor *gc_add_term(KdCtx *c, const GcBlock *g, KdTensor *x) {
  const int n = x->shape[0], ch = x->shape[1], hw = x->shape[2] * x->shape[3];
  int flat[2] = {n, hw}, col[3] = {n, hw, 1}, rows[3] = {n, ch, hw}, ctx4[4] = {n, ch, 1, 1};
  KdTensor *p = kd_softmax(c, kd_reshape(c, kd_conv_fwd(c, &g->mask, x), 2, flat), 1);
  KdTensor *ctx = kd_matmul(c, kd_reshape(c, x, 3, rows), kd_reshape(c, p, 3, col), 0, 0); /* N,C,1 */
  KdTensor *z = kd_conv_fwd(c, &g->add0, kd_reshape(c, ctx, 4, ctx4));
  z = kd_relu(c, kd_groupnorm(c, z, 1, g->ln.gamma, g->ln.beta, 1e-5f));
  return kd_conv_fwd(c, &g->add1, z);
}

typedef struct {
  KdTensor *fg, *bg, *mask, *rela;
} FgdSums;

static int level_loss(KdCtx *c, const KdDistillInputs *in, const FgdLevel *v, int l, const FgdParams *prm, FgdSums *s,
                      KdDistillOut *out, KdTensor **att_t) {
  const float temp = prm->temp;
  const KdLevelPair *p = &in->pairs[l];
  KdTensor *S = in->s.feat[p->s], *T = in->t.feat[p->t];
  if (v->has_align) S = kd_conv_fwd(c, &v->align, S);
  if (!S || !T) return -1;
  if (!kd_tensor_same_shape(S, T) || S->ndim != 4) {
    char ss[64], st[64];
    kd_ctx_fail(c, "fgd: level %d: student %s vs teacher %s", l, kd_tensor_shape_str(S, ss, 64),
                kd_tensor_shape_str(T, st, 64));
    return -1;
  }
  KdTensor *asp_t = kd_attention_spatial(c, T, temp), *ach_t = kd_attention_channel(c, T, temp);
  KdTensor *asp_s = kd_attention_spatial(c, S, temp), *ach_s = kd_attention_channel(c, S, temp);
  KdTensor *mfg, *mbg;
  KdMaskGrid g = {T->shape[0], T->shape[2], T->shape[3], p->stride};
  if (!asp_t || !ach_t || kd_mask_fgd(c, in->gt, g, NULL, &mfg, &mbg)) return -1;
  /* Both spatial weightings in one pass: W = Asp_T * Ach_T times each mask. */
  KdTensor *w[2] = {kd_mul(c, mfg, asp_t), kd_mul(c, mbg, asp_t)};
  KdTensor *sums = kd_sqdist_sums(c, S, T, NULL, ach_t, w, 2);
  if (in->maps) { /* the fg and bg parts per cell, as loss() weights them */
    const float k = prm->weight / (float)in->n, coef[2] = {k * prm->alpha, k * prm->beta};
    kd_distill_gap(out, p->s, kd_gapmap_sqdist(c, S, T, ach_t, w, 2, coef));
  }
  KdTensor *fg = kd_slice(c, sums, 0, 0, 1), *bg = kd_slice(c, sums, 0, 1, 1);
  KdTensor *mask = kd_add(c, kd_sum_all(c, kd_abs(c, kd_sub(c, ach_s, ach_t))),
                          kd_sum_all(c, kd_abs(c, kd_sub(c, asp_s, asp_t))));
  /* GC_s(S) - GC_t(T) = (S - T) + (z_s - z_t): the broadcast add folds into the distance. */
  KdTensor *dz = kd_sub(c, gc_add_term(c, &v->gc_s, S), gc_add_term(c, &v->gc_t, T));
  KdTensor *rela = kd_sqdist_sums(c, S, T, dz, NULL, NULL, 0);
  if (!fg || !bg || !mask || !rela) return -1;
  s->fg = s->fg ? kd_add(c, s->fg, fg) : fg;
  s->bg = s->bg ? kd_add(c, s->bg, bg) : bg;
  s->mask = s->mask ? kd_add(c, s->mask, mask) : mask;
  s->rela = s->rela ? kd_add(c, s->rela, rela) : rela;
  kd_distill_mask(out, "fgd.fg", p->s, mfg);
  *att_t = asp_t;
  return 0;
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  Fgd *f = inst->state;
  KdCtx *c = in->c;
  const int L = in->npairs < f->nlev ? in->npairs : f->nlev;
  if (L < 1 || in->n < 1) {
    kd_ctx_fail(c, "fgd: no FPN levels or empty batch");
    return -1;
  }
  FgdSums s = {0};
  KdTensor *att[KD_DISTILL_MAX_LEVELS];
  const FgdParams *p = inst->params;
  for (int l = 0; l < L; l++)
    if (level_loss(c, in, &f->lv[l], l, p, &s, out, &att[l])) return -1;
  for (int l = 0; l < L; l++) kd_distill_mask(out, "fgd.att_t", in->pairs[l].s, att[l]);
  const float k = p->weight / (float)in->n;
  kd_distill_part(out, "fg", kd_scale(c, s.fg, k * p->alpha));
  kd_distill_part(out, "bg", kd_scale(c, s.bg, k * p->beta));
  kd_distill_part(out, "mask", kd_scale(c, s.mask, k * p->gamma));
  kd_distill_part(out, "rela", kd_scale(c, s.rela, k * p->lambda));
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_fgd = {
    .name = "fgd",
    .label = "FGD",
    .help = "Focal (box-scale masks, teacher attention) and global (GcBlock relation) feature distillation "
            "(Yang et al., CVPR 2022)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(FgdParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_FEAT | KD_NEED_GT,
    .attn_temp_key = "fgd.temp",
    .gap_label = "after align, focal masks and teacher attention",
    .gap_parts = "fg,bg",
};
