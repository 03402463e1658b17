/* PGM's selection (pgm.h): density filter on both sides, then the joint
 * greedy matching pursuit, in double. */
#include "distill/pgm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kd_pgm_cfg_default(KdPgmCfg *c) { *c = (KdPgmCfg){.num_prototypes = 10, .sigma = 0.1, .cut = 0.4, .alpha = 10.0}; }

/* Rows of x (n x d) normalised into out (double); a zero row stays zero. */
static void normalise(const float *x, int n, int d, double *out) {
  for (int i = 0; i < n; i++) {
    double s = 0.0;
    for (int k = 0; k < d; k++) s += (double)x[(size_t)i * d + k] * x[(size_t)i * d + k];
    const double inv = s > 0.0 ? 1.0 / sqrt(s) : 0.0;
    for (int k = 0; k < d; k++) out[(size_t)i * d + k] = x[(size_t)i * d + k] * inv;
  }
}

/* g = f f^T (n x n). */
static void gram(const double *f, int n, int d, double *g) {
  for (int i = 0; i < n; i++)
    for (int j = i; j < n; j++) {
      double s = 0.0;
      for (int k = 0; k < d; k++) s += f[(size_t)i * d + k] * f[(size_t)j * d + k];
      g[(size_t)i * n + j] = g[(size_t)j * n + i] = s;
    }
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* rho (n) from the Gram matrix; returns the threshold sorted(rho)[floor(n cut)]. */
static double density(const double *g, int n, double sigma, double cut, double *rho, double *sorted) {
  for (int i = 0; i < n; i++) {
    double s = 0.0;
    for (int j = 0; j < n; j++) {
      const double d = (1.0 - g[(size_t)i * n + j]) / sigma;
      s += exp(-d * d);
    }
    rho[i] = sorted[i] = s;
  }
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
  int at = (int)floor((double)n * cut);
  if (at >= n) at = n - 1;
  if (at < 0) at = 0;
  return sorted[at];
}

int kd_pgm_select(const float *fs, int ds, const float *ft, int dt, int n, const KdPgmCfg *cfg, int *idx, int *ncand,
                  KdError *err) {
  if (ncand) *ncand = 0;
  if (n < 0 || ds < 1 || dt < 1 || !cfg || cfg->num_prototypes < 1 || !(cfg->sigma > 0.0))
    return kd_error(err, "pgm: bad arguments (n %d, widths %d/%d)", n, ds, dt);
  if (n == 0) return 0;
  const size_t nn = (size_t)n * n;
  double *ns = malloc(sizeof(double) * (size_t)n * ds), *nt = malloc(sizeof(double) * (size_t)n * dt);
  double *gs = malloc(sizeof(double) * nn), *gt = malloc(sizeof(double) * nn);
  double *rs = malloc(sizeof(double) * n), *rt = malloc(sizeof(double) * n), *sorted = malloc(sizeof(double) * n);
  int *cand = malloc(sizeof(int) * n);
  double *A = NULL, *B = NULL, *ws = NULL, *wt = NULL;
  int rc = -1;
  if (!ns || !nt || !gs || !gt || !rs || !rt || !sorted || !cand) {
    kd_error(err, "pgm: out of memory for %d instances", n);
    goto done;
  }
  normalise(fs, n, ds, ns);
  normalise(ft, n, dt, nt);
  gram(ns, n, ds, gs);
  gram(nt, n, dt, gt);
  const double th_s = density(gs, n, cfg->sigma, cfg->cut, rs, sorted);
  const double th_t = density(gt, n, cfg->sigma, cfg->cut, rt, sorted);
  int nc = 0;
  for (int i = 0; i < n; i++)
    if (rs[i] > th_s && rt[i] > th_t) cand[nc++] = i;
  if (ncand) *ncand = nc;
  if (nc == 0) {
    rc = 0;
    goto done;
  }
  /* A[c][j] = f_s,cand[c] . R_s,j (residuals start at the features: the Gram rows). */
  A = malloc(sizeof(double) * (size_t)nc * n), B = malloc(sizeof(double) * (size_t)nc * n);
  ws = malloc(sizeof(double) * n), wt = malloc(sizeof(double) * n);
  if (!A || !B || !ws || !wt) {
    kd_error(err, "pgm: out of memory for %d candidates", nc);
    goto done;
  }
  for (int c = 0; c < nc; c++) {
    memcpy(A + (size_t)c * n, gs + (size_t)cand[c] * n, sizeof(double) * n);
    memcpy(B + (size_t)c * n, gt + (size_t)cand[c] * n, sizeof(double) * n);
  }
  const double al = cfg->alpha, den = 1.0 + 2.0 * al;
  for (int step = 0; step < cfg->num_prototypes; step++) {
    int best = 0;
    double best_e = INFINITY;
    for (int c = 0; c < nc; c++) {
      const int k = cand[c];
      const double nks = gs[(size_t)k * n + k], nkt = gt[(size_t)k * n + k];
      const double *a = A + (size_t)c * n, *b = B + (size_t)c * n;
      double e = 0.0;
      for (int j = 0; j < n; j++) {
        const double w1 = ((1.0 + al) * a[j] + al * b[j]) / den, w2 = ((1.0 + al) * b[j] + al * a[j]) / den;
        e += nks * w1 * w1 - 2.0 * w1 * a[j] + nkt * w2 * w2 - 2.0 * w2 * b[j] + al * (w1 - w2) * (w1 - w2);
      }
      if (e < best_e) best_e = e, best = c; /* strict: the first on ties */
    }
    const int k = cand[best];
    idx[step] = k;
    const double *a = A + (size_t)best * n, *b = B + (size_t)best * n;
    for (int j = 0; j < n; j++) ws[j] = ((1.0 + al) * a[j] + al * b[j]) / den, wt[j] = ((1.0 + al) * b[j] + al * a[j]) / den;
    /* R -= f_k w^T, so f_c . R_j moves by -(f_c . f_k) w_j. */
    for (int c = 0; c < nc; c++) {
      const double gsc = gs[(size_t)cand[c] * n + k], gtc = gt[(size_t)cand[c] * n + k];
      double *ac = A + (size_t)c * n, *bc = B + (size_t)c * n;
      for (int j = 0; j < n; j++) ac[j] -= gsc * ws[j], bc[j] -= gtc * wt[j];
    }
  }
  rc = cfg->num_prototypes;
done:
  free(ns), free(nt), free(gs), free(gt), free(rs), free(rt), free(sorted), free(cand);
  free(A), free(B), free(ws), free(wt);
  return rc;
}
