/* Forward values against naive reference loops written here: conv2d,
 * batch norm (train, eval, running-stat update), max / avg pooling,
 * nearest upsampling (PyTorch's index rule), softmax stability, and the
 * reductions. Sizes are large enough to take the parallel paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"

static KdRng rng;

static KdTensor *randt(KdCtx *c, int n, int ch, int h, int w) {
  KdTensor *t = kd_tensor4(c, n, ch, h, w);
  for (size_t i = 0; i < t->numel; i++) t->data[i] = kd_rng_normal(&rng);
  return t;
}

/* Largest |a - b| / (1 + |b|). */
static double max_err(const float *a, const double *b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs(a[i] - b[i]) / (1.0 + fabs(b[i]));
    if (!(e <= m)) m = e; /* NaN sticks */
  }
  return m;
}

static void conv_ref(KdCtx *c, int n, int cin, int h, int w, int cout, int k, KdConvCfg cfg, int bias) {
  int st = cfg.stride ? cfg.stride : 1, dil = cfg.dilation ? cfg.dilation : 1, g = cfg.groups ? cfg.groups : 1;
  KdTensor *x = randt(c, n, cin, h, w), *wt = randt(c, cout, cin / g, k, k), *b = bias ? randt(c, 1, 1, 1, cout) : NULL;
  KdTensor *y = kd_conv2d(c, x, wt, b, cfg);
  CHECK_MSG(y != NULL, "%s", kd_ctx_error(c));
  if (!y) return;
  int ho = (h + 2 * cfg.pad - dil * (k - 1) - 1) / st + 1, wo = (w + 2 * cfg.pad - dil * (k - 1) - 1) / st + 1;
  CHECK(y->shape[2] == ho && y->shape[3] == wo && y->shape[1] == cout);
  double *ref = calloc(y->numel, sizeof(double));
  int cig = cin / g, cog = cout / g;
  for (int ni = 0; ni < n; ni++)
    for (int co = 0; co < cout; co++)
      for (int oh = 0; oh < ho; oh++)
        for (int ow = 0; ow < wo; ow++) {
          double s = b ? b->data[co] : 0.0;
          for (int ci = 0; ci < cig; ci++)
            for (int ki = 0; ki < k; ki++)
              for (int kj = 0; kj < k; kj++) {
                int ih = oh * st - cfg.pad + ki * dil, iw = ow * st - cfg.pad + kj * dil;
                if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                int cx = co / cog * cig + ci;
                s += (double)x->data[((size_t)(ni * cin + cx) * h + ih) * w + iw] *
                     wt->data[((size_t)(co * cig + ci) * k + ki) * k + kj];
              }
          ref[((size_t)(ni * cout + co) * ho + oh) * wo + ow] = s;
        }
  double e = max_err(y->data, ref, y->numel);
  /* float GEMM sums of up to 144 products of N(0,1) values: ~1e-5 relative */
  CHECK_MSG(e < 5e-5, "conv %dx%d s%d p%d d%d g%d: max rel err %.3g", k, k, st, cfg.pad, dil, g, e);
  free(ref);
}

