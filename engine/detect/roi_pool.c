/* Multi-scale RoI Align (see roi_pool.h): the level mapper, then one RoI
 * Align over all levels that keeps the RoI order. */
#include "detect/roi_pool.h"

#include <math.h>

#include "core/ops.h"
#include "detect/boxes.h"

void kd_roi_pool_cfg_default(KdRoiPoolCfg *cfg) {
  *cfg = (KdRoiPoolCfg){.out_size = 7, .sampling_ratio = 2, .canonical_scale = 224.0f, .canonical_level = 4};
}

int kd_roi_pool_cfg_check(const KdRoiPoolCfg *cfg, KdError *err) {
  if (cfg->out_size < 1 || cfg->out_size > 64) return kd_error(err, "roi.pool_size: %d, expected 1..64", cfg->out_size);
  if (cfg->sampling_ratio > 64)
    return kd_error(err, "roi.sampling_ratio: %d, expected at most 64 (<= 0: adaptive)", cfg->sampling_ratio);
  if (!(cfg->canonical_scale > 0.0f && cfg->canonical_scale < 1e6f))
    return kd_error(err, "roi.canonical_scale: %g, expected a positive size in input pixels", cfg->canonical_scale);
  if (cfg->canonical_level < 0 || cfg->canonical_level > 16)
    return kd_error(err, "roi.canonical_level: %d, expected 0..16", cfg->canonical_level);
  return 0;
}

static int log2_exact(int v) {
  int k = 0;
  while (v > 1 && v % 2 == 0) v /= 2, k++;
  return v == 1 ? k : -1;
}

int kd_roi_pool_check_strides(const int *strides, int nlev, KdError *err) {
  if (nlev < 1 || nlev > KD_ROI_MAX_LEVELS) return kd_error(err, "roi pooling: %d levels, expected 1..%d", nlev, KD_ROI_MAX_LEVELS);
  for (int l = 0; l < nlev; l++) {
    if (strides[l] < 1 || log2_exact(strides[l]) < 0)
      return kd_error(err, "roi pooling: level %d has stride %d, expected a power of two", l, strides[l]);
    if (l > 0 && strides[l] != 2 * strides[l - 1])
      return kd_error(err, "roi pooling: level %d has stride %d after %d, expected consecutive levels (twice the stride)", l,
                      strides[l], strides[l - 1]);
  }
  return 0;
}

int kd_roi_pool_level(const KdRoiPoolCfg *cfg, const int *strides, int nlev, const float *box) {
  const int kmin = log2_exact(strides[0]), kmax = kmin + nlev - 1;
  /* float32 throughout, as torchvision's LevelMapper */
  const float s = sqrtf(kd_box_area(box));
  const float k = floorf((float)cfg->canonical_level + log2f(s / cfg->canonical_scale) + 1e-6f);
  const int lv = k < (float)kmin ? kmin : k > (float)kmax ? kmax : (int)k;
  return lv - kmin;
}

KdTensor *kd_roi_pool(KdCtx *c, const KdRoiPoolCfg *cfg, KdTensor *const *feat, const int *strides, int nlev,
                      const float *rois, int nrois, int *levels_out) {
  if (kd_ctx_failed(c)) return NULL;
  KdError err;
  if (kd_roi_pool_cfg_check(cfg, &err) || kd_roi_pool_check_strides(strides, nlev, &err)) {
    kd_ctx_fail(c, "%s", err.msg);
    return NULL;
  }
  if (nrois < 1 || !rois) {
    kd_ctx_fail(c, "roi pooling: %d RoIs (need >= 1)", nrois);
    return NULL;
  }
  int *level = levels_out ? levels_out : kd_ctx_alloc(c, (size_t)nrois * sizeof *level);
  if (!level) return NULL;
  float scales[KD_ROI_MAX_LEVELS];
  for (int l = 0; l < nlev; l++) scales[l] = 1.0f / (float)strides[l];
  for (int r = 0; r < nrois; r++) level[r] = kd_roi_pool_level(cfg, strides, nlev, rois + 5 * (size_t)r + 1);
  return kd_roi_align_levels(c, feat, scales, nlev, rois, level, nrois, cfg->out_size, cfg->out_size, cfg->sampling_ratio,
                             0);
}
