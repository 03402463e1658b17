/* Global-knowledge distillation, the released Robust Distilling Module
 * (Tang et al., ECCV 2022; KD-METHODS 4.2 and 10b; docs/METHODS-GK.md),
 * applied to RetinaNet.
 *
 * Instances are the student's positive anchors (their anchor boxes, the
 * class of their GT), for a two-stage student its positive sampled RoIs
 * (the RoI boxes, their GT's class; the released two-stage path), or
 * rows given as such (`kdscope loss`). Each one sits on the level
 * DeFeat's rule gives its box; there
 *   p_s, p_t = the mean of the student's / teacher's neck map over its crop
 *              (RoIs: the mean of its 7x7 RoIAlign there, aligned, as the
 *              two-stage path pools them),
 *   q = max over its class's prototypes of cos(p, P) on each side,
 *   w = 1 - |q_s - q_t|   (detached; 1 for a class without prototypes).
 * Per level, a soft mask M (w written over each box's cells, DeFeat's
 * rasterisation, a later box overwriting) weights the adapted student's
 * squared distance to the teacher:
 *   fg_l = sum M D / max(1, 2 C sum M),  bg_l = sum (1-M) D / max(1, 2 C sum (1-M)),
 * so a negative w gives its cells a background weight above 1 (10b); the
 * two-stage path's background is 1 - [M > 0] instead (KD-METHODS 4.2).
 *   feat_fg = weight * att * w_fg * red_l fg_l,  feat_bg likewise with w_bg,
 *   soft    = weight * w_soft * mean_i w_i T^2 KL(q_i || p_i) / K   (not attenuated;
 *             RoIs: both RoI heads on the positive RoIs, the K+1 logits, / (K+1)),
 *   r2i     = weight * att * w_r2i * sum_l mean SmoothL1(w D_s, w D_t)   (use_r2i only),
 * D_s, D_t the cosines of the level's instances to all of its prototypes,
 * att = 1 - epoch / epochs (1 - progress when the epochs are unknown),
 * red_l the sum over levels (one-stage, released) or their mean. The
 * prototypes are run state (gk.h) that the run's PGM service fills at each
 * epoch boundary (train/pgm_service.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "distill/gapmaps.h"
#include "distill/gk.h"
#include "distill/gk_ops.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "distill/norms.h"

static const char *const reduce_choices[] = {"sum", "mean", NULL};
enum { REDUCE_SUM, REDUCE_MEAN };

typedef struct {
  float weight, fg, bg, soft, T, r2i, finest_scale;
  int attenuation, use_r2i, reduce;
  float num_prototypes, min_size, max_images, sigma, cut, alpha;
} GkParams;

#define F(field, ...) KD_METHOD_FLOAT(GkParams, "gk", field, __VA_ARGS__)
#define B(field, ...) KD_METHOD_BOOL(GkParams, "gk", field, __VA_ARGS__)
#define E(field, ...) KD_METHOD_ENUM(GkParams, "gk", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "Global knowledge weight", 1.0, 0.0, 100.0, 0, NULL, "Overall weight of the global-knowledge loss"),
    F(fg, "w_fg", "Foreground weight", 1.0, 0.0, 1000.0, 1, "1,1.2,1.6,2,3,4,5,6,8",
      "Weight of the adapted-feature MSE under the soft (robustness-weighted) instance mask (released kd_param: 1)"),
    F(bg, "w_bg", "Background weight", 4.0, 0.0, 1000.0, 1, "1,1.2,1.6,2,3,4,5,6,8",
      "Weight of the adapted-feature MSE under 1 - mask (released kd_param: 4)"),
    F(soft, "w_soft", "Soft-label weight", 1.0, 0.0, 100.0, 1, "1,2,5",
      "Weight of the robustness-weighted class-logit KL on the instances (positive anchors); not attenuated"),
    F(T, "T", "Soft-label temperature", 2.0, 0.5, 20.0, 1, "1,1.5,2,3,4,5,6,8",
      "Softmax temperature of the instances' class KL (times T^2, KL divided by K; released: 2)"),
    B(attenuation, "att", "Attenuation", 1,
      "Scale the feature and projection terms by 1 - epoch/epochs (released kd_attenuation)"),
    B(use_r2i, "r2i", "Projection term", 0,
      "Add the prototype-projection term (pair_wise use_r2i): SmoothL1 between the instances' similarities to the "
      "level's prototypes on the two sides, weighted by w. Off in the released config"),
    F(r2i, "w_r2i", "Projection weight", 5.0, 0.0, 100.0, 1, "1,2,5", "Factor of the projection term (released: 5)"),
    E(reduce, NULL, "Level reduction", "sum", reduce_choices,
      "How the feature terms combine the levels: sum (the released one-stage path) or mean (its two-stage path)"),
    F(finest_scale, "s_0", "Finest scale", 56.0, 1.0, 1024.0, 1, "step 1",
      "Canonical scale of DeFeat's level rule that places each instance on one level (COCO 56; fashion-det preset 11)"),
    F(num_prototypes, "K_p", "Prototypes per class", 10.0, 1.0, KD_GK_MAX_PROTOS, 0, "step 1",
      "Greedy matching-pursuit steps per class and level (released 10; repeats kept); read at each generation"),
    F(min_size, "s_min", "Pool minimum box size", 16.0, 0.0, 512.0, 0, "step 1",
      "PGM pool: GT boxes wider and taller than this (input pixels, strictly). Released 30 px on ~800 px COCO; "
      "fashion-det objects are 12-80 px long: 30 keeps 32% of its training boxes, 16 (two P3 cells a side) 63%"),
    F(max_images, "N_img", "Pool images per class", 200.0, 1.0, 10000.0, 1, "1,2,5",
      "PGM pool: at most this many training images per class, drawn from train.seed (released 800)"),
    F(sigma, "σ", "Density bandwidth", 0.1, 0.01, 1.0, 1, "1,1.5,2,3,5,7", "PGM density exp(-(d/sigma)^2) (released 0.1)"),
    F(cut, "cut", "Density cut", 0.4, 0.0, 0.95, 0, "step 0.05",
      "PGM candidates: density above this quantile on both sides (released 0.4)"),
    F(alpha, "α", "Coupling", 10.0, 0.0, 100.0, 1, "1,2,5",
      "PGM: coupling of the student and teacher coefficients in the joint pursuit (released 10)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

typedef struct {
  int nlev, K, cs, ct;
  KdConv adapt[KD_DISTILL_MAX_LEVELS];
  KdTensor *pt[KD_DISTILL_MAX_LEVELS], *ps[KD_DISTILL_MAX_LEVELS], *count[KD_DISTILL_MAX_LEVELS], *epoch;
} Gk;

/* Class k's prototype count: rounded, since a data-parallel step averages
 * buffers over the ranks (a whole number may come back an ulp off). */
