/* RoI Align (torchvision.ops.roi_align): each RoI's bins average a grid of
 * bilinear samples of its image's feature map.
 *
 * The sample positions are separable: a sample's row depends on (bin row,
 * grid row) only and its column on (bin column, grid column), so each RoI
 * keeps one tap table per axis (the two neighbours and their weights)
 * instead of one entry per sample. The tables live in the arena and serve
 * the backward, which never reads the caller's RoI array.
 *
 * Forward runs over (RoI, channel) output planes. Backward runs over
 * (level, image, channel) input planes, each adding the bins of the RoIs
 * that pool from it in RoI order: no two threads write one gradient element, no atomics, and
 * the sums do not depend on the number of threads. */
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/parallel.h"

/* Largest sampling grid per bin side, so an absurd RoI fails instead of
 * sampling for hours (torchvision has no limit). */
#define KD_ROI_MAX_GRID 1024

/* One coordinate of a sample: neighbours lo, hi and their weights
 * (l for hi, h = 1 - l for lo); lo < 0 when the sample is off the map. */
typedef struct {
  int lo, hi;
  float l, h;
} Tap;

typedef struct {
  int lev, img, gh, gw;
  float count;   /* samples averaged per bin (>= 1) */
  size_t ty, tx; /* first tap of this RoI's row / column tables */
} RoiGeom;

typedef struct {
  int L, N, C, R, oh, ow;
  int H[KD_ROI_MAX_LEVELS], W[KD_ROI_MAX_LEVELS];
  const RoiGeom *g;
  const Tap *taps;
  const int *order; /* RoI indices grouped by (level, image), in RoI order */
  const int *first; /* [L*N + 1]: group q's RoIs are order[first[q] .. first[q+1]) */
} RoiSaved;

/* torchvision's bilinear_interpolate rules for one axis of size S. */
static Tap make_tap(float v, int S) {
  Tap t = {-1, -1, 0.0f, 0.0f};
  if (!(v >= -1.0f && v <= (float)S)) return t;
  if (v <= 0.0f) v = 0.0f;
  t.lo = (int)v;
  if (t.lo >= S - 1) {
    t.lo = t.hi = S - 1;
    v = (float)t.lo;
  } else {
    t.hi = t.lo + 1;
  }
  t.l = v - (float)t.lo;
  t.h = 1.0f - t.l;
  return t;
}

/* Taps of one axis: bins p in [0, out), grid i in [0, grid). */
static void axis_taps(Tap *t, float start, float bin, int out, int grid, int S) {
  for (int p = 0; p < out; p++)
    for (int i = 0; i < grid; i++) t[p * grid + i] = make_tap(start + (float)p * bin + ((float)i + 0.5f) * bin / (float)grid, S);
}

/* The RoI on the map, ext = {x start, y start, bin width, bin height},
 * and its grid; -1 with the ctx error. */
static int roi_geometry(KdCtx *c, const float *roi, int r, int N, float scale, int oh, int ow, int sampling, int aligned,
                        float ext[4], RoiGeom *g) {
  for (int k = 0; k < 5; k++)
    if (!isfinite(roi[k])) {
      kd_ctx_fail(c, "roi_align: RoI %d has a non-finite value %g at column %d", r, roi[k], k);
      return -1;
    }
  if (roi[0] < 0.0f || roi[0] >= (float)N || roi[0] != floorf(roi[0])) {
    kd_ctx_fail(c, "roi_align: RoI %d names image %g, expected an integer in 0..%d", r, roi[0], N - 1);
    return -1;
  }
  const float off = aligned ? 0.5f : 0.0f;
  for (int k = 0; k < 4; k++) ext[k] = roi[1 + k] * scale - off;
  float rw = ext[2] - ext[0], rh = ext[3] - ext[1];
  if (!aligned) { /* torchvision: malformed RoIs count as 1x1 */
    rw = fmaxf(rw, 1.0f);
    rh = fmaxf(rh, 1.0f);
  }
  ext[2] = rw / (float)ow;
  ext[3] = rh / (float)oh;
  float gh = sampling > 0 ? (float)sampling : ceilf(rh / (float)oh);
  float gw = sampling > 0 ? (float)sampling : ceilf(rw / (float)ow);
  if (gh > KD_ROI_MAX_GRID || gw > KD_ROI_MAX_GRID) {
    kd_ctx_fail(c, "roi_align: RoI %d (%g,%g,%g,%g) needs a %gx%g sampling grid per bin (at most %d a side)", r, roi[1],
                roi[2], roi[3], roi[4], gh, gw, KD_ROI_MAX_GRID);
    return -1;
  }
  g->img = (int)roi[0];
  g->gh = gh > 0.0f ? (int)gh : 0; /* a negative aligned RoI samples nothing */
  g->gw = gw > 0.0f ? (int)gw : 0;
  g->count = g->gh * g->gw > 0 ? (float)(g->gh * g->gw) : 1.0f;
  return 0;
}

