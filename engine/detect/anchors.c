/* Anchor generation (see anchors.h for layout and conventions). */
#include "detect/anchors.h"

#include <math.h>
#include <stdlib.h>

void kd_anchor_cfg_default(KdAnchorCfg *cfg) {
  *cfg = (KdAnchorCfg){.nlevels = 3, .size_mult = 4.0f, .nscales = 3, .nratios = 3, .offset = 0.0f,
                       .torchvision_round = 1};
  for (int l = 0; l < KD_ANCHOR_MAX_LEVELS; l++) cfg->strides[l] = 8 << l;
  cfg->scales[0] = 1.0f;
  cfg->scales[1] = (float)pow(2.0, 1.0 / 3.0);
  cfg->scales[2] = (float)pow(2.0, 2.0 / 3.0);
  cfg->ratios[0] = 0.5f;
  cfg->ratios[1] = 1.0f;
  cfg->ratios[2] = 2.0f;
}

int kd_anchor_cfg_check(const KdAnchorCfg *cfg, KdError *err) {
  if (cfg->nlevels < 1 || cfg->nlevels > KD_ANCHOR_MAX_LEVELS)
    return kd_error(err, "anchor.levels: %d outside 1..%d", cfg->nlevels, KD_ANCHOR_MAX_LEVELS);
  for (int l = 0; l < cfg->nlevels; l++)
    if (cfg->strides[l] < 1 || cfg->strides[l] > 4096)
      return kd_error(err, "anchor.strides[%d]: %d outside 1..4096", l, cfg->strides[l]);
  if (!(cfg->size_mult > 0.0f && cfg->size_mult <= 64.0f))
    return kd_error(err, "anchor.size_mult: %g, expected a number in (0, 64]", cfg->size_mult);
  for (int l = 0; l < cfg->nlevels; l++)
    if (!(cfg->level_size[l] >= 0.0f && cfg->level_size[l] <= 4096.0f))
      return kd_error(err, "anchor.sizes[%d]: %g, expected a size in (0, 4096] px (0: size_mult x stride)", l,
                      cfg->level_size[l]);
  if (cfg->nscales < 1 || cfg->nscales > KD_ANCHOR_MAX_SCALES)
    return kd_error(err, "anchor.scales: %d scales, expected 1..%d", cfg->nscales, KD_ANCHOR_MAX_SCALES);
  if (cfg->nratios < 1 || cfg->nratios > KD_ANCHOR_MAX_RATIOS)
    return kd_error(err, "anchor.ratios: %d ratios, expected 1..%d", cfg->nratios, KD_ANCHOR_MAX_RATIOS);
  for (int i = 0; i < cfg->nscales; i++)
    if (!(cfg->scales[i] > 0.0f && cfg->scales[i] < 100.0f))
      return kd_error(err, "anchor.scales[%d]: %g, expected a number in (0, 100)", i, cfg->scales[i]);
  for (int i = 0; i < cfg->nratios; i++)
    if (!(cfg->ratios[i] > 0.0f && cfg->ratios[i] < 100.0f))
      return kd_error(err, "anchor.ratios[%d]: %g, expected a number in (0, 100)", i, cfg->ratios[i]);
  if (!(cfg->offset >= 0.0f && cfg->offset <= 1.0f))
    return kd_error(err, "anchor.offset: %g, expected a number in [0, 1]", cfg->offset);
  return 0;
}

int kd_anchors_per_loc(const KdAnchorCfg *cfg) { return cfg->nscales * cfg->nratios; }

int kd_anchors_total(const KdAnchorCfg *cfg, const int *hw) {
  long total = 0;
  for (int l = 0; l < cfg->nlevels; l++) total += (long)hw[2 * l] * hw[2 * l + 1];
  total *= kd_anchors_per_loc(cfg);
  return total > 0x7fffffffL ? -1 : (int)total;
}

float kd_anchor_base_size(const KdAnchorCfg *cfg, int l) {
  return cfg->level_size[l] > 0.0f ? cfg->level_size[l] : cfg->size_mult * (float)cfg->strides[l];
}

/* Half-extents of level l's A shapes. torchvision computes in float32:
 * ws = size / sqrt(ratio), hs = size * sqrt(ratio), then round(+-ws/2). */
static void base_shapes(const KdAnchorCfg *cfg, int l, float *half_w, float *half_h) {
  const int stride = cfg->strides[l];
  const float given = cfg->level_size[l];
  for (int r = 0; r < cfg->nratios; r++) {
    float hr = sqrtf(cfg->ratios[r]), wr = 1.0f / hr;
    for (int k = 0; k < cfg->nscales; k++) {
      float size = given > 0.0f ? given * cfg->scales[k] : cfg->size_mult * (float)stride * cfg->scales[k];
      int a = r * cfg->nscales + k;
      if (cfg->torchvision_round) {
        /* (x, int(x * 2 ** (1/3)), ...) in torchvision: sizes truncate. The
         * base size itself is computed in double, as Python does. Sizes
         * given per level are used as given. */
        if (given <= 0.0f) size = (float)(int)((double)cfg->size_mult * stride * (double)cfg->scales[k] + 1e-9);
        half_w[a] = nearbyintf(wr * size / 2.0f);
        half_h[a] = nearbyintf(hr * size / 2.0f);
      } else {
        half_w[a] = wr * size / 2.0f;
        half_h[a] = hr * size / 2.0f;
      }
    }
  }
}

int kd_anchors_generate(const KdAnchorCfg *cfg, const int *hw, float *out, int *level_offset, KdError *err) {
  if (kd_anchor_cfg_check(cfg, err)) return -1;
  int A = kd_anchors_per_loc(cfg);
  float half_w[KD_ANCHOR_MAX_SCALES * KD_ANCHOR_MAX_RATIOS], half_h[KD_ANCHOR_MAX_SCALES * KD_ANCHOR_MAX_RATIOS];
  size_t idx = 0;
  for (int l = 0; l < cfg->nlevels; l++) {
    int H = hw[2 * l], W = hw[2 * l + 1], s = cfg->strides[l];
    if (H < 1 || W < 1) return kd_error(err, "anchors: level %d has size %dx%d", l, H, W);
    if (level_offset) level_offset[l] = (int)idx;
    base_shapes(cfg, l, half_w, half_h);
    for (int y = 0; y < H; y++) {
      float cy = ((float)y + cfg->offset) * (float)s;
      for (int x = 0; x < W; x++) {
        float cx = ((float)x + cfg->offset) * (float)s;
        for (int a = 0; a < A; a++, idx++) {
          float *b = out + 4 * idx;
          b[0] = cx - half_w[a];
          b[1] = cy - half_h[a];
          b[2] = cx + half_w[a];
          b[3] = cy + half_h[a];
        }
      }
    }
  }
  if (level_offset) level_offset[cfg->nlevels] = (int)idx;
  return 0;
}

int kd_anchor_parse_list(const char *key, const char *text, float *out, int max, KdError *err) {
  int n = 0;
  const char *p = text;
  for (;;) {
    char *end;
    double v = strtod(p, &end);
    if (end == p || !(v > 0.0 && v < 1e6))
      return kd_error(err, "%s: '%s' is not a comma-separated list of positive numbers", key, text);
    if (n == max) return kd_error(err, "%s: more than %d values in '%s'", key, max, text);
    out[n++] = (float)v;
    while (*end == ' ') end++;
    if (!*end) return n;
    if (*end != ',') return kd_error(err, "%s: unexpected '%c' in '%s', expected a comma", key, *end, text);
    p = end + 1;
  }
}
