/* CSGR — category semantic and global relation distillation (Liang, Ma,
 * Wang, Li, Chinese Journal of Engineering 2025). Only the abstract is
 * public and no code exists anywhere; everything below but CCNet's
 * criss-cross attention is the formulation KD-METHODS §8.2 proposes
 * [INFERRED], documented in docs/METHODS-CSGR.md. Per paired FPN level:
 *   T^, S^  standardised per (image, channel) over H*W (setting: over
 *           N*H*W as PKD), unbiased std + 1e-6; S adapted 1x1 if widths differ
 *   e_k     per image and GT class k: mean of T^ over the cells of k's boxes
 *   a_k     softmax_hw(cos(T^(h,w), e_k) / tau_c);  A = H*W * max_k a_k (0: no boxes)
 *   L_cat = sum_{n,c,h,w} A * (S^ - T^)^2 / N
 *   L_rel = mean_{n,u} KL(R_T(u,.) || R_S(u,.)),  R = softmax over u's
 *           criss-cross of X_u . X_k / (sqrt(C) tau_r)   (relation "kl")
 *         or sum (CCA_s(S^) - CCA_t(T^))^2 / N with learnable CCNet
 *           modules, gamma 0 at init, R shared-weight recurrences ("cca")
 * L = weight * sum_l (alpha_cat L_cat + alpha_rel L_rel), parts "cat", "rel". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "distill/gapmaps.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "distill/norms.h"
#include "model/layers.h"

#define CSGR_EPS 1e-6f

/* CCNet's module: query/key 1x1 convs C -> C/8, value C -> C, gamma. */
typedef struct {
  KdConv q, k, v;
  KdTensor *gamma;
} Cca;

typedef struct {
  int has_align;
  KdConv align;
  Cca cca_s, cca_t;
} CsgrLevel;

typedef struct {
  int nlev;
  CsgrLevel lv[KD_DISTILL_MAX_LEVELS];
} Csgr;

typedef struct {
  float weight, alpha_cat, alpha_rel, alpha_cca, temp_cat, temp_rel;
  int norm, relation, recurrence;
} CsgrParams;

static const char *const norm_choices[] = {"image", "batch", NULL};
static const char *const relation_choices[] = {"kl", "cca", NULL};

