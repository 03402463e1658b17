/* DeFeat: distilling object detectors via decoupled features (Guo et al.,
 * CVPR 2021), KD-METHODS section 1, applied to RetinaNet.
 *
 * Neck: per FPN level a 3x3 adapter on the student, D = (A_l - T_l)^2 and a
 * GT mask M_l (boxes drawn on one level by their scale, masks.h);
 *   L_obj_l = sum D*M / max(1, 2*C*sum M),  L_bg_l likewise with 1-M,
 * each averaged over the levels and weighted by alpha_obj / alpha_bg.
 * Head [INFERRED for RetinaNet, 1.6]: softmax-KL over the K class logits of
 * each anchor at temperature T (times T^2), averaged over the positive
 * anchors (beta_obj, T_obj) and over the negative anchors (beta_bg, T_bg);
 * ignored anchors take no part. Unlike the released code, T_bg is used
 * (paper over code quirk). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"
#include "distill/gapmaps.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "model/layers.h"

typedef struct {
  int nlev;
  KdConv adapt[KD_DISTILL_MAX_LEVELS];
} DeFeat;

typedef struct {
  float weight, alpha_obj, alpha_bg, beta_obj, beta_bg, T_obj, T_bg, finest_scale;
} DeFeatParams;

#define F(field, ...) KD_METHOD_FLOAT(DeFeatParams, "defeat", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "DeFeat weight", 1.0, 0.0, 100.0, 0, NULL,
      "Overall weight of the DeFeat loss (all four parts)"),
    F(alpha_obj, "α_obj", "Neck object weight", 4.0, 0.0, 1000.0, 1, "1,1.2,1.6,2,3,4,5,6,8",
      "alpha_obj: weight of the adapted-feature MSE inside GT boxes (author's COCO value 4, issue #18; VOC config 3)"),
    F(alpha_bg, "α_bg", "Neck background weight", 16.0, 0.0, 1000.0, 1, "1,1.2,1.6,2,3,4,5,6,8",
      "alpha_bg: weight of the adapted-feature MSE outside GT boxes (author's COCO value 16, issue #18; VOC config 12)"),
    F(beta_obj, "β_obj", "Head object weight", 1.0, 0.0, 100.0, 1, "1,2,5",
      "beta_obj: class-logit KL on positive anchors. The paper's COCO value is unverified and the released config "
      "has head KD off (author: +0.1-0.2 AP); 1 (half the VOC config's 2) keeps it active but below the neck terms"),
    F(beta_bg, "β_bg", "Head background weight", 1.0, 0.0, 100.0, 1, "1,2,5",
      "beta_bg: class-logit KL on negative anchors (IoU < 0.4); default 1 for the same reason as beta_obj"),
    F(T_obj, "T_obj", "Head object temperature", 1.0, 0.1, 20.0, 1, "1,1.5,2,3,5,7",
      "Softmax temperature of the positive-anchor KL (loss times T^2); VOC config 1"),
    F(T_bg, "T_bg", "Head background temperature", 1.0, 0.1, 20.0, 1, "1,1.5,2,3,5,7",
      "Softmax temperature of the negative-anchor KL (times T^2). Used as the paper defines it; the released code "
      "ignores it and uses T_obj"),
    F(finest_scale, "s_0", "Finest scale", 56.0, 1.0, 1024.0, 1, "step 1",
      "Canonical box scale of the level rule: sqrt((w+1)(h+1)) < 2x it goes to P3, < 4x to P4, else P5. 56 is tuned "
      "for ~800 px COCO inputs; fashion-det (128 px, scales 10-80) wants 11: P3/P4/P5 get 37/38/25% of the objects, "
      "COCO's small/medium/large shares (41/34/24%)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  DeFeat *d = calloc(1, sizeof *d);
  if (!d) return kd_error(err, "out of memory");
  inst->state = d;
  d->nlev = sh->nlev;
  return kd_distill_adapters_add(d->adapt, sh->nlev, store, "distill.defeat.neck_adapt", sh->s_channels, sh->t_channels, 3,
                                 err);
}

static void init_weights(KdMethodInst *inst, KdRng *r) {
  DeFeat *d = inst->state;
  for (int l = 0; l < d->nlev; l++) {
    /* The reference: fmod(N(0,1), 2) * 1e-4, bias left at PyTorch's default. */
    KdTensor *w = d->adapt[l].w;
    for (size_t i = 0; i < w->numel; i++) w->data[i] = fmodf(kd_rng_normal(r), 2.0f) * 1e-4f;
    kd_init_bias_default(d->adapt[l].b, w, r);
  }
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

