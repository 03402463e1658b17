/* The RoI head's detections (see roi_head.h): torchvision's
 * postprocess_detections. Scratch is malloc'd per image: this runs at
 * evaluation, not inside a training step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect/boxes.h"
#include "detect/nms.h"
#include "model/roi_head_impl.h"

/* Softmax of one RoI's K+1 logits, float as torch's. */
static void softmax_row(const float *x, int K1, float *p) {
  float m = x[0], sum = 0.0f;
  for (int k = 1; k < K1; k++) m = x[k] > m ? x[k] : m;
  for (int k = 0; k < K1; k++) sum += p[k] = expf(x[k] - m);
  for (int k = 0; k < K1; k++) p[k] /= sum;
}

/* Candidates of image img over its RoIs (in RoI order, classes 1..K),
 * then NMS; returns the number written to out, or -1 (out of memory). */
static int decode_image(const KdRoiHead *h, const float *cls, const float *box, const float *rois, int nrois, int img,
                        int nimg_rois, const float *wh, KdDetection *out) {
  const int K = h->cfg.num_classes, K1 = K + 1;
  const size_t cap = (size_t)nimg_rois * K + 1;
  float *boxes = malloc(cap * 4 * sizeof *boxes), *scores = malloc(cap * sizeof *scores), *p = malloc(K1 * sizeof *p);
  int *labels = malloc(cap * sizeof *labels), *keep = malloc(cap * sizeof *keep);
  int m = 0, kept = -1;
  if (!boxes || !scores || !p || !labels || !keep) goto done;
  for (int r = 0; r < nrois; r++) {
    const float *q = rois + 5 * (size_t)r;
    if ((int)q[0] != img) continue;
    softmax_row(cls + (size_t)r * K1, K1, p);
    for (int k = 1; k < K1; k++) {
      if (!(p[k] > h->cfg.score_thresh)) continue;
      float *b = boxes + 4 * (size_t)m;
      kd_box_decode(&h->bc, q + 1, box + ((size_t)r * K1 + k) * 4, b);
      if (wh) kd_box_clip(b, wh[0], wh[1]);
      if (!(b[2] - b[0] >= 1e-2f && b[3] - b[1] >= 1e-2f)) continue; /* remove_small_boxes */
      scores[m] = p[k];
      labels[m++] = k - 1;
    }
  }
  kept = kd_nms(boxes, scores, labels, m, h->cfg.nms_thresh, h->cfg.detections_per_img, keep, NULL);
  for (int i = 0; i < kept; i++) {
    const float *b = boxes + 4 * (size_t)keep[i];
    out[i] = (KdDetection){b[0], b[1], b[2], b[3], scores[keep[i]], labels[keep[i]]};
  }
done:
  free(boxes), free(scores), free(p), free(labels), free(keep);
  return kept;
}

int kd_roi_head_decode(KdRoiHead *h, const float *cls, const float *box, const float *rois, int nrois, int n,
                       const float *image_wh, KdDetection *out, int *count, KdError *err) {
  if (n < 1 || nrois < 0 || (nrois > 0 && (!cls || !box || !rois)))
    return kd_error(err, "roi decode: %d RoIs for %d images", nrois, n);
  int *per = calloc((size_t)n, sizeof *per);
  if (!per) return kd_error(err, "roi decode: out of memory");
  for (int r = 0; r < nrois; r++) {
    const float v = rois[5 * (size_t)r];
    if (!(v >= 0.0f && v < (float)n && v == floorf(v))) {
      free(per);
      return kd_error(err, "roi decode: RoI %d names image %g, expected an integer in 0..%d", r, v, n - 1);
    }
    per[(int)v]++;
  }
  const int D = h->cfg.detections_per_img;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    count[i] = decode_image(h, cls, box, rois, nrois, i, per[i], image_wh ? image_wh + 2 * i : NULL, out + (size_t)i * D);
    if (count[i] < 0) rc = kd_error(err, "roi decode: out of memory for image %d's %d RoIs", i, per[i]);
  }
  free(per);
  return rc;
}