#define F(field, ...) KD_METHOD_FLOAT(CsgrParams, "csgr", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "CSGR weight", 1.0, 0.0, 1000.0, 1, "1,2,5", "Overall weight of the CSGR loss (both parts)"),
    F(alpha_cat, "α_cat", "Category feature weight", 1e-4, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "alpha_cat: category-attention-weighted MSE of the standardised features, sum / N as FGD's [INFERRED: no "
      "published value; 1e-4 puts it near the detection loss at init on fashion-det, docs/METHODS-CSGR.md]"),
    F(alpha_rel, "α_rel", "Relation weight (KL)", 1.0, 0.0, 100.0, 1, "1,1.6,2,2.5,5,8",
      "alpha_rel: weight of the criss-cross relation KL, mean over pixels (relation = kl) [INFERRED]"),
    F(alpha_cca, "α_cca", "Relation weight (CCA)", 5e-6, 0.0, 1.0, 1, "1,1.6,2,2.5,5,8",
      "alpha_cca: weight of sum (CCA_s(S) - CCA_t(T))^2 / N (relation = cca), FGD's lambda by analogy [INFERRED]"),
    F(temp_cat, "τ_c", "Category temperature", 0.5, 0.01, 10.0, 1, "1,1.5,2,3,5,8",
      "tau_c: temperature of the softmax over cells of cos(feature, class embedding) (FGD's 0.5 by analogy) "
      "[INFERRED]"),
    F(temp_rel, "τ_r", "Relation temperature", 1.0, 0.05, 20.0, 1, "1,1.5,2,3,5,8",
      "tau_r: temperature of the criss-cross relation softmax over X_u . X_k / sqrt(C) (relation = kl) [INFERRED]"),
    KD_METHOD_ENUM(CsgrParams, "csgr", norm, "norm", "Standardisation", "image", norm_choices,
                   "image: zero mean, unit variance per (image, channel) over H*W, so each image's category map is "
                   "its own; batch: per channel over N*H*W as PKD (both unbiased std + 1e-6) [INFERRED]"),
    KD_METHOD_ENUM(CsgrParams, "csgr", relation, "rel", "Relation", "kl", relation_choices,
                   "kl: parameter-free, KL between the criss-cross relation distributions of the standardised "
                   "teacher and student (a fixed teacher target); cca: learnable CCNet modules on each side, "
                   "MSE of their outputs as FGD's GcBlock loss [both INFERRED]"),
    KD_SETTING_INT(CsgrParams, "csgr", recurrence, "R", "CCA recurrences", 2, 1, 8, NULL, 1,
                   "Recurrences of the learnable CCA module, shared weights (CCNet uses 2: every pixel reaches "
                   "every other); relation = cca only"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int cca_add(Cca *m, KdParams *p, const char *lv, char side, int ch) {
  char name[96];
  const int red = ch / 8 > 0 ? ch / 8 : 1;
  int rc = 0;
  snprintf(name, sizeof name, "%s.cca_%c.query_conv", lv, side);
  rc |= kd_conv_add(&m->q, p, name, ch, red, 1, 1, 0, 1);
  snprintf(name, sizeof name, "%s.cca_%c.key_conv", lv, side);
  rc |= kd_conv_add(&m->k, p, name, ch, red, 1, 1, 0, 1);
  snprintf(name, sizeof name, "%s.cca_%c.value_conv", lv, side);
  rc |= kd_conv_add(&m->v, p, name, ch, ch, 1, 1, 0, 1);
  snprintf(name, sizeof name, "%s.cca_%c.gamma", lv, side);
  m->gamma = kd_params_add(p, name, 1, (int[]){1}, KD_PARAM_TRAIN);
  return rc || !m->gamma ? -1 : 0;
}

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Csgr *g = calloc(1, sizeof *g);
  if (!g) return kd_error(err, "out of memory");
  inst->state = g;
  g->nlev = sh->nlev;
  for (int l = 0; l < sh->nlev; l++) {
    CsgrLevel *v = &g->lv[l];
    char lv[64], name[96];
    snprintf(lv, sizeof lv, "distill.csgr.fpn_%d", l);
    snprintf(name, sizeof name, "%s.align", lv);
    v->has_align = sh->s_channels != sh->t_channels;
    /* The CCA modules exist whatever csgr.relation says, so it can change live. */
    if ((v->has_align && kd_conv_add(&v->align, store, name, sh->s_channels, sh->t_channels, 1, 1, 0, 1)) ||
        cca_add(&v->cca_s, store, lv, 's', sh->t_channels) || cca_add(&v->cca_t, store, lv, 't', sh->t_channels))
      return kd_error(err, "csgr: cannot register the parameters of %s", lv);
  }
  return 0;
}

/* PyTorch's default Conv2d init. */
static void conv_default(KdConv *cv, KdRng *r) {
  kd_init_bias_default(cv->w, cv->w, r);
  kd_init_bias_default(cv->b, cv->w, r);
}

