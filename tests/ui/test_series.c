/* Unit tests of the figure helpers: TensorBoard's debiased EMA against its
 * direct formula, the moving average, min/max thinning (a one-sample spike
 * survives at any width), linear and log tick generation, tick labels and
 * the colormap tables. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "colormap.h"
#include "figure.h"
#include "series.h"

static void test_ema(void) {
  enum { N = 200 };
  double y[N], out[N];
  unsigned s = 12345;
  for (int i = 0; i < N; i++) {
    s = s * 1103515245u + 12345u;
    y[i] = 2.0 * exp(-i / 60.0) + ((s >> 16) & 1023) / 1024.0 * 0.3;
  }
  const double ws[] = {0, 0.3, 0.6, 0.9, 0.99};
  for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++) {
    double w = ws[k];
    kd_series_ema(y, N, w, out);
    double maxerr = 0;
    for (int i = 0; i < N; i++) { /* the direct formula */
      double num = 0;
      for (int j = 0; j <= i; j++) num += pow(w, i - j) * (1 - w) * y[j];
      double direct = num / (1 - pow(w, i + 1));
      maxerr = fmax(maxerr, fabs(out[i] - direct));
    }
    CHECK_MSG(maxerr < 1e-12, "w=%g maxerr=%g", w, maxerr);
  }
  /* The first smoothed value is the first sample (debiasing). */
  kd_series_ema(y, N, 0.9, out);
  CHECK_NEAR(out[0], y[0], 1e-15);
  /* Non-finite samples pass through and do not count (TensorBoard). */
  double z[5] = {1, 2, NAN, 4, INFINITY}, zo[5];
  kd_series_ema(z, 5, 0.5, zo);
  CHECK(isnan(zo[2]) && isinf(zo[4]));
  double num = 0.5 * 0.5 * 0.5 * 1 + 0.5 * 0.5 * 2 + 0.5 * 4; /* 3 finite samples */
  CHECK_NEAR(zo[3], num / (1 - 0.125), 1e-12);
  /* A constant series is left alone. */
  double c[4] = {3, 3, 3, 3}, co[4];
  kd_series_ema(c, 4, 0.9, co);
  for (int i = 0; i < 4; i++) CHECK(co[i] == 3);
  /* In place works. */
  double ip[N];
  memcpy(ip, y, sizeof ip);
  kd_series_ema(ip, N, 0.6, ip);
  kd_series_ema(y, N, 0.6, out);
  CHECK(!memcmp(ip, out, sizeof ip));
}

static void test_moving_average(void) {
  double y[6] = {1, 2, 3, NAN, 5, 6}, out[6];
  kd_series_moving_average(y, 6, 3, out);
  CHECK_NEAR(out[0], 1, 1e-15);
  CHECK_NEAR(out[1], 1.5, 1e-15);
  CHECK_NEAR(out[2], 2, 1e-15);
  CHECK(isnan(out[3]));
  CHECK_NEAR(out[4], 4, 1e-15); /* (3 + 5) / 2: the NaN is skipped */
  CHECK_NEAR(out[5], 5.5, 1e-15);
  KdSmooth none = {KD_SMOOTH_NONE, 0, 0};
  kd_series_smooth(&none, y, 6, out);
  CHECK(out[5] == 6);
}

static void test_thinning(void) {
  enum { N = 100000 };
  double *px = malloc(N * sizeof *px), *y = malloc(N * sizeof *y);
  size_t *idx = malloc(N * sizeof *idx);
  const int widths[] = {7, 50, 237, 1000, 3000, 99999};
  const size_t spikes[] = {0, 1, 4999, 50000, N - 1};
  for (size_t sp = 0; sp < sizeof spikes / sizeof spikes[0]; sp++)
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
      int w = widths[wi];
      for (int i = 0; i < N; i++) {
        px[i] = (double)i / (N - 1) * w;
        y[i] = 1.0 + 0.01 * sin(i * 0.37);
      }
      y[spikes[sp]] = 100; /* a single-sample spike */
      size_t m = kd_series_thin_minmax(px, y, N, 1.0, idx);
      int found = 0;
      for (size_t k = 0; k < m; k++) found |= idx[k] == spikes[sp];
      CHECK_MSG(found, "spike at %zu lost at width %d", spikes[sp], w);
      CHECK_MSG(m <= (size_t)4 * (w + 1), "kept %zu samples for %d columns", m, w);
      for (size_t k = 1; k < m; k++) CHECK(idx[k] > idx[k - 1]);
      /* A negative spike survives too. */
      y[spikes[sp]] = -100;
      m = kd_series_thin_minmax(px, y, N, 1.0, idx);
      found = 0;
      for (size_t k = 0; k < m; k++) found |= idx[k] == spikes[sp];
      CHECK(found);
    }
  /* Fewer samples than columns: everything is kept. */
  for (int i = 0; i < 10; i++) {
    px[i] = i * 5.0;
    y[i] = i;
  }
  CHECK(kd_series_thin_minmax(px, y, 10, 1.0, idx) == 10);
  /* Breaks are kept. */
  y[4] = NAN;
  size_t m = kd_series_thin_minmax(px, y, 10, 100.0, idx);
  int has_nan = 0;
  for (size_t k = 0; k < m; k++) has_nan |= idx[k] == 4;
  CHECK(has_nan);
  free(px);
  free(y);
  free(idx);
}

