/* Box geometry shared by assignment, NMS, post-processing and losses.
 * Boxes are (x1, y1, x2, y2) floats in network-input pixels; a box with
 * x2 <= x1 or y2 <= y1 has zero area and overlaps nothing. Areas have no
 * "+1" (torchvision's convention, not the old Detectron one). */
#ifndef KD_DET_BOXES_H
#define KD_DET_BOXES_H

static inline float kd_box_area(const float *b) {
  float w = b[2] - b[0], h = b[3] - b[1];
  return (w > 0.0f && h > 0.0f) ? w * h : 0.0f;
}

static inline float kd_box_inter(const float *a, const float *b) {
  float w = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
  float h = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
  return (w > 0.0f && h > 0.0f) ? w * h : 0.0f;
}

/* IoU of two boxes; 0 when the union is empty. Not inlined on purpose:
 * assignment computes the same IoU twice and compares for equality, so both
 * passes must run this exact code (no different FMA contraction). */
float kd_box_iou1(const float *a, const float *b);

/* out[i*nb + j] = IoU(a[i], b[j]); a: [na,4], b: [nb,4]. */
void kd_box_iou(const float *a, int na, const float *b, int nb, float *out);

/* Clamps x to [0, w] and y to [0, h] (torchvision's clip_boxes_to_image). */
void kd_box_clip(float *b, float w, float h);

#endif