static void roi_align_backward(KdCtx *c, KdNode *node) {
  const RoiSaved *s = node->saved;
  float *gx[KD_ROI_MAX_LEVELS];
  for (int l = 0; l < s->L; l++) gx[l] = node->in[l]->requires_grad ? kd_grad(c, node->in[l]) : NULL;
  const float *gy = node->out->grad;
  const int planes = s->L * s->N * s->C;
  const size_t op = (size_t)s->oh * s->ow;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++) {
    const int q = p / s->C, ch = p % s->C, l = q / s->N, W = s->W[l];
    if (!gx[l]) continue;
    float *g = gx[l] + ((size_t)(q % s->N) * s->C + ch) * s->H[l] * W;
    for (int k = s->first[q]; k < s->first[q + 1]; k++) {
      const int r = s->order[k];
      const RoiGeom *rg = &s->g[r];
      const Tap *ty = s->taps + rg->ty, *tx = s->taps + rg->tx;
      const float *gr = gy + ((size_t)r * s->C + ch) * op;
      for (int ph = 0; ph < s->oh; ph++)
        for (int pw = 0; pw < s->ow; pw++) {
          const float go = gr[ph * s->ow + pw];
          for (int iy = 0; iy < rg->gh; iy++) {
            const Tap a = ty[ph * rg->gh + iy];
            if (a.lo < 0) continue;
            float *rlo = g + (size_t)a.lo * W, *rhi = g + (size_t)a.hi * W;
            for (int ix = 0; ix < rg->gw; ix++) {
              const Tap b = tx[pw * rg->gw + ix];
              if (b.lo < 0) continue;
              rlo[b.lo] += go * (a.h * b.h) / rg->count;
              rlo[b.hi] += go * (a.h * b.l) / rg->count;
              rhi[b.lo] += go * (a.l * b.h) / rg->count;
              rhi[b.hi] += go * (a.l * b.l) / rg->count;
            }
          }
        }
    }
  }
}

/* Output plane (RoI r, channel ch). */
static void roi_plane(const RoiSaved *s, KdTensor *const *feats, int r, int ch, float *y) {
  const RoiGeom *rg = &s->g[r];
  const Tap *ty = s->taps + rg->ty, *tx = s->taps + rg->tx;
  const int W = s->W[rg->lev];
  const float *xp = feats[rg->lev]->data + ((size_t)rg->img * s->C + ch) * s->H[rg->lev] * W;
  for (int ph = 0; ph < s->oh; ph++)
    for (int pw = 0; pw < s->ow; pw++) {
      float acc = 0.0f;
      for (int iy = 0; iy < rg->gh; iy++) {
        const Tap a = ty[ph * rg->gh + iy];
        if (a.lo < 0) continue;
        const float *rlo = xp + (size_t)a.lo * W, *rhi = xp + (size_t)a.hi * W;
        for (int ix = 0; ix < rg->gw; ix++) {
          const Tap b = tx[pw * rg->gw + ix];
          if (b.lo < 0) continue;
          acc += (a.h * b.h) * rlo[b.lo] + (a.h * b.l) * rlo[b.hi] + (a.l * b.h) * rhi[b.lo] + (a.l * b.l) * rhi[b.hi];
        }
      }
      y[ph * s->ow + pw] = acc / rg->count;
    }
}