static void bn_ref(KdCtx *c, int training) {
  const int n = 8, ch = 5, h = 24, w = 24; /* > KD_PAR_MIN values: parallel path */
  const size_t sp = (size_t)h * w, m = n * sp;
  KdTensor *x = randt(c, n, ch, h, w), *gamma = randt(c, 1, 1, 1, ch), *beta = randt(c, 1, 1, 1, ch);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = 3.0f + 2.0f * x->data[i]; /* mean 3, std 2 */
  float rm[5] = {0.1f, 0.2f, -0.3f, 0.4f, 0.5f}, rv[5] = {1.0f, 2.0f, 0.5f, 1.5f, 0.8f}, rm0[5], rv0[5];
  memcpy(rm0, rm, sizeof rm);
  memcpy(rv0, rv, sizeof rv);
  KdTensor *trm = kd_tensor_wrap(c, rm, 1, &ch), *trv = kd_tensor_wrap(c, rv, 1, &ch);
  const float mom = 0.1f, eps = 1e-5f;
  KdTensor *y = kd_batchnorm(c, x, gamma, beta, trm, trv, training, mom, eps);
  CHECK_MSG(y != NULL, "%s", kd_ctx_error(c));
  if (!y) return;
  double *ref = malloc(y->numel * sizeof(double));
  for (int ci = 0; ci < ch; ci++) {
    double mean = 0.0, var = 0.0;
    for (int ni = 0; ni < n; ni++)
      for (size_t i = 0; i < sp; i++) mean += x->data[(size_t)(ni * ch + ci) * sp + i];
    mean /= (double)m;
    for (int ni = 0; ni < n; ni++)
      for (size_t i = 0; i < sp; i++) {
        double d = x->data[(size_t)(ni * ch + ci) * sp + i] - mean;
        var += d * d;
      }
    double bvar = var / (double)m, uvar = var / (double)(m - 1);
    if (training) {
      CHECK_NEAR(rm[ci], (1.0 - mom) * rm0[ci] + mom * mean, 1e-5);
      CHECK_NEAR(rv[ci], (1.0 - mom) * rv0[ci] + mom * uvar, 1e-5);
    } else {
      CHECK(rm[ci] == rm0[ci] && rv[ci] == rv0[ci]);
      mean = rm0[ci];
      bvar = rv0[ci];
    }
    for (int ni = 0; ni < n; ni++)
      for (size_t i = 0; i < sp; i++) {
        size_t o = (size_t)(ni * ch + ci) * sp + i;
        ref[o] = (x->data[o] - mean) / sqrt(bvar + eps) * gamma->data[ci] + beta->data[ci];
      }
  }
  double e = max_err(y->data, ref, y->numel);
  CHECK_MSG(e < 2e-6, "batchnorm training=%d: max rel err %.3g", training, e);
  free(ref);
}

static void pool_ref(KdCtx *c, int avg, int k, int st, int pad, int h, int w) {
  const int n = 3, ch = 4;
  KdTensor *x = randt(c, n, ch, h, w);
  KdTensor *y = avg ? kd_avgpool2d(c, x, k, st, pad) : kd_maxpool2d(c, x, k, st, pad);
  CHECK_MSG(y != NULL, "%s", kd_ctx_error(c));
  if (!y) return;
  int ho = (h + 2 * pad - k) / st + 1, wo = (w + 2 * pad - k) / st + 1;
  CHECK(y->shape[2] == ho && y->shape[3] == wo);
  double *ref = malloc(y->numel * sizeof(double));
  for (int p = 0; p < n * ch; p++)
    for (int oh = 0; oh < ho; oh++)
      for (int ow = 0; ow < wo; ow++) {
        double best = -INFINITY, sum = 0.0;
        for (int i = 0; i < k; i++)
          for (int j = 0; j < k; j++) {
            int ih = oh * st - pad + i, iw = ow * st - pad + j;
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue; /* zero for avg, -inf for max */
            double v = x->data[((size_t)p * h + ih) * w + iw];
            sum += v;
            if (v > best) best = v;
          }
        ref[((size_t)p * ho + oh) * wo + ow] = avg ? sum / (k * k) : best;
      }
  double e = max_err(y->data, ref, y->numel);
  CHECK_MSG(e < 1e-6, "%s k%d s%d p%d: max rel err %.3g", avg ? "avgpool" : "maxpool", k, st, pad, e);
  free(ref);
}

/* Max pool's choice of maximum, through its gradient: with many ties
 * (values 0..3) and some NaN, every output's gradient must land where
 * PyTorch's rule puts it (first maximum in row-major order; a NaN wins
 * over numbers and a later NaN over an earlier one). Widths cover the
 * vector path of 3x3/2 (16 columns at a time, a partial last block) and
 * its scalar edges. */
