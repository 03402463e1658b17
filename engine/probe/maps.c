/* Probe map formulas (see maps.h). */
#include "probe/maps.h"

#include "core/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kd_map_energy(const float *x, int C, int HW, float *out) {
  for (int p = 0; p < HW; p++) {
    double a = 0;
    for (int c = 0; c < C; c++) a += (double)x[(size_t)c * HW + p] * x[(size_t)c * HW + p];
    out[p] = (float)(a / C);
  }
}

void kd_map_gap(const float *s, const float *t, int C, int HW, float *out) {
  for (int p = 0; p < HW; p++) {
    double a = 0;
    for (int c = 0; c < C; c++) {
      double d = (double)s[(size_t)c * HW + p] - t[(size_t)c * HW + p];
      a += d * d;
    }
    out[p] = (float)(a / C);
  }
}

void kd_map_norm(const float *g, int C, int HW, float *out) {
  for (int p = 0; p < HW; p++) {
    double a = 0;
    for (int c = 0; c < C; c++) a += (double)g[(size_t)c * HW + p] * g[(size_t)c * HW + p];
    out[p] = (float)sqrt(a);
  }
}

void kd_map_objectness(const float *z, int A, int HW, float *out) {
  for (int p = 0; p < HW; p++) {
    float m = -INFINITY;
    for (int a = 0; a < A; a++) m = fmaxf(m, z[(size_t)a * HW + p]);
    out[p] = (float)(1.0 / (1.0 + exp(-(double)m))); /* sigmoid is monotone: max first */
  }
}

/* out[i] = n * softmax(v / temp)[i], in place. */
static void scaled_softmax(double *v, int n, float temp, float *out) {
  double mx = -INFINITY, z = 0;
  for (int i = 0; i < n; i++) mx = v[i] > mx ? v[i] : mx;
  for (int i = 0; i < n; i++) z += (v[i] = exp((v[i] - mx) / temp));
  for (int i = 0; i < n; i++) out[i] = (float)(n * v[i] / z);
}

void kd_map_spatial_attn(const float *x, int C, int HW, float temp, float *out) {
  double *g = malloc(sizeof *g * (size_t)HW);
  if (!g) return;
  for (int p = 0; p < HW; p++) {
    double a = 0;
    for (int c = 0; c < C; c++) a += fabs((double)x[(size_t)c * HW + p]);
    g[p] = a / C;
  }
  scaled_softmax(g, HW, temp, out);
  free(g);
}

void kd_map_channel_attn(const float *x, int C, int HW, float temp, float *out) {
  double *g = malloc(sizeof *g * (size_t)C);
  if (!g) return;
  for (int c = 0; c < C; c++) {
    double a = 0;
    for (int p = 0; p < HW; p++) a += fabs((double)x[(size_t)c * HW + p]);
    g[c] = a / HW;
  }
  scaled_softmax(g, C, temp, out);
  free(g);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

int kd_map_box_cells(const float *b, int st, int H, int W, int *x0, int *y0, int *x1, int *y1) {
  /* centre (x+0.5)st in [b0, b2]  <=>  x in [b0/st - 0.5, b2/st - 0.5] */
  int ax = (int)ceil(b[0] / st - 0.5f), bx = (int)floor(b[2] / st - 0.5f);
  int ay = (int)ceil(b[1] / st - 0.5f), by = (int)floor(b[3] / st - 0.5f);
  ax = ax < 0 ? 0 : ax, ay = ay < 0 ? 0 : ay;
  bx = bx > W - 1 ? W - 1 : bx, by = by > H - 1 ? H - 1 : by;
  if (ax > bx || ay > by) {
    float cx = 0.5f * (b[0] + b[2]), cy = 0.5f * (b[1] + b[3]);
    if (cx < 0 || cy < 0 || cx > (float)W * st || cy > (float)H * st) return 0;
    ax = bx = clampi((int)floorf(cx / st), 0, W - 1);
    ay = by = clampi((int)floorf(cy / st), 0, H - 1);
  }
  *x0 = ax, *x1 = bx, *y0 = ay, *y1 = by;
  return (bx - ax + 1) * (by - ay + 1);
}

void kd_map_roi_avg(const float *x, int C, int H, int W, int st, const float *b, float *out) {
  int x0, y0, x1, y1, n = kd_map_box_cells(b, st, H, W, &x0, &y0, &x1, &y1);
  for (int c = 0; c < C; c++) {
    double a = 0;
    if (n)
      for (int y = y0; y <= y1; y++)
        for (int xx = x0; xx <= x1; xx++) a += x[((size_t)c * H + y) * W + xx];
    out[c] = n ? (float)(a / n) : 0.0f;
  }
}

void kd_sym_eig(double *a, int n, double *w, double *v) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) v[i * n + j] = i == j;
  for (int sweep = 0; sweep < 60; sweep++) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-26 * (diag + 1e-300)) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        if (fabs(apq) < 1e-300) continue;
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
        double cs = 1 / sqrt(t * t + 1), sn = t * cs;
        for (int k = 0; k < n; k++) { /* columns p, q */
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = cs * akp - sn * akq;
          a[k * n + q] = sn * akp + cs * akq;
        }
        for (int k = 0; k < n; k++) { /* rows p, q */
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = cs * apk - sn * aqk;
          a[q * n + k] = sn * apk + cs * aqk;
        }
        for (int k = 0; k < n; k++) { /* eigenvectors as rows */
          double vp = v[p * n + k], vq = v[q * n + k];
          v[p * n + k] = cs * vp - sn * vq;
          v[q * n + k] = sn * vp + cs * vq;
        }
      }
  }
  for (int i = 0; i < n; i++) w[i] = a[i * n + i];
  for (int i = 0; i < n; i++) { /* selection sort, descending */
    int b = i;
    for (int j = i + 1; j < n; j++)
      if (w[j] > w[b]) b = j;
    if (b == i) continue;
    double tw = w[i];
    w[i] = w[b], w[b] = tw;
    for (int k = 0; k < n; k++) {
      double tv = v[i * n + k];
      v[i * n + k] = v[b * n + k], v[b * n + k] = tv;
    }
  }
}

