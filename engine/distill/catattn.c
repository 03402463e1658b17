/* CSGR's category semantic attention of one class on one image's
 * standardised feature [INFERRED, docs/METHODS-CSGR.md]: shared by the
 * loss (csgr.c) and the window's attention panel, which recomputes it per
 * class from a snapshot's stored features. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distill/masks.h"

int kd_class_cells(const KdGtImage *im, int k, int h, int w, int stride, unsigned char *in) {
  memset(in, 0, (size_t)h * w);
  for (int j = 0; im && j < im->n; j++) {
    if (im->labels[j] != k || (im->crowd && im->crowd[j])) continue;
    const float *b = im->boxes + 4 * j, s = (float)stride;
    int any = 0;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const float cx = ((float)x + 0.5f) * s, cy = ((float)y + 0.5f) * s;
        if (cx >= b[0] && cx < b[2] && cy >= b[1] && cy < b[3]) in[y * w + x] = 1, any = 1;
      }
    if (!any) {
      int x = (int)floorf((b[0] + b[2]) * 0.5f / s), y = (int)floorf((b[1] + b[3]) * 0.5f / s);
      x = x < 0 ? 0 : x >= w ? w - 1 : x;
      y = y < 0 ? 0 : y >= h ? h - 1 : y;
      in[y * w + x] = 1;
    }
  }
  int n = 0;
  for (int i = 0; i < h * w; i++) n += in[i];
  return n;
}

int kd_category_attn(const float *x, int C, int H, int W, const KdGtImage *im, int k, int stride, float tau,
                     double *a) {
  const int HW = H * W;
  double *e = malloc(((size_t)C + (size_t)HW) * sizeof *e);
  unsigned char *in = malloc((size_t)HW);
  if (!e || !in) {
    free(e), free(in);
    return -1;
  }
  double *norm = e + C, en = 0.0, mx = -INFINITY, sum = 0.0;
  const int cnt = kd_class_cells(im, k, H, W, stride, in);
  int rc = cnt ? 0 : -1;
  for (int ch = 0; rc == 0 && ch < C; ch++) {
    double s = 0.0;
    for (int p = 0; p < HW; p++) s += in[p] ? x[(size_t)ch * HW + p] : 0.0;
    e[ch] = s / cnt;
    en += e[ch] * e[ch];
  }
  en = sqrt(en);
  if (rc == 0 && en <= KD_CATATTN_FLAT * sqrt((double)C)) rc = 1;
  if (rc == 0) {
    for (int p = 0; p < HW; p++) {
      double s = 0.0, d = 0.0;
      for (int ch = 0; ch < C; ch++) {
        const double v = x[(size_t)ch * HW + p];
        s += v * v, d += e[ch] * v;
      }
      norm[p] = sqrt(s);
      a[p] = d / fmax(norm[p] * en, 1e-12) / tau;
      mx = fmax(mx, a[p]);
    }
    for (int p = 0; p < HW; p++) sum += a[p] = exp(a[p] - mx);
    for (int p = 0; p < HW; p++) a[p] /= sum;
  } else if (rc == 1) {
    for (int p = 0; p < HW; p++) a[p] = 1.0 / HW;
  }
  free(e), free(in);
  return rc;
}