/* Neck part of one level: sums of D over the mask and outside it
 * ({2}: obj, bg); *n_obj, *n_bg the normalisers. When the probe asks,
 * also the level's loss map: D weighted as the two neck parts weight it. */
static KdTensor *neck_level(KdCtx *c, const KdDistillInputs *in, const DeFeat *d, const DeFeatParams *prm, int l, int L,
                            float *n_obj, float *n_bg, KdTensor **mask, KdDistillOut *out) {
  const KdLevelPair *p = &in->pairs[l];
  KdTensor *s = in->s.feat[p->s], *t = in->t.feat[p->t];
  KdTensor *a = kd_conv_fwd(c, &d->adapt[l], s);
  if (!a || !t) return NULL;
  if (!kd_tensor_same_shape(a, t)) {
    char sa[64], st[64];
    kd_ctx_fail(c, "defeat: level %d: adapted student %s vs teacher %s", l, kd_tensor_shape_str(a, sa, 64),
                kd_tensor_shape_str(t, st, 64));
    return NULL;
  }
  const int ch = t->shape[1];
  KdMaskGrid g = {t->shape[0], t->shape[2], t->shape[3], p->stride};
  KdTensor *m[2] = {kd_mask_defeat(c, in->gt, g, l, L, prm->finest_scale), NULL};
  if (!m[0] || !(m[1] = kd_tensor_like(c, m[0]))) return NULL;
  double msum = 0.0;
  for (size_t i = 0; i < m[0]->numel; i++) msum += m[0]->data[i], m[1]->data[i] = 1.0f - m[0]->data[i];
  *n_obj = (float)fmax(1.0, 2.0 * ch * msum);
  *n_bg = (float)fmax(1.0, 2.0 * ch * ((double)m[0]->numel - msum));
  *mask = m[0];
  if (in->maps) {
    const float k = prm->weight / (float)L, coef[2] = {k * prm->alpha_obj / *n_obj, k * prm->alpha_bg / *n_bg};
    kd_distill_gap(out, p->s, kd_gapmap_sqdist(c, a, t, NULL, m, 2, coef));
  }
  return kd_sqdist_sums(c, a, t, NULL, NULL, m, 2);
}

/* ---- head: one fused op per level ----
 * out[set] = coef[set] * sum over the set's anchors and positions of
 *   KL(q || p) = sum_k q_k (log q_k - log p_k),  q = softmax(t/T), p = softmax(s/T)
 * (set 0: target >= 0, set 1: target == -1; coef folds in beta * T^2 / |set|).
 * With lt, ls the log-sum-exps of t/T and s/T:
 *   KL = sum_k q_k (t_k - s_k) / T - (lt - ls),   d/ds_k = coef (p_k - q_k) / T.
 * Positions are processed in tiles so the inner loops run contiguously
 * over H*W; the forward keeps lt, ls per position for the backward, and
 * nothing of size N*A*K*H*W is stored. */

#define KL_TILE 128

/* e^x within 1e-7 relative for x in [-87, 88] (Cephes' polynomial after
 * reduction by ln 2; n found by the 1.5*2^23 rounding trick, whose bits
 * also hold the exponent), without calls, branches or floorf so the tile
 * loops vectorise: glibc's expf is a scalar call and the head makes about
 * a million of them per step. */
static inline float kl_exp(float x) {
  x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
  const float t = x * 1.44269504089f + 12582912.0f;
  const float n = t - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits - 0x4B400000 + 127) << 23; /* 2^n */
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

typedef struct {
  KdTensor *t;
  const int *tcls;
  int A, K, A_total, base;
  float T, coef[2];
  float *ls, *lt; /* [N*A*HW], filled by the forward */
} KlSaved;