static int has(const double *v, int n, double x) {
  for (int i = 0; i < n; i++)
    if (fabs(v[i] - x) <= 1e-9 * fabs(x)) return 1;
  return 0;
}

static void test_ticks(void) {
  KdFigTicks t;
  kd_fig_ticks_log(1e-4, 10, 8, &t); /* six decades */
  CHECK(t.nmajor == 6);
  CHECK(has(t.major, t.nmajor, 1e-4) && has(t.major, t.nmajor, 1e-3) && has(t.major, t.nmajor, 10));
  CHECK(has(t.minor, t.nminor, 2e-4) && has(t.minor, t.nminor, 9));
  CHECK(t.nminor == 5 * 8);
  for (int i = 1; i < t.nmajor; i++) CHECK_NEAR(t.major[i] / t.major[i - 1], 10, 1e-9);

  kd_fig_ticks_log(1e-12, 1e6, 6, &t); /* 19 decades, 6 labels at most */
  CHECK(t.nmajor >= 2 && t.nmajor <= 6);
  CHECK(t.step >= 3);
  for (int i = 1; i < t.nmajor; i++) CHECK_NEAR(log10(t.major[i] / t.major[i - 1]), t.step, 1e-9);
  CHECK(has(t.minor, t.nminor, 1e-11)); /* skipped decades become minors */

  kd_fig_ticks_log(0.3, 4, 6, &t); /* under a decade: 1-2-5 */
  CHECK(has(t.major, t.nmajor, 0.5) && has(t.major, t.nmajor, 1) && has(t.major, t.nmajor, 2));
  CHECK(!has(t.major, t.nmajor, 3));
  CHECK(has(t.minor, t.nminor, 3) && has(t.minor, t.nminor, 0.4));
  for (int i = 0; i < t.nmajor; i++) CHECK(t.major[i] >= 0.3 && t.major[i] <= 4);

  kd_fig_ticks_log(1.1, 1.3, 5, &t); /* very narrow: still >= 2 ticks inside */
  CHECK(t.nmajor >= 2);
  for (int i = 0; i < t.nmajor; i++) CHECK(t.major[i] >= 1.1 - 1e-12 && t.major[i] <= 1.3 + 1e-12);

  kd_fig_ticks_log(-1, 10, 5, &t); /* invalid for a log axis */
  CHECK(t.nmajor == 0);

  kd_fig_ticks_linear(0, 3000, 6, &t);
  CHECK(t.nmajor >= 4 && t.nmajor <= 6);
  CHECK(t.major[0] == 0 && has(t.major, t.nmajor, 1000));
  kd_fig_ticks_linear(-0.37, 0.81, 5, &t);
  CHECK(has(t.major, t.nmajor, 0) && t.nmajor <= 5 && t.nmajor >= 3);

  char buf[64];
  kd_fig_format_tick(1e-5, 1, 1, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "10\xe2\x81\xbb\xe2\x81\xb5"), "got %s", buf);
  kd_fig_format_tick(0.01, 1, 1, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "0.01"), "got %s", buf);
  kd_fig_format_tick(1000, 1, 1, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "1000"), "got %s", buf);
  kd_fig_format_tick(12000, 2000, 0, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "12k"), "got %s", buf);
  kd_fig_format_tick(-0.5, 0.25, 0, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "\xe2\x88\x92" "0.5"), "got %s", buf);
  kd_fig_format_tick(0.25, 0.25, 0, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "0.25"), "got %s", buf);
}