/* RoI geometry, tap tables and the (level, image) order, in the arena. */
static int roi_tables(KdCtx *c, RoiSaved *s, const float *rois, const int *level, const float *scales, int sampling,
                      int aligned) {
  const int groups = s->L * s->N;
  RoiGeom *g = kd_ctx_alloc(c, (size_t)s->R * sizeof *g);
  float(*ext)[4] = kd_ctx_alloc(c, (size_t)s->R * sizeof *ext);
  int *order = kd_ctx_alloc(c, ((size_t)s->R + 2 * groups + 1) * sizeof *order);
  if (!g || !ext || !order) return -1;
  size_t ntaps = 0;
  for (int r = 0; r < s->R; r++) {
    const int l = level ? level[r] : 0;
    if (l < 0 || l >= s->L) {
      kd_ctx_fail(c, "roi_align: RoI %d has level %d, expected 0..%d", r, l, s->L - 1);
      return -1;
    }
    if (roi_geometry(c, rois + 5 * (size_t)r, r, s->N, scales[l], s->oh, s->ow, sampling, aligned, ext[r], &g[r]))
      return -1;
    g[r].lev = l;
    g[r].ty = ntaps;
    ntaps += (size_t)s->oh * g[r].gh;
    g[r].tx = ntaps;
    ntaps += (size_t)s->ow * g[r].gw;
  }
  Tap *taps = kd_ctx_alloc(c, (ntaps ? ntaps : 1) * sizeof *taps);
  if (!taps) return -1;
  for (int r = 0; r < s->R; r++) {
    axis_taps(taps + g[r].ty, ext[r][1], ext[r][3], s->oh, g[r].gh, s->H[g[r].lev]);
    axis_taps(taps + g[r].tx, ext[r][0], ext[r][2], s->ow, g[r].gw, s->W[g[r].lev]);
  }
  /* counting sort by group, stable: first[] are the group starts, next[] the cursors */
  int *first = order + s->R, *next = first + groups + 1;
  memset(first, 0, ((size_t)groups + 1) * sizeof *first);
  for (int r = 0; r < s->R; r++) first[g[r].lev * s->N + g[r].img + 1]++;
  for (int q = 0; q < groups; q++) first[q + 1] += first[q];
  memcpy(next, first, (size_t)groups * sizeof *next);
  for (int r = 0; r < s->R; r++) order[next[g[r].lev * s->N + g[r].img]++] = r;
  s->g = g, s->taps = taps, s->order = order, s->first = first;
  return 0;
}

KdTensor *kd_roi_align_levels(KdCtx *c, KdTensor *const *feats, const float *scales, int nlev, const float *rois,
                              const int *level, int nrois, int out_h, int out_w, int sampling_ratio, int aligned) {
  if (nlev < 1 || nlev > KD_ROI_MAX_LEVELS || !feats || !scales) {
    kd_ctx_fail(c, "roi_align: %d levels (1..%d allowed)", nlev, KD_ROI_MAX_LEVELS);
    return NULL;
  }
  KdTensor *x[KD_ROI_MAX_LEVELS];
  char sx[64], s0[64];
  for (int l = 0; l < nlev; l++) {
    if (!(x[l] = kd_to_plain(c, feats[l]))) return NULL;
    if (x[l]->ndim != 4 || x[l]->shape[0] != x[0]->shape[0] || x[l]->shape[1] != x[0]->shape[1]) {
      kd_ctx_fail(c, "roi_align: level %d is %s, expected 4-D N,C,H,W with the N and C of level 0 (%s)", l,
                  kd_tensor_shape_str(x[l], sx, 64), kd_tensor_shape_str(x[0], s0, 64));
      return NULL;
    }
    if (!(scales[l] > 0.0f && isfinite(scales[l]))) {
      kd_ctx_fail(c, "roi_align: level %d has spatial scale %g, expected > 0", l, scales[l]);
      return NULL;
    }
  }
  if (nrois < 1 || !rois || out_h < 1 || out_w < 1) {
    kd_ctx_fail(c, "roi_align: %d RoIs to %dx%d on %s (need >= 1 RoI and an output >= 1x1)", nrois, out_h, out_w,
                kd_tensor_shape_str(x[0], sx, 64));
    return NULL;
  }
  RoiSaved s = {.L = nlev, .N = x[0]->shape[0], .C = x[0]->shape[1], .R = nrois, .oh = out_h, .ow = out_w};
  for (int l = 0; l < nlev; l++) s.H[l] = x[l]->shape[2], s.W[l] = x[l]->shape[3];
  if (roi_tables(c, &s, rois, level, scales, sampling_ratio, aligned)) return NULL;
  KdTensor *y = kd_tensor4(c, nrois, s.C, out_h, out_w);
  if (!y) return NULL;
  const int planes = nrois * s.C;
  const size_t op = (size_t)out_h * out_w;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++) roi_plane(&s, x, p / s.C, p % s.C, y->data + (size_t)p * op);
  RoiSaved *sv = kd_record(c, "roi_align", y, x, nlev, roi_align_backward, sizeof *sv);
  if (sv) *sv = s;
  return y;
}

KdTensor *kd_roi_align(KdCtx *c, KdTensor *feat, const float *rois, int nrois, int out_h, int out_w, float spatial_scale,
                       int sampling_ratio, int aligned) {
  if (!feat) return NULL;
  return kd_roi_align_levels(c, &feat, &spatial_scale, 1, rois, NULL, nrois, out_h, out_w, sampling_ratio, aligned);
}
