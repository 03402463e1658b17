/* PGD, Prediction-Guided Distillation (Yang et al., ECCV 2022), as the
 * released code (ChenhongyiYang/PGD at 81c54d5: PGDClsLoss, PGDRegLoss,
 * PGWAnchorModule, get_back_weight; work_configs/pgd_atss_r101_r50_1x)
 * computes it, KD-METHODS §9.2 and its §10b corrections, for
 * single-anchor (GFL) heads. Distilled: the head towers' features after
 * their first conv ("cls_tower0", "reg_tower0", the config's
 * identity_pos=0; pgd.tower=last: the towers' outputs), of one width on
 * both sides. Per level l of
 * stride s, weight lw_l = 1 + pgd.lw_step * log2(s / 8) (1, 1.25, ... 2 on
 * P3..P7 as the config's loss_weight), with the masks of pgdmask.h from
 * the teacher's predictions (cls: xi_cls, reg: xi_reg, background),
 * attention at temperature T of the teacher's (t) and student's (s)
 * features X: A_sp(X) = HW softmax_hw(mean_c |X| / T) (N,1,H,W),
 * A_ch(X) = C softmax_c(|X| / T) per pixel (N,C,H,W):
 *   fg  = alpha * sum_l lw_l sum A_sp(t) A_ch(t) M'_fg (S - T)^2 / N
 *   bg  = beta  * sum_l lw_l sum A_sp(t) A_ch(t) M'_bg (S - T)^2 / N
 *   cls_att = delta * sum_l (sum |A_ch(s) - A_ch(t)| / (N H W) + sum |A_sp(s) - A_sp(t)| / N)
 * on the cls towers, M' = each image's mask over its count of non-zero
 * cells on that level; and on the reg towers, over the P cells where the
 * reg mask w is non-zero (the batch's, per level):
 *   reg     = gamma * sum_l (1/P) sum_p w_p mean_c A_ch(t) (S - T)^2
 *   reg_att = delta * sum_l sum_p |A_ch(s) - A_ch(t)| / P.
 * The official cls loss multiplies (N,1,H,W) masks into (N,C,H,W)
 * features with a broadcast to (N,N,C,H,W), so that each image is weighted
 * by the SUM of every image's mask (10b: a bug, not a design choice):
 * pgd.mix=per-image (the default) uses each image's own mask, as the
 * paper defines it; pgd.mix=official reproduces the broadcast. The
 * Gaussian fit's jitter comes from the step's seeded stream (the official
 * one is unseeded), or from given draws (KdDistillPgdIn). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "distill/pgdmask.h"

typedef struct {
  float alpha, beta, gamma, delta, temp, xi_cls, xi_reg, topk, lw_step;
  int mix, tower;
} PgdParams;

static const char *const mix_choices[] = {"per-image", "official", NULL};
enum { MIX_PER_IMAGE, MIX_OFFICIAL }; /* the order of mix_choices */
static const char *const tower_choices[] = {"first", "last", NULL};
enum { TOWER_FIRST, TOWER_LAST }; /* the order of tower_choices */

