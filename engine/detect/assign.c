/* RetinaNet assignment (see assign.h). */
#include "detect/assign.h"

#include <stdlib.h>

#include "detect/boxes.h"

void kd_assign_cfg_default(KdAssignCfg *cfg) {
  *cfg = (KdAssignCfg){.pos_iou = 0.5f, .neg_iou = 0.4f, .low_quality = 1, .crowd_ioa = 0.5f};
}

int kd_assign_cfg_check(const KdAssignCfg *cfg, KdError *err) {
  if (!(cfg->pos_iou > 0.0f && cfg->pos_iou <= 1.0f))
    return kd_error(err, "assign.pos_iou: %g, expected a number in (0, 1]", cfg->pos_iou);
  if (!(cfg->neg_iou >= 0.0f && cfg->neg_iou <= cfg->pos_iou))
    return kd_error(err, "assign.neg_iou: %g, expected a number in [0, pos_iou=%g]", cfg->neg_iou, cfg->pos_iou);
  if (!(cfg->crowd_ioa > 0.0f))
    return kd_error(err, "assign.crowd_ioa: %g, expected a positive number", cfg->crowd_ioa);
  return 0;
}

int kd_assign(const KdAssignCfg *cfg, const float *anchors, int A, const float *gt, const int *crowd, int M,
              int *match, KdError *err) {
  if (kd_assign_cfg_check(cfg, err)) return -1;
  if (A < 0 || M < 0) return kd_error(err, "assign: %d anchors and %d boxes", A, M);
  float stack_best[256];
  float *gt_best = M <= 256 ? stack_best : malloc((size_t)M * sizeof *gt_best);
  if (!gt_best) return kd_error(err, "assign: out of memory for %d boxes", M);
  for (int g = 0; g < M; g++) gt_best[g] = 0.0f;
  int ncrowd = 0;
  for (int g = 0; g < M; g++) ncrowd += crowd && crowd[g];

  /* Pass 1: each anchor's best GT, and each GT's best IoU. */
  for (int a = 0; a < A; a++) {
    const float *ab = anchors + 4 * (size_t)a;
    float best = 0.0f;
    int arg = -1;
    for (int g = 0; g < M; g++) {
      if (crowd && crowd[g]) continue;
      float iou = kd_box_iou1(ab, gt + 4 * (size_t)g);
      if (arg < 0 || iou > best) {
        best = iou;
        arg = g;
      }
      if (iou > gt_best[g]) gt_best[g] = iou;
    }
    if (arg >= 0 && best >= cfg->pos_iou) match[a] = arg;
    else if (arg < 0 || best < cfg->neg_iou) match[a] = KD_MATCH_NEG;
    else match[a] = KD_MATCH_IGNORE;
  }

  /* Pass 2: low-quality matches. Same IoU function, so equality is exact. */
  if (cfg->low_quality && M > ncrowd) {
    for (int a = 0; a < A; a++) {
      if (match[a] >= 0) continue;
      const float *ab = anchors + 4 * (size_t)a;
      float best = 0.0f;
      int arg = -1, tied = 0;
      for (int g = 0; g < M; g++) {
        if (crowd && crowd[g]) continue;
        float iou = kd_box_iou1(ab, gt + 4 * (size_t)g);
        if (arg < 0 || iou > best) {
          best = iou;
          arg = g;
        }
        if (gt_best[g] > 0.0f && iou == gt_best[g]) tied = 1;
      }
      if (tied) match[a] = arg;
    }
  }

  /* Pass 3: negatives inside crowd regions are ignored. */
  if (ncrowd) {
    for (int a = 0; a < A; a++) {
      if (match[a] != KD_MATCH_NEG) continue;
      const float *ab = anchors + 4 * (size_t)a;
      float area = kd_box_area(ab);
      if (area <= 0.0f) continue;
      for (int g = 0; g < M; g++) {
        if (!crowd[g]) continue;
        if (kd_box_inter(ab, gt + 4 * (size_t)g) >= cfg->crowd_ioa * area) {
          match[a] = KD_MATCH_IGNORE;
          break;
        }
      }
    }
  }

  int npos = 0;
  for (int a = 0; a < A; a++) npos += match[a] >= 0;
  if (gt_best != stack_best) free(gt_best);
  return npos;
}