/* Per-position weights of anchor row na (= n*A + a), positions p0..p0+w:
 * coef of the anchor's set, 0 for ignored anchors; returns the sets too. */
static void kl_weights(const KlSaved *k, int na, int p0, int w, float *wt, signed char *set) {
  const int n = na / k->A, a = na % k->A;
  const int *tc = k->tcls + (size_t)n * k->A_total + k->base + a;
  for (int i = 0; i < w; i++) {
    const int cls = tc[(size_t)(p0 + i) * k->A];
    set[i] = (signed char)(cls >= 0 ? 0 : cls == -1 ? 1 : -1);
    wt[i] = set[i] >= 0 ? k->coef[set[i]] : 0.0f;
  }
}

static void kl_backward(KdCtx *c, KdNode *node) {
  KdTensor *s = node->in[0];
  if (!s->requires_grad) return;
  const KlSaved *k = node->saved;
  const int K = k->K, HW = s->shape[2] * s->shape[3], rows = s->shape[0] * k->A;
  const int tiles = (HW + KL_TILE - 1) / KL_TILE;
  const float invT = 1.0f / k->T, *g = node->out->grad;
  float *gs = kd_grad(c, s);
  if (!gs) return;
  KD_PARFOR(rows * tiles)
  for (int job = 0; job < rows * tiles; job++) {
    const int na = job / tiles, p0 = job % tiles * KL_TILE, w = HW - p0 < KL_TILE ? HW - p0 : KL_TILE;
    float f[KL_TILE];
    signed char set[KL_TILE];
    kl_weights(k, na, p0, w, f, set);
    for (int i = 0; i < w; i++) f[i] *= set[i] >= 0 ? g[set[i]] * invT : 0.0f;
    const float *ls = k->ls + (size_t)na * HW + p0, *lt = k->lt + (size_t)na * HW + p0;
    const size_t o = (size_t)na * K * HW + p0;
    for (int j = 0; j < K; j++) {
      const float *sl = s->data + o + (size_t)j * HW, *tl = k->t->data + o + (size_t)j * HW;
      float *gr = gs + o + (size_t)j * HW;
      for (int i = 0; i < w; i++)
        gr[i] += f[i] * (kl_exp(sl[i] * invT - ls[i]) - kl_exp(tl[i] * invT - lt[i]));
    }
  }
}

static KdTensor *kl_level(KdCtx *c, KdTensor *s, KdTensor *t, const KlSaved *cfg) {
  const int K = cfg->K, HW = s->shape[2] * s->shape[3], rows = s->shape[0] * cfg->A;
  const int tiles = (HW + KL_TILE - 1) / KL_TILE;
  const float invT = 1.0f / cfg->T;
  int two = 2;
  KdTensor *out = kd_tensor_new(c, 1, &two);
  float *lsa = kd_ctx_alloc(c, (size_t)rows * HW * sizeof *lsa), *lta = kd_ctx_alloc(c, (size_t)rows * HW * sizeof *lta);
  if (!out || !lsa || !lta) return NULL;
  double s0 = 0.0, s1 = 0.0;
  KD_PRAGMA(omp parallel for schedule(static) reduction(+ : s0, s1))
  for (int job = 0; job < rows * tiles; job++) {
    const int na = job / tiles, p0 = job % tiles * KL_TILE, w = HW - p0 < KL_TILE ? HW - p0 : KL_TILE;
    const size_t o = (size_t)na * K * HW + p0;
    float ms[KL_TILE], mt[KL_TILE], zs[KL_TILE], zt[KL_TILE], acc[KL_TILE], wt[KL_TILE];
    signed char set[KL_TILE];
    for (int i = 0; i < w; i++) ms[i] = mt[i] = -INFINITY, zs[i] = zt[i] = acc[i] = 0.0f;
    const float *sd = s->data, *td = t->data;
    for (int j = 0; j < K; j++) {
      const float *sl = sd + o + (size_t)j * HW, *tl = td + o + (size_t)j * HW;
      for (int i = 0; i < w; i++) ms[i] = sl[i] * invT > ms[i] ? sl[i] * invT : ms[i];
      for (int i = 0; i < w; i++) mt[i] = tl[i] * invT > mt[i] ? tl[i] * invT : mt[i];
    }
    for (int j = 0; j < K; j++) {
      const float *sl = sd + o + (size_t)j * HW, *tl = td + o + (size_t)j * HW;
      for (int i = 0; i < w; i++) {
        const float et = kl_exp(tl[i] * invT - mt[i]);
        zt[i] += et;
        acc[i] += et * (tl[i] - sl[i]);
        zs[i] += kl_exp(sl[i] * invT - ms[i]);
      }
    }
    kl_weights(cfg, na, p0, w, wt, set);
    float *ls = lsa + (size_t)na * HW + p0, *lt = lta + (size_t)na * HW + p0;
    for (int i = 0; i < w; i++) {
      ls[i] = ms[i] + logf(zs[i]), lt[i] = mt[i] + logf(zt[i]);
      const float kl = acc[i] / zt[i] * invT - ((mt[i] - ms[i]) + logf(zt[i] / zs[i]));
      if (set[i] == 0) s0 += (double)wt[i] * kl;
      if (set[i] == 1) s1 += (double)wt[i] * kl;
    }
  }
  out->data[0] = (float)s0, out->data[1] = (float)s1;
  KdTensor *in[1] = {s};
  KlSaved *sv = kd_record(c, "defeat_kl", out, in, 1, kl_backward, sizeof *sv);
  if (sv) *sv = *cfg, sv->t = t, sv->ls = lsa, sv->lt = lta;
  return out;
}