static void test_colormaps(void) {
  uint8_t c[3];
  kd_cmap_rgb8(KD_CMAP_VIRIDIS, 0, c);
  CHECK(c[0] == 68 && c[1] == 1 && c[2] == 84);
  kd_cmap_rgb8(KD_CMAP_VIRIDIS, 1, c);
  CHECK(c[0] == 253 && c[1] == 231 && c[2] == 37);
  kd_cmap_rgb8(KD_CMAP_MAGMA, 0, c);
  CHECK(c[0] == 0 && c[1] == 0 && c[2] == 4);
  kd_cmap_rgb8(KD_CMAP_MAGMA, 1, c);
  CHECK(c[0] == 252 && c[1] == 253 && c[2] == 191);
  kd_cmap_rgb8(KD_CMAP_DIVERGING, 0, c); /* Moreland's published end points */
  CHECK(c[0] == 59 && c[1] == 76 && c[2] == 192);
  kd_cmap_rgb8(KD_CMAP_DIVERGING, 1, c);
  CHECK(c[0] == 180 && c[1] == 4 && c[2] == 38);
  kd_cmap_rgb8(KD_CMAP_DIVERGING, 0.5, c); /* a neutral centre */
  CHECK(abs(c[0] - c[1]) <= 2 && abs(c[1] - c[2]) <= 2 && c[0] > 200);
  /* Sequential maps rise in lightness (here: luma) monotonically. */
  for (int m = KD_CMAP_VIRIDIS; m <= KD_CMAP_MAGMA; m++) {
    const uint8_t (*tab)[3] = kd_cmap_table((KdCmap)m);
    double prev = -1;
    int mono = 1;
    for (int i = 0; i < 256; i++) {
      double l = 0.2126 * tab[i][0] + 0.7152 * tab[i][1] + 0.0722 * tab[i][2];
      mono &= l >= prev - 0.5;
      prev = l;
    }
    CHECK_MSG(mono, "%s luma not monotone", kd_cmap_name((KdCmap)m));
  }
  kd_cmap_rgb8(KD_CMAP_VIRIDIS, NAN, c);
  CHECK(c[0] == c[1] && c[1] == c[2]);
  kd_cmap_rgb8(KD_CMAP_VIRIDIS, -3, c); /* clamped */
  CHECK(c[0] == 68);
  CHECK(kd_cmap_from_name("magma") == KD_CMAP_MAGMA);
  CHECK(kd_cmap_from_name("coolwarm") == KD_CMAP_DIVERGING);
  CHECK(kd_cmap_from_name("jet") == -1);
}

static void test_range(void) {
  float a[4] = {-0.2f, 0.1f, NAN, 0.5f}, b[4] = {0.3f, 0.9f, 0.0f, 0.2f};
  KdFigMap ma = {a, 2, 2}, mb = {b, 2, 2};
  const KdFigMap *both[2] = {&ma, &mb};
  double lo, hi;
  KdFigRange auto_r = {0, 0, 0};
  CHECK(kd_fig_resolve_range(&auto_r, KD_CMAP_VIRIDIS, both, 2, &lo, &hi) == 0);
  CHECK_NEAR(lo, -0.2, 1e-6);
  CHECK_NEAR(hi, 0.9, 1e-6); /* shared: the student's max sets the range */
  kd_fig_resolve_range(&auto_r, KD_CMAP_DIVERGING, both, 1, &lo, &hi);
  CHECK_NEAR(lo, -0.5, 1e-6); /* symmetric about zero */
  CHECK_NEAR(hi, 0.5, 1e-6);
  KdFigRange logr = {0, 0, 1};
  kd_fig_resolve_range(&logr, KD_CMAP_MAGMA, both, 2, &lo, &hi);
  CHECK_NEAR(lo, 0.1, 1e-6); /* non-positive values ignored */
  KdFigRange fixed = {0, 1, 0};
  kd_fig_resolve_range(&fixed, KD_CMAP_VIRIDIS, both, 2, &lo, &hi);
  CHECK(lo == 0 && hi == 1);
}

/* Smoothing restarts at a live change: steps 1..6, a `set` logged at step
 * 3 (it applies from step 4 on), EMA weight 0.5 computed by hand; after
 * the change the first smoothed value is the raw one again. */
