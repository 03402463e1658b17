/* Draws one fashion-det image: background clutter, then 1-6 Fashion-MNIST
 * items, then light sensor grain. All randomness comes from one PCG32
 * stream per image; no libm transcendentals (only sqrtf, which IEEE fixes),
 * and no fused multiply-adds, so the pixels do not depend on the libm or on
 * the compiler's -march choices. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/fashion.h"
#include "data/hash.h"
#include "data/transform.h"

#define SRC 28

struct KdFashionRender {
  int S;
  float *canvas; /* [S*S*3] 0..1 */
  int8_t *owner; /* [S*S] topmost item whose mask covers the pixel, -1 none */
  float *item;   /* [S*S] intensity of the item being placed */
  float *crop;   /* [SRC*SRC] */
  float *lattice;
  KdPrepScratch rs;
};

KdFashionRender *kd_fashion_render_new(int size) {
  KdFashionRender *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  size_t n = (size_t)size * size;
  r->S = size;
  r->canvas = malloc(n * 3 * sizeof(float));
  r->owner = malloc(n);
  r->item = malloc(n * sizeof(float));
  r->crop = malloc(SRC * SRC * sizeof(float));
  r->lattice = malloc(((size_t)size / 2 + 3) * ((size_t)size / 2 + 3) * sizeof(float)); /* cells >= 2 */
  if (!r->canvas || !r->owner || !r->item || !r->crop || !r->lattice) {
    kd_fashion_render_free(r);
    return NULL;
  }
  return r;
}

void kd_fashion_render_free(KdFashionRender *r) {
  if (!r) return;
  free(r->canvas), free(r->owner), free(r->item), free(r->crop), free(r->lattice);
  kd_prep_scratch_free(&r->rs);
  free(r);
}

static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static void hsv(float h, float s, float v, float *rgb) {
  float h6 = h * 6;
  int i = (int)h6 % 6;
  float f = h6 - (float)(int)h6, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  float c[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  memcpy(rgb, c[i], 3 * sizeof(float));
}

static void random_colour(KdRng *g, float smin, float smax, float vmin, float vmax, float *rgb) {
  float h = kd_rng_uniform(g), s = kd_rng_range(g, smin, smax), v = kd_rng_range(g, vmin, vmax);
  hsv(h, s, v, rgb);
}

static float lum(const float *c) { return 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2]; }

static void blend(float *px, const float *c, float a) {
  for (int k = 0; k < 3; k++) px[k] = px[k] + a * (c[k] - px[k]);
}

/* ---- background ---- */

static void gradient(KdFashionRender *r, KdRng *g) {
  int S = r->S;
  float c0[3], c1[3];
  random_colour(g, 0.05f, 0.7f, 0.15f, 0.9f, c0);
  random_colour(g, 0.05f, 0.7f, 0.15f, 0.9f, c1);
  float dx = kd_rng_range(g, -1, 1), dy = kd_rng_range(g, -1, 1);
  float norm = sqrtf(dx * dx + dy * dy) + 1e-3f, half = 0.5f * (float)S;
  dx /= norm * (float)S, dy /= norm * (float)S;
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      float t = clamp01(((float)x + 0.5f - half) * dx + ((float)y + 0.5f - half) * dy + 0.5f);
      float *p = r->canvas + 3 * ((size_t)y * S + x);
      for (int k = 0; k < 3; k++) p[k] = c0[k] + t * (c1[k] - c0[k]);
    }
}

/* Value noise: random values on a lattice, smoothstep-interpolated; two
 * octaves (cell and cell/2) so the lattice grid does not show. */