/* Head part at one temperature over every level ({2}: positive-anchor and
 * negative-anchor sums, each times its coef). NULL on error. */
static KdTensor *head_kl(KdCtx *c, const KdDistillInputs *in, float T, const float coef[2]) {
  const KdDenseAssign *as = in->s.assign;
  const int A = as->A, K = as->K, N = in->n;
  KdTensor *const *sc = kd_side_out(&in->s, "cls"), *const *tc = kd_side_out(&in->t, "cls");
  KlSaved cfg = {.tcls = as->target_cls, .A = A, .K = K, .A_total = as->A_total, .T = T, .coef = {coef[0], coef[1]}};
  KdTensor *total = NULL;
  for (int k = 0; k < in->npairs; k++) {
    const int l = in->pairs[k].s;
    KdTensor *s = sc[l], *t = tc[in->pairs[k].t];
    if (!s || !t) return NULL;
    if (s->ndim != 4 || !kd_tensor_same_shape(s, t) || s->shape[0] != N || s->shape[1] != A * K) {
      char ss[64], st[64];
      kd_ctx_fail(c, "defeat: level %d class logits: student %s, teacher %s, expected %d,%d,H,W", l,
                  kd_tensor_shape_str(s, ss, 64), kd_tensor_shape_str(t, st, 64), N, A * K);
      return NULL;
    }
    const int HW = s->shape[2] * s->shape[3];
    if (cfg.base + HW * A > as->A_total) {
      kd_ctx_fail(c, "defeat: class logits have more anchors than the targets (%d)", as->A_total);
      return NULL;
    }
    KdTensor *v = kl_level(c, s, t, &cfg);
    total = total ? kd_add(c, total, v) : v;
    cfg.base += HW * A;
  }
  if (cfg.base != as->A_total) {
    kd_ctx_fail(c, "defeat: class logits cover %d anchors per image, targets %d", cfg.base, as->A_total);
    return NULL;
  }
  return total;
}

/* Both head parts, weighted: beta * T^2 * mean KL over each anchor set
 * (0 when the set is empty). */
