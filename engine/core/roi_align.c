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
 * (image, channel) input planes, each adding the bins of its image's RoIs
 * in RoI order: no two threads write one gradient element, no atomics, and
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
  int img, gh, gw;
  float count;    /* samples averaged per bin (>= 1) */
  size_t ty, tx;  /* first tap of this RoI's row / column tables */
} RoiGeom;

typedef struct {
  int N, C, H, W, R, oh, ow;
  const RoiGeom *g;
  const Tap *taps;
  const int *order; /* RoI indices grouped by image, in RoI order */
  const int *first; /* [N + 1]: image n's RoIs are order[first[n] .. first[n+1]) */
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
  KdTensor *x = node->in[0];
  if (!x->requires_grad) return;
  float *gx = kd_grad(c, x);
  const float *gy = node->out->grad;
  const int planes = s->N * s->C;
  const size_t ip = (size_t)s->H * s->W, op = (size_t)s->oh * s->ow;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++) {
    const int n = p / s->C, ch = p % s->C;
    float *g = gx + (size_t)p * ip;
    for (int k = s->first[n]; k < s->first[n + 1]; k++) {
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
            for (int ix = 0; ix < rg->gw; ix++) {
              const Tap b = tx[pw * rg->gw + ix];
              if (b.lo < 0) continue;
              float *rlo = g + (size_t)a.lo * s->W, *rhi = g + (size_t)a.hi * s->W;
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
static void roi_plane(const RoiSaved *s, const float *x, int r, int ch, float *y) {
  const RoiGeom *rg = &s->g[r];
  const Tap *ty = s->taps + rg->ty, *tx = s->taps + rg->tx;
  const float *xp = x + ((size_t)rg->img * s->C + ch) * s->H * s->W;
  for (int ph = 0; ph < s->oh; ph++)
    for (int pw = 0; pw < s->ow; pw++) {
      float acc = 0.0f;
      for (int iy = 0; iy < rg->gh; iy++) {
        const Tap a = ty[ph * rg->gh + iy];
        if (a.lo < 0) continue;
        const float *rlo = xp + (size_t)a.lo * s->W, *rhi = xp + (size_t)a.hi * s->W;
        for (int ix = 0; ix < rg->gw; ix++) {
          const Tap b = tx[pw * rg->gw + ix];
          if (b.lo < 0) continue;
          acc += (a.h * b.h) * rlo[b.lo] + (a.h * b.l) * rlo[b.hi] + (a.l * b.h) * rhi[b.lo] + (a.l * b.l) * rhi[b.hi];
        }
      }
      y[ph * s->ow + pw] = acc / rg->count;
    }
}

/* RoI geometry, tap tables and the by-image order, in the arena. */
static int roi_tables(KdCtx *c, RoiSaved *s, const float *rois, float scale, int sampling, int aligned) {
  RoiGeom *g = kd_ctx_alloc(c, (size_t)s->R * sizeof *g);
  float(*ext)[4] = kd_ctx_alloc(c, (size_t)s->R * sizeof *ext);
  int *order = kd_ctx_alloc(c, ((size_t)s->R + s->N + 1) * sizeof *order);
  if (!g || !ext || !order) return -1;
  size_t ntaps = 0;
  for (int r = 0; r < s->R; r++) {
    if (roi_geometry(c, rois + 5 * (size_t)r, r, s->N, scale, s->oh, s->ow, sampling, aligned, ext[r], &g[r])) return -1;
    g[r].ty = ntaps;
    ntaps += (size_t)s->oh * g[r].gh;
    g[r].tx = ntaps;
    ntaps += (size_t)s->ow * g[r].gw;
  }
  Tap *taps = kd_ctx_alloc(c, (ntaps ? ntaps : 1) * sizeof *taps);
  if (!taps) return -1;
  for (int r = 0; r < s->R; r++) {
    axis_taps(taps + g[r].ty, ext[r][1], ext[r][3], s->oh, g[r].gh, s->H);
    axis_taps(taps + g[r].tx, ext[r][0], ext[r][2], s->ow, g[r].gw, s->W);
  }
  int *first = order + s->R;
  memset(first, 0, ((size_t)s->N + 1) * sizeof *first);
  for (int r = 0; r < s->R; r++) first[g[r].img + 1]++;
  for (int n = 0; n < s->N; n++) first[n + 1] += first[n];
  for (int n = 0, k = 0; n < s->N; n++)
    for (int r = 0; r < s->R; r++)
      if (g[r].img == n) order[k++] = r;
  s->g = g, s->taps = taps, s->order = order, s->first = first;
  return 0;
}

KdTensor *kd_roi_align(KdCtx *c, KdTensor *feat, const float *rois, int nrois, int out_h, int out_w, float spatial_scale,
                       int sampling_ratio, int aligned) {
  feat = kd_to_plain(c, feat);
  if (!feat) return NULL;
  char sx[64];
  if (feat->ndim != 4) {
    kd_ctx_fail(c, "roi_align: need a 4-D N,C,H,W input, got %s", kd_tensor_shape_str(feat, sx, 64));
    return NULL;
  }
  if (nrois < 1 || !rois || out_h < 1 || out_w < 1 || !(spatial_scale > 0.0f && isfinite(spatial_scale))) {
    kd_ctx_fail(c, "roi_align: %d RoIs to %dx%d at scale %g on %s (need >= 1 RoI, an output >= 1x1, scale > 0)", nrois,
                out_h, out_w, spatial_scale, kd_tensor_shape_str(feat, sx, 64));
    return NULL;
  }
  RoiSaved s = {.N = feat->shape[0], .C = feat->shape[1], .H = feat->shape[2], .W = feat->shape[3], .R = nrois,
                .oh = out_h, .ow = out_w};
  if (roi_tables(c, &s, rois, spatial_scale, sampling_ratio, aligned)) return NULL;
  KdTensor *y = kd_tensor4(c, nrois, s.C, out_h, out_w);
  if (!y) return NULL;
  const int planes = nrois * s.C;
  const size_t op = (size_t)out_h * out_w;
  KD_PRAGMA(omp parallel for schedule(static))
  for (int p = 0; p < planes; p++) roi_plane(&s, feat->data, p / s.C, p % s.C, y->data + (size_t)p * op);
  KdTensor *in[1] = {feat};
  RoiSaved *sv = kd_record(c, "roi_align", y, in, 1, roi_align_backward, sizeof *sv);
  if (sv) *sv = s;
  return y;
}
