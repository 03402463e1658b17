/* Figure basics: style, palette, the one paint entry point, text with
 * anchors, panel letters and the nearest-neighbour rasters for maps and
 * images. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "figure_priv.h"

void kd_fig_style_default(KdFigStyle *st) {
  st->font_family = KD_FIG_DEFAULT_FONT;
  st->font_pt = 8;
  st->line_pt = 0.6;
  st->panel_letters = 0;
  st->raster_dpi = 0;
}

const KdFigStyle *kd_fig_style_or_default(const KdFigStyle *st, KdFigStyle *tmp) {
  if (st) return st;
  kd_fig_style_default(tmp);
  return tmp;
}

/* Okabe & Ito's palette, minus yellow (too light on white) and black
 * (kept for axes), led by the three box-source colours, plus two so ten
 * classes get distinct colours; after them three more for lines. */
#define NCLASS_COLOURS 10
static const double palette[][3] = {
    {0.000, 0.447, 0.698}, /* blue */
    {0.835, 0.369, 0.000}, /* vermillion */
    {0.000, 0.620, 0.451}, /* bluish green */
    {0.902, 0.624, 0.000}, /* orange */
    {0.800, 0.475, 0.655}, /* reddish purple */
    {0.337, 0.706, 0.914}, /* sky blue */
    {0.400, 0.400, 0.400}, /* grey */
    {0.600, 0.400, 0.200}, /* brown */
    {0.000, 0.330, 0.330}, /* dark teal (classes 8, 9 need two more) */
    {0.550, 0.550, 0.000}, /* olive */
    {0.000, 0.000, 0.000}, /* black: a line is not an axis */
    {0.200, 0.133, 0.533}, /* Tol's indigo */
    {0.533, 0.133, 0.333}, /* Tol's wine */
};

void kd_fig_palette(int index, double rgb[3]) {
  int i = ((index % NCLASS_COLOURS) + NCLASS_COLOURS) % NCLASS_COLOURS;
  memcpy(rgb, palette[i], sizeof palette[i]);
}

/* Twelve line colours, the strongest first: Okabe & Ito's, black, Tol's
 * indigo and wine, olive, grey, brown. Colour alone does not survive grey
 * print, so the dash cycles every colour and the marker every four. */
static const int series_colour[KD_FIG_SERIES_STYLES] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 9, 6, 7};

void kd_fig_series_style(int index, double rgb[3], int *dash, int *marker) {
  int n = KD_FIG_SERIES_STYLES;
  int i = ((index % n) + n) % n;
  static const int dashes[4] = {KD_FIG_SOLID, KD_FIG_DASHED, KD_FIG_DASHDOT, KD_FIG_LONGDASH};
  static const int marks[3] = {KD_FIG_MARK_NONE, KD_FIG_MARK_CIRCLE, KD_FIG_MARK_SQUARE};
  if (rgb) memcpy(rgb, palette[series_colour[i]], sizeof palette[0]);
  if (dash) *dash = dashes[i % 4];
  if (marker) *marker = marks[(i / 4) % 3];
}

double kd_fig_margin(const KdFigStyle *st) { return st->font_pt * 0.3; }

double kd_fig_panel_height(const KdFigPanel *p, const KdFigStyle *st, double width_pt) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  double m = kd_fig_margin(st);
  if (!p || !p->height_for_width) return width_pt * 0.75;
  return p->height_for_width(width_pt - 2 * m, st, p->spec) + 2 * m;
}

/* The export's raster resolution rides on the context (cairo_t user data),
 * read where images are painted. */
static const cairo_user_data_key_t raster_key;

double kd_fig_raster_dpi(cairo_t *cr) {
  const double *d = cairo_get_user_data(cr, &raster_key);
  return d ? *d : 0;
}

static void set_font_options(cairo_t *cr) {
  cairo_font_options_t *fo = cairo_font_options_create();
  cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
  cairo_set_font_options(cr, fo);
  cairo_font_options_destroy(fo);
}

void kd_fig_paint(cairo_t *cr, const KdFigPanel *p, const KdFigStyle *st, double width_pt,
                  double height_pt, double scale) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  cairo_save(cr);
  cairo_scale(cr, scale, scale);
  set_font_options(cr);
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_rectangle(cr, 0, 0, width_pt, height_pt);
  cairo_fill(cr);
  cairo_rectangle(cr, 0, 0, width_pt, height_pt);
  cairo_clip(cr);
  /* Vector pages embed images at the style's dpi (a raster surface already
   * has its own pixels). */
  cairo_surface_type_t t = cairo_surface_get_type(cairo_get_target(cr));
  int vector = t == CAIRO_SURFACE_TYPE_PDF || t == CAIRO_SURFACE_TYPE_SVG || t == CAIRO_SURFACE_TYPE_PS;
  double *dpi = vector && st->raster_dpi > 0 ? malloc(sizeof *dpi) : NULL;
  if (dpi) {
    *dpi = st->raster_dpi;
    if (cairo_set_user_data(cr, &raster_key, dpi, free) != CAIRO_STATUS_SUCCESS) free(dpi);
  }
  /* A margin all round, so no stroke, colorbar or label touches the page
   * edge. */
  double m = kd_fig_margin(st);
  KdFigRect r = {m, m, width_pt - 2 * m, height_pt - 2 * m};
  if (p && p->draw && r.w > 0 && r.h > 0) p->draw(cr, r, st, p->spec);
  if (dpi) cairo_set_user_data(cr, &raster_key, NULL, NULL);
  cairo_restore(cr);
}