static int nprotos(const float *count, int k) { return (int)lrintf(count[k]); }

/* ---- method ---- */

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Gk *g = calloc(1, sizeof *g);
  if (!g) return kd_error(err, "out of memory");
  inst->state = g;
  g->nlev = sh->nlev, g->K = sh->num_classes, g->cs = sh->s_channels, g->ct = sh->t_channels;
  if (kd_distill_adapters_add(g->adapt, sh->nlev, store, "distill.gk.adapt", sh->s_channels, sh->t_channels, 3, err))
    return -1;
  for (int l = 0; l < sh->nlev; l++) {
    char name[64];
    snprintf(name, sizeof name, "distill.gk.proto_t.%d", l);
    g->pt[l] = kd_params_add(store, name, 2, (int[]){g->K * KD_GK_MAX_PROTOS, g->ct}, KD_PARAM_BUFFER);
    snprintf(name, sizeof name, "distill.gk.proto_s.%d", l);
    g->ps[l] = kd_params_add(store, name, 2, (int[]){g->K * KD_GK_MAX_PROTOS, g->cs}, KD_PARAM_BUFFER);
    snprintf(name, sizeof name, "distill.gk.count.%d", l);
    g->count[l] = kd_params_add(store, name, 1, (int[]){g->K}, KD_PARAM_BUFFER);
    if (!g->pt[l] || !g->ps[l] || !g->count[l]) return kd_error(err, "cannot register the prototypes of level %d", l);
  }
  g->epoch = kd_params_add(store, "distill.gk.epoch", 1, (int[]){1}, KD_PARAM_BUFFER);
  return g->epoch ? 0 : kd_error(err, "cannot register distill.gk.epoch");
}

