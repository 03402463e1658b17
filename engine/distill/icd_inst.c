/* ICD's instance descriptors (icd_inst.h). The official sampler draws from
 * unseeded numpy/torch generators and a COCO class/size prior; with a
 * class count other than 80 it uses a uniform class prior and the generic
 * size prior below, which is what this file does, from the run's seeded
 * stream. */
#include "distill/icd_inst.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/posembed.h"

int kd_icd_size_bin(float pixels) {
  const float v = 1.44f * logf(pixels > 1e-6f ? pixels : 1e-6f) - 5.0f;
  int b = (int)v; /* trunc toward zero */
  return b < 0 ? 0 : b > KD_ICD_SIZE_BINS - 1 ? KD_ICD_SIZE_BINS - 1 : b;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The generic w/h prior: N(0.2, 0.2), clipped to mean +- 2 std, then to [0.002, 0.7]. */
static float fake_size(KdRng *r) { return clampf(clampf(0.2f + 0.2f * kd_rng_normal(r), -0.2f, 0.6f), 0.002f, 0.7f); }

static int alloc_rows(KdIcdInst *out, int n, int kmax, int din, void *(*alloc)(void *, size_t), void *alloc_user);

/* One instance (normalised box and jittered centre): its descriptor and
 * its regression target. */
static void fill_row(const KdIcdInstCfg *cfg, KdIcdInst *out, size_t row, int label, float x1, float y1, float x2, float y2,
                     float cx, float cy) {
  const int K = cfg->num_classes;
  float *bx = out->box + row * 4, *t = out->target + row * 4, *d = out->desc + row * out->din;
  out->valid[row] = 1;
  out->nvalid++;
  bx[0] = x1, bx[1] = y1, bx[2] = x2, bx[3] = y2;
  out->centre[row * 2] = cx, out->centre[row * 2 + 1] = cy;
  t[0] = cx - x1, t[1] = cy - y1, t[2] = x2 - cx, t[3] = y2 - cy;
  if (label >= 0 && label < K) d[label] = 1.0f;
  kd_pos_sine_1d(d + K, cx, KD_ICD_CENTRE_DIM / 2, 10000.0f);
  kd_pos_sine_1d(d + K + KD_ICD_CENTRE_DIM / 2, cy, KD_ICD_CENTRE_DIM / 2, 10000.0f);
  d[K + KD_ICD_CENTRE_DIM + kd_icd_size_bin((x2 - x1) * (float)cfg->img_w)] = 1.0f;
  d[K + KD_ICD_CENTRE_DIM + KD_ICD_SIZE_BINS + kd_icd_size_bin((y2 - y1) * (float)cfg->img_h)] = 1.0f;
}

int kd_icd_instances(const KdIcdInstCfg *cfg, const KdGtImage *gt, int n, KdRng *r, void *(*alloc)(void *, size_t),
                     void *alloc_user, KdIcdInst *out) {
  int *kimg = alloc(alloc_user, (size_t)(n > 0 ? n : 1) * sizeof *kimg), *nr = alloc(alloc_user, (size_t)(n > 0 ? n : 1) * sizeof *nr);
  if (!kimg || !nr) return -1;
  const int K = cfg->num_classes, din = K + KD_ICD_CENTRE_DIM + 2 * KD_ICD_SIZE_BINS;
  int kmax = 1;
  for (int i = 0; i < n; i++) {
    int g = 0;
    for (int j = 0; j < gt[i].n; j++) g += !(gt[i].crowd && gt[i].crowd[j]);
    const int want = (int)((1.0f + cfg->fake_ratio) * (float)g), cap = g > KD_ICD_MAX_LABELS ? g : KD_ICD_MAX_LABELS;
    nr[i] = g;
    kimg[i] = want < 1 ? 1 : want > cap ? cap : want;
    if (kimg[i] < g) kimg[i] = g;
    if (kimg[i] > kmax) kmax = kimg[i];
  }
  if (alloc_rows(out, n, kmax, din, alloc, alloc_user)) return -1;
  const float W = (float)cfg->img_w, H = (float)cfg->img_h;
  for (int i = 0; i < n; i++) {
    int g = 0;
    for (int j = 0; j < kimg[i]; j++) {
      const size_t row = (size_t)i * kmax + j;
      float x1, y1, x2, y2;
      int label;
      if (j < nr[i]) {
        while (gt[i].crowd && gt[i].crowd[g]) g++;
        const float *b = gt[i].boxes + 4 * g;
        x1 = b[0] / W, y1 = b[1] / H, x2 = b[2] / W, y2 = b[3] / H;
        label = gt[i].labels[g++];
        out->real[row] = 1;
        out->nreal++;
      } else {
        label = (int)kd_rng_below(r, (uint32_t)K);
        const float cx = kd_rng_range(r, 0.03f, 0.97f), cy = kd_rng_range(r, 0.03f, 0.97f);
        const float w = fake_size(r), h = fake_size(r);
        x1 = clampf(cx - 0.5f * w, 0, 1), x2 = clampf(cx + 0.5f * w, 0, 1);
        y1 = clampf(cy - 0.5f * h, 0, 1), y2 = clampf(cy + 0.5f * h, 0, 1);
      }
      const float w = x2 - x1, h = y2 - y1;
      const float jx = kd_rng_range(r, -cfg->jitter, cfg->jitter), jy = kd_rng_range(r, -cfg->jitter, cfg->jitter);
      fill_row(cfg, out, row, label, x1, y1, x2, y2, 0.5f * (x1 + x2) + jx * w, 0.5f * (y1 + y2) + jy * h);
    }
  }
  return 0;
}

static int alloc_rows(KdIcdInst *out, int n, int kmax, int din, void *(*alloc)(void *, size_t), void *alloc_user) {
  const size_t rows = (size_t)n * kmax;
  *out = (KdIcdInst){.n = n, .kmax = kmax, .din = din};
  out->desc = alloc(alloc_user, rows * din * sizeof(float));
  out->target = alloc(alloc_user, rows * 4 * sizeof(float));
  out->box = alloc(alloc_user, rows * 4 * sizeof(float));
  out->centre = alloc(alloc_user, rows * 2 * sizeof(float));
  out->valid = alloc(alloc_user, rows);
  out->real = alloc(alloc_user, rows);
  if (!out->desc || !out->target || !out->box || !out->centre || !out->valid || !out->real) return -1;
  memset(out->desc, 0, rows * din * sizeof(float));
  memset(out->target, 0, rows * 4 * sizeof(float));
  memset(out->box, 0, rows * 4 * sizeof(float));
  memset(out->centre, 0, rows * 2 * sizeof(float));
  memset(out->valid, 0, rows);
  memset(out->real, 0, rows);
  return 0;
}

int kd_icd_instances_given(const KdIcdInstCfg *cfg, const float *rows, int m, int n, void *(*alloc)(void *, size_t),
                           void *alloc_user, KdIcdInst *out, char *err, size_t errlen) {
  const int K = cfg->num_classes;
  int *cnt = alloc(alloc_user, (size_t)(n > 0 ? n : 1) * sizeof *cnt), kmax = 1;
  if (!cnt) return -2;
  memset(cnt, 0, (size_t)(n > 0 ? n : 1) * sizeof *cnt);
  for (int i = 0; i < m; i++) {
    const float *v = rows + (size_t)i * KD_ICD_INST_COLS;
    if (!(v[0] >= 0 && v[0] < n && v[0] == (int)v[0]) || !(v[1] == 0 || v[1] == 1) ||
        !(v[2] >= 0 && v[2] < K && v[2] == (int)v[2]) || !(v[5] >= v[3] && v[6] >= v[4])) {
      snprintf(err, errlen,
               "icd.instances row %d = (%g, %g, %g, %g, %g, %g, %g, ...); expected image 0..%d, real 0 or 1, class 0..%d, "
               "x1 <= x2, y1 <= y2",
               i, v[0], v[1], v[2], v[3], v[4], v[5], v[6], n - 1, K - 1);
      return -1;
    }
    if (++cnt[(int)v[0]] > kmax) kmax = cnt[(int)v[0]];
  }
  if (alloc_rows(out, n, kmax, K + KD_ICD_CENTRE_DIM + 2 * KD_ICD_SIZE_BINS, alloc, alloc_user)) return -2;
  memset(cnt, 0, (size_t)(n > 0 ? n : 1) * sizeof *cnt);
  const float W = (float)cfg->img_w, H = (float)cfg->img_h;
  for (int i = 0; i < m; i++) {
    const float *v = rows + (size_t)i * KD_ICD_INST_COLS;
    const int img = (int)v[0];
    const size_t row = (size_t)img * kmax + cnt[img]++;
    if (v[1] == 1) out->real[row] = 1, out->nreal++;
    fill_row(cfg, out, row, (int)v[2], v[3] / W, v[4] / H, v[5] / W, v[6] / H, v[7] / W, v[8] / H);
  }
  return 0;
}
