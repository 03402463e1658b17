/* Greedy non-maximum suppression, torchvision's rule: visit boxes by
 * decreasing score and drop every later box (of the same label, for the
 * class-wise form) whose IoU with a kept one is > iou_thr. Ties in score
 * are broken by the lower index first, so results are deterministic. */
#ifndef KD_DET_NMS_H
#define KD_DET_NMS_H

#include "core/error.h"

/* boxes [n,4], scores [n], labels [n] or NULL (one class). Writes the kept
 * indices into keep (capacity max_keep; max_keep < 0 means n), ordered by
 * (score desc, index asc). Returns how many, or -1 with err. */
int kd_nms(const float *boxes, const float *scores, const int *labels, int n, float iou_thr, int max_keep, int *keep,
           KdError *err);

/* order[0..n) = indices sorted by (score desc, index asc). */
void kd_sort_by_score(const float *scores, int n, int *order);

#endif
