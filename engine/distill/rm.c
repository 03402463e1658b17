/* RM — rank mimicking (Li et al., AAAI 2022, "Knowledge Distillation for
 * Object Detection via Rank Mimicking and Prediction-guided Feature
 * Imitation"), as OpenMMLab mmrazor's third-party port computes it
 * (RankMimicLoss; KD-METHODS-2 §C.2); the authors released no code. Per
 * image, for each GT g with positive anchors P_g (the student's
 * assignment; the same anchors on both sides give the teacher the same
 * one), the GT-class logits of P_g become a softmax over the anchors:
 *   KL_g = KL(softmax_{P_g} z_t || softmax_{P_g} z_s)
 *   L = weight * mean_{images with a GT} ( sum_g KL_g / n_gt(image) )
 * n_gt counts the image's non-crowd GTs, those without a positive anchor
 * too (KL 0, as mmrazor's sum over an empty set). An image without GT is
 * left out of the mean (mmrazor divides by zero there). Raw logits, no
 * temperature. The teacher is a constant; the gradient reaches only the
 * student's logits at positive anchors. */
#include <string.h>

#include "core/ops.h"
#include "distill/method.h"
#include "distill/norms.h"

/* Pads a GT's row of anchors: softmax weight exp(-1e30 - max) = 0. */
#define RM_PAD (-1e30f)

typedef struct {
  float weight;
} RmParams;

#define F(field, ...) KD_METHOD_FLOAT(RmParams, "rm", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "RM weight", 4.0, 0.0, 40.0, 0, "step 0.5",
      "Weight of the rank-mimicking KL: per GT, KL(teacher || student) of the softmax over its positive anchors of "
      "the GT-class logits, mean over GTs and images (mmrazor's RetinaNet R101->R50 config: 4; the paper's value "
      "[UNVERIFIED])"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

/* One GT's set: its image, its class and where its anchors start in pos[]. */
typedef struct {
  int n, label, start, count;
} Group;

/* The groups of the batch and, for each positive anchor in group order,
 * its flat element in the level tensor (lvl[], el[]). Returns the group
 * count, -1 on failure; img_w[n] gets 1 / n_gt of image n (0: no GT). */
static int collect(const KdDistillInputs *in, const int *off, Group **groups, int **lvl, int **el, int *npos, float *img_w) {
  KdCtx *c = in->c;
  const KdDenseAssign *as = in->s.assign;
  const int N = in->n, A = as->A, K = as->K, At = as->A_total;
  int G = 0, P = 0;
  for (int n = 0; n < N; n++) {
    int ng = 0;
    for (int g = 0; g < in->gt[n].n; g++) ng += !(in->gt[n].crowd && in->gt[n].crowd[g]);
    img_w[n] = ng ? 1.0f / (float)ng : 0.0f;
    G += ng;
    for (int i = 0; i < At; i++) P += as->match_gt[(size_t)n * At + i] >= 0;
  }
  *groups = kd_ctx_alloc(c, (size_t)(G ? G : 1) * sizeof **groups);
  *lvl = kd_ctx_alloc(c, (size_t)(P ? P : 1) * sizeof **lvl);
  *el = kd_ctx_alloc(c, (size_t)(P ? P : 1) * sizeof **el);
  if (!*groups || !*lvl || !*el) return -1;
  int gi = 0, pi = 0;
  for (int n = 0; n < N; n++) {
    const int *mg = as->match_gt + (size_t)n * At;
    for (int g = 0; g < in->gt[n].n; g++) {
      if (in->gt[n].crowd && in->gt[n].crowd[g]) continue;
      Group *gr = &(*groups)[gi++];
      *gr = (Group){.n = n, .label = in->gt[n].labels[g], .start = pi};
      for (int l = 0; l < in->npairs; l++)
        for (int i = off[l]; i < off[l + 1]; i++) {
          if (mg[i] != g) continue;
          const KdTensor *s = kd_side_out(&in->s, "cls")[in->pairs[l].s];
          const int HW = s->shape[2] * s->shape[3], j = i - off[l], hw = j / A, a = j % A;
          (*lvl)[pi] = l;
          (*el)[pi] = ((n * A * K + a * K + gr->label) * HW) + hw;
          pi++;
        }
      gr->count = pi - gr->start;
    }
  }
  *npos = pi;
  return G;
}

/* The GT-class logits of every group's anchors on one side: a G x maxP
 * matrix, padded with RM_PAD (the pads gather element 0: no gradient). */
