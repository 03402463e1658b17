/* Resize, flip, jitter, normalise, and the matching box transform. */
#include "data/transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kd_image_cfg_default(KdImageCfg *c) {
  *c = (KdImageCfg){
      .size = 128,
      .resize = KD_RESIZE_LETTERBOX,
      .min_size = 800,
      .max_size = 1333,
      .hflip_prob = 0.5f,
      .brightness = 0.2f,
      .contrast = 0.2f,
      .saturation = 0.2f,
      .hue = 0.02f,
      .mean = {0.485f, 0.456f, 0.406f},
      .std = {0.229f, 0.224f, 0.225f},
  };
}

int kd_image_cfg_check(const KdImageCfg *c, KdError *err) {
  if (c->size < 8 || c->size > 4096) return kd_error(err, "image.size: expected 8..4096, got %d", c->size);
  if (c->resize != KD_RESIZE_LETTERBOX && c->resize != KD_RESIZE_STRETCH && c->resize != KD_RESIZE_TORCHVISION)
    return kd_error(err, "image.resize: expected letterbox, stretch or torchvision");
  if (c->resize == KD_RESIZE_TORCHVISION && (c->min_size < 1 || c->max_size < 1))
    return kd_error(err, "image.min_size, image.max_size: expected >= 1 with resize torchvision, got %d, %d", c->min_size, c->max_size);
  if (!(c->hflip_prob >= 0 && c->hflip_prob <= 1))
    return kd_error(err, "image.hflip_prob: expected 0..1, got %g", c->hflip_prob);
  const float jit[3] = {c->brightness, c->contrast, c->saturation};
  static const char *names[3] = {"brightness", "contrast", "saturation"};
  for (int i = 0; i < 3; i++)
    if (!(jit[i] >= 0 && jit[i] <= 1)) return kd_error(err, "image.%s: expected 0..1, got %g", names[i], jit[i]);
  if (!(c->hue >= 0 && c->hue <= 0.5f)) return kd_error(err, "image.hue: expected 0..0.5, got %g", c->hue);
  for (int i = 0; i < 3; i++)
    if (!(c->std[i] > 0) || !isfinite(c->mean[i]))
      return kd_error(err, "image.std[%d]: expected > 0 (mean finite), got %g", i, c->std[i]);
  return 0;
}

/* ---- box transform ---- */

