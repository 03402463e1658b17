/* Class-wise greedy NMS (see nms.h). Boxes are visited once in global
 * score order; each kept box suppresses later boxes of its label only, so a
 * label's boxes are compared among themselves as in torchvision's
 * batched_nms. O(n * kept) IoUs. */
#include "detect/nms.h"

#include <stdlib.h>

#include "detect/boxes.h"

/* Stable merge sort of indices by score desc; stability gives index asc. */
static void merge_sort(const float *s, int *a, int *tmp, int n) {
  if (n < 2) return;
  int h = n / 2;
  merge_sort(s, a, tmp, h);
  merge_sort(s, a + h, tmp, n - h);
  int i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = s[a[j]] > s[a[i]] ? a[j++] : a[i++];
  while (i < h) tmp[k++] = a[i++];
  while (j < n) tmp[k++] = a[j++];
  for (k = 0; k < n; k++) a[k] = tmp[k];
}

void kd_sort_by_score(const float *scores, int n, int *order) {
  for (int i = 0; i < n; i++) order[i] = i;
  int stack_tmp[512];
  int *tmp = n <= 512 ? stack_tmp : malloc((size_t)n * sizeof *tmp);
  if (!tmp) { /* out of memory: insertion sort, still correct */
    for (int i = 1; i < n; i++) {
      int v = order[i], j = i - 1;
      while (j >= 0 && scores[order[j]] < scores[v]) order[j + 1] = order[j], j--;
      order[j + 1] = v;
    }
    return;
  }
  merge_sort(scores, order, tmp, n);
  if (tmp != stack_tmp) free(tmp);
}

int kd_nms(const float *boxes, const float *scores, const int *labels, int n, float iou_thr, int max_keep, int *keep,
           KdError *err) {
  if (n < 0) return kd_error(err, "nms: %d boxes", n);
  if (max_keep < 0 || max_keep > n) max_keep = n;
  if (n == 0 || max_keep == 0) return 0;
  int *order = malloc((size_t)n * sizeof *order);
  if (!order) return kd_error(err, "nms: out of memory for %d boxes", n);
  kd_sort_by_score(scores, n, order);
  int nk = 0;
  for (int i = 0; i < n && nk < max_keep; i++) {
    int b = order[i];
    const float *bb = boxes + 4 * (size_t)b;
    int dropped = 0;
    /* Compare with the kept boxes (same as suppressing forward, and keeps
     * the work proportional to what survives). */
    for (int k = 0; k < nk && !dropped; k++) {
      int o = keep[k];
      if (labels && labels[o] != labels[b]) continue;
      dropped = kd_box_iou1(boxes + 4 * (size_t)o, bb) > iou_thr;
    }
    if (!dropped) keep[nk++] = b;
  }
  free(order);
  return nk;
}
