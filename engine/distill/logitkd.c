/* Logit KD on the dense classification outputs (Hinton et al. 2015 applied
 * per anchor, KD-METHODS §9.4 convention (a)): for each selected anchor the
 * K class logits of teacher and student become softmax(./T) and
 *   L = weight * T^2 * sum_l sum_{anchors i of l} w_i KL(q_i || p_i) / (K?) / norm_l
 * with w_i = 1 for positive anchors, bg_weight for negatives and 0 for
 * ignored ones (assignment codes of targets.h), and norm_l = sum w_i over
 * the level (or the batch), i.e. a weighted mean: the positive count by
 * default, and still bounded when negatives join. Defaults follow LD's
 * RetinaNet setting (HikariTJU/LD ld_retina_r50_1x.py: loss_kd weight 10,
 * T 8, class_reduction 'mean' = KL / K, positives only, each level divided
 * by its own positive count). Only the selected anchors' logits are
 * gathered, so the cost is O(positives * K), not O(all anchors). */
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "distill/method.h"
#include "distill/norms.h"

static const char *const norm_choices[] = {"level", "batch", NULL};
enum { NORM_LEVEL, NORM_BATCH }; /* the order of norm_choices */

typedef struct {
  float weight, T, bg_weight;
  int kl_mean, norm;
} LogitKdParams;

#define F(field, ...) KD_METHOD_FLOAT(LogitKdParams, "logitkd", field, __VA_ARGS__)
#define B(field, ...) KD_METHOD_BOOL(LogitKdParams, "logitkd", field, __VA_ARGS__)
#define E(field, ...) KD_METHOD_ENUM(LogitKdParams, "logitkd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "Logit KD weight", 10.0, 0.0, 100.0, 0, NULL,
      "Weight of the class-logit KL, summed over levels (LD's RetinaNet R101->R50 config: 10)"),
    F(T, "T", "Logit KD temperature", 8.0, 0.5, 20.0, 1, "1,1.5,2,3,4,5,6,8",
      "Softmax temperature over the K class logits of an anchor; the KL is scaled by T^2 (LD RetinaNet: 8)"),
    F(bg_weight, "w_bg", "Background anchor weight", 0.0, 0.0, 1.0, 0, NULL,
      "Weight of negative anchors (IoU < 0.4) relative to positives; 0 = positives only (LD); ignored anchors "
      "never count"),
    B(kl_mean, "1/K", "KL mean over classes", 1,
      "Divide each anchor's KL by the number of classes K (LD's class_reduction='mean'); off: textbook KL"),
    E(norm, NULL, "Normaliser", "level", norm_choices,
      "level: each level divided by its own sum of anchor weights (its positive count unless bg_weight > 0; LD); "
      "batch: every level divided by the batch's sum (as the focal loss divides by all positives)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

/* The weight sum of the selected anchors per level and in the batch: the
 * positive count when bg_weight is 0. */
static void weight_sums(const KdDistillInputs *in, const int *off, float bg, double *wsum, double *total) {
  const KdDenseAssign *as = in->s.assign;
  *total = 0.0;
  for (int l = 0; l < in->npairs; l++) {
    long pos = 0, neg = 0;
    for (int n = 0; n < in->n; n++) {
      const int *tc = as->target_cls + (size_t)n * (size_t)as->A_total;
      for (int i = off[l]; i < off[l + 1]; i++) pos += tc[i] >= 0, neg += tc[i] == KD_MATCH_NEG;
    }
    wsum[l] = (double)pos + (double)bg * (double)neg;
    *total += wsum[l];
  }
}

/* One level (pair k): sum_i w_i KL_i over the anchors with w_i > 0 (a {1} tensor). */
static KdTensor *level_kl(KdCtx *c, const KdDistillInputs *in, int k, int off, float T, float bg) {
  const KdDenseAssign *as = in->s.assign;
  KdTensor *s = kd_side_out(&in->s, "cls")[in->pairs[k].s], *t = kd_side_out(&in->t, "cls")[in->pairs[k].t];
  const int N = s->shape[0], A = as->A, K = as->K;
  const int HW = s->shape[2] * s->shape[3], AK = A * K;
  int rows = 0;
  for (int n = 0; n < N; n++) {
    const int *tc = as->target_cls + (size_t)n * (size_t)as->A_total + off;
    for (int i = 0; i < HW * A; i++) rows += tc[i] >= 0 || (tc[i] == KD_MATCH_NEG && bg > 0.0f);
  }
  int one = 1;
  if (rows == 0) return kd_tensor_zeros(c, 1, &one);
  int *idx = kd_ctx_alloc(c, (size_t)rows * (size_t)K * sizeof *idx);
  int shape[2] = {rows, 1};
  KdTensor *wt = kd_tensor_new(c, 2, shape);
  if (!idx || !wt) return NULL;
  int r = 0;
  for (int n = 0; n < N; n++) {
    const int *tc = as->target_cls + (size_t)n * (size_t)as->A_total + off;
    for (int hw = 0; hw < HW; hw++)
      for (int a = 0; a < A; a++) {
        int code = tc[hw * A + a];
        float wi = code >= 0 ? 1.0f : code == KD_MATCH_NEG ? bg : 0.0f;
        if (wi <= 0.0f) continue;
        wt->data[r] = wi;
        for (int j = 0; j < K; j++) idx[r * K + j] = ((n * AK + a * K + j) * HW) + hw;
        r++;
      }
  }
  int rk[2] = {rows, K};
  KdTensor *sg = kd_reshape(c, kd_gather(c, s, idx, rows * K), 2, rk);
  KdTensor *tg = kd_reshape(c, kd_gather(c, t, idx, rows * K), 2, rk);
  return kd_sum_all(c, kd_mul(c, kd_dist_kl_logits(c, tg, sg, 1, T), wt));
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const LogitKdParams *p = inst->params;
  KdCtx *c = in->c;
  int off[KD_DISTILL_MAX_LEVELS + 1];
  double wsum[KD_DISTILL_MAX_LEVELS], total;
  if (kd_distill_dense_levels(in, "logitkd", off)) return -1;
  const float w = p->weight, T = p->T;
  const float bg = p->bg_weight;
  weight_sums(in, off, bg, wsum, &total);
  const int per_level = p->norm == NORM_LEVEL;
  const float kdiv = p->kl_mean ? (float)in->s.assign->K : 1.0f;
  for (int l = 0; l < in->npairs; l++) {
    double ws = per_level ? wsum[l] : total;
    float norm = ws > 0.0 ? (float)ws : 1.0f;
    KdTensor *kl = level_kl(c, in, l, off[l], T, bg);
    kd_distill_part(out, in->pairs[l].name, kd_scale(c, kl, w * T * T / (kdiv * norm)));
  }
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_logitkd = {
    .name = "logitkd",
    .label = "Logit KD",
    .help = "Temperature softmax KD on the dense class logits of assigned anchors (Hinton et al. 2015; LD's RetinaNet KD)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(LogitKdParams),
    .loss = loss,
    .needs = KD_NEED_LOGITS | KD_NEED_ASSIGN,
};