static void test_segments(void) {
  const double x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {8, 4, 2, 100, 50, 25};
  const double breaks[3] = {3, 3.5, 99}; /* 3.5 starts the same segment; 99 none */
  size_t starts[3];
  size_t ns = kd_series_segments(x, 6, breaks, 3, starts);
  CHECK_MSG(ns == 1 && starts[0] == 3, "%zu segments, first at %zu", ns, ns ? starts[0] : 0);
  const double before_first[1] = {0.5}, after_last[1] = {6};
  CHECK(kd_series_segments(x, 6, before_first, 1, starts) == 0);
  CHECK(kd_series_segments(x, 6, after_last, 1, starts) == 0);
  ns = kd_series_segments(x, 6, breaks, 3, starts);
  KdSmooth ema = {KD_SMOOTH_EMA, 0.5, 1};
  double out[6];
  kd_series_smooth_segments(&ema, y, 6, starts, ns, out);
  /* Debiased EMA, w = 0.5: s_i = sum_j w^(i-j)(1-w) y_j / (1 - w^(i+1)). */
  const double want[6] = {
      8,                                      /* 0.5*8 / 0.5 */
      (0.25 * 8 + 0.5 * 4) / 0.75,            /* 16/3 */
      (0.125 * 8 + 0.25 * 4 + 0.5 * 2) / 0.875, /* 24/7 */
      100,                                    /* restart: the raw value */
      (0.25 * 100 + 0.5 * 50) / 0.75,         /* 200/3 */
      (0.125 * 100 + 0.25 * 50 + 0.5 * 25) / 0.875,
  };
  for (int i = 0; i < 6; i++) CHECK_MSG(fabs(out[i] - want[i]) < 1e-12, "EMA[%d] = %.15g, want %.15g", i, out[i], want[i]);
  /* Without the break, step 4 would still read mostly the old regime. */
  double whole[6];
  kd_series_smooth(&ema, y, 6, whole);
  CHECK(whole[3] < 60 && out[3] == 100);
  /* The moving average restarts too: at step 4 it is the raw value. */
  KdSmooth mean = {KD_SMOOTH_MEAN, 0, 3};
  kd_series_smooth_segments(&mean, y, 6, starts, ns, out);
  CHECK_NEAR(out[2], (8 + 4 + 2) / 3.0, 1e-12);
  CHECK_NEAR(out[3], 100, 1e-12);
  CHECK_NEAR(out[5], (100 + 50 + 25) / 3.0, 1e-12);
}

/* The 12 line styles: distinct colours, and distinct (dash, marker)
 * pairs, so they stay apart in grey print too; the index wraps. */
static void test_series_styles(void) {
  double rgb[KD_FIG_SERIES_STYLES][3];
  int dash[KD_FIG_SERIES_STYLES], mark[KD_FIG_SERIES_STYLES];
  for (int i = 0; i < KD_FIG_SERIES_STYLES; i++) kd_fig_series_style(i, rgb[i], &dash[i], &mark[i]);
  for (int i = 0; i < KD_FIG_SERIES_STYLES; i++)
    for (int j = 0; j < i; j++) {
      double d = fabs(rgb[i][0] - rgb[j][0]) + fabs(rgb[i][1] - rgb[j][1]) + fabs(rgb[i][2] - rgb[j][2]);
      CHECK_MSG(d > 0.15, "series %d and %d have near colours", i, j);
      CHECK_MSG(dash[i] != dash[j] || mark[i] != mark[j], "series %d and %d share dash %d and marker %d", i, j, dash[i], mark[i]);
      CHECK(dash[i] != KD_FIG_DOTTED); /* dotted marks a compared run */
    }
  double w[3];
  int dw, mw;
  kd_fig_series_style(KD_FIG_SERIES_STYLES + 3, w, &dw, &mw);
  CHECK(!memcmp(w, rgb[3], sizeof w) && dw == dash[3] && mw == mark[3]);
}

/* Math labels: subscripts, superscripts, Greek and escaping. */
static void test_markup(void) {
  char m[256];
  kd_fig_label_markup("L_{cls}", m, sizeof m);
  CHECK_MSG(!strcmp(m, "L<sub>cls</sub>"), "%s", m);
  kd_fig_label_markup("$\\alpha_{bg}$ 16\xe2\x86\x92x^{2}", m, sizeof m);
  CHECK_MSG(!strcmp(m, "\xce\xb1<sub>bg</sub> 16\xe2\x86\x92x<sup>2</sup>"), "%s", m);
  kd_fig_label_markup("a<b & grad_norm \\taus", m, sizeof m);
  CHECK_MSG(!strcmp(m, "a&lt;b &amp; grad_norm \\taus"), "%s", m);
  kd_fig_label_markup("\\lambda_{fit", m, sizeof m); /* unclosed: to the end */
  CHECK_MSG(!strcmp(m, "\xce\xbb<sub>fit</sub>"), "%s", m);
}

int main(void) {
  test_ema();
  test_series_styles();
  test_markup();
  test_segments();
  test_moving_average();
  test_thinning();
  test_ticks();
  test_colormaps();
  test_range();
  return check_status("test_series");
}