int kd_fig_pick(const KdFigPanel *p, const KdFigStyle *st, double width_pt, double height_pt,
                double x, double y, KdFigPick *out) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  kd_fig_pick_clear(out);
  if (!p || !p->pick || x < 0 || y < 0 || x > width_pt || y > height_pt) return 0;
  double m = kd_fig_margin(st);
  return p->pick((KdFigRect){m, m, width_pt - 2 * m, height_pt - 2 * m}, st, p->spec, x, y, out);
}

void kd_fig_pick_clear(KdFigPick *out) {
  memset(out, 0, sizeof *out);
  out->key = -1;
  out->step = NAN;
}

/* ---- text (the rest in figure_text.c) ---- */

cairo_t *kd_fig_measure_cr(const KdFigStyle *st) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
  cairo_t *cr = cairo_create(s);
  cairo_surface_destroy(s); /* cr holds its own reference */
  set_font_options(cr);
  kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
  return cr;
}

void kd_fig_set_rgb(cairo_t *cr, const double rgb[3], double alpha) {
  cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], alpha);
}

void kd_fig_set_dash(cairo_t *cr, int dash, double lw) {
  double k = lw / 0.8;
  if (dash == KD_FIG_DASHED) {
    double d[2] = {3.2 * k, 1.8 * k};
    cairo_set_dash(cr, d, 2, 0);
  } else if (dash == KD_FIG_DOTTED) {
    double d[2] = {0.9 * k, 1.6 * k};
    cairo_set_dash(cr, d, 2, 0);
  } else if (dash == KD_FIG_DASHDOT) {
    double d[4] = {3.6 * k, 1.4 * k, 0.9 * k, 1.4 * k};
    cairo_set_dash(cr, d, 4, 0);
  } else if (dash == KD_FIG_LONGDASH) {
    double d[2] = {6.5 * k, 2.0 * k};
    cairo_set_dash(cr, d, 2, 0);
  } else {
    cairo_set_dash(cr, NULL, 0, 0);
  }
}

void kd_fig_panel_letter(cairo_t *cr, const KdFigStyle *st, KdFigRect r, int index) {
  char buf[8];
  if (index < 26) {
    snprintf(buf, sizeof buf, "(%c)", 'a' + index);
  } else {
    snprintf(buf, sizeof buf, "(%c%c)", 'a' + (index / 26 - 1) % 26, 'a' + index % 26);
  }
  cairo_save(cr);
  kd_fig_font(cr, st, st->font_pt, KD_FIG_BOLD);
  double pad = st->font_pt * 0.2;
  double w = kd_fig_text_width(cr, buf) + 2 * pad, h = st->font_pt * 1.05 + pad;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, r.x, r.y, w, h);
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  kd_fig_text(cr, r.x + pad, r.y + h * 0.5, buf, 0, 0.5, 0);
  cairo_restore(cr);
}

double kd_fig_title_height(const KdFigStyle *st, const char *title) {
  return title && *title ? st->font_pt * (KD_FIG_LINE + 0.25) : 0;
}

void kd_fig_title(cairo_t *cr, const KdFigStyle *st, KdFigRect r, const char *title) {
  if (!title || !*title) return;
  cairo_save(cr);
  kd_fig_font(cr, st, st->font_pt, KD_FIG_BOLD);
  cairo_set_source_rgb(cr, 0, 0, 0);
  kd_fig_text_fit(cr, r.x + r.w / 2, r.y + st->font_pt * 0.05, title, 0.5, 0, r.w);
  cairo_restore(cr);
}

/* ---- rasters ---- */

static double map_norm(double v, double lo, double hi, int log) {
  if (!isfinite(v)) return NAN;
  if (log) {
    if (v <= 0) return 0;
    v = log10(v);
    lo = log10(lo);
    hi = log10(hi);
  }
  return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}

cairo_surface_t *kd_fig_map_surface(const KdFigMap *m, KdCmap cmap, double lo, double hi,
                                    int log) {
  if (!m || !m->v || m->w <= 0 || m->h <= 0) return NULL;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, m->w, m->h);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    return NULL;
  }
  cairo_surface_flush(s);
  unsigned char *data = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  for (int i = 0; i < m->h; i++) {
    uint32_t *row = (uint32_t *)(void *)(data + (size_t)i * stride);
    for (int j = 0; j < m->w; j++) {
      uint8_t c[3];
      kd_cmap_rgb8(cmap, map_norm(m->v[(size_t)i * m->w + j], lo, hi, log), c);
      row[j] = 0xFF000000u | (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
    }
  }
  cairo_surface_mark_dirty(s);
  return s;
}