static KdTensor *group_logits(KdCtx *c, const KdDistillInputs *in, const KdDistillSide *side, int which_t, const Group *g,
                              int G, const int *lvl, const int *el, int npos, int maxp, KdTensor *pad) {
  KdTensor *parts[KD_DISTILL_MAX_LEVELS];
  int np = 0, *where = kd_ctx_alloc(c, (size_t)npos * sizeof *where), *idx = kd_ctx_alloc(c, (size_t)npos * sizeof *idx);
  if (!where || !idx) return NULL;
  int base = 0;
  for (int l = 0; l < in->npairs; l++) {
    int m = 0;
    for (int p = 0; p < npos; p++)
      if (lvl[p] == l) idx[m] = el[p], where[p] = base + m, m++;
    if (!m) continue;
    KdTensor *x = kd_side_out(side, "cls")[which_t ? in->pairs[l].t : in->pairs[l].s];
    parts[np++] = kd_gather(c, x, idx, m);
    base += m;
  }
  KdTensor *flat = np == 1 ? parts[0] : kd_concat(c, parts, np, 0);
  int *pidx = kd_ctx_alloc(c, (size_t)G * (size_t)maxp * sizeof *pidx);
  if (!pidx) return NULL;
  for (int r = 0; r < G; r++)
    for (int k = 0; k < maxp; k++) pidx[r * maxp + k] = k < g[r].count ? where[g[r].start + k] : 0;
  int shape[2] = {G, maxp};
  return kd_add(c, kd_reshape(c, kd_gather(c, flat, pidx, G * maxp), 2, shape), pad);
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const RmParams *p = inst->params;
  KdCtx *c = in->c;
  int off[KD_DISTILL_MAX_LEVELS + 1], one = 1;
  if (kd_distill_dense_levels(in, "rm", off)) return -1;
  if (!in->s.assign->match_gt) {
    kd_ctx_fail(c, "rm: the assignment has no matched-GT index per anchor (match_gt)");
    return -1;
  }
  if (!in->gt) {
    kd_ctx_fail(c, "rm: no ground-truth boxes given");
    return -1;
  }
  float *img_w = kd_ctx_alloc(c, (size_t)in->n * sizeof *img_w);
  Group *all;
  int *lvl, *el, npos;
  if (!img_w) return -1;
  int G = collect(in, off, &all, &lvl, &el, &npos, img_w);
  if (G < 0) return -1;
  int nimg = 0, maxp = 0, rows = 0;
  double pos_sum = 0.0;
  for (int n = 0; n < in->n; n++) nimg += img_w[n] > 0.0f;
  /* Rows only for GTs with anchors: one with none adds KL 0 but still
   * counts in its image's n_gt (img_w). */
  for (int r = 0; r < G; r++) {
    pos_sum += all[r].count;
    if (all[r].count > maxp) maxp = all[r].count;
    if (all[r].count) all[rows++] = all[r];
  }
  if (G) kd_distill_stat(out, "mean_pos", pos_sum / G);
  if (!rows) {
    kd_distill_part(out, "kl", kd_tensor_zeros(c, 1, &one));
    return kd_distill_finish(c, out);
  }
  int shape[2] = {rows, maxp}, wshape[2] = {rows, 1};
  KdTensor *pad = kd_tensor_new(c, 2, shape), *wt = kd_tensor_new(c, 2, wshape);
  if (!pad || !wt) return -1;
  for (int r = 0; r < rows; r++) {
    for (int k = 0; k < maxp; k++) pad->data[r * maxp + k] = k < all[r].count ? 0.0f : RM_PAD;
    wt->data[r] = img_w[all[r].n] / (float)nimg;
  }
  KdTensor *zs = group_logits(c, in, &in->s, 0, all, rows, lvl, el, npos, maxp, pad);
  KdTensor *zt = kd_detach(c, group_logits(c, in, &in->t, 1, all, rows, lvl, el, npos, maxp, pad));
  KdTensor *kl = kd_dist_kl_logits(c, zt, zs, 1, 1.0f);
  kd_distill_part(out, "kl", kd_scale(c, kd_sum_all(c, kd_mul(c, kl, wt)), p->weight));
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_rm = {
    .name = "rm",
    .label = "RM",
    .help = "Rank mimicking: per GT, KL between teacher and student softmax over its positive anchors of the GT-class "
            "logits (Li et al., AAAI 2022) as mmrazor's third-party port computes it, not the authors' code",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(RmParams),
    .loss = loss,
    .needs = KD_NEED_LOGITS | KD_NEED_ASSIGN | KD_NEED_GT,
};
