/* Box geometry (see boxes.h). */
#include "detect/boxes.h"

#include <stddef.h>

__attribute__((noinline)) float kd_box_iou1(const float *a, const float *b) {
  float inter = kd_box_inter(a, b);
  if (inter <= 0.0f) return 0.0f;
  float uni = kd_box_area(a) + kd_box_area(b) - inter;
  return uni > 0.0f ? inter / uni : 0.0f;
}

void kd_box_iou(const float *a, int na, const float *b, int nb, float *out) {
  for (int i = 0; i < na; i++)
    for (int j = 0; j < nb; j++) out[(size_t)i * nb + j] = kd_box_iou1(a + 4 * (size_t)i, b + 4 * (size_t)j);
}

void kd_box_clip(float *b, float w, float h) {
  for (int j = 0; j < 4; j++) {
    float lim = (j & 1) ? h : w;
    b[j] = b[j] < 0.0f ? 0.0f : (b[j] > lim ? lim : b[j]);
  }
}
