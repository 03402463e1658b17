/* The anchor cache and batch targets of an anchor-based head (assigner.h).
 * It holds no head layers and no loss: only anchors and assignment. */
#include "detect/assigner.h"

#include <stdlib.h>
#include <string.h>

struct KdAssigner {
  KdAnchorCfg acfg;
  KdAssignCfg assign;
  KdBoxCoder coder;
  int hw[2 * KD_ANCHOR_MAX_LEVELS], total;
  float *anchors;
};

KdAssigner *kd_assigner_new(const KdAnchorCfg *anchors, const KdAssignCfg *assign, KdError *err) {
  if (kd_anchor_cfg_check(anchors, err) || kd_assign_cfg_check(assign, err)) return NULL;
  KdAssigner *a = calloc(1, sizeof *a);
  if (!a) return kd_error(err, "out of memory"), NULL;
  a->acfg = *anchors;
  a->assign = *assign;
  a->coder = kd_box_coder_default();
  return a;
}

void kd_assigner_free(KdAssigner *a) {
  if (!a) return;
  free(a->anchors);
  free(a);
}

const KdAnchorCfg *kd_assigner_anchor_cfg(const KdAssigner *a) { return &a->acfg; }
const KdBoxCoder *kd_assigner_coder(const KdAssigner *a) { return &a->coder; }

const float *kd_assigner_anchors(KdAssigner *a, const int *hw, int *total, KdError *err) {
  size_t bytes = sizeof(int) * 2 * (size_t)a->acfg.nlevels;
  if (!a->anchors || memcmp(hw, a->hw, bytes)) {
    int n = kd_anchors_total(&a->acfg, hw);
    float *an = malloc((size_t)n * 4 * sizeof *an);
    if (!an) return kd_error(err, "out of memory for %d anchors", n), NULL;
    if (kd_anchors_generate(&a->acfg, hw, an, NULL, err)) {
      free(an);
      return NULL;
    }
    free(a->anchors);
    a->anchors = an;
    a->total = n;
    memcpy(a->hw, hw, bytes);
  }
  *total = a->total;
  return a->anchors;
}

int kd_assigner_targets(KdAssigner *a, KdCtx *c, const int *hw, const KdGtImage *gt, int n, int K, KdDenseAssign *out,
                        KdError *err) {
  memset(out, 0, sizeof *out);
  const float *anchors = kd_assigner_anchors(a, hw, &out->A_total, err);
  if (!anchors) return -1;
  size_t na = (size_t)n * (size_t)out->A_total;
  int *cls = kd_ctx_alloc(c, na * sizeof *cls), *match = kd_ctx_alloc(c, na * sizeof *match);
  float *deltas = kd_ctx_alloc(c, na * 4 * sizeof *deltas), *boxes = kd_ctx_alloc(c, na * 4 * sizeof *boxes);
  if (!cls || !match || !deltas || !boxes) return kd_error(err, "out of memory for the training targets");
  if (kd_build_targets(&a->assign, &a->coder, anchors, out->A_total, gt, n, K, cls, deltas, boxes, match, &out->num_pos, err))
    return -1;
  out->A = kd_anchors_per_loc(&a->acfg);
  out->K = K;
  out->anchors = anchors;
  out->target_cls = cls, out->target_deltas = deltas, out->target_boxes = boxes, out->match_gt = match;
  return 0;
}