KdXform kd_xform_make(const KdImageCfg *c, int orig_w, int orig_h, int flipped) {
  KdXform t = {.flipped = flipped, .in_w = c->size, .in_h = c->size, .orig_w = orig_w, .orig_h = orig_h};
  if (c->resize == KD_RESIZE_STRETCH) {
    t.sx = (float)c->size / (float)orig_w;
    t.sy = (float)c->size / (float)orig_h;
    return t;
  }
  if (c->resize == KD_RESIZE_TORCHVISION) {
    /* GeneralizedRCNNTransform: one scale so the short side reaches
     * min_size unless the long side would pass max_size; the sizes are
     * floor(side x scale) (interpolate with recompute_scale_factor);
     * top-left, padded bottom-right. The scale is a float32 tensor there,
     * min_size / side computed as reciprocal(side) * min_size (torch's
     * scalar / tensor): 256/200 comes out as 1.2799999 and gives 255. */
    float sf = fminf(1.0f / (float)(orig_w < orig_h ? orig_w : orig_h) * (float)c->min_size,
                     1.0f / (float)(orig_w > orig_h ? orig_w : orig_h) * (float)c->max_size);
    double s = (double)sf;
    /* a data.size under max_size: shrink to fit, keeping the aspect */
    if (floor(fmax(orig_w, orig_h) * s) > c->size) s = (double)c->size / fmax(orig_w, orig_h);
    int cw = (int)floor(orig_w * s), ch = (int)floor(orig_h * s);
    cw = cw < 1 ? 1 : cw > c->size ? c->size : cw;
    ch = ch < 1 ? 1 : ch > c->size ? c->size : ch;
    t.sx = (float)cw / (float)orig_w;
    t.sy = (float)ch / (float)orig_h;
    return t;
  }
  /* Letterbox: content is a whole number of pixels, centred; the scale per
   * axis is content/orig so the image's edges land exactly on pixel edges. */
  double s = fmin((double)c->size / orig_w, (double)c->size / orig_h);
  int cw = (int)lround(orig_w * s), ch = (int)lround(orig_h * s);
  cw = cw < 1 ? 1 : cw > c->size ? c->size : cw;
  ch = ch < 1 ? 1 : ch > c->size ? c->size : ch;
  t.sx = (float)cw / (float)orig_w;
  t.sy = (float)ch / (float)orig_h;
  t.ox = (float)((c->size - cw) / 2);
  t.oy = (float)((c->size - ch) / 2);
  return t;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void kd_xform_boxes_to_input(const KdXform *t, const float *in, float *out, int n) {
  float W = (float)t->in_w, H = (float)t->in_h;
  for (int i = 0; i < n; i++, in += 4, out += 4) {
    float x1 = in[0] * t->sx + t->ox, y1 = in[1] * t->sy + t->oy;
    float x2 = in[2] * t->sx + t->ox, y2 = in[3] * t->sy + t->oy;
    if (t->flipped) {
      float f1 = W - x2, f2 = W - x1;
      x1 = f1, x2 = f2;
    }
    out[0] = clampf(x1, 0, W), out[1] = clampf(y1, 0, H);
    out[2] = clampf(x2, 0, W), out[3] = clampf(y2, 0, H);
  }
}

void kd_xform_boxes_to_orig(const KdXform *t, const float *in, float *out, int n) {
  float W = (float)t->in_w;
  for (int i = 0; i < n; i++, in += 4, out += 4) {
    float x1 = in[0], x2 = in[2], y1 = in[1], y2 = in[3];
    if (t->flipped) {
      float f1 = W - x2, f2 = W - x1;
      x1 = f1, x2 = f2;
    }
    out[0] = (x1 - t->ox) / t->sx, out[1] = (y1 - t->oy) / t->sy;
    out[2] = (x2 - t->ox) / t->sx, out[3] = (y2 - t->oy) / t->sy;
  }
}

/* ---- augmentation draws ---- */

KdAugment kd_augment_none(void) { return (KdAugment){0, 1, 1, 1, 0}; }

KdAugment kd_augment_draw(const KdImageCfg *c, KdRng *rng) {
  KdAugment a;
  a.flip = kd_rng_uniform(rng) < c->hflip_prob;
  a.brightness = kd_rng_range(rng, 1 - c->brightness, 1 + c->brightness);
  a.contrast = kd_rng_range(rng, 1 - c->contrast, 1 + c->contrast);
  a.saturation = kd_rng_range(rng, 1 - c->saturation, 1 + c->saturation);
  a.hue = kd_rng_range(rng, -c->hue, c->hue);
  return a;
}

/* ---- resampling ---- */

static int growf(float **p, size_t *cap, size_t n) {
  if (*cap >= n) return 0;
  float *q = realloc(*p, n * sizeof(float));
  if (!q) return -1;
  *p = q, *cap = n;
  return 0;
}

static int growi(int **a, int **b, size_t *cap, size_t n) {
  if (*cap >= n) return 0;
  int *x = realloc(*a, n * sizeof(int));
  if (x) *a = x;
  int *y = realloc(*b, n * sizeof(int));
  if (y) *b = y;
  if (!x || !y) return -1;
  *cap = n;
  return 0;
}

void kd_prep_scratch_free(KdPrepScratch *s) {
  free(s->tmp), free(s->img), free(s->wx), free(s->wy);
  free(s->x0), free(s->nx), free(s->y0), free(s->ny);
  memset(s, 0, sizeof *s);
}

/* Filter taps for in -> out samples: a triangle of radius max(1, in/out)
 * source pixels around each output centre, normalised, zero taps trimmed.
 * Without antialias the radius is 1 when shrinking too: torch's bilinear
 * interpolate (align_corners=False, source index clamped at the edges).
 * Weights for output o are w[o*stride ...], stride = max taps. */
static int make_taps(int in, int out, int **start, int **len, size_t *icap, float **w, size_t *wcap,
                     int *stride, int antialias) {
  double scale = (double)in / out, fs = scale > 1 && antialias ? scale : 1, support = fs;
  int st = (int)ceil(support) * 2 + 1;
  if (growi(start, len, icap, (size_t)out) || growf(w, wcap, (size_t)out * st)) return -1;
  for (int o = 0; o < out; o++) {
    double centre = (o + 0.5) * scale;
    int lo = (int)floor(centre - support + 0.5), hi = (int)floor(centre + support + 0.5);
    lo = lo < 0 ? 0 : lo;
    hi = hi > in ? in : hi;
    float *wo = *w + (size_t)o * st;
    double sum = 0;
    int n = 0, first = -1;
    for (int x = lo; x < hi && n < st; x++) {
      double t = fabs((x + 0.5 - centre) / fs), v = t < 1 ? 1 - t : 0;
      if (v <= 0 && first < 0) continue; /* trim leading zeros */
      if (first < 0) first = x;
      wo[n++] = (float)v;
      sum += v;
    }
    while (n > 1 && wo[n - 1] <= 0) n--;
    if (first < 0 || sum <= 0) { /* cannot happen for in, out >= 1; be safe */
      first = (int)fmin(fmax(floor(centre), 0), in - 1), n = 1, wo[0] = 1, sum = 1;
    }
    for (int k = 0; k < n; k++) wo[k] = (float)(wo[k] / sum);
    (*start)[o] = first;
    (*len)[o] = n;
  }
  *stride = st;
  return 0;
}

/* Vertical pass shared by both entry points: tmp [sh][dw*ch] -> dst [dh][dw*ch]. */
static void vpass(const float *tmp, int dw, int ch, float *dst, int dh, const KdPrepScratch *s, int sty) {
  size_t row = (size_t)dw * ch;
  for (int y = 0; y < dh; y++) {
    float *d = dst + (size_t)y * row;
    const float *w = s->wy + (size_t)y * sty;
    const float *r0 = tmp + (size_t)s->y0[y] * row;
    for (size_t i = 0; i < row; i++) d[i] = w[0] * r0[i];
    for (int k = 1; k < s->ny[y]; k++) {
      const float *r = r0 + (size_t)k * row;
      for (size_t i = 0; i < row; i++) d[i] += w[k] * r[i];
    }
  }
}

int kd_resample_f32(const float *src, int sw, int sh, int ch, float *dst, int dw, int dh,
                    KdPrepScratch *s) {
  int stx, sty;
  if (make_taps(sw, dw, &s->x0, &s->nx, &s->x_cap, &s->wx, &s->wx_cap, &stx, 1) ||
      make_taps(sh, dh, &s->y0, &s->ny, &s->y_cap, &s->wy, &s->wy_cap, &sty, 1) ||
      growf(&s->tmp, &s->tmp_cap, (size_t)sh * dw * ch))
    return -1;
  for (int y = 0; y < sh; y++) {
    const float *r = src + (size_t)y * sw * ch;
    float *t = s->tmp + (size_t)y * dw * ch;
    for (int x = 0; x < dw; x++) {
      const float *w = s->wx + (size_t)x * stx, *p = r + (size_t)s->x0[x] * ch;
      for (int c = 0; c < ch; c++) {
        float acc = 0;
        for (int k = 0; k < s->nx[x]; k++) acc += w[k] * p[k * ch + c];
        t[x * ch + c] = acc;
      }
    }
  }
  vpass(s->tmp, dw, ch, dst, dh, s, sty);
  return 0;
}

/* RGB8 -> interleaved float 0..1 at cw x ch, into s->img. */
static int resample_u8(const KdImage *src, int cw, int chh, KdPrepScratch *s, int antialias) {
  const float inv = 1.0f / 255.0f;
  if (src->w == cw && src->h == chh) { /* already the right size: convert only */
    size_t n = (size_t)cw * chh * 3;
    if (growf(&s->img, &s->img_cap, n)) return -1;
    for (size_t i = 0; i < n; i++) s->img[i] = src->rgb[i] * inv;
    return 0;
  }
  int stx, sty;
  if (make_taps(src->w, cw, &s->x0, &s->nx, &s->x_cap, &s->wx, &s->wx_cap, &stx, antialias) ||
      make_taps(src->h, chh, &s->y0, &s->ny, &s->y_cap, &s->wy, &s->wy_cap, &sty, antialias) ||
      growf(&s->tmp, &s->tmp_cap, (size_t)src->h * cw * 3) || growf(&s->img, &s->img_cap, (size_t)chh * cw * 3))
    return -1;
  for (int y = 0; y < src->h; y++) {
    const uint8_t *r = src->rgb + (size_t)y * src->w * 3;
    float *t = s->tmp + (size_t)y * cw * 3;
    for (int x = 0; x < cw; x++) {
      const float *w = s->wx + (size_t)x * stx;
      const uint8_t *p = r + (size_t)s->x0[x] * 3;
      float a = 0, b = 0, c = 0;
      for (int k = 0; k < s->nx[x]; k++) a += w[k] * p[3 * k], b += w[k] * p[3 * k + 1], c += w[k] * p[3 * k + 2];
      t[3 * x] = a * inv, t[3 * x + 1] = b * inv, t[3 * x + 2] = c * inv;
    }
  }
  vpass(s->tmp, cw, 3, s->img, chh, s, sty);
  return 0;
}

/* ---- the pipeline ---- */

/* Jitter in place on planar 0..1 pixels (r, g, b planes of n), clamping
 * after each step. Plain loops over planes so the compiler vectorises them. */
static void jitter(float *r, float *g, float *b, size_t n, const KdAugment *a) {
  if (a->brightness != 1) {
    float f = a->brightness;
    for (size_t i = 0; i < n; i++) r[i] = clampf(r[i] * f, 0, 1), g[i] = clampf(g[i] * f, 0, 1), b[i] = clampf(b[i] * f, 0, 1);
  }
  if (a->contrast != 1) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
    float m = (float)(sum / (double)n), f = a->contrast;
    for (size_t i = 0; i < n; i++)
      r[i] = clampf((r[i] - m) * f + m, 0, 1), g[i] = clampf((g[i] - m) * f + m, 0, 1), b[i] = clampf((b[i] - m) * f + m, 0, 1);
  }
  if (a->saturation != 1) {
    float f = a->saturation;
    for (size_t i = 0; i < n; i++) {
      float y = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
      r[i] = clampf((r[i] - y) * f + y, 0, 1), g[i] = clampf((g[i] - y) * f + y, 0, 1), b[i] = clampf((b[i] - y) * f + y, 0, 1);
    }
  }
  if (a->hue != 0) { /* rotate the chroma plane of YIQ by the hue angle */
    float ch = cosf(6.2831853f * a->hue), sh = sinf(6.2831853f * a->hue);
    for (size_t i = 0; i < n; i++) {
      float y = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
      float ii = 0.596f * r[i] - 0.274f * g[i] - 0.322f * b[i], q = 0.211f * r[i] - 0.523f * g[i] + 0.312f * b[i];
      float i2 = ii * ch - q * sh, q2 = ii * sh + q * ch;
      r[i] = clampf(y + 0.956f * i2 + 0.621f * q2, 0, 1);
      g[i] = clampf(y - 0.272f * i2 - 0.647f * q2, 0, 1);
      b[i] = clampf(y - 1.106f * i2 + 1.703f * q2, 0, 1);
    }
  }
}