int kd_pca2(const float *X, int M, int C, float *mean, float *axes, float *var) {
  memset(axes, 0, sizeof *axes * 2 * (size_t)C);
  memset(var, 0, sizeof *var * 3);
  for (int c = 0; c < C; c++) {
    double a = 0;
    for (int m = 0; m < M; m++) a += X[(size_t)m * C + c];
    mean[c] = M ? (float)(a / M) : 0.0f;
  }
  if (M < 2) return 0;
  /* The smaller of the C x C covariance and the M x M Gram matrix. */
  int gram = M < C, n = gram ? M : C;
  double *a = malloc(sizeof *a * (size_t)n * n * 2 + sizeof *a * (size_t)n), *v = a ? a + (size_t)n * n : NULL,
         *w = v ? v + (size_t)n * n : NULL;
  double *xc = malloc(sizeof *xc * (size_t)M * C);
  if (!a || !xc) {
    free(a), free(xc);
    return -1;
  }
  for (int m = 0; m < M; m++)
    for (int c = 0; c < C; c++) xc[(size_t)m * C + c] = (double)X[(size_t)m * C + c] - mean[c];
  for (int i = 0; i < n; i++)
    for (int j = i; j < n; j++) {
      double s = 0;
      if (gram)
        for (int c = 0; c < C; c++) s += xc[(size_t)i * C + c] * xc[(size_t)j * C + c];
      else
        for (int m = 0; m < M; m++) s += xc[(size_t)m * C + i] * xc[(size_t)m * C + j];
      a[i * n + j] = a[j * n + i] = s / (M - 1);
    }
  double total = 0;
  for (int i = 0; i < n; i++) total += a[i * n + i];
  kd_sym_eig(a, n, w, v);
  var[2] = (float)total;
  for (int k = 0; k < 2 && k < n; k++) {
    if (w[k] <= 1e-12 * (total + 1e-300)) break;
    double *ax = malloc(sizeof *ax * (size_t)C), norm = 0;
    if (!ax) {
      free(a), free(xc);
      return -1;
    }
    for (int c = 0; c < C; c++) {
      double s = 0;
      if (gram) /* axis = Xc^T u / |Xc^T u| */
        for (int m = 0; m < M; m++) s += xc[(size_t)m * C + c] * v[k * n + m];
      else
        s = v[k * n + c];
      ax[c] = s;
      norm += s * s;
    }
    norm = sqrt(norm);
    int big = 0;
    for (int c = 1; c < C; c++)
      if (fabs(ax[c]) > fabs(ax[big])) big = c;
    double sign = ax[big] < 0 ? -1 : 1;
    for (int c = 0; c < C; c++) axes[(size_t)k * C + c] = (float)(sign * ax[c] / norm);
    var[k] = (float)w[k];
    free(ax);
  }
  free(a), free(xc);
  return 0;
}

void kd_pca2_project(const float *v, int C, const float *mean, const float *axes, float *xy) {
  for (int k = 0; k < 2; k++) {
    double s = 0;
    for (int c = 0; c < C; c++) s += ((double)v[c] - mean[c]) * axes[(size_t)k * C + c];
    xy[k] = (float)s;
  }
}

static double cross_energy(const float *x, int C, int HW, int u, int v) {
  double d = 0.0;
  for (int c = 0; c < C; c++) d += (double)x[(size_t)c * HW + u] * x[(size_t)c * HW + v];
  return d;
}

void kd_map_cross_relation(const float *x, int C, int H, int W, int h, int w, float tau, float *out) {
  const int L = H + W - 1, HW = H * W, u = h * W + w;
  const double k = 1.0 / (sqrt((double)C) * tau);
  double mx = -INFINITY, sum = 0.0;
  for (int pass = 0; pass < 3; pass++)
    for (int j = 0; j < L; j++) {
      int ph, pw;
      kd_cc_pixel(H, W, h, w, j, &ph, &pw);
      const double e = cross_energy(x, C, HW, u, ph * W + pw) * k;
      if (pass == 0) mx = fmax(mx, e);
      else if (pass == 1) sum += exp(e - mx);
      else out[j] = (float)(exp(e - mx) / sum);
    }
}