static void noise_octave(KdFashionRender *r, KdRng *g, int cell, float amp, const float *w) {
  int S = r->S, L = S / cell + 2;
  for (int i = 0; i < L * L; i++) r->lattice[i] = kd_rng_range(g, -1, 1);
  for (int y = 0; y < S; y++) {
    float gy = ((float)y + 0.5f) / (float)cell;
    int iy = (int)gy;
    float fy = gy - (float)iy;
    fy = fy * fy * (3 - 2 * fy);
    for (int x = 0; x < S; x++) {
      float gx = ((float)x + 0.5f) / (float)cell;
      int ix = (int)gx;
      float fx = gx - (float)ix;
      fx = fx * fx * (3 - 2 * fx);
      const float *l0 = r->lattice + (size_t)iy * L + ix, *l1 = l0 + L;
      float top = l0[0] + fx * (l0[1] - l0[0]), bot = l1[0] + fx * (l1[1] - l1[0]);
      float n = amp * (top + fy * (bot - top));
      float *p = r->canvas + 3 * ((size_t)y * S + x);
      for (int k = 0; k < 3; k++) p[k] = clamp01(p[k] + n * w[k]);
    }
  }
}

static void value_noise(KdFashionRender *r, KdRng *g) {
  static const int cells[3] = {8, 16, 32};
  int cell = cells[kd_rng_below(g, 3)] * r->S / 128;
  if (cell < 4) cell = 4;
  float amp = kd_rng_range(g, 0.04f, 0.16f), w[3];
  for (int k = 0; k < 3; k++) w[k] = kd_rng_range(g, 0.5f, 1.5f);
  noise_octave(r, g, cell, amp, w);
  noise_octave(r, g, cell / 2, amp * 0.5f, w);
}

static void blobs(KdFashionRender *r, KdRng *g) {
  int S = r->S, n = (int)kd_rng_below(g, 6);
  float unit = (float)S / 128;
  for (int b = 0; b < n; b++) {
    float cx = kd_rng_range(g, 0, (float)S), cy = kd_rng_range(g, 0, (float)S);
    float rx = kd_rng_range(g, 3, 28) * unit, ry = kd_rng_range(g, 3, 28) * unit;
    float op = kd_rng_range(g, 0.2f, 0.75f), c[3];
    random_colour(g, 0.1f, 0.9f, 0.1f, 0.95f, c);
    int x0 = (int)fmaxf(0, cx - rx - 2), x1 = (int)fminf((float)S, cx + rx + 2);
    int y0 = (int)fmaxf(0, cy - ry - 2), y1 = (int)fminf((float)S, cy + ry + 2);
    float soft = fminf(rx, ry) / 1.5f;
    for (int y = y0; y < y1; y++)
      for (int x = x0; x < x1; x++) {
        float u = ((float)x + 0.5f - cx) / rx, v = ((float)y + 0.5f - cy) / ry;
        float d = sqrtf(u * u + v * v), a = clamp01((1 - d) * soft) * op;
        if (a > 0) blend(r->canvas + 3 * ((size_t)y * S + x), c, a);
      }
  }
}

/* Polylines of 1-3 segments, antialiased by distance to the segments. */
static void strokes(KdFashionRender *r, KdRng *g) {
  int S = r->S, n = 2 + (int)kd_rng_below(g, 7);
  float unit = (float)S / 128;
  for (int s = 0; s < n; s++) {
    int np = 2 + (int)kd_rng_below(g, 3);
    float px[4], py[4];
    px[0] = kd_rng_range(g, -8, (float)S + 8), py[0] = kd_rng_range(g, -8, (float)S + 8);
    for (int i = 1; i < np; i++) {
      px[i] = px[i - 1] + kd_rng_range(g, -50, 50) * unit;
      py[i] = py[i - 1] + kd_rng_range(g, -50, 50) * unit;
    }
    float w = kd_rng_range(g, 0.7f, 3.5f) * unit, op = kd_rng_range(g, 0.35f, 0.9f), c[3];
    random_colour(g, 0.0f, 1.0f, 0.05f, 1.0f, c);
    float minx = px[0], maxx = px[0], miny = py[0], maxy = py[0];
    for (int i = 1; i < np; i++)
      minx = fminf(minx, px[i]), maxx = fmaxf(maxx, px[i]), miny = fminf(miny, py[i]), maxy = fmaxf(maxy, py[i]);
    int x0 = (int)fmaxf(0, minx - w - 1), x1 = (int)fminf((float)S, maxx + w + 2);
    int y0 = (int)fmaxf(0, miny - w - 1), y1 = (int)fminf((float)S, maxy + w + 2);
    for (int y = y0; y < y1; y++)
      for (int x = x0; x < x1; x++) {
        float qx = (float)x + 0.5f, qy = (float)y + 0.5f, best = 1e30f;
        for (int i = 0; i + 1 < np; i++) {
          float ex = px[i + 1] - px[i], ey = py[i + 1] - py[i], len2 = ex * ex + ey * ey;
          float t = len2 > 0 ? clamp01(((qx - px[i]) * ex + (qy - py[i]) * ey) / len2) : 0;
          float dx = qx - px[i] - t * ex, dy = qy - py[i] - t * ey, d2 = dx * dx + dy * dy;
          if (d2 < best) best = d2;
        }
        float a = clamp01(0.5f * w + 0.5f - sqrtf(best)) * op;
        if (a > 0) blend(r->canvas + 3 * ((size_t)y * S + x), c, a);
      }
  }
}