int kd_image_prepare(const KdImageCfg *c, const KdImage *src, int orig_w, int orig_h,
                     const KdAugment *aug, float *dst, KdXform *xf, KdPrepScratch *s,
                     KdError *err) {
  KdAugment none = kd_augment_none();
  if (!aug) aug = &none;
  *xf = kd_xform_make(c, orig_w, orig_h, aug->flip);
  int S = c->size;
  int cw = (int)lround(orig_w * xf->sx), chh = (int)lround(orig_h * xf->sy);
  int ox = (int)xf->ox, oy = (int)xf->oy;
  size_t n = (size_t)cw * chh, plane = (size_t)S * S;
  if (resample_u8(src, cw, chh, s, c->resize != KD_RESIZE_TORCHVISION) || growf(&s->tmp, &s->tmp_cap, 3 * n))
    return kd_error(err, "out of memory resizing a %dx%d image", src->w, src->h);
  /* Interleaved -> planar (the resampler's tmp is free again by now). */
  float *pl[3] = {s->tmp, s->tmp + n, s->tmp + 2 * n};
  for (size_t i = 0; i < n; i++) pl[0][i] = s->img[3 * i], pl[1][i] = s->img[3 * i + 1], pl[2][i] = s->img[3 * i + 2];
  jitter(pl[0], pl[1], pl[2], n, aug);
  memset(dst, 0, 3 * plane * sizeof(float)); /* padding: the mean colour */
  for (int k = 0; k < 3; k++) {
    float sc = 1 / c->std[k], sh = -c->mean[k] / c->std[k];
    for (int y = 0; y < chh; y++) {
      const float *r = pl[k] + (size_t)y * cw;
      float *d = dst + k * plane + (size_t)(y + oy) * S;
      if (aug->flip) {
        float *e = d + (S - 1 - ox);
        for (int x = 0; x < cw; x++) e[-x] = r[x] * sc + sh;
      } else {
        for (int x = 0; x < cw; x++) d[ox + x] = r[x] * sc + sh;
      }
    }
  }
  return 0;
}
