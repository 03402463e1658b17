/* Batch targets (see targets.h). */
#include "detect/targets.h"

#include <math.h>
#include <string.h>

int kd_build_targets(const KdAssignCfg *acfg, const KdBoxCoder *bc, const float *anchors, int A_total,
                     const KdGtImage *gt, int N, int num_classes, int *target_cls, float *target_deltas,
                     float *target_boxes, int *matched_gt, int *num_pos, KdError *err) {
  if (kd_assign_cfg_check(acfg, err)) return -1;
  if (N < 1 || A_total < 1) return kd_error(err, "targets: %d images and %d anchors", N, A_total);
  for (int n = 0; n < N; n++) {
    if (gt[n].n < 0 || (gt[n].n > 0 && (!gt[n].boxes || !gt[n].labels)))
      return kd_error(err, "targets: image %d: %d boxes without box/label arrays", n, gt[n].n);
    for (int g = 0; g < gt[n].n; g++) {
      const float *b = gt[n].boxes + 4 * g;
      for (int j = 0; j < 4; j++)
        if (!isfinite(b[j])) return kd_error(err, "targets: image %d box %d: coordinate %d is not finite", n, g, j);
      if (gt[n].crowd && gt[n].crowd[g]) continue;
      if (gt[n].labels[g] < 0 || gt[n].labels[g] >= num_classes)
        return kd_error(err, "targets: image %d box %d: label %d outside 0..%d", n, g, gt[n].labels[g], num_classes - 1);
    }
  }
  int total = 0, failed = 0;
  KdError first = {{0}};
#pragma omp parallel for schedule(dynamic) reduction(+ : total) if (N > 1)
  for (int n = 0; n < N; n++) {
    size_t base = (size_t)n * A_total;
    int *match = matched_gt ? matched_gt + base : target_cls + base;
    KdError e;
    int np = kd_assign(acfg, anchors, A_total, gt[n].boxes, gt[n].crowd, gt[n].n, match, &e);
    if (np < 0) {
#pragma omp critical(kd_targets_err)
      if (!failed++) first = e;
      continue;
    }
    total += np;
    for (int a = 0; a < A_total; a++) {
      int m = match[a];
      float *d = target_deltas + 4 * (base + a);
      float *tb = target_boxes ? target_boxes + 4 * (base + a) : NULL;
      if (m < 0) {
        target_cls[base + a] = m;
        memset(d, 0, 4 * sizeof *d);
        if (tb) memset(tb, 0, 4 * sizeof *tb);
        continue;
      }
      const float *box = gt[n].boxes + 4 * m;
      target_cls[base + a] = gt[n].labels[m];
      kd_box_encode(bc, anchors + 4 * (size_t)a, box, d);
      if (tb) memcpy(tb, box, 4 * sizeof *tb);
    }
  }
  if (failed) {
    if (err) *err = first;
    return -1;
  }
  *num_pos = total;
  return 0;
}
