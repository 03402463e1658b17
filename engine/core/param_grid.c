/* Slider grids: linear (multiples of a step) or log (mantissas per
 * decade), every value built as an integer times an exact power of ten so
 * that it is the double nearest to its decimal. Knows no setting by name. */
#include "core/param_grid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 10^e: exact for |e| <= 22. */
static double p10(int e) {
  static const double t[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  int a = abs(e);
  double x = a <= 22 ? t[a] : pow(10, a);
  return e >= 0 ? x : 1 / x;
}

/* n * 10^e rounded once: n times or divided by an exact power of ten. */
static double dec(double n, int e) { return e >= 0 ? n * p10(e) : n / p10(-e); }

typedef struct Dec {
  double n; /* an integer */
  int e;
} Dec;

/* x as n * 10^e with the fewest decimals (x a short decimal: 0.01, 1.5). */
static Dec to_dec(double x) {
  for (int k = 0; k <= 15; k++) {
    double s = x * p10(k), r = round(s);
    if (fabs(s - r) <= 1e-9 * fmax(1.0, fabs(s))) return (Dec){r, -k};
  }
  return (Dec){round(x * 1e15), -15};
}

/* The largest 1-2-5 step not above x. */
static double nice_floor(double x) {
  double d = p10((int)floor(log10(x)));
  return x >= 5 * d ? 5 * d : x >= 2 * d ? 2 * d : d;
}

double kd_grid_low(const KdParamDesc *d) { return d->log_scale && d->min <= 0 ? d->max / 1e6 : d->min; }

int kd_grid_resolve(const KdParamDesc *d, double *step, double m[KD_GRID_MAX_MANTISSAS], int *n, KdError *err) {
  *step = 0, *n = 0;
  if (d->type != KD_CFG_FLOAT && d->type != KD_CFG_INT) return 0;
  const char *g = d->grid;
  if (g && !strncmp(g, "step ", 5)) {
    char *end;
    double x = strtod(g + 5, &end);
    if (end == g + 5 || *end || !(x > 0) || !isfinite(x)) return kd_error(err, "%s: grid \"%s\": the step must be a positive number", d->key, g);
    if (d->type == KD_CFG_INT && x != floor(x)) return kd_error(err, "%s: grid \"%s\": an int's step must be whole", d->key, g);
    *step = x;
    return 0;
  }
  if (g && (!d->log_scale || d->type == KD_CFG_INT))
    return kd_error(err, "%s: grid \"%s\": mantissas per decade are for log sliders of floats (else \"step X\")", d->key, g);
  if (d->type == KD_CFG_INT) {
    *step = 1;
    return 0;
  }
  if (!d->log_scale) {
    *step = d->max > d->min ? nice_floor((d->max - d->min) / 100) : 1;
    return 0;
  }
  const char *s = g ? g : "1,2,5";
  while (*s) {
    char *end;
    double x = strtod(s, &end);
    if (end == s || x < 1 || x >= 10 || (*n && x <= m[*n - 1]) || *n == KD_GRID_MAX_MANTISSAS || (*end && *end != ','))
      return kd_error(err, "%s: grid \"%s\": expected up to %d ascending mantissas in [1, 10), comma-separated", d->key, s,
                      KD_GRID_MAX_MANTISSAS);
    m[(*n)++] = x;
    s = *end == ',' ? end + 1 : end;
  }
  if (!*n || m[0] != 1) return kd_error(err, "%s: grid \"%s\": the mantissas must start at 1", d->key, g ? g : "");
  return 0;
}

/* ---- linear: value k * step ---- */

static double lin_at(Dec s, double k) { return dec(k * s.n, s.e); }

static double lin_clamped(const KdParamDesc *d, Dec s, double step, double k) {
  double kmin = ceil(d->min / step - 1e-9), kmax = floor(d->max / step + 1e-9);
  if (lin_at(s, kmin) < d->min) kmin++;
  if (lin_at(s, kmax) > d->max) kmax--;
  if (kmin > kmax) return fmin(fmax(lin_at(s, k), d->min), d->max); /* no grid value in range */
  return lin_at(s, fmin(fmax(k, kmin), kmax));
}

/* ---- log: value m_i * 10^E ---- */

/* The grid values of the decades around v (v > 0), ascending. */
static int log_around(const double *m, int n, double v, double *out) {
  int e0 = (int)floor(log10(v)), k = 0;
  for (int e = e0 - 1; e <= e0 + 1; e++)
    for (int i = 0; i < n; i++) {
      Dec md = to_dec(m[i]);
      out[k++] = dec(md.n, md.e + e);
    }
  return k;
}

/* The first grid value >= x (up) or the last <= x. */
static double log_bound(const double *m, int n, double x, int up) {
  double c[3 * KD_GRID_MAX_MANTISSAS];
  int k = log_around(m, n, x, c);
  if (up) {
    for (int i = 0; i < k; i++)
      if (c[i] >= x) return c[i];
    return c[k - 1];
  }
  for (int i = k - 1; i >= 0; i--)
    if (c[i] <= x) return c[i];
  return c[0];
}

static double log_clamped(const KdParamDesc *d, const double *m, int n, double v) {
  double lo = log_bound(m, n, kd_grid_low(d), 1), hi = log_bound(m, n, d->max, 0);
  if (lo > hi) return fmin(fmax(v, kd_grid_low(d)), d->max);
  return fmin(fmax(v, lo), hi);
}

double kd_grid_snap(const KdParamDesc *d, double v) {
  double step, m[KD_GRID_MAX_MANTISSAS];
  int n;
  if (!isfinite(v) || kd_grid_resolve(d, &step, m, &n, NULL)) return v;
  if (step > 0) {
    Dec s = to_dec(step);
    return lin_clamped(d, s, step, round(v / step));
  }
  if (!n) return v;
  if (v <= 0) return d->min <= 0 ? 0 : log_clamped(d, m, n, d->min);
  double c[3 * KD_GRID_MAX_MANTISSAS], best = v, bd = INFINITY;
  int k = log_around(m, n, v, c);
  for (int i = 0; i < k; i++) {
    double dist = fabs(log(c[i] / v));
    if (dist < bd) bd = dist, best = c[i];
  }
  return log_clamped(d, m, n, best);
}

double kd_grid_next(const KdParamDesc *d, double v, int dir) {
  double step, m[KD_GRID_MAX_MANTISSAS];
  int n;
  if (!isfinite(v) || !dir || kd_grid_resolve(d, &step, m, &n, NULL)) return v;
  if (step > 0) {
    Dec s = to_dec(step);
    double k = round(v / step), at = lin_at(s, k);
    if (dir > 0 && at <= v) k++;
    if (dir < 0 && at >= v) k--;
    return lin_clamped(d, s, step, k);
  }
  if (!n) return v;
  double lo = log_bound(m, n, kd_grid_low(d), 1);
  if (v <= 0 || (dir < 0 && v <= lo)) return dir > 0 ? lo : d->min <= 0 ? 0 : lo;
  double c[3 * KD_GRID_MAX_MANTISSAS], to = v;
  int k = log_around(m, n, v, c);
  if (dir > 0) {
    for (int i = 0; i < k && to == v; i++)
      if (c[i] > v) to = c[i];
  } else {
    for (int i = k - 1; i >= 0 && to == v; i--)
      if (c[i] < v) to = c[i];
  }
  return log_clamped(d, m, n, to);
}

int kd_grid_contains(const KdParamDesc *d, double v) {
  return v >= d->min && v <= d->max && kd_grid_snap(d, v) == v;
}