/* ---- items ---- */

static float item_alpha(float v) { return clamp01(3 * v); }

typedef struct Placed {
  int x0, y0, w, h;
} Placed;

/* Would a w x h item at (x0,y0) with mask in r->item leave every placed
 * item at least half visible? */
static int occlusion_ok(const KdFashionRender *r, const KdFashionScene *sc, int x0, int y0, int w, int h) {
  int cover[KD_FASHION_MAX_ITEMS] = {0};
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      if (item_alpha(r->item[y * w + x]) < KD_FASHION_ALPHA_THRESHOLD) continue;
      int o = r->owner[(size_t)(y0 + y) * r->S + (x0 + x)];
      if (o >= 0) cover[o]++;
    }
  for (int j = 0; j < sc->n_items; j++)
    if (2 * (sc->items[j].visible - cover[j]) < sc->items[j].pixels) return 0;
  return 1;
}

/* Crops the source's tight box (intensity > 10%) into r->crop. */
static int crop_source(KdFashionRender *r, const uint8_t *img, int *cw, int *ch, int flip) {
  int x0 = SRC, y0 = SRC, x1 = -1, y1 = -1;
  for (int y = 0; y < SRC; y++)
    for (int x = 0; x < SRC; x++)
      if (img[y * SRC + x] > 25) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < 0) return -1;
  *cw = x1 - x0 + 1, *ch = y1 - y0 + 1;
  for (int y = 0; y < *ch; y++)
    for (int x = 0; x < *cw; x++) {
      int sx = flip ? x1 - x : x0 + x;
      r->crop[y * *cw + x] = (float)img[(y0 + y) * SRC + sx] * (1.0f / 255.0f);
    }
  return 0;
}

/* Mean luminance of the canvas under the item's mask. */
static float backdrop_lum(const KdFashionRender *r, int x0, int y0, int w, int h) {
  double s = 0;
  long n = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (item_alpha(r->item[y * w + x]) >= KD_FASHION_ALPHA_THRESHOLD)
        s += lum(r->canvas + 3 * ((size_t)(y0 + y) * r->S + x0 + x)), n++;
  return n ? (float)(s / (double)n) : 0.5f;
}