static int head(KdCtx *c, const KdDistillInputs *in, const DeFeatParams *p, KdTensor **obj, KdTensor **bg) {
  const float w = p->weight;
  const float beta[2] = {w * p->beta_obj, w * p->beta_bg};
  const float T[2] = {p->T_obj, p->T_bg};
  size_t count[2] = {0, 0};
  for (size_t i = 0; i < (size_t)in->n * in->s.assign->A_total; i++) {
    int tc = in->s.assign->target_cls[i];
    count[0] += tc >= 0, count[1] += tc == -1;
  }
  float coef[2];
  for (int k = 0; k < 2; k++) coef[k] = count[k] ? beta[k] * T[k] * T[k] / (float)count[k] : 0.0f;
  if (T[0] == T[1]) {
    KdTensor *kl = head_kl(c, in, T[0], coef);
    *obj = kd_slice(c, kl, 0, 0, 1), *bg = kd_slice(c, kl, 0, 1, 1);
  } else {
    const float only_obj[2] = {coef[0], 0.0f}, only_bg[2] = {0.0f, coef[1]};
    *obj = kd_slice(c, head_kl(c, in, T[0], only_obj), 0, 0, 1);
    *bg = kd_slice(c, head_kl(c, in, T[1], only_bg), 0, 1, 1);
  }
  return *obj && *bg ? 0 : -1;
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  DeFeat *d = inst->state;
  const DeFeatParams *p = inst->params;
  KdCtx *c = in->c;
  const float w = p->weight;
  const int L = in->npairs < d->nlev ? in->npairs : d->nlev;
  if (L < 1) {
    kd_ctx_fail(c, "defeat: no FPN levels");
    return -1;
  }
  KdTensor *obj = NULL, *bg = NULL;
  for (int l = 0; l < L; l++) {
    KdTensor *m;
    float no, nb;
    KdTensor *sums = neck_level(c, in, d, p, l, L, &no, &nb, &m, out);
    if (!sums) return -1;
    KdTensor *lo = kd_scale(c, kd_slice(c, sums, 0, 0, 1), 1.0f / no);
    KdTensor *lb = kd_scale(c, kd_slice(c, sums, 0, 1, 1), 1.0f / nb);
    obj = obj ? kd_add(c, obj, lo) : lo;
    bg = bg ? kd_add(c, bg, lb) : lb;
    kd_distill_mask(out, "defeat.fg", in->pairs[l].s, m);
  }
  kd_distill_part(out, "neck_obj", kd_scale(c, obj, w * p->alpha_obj / (float)L));
  kd_distill_part(out, "neck_bg", kd_scale(c, bg, w * p->alpha_bg / (float)L));

  const float b_obj = p->beta_obj, b_bg = p->beta_bg;
  if (b_obj > 0.0f || b_bg > 0.0f) {
    KdTensor *const *sc = kd_side_out(&in->s, "cls"), *const *tc = kd_side_out(&in->t, "cls");
    if (!in->s.assign || !sc || !tc || !sc[0] || !tc[0] || in->npairs != in->s.levels->n) {
      kd_ctx_fail(c, "defeat: head KD needs class logits and anchor targets "
                     "(set defeat.beta_obj = defeat.beta_bg = 0 to run without)");
      return -1;
    }
    KdTensor *ho, *hb;
    if (head(c, in, p, &ho, &hb)) return -1;
    kd_distill_part(out, "head_obj", ho);
    kd_distill_part(out, "head_bg", hb);
  } else {
    int one = 1;
    kd_distill_part(out, "head_obj", kd_tensor_zeros(c, 1, &one));
    kd_distill_part(out, "head_bg", kd_tensor_zeros(c, 1, &one));
  }
  return kd_distill_finish(c, out);
}

/* The head terms read class logits and the assignment only while weighted. */
static unsigned needs_now(const KdConfig *cfg) {
  return kd_config_num(cfg, "defeat.beta_obj") > 0 || kd_config_num(cfg, "defeat.beta_bg") > 0 ? KD_NEED_LOGITS | KD_NEED_ASSIGN
                                                                                              : 0;
}

const KdMethod kd_method_defeat = {
    .name = "defeat",
    .label = "DeFeat",
    .help = "Decoupled features and logits: GT-box and background feature MSE through a 3x3 adapter, class KL on "
            "positive and negative anchors (Guo et al., CVPR 2021)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(DeFeatParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_FEAT | KD_NEED_GT,
    .needs_now = needs_now,
    .gap_label = "after adapter, fg/bg weighted",
    .gap_parts = "neck_obj,neck_bg",
};
