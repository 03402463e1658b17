/* Sine position embeddings: DETR's 2-D one for feature maps (the keys of
 * ICD's decoder) and the 1-D one ICD's instance encoder uses for box
 * centres. Computed in double and rounded once, so the values do not depend
 * on the order of operations. */
#include "core/posembed.h"

#include <math.h>
#include <stddef.h>

static double dim_t(int i, int n, float temperature) { return pow((double)temperature, 2.0 * (double)(i / 2) / n); }

void kd_pos_sine_2d(float *out, int H, int W, int hv, int wv, int npf, float temperature) {
  const double two_pi = 2.0 * M_PI;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      float *o = out + ((size_t)y * W + x) * 2 * npf;
      const double ye = (double)(y + 1 < hv ? y + 1 : hv) / ((double)hv + 1e-6) * two_pi,
                   xe = (double)(x + 1 < wv ? x + 1 : wv) / ((double)wv + 1e-6) * two_pi;
      for (int i = 0; i < npf; i++) {
        const double t = dim_t(i, npf, temperature);
        o[i] = (float)(i % 2 ? cos(ye / t) : sin(ye / t));
        o[npf + i] = (float)(i % 2 ? cos(xe / t) : sin(xe / t));
      }
    }
}

void kd_pos_sine_1d(float *out, float x, int nf, float temperature) {
  const int half = nf / 2;
  for (int m = 0; m < half; m++) {
    const double t = dim_t(2 * m, nf, temperature), a = 2.0 * M_PI * (double)x / t;
    out[m] = (float)sin(a);
    out[half + m] = (float)cos(a);
  }
}
