/* PGM's selection (engine/distill/pgm.c) by hand: a class with 2 instances
 * and a pool of well-separated features leave no candidate (no prototypes,
 * nothing NaN); the candidate set needs density on both sides; a single
 * candidate is picked at every step (the repeats of the released code);
 * the first pick of a two-candidate pool and the pick after it follow the
 * energy computed here from its definition (the literal D x N residuals);
 * zero rows and bad arguments. The torch parity check runs through
 * `kdscope prototypes` (pgm_oracle.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "distill/pgm.h"

/* Unit vector at angle a (radians) in 2-D. */
static void at_angle(float *v, double a) { v[0] = (float)cos(a), v[1] = (float)sin(a); }

static void test_two_instances(void) {
  float f[4] = {1, 0, 0.9f, 0.1f};
  KdPgmCfg cfg;
  kd_pgm_cfg_default(&cfg);
  int idx[10] = {-7}, nc = -1;
  KdError err;
  /* floor(2 * 0.4) = 0: the threshold is the smaller density, and both are equal. */
  CHECK(kd_pgm_select(f, 2, f, 2, 2, &cfg, idx, &nc, &err) == 0);
  CHECK(nc == 0 && idx[0] == -7);
  CHECK(kd_pgm_select(f, 2, f, 2, 1, &cfg, idx, &nc, &err) == 0 && nc == 0);
  CHECK(kd_pgm_select(f, 2, f, 2, 0, &cfg, idx, &nc, &err) == 0 && nc == 0);
}

static void test_separated(void) {
  /* One-hot rows: every off-diagonal distance is 1, exp(-(1/0.1)^2) = e^-100
   * vanishes against 1, so every density is exactly 1.0. */
  enum { N = 6 };
  float f[N * N] = {0};
  for (int i = 0; i < N; i++) f[i * N + i] = 3.0f + (float)i;
  KdPgmCfg cfg;
  kd_pgm_cfg_default(&cfg);
  int idx[10], nc = -1;
  KdError err;
  CHECK(kd_pgm_select(f, N, f, N, N, &cfg, idx, &nc, &err) == 0 && nc == 0);
}

/* Angles 0, 0.1, 0.25: densities 2.9054, 2.9850, 2.8954 (e^-(d/0.1)^2 of
 * the distances 1 - cos(0.1), 1 - cos(0.15), 1 - cos(0.25): 0.9975, 0.9875,
 * 0.9079); the threshold (index floor(3 * 0.4) = 1 of the sorted list) is
 * 2.9054, so only instance 1 is a candidate, and it is picked at every
 * step. With instance 1 moved to 0.9 on the teacher side, the teacher's
 * candidate is instance 2 alone: no instance is dense on both sides. */
static void test_single_candidate(void) {
  const double ang[3] = {0.0, 0.1, 0.25};
  float f[6], t[6];
  for (int i = 0; i < 3; i++) at_angle(f + 2 * i, ang[i]), at_angle(t + 2 * i, ang[i]);
  KdPgmCfg cfg;
  kd_pgm_cfg_default(&cfg);
  int idx[10], nc = -1;
  KdError err;
  CHECK(kd_pgm_select(f, 2, t, 2, 3, &cfg, idx, &nc, &err) == 10 && nc == 1);
  for (int k = 0; k < 10; k++) CHECK(idx[k] == 1);
  /* Scaled rows give the same: only directions count. */
  for (int i = 0; i < 6; i++) f[i] *= 5.0f;
  CHECK(kd_pgm_select(f, 2, t, 2, 3, &cfg, idx, &nc, &err) == 10 && nc == 1 && idx[0] == 1);
  at_angle(t + 2, 0.9);
  CHECK(kd_pgm_select(f, 2, t, 2, 3, &cfg, idx, &nc, &err) == 0 && nc == 0);
  /* num_prototypes 3: three steps. */
  at_angle(t + 2, 0.1);
  cfg.num_prototypes = 3;
  idx[3] = -5;
  CHECK(kd_pgm_select(f, 2, t, 2, 3, &cfg, idx, &nc, &err) == 3 && idx[3] == -5);
}

/* The energy of candidate k against residuals rs, rt (n x d, row j = R_j),
 * from its definition. */
static double energy(const double *fs, const double *ft, const double *rs, const double *rt, int n, int d, double al) {
  double e = 0.0;
  for (int j = 0; j < n; j++) {
    double a = 0, b = 0;
    for (int k = 0; k < d; k++) a += fs[k] * rs[j * d + k], b += ft[k] * rt[j * d + k];
    double ws = ((1 + al) * a + al * b) / (1 + 2 * al), wt = ((1 + al) * b + al * a) / (1 + 2 * al);
    for (int k = 0; k < d; k++) {
      double u = fs[k] * ws - rs[j * d + k], v = ft[k] * wt - rt[j * d + k];
      e += u * u + v * v;
    }
    e += al * (ws - wt) * (ws - wt);
  }
  return e;
}

