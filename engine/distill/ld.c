/* LD, Localization Distillation (Zheng et al., CVPR 2022), as the released
 * code (HikariTJU/LD, LDHead + its ATSS assigner) computes it, KD-METHODS
 * §6 and its §10b corrections. Both sides are GFL heads: per location four
 * side distributions over R+1 bins ("dist", channel side*(R+1) + bin) and
 * K class logits ("cls"). With KL_T(s, t) = T^2 * (1/B) sum_b q_b log(q_b/p_b),
 * q = softmax(t/T), p = softmax(s/T), per level, summed over levels:
 *   main: ld  * sum_{student positives i, sides e} w_i KL_T(z_s, z_t) / 4,
 *         w_i = max_k sigmoid(student cls_i) (detached);
 *   vlr:  vlr * sum_{VLR anchors i, e} v_i KL_T(z_s, z_t) / 16, the VLR of
 *         atss.h's kd_ld_vlr (every anchor, LD's overlap in
 *         [0.25 t_g, t_g), v_i its best IoU), positives not excluded;
 *   cls:  kd  * sum_{positives i} KL_T over the K class logits / P_level,
 *         P_level the level's positives over the batch (0 without any).
 * The constants 4 and 16 are the code's avg_factors, not counts. Defaults
 * from ld_r50_gflv1_r101_fpn_coco_1x (which ld_r18 inherits): 0.25 (T 10),
 * 0.25 (T 10), 10 (T 2). Only selected locations are gathered. */
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "detect/assign.h"
#include "detect/atss.h"
#include "detect/postprocess.h"
#include "distill/method.h"
#include "distill/norms.h"

typedef struct {
  float ld, ld_T, vlr, vlr_T, vlr_lo, kd, kd_T;
} LdParams;

