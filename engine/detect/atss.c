/* ATSS assignment and LD's VLR (atss.h). Distances, IoUs and the
 * threshold in double; the IoU compared with t_g is kd_box_iou1's, so a
 * candidate's IoU and the one recorded agree exactly. */
#include "detect/atss.h"

#include <math.h>
#include <stdlib.h>

#include "detect/assign.h"
#include "detect/boxes.h"

/* The k anchors of [lo, hi) nearest (cx, cy), by (distance, index). */
static int nearest(const float *anchors, int lo, int hi, double cx, double cy, int k, int *idx, double *dist) {
  int n = 0;
  for (int a = lo; a < hi; a++) {
    const float *b = anchors + 4 * (size_t)a;
    double dx = 0.5 * ((double)b[0] + b[2]) - cx, dy = 0.5 * ((double)b[1] + b[3]) - cy;
    double d = sqrt(dx * dx + dy * dy);
    if (n == k && !(d < dist[n - 1])) continue;
    int j = n < k ? n++ : n - 1; /* insertion into the sorted k best; equal distances keep index order */
    while (j > 0 && d < dist[j - 1]) {
      dist[j] = dist[j - 1], idx[j] = idx[j - 1];
      j--;
    }
    dist[j] = d, idx[j] = a;
  }
  return n;
}

int kd_atss_assign(const float *anchors, const int *level_off, int nlev, const float *gt, const int *crowd, int M,
                   int topk, int *match, float *iou, float *thr, KdError *err) {
  if (topk < 1 || topk > KD_ATSS_MAX_TOPK) return kd_error(err, "atss.topk: %d outside 1..%d", topk, KD_ATSS_MAX_TOPK);
  if (nlev < 1 || !level_off || M < 0) return kd_error(err, "atss: %d levels, %d boxes", nlev, M);
  const int A = level_off[nlev];
  float *best = malloc(((size_t)A + 1) * sizeof *best);
  int *cand = malloc((size_t)topk * nlev * sizeof *cand);
  double *dist = malloc((size_t)topk * sizeof *dist);
  if (!best || !cand || !dist) {
    free(best), free(cand), free(dist);
    return kd_error(err, "atss: out of memory for %d anchors", A);
  }
  for (int a = 0; a < A; a++) match[a] = KD_MATCH_NEG, best[a] = -1.0f;
  for (int g = 0; g < M; g++) {
    const float *b = gt + 4 * (size_t)g;
    if (thr) thr[g] = 0.0f;
    if (crowd && crowd[g]) continue;
    double cx = 0.5 * ((double)b[0] + b[2]), cy = 0.5 * ((double)b[1] + b[3]);
    int nc = 0;
    for (int l = 0; l < nlev; l++)
      nc += nearest(anchors, level_off[l], level_off[l + 1], cx, cy, topk, cand + nc, dist);
    if (nc == 0) continue;
    double sum = 0.0, sq = 0.0;
    for (int i = 0; i < nc; i++) sum += kd_box_iou1(anchors + 4 * (size_t)cand[i], b);
    double mean = sum / nc;
    for (int i = 0; i < nc; i++) {
      double d = kd_box_iou1(anchors + 4 * (size_t)cand[i], b) - mean;
      sq += d * d;
    }
    /* torch.std is unbiased; one candidate gives NaN there and nothing passes. */
    double t = nc > 1 ? mean + sqrt(sq / (nc - 1)) : INFINITY;
    if (thr) thr[g] = (float)t;
    for (int i = 0; i < nc; i++) {
      const float *an = anchors + 4 * (size_t)cand[i];
      float v = kd_box_iou1(an, b);
      double ax = 0.5 * ((double)an[0] + an[2]), ay = 0.5 * ((double)an[1] + an[3]);
      double inside = fmin(fmin(ax - b[0], ay - b[1]), fmin(b[2] - ax, b[3] - ay));
      if (!(v >= t) || !(inside > 0.01)) continue;
      if (v > best[cand[i]]) best[cand[i]] = v, match[cand[i]] = g;
    }
  }
  int npos = 0;
  for (int a = 0; a < A; a++) {
    npos += match[a] >= 0;
    if (iou) iou[a] = match[a] >= 0 ? best[a] : 0.0f;
  }
  free(best), free(cand), free(dist);
  return npos;
}

int kd_atss_targets(const float *anchors, const int *level_off, int nlev, const KdGtImage *gt, int n, int K, int topk,
                    int *match, int *target_cls, float *target_boxes, int *samples, KdError *err) {
  const int A = level_off[nlev];
  int npos = 0;
  *samples = 0;
  for (int i = 0; i < n; i++) {
    int *m = match + (size_t)i * A;
    int p = kd_atss_assign(anchors, level_off, nlev, gt[i].boxes, gt[i].crowd, gt[i].n, topk, m, NULL, NULL, err);
    if (p < 0) return kd_error_prefix(err, "image %d: ", i);
    npos += p, *samples += p > 0 ? p : 1;
    for (int a = 0; a < A; a++) {
      size_t f = (size_t)i * A + a;
      int g = m[a], lab = g >= 0 ? gt[i].labels[g] : KD_MATCH_NEG;
      if (g >= 0 && (lab < 0 || lab >= K)) return kd_error(err, "image %d, box %d: label %d outside 0..%d", i, g, lab, K - 1);
      target_cls[f] = lab;
      for (int j = 0; j < 4; j++) target_boxes[4 * f + j] = g >= 0 ? gt[i].boxes[4 * g + j] : 0.0f;
    }
  }
  return npos;
}

double kd_ld_overlap(const float *a, const float *g) {
  double aa = ((double)a[2] - a[0]) * ((double)a[3] - a[1]);
  double iw = fmin(a[2], g[2]) - fmax(a[0], g[0]), ih = fmin(a[3], g[3]) - fmax(a[1], g[1]);
  double inter = iw > 0 && ih > 0 ? iw * ih : 0.0;
  double ew = fmax(a[2], g[2]) - fmin(a[0], g[0]), eh = fmax(a[3], g[3]) - fmin(a[1], g[1]);
  double dx = 0.5 * (((double)a[0] + a[2]) - ((double)g[0] + g[2]));
  double dy = 0.5 * (((double)a[1] + a[3]) - ((double)g[1] + g[3]));
  const double eps = 1e-6; /* mmdet's bbox_overlaps eps: the area and the diagonal are clamped to it */
  return inter / fmax(aa, eps) - (dx * dx + dy * dy) / fmax(ew * ew + eh * eh, eps);
}

int kd_ld_vlr(const float *anchors, int A, const float *gt, const int *crowd, const float *thr, int M, float vlr_lo,
              float *vlr) {
  int n = 0;
  for (int a = 0; a < A; a++) {
    const float *an = anchors + 4 * (size_t)a;
    float w = 0.0f;
    int hit = 0;
    for (int g = 0; g < M; g++) {
      if ((crowd && crowd[g]) || !(thr[g] > 0.0f) || !isfinite(thr[g])) continue;
      double o = kd_ld_overlap(an, gt + 4 * (size_t)g);
      if (!(o >= (double)vlr_lo * thr[g] && o < thr[g])) continue;
      float v = kd_box_iou1(an, gt + 4 * (size_t)g);
      if (!hit || v > w) w = v;
      hit = 1;
    }
    vlr[a] = hit ? w : 0.0f;
    n += hit;
  }
  return n;
}