static void maxpool_argmax_ref(KdCtx *c, int h, int w) {
  const int n = 2, ch = 3, k = 3, st = 2, pad = 1;
  KdTensor *x = randt(c, n, ch, h, w);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = i % 97 == 13 ? NAN : floorf(fabsf(x->data[i]) * 2.0f);
  x->requires_grad = 1;
  int g = kd_ctx_set_grad(c, 1);
  KdTensor *y = kd_maxpool2d(c, x, k, st, pad);
  CHECK_MSG(y != NULL, "%s", kd_ctx_error(c));
  if (!y) return;
  memset(kd_grad(c, y), 0, y->numel * sizeof(float));
  for (size_t i = 0; i < y->numel; i++) y->grad[i] = 1.0f;
  kd_grad(c, x);
  y->node->backward(c, y->node);
  kd_ctx_set_grad(c, g);
  int ho = y->shape[2], wo = y->shape[3], bad_y = 0, bad_g = 0;
  float *count = calloc(x->numel, sizeof(float));
  for (int p = 0; p < n * ch; p++)
    for (int oh = 0; oh < ho; oh++)
      for (int ow = 0; ow < wo; ow++) {
        float best = -INFINITY;
        int bi = -1;
        for (int i = 0; i < k; i++)
          for (int j = 0; j < k; j++) {
            int ih = oh * st - pad + i, iw = ow * st - pad + j;
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
            float v = x->data[((size_t)p * h + ih) * w + iw];
            if (bi < 0 || v > best || isnan(v)) best = v, bi = ih * w + iw;
          }
        count[(size_t)p * h * w + bi] += 1.0f;
        float got = y->data[((size_t)p * ho + oh) * wo + ow];
        bad_y += !(got == best || (isnan(got) && isnan(best)));
      }
  for (size_t i = 0; i < x->numel; i++) bad_g += x->grad[i] != count[i];
  CHECK_MSG(bad_y == 0 && bad_g == 0, "maxpool 3x3/2 on %dx%d: %d values, %d gradient elements differ", h, w, bad_y, bad_g);
  free(count);
}

/* Source rows PyTorch's F.interpolate(mode='nearest', size=...) picks,
 * worked out by hand from its float rule. */
static void upsample_ref(KdCtx *c) {
  static const struct {
    int in, out, src[9];
  } cases[] = {
      {3, 5, {0, 0, 1, 1, 2}},
      {3, 7, {0, 0, 0, 1, 1, 2, 2}},
      {4, 8, {0, 0, 1, 1, 2, 2, 3, 3}},
      {5, 3, {0, 1, 3}},
      {2, 3, {0, 0, 1}},
      {4, 9, {0, 0, 0, 1, 1, 2, 2, 3, 3}},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    int in = cases[t].in, out = cases[t].out;
    KdTensor *x = kd_tensor4(c, 1, 1, in, 1);
    for (int i = 0; i < in; i++) x->data[i] = (float)i;
    KdTensor *y = kd_upsample_nearest_to(c, x, out, 1);
    CHECK(y && y->shape[2] == out);
    for (int i = 0; y && i < out; i++) CHECK_MSG(y->data[i] == (float)cases[t].src[i], "%d->%d at %d", in, out, i);
  }
  KdTensor *x = randt(c, 2, 3, 4, 5), *y = kd_upsample_nearest(c, x, 3);
  CHECK(y && y->shape[2] == 12 && y->shape[3] == 15);
  int bad = 0;
  for (int p = 0; y && p < 6; p++)
    for (int i = 0; i < 12; i++)
      for (int j = 0; j < 15; j++) bad += y->data[(p * 12 + i) * 15 + j] != x->data[(p * 4 + i / 3) * 5 + j / 3];
  CHECK(bad == 0);
}

static void softmax_ref(KdCtx *c) {
  /* Huge logits must not overflow; rows sum to 1; log_softmax = log(softmax). */
  KdTensor *x = randt(c, 2, 7, 3, 3);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = x->data[i] * 30.0f + 1000.0f;
  KdTensor *s = kd_softmax(c, x, 1), *ls = kd_log_softmax(c, x, 1);
  CHECK(s && ls);
  if (!s || !ls) return;
  for (int n = 0; n < 2; n++)
    for (int p = 0; p < 9; p++) {
      double sum = 0.0, mx = -INFINITY, lse = 0.0;
      for (int ci = 0; ci < 7; ci++) mx = fmax(mx, x->data[(n * 7 + ci) * 9 + p]);
      for (int ci = 0; ci < 7; ci++) lse += exp(x->data[(n * 7 + ci) * 9 + p] - mx);
      lse = mx + log(lse);
      for (int ci = 0; ci < 7; ci++) {
        size_t o = (size_t)(n * 7 + ci) * 9 + p;
        sum += s->data[o];
        CHECK_NEAR(s->data[o], exp(x->data[o] - lse), 1e-6);
        CHECK_NEAR(ls->data[o], x->data[o] - lse, 1e-4);
      }
      CHECK_NEAR(sum, 1.0, 1e-5);
    }
}