#define F(field, ...) KD_METHOD_FLOAT(LdParams, "ld", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(ld, "λ_LD", "Main LD weight", 0.25, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "Weight of the KL between teacher and student side distributions at the student's positive locations, each "
      "weighted by the student's max class score, the sum divided by 4 (LD's GFL configs: 0.25)"),
    F(ld_T, "T_LD", "Main LD temperature", 10.0, 0.5, 20.0, 1, "1,1.5,2,3,4,5,6,8",
      "Softmax temperature over the R+1 bins of a side; the KL (mean over bins) is scaled by T^2 (LD: 10)"),
    F(vlr, "λ_VLR", "VLR LD weight", 0.25, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "Weight of the same KL on the valuable localization region (anchors of every level whose LD overlap with a GT "
      "lies in [vlr_lo t, t), t its ATSS threshold), each weighted by its IoU, the sum divided by 16 (LD: 0.25)"),
    F(vlr_T, "T_VLR", "VLR LD temperature", 10.0, 0.5, 20.0, 1, "1,1.5,2,3,4,5,6,8", "Temperature of the VLR term (LD: 10)"),
    F(vlr_lo, "ρ_lo", "VLR lower bound", 0.25, 0.0, 1.0, 0, NULL,
      "The VLR's window starts at this share of the ATSS threshold (LD's code: 0.25)"),
    F(kd, "λ_KD", "Class KD weight", 10.0, 0.0, 100.0, 0, NULL,
      "Weight of the KL between teacher and student class logits (softmax over the K sigmoid logits, mean over "
      "classes) at the positives, divided by each level's positive count (LD: 10)"),
    F(kd_T, "T_KD", "Class KD temperature", 2.0, 0.5, 20.0, 1, "1,1.5,2,3,4,5,6,8", "Temperature of the class KD (LD's GFL: 2)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

/* Rows of one level: (n, cell) pairs and their weights. */
typedef struct {
  int rows;
  int *n, *cell;
  float *w;
} Sel;

/* The K (or 4(R+1)) channel values of the selected cells as (rows, ch). */
static KdTensor *gather_rows(KdCtx *c, KdTensor *x, const Sel *s, int ch) {
  const int HW = x->shape[2] * x->shape[3];
  int *idx = kd_ctx_alloc(c, (size_t)s->rows * ch * sizeof *idx);
  if (!idx) return NULL;
  for (int r = 0; r < s->rows; r++)
    for (int j = 0; j < ch; j++) idx[(size_t)r * ch + j] = (s->n[r] * ch + j) * HW + s->cell[r];
  return kd_reshape(c, kd_gather(c, x, idx, s->rows * ch), 2, (int[]){s->rows, ch});
}

/* sum_rows w_r * sum_sides KL(softmax(t/T) || softmax(s/T)) / B over rows of (4 sides x B bins). */
static KdTensor *side_kl(KdCtx *c, KdTensor *s, KdTensor *t, const Sel *sel, int B, float T) {
  int one = 1;
  if (sel->rows == 0) return kd_tensor_zeros(c, 1, &one);
  KdTensor *sr = kd_reshape(c, gather_rows(c, s, sel, 4 * B), 2, (int[]){4 * sel->rows, B});
  KdTensor *tr = kd_reshape(c, gather_rows(c, t, sel, 4 * B), 2, (int[]){4 * sel->rows, B});
  KdTensor *w = kd_tensor_new(c, 2, (int[]){4 * sel->rows, 1});
  if (!w) return NULL;
  for (int r = 0; r < 4 * sel->rows; r++) w->data[r] = sel->w[r / 4];
  return kd_scale(c, kd_sum_all(c, kd_mul(c, kd_dist_kl_logits(c, tr, sr, 1, T), w)), 1.0f / (float)B);
}

static int sel_alloc(KdCtx *c, Sel *s, int cap) {
  s->rows = 0;
  s->n = kd_ctx_alloc(c, (size_t)(cap ? cap : 1) * sizeof *s->n);
  s->cell = kd_ctx_alloc(c, (size_t)(cap ? cap : 1) * sizeof *s->cell);
  s->w = kd_ctx_alloc(c, (size_t)(cap ? cap : 1) * sizeof *s->w);
  return s->n && s->cell && s->w ? 0 : -1;
}

/* The VLR weights of the batch [n * A_total] from the student's anchors
 * and the GT, with the ATSS threshold of the student's assigner. */
static float *vlr_weights(const KdDistillInputs *in, const int *off, float lo, int *count) {
  KdCtx *c = in->c;
  const KdDenseAssign *as = in->s.assign;
  const int At = as->A_total;
  int topk = in->s.model ? kd_model_cfg(in->s.model)->head.gfl.topk : 9;
  float *v = kd_ctx_alloc(c, (size_t)in->n * At * sizeof *v);
  int *match = kd_ctx_alloc(c, (size_t)At * sizeof *match);
  if (!v || !match) return NULL;
  *count = 0;
  for (int i = 0; i < in->n; i++) {
    const KdGtImage *g = &in->gt[i];
    float *vi = v + (size_t)i * At;
    float *thr = kd_ctx_alloc(c, (size_t)(g->n > 0 ? g->n : 1) * sizeof *thr);
    KdError err;
    if (!thr) return NULL;
    if (g->n == 0) { /* the official code crashes here; no VLR */
      memset(vi, 0, (size_t)At * sizeof *vi);
      continue;
    }
    if (kd_atss_assign(as->anchors, off, in->npairs, g->boxes, g->crowd, g->n, topk, match, NULL, thr, &err) < 0) {
      kd_ctx_fail(c, "ld: image %d: %s", i, err.msg);
      return NULL;
    }
    *count += kd_ld_vlr(as->anchors, At, g->boxes, g->crowd, thr, g->n, lo, vi);
  }
  return v;
}

/* For the probes: the main region (its weight, the student's max class
 * score) and the VLR (its weight) as N,1,H,W maps at student level lv,
 * and both sides' distributions as they are (N,4B,H,W logits). */
static int regions(KdCtx *c, KdTensor *s, KdTensor *t, const Sel *pos, const Sel *reg, int n, int lv, KdDistillOut *out) {
  const int H = s->shape[2], W = s->shape[3], HW = H * W;
  KdTensor *m = kd_tensor_zeros(c, 4, (int[]){n, 1, H, W}), *v = kd_tensor_zeros(c, 4, (int[]){n, 1, H, W});
  if (!m || !v) return -1;
  for (int r = 0; r < pos->rows; r++) m->data[(size_t)pos->n[r] * HW + pos->cell[r]] = pos->w[r];
  for (int r = 0; r < reg->rows; r++) v->data[(size_t)reg->n[r] * HW + reg->cell[r]] = reg->w[r];
  kd_distill_mask(out, "ld.main", lv, m);
  kd_distill_mask(out, "ld.vlr", lv, v);
  kd_distill_mask(out, "ld.dist_t", lv, t);
  kd_distill_mask(out, "ld.dist_s", lv, s);
  return 0;
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const LdParams *p = inst->params;
  KdCtx *c = in->c;
  int off[KD_DISTILL_MAX_LEVELS + 1];
  if (kd_distill_dense_levels(in, "ld", off)) return -1;
  const KdDenseAssign *as = in->s.assign;
  KdTensor *const *sd = kd_side_out(&in->s, "dist"), *const *td = kd_side_out(&in->t, "dist");
  KdTensor *const *sc = kd_side_out(&in->s, "cls"), *const *tc = kd_side_out(&in->t, "cls");
  if (as->A != 1 || !sd || !td || !sd[in->pairs[0].s] || !td[in->pairs[0].t]) {
    kd_ctx_fail(c, "ld: needs GFL heads on both sides (one anchor per location and side distributions \"dist\")");
    return -1;
  }
  const int K = as->K, At = as->A_total;
  const int B = sd[in->pairs[0].s]->shape[1] / 4;
  int nvlr = 0;
  float *vlr = NULL;
  if (p->vlr > 0.0f) {
    if (!in->gt || !as->anchors) {
      kd_ctx_fail(c, "ld: the VLR needs the ground truth and the student's anchors");
      return -1;
    }
    if (!(vlr = vlr_weights(in, off, p->vlr_lo, &nvlr))) return -1;
  }
  KdTensor *main_sum = NULL, *vlr_sum = NULL, *kd_sum = NULL;
  int total_pos = 0;
  for (int l = 0; l < in->npairs; l++) {
    KdTensor *s = sd[in->pairs[l].s], *t = td[in->pairs[l].t], *scl = sc[in->pairs[l].s];
    char sb[64], tb[64];
    if (!s || !t || !kd_tensor_same_shape(s, t) || s->ndim != 4 || s->shape[1] != 4 * B) {
      kd_ctx_fail(c, "ld: level %s: student dist %s and teacher dist %s must both be N,4*(R+1),H,W with the same R",
                  in->pairs[l].name, s ? kd_tensor_shape_str(s, sb, sizeof sb) : "none",
                  t ? kd_tensor_shape_str(t, tb, sizeof tb) : "none");
      return -1;
    }
    const int HW = s->shape[2] * s->shape[3];
    Sel pos, reg;
    if (sel_alloc(c, &pos, in->n * HW) || sel_alloc(c, &reg, in->n * HW)) return -1;
    for (int n = 0; n < in->n; n++)
      for (int h = 0; h < HW; h++) {
        size_t f = (size_t)n * At + off[l] + h;
        if (as->target_cls[f] >= 0) {
          float w = 0.0f;
          for (int k = 0; k < K; k++) w = fmaxf(w, kd_sigmoidf(scl->data[((size_t)n * K + k) * HW + h]));
          pos.n[pos.rows] = n, pos.cell[pos.rows] = h, pos.w[pos.rows++] = w;
        }
        if (vlr && vlr[f] > 0.0f) reg.n[reg.rows] = n, reg.cell[reg.rows] = h, reg.w[reg.rows++] = vlr[f];
      }
    total_pos += pos.rows;
    if (in->maps && regions(c, s, t, &pos, &reg, in->n, in->pairs[l].s, out)) return -1;
    KdTensor *m = kd_scale(c, side_kl(c, s, t, &pos, B, p->ld_T), p->ld_T * p->ld_T / 4.0f);
    main_sum = main_sum ? kd_add(c, main_sum, m) : m;
    if (vlr) {
      KdTensor *v = kd_scale(c, side_kl(c, s, t, &reg, B, p->vlr_T), p->vlr_T * p->vlr_T / 16.0f);
      vlr_sum = vlr_sum ? kd_add(c, vlr_sum, v) : v;
    }
    if (p->kd > 0.0f && pos.rows > 0) {
      KdTensor *sr = gather_rows(c, scl, &pos, K), *tr = gather_rows(c, tc[in->pairs[l].t], &pos, K);
      float scale = p->kd_T * p->kd_T / ((float)K * (float)pos.rows);
      KdTensor *k = kd_scale(c, kd_sum_all(c, kd_dist_kl_logits(c, tr, sr, 1, p->kd_T)), scale);
      kd_sum = kd_sum ? kd_add(c, kd_sum, k) : k;
    }
  }
  int one = 1;
  kd_distill_part(out, "main", kd_scale(c, main_sum, p->ld));
  kd_distill_part(out, "vlr", vlr_sum ? kd_scale(c, vlr_sum, p->vlr) : kd_tensor_zeros(c, 1, &one));
  kd_distill_part(out, "cls", kd_sum ? kd_scale(c, kd_sum, p->kd) : kd_tensor_zeros(c, 1, &one));
  kd_distill_stat(out, "pos", total_pos);
  kd_distill_stat(out, "vlr_n", nvlr);
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_ld = {
    .name = "ld",
    .label = "LD",
    .help = "Localization Distillation (Zheng et al., CVPR 2022): KL between the teacher's and student's box-side "
            "distributions on the positives and the valuable localization region, plus class KD (GFL heads)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(LdParams),
    .loss = loss,
    .needs = KD_NEED_LOGITS | KD_NEED_ASSIGN | KD_NEED_DIST | KD_NEED_GT,
};