static void init_weights(KdMethodInst *inst, KdRng *r) {
  Csgr *g = inst->state;
  for (int l = 0; l < g->nlev; l++) {
    CsgrLevel *v = &g->lv[l];
    if (v->has_align) conv_default(&v->align, r);
    Cca *m[2] = {&v->cca_s, &v->cca_t};
    for (int i = 0; i < 2; i++) {
      conv_default(&m[i]->q, r), conv_default(&m[i]->k, r), conv_default(&m[i]->v, r);
      kd_init_const(m[i]->gamma, 0.0f); /* mmcv Scale(0): the module starts as the identity */
    }
  }
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

/* x: N,C,H,W standardised per (image, channel) (image = 1) or per channel. */
static KdTensor *standardise(KdCtx *c, KdTensor *x, int image) {
  if (!x || !image) return kd_norm_pearson(c, x, CSGR_EPS);
  const int flat[4] = {1, x->shape[0] * x->shape[1], x->shape[2], x->shape[3]};
  return kd_reshape(c, kd_norm_pearson(c, kd_reshape(c, x, 4, flat), CSGR_EPS), 4, x->shape);
}

/* The category attention map of the standardised teacher t (N,C,H,W): a
 * constant N,1,H,W (no gradient), the max over the image's classes of
 * H*W * a_k (kd_category_attn, in double). */
static KdTensor *category_map(KdCtx *c, const KdTensor *t, const KdGtImage *gt, int stride, float tau) {
  const int N = t->shape[0], C = t->shape[1], H = t->shape[2], W = t->shape[3], HW = H * W;
  KdTensor *A = kd_tensor_zeros(c, 4, (int[]){N, 1, H, W});
  double *ak = kd_ctx_alloc(c, (size_t)HW * sizeof *ak);
  if (!A || !ak) return NULL;
  for (int n = 0; gt && n < N; n++) {
    const KdGtImage *im = &gt[n];
    const float *x = t->data + (size_t)n * C * HW;
    float *a = A->data + (size_t)n * HW;
    for (int j = 0; j < im->n; j++) {
      const int k = im->labels[j];
      int first = 1; /* each class once: at its first non-crowd box */
      for (int i = 0; i < j; i++) first &= im->labels[i] != k || (im->crowd && im->crowd[i]);
      if (!first || (im->crowd && im->crowd[j])) continue;
      const int rc = kd_category_attn(x, C, H, W, im, k, stride, tau, ak);
      if (rc < 0) return kd_ctx_fail(c, "csgr: out of memory"), NULL;
      for (int p = 0; p < HW; p++) a[p] = fmaxf(a[p], rc == 1 ? 1.0f : (float)(ak[p] * HW));
    }
  }
  return A;
}

/* log R over each pixel's criss-cross: log_softmax(X_u . X_k / (sqrt(C) tau)). */
static KdTensor *relation_log(KdCtx *c, KdTensor *x, float tau) {
  if (!x) return NULL;
  return kd_log_softmax(c, kd_scale(c, kd_cc_energy(c, x, x), 1.0f / (sqrtf((float)x->shape[1]) * tau)), 1);
}

/* CCNet's module applied `rec` times with shared weights: x + gamma * cc(x). */
static KdTensor *cca_fwd(KdCtx *c, const Cca *m, KdTensor *x, int rec) {
  for (int r = 0; r < rec && x; r++) {
    KdTensor *o = kd_criss_cross(c, kd_conv_fwd(c, &m->q, x), kd_conv_fwd(c, &m->k, x), kd_conv_fwd(c, &m->v, x), 1.0f,
                                 NULL);
    x = kd_add(c, kd_mul(c, o, m->gamma), x);
  }
  return x;
}

typedef struct {
  KdTensor *cat, *rel;
} CsgrSums;

static KdTensor *acc(KdCtx *c, KdTensor *sum, KdTensor *x) { return sum ? kd_add(c, sum, x) : x; }

static int level_loss(const KdDistillInputs *in, const CsgrLevel *v, int l, const CsgrParams *p, CsgrSums *s,
                      KdDistillOut *out) {
  KdCtx *c = in->c;
  const KdLevelPair *pr = &in->pairs[l];
  KdTensor *S = in->s.feat[pr->s], *T = in->t.feat[pr->t];
  if (S && v->has_align) S = kd_conv_fwd(c, &v->align, S);
  if (!S || !T) return kd_ctx_failed(c) ? -1 : (kd_ctx_fail(c, "csgr: level %s: no features", pr->name), -1);
  char ss[64], st[64];
  if (!kd_tensor_same_shape(S, T) || S->ndim != 4 || (p->norm == 0 && S->shape[2] * S->shape[3] < 2)) {
    kd_ctx_fail(c, "csgr: level %s: student %s vs teacher %s; CSGR needs equal N,C,H,W shapes (and H*W >= 2 for "
                "per-image standardisation)", pr->name, kd_tensor_shape_str(S, ss, 64), kd_tensor_shape_str(T, st, 64));
    return -1;
  }
  KdTensor *zs = standardise(c, S, p->norm == 0), *zt = standardise(c, T, p->norm == 0);
  if (!zs || !zt) return -1;
  KdTensor *A = category_map(c, zt, in->gt, pr->stride, p->temp_cat);
  KdTensor *cat = kd_sqdist_sums(c, zs, zt, NULL, NULL, &A, 1);
  const float k = p->weight / (float)in->n, kcat = k * p->alpha_cat;
  KdTensor *rel, *relmap = NULL;
  float krel;
  if (p->relation == 0) {
    KdTensor *kl = kd_dist_kl(c, relation_log(c, zt, p->temp_rel), relation_log(c, zs, p->temp_rel), 1u << 1);
    rel = kd_mean_all(c, kl);
    krel = p->weight * p->alpha_rel; /* a mean over the N*H*W cells: no /N */
    if (in->maps && kl) relmap = kd_scale(c, kd_detach(c, kl), krel / (float)kl->numel);
  } else {
    KdTensor *ys = cca_fwd(c, &v->cca_s, zs, p->recurrence), *yt = cca_fwd(c, &v->cca_t, zt, p->recurrence);
    rel = kd_dist_sq_sum(c, ys, yt);
    krel = k * p->alpha_cca;
    if (in->maps && ys && yt) relmap = kd_gapmap_sqdist(c, kd_to_plain(c, ys), kd_to_plain(c, yt), NULL, NULL, 0, &krel);
  }
  if (!cat || !rel) return -1;
  if (in->maps) kd_distill_gap(out, pr->s, kd_add(c, kd_gapmap_sqdist(c, zs, zt, NULL, &A, 1, &kcat), relmap));
  s->cat = acc(c, s->cat, kd_scale(c, cat, kcat));
  s->rel = acc(c, s->rel, kd_scale(c, rel, krel));
  kd_distill_mask(out, "csgr.cat_t", pr->s, A);
  if (in->maps) { /* the probe keeps them: the window's attention panel recomputes R per picked pixel */
    kd_distill_mask(out, "csgr.feat_t", pr->s, kd_detach(c, kd_to_plain(c, zt)));
    kd_distill_mask(out, "csgr.feat_s", pr->s, kd_detach(c, kd_to_plain(c, zs)));
    KdTensor *temps = kd_tensor_zeros(c, 4, (int[]){1, 2, 1, 1});
    if (temps) temps->data[0] = p->temp_rel, temps->data[1] = p->temp_cat;
    kd_distill_mask(out, "csgr.temps", pr->s, temps);
  }
  return 0;
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  Csgr *g = inst->state;
  KdCtx *c = in->c;
  const int L = in->npairs < g->nlev ? in->npairs : g->nlev;
  if (L < 1 || in->n < 1) {
    kd_ctx_fail(c, "csgr: no FPN levels or empty batch");
    return -1;
  }
  CsgrSums s = {0};
  for (int l = 0; l < L; l++)
    if (level_loss(in, &g->lv[l], l, inst->params, &s, out)) return -1;
  kd_distill_part(out, "cat", s.cat);
  kd_distill_part(out, "rel", s.rel);
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_csgr = {
    .name = "csgr",
    .label = "CSGR",
    .help = "Category semantic attention and criss-cross global relations (Liang et al., Chin. J. Eng. 2025; "
            "abstract only, no official code: the formulation is INFERRED, docs/METHODS-CSGR.md)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(CsgrParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_FEAT | KD_NEED_GT,
    .gap_label = "standardised, category-weighted + relation",
    .gap_parts = "cat,rel",
};