/* Six instances in 3-D, two tight clusters on the student side with
 * slightly different teacher directions; the picks must be the argmin of
 * the literal energy at each step. */
static void test_pursuit_by_definition(void) {
  enum { N = 7, D = 3, K = 4 };
  static const float s[N * D] = {1, 0, 0, 0.99f, 0.05f, 0, 0.99f, -0.03f, 0.04f, 0.97f, 0.1f, 0.1f,
                                 0, 1, 0, 0.05f, 0.99f, 0.02f, 0.5f, 0.5f, 0.7f};
  float t[N * D];
  for (int i = 0; i < N * D; i++) t[i] = s[i] + 0.02f * (float)((i * 7) % 5 - 2);
  KdPgmCfg cfg;
  kd_pgm_cfg_default(&cfg);
  cfg.num_prototypes = K;
  int idx[K], nc;
  KdError err;
  CHECK(kd_pgm_select(s, D, t, D, N, &cfg, idx, &nc, &err) == K);
  CHECK(nc >= 2);
  /* Recompute: candidates as the module does, then the literal pursuit. */
  double fs[N * D], ft[N * D], rs[N * D], rt[N * D];
  for (int i = 0; i < N; i++) {
    double a = 0, b = 0;
    for (int k = 0; k < D; k++) a += (double)s[i * D + k] * s[i * D + k], b += (double)t[i * D + k] * t[i * D + k];
    for (int k = 0; k < D; k++) fs[i * D + k] = s[i * D + k] / sqrt(a), ft[i * D + k] = t[i * D + k] / sqrt(b);
  }
  double rho[2][N], srt[2][N];
  for (int side = 0; side < 2; side++) {
    const double *f = side ? ft : fs;
    for (int i = 0; i < N; i++) {
      rho[side][i] = 0;
      for (int j = 0; j < N; j++) {
        double dot = 0;
        for (int k = 0; k < D; k++) dot += f[i * D + k] * f[j * D + k];
        rho[side][i] += exp(-pow((1 - dot) / 0.1, 2));
      }
      srt[side][i] = rho[side][i];
    }
    for (int i = 0; i < N; i++)
      for (int j = i + 1; j < N; j++)
        if (srt[side][j] < srt[side][i]) {
          double x = srt[side][i];
          srt[side][i] = srt[side][j], srt[side][j] = x;
        }
  }
  int cand[N], m = 0;
  for (int i = 0; i < N; i++)
    if (rho[0][i] > srt[0][(int)(N * 0.4)] && rho[1][i] > srt[1][(int)(N * 0.4)]) cand[m++] = i;
  CHECK(m == nc);
  memcpy(rs, fs, sizeof rs), memcpy(rt, ft, sizeof rt);
  for (int step = 0; step < K; step++) {
    int best = -1;
    double be = INFINITY;
    for (int c = 0; c < m; c++) {
      double e = energy(fs + cand[c] * D, ft + cand[c] * D, rs, rt, N, D, 10.0);
      if (e < be) be = e, best = cand[c];
    }
    CHECK_MSG(idx[step] == best, "step %d: picked %d, literal argmin %d", step, idx[step], best);
    const double *a = fs + best * D, *b = ft + best * D;
    for (int j = 0; j < N; j++) {
      double x = 0, y = 0;
      for (int k = 0; k < D; k++) x += a[k] * rs[j * D + k], y += b[k] * rt[j * D + k];
      double ws = (11 * x + 10 * y) / 21, wt = (11 * y + 10 * x) / 21;
      for (int k = 0; k < D; k++) rs[j * D + k] -= a[k] * ws, rt[j * D + k] -= b[k] * wt;
    }
  }
}

/* A zero row (a box over a dead region) stays zero after normalisation:
 * no NaN reaches the densities; bad arguments are refused. */
static void test_zero_and_bad(void) {
  float f[8] = {0, 0, 1, 0, 0.995f, 0.0998f, 0.98f, 0.198f};
  KdPgmCfg cfg;
  kd_pgm_cfg_default(&cfg);
  int idx[10], nc;
  KdError err;
  int r = kd_pgm_select(f, 2, f, 2, 4, &cfg, idx, &nc, &err);
  CHECK(r == 0 || r == 10);
  for (int k = 0; r == 10 && k < 10; k++) CHECK(idx[k] >= 1 && idx[k] < 4);
  cfg.num_prototypes = 0;
  CHECK(kd_pgm_select(f, 2, f, 2, 4, &cfg, idx, &nc, &err) == -1 && strstr(err.msg, "pgm"));
}

int main(void) {
  test_two_instances();
  test_separated();
  test_single_candidate();
  test_pursuit_by_definition();
  test_zero_and_bad();
  return check_status("distill_pgm");
}
