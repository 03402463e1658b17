/* Per-pixel gaps under PKD's and CWD's own normalisations on plain arrays,
 * for the probe. No tape and no probe state: the methods call them. */
#include "distill/gapmaps.h"

#include <math.h>
#include <stdlib.h>

void kd_map_channel_stats(const float *x, int N, int C, int HW, float eps, float *mean, float *inv_std) {
  double m = (double)N * HW;
  for (int c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int n = 0; n < N; n++) {
      const float *v = x + ((size_t)n * C + c) * HW;
      for (int p = 0; p < HW; p++) s += v[p];
    }
    double mu = s / m;
    for (int n = 0; n < N; n++) {
      const float *v = x + ((size_t)n * C + c) * HW;
      for (int p = 0; p < HW; p++) q += (v[p] - mu) * (v[p] - mu);
    }
    double sd = m > 1 ? sqrt(q / (m - 1)) : 0;
    mean[c] = (float)mu;
    inv_std[c] = (float)(1.0 / (sd + eps));
  }
}

void kd_map_gap_standardised(const float *s, const float *t, int C, int HW, const float *ms, const float *is,
                             const float *mt, const float *it, float *out) {
  for (int p = 0; p < HW; p++) {
    double a = 0;
    for (int c = 0; c < C; c++) {
      double d = ((double)s[(size_t)c * HW + p] - ms[c]) * is[c] - ((double)t[(size_t)c * HW + p] - mt[c]) * it[c];
      a += d * d;
    }
    out[p] = (float)(a / C);
  }
}

/* log-softmax of one channel's HW values of x / tau into ls. */
static void log_softmax(const float *x, int HW, float tau, double *ls) {
  double mx = -INFINITY, z = 0;
  for (int p = 0; p < HW; p++) mx = x[p] / tau > mx ? x[p] / tau : mx;
  for (int p = 0; p < HW; p++) z += exp(x[p] / tau - mx);
  double lz = mx + log(z);
  for (int p = 0; p < HW; p++) ls[p] = x[p] / tau - lz;
}

void kd_map_gap_cwd(const float *s, const float *t, int C, int HW, float tau, float *out) {
  double *lt = malloc(sizeof *lt * 2 * (size_t)HW), *acc = calloc((size_t)HW, sizeof *acc);
  if (!lt || !acc) {
    free(lt), free(acc);
    return;
  }
  double *lp = lt + HW;
  for (int c = 0; c < C; c++) {
    log_softmax(t + (size_t)c * HW, HW, tau, lt);
    log_softmax(s + (size_t)c * HW, HW, tau, lp);
    for (int p = 0; p < HW; p++) acc[p] += exp(lt[p]) * (lt[p] - lp[p]);
  }
  for (int p = 0; p < HW; p++) out[p] = (float)(acc[p] * tau * tau / C);
  free(lt), free(acc);
}
