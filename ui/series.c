/* Smoothing and min/max thinning of plot series (see series.h). */
#include "series.h"

#include <math.h>
#include <string.h>

void kd_series_ema(const double *y, size_t n, double weight, double *out) {
  if (n == 0) return;
  if (!(weight >= 0)) weight = 0;
  if (weight > 0.999999) weight = 0.999999; /* w = 1 would freeze at 0 */
  int constant = 1;
  for (size_t i = 1; i < n && constant; i++) constant = (y[i] == y[0]);
  double last = 0, wpow = 1; /* wpow = w^(number of finite samples so far) */
  for (size_t i = 0; i < n; i++) {
    double v = y[i];
    if (constant || !isfinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    wpow *= weight;
    out[i] = last / (1 - wpow);
  }
}

void kd_series_moving_average(const double *y, size_t n, int window, double *out) {
  if (window < 1) window = 1;
  /* Running sums would drift over long series; the window is small, so sum
   * it afresh (O(n * window)) and stay exact. */
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(y[i])) {
      out[i] = y[i];
      continue;
    }
    double s = 0;
    int cnt = 0;
    size_t j0 = i + 1 >= (size_t)window ? i + 1 - (size_t)window : 0;
    for (size_t j = j0; j <= i; j++)
      if (isfinite(y[j])) {
        s += y[j];
        cnt++;
      }
    out[i] = s / cnt;
  }
}

void kd_series_smooth(const KdSmooth *s, const double *y, size_t n, double *out) {
  if (!s || s->kind == KD_SMOOTH_NONE) {
    if (n) memcpy(out, y, n * sizeof *out);
  } else if (s->kind == KD_SMOOTH_EMA) {
    kd_series_ema(y, n, s->weight, out);
  } else {
    kd_series_moving_average(y, n, s->window, out);
  }
}

size_t kd_series_segments(const double *x, size_t n, const double *breaks, int nbreaks,
                          size_t *starts) {
  size_t m = 0;
  for (int k = 0; k < nbreaks; k++) {
    if (!isfinite(breaks[k])) continue;
    /* first sample with x > b (x ascending) */
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (x[mid] > breaks[k]) hi = mid;
      else lo = mid + 1;
    }
    if (lo == 0 || lo >= n) continue; /* no sample before or after it */
    /* insert in order, once */
    size_t at = m;
    while (at > 0 && starts[at - 1] > lo) at--;
    if (at > 0 && starts[at - 1] == lo) continue;
    memmove(starts + at + 1, starts + at, (m - at) * sizeof *starts);
    starts[at] = lo;
    m++;
  }
  return m;
}

void kd_series_smooth_segments(const KdSmooth *s, const double *y, size_t n, const size_t *starts,
                               size_t nstarts, double *out) {
  size_t a = 0;
  for (size_t k = 0; k <= nstarts; k++) {
    size_t b = k < nstarts ? starts[k] : n;
    if (b > n) b = n;
    if (b > a) kd_series_smooth(s, y + a, b - a, out + a);
    if (b > a) a = b;
  }
}

/* Appends the kept samples of run [a, b) to idx in index order. */
static size_t flush_run(const double *y, size_t a, size_t b, size_t *idx) {
  size_t lo = a, hi = a;
  for (size_t i = a + 1; i < b; i++) {
    if (y[i] < y[lo]) lo = i;
    if (y[i] > y[hi]) hi = i;
  }
  size_t pick[4] = {a, lo < hi ? lo : hi, lo < hi ? hi : lo, b - 1};
  size_t m = 0;
  for (int k = 0; k < 4; k++)
    if (m == 0 || pick[k] != idx[m - 1]) idx[m++] = pick[k];
  return m;
}

size_t kd_series_thin_minmax(const double *px, const double *y, size_t n, double bucket,
                             size_t *idx) {
  if (!(bucket > 0)) bucket = 1;
  size_t m = 0, a = 0;
  while (a < n) {
    if (!isfinite(y[a]) || !isfinite(px[a])) { /* a break in the line */
      idx[m++] = a++;
      continue;
    }
    double col = floor(px[a] / bucket);
    size_t b = a + 1;
    while (b < n && isfinite(y[b]) && isfinite(px[b]) && floor(px[b] / bucket) == col) b++;
    m += flush_run(y, a, b, idx + m);
    a = b;
  }
  return m;
}