/* PyTorch's default conv init for the adapters (the released init never
 * fires, KD-METHODS 4.2); no prototypes yet. */
static void init_weights(KdMethodInst *inst, KdRng *r) {
  Gk *g = inst->state;
  kd_distill_adapters_init(g->adapt, g->nlev, r);
  g->epoch->data[0] = -1.0f;
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

/* One instance: image, box, class, the pair index it sits on, and where
 * its class logits are (pair of its anchor, flat anchor a, cell hw), or
 * row r of the given logits. */
typedef struct {
  int n, label, lev;
  float box[4];
  int alev, a, hw;
  float w, qs, qt;
} Inst;

/* A two-stage student: its positive sampled RoIs, in sample order (.alev
 * -2, .a the RoI's row in the sample). */
static Inst *roi_instances(const KdDistillInputs *in, const GkParams *p, int *R) {
  const KdRoiSample *sm = in->s.sample;
  int n = 0;
  for (int r = 0; r < sm->nrois; r++) n += sm->labels[r] > 0;
  Inst *v = kd_ctx_alloc(in->c, sizeof *v * (size_t)(n ? n : 1));
  if (!v) return NULL;
  int k = 0;
  for (int r = 0; r < sm->nrois; r++) {
    if (sm->labels[r] <= 0) continue;
    Inst *x = &v[k++];
    *x = (Inst){.n = (int)sm->rois[5 * r], .label = sm->labels[r] - 1, .alev = -2, .a = r};
    memcpy(x->box, sm->rois + 5 * (size_t)r + 1, sizeof x->box);
    x->lev = kd_defeat_level(x->box, p->finest_scale, in->npairs);
  }
  *R = n;
  return v;
}

/* The student's positive anchors, in flat anchor order per image. */
static Inst *anchor_instances(const KdDistillInputs *in, const GkParams *p, int *R) {
  KdCtx *c = in->c;
  const KdDenseAssign *as = in->s.assign;
  if (!as || !as->anchors || in->npairs != in->s.levels->n) {
    kd_ctx_fail(c, "gk: needs the student's anchor assignment with its anchors on every student level");
    return NULL;
  }
  int base[KD_DISTILL_MAX_LEVELS + 1] = {0};
  for (int l = 0; l < in->npairs; l++) {
    const KdTensor *f = in->s.feat[in->pairs[l].s];
    base[l + 1] = base[l] + f->shape[2] * f->shape[3] * as->A;
  }
  if (base[in->npairs] != as->A_total) {
    kd_ctx_fail(c, "gk: the student's maps cover %d anchors per image, the assignment %d", base[in->npairs], as->A_total);
    return NULL;
  }
  int n = 0;
  for (size_t i = 0; i < (size_t)in->n * as->A_total; i++) n += as->target_cls[i] >= 0;
  Inst *v = kd_ctx_alloc(c, sizeof *v * (size_t)(n ? n : 1));
  if (!v) return NULL;
  int r = 0;
  for (int img = 0; img < in->n; img++)
    for (int l = 0; l < in->npairs; l++)
      for (int i = base[l]; i < base[l + 1]; i++) {
        const int tc = as->target_cls[(size_t)img * as->A_total + i];
        if (tc < 0) continue;
        Inst *x = &v[r++];
        *x = (Inst){.n = img, .label = tc, .alev = l, .a = (i - base[l]) % as->A, .hw = (i - base[l]) / as->A};
        memcpy(x->box, as->anchors + 4 * (size_t)i, sizeof x->box);
        x->lev = kd_defeat_level(x->box, p->finest_scale, in->npairs);
      }
  *R = n;
  return v;
}

/* Rows given as they are (`kdscope loss`): with model.head=faster_rcnn they
 * stand for a two-stage student's positive RoIs (RoIAlign pooling, the
 * binary background), their logits for both RoI heads' K+1. */
static Inst *given_instances(const KdDistillInputs *in, const GkParams *p, int *R) {
  const KdDistillInstIn *ii = in->inst_in;
  Inst *v = kd_ctx_alloc(in->c, sizeof *v * (size_t)(ii->n ? ii->n : 1));
  if (!v) return NULL;
  const int alev = !strcmp(kd_config_str(in->cfg, "model.head"), "faster_rcnn") ? -2 : -1;
  for (int i = 0; i < ii->n; i++) {
    v[i] = (Inst){.n = (int)ii->boxes[5 * i], .label = ii->labels[i], .alev = alev, .a = i};
    memcpy(v[i].box, ii->boxes + 5 * i + 1, sizeof v[i].box);
    v[i].lev = kd_defeat_level(v[i].box, p->finest_scale, in->npairs);
  }
  *R = ii->n;
  return v;
}

/* Crops of the instances on level l (their indices in sel), on the map f. */
static KdGkCrop *level_crops(const KdDistillInputs *in, const Inst *v, int R, int l, const KdTensor *f, int *sel, int *m) {
  KdGkCrop *k = kd_ctx_alloc(in->c, sizeof *k * (size_t)(R ? R : 1));
  if (!k) return NULL;
  *m = 0;
  for (int i = 0; i < R; i++) {
    if (v[i].lev != l) continue;
    KdGkCrop *x = &k[*m];
    x->n = v[i].n;
    kd_gk_crop(v[i].box, in->pairs[l].stride, in->img_h, in->img_w, f->shape[2], f->shape[3], &x->r0, &x->r1, &x->c0, &x->c1);
    sel[(*m)++] = i;
  }
  return k;
}

/* q of each selected instance on one side: the best cosine to its class's
 * prototypes (pr: class k's rows from k*MAX), -2 when it has none. */
static void best_cos(const KdTensor *pool, const float *pr, const float *count, const Inst *v, const int *sel, int m, int side,
                     Inst *out) {
  const int C = pool->shape[1];
  for (int j = 0; j < m; j++) {
    const Inst *x = &v[sel[j]];
    const int np = nprotos(count, x->label);
    double q = -2.0;
    for (int k = 0; k < np; k++) {
      double cs = kd_gk_cos(pool->data + (size_t)j * C, pr + (size_t)(x->label * KD_GK_MAX_PROTOS + k) * C, C);
      if (cs > q) q = cs;
    }
    if (side) out[sel[j]].qt = (float)q;
    else out[sel[j]].qs = (float)q;
  }
}

/* The level's prototypes of every class, packed (rows of width C), for r2i. */
static float *all_protos(KdCtx *c, const float *pr, const float *count, int K, int C, int *M) {
  int m = 0;
  for (int k = 0; k < K; k++) m += nprotos(count, k);
  float *out = kd_ctx_alloc(c, sizeof *out * (size_t)(m ? m : 1) * C);
  if (!out) return NULL;
  int r = 0;
  for (int k = 0; k < K; k++)
    for (int j = 0; j < nprotos(count, k); j++, r++)
      memcpy(out + (size_t)r * C, pr + (size_t)(k * KD_GK_MAX_PROTOS + j) * C, sizeof *out * C);
  *M = m;
  return out;
}

/* For the probe's prototype panel: the level's instances' pooled
 * features on both sides (gk.inst_t.<L> m x C_t, gk.inst_s.<L> m x C_s)
 * and their rows of gk.inst (gk.inst_row.<L>). */
static int inst_features(KdCtx *c, const char *lv, const int *sel, int m, KdTensor *pt, KdTensor *ps, KdDistillOut *out) {
  static const char *const stem[3] = {"gk.inst_t", "gk.inst_s", "gk.inst_row"};
  KdTensor *row = kd_tensor_new(c, 1, (int[]){m});
  if (!row) return -1;
  for (int j = 0; j < m; j++) row->data[j] = (float)sel[j];
  KdTensor *x[3] = {pt, ps, row};
  for (int w = 0; w < 3; w++) {
    char *name = kd_ctx_alloc(c, 32);
    if (!name) return -1;
    snprintf(name, 32, "%s.%s", stem[w], lv);
    kd_distill_table(out, name, x[w], 0);
  }
  return 0;
}

/* The selected RoIs' pooled features on map f: the mean of each one's
 * 7x7 RoIAlign (aligned, adaptive sampling: mmcv's RoIAlign as the
 * two-stage path runs it) -> m x C. */
static KdTensor *roi_pool(KdCtx *c, KdTensor *f, const Inst *v, const int *sel, int m, int stride) {
  float *rois = kd_ctx_alloc(c, sizeof *rois * 5 * (size_t)m);
  if (!rois) return NULL;
  for (int j = 0; j < m; j++) {
    rois[5 * j] = (float)v[sel[j]].n;
    memcpy(rois + 5 * j + 1, v[sel[j]].box, 4 * sizeof(float));
  }
  KdTensor *x = kd_roi_align(c, f, rois, m, 7, 7, 1.0f / (float)stride, 0, 1);
  return x ? kd_reshape(c, kd_mean(c, x, (1u << 2) | (1u << 3)), 2, (int[]){m, f->shape[1]}) : NULL;
}

typedef struct {
  KdTensor *fg, *bg, *r2i;
  double wsum;
  int nw;
} LevelSums;

/* Level l: the instances' w (into v), the soft mask, the feature sums and
 * (use_r2i) the projection term. */
static int level(KdMethodInst *inst, const KdDistillInputs *in, Inst *v, int R, int l, float att, LevelSums *acc,
                 KdDistillOut *out) {
  Gk *g = inst->state;
  const GkParams *p = inst->params;
  KdCtx *c = in->c;
  const KdLevelPair *pr = &in->pairs[l];
  KdTensor *s = kd_to_plain(c, in->s.feat[pr->s]), *t = kd_to_plain(c, in->t.feat[pr->t]);
  KdTensor *a = kd_to_plain(c, kd_conv_fwd(c, &g->adapt[l], in->s.feat[pr->s]));
  if (!s || !t || !a) return -1;
  if (!kd_tensor_same_shape(a, t) || s->shape[2] != t->shape[2] || s->shape[3] != t->shape[3]) {
    char sa[64], st[64];
    kd_ctx_fail(c, "gk: level %d: adapted student %s vs teacher %s", l, kd_tensor_shape_str(a, sa, 64),
                kd_tensor_shape_str(t, st, 64));
    return -1;
  }
  const int N = t->shape[0], H = t->shape[2], W = t->shape[3], C = t->shape[1];
  int *sel = kd_ctx_alloc(c, sizeof *sel * (size_t)(R ? R : 1)), m = 0;
  KdGkCrop *crops = sel ? level_crops(in, v, R, l, t, sel, &m) : NULL;
  if (!crops) return -1;
  KdTensor *ps_pool = NULL;
  const float *cnt = g->count[l]->data;
  const int rois = R > 0 && v[0].alev == -2;
  if (m > 0) {
    int g0 = kd_ctx_set_grad(c, 0);
    KdTensor *pt_pool = rois ? roi_pool(c, t, v, sel, m, pr->stride) : kd_gk_pool(c, t, crops, m);
    KdTensor *ps_data = rois ? roi_pool(c, s, v, sel, m, pr->stride) : kd_gk_pool(c, s, crops, m);
    kd_ctx_set_grad(c, g0);
    if (!pt_pool || !ps_data) return -1;
    best_cos(ps_data, g->ps[l]->data, cnt, v, sel, m, 0, v);
    best_cos(pt_pool, g->pt[l]->data, cnt, v, sel, m, 1, v);
    if (in->maps && inst_features(c, pr->name, sel, m, pt_pool, ps_data, out)) return -1;
    for (int j = 0; j < m; j++) {
      Inst *x = &v[sel[j]];
      x->w = x->qs < -1.5f ? 1.0f : 1.0f - fabsf(x->qs - x->qt); /* no prototypes: full trust (DeFeat) */
      acc->wsum += x->w, acc->nw++;
    }
    if (p->use_r2i) {
      int Ms, Mt;
      float *Ps = all_protos(c, g->ps[l]->data, cnt, g->K, g->cs, &Ms);
      float *Pt = all_protos(c, g->pt[l]->data, cnt, g->K, g->ct, &Mt);
      float *dt = kd_ctx_alloc(c, sizeof *dt * (size_t)m * (Mt ? Mt : 1)), *w = kd_ctx_alloc(c, sizeof *w * (size_t)m);
      if (!Ps || !Pt || !dt || !w) return -1;
      for (int j = 0; j < m; j++) {
        w[j] = v[sel[j]].w;
        for (int k = 0; k < Mt; k++)
          dt[(size_t)j * Mt + k] = (float)kd_gk_cos(pt_pool->data + (size_t)j * C, Pt + (size_t)k * C, C);
      }
      /* with gradient, pooled as q was (RoIs: their RoIAlign, KD-METHODS 4) */
      ps_pool = rois ? roi_pool(c, s, v, sel, m, pr->stride) : kd_gk_pool(c, s, crops, m);
      acc->r2i = kd_gk_r2i(c, ps_pool, Ps, Ms, dt, w);
      if (!acc->r2i) return -1;
    }
  }
  /* Soft mask in instance order: a later box overwrites an earlier one. */
  KdTensor *mk[2] = {kd_tensor_zeros(c, 4, (int[]){N, 1, H, W}), NULL};
  if (!mk[0] || !(mk[1] = kd_tensor_like(c, mk[0]))) return -1;
  for (int j = 0; j < m; j++) {
    const Inst *x = &v[sel[j]];
    kd_gk_mask_box(mk[0]->data + (size_t)x->n * H * W, H, W, pr->stride, x->box, x->w);
  }
  double msum = 0.0, bsum = 0.0;
  for (size_t i = 0; i < mk[0]->numel; i++) {
    mk[1]->data[i] = rois ? (mk[0]->data[i] != 0.0f ? 0.0f : 1.0f) : 1.0f - mk[0]->data[i];
    msum += mk[0]->data[i], bsum += mk[1]->data[i];
  }
  const float nfg = (float)fmax(1.0, 2.0 * C * msum), nbg = (float)fmax(1.0, 2.0 * C * bsum);
  kd_distill_mask(out, "gk.w", pr->s, mk[0]);
  const float k = p->weight * att / (p->reduce == REDUCE_MEAN ? (float)in->npairs : 1.0f);
  if (in->maps) {
    const float coef[2] = {k * p->fg / nfg, k * p->bg / nbg};
    kd_distill_gap(out, pr->s, kd_gapmap_sqdist(c, a, t, NULL, mk, 2, coef));
  }
  KdTensor *sums = kd_sqdist_sums(c, a, t, NULL, NULL, mk, 2);
  acc->fg = kd_scale(c, kd_slice(c, sums, 0, 0, 1), k * p->fg / nfg);
  acc->bg = kd_scale(c, kd_slice(c, sums, 0, 1, 1), k * p->bg / nbg);
  return acc->fg && acc->bg ? 0 : -1;
}

/* sum_i w_i KL_i over the instances, with their logits gathered per
 * anchor level (training) or given as rows (file). NULL on error. */
static KdTensor *soft_kl(const KdDistillInputs *in, const Inst *v, int R, float T) {
  KdCtx *c = in->c;
  int one = 1;
  KdTensor *total = kd_tensor_zeros(c, 1, &one);
  if (R == 0 || !total) return total;
  if (in->inst_in) {
    KdTensor *wt = kd_tensor_new(c, 2, (int[]){R, 1});
    if (!wt) return NULL;
    for (int i = 0; i < R; i++) wt->data[i] = v[i].w;
    return kd_sum_all(c, kd_mul(c, kd_dist_kl_logits(c, in->inst_in->t_cls, in->inst_in->s_cls, 1, T), wt));
  }
  if (v[0].alev == -2) { /* both RoI heads on the positive RoIs, K+1 logits */
    float *rois = kd_ctx_alloc(c, sizeof *rois * 5 * (size_t)R);
    KdTensor *wt = kd_tensor_new(c, 2, (int[]){R, 1});
    if (!rois || !wt) return NULL;
    for (int i = 0; i < R; i++) {
      rois[5 * i] = (float)v[i].n;
      memcpy(rois + 5 * i + 1, v[i].box, 4 * sizeof(float));
      wt->data[i] = v[i].w;
    }
    KdHeadOut so, to;
    KdError err = {0};
    int g0 = kd_ctx_set_grad(c, 0);
    int rc = kd_model_roi_forward(in->t.model, c, in->t.feat, rois, R, &to, &err);
    kd_ctx_set_grad(c, g0);
    if (rc || kd_model_roi_forward(in->s.model, c, in->s.feat, rois, R, &so, &err)) {
      kd_ctx_fail(c, "gk: the RoI heads on the positive RoIs: %s", err.msg);
      return NULL;
    }
    if (!so.rois.cls || !to.rois.cls || !kd_tensor_same_shape(so.rois.cls, to.rois.cls)) {
      kd_ctx_fail(c, "gk: the student's and the teacher's RoI heads give class logits of different shapes");
      return NULL;
    }
    return kd_sum_all(c, kd_mul(c, kd_dist_kl_logits(c, kd_detach(c, to.rois.cls), so.rois.cls, 1, T), wt));
  }
  KdTensor *const *sc = kd_side_out(&in->s, "cls"), *const *tc = kd_side_out(&in->t, "cls");
  const int A = in->s.assign->A, K = in->s.assign->K;
  for (int l = 0; l < in->npairs; l++) {
    KdTensor *s = sc ? sc[in->pairs[l].s] : NULL, *t = tc ? tc[in->pairs[l].t] : NULL;
    if (!s || !t || !kd_tensor_same_shape(s, t) || s->shape[1] != A * K) {
      kd_ctx_fail(c, "gk: level %d: the soft-label term needs class logits (N, %d, H, W) on both sides", l, A * K);
      return NULL;
    }
    s = kd_to_plain(c, s), t = kd_to_plain(c, t);
    const int HW = s->shape[2] * s->shape[3];
    int rows = 0;
    for (int i = 0; i < R; i++) rows += v[i].alev == l;
    if (!rows) continue;
    int *idx = kd_ctx_alloc(c, sizeof *idx * (size_t)rows * K);
    KdTensor *wt = kd_tensor_new(c, 2, (int[]){rows, 1});
    if (!idx || !wt) return NULL;
    int r = 0;
    for (int i = 0; i < R; i++) {
      if (v[i].alev != l) continue;
      for (int j = 0; j < K; j++) idx[r * K + j] = ((v[i].n * A * K + v[i].a * K + j) * HW) + v[i].hw;
      wt->data[r++] = v[i].w;
    }
    KdTensor *sg = kd_reshape(c, kd_gather(c, s, idx, rows * K), 2, (int[]){rows, K});
    KdTensor *tg = kd_reshape(c, kd_gather(c, t, idx, rows * K), 2, (int[]){rows, K});
    total = kd_add(c, total, kd_sum_all(c, kd_mul(c, kd_dist_kl_logits(c, tg, sg, 1, T), wt)));
  }
  return total;
}

/* The tables the probe (and `kdscope loss --out`) keeps whole: the
 * instances with their q and w, and each level's prototypes. */
static void tables(const KdMethodInst *inst, const KdDistillInputs *in, const Inst *v, int R, KdDistillOut *out) {
  const Gk *g = inst->state;
  KdCtx *c = in->c;
  KdTensor *t = R ? kd_tensor_new(c, 2, (int[]){R, 10}) : NULL;
  for (int i = 0; i < R; i++) {
    const float row[10] = {(float)v[i].n, (float)v[i].lev, (float)v[i].label, v[i].box[0], v[i].box[1], v[i].box[2],
                           v[i].box[3], v[i].qs, v[i].qt, v[i].w};
    memcpy(t->data + 10 * i, row, sizeof row);
  }
  if (t) kd_distill_table(out, "gk.inst", t, 0);
  for (int l = 0; l < in->npairs; l++) {
    int M = 0;
    for (int k = 0; k < g->K; k++) M += nprotos(g->count[l]->data, k);
    if (!M) continue;
    static const char *const stem[3] = {"gk.proto_t", "gk.proto_s", "gk.proto_label"};
    for (int w = 0; w < 3; w++) {
      const int C = w == 0 ? g->ct : w == 1 ? g->cs : 1;
      char *name = kd_ctx_alloc(c, 32);
      KdTensor *x = w < 2 ? kd_tensor_new(c, 2, (int[]){M, C}) : kd_tensor_new(c, 1, (int[]){M});
      if (!name || !x) return;
      snprintf(name, 32, "%s.%s", stem[w], in->pairs[l].name);
      int r = 0;
      for (int k = 0; k < g->K; k++)
        for (int j = 0; j < nprotos(g->count[l]->data, k); j++, r++) {
          const int row = k * KD_GK_MAX_PROTOS + j;
          if (w == 2) x->data[r] = (float)k;
          else memcpy(x->data + (size_t)r * C, (w ? g->ps[l] : g->pt[l])->data + (size_t)row * C, sizeof(float) * C);
        }
      kd_distill_table(out, name, x, 0);
    }
  }
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  Gk *g = inst->state;
  const GkParams *p = inst->params;
  KdCtx *c = in->c;
  const int L = in->npairs;
  if (L < 1 || L > g->nlev) {
    kd_ctx_fail(c, "gk: %d paired levels, the method was made for %d", L, g->nlev);
    return -1;
  }
  int R = 0;
  Inst *v = in->inst_in ? given_instances(in, p, &R) : in->s.sample ? roi_instances(in, p, &R) : anchor_instances(in, p, &R);
  if (!v) return -1;
  for (int i = 0; i < R; i++) v[i].w = 1.0f, v[i].qs = v[i].qt = -2.0f;
  const float att = !p->attenuation ? 1.0f
                    : in->epochs > 0 ? (float)(1.0 - (double)in->epoch / in->epochs)
                                     : (float)(1.0 - in->progress);
  KdTensor *fg = NULL, *bg = NULL, *r2i = NULL;
  double wsum = 0.0;
  int nw = 0;
  for (int l = 0; l < L; l++) {
    LevelSums acc = {0};
    if (level(inst, in, v, R, l, att, &acc, out)) return -1;
    fg = fg ? kd_add(c, fg, acc.fg) : acc.fg;
    bg = bg ? kd_add(c, bg, acc.bg) : acc.bg;
    if (acc.r2i) r2i = r2i ? kd_add(c, r2i, acc.r2i) : acc.r2i;
    wsum += acc.wsum, nw += acc.nw;
  }
  kd_distill_part(out, "feat_fg", fg);
  kd_distill_part(out, "feat_bg", bg);
  int one = 1;
  if (p->soft > 0.0f) {
    const int K = in->inst_in   ? in->inst_in->s_cls ? in->inst_in->s_cls->shape[1] : 0
                  : in->s.sample ? kd_model_cfg(in->s.model)->head.num_classes + 1
                                 : in->s.assign->K;
    KdTensor *kl = K > 0 ? soft_kl(in, v, R, p->T) : kd_tensor_zeros(c, 1, &one);
    const float scale = R > 0 && K > 0 ? p->weight * p->soft * p->T * p->T / ((float)K * (float)R) : 0.0f;
    kd_distill_part(out, "soft", kd_scale(c, kl, scale));
  } else {
    kd_distill_part(out, "soft", kd_tensor_zeros(c, 1, &one));
  }
  KdTensor *r = r2i ? kd_scale(c, r2i, p->weight * att * p->r2i) : kd_tensor_zeros(c, 1, &one);
  kd_distill_part(out, "r2i", r);
  if (in->maps) tables(inst, in, v, R, out);
  kd_distill_stat(out, "w_mean", nw ? wsum / nw : 1.0);
  kd_distill_stat(out, "instances", R);
  if (in->s.sample) kd_distill_stat(out, "rois", in->s.sample->nrois);
  return kd_distill_finish(c, out);
}

/* The instances: a two-stage student's sampled RoIs, else the dense
 * assignment's positives; the soft-label term, while weighted, reads the
 * dense class logits or runs both RoI heads. */
static unsigned needs_now(const KdConfig *cfg) {
  const int two = !strcmp(kd_config_str(cfg, "model.head"), "faster_rcnn");
  const unsigned soft = kd_config_num(cfg, "gk.soft") > 0 ? (two ? KD_NEED_TEACHER_RUN | KD_NEED_ROIS : KD_NEED_LOGITS) : 0;
  return (two ? KD_NEED_STUDENT_ROIS : KD_NEED_ASSIGN) | soft;
}

const KdMethod kd_method_gk = {
    .name = "gk",
    .label = "Global knowledge",
    .help = "Prototypes of each class found jointly in both feature spaces (PGM) give each instance a robustness "
            "weight for a DeFeat-style mask and a soft-label KD; optional prototype-projection term (Tang et al., "
            "ECCV 2022)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(GkParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_FEAT,
    .needs_now = needs_now,
    .gap_label = "after adapter, robustness-weighted fg/bg",
    .gap_parts = "feat_fg,feat_bg",
};