static int place_item(KdFashionRender *r, const KdFashionMnist *src, KdRng *g, KdFashionScene *sc) {
  int S = r->S, id = sc->n_items;
  int si = (int)kd_rng_below(g, (uint32_t)src->n), flip = (int)(kd_rng_u32(g) & 1), cw, ch;
  float u = kd_rng_uniform(g);
  float L = (12 + 68 * u * sqrtf(u)) * (float)S / 128; /* favours small items */
  if (crop_source(r, src->images + (size_t)si * SRC * SRC, &cw, &ch, flip)) return 0;
  float scale = L / (float)(cw > ch ? cw : ch);
  int w = (int)((float)cw * scale + 0.5f), h = (int)((float)ch * scale + 0.5f);
  w = w < 1 ? 1 : w > S ? S : w;
  h = h < 1 ? 1 : h > S ? S : h;
  if (kd_resample_f32(r->crop, cw, ch, 1, r->item, w, h, &r->rs)) return -1;
  int pixels = 0;
  for (int i = 0; i < w * h; i++) pixels += item_alpha(r->item[i]) >= KD_FASHION_ALPHA_THRESHOLD;
  if (pixels < 12) return 0;
  int x0 = 0, y0 = 0, ok = 0;
  for (int t = 0; t < 12 && !ok; t++) {
    x0 = (int)kd_rng_below(g, (uint32_t)(S - w + 1));
    y0 = (int)kd_rng_below(g, (uint32_t)(S - h + 1));
    ok = occlusion_ok(r, sc, x0, y0, w, h);
  }
  if (!ok) return 0;
  /* A tint that stands out from what is behind it: best of a few draws. */
  float back = backdrop_lum(r, x0, y0, w, h), tint[3] = {1, 1, 1}, best = -1;
  for (int t = 0; t < 6 && best < 0.3f; t++) {
    float c[3];
    random_colour(g, 0.3f, 1.0f, 0.35f, 1.0f, c);
    float d = fabsf(0.85f * lum(c) - back);
    if (d > best) best = d, memcpy(tint, c, sizeof tint);
  }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      float v = r->item[y * w + x], a = item_alpha(v);
      if (a <= 0) continue;
      size_t p = (size_t)(y0 + y) * S + (x0 + x);
      float shade = 0.3f + 0.7f * clamp01(v), col[3] = {tint[0] * shade, tint[1] * shade, tint[2] * shade};
      blend(r->canvas + 3 * p, col, a);
      if (a >= KD_FASHION_ALPHA_THRESHOLD) {
        int o = r->owner[p];
        if (o >= 0) sc->items[o].visible--;
        r->owner[p] = (int8_t)id;
      }
    }
  sc->items[id] = (KdFashionItem){.label = src->labels[si], .source = si, .pixels = pixels, .visible = pixels,
                                  .extent = {x0, y0, x0 + w, y0 + h}};
  sc->n_items++;
  return 0;
}

int kd_fashion_render(KdFashionRender *r, const KdFashionMnist *src, uint64_t seed, int split,
                      int index, uint8_t *rgb, int8_t *mask, KdFashionScene *sc) {
  int S = r->S;
  KdRng g;
  kd_rng_seed(&g, kd_mix64(seed ^ kd_mix64(((uint64_t)split << 32) | (uint32_t)index)), (uint64_t)split);
  memset(sc, 0, sizeof *sc);
  memset(r->owner, -1, (size_t)S * S);
  gradient(r, &g);
  value_noise(r, &g);
  blobs(r, &g);
  strokes(r, &g);
  int want = 1 + (int)kd_rng_below(&g, KD_FASHION_MAX_ITEMS);
  for (int attempt = 0; attempt < 40 && sc->n_items < want; attempt++)
    if (place_item(r, src, &g, sc)) return -1;
  /* Boxes around what is visible of each item. */
  for (int j = 0; j < sc->n_items; j++) {
    int *b = sc->items[j].box;
    b[0] = S, b[1] = S, b[2] = 0, b[3] = 0;
  }
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int o = r->owner[(size_t)y * S + x];
      if (o < 0) continue;
      int *b = sc->items[o].box;
      if (x < b[0]) b[0] = x;
      if (y < b[1]) b[1] = y;
      if (x + 1 > b[2]) b[2] = x + 1;
      if (y + 1 > b[3]) b[3] = y + 1;
    }
  /* Grain, then 8-bit. */
  for (size_t i = 0; i < (size_t)S * S * 3; i++) {
    float v = r->canvas[i] + kd_rng_range(&g, -0.02f, 0.02f);
    rgb[i] = (uint8_t)(clamp01(v) * 255 + 0.5f);
  }
  if (mask) memcpy(mask, r->owner, (size_t)S * S);
  return 0;
}