static void reduce_ref(KdCtx *c) {
  KdTensor *x = randt(c, 4, 16, 32, 33); /* parallel path */
  KdTensor *s = kd_sum(c, x, 1u << 0 | 1u << 2), *m = kd_mean(c, x, 1u << 1 | 1u << 3), *all = kd_sum_all(c, x);
  CHECK(s && m && all);
  if (!s || !m || !all) return;
  CHECK(s->ndim == 4 && s->shape[0] == 1 && s->shape[1] == 16 && s->shape[2] == 1 && s->shape[3] == 33);
  CHECK(m->shape[0] == 4 && m->shape[1] == 1 && m->shape[2] == 32 && m->shape[3] == 1);
  double tot = 0.0;
  for (int ci = 0; ci < 16; ci++)
    for (int wi = 0; wi < 33; wi++) {
      double r = 0.0;
      for (int n = 0; n < 4; n++)
        for (int h = 0; h < 32; h++) r += x->data[((n * 16 + ci) * 32 + h) * 33 + wi];
      CHECK_NEAR(s->data[ci * 33 + wi], r, 1e-4);
      tot += r;
    }
  for (int n = 0; n < 4; n++)
    for (int h = 0; h < 32; h++) {
      double r = 0.0;
      for (int ci = 0; ci < 16; ci++)
        for (int wi = 0; wi < 33; wi++) r += x->data[((n * 16 + ci) * 32 + h) * 33 + wi];
      CHECK_NEAR(m->data[n * 32 + h], r / (16 * 33), 1e-6);
    }
  CHECK_NEAR(all->data[0], tot, 1e-3);
}

int main(void) {
  kd_rng_seed(&rng, 42, 1);
  KdCtx *c = kd_ctx_new(1 << 20);
  conv_ref(c, 2, 3, 9, 7, 4, 3, (KdConvCfg){.stride = 2, .pad = 1}, 1);
  conv_ref(c, 1, 4, 8, 8, 6, 3, (KdConvCfg){.pad = 2, .dilation = 2, .groups = 2}, 0);
  conv_ref(c, 2, 6, 7, 7, 6, 3, (KdConvCfg){.stride = 2, .pad = 1, .groups = 6}, 1);
  conv_ref(c, 2, 8, 5, 6, 5, 1, (KdConvCfg){0}, 1);
  conv_ref(c, 2, 8, 5, 6, 5, 1, (KdConvCfg){.stride = 2}, 0);
  conv_ref(c, 1, 3, 17, 17, 8, 7, (KdConvCfg){.stride = 2, .pad = 3}, 0);
  conv_ref(c, 8, 16, 16, 16, 16, 3, (KdConvCfg){.pad = 1}, 1); /* parallel im2col */
  bn_ref(c, 1);
  bn_ref(c, 0);
  pool_ref(c, 0, 3, 2, 1, 9, 8);
  pool_ref(c, 0, 2, 2, 0, 7, 7);
  pool_ref(c, 1, 3, 2, 1, 9, 8);
  pool_ref(c, 1, 3, 1, 1, 5, 6);
  pool_ref(c, 1, 2, 2, 0, 7, 7);
  pool_ref(c, 0, 3, 2, 1, 64, 64);
  maxpool_argmax_ref(c, 64, 64);
  maxpool_argmax_ref(c, 9, 70);
  maxpool_argmax_ref(c, 5, 3);
  maxpool_argmax_ref(c, 7, 35);
  maxpool_argmax_ref(c, 4, 2);
  upsample_ref(c);
  softmax_ref(c);
  reduce_ref(c);
  CHECK_MSG(!kd_ctx_failed(c), "%s", kd_ctx_error(c));
  kd_ctx_free(c);
  return check_status("forward_ref");
}