cairo_surface_t *kd_fig_image_surface(const KdFigImage *im) {
  if (!im || !im->rgb || im->w <= 0 || im->h <= 0) return NULL;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, im->w, im->h);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    return NULL;
  }
  cairo_surface_flush(s);
  unsigned char *data = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  size_t in_stride = im->stride > 0 ? (size_t)im->stride : (size_t)im->w * 3;
  for (int i = 0; i < im->h; i++) {
    uint32_t *row = (uint32_t *)(void *)(data + (size_t)i * stride);
    const uint8_t *src = im->rgb + (size_t)i * in_stride;
    for (int j = 0; j < im->w; j++)
      row[j] = 0xFF000000u | (uint32_t)src[3 * j] << 16 | (uint32_t)src[3 * j + 1] << 8 |
               src[3 * j + 2];
  }
  cairo_surface_mark_dirty(s);
  return s;
}

/* surf repeated nearest-neighbour to w x h pixels (32-bit formats); NULL
 * when it cannot be made. */
static cairo_surface_t *upsample(cairo_surface_t *surf, int w, int h) {
  cairo_format_t f = cairo_image_surface_get_format(surf);
  if (f != CAIRO_FORMAT_RGB24 && f != CAIRO_FORMAT_ARGB32) return NULL;
  cairo_surface_t *o = cairo_image_surface_create(f, w, h);
  if (cairo_surface_status(o) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(o);
    return NULL;
  }
  cairo_surface_flush(surf);
  cairo_surface_flush(o);
  int sw = cairo_image_surface_get_width(surf), sh = cairo_image_surface_get_height(surf);
  int ss = cairo_image_surface_get_stride(surf), os = cairo_image_surface_get_stride(o);
  const unsigned char *sd = cairo_image_surface_get_data(surf);
  unsigned char *od = cairo_image_surface_get_data(o);
  for (int y = 0; y < h; y++) {
    const uint32_t *src = (const uint32_t *)(const void *)(sd + (size_t)((long)y * sh / h) * ss);
    uint32_t *dst = (uint32_t *)(void *)(od + (size_t)y * os);
    for (int x = 0; x < w; x++) dst[x] = src[(long)x * sw / w];
  }
  cairo_surface_mark_dirty(o);
  return o;
}

void kd_fig_paint_nearest(cairo_t *cr, cairo_surface_t *surf, KdFigRect dst, double alpha) {
  if (!surf) return;
  int sw = cairo_image_surface_get_width(surf), sh = cairo_image_surface_get_height(surf);
  if (sw <= 0 || sh <= 0 || dst.w <= 0 || dst.h <= 0) return;
  /* On a vector page at a set dpi, embed the image with that many pixels
   * per inch of its printed size (device units are points there), so a
   * viewer or printer never resamples a 16x16 map into mush. */
  double dpi = kd_fig_raster_dpi(cr);
  cairo_surface_t *up = NULL;
  if (dpi > 0) {
    double dx = dst.w, dy = 0, ex = 0, ey = dst.h;
    cairo_user_to_device_distance(cr, &dx, &dy);
    cairo_user_to_device_distance(cr, &ex, &ey);
    long tw = lround(hypot(dx, dy) / 72.0 * dpi), th = lround(hypot(ex, ey) / 72.0 * dpi);
    if ((tw > sw || th > sh) && tw * th < 100000000L) {
      up = upsample(surf, tw > sw ? (int)tw : sw, th > sh ? (int)th : sh);
      if (up) {
        surf = up;
        sw = cairo_image_surface_get_width(up);
        sh = cairo_image_surface_get_height(up);
      }
    }
  }
  cairo_save(cr);
  cairo_translate(cr, dst.x, dst.y);
  cairo_scale(cr, dst.w / sw, dst.h / sh);
  cairo_set_source_surface(cr, surf, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, 0, 0, sw, sh);
  cairo_clip(cr);
  if (alpha > 0 && alpha < 1)
    cairo_paint_with_alpha(cr, alpha);
  else
    cairo_paint(cr);
  cairo_restore(cr);
  if (up) cairo_surface_destroy(up);
}

KdFigRect kd_fig_fit_aspect(KdFigRect r, double w, double h) {
  if (w <= 0 || h <= 0 || r.w <= 0 || r.h <= 0) return r;
  double k = fmin(r.w / w, r.h / h);
  KdFigRect o = {r.x + (r.w - w * k) / 2, r.y + (r.h - h * k) / 2, w * k, h * k};
  return o;
}
