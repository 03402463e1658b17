/* Probe map formulas against hand computations and closed forms: energy,
 * gap, norms, FGD attention, box cells and RoI pooling, the symmetric
 * eigen-solver and the PCA both ways (covariance and Gram). The methods'
 * loss maps are tested with the methods (tests/distill/test_gapmaps.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "probe/maps.h"

static float frand(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static void test_basic(void) {
  /* C = 2, HW = 3 */
  const float s[6] = {1, 2, 3, -1, 0, 2}, t[6] = {0, 2, 1, 1, 0, 0};
  float o[3];
  kd_map_energy(s, 2, 3, o);
  CHECK_NEAR(o[0], 1.0, 1e-7);
  CHECK_NEAR(o[1], 2.0, 1e-7);
  CHECK_NEAR(o[2], 6.5, 1e-6);
  kd_map_gap(s, t, 2, 3, o);
  CHECK_NEAR(o[0], (1 + 4) / 2.0, 1e-7);
  CHECK_NEAR(o[1], 0.0, 1e-7);
  CHECK_NEAR(o[2], (4 + 4) / 2.0, 1e-7);
  kd_map_norm(s, 2, 3, o);
  CHECK_NEAR(o[0], sqrt(2.0), 1e-6);
  CHECK_NEAR(o[2], sqrt(13.0), 1e-6);
  /* attention: spatial of |x| means {1, 1, 2.5} at temp 0.5 */
  kd_map_spatial_attn(s, 2, 3, 0.5f, o);
  double e[3] = {exp(2.0), exp(2.0), exp(5.0)}, z = e[0] + e[1] + e[2];
  for (int p = 0; p < 3; p++) CHECK_NEAR(o[p], 3 * e[p] / z, 1e-5);
  float ch[2];
  kd_map_channel_attn(s, 2, 3, 0.5f, ch); /* channel means {2, 1} */
  CHECK_NEAR(ch[0], 2 * exp(4.0) / (exp(4.0) + exp(2.0)), 1e-5);
  CHECK_NEAR(ch[0] + ch[1], 2.0, 1e-5);
}

static void test_cells(void) {
  int x0, y0, x1, y1;
  const float b[4] = {10, 10, 30, 30}, tiny[4] = {1, 1, 3, 3}, off[4] = {200, 200, 210, 210}, edge[4] = {0, 0, 64, 64};
  CHECK(kd_map_box_cells(b, 8, 8, 8, &x0, &y0, &x1, &y1) == 9 && x0 == 1 && x1 == 3 && y0 == 1 && y1 == 3);
  CHECK(kd_map_box_cells(tiny, 8, 8, 8, &x0, &y0, &x1, &y1) == 1 && x0 == 0 && y0 == 0);
  CHECK(kd_map_box_cells(off, 8, 8, 8, &x0, &y0, &x1, &y1) == 0);
  CHECK(kd_map_box_cells(edge, 8, 8, 8, &x0, &y0, &x1, &y1) == 64);
  /* feature c = 0: value x; c = 1: value 10 y */
  float f[2 * 8 * 8], out[2];
  for (int y = 0; y < 8; y++)
    for (int x = 0; x < 8; x++) f[y * 8 + x] = (float)x, f[64 + y * 8 + x] = 10.0f * y;
  kd_map_roi_avg(f, 2, 8, 8, 8, b, out);
  CHECK_NEAR(out[0], 2, 1e-6);
  CHECK_NEAR(out[1], 20, 1e-5);
  kd_map_roi_avg(f, 2, 8, 8, 8, off, out);
  CHECK(out[0] == 0 && out[1] == 0);
}

static void test_eig_pca(void) {
  double a[9] = {2, 1, 0, 1, 2, 0, 0, 0, 5}, w[3], v[9];
  kd_sym_eig(a, 3, w, v);
  CHECK_NEAR(w[0], 5, 1e-10);
  CHECK_NEAR(w[1], 3, 1e-10);
  CHECK_NEAR(w[2], 1, 1e-10);
  CHECK_NEAR(fabs(v[3] + v[4]) / sqrt(2.0), 1, 1e-9); /* (1,1,0)/sqrt 2 */
  /* points along u = (1, 2, 0, 0, 0)/sqrt 5 plus small noise in dim 3 */
  for (int gram = 0; gram < 2; gram++) {
    int M = gram ? 3 : 50, C = gram ? 10 : 5;
    float *X = calloc((size_t)M * C, sizeof *X), mean[10], axes[20], var[3];
    unsigned seed = 3;
    double u[2] = {1 / sqrt(5.0), 2 / sqrt(5.0)};
    for (int m = 0; m < M; m++) {
      float k = gram ? (float)(m - 1) * 4 : 8 * frand(&seed);
      X[m * C + 0] = 1 + k * (float)u[0];
      X[m * C + 1] = -2 + k * (float)u[1];
      X[m * C + 3] = 0.1f * (gram ? (m == 1 ? 1 : -0.5f) : frand(&seed));
    }
    CHECK(kd_pca2(X, M, C, mean, axes, var) == 0);
    CHECK_NEAR(axes[0], u[0], 1e-3);
    CHECK_NEAR(axes[1], u[1], 1e-3); /* sign: largest entry positive */
    CHECK(fabs(axes[C + 3]) > 0.99);
    CHECK(var[0] > 100 * var[1] && var[1] > 0);
    CHECK_NEAR(var[0] + var[1], var[2], 1e-4 * var[2]);
    float xy[2];
    kd_pca2_project(X, C, mean, axes, xy);
    CHECK_NEAR(xy[0], (X[0] - mean[0]) * u[0] + (X[1] - mean[1]) * u[1], 1e-3);
    free(X);
  }
  /* one point: a mean, no axes */
  float one[3] = {1, 2, 3}, mean[3], axes[6], var[3];
  CHECK(kd_pca2(one, 1, 3, mean, axes, var) == 0 && mean[2] == 3 && axes[0] == 0 && var[2] == 0);
}

int main(void) {
  test_basic();
  test_cells();
  test_eig_pca();
  return check_status("test_probe_maps");
}