#define G "1,1.28,1.6,2,2.5,4,5,8"
#define F(field, ...) KD_METHOD_FLOAT(PgdParams, "pgd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(alpha, "α", "PGD foreground weight", 0.08, 0.0, 10.0, 1, G,
      "alpha: attention-weighted feature MSE on the cls tower inside PGD's prediction-guided mask, times the level "
      "weight (PGD's ATSS config: 0.08; its GFL config 0.04)"),
    F(beta, "β", "PGD background weight", 0.04, 0.0, 10.0, 1, G,
      "beta: the same on the cls tower at cells inside no GT box, times the level weight (config: alpha / 2 = 0.04)"),
    F(gamma, "γ", "PGD regression weight", 0.128, 0.0, 10.0, 1, G,
      "gamma: channel-attention-weighted MSE on the reg tower at the cells of the reg mask, each weighted by it "
      "(config: 1.6 alpha = 0.128)"),
    F(delta, "δ", "PGD attention weight", 8e-4, 0.0, 1.0, 1, G,
      "delta: L1 between student and teacher attention (spatial and per-pixel channel on the cls tower, channel on the "
      "reg tower's masked cells) (config: 0.0008)"),
    F(temp, "T", "PGD attention temperature", 0.8, 0.05, 10.0, 1, "1,1.5,2,3,4,5,6,8",
      "Temperature of the spatial and channel attention, both towers (config: 0.8)"),
    F(xi_cls, "ξ_cls", "PGD cls-mask IoU share", 0.8, 0.0, 1.0, 0, "step 0.05",
      "Quality q = score^(1 - xi) IoU^xi of the teacher's predictions for the cls-tower mask (config: 0.8)"),
    F(xi_reg, "ξ_reg", "PGD reg-mask IoU share", 0.6, 0.0, 1.0, 0, "step 0.05",
      "The same for the reg-tower mask (config: 0.6)"),
    F(topk, "k", "PGD top-k per GT", 9, 1, 32, 0, "step 1",
      "Anchors per GT box (all levels together) by teacher quality, whose centres the Gaussian is fitted to (config: 9)"),
    F(lw_step, "Δw", "PGD level-weight step", 0.25, 0.0, 1.0, 0, "step 0.05",
      "The cls terms of the level of stride s are weighted 1 + this * log2(s / 8): 1, 1.25, 1.5 on P3..P5 (the config's "
      "1 -> 2 over P3..P7)"),
    KD_METHOD_ENUM(PgdParams, "pgd", mix, NULL, "PGD cls mask mixing", "per-image", mix_choices,
                   "per-image (default, the paper's definition): each image's cls-tower terms use its own masks. "
                   "official: as the released code's broadcast, every image is weighted by the sum of all the batch's "
                   "masks (a bug, KD-METHODS 10b; 24-150% off on random cases), for comparison"),
    KD_METHOD_ENUM(PgdParams, "pgd", tower, NULL, "PGD tower features", "first", tower_choices,
                   "Which tower features are distilled: first (default, the official config's identity_pos=0: each "
                   "tower after its first conv, \"cls_tower0\"/\"reg_tower0\") or last (the towers' outputs, "
                   "\"cls_tower\"/\"reg_tower\", what the head's output convs read)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

/* Each image's mask over its count of non-zero cells (the code's clamp at
 * 1e-10 leaves an empty mask 0); official: every image gets the sum of
 * those normalised masks. */
static KdTensor *normalised(KdCtx *c, const KdTensor *m, int official) {
  KdTensor *o = kd_tensor_zeros(c, 4, m->shape);
  if (!o) return NULL;
  const int N = m->shape[0];
  const size_t HW = (size_t)m->shape[2] * m->shape[3];
  for (int n = 0; n < N; n++) {
    const float *mp = m->data + (size_t)n * HW;
    size_t cnt = 0;
    for (size_t p = 0; p < HW; p++) cnt += mp[p] != 0.0f;
    if (!cnt) continue;
    for (int j = official ? 0 : n; j < (official ? N : n + 1); j++)
      for (size_t p = 0; p < HW; p++) o->data[(size_t)j * HW + p] += mp[p] / (float)cnt;
  }
  return o;
}

/* C softmax_c(|x| / T) per pixel (N,C,H,W), on the tape. */
static KdTensor *channel_att(KdCtx *c, KdTensor *x, float T) {
  return kd_scale(c, kd_softmax(c, kd_scale(c, kd_abs(c, x), 1.0f / T), 1), (float)x->shape[1]);
}

typedef struct {
  KdTensor *fg, *bg, *cls_att, *reg, *reg_att;
} Sums;

static void acc(KdCtx *c, KdTensor **s, KdTensor *v) { *s = *s ? kd_add(c, *s, v) : v; }

static int level_loss(const KdDistillInputs *in, const PgdParams *p, int k, KdTensor *Sc, KdTensor *Tc, KdTensor *Sr,
                      KdTensor *Tr, const KdTensor *mcls, const KdTensor *mreg, const KdTensor *mbg, Sums *s) {
  KdCtx *c = in->c;
  const KdLevelPair *lp = &in->pairs[k];
  const int N = Sc->shape[0], C = Sc->shape[1], H = Sc->shape[2], W = Sc->shape[3];
  const float lw = 1.0f + p->lw_step * (float)log2((double)lp->stride / 8.0), T = p->temp;
  /* cls tower: teacher attention (constants) weight both masked sums. */
  KdTensor *sp_t = kd_attention_spatial(c, Tc, T), *ch_t = channel_att(c, Tc, T);
  KdTensor *sp_s = kd_attention_spatial(c, Sc, T), *ch_s = channel_att(c, Sc, T);
  KdTensor *fgm = normalised(c, mcls, p->mix == MIX_OFFICIAL), *bgm = normalised(c, mbg, p->mix == MIX_OFFICIAL);
  if (!sp_t || !ch_t || !sp_s || !ch_s || !fgm || !bgm) return -1;
  KdTensor *att = kd_mul(c, ch_t, sp_t);
  KdTensor *sq = kd_square(c, kd_sub(c, Sc, Tc));
  KdTensor *fg = kd_scale(c, kd_sum_all(c, kd_mul(c, sq, kd_mul(c, att, fgm))), lw / (float)N);
  KdTensor *bg = kd_scale(c, kd_sum_all(c, kd_mul(c, sq, kd_mul(c, att, bgm))), lw / (float)N);
  KdTensor *ca = kd_add(c, kd_scale(c, kd_sum_all(c, kd_abs(c, kd_sub(c, ch_s, ch_t))), 1.0f / (float)(N * H * W)),
                        kd_scale(c, kd_sum_all(c, kd_abs(c, kd_sub(c, sp_s, sp_t))), 1.0f / (float)N));
  /* reg tower: the cells of the reg mask, each by its weight. */
  const size_t NHW = (size_t)N * H * W;
  KdTensor *ind = kd_tensor4(c, N, 1, H, W);
  if (!ind) return -1;
  size_t P = 0;
  for (size_t i = 0; i < NHW; i++) P += (ind->data[i] = mreg->data[i] != 0.0f);
  KdTensor *rg, *ra;
  if (P) {
    KdTensor *rch_t = channel_att(c, Tr, T), *rch_s = channel_att(c, Sr, T);
    KdTensor *rsq = kd_square(c, kd_sub(c, Sr, Tr));
    rg = kd_scale(c, kd_sum_all(c, kd_mul(c, rsq, kd_mul(c, rch_t, (KdTensor *)mreg))), 1.0f / ((float)C * (float)P));
    ra = kd_scale(c, kd_sum_all(c, kd_mul(c, kd_abs(c, kd_sub(c, rch_s, rch_t)), ind)), 1.0f / (float)P);
  } else { /* no cell: zero parts still on the tape (the code's preds_S.sum() * 0) */
    rg = kd_scale(c, kd_sum_all(c, Sr), 0.0f);
    ra = kd_scale(c, kd_sum_all(c, Sr), 0.0f);
  }
  if (!fg || !bg || !ca || !rg || !ra) return -1;
  acc(c, &s->fg, fg), acc(c, &s->bg, bg), acc(c, &s->cls_att, ca), acc(c, &s->reg, rg), acc(c, &s->reg_att, ra);
  return 0;
}

/* The sides' towers at pair k, checked, in the plain layout (the towers
 * run blocked). */
static int towers(const KdDistillInputs *in, int k, int first, KdTensor **x) {
  static const char *const names[2][2] = {{"cls_tower0", "reg_tower0"}, {"cls_tower", "reg_tower"}};
  const KdLevelPair *lp = &in->pairs[k];
  for (int j = 0; j < 2; j++) {
    const char *nm = names[first ? 0 : 1][j];
    KdTensor *const *t = kd_side_out(&in->t, nm), *const *s = kd_side_out(&in->s, nm);
    KdTensor *tt = t ? t[lp->t] : NULL, *ss = s ? s[lp->s] : NULL;
    char a[64], b[64];
    if (!tt || !ss || !kd_tensor_same_shape(tt, ss) || tt->ndim != 4) {
      kd_ctx_fail(in->c, "pgd: level %s: needs the %s features \"%s\" of both sides (GFL heads) of one shape N,C,H,W "
                  "(teacher %s, student %s; the towers have model.fpn_channels channels: set it alike)",
                  lp->name, j ? "reg" : "cls", nm, tt ? kd_tensor_shape_str(tt, a, sizeof a) : "none",
                  ss ? kd_tensor_shape_str(ss, b, sizeof b) : "none");
      return -1;
    }
    x[2 * j] = ss->blocked ? kd_to_plain(in->c, ss) : ss;
    x[2 * j + 1] = tt->blocked ? kd_to_plain(in->c, tt) : tt;
    if (!x[2 * j] || !x[2 * j + 1]) return -1;
  }
  return 0;
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const PgdParams *p = inst->params;
  KdCtx *c = in->c;
  if (in->npairs < 1 || in->n < 1) {
    kd_ctx_fail(c, "pgd: no paired levels or an empty batch");
    return -1;
  }
  KdTensor *mc[KD_DISTILL_MAX_LEVELS], *mr[KD_DISTILL_MAX_LEVELS], *mb[KD_DISTILL_MAX_LEVELS];
  if (kd_pgd_masks(in, "pgd", p->xi_cls, p->xi_reg, (int)lrintf(p->topk), mc, mr, mb)) return -1;
  Sums s = {0};
  for (int k = 0; k < in->npairs; k++) {
    KdTensor *x[4];
    if (towers(in, k, p->tower == TOWER_FIRST, x)) return -1;
    const int *sh = x[0]->shape;
    const KdTensor *m3[3] = {mc[k], mr[k], mb[k]};
    for (int j = 0; j < 3; j++)
      if (!m3[j] || m3[j]->numel != (size_t)sh[0] * sh[2] * sh[3]) {
        kd_ctx_fail(c, "pgd: level %s: a mask does not have the towers' N,1,H,W (%d,1,%d,%d)", in->pairs[k].name, sh[0],
                    sh[2], sh[3]);
        return -1;
      }
    if (level_loss(in, p, k, x[0], x[1], x[2], x[3], mc[k], mr[k], mb[k], &s)) return -1;
    kd_distill_mask(out, "pgd.cls", in->pairs[k].s, mc[k]);
    kd_distill_mask(out, "pgd.reg", in->pairs[k].s, mr[k]);
    kd_distill_mask(out, "pgd.bg", in->pairs[k].s, mb[k]);
  }
  kd_distill_part(out, "fg", kd_scale(c, s.fg, p->alpha));
  kd_distill_part(out, "bg", kd_scale(c, s.bg, p->beta));
  kd_distill_part(out, "cls_att", kd_scale(c, s.cls_att, p->delta));
  kd_distill_part(out, "reg", kd_scale(c, s.reg, p->gamma));
  kd_distill_part(out, "reg_att", kd_scale(c, s.reg_att, p->delta));
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_pgd = {
    .name = "pgd",
    .label = "PGD",
    .help = "Prediction-guided distillation (Yang et al., ECCV 2022): attention-weighted MSE of the head towers' "
            "features where the teacher's score and box IoU are high (a Gaussian over its top-9 per GT) and on the "
            "background (GFL heads; cls masks per image by default, pgd.mix=official for the code's batch mixing)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(PgdParams),
    .loss = loss,
    .needs = KD_NEED_LOGITS | KD_NEED_DIST | KD_NEED_GT,
};
