/* Figure basics: style, palette, the one paint entry point, text with
 * anchors, panel letters and the nearest-neighbour rasters for maps and
 * images. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "figure_priv.h"

void kd_fig_style_default(KdFigStyle *st) {
  st->font_family = "DejaVu Sans";
  st->font_pt = 8;
  st->line_pt = 0.6;
  st->panel_letters = 0;
}

const KdFigStyle *kd_fig_style_or_default(const KdFigStyle *st, KdFigStyle *tmp) {
  if (st) return st;
  kd_fig_style_default(tmp);
  return tmp;
}

/* Okabe & Ito's palette, minus yellow (too light on white) and black
 * (kept for axes), led by the three box-source colours, plus two so ten
 * classes get distinct colours. */
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
};

void kd_fig_palette(int index, double rgb[3]) {
  int n = (int)(sizeof palette / sizeof palette[0]);
  int i = ((index % n) + n) % n;
  memcpy(rgb, palette[i], sizeof palette[i]);
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
  if (p && p->draw) p->draw(cr, (KdFigRect){0, 0, width_pt, height_pt}, st, p->spec);
  cairo_restore(cr);
}

int kd_fig_pick(const KdFigPanel *p, const KdFigStyle *st, double width_pt, double height_pt,
                double x, double y, KdFigPick *out) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  *out = (KdFigPick){{0}, {0, 0, 0}};
  if (!p || !p->pick || x < 0 || y < 0 || x > width_pt || y > height_pt) return 0;
  return p->pick((KdFigRect){0, 0, width_pt, height_pt}, st, p->spec, x, y, out);
}

/* ---- text ---- */

void kd_fig_font(cairo_t *cr, const KdFigStyle *st, double size_pt, KdFigWeight weight) {
  cairo_select_font_face(cr, st->font_family ? st->font_family : "DejaVu Sans",
                         CAIRO_FONT_SLANT_NORMAL,
                         weight == KD_FIG_BOLD ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size_pt);
}

double kd_fig_text_width(cairo_t *cr, const char *s) {
  cairo_text_extents_t te;
  cairo_text_extents(cr, s, &te);
  return te.x_advance;
}

void kd_fig_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                 double angle) {
  if (!s || !*s) return;
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double w = kd_fig_text_width(cr, s);
  /* Anchor on ascent..descent of the face, but trim the ascent to the cap
   * height region so "middle" looks centred for digits and capitals. */
  double asc = fe.ascent * 0.8, desc = fe.descent;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (angle != 0) cairo_rotate(cr, angle);
  cairo_move_to(cr, -ax * w, asc - ay * (asc + desc));
  cairo_show_text(cr, s);
  cairo_new_path(cr);
  cairo_restore(cr);
}

void kd_fig_text_fit(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                     double maxw) {
  if (!s || !*s) return;
  double w = kd_fig_text_width(cr, s);
  if (w <= maxw || maxw <= 0) {
    kd_fig_text(cr, x, y, s, ax, ay, 0);
    return;
  }
  cairo_save(cr);
  cairo_matrix_t fm;
  cairo_get_font_matrix(cr, &fm);
  double k = fmax(0.7, maxw / w);
  cairo_set_font_size(cr, fm.xx * k);
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  size_t len = strlen(buf);
  while (kd_fig_text_width(cr, buf) > maxw && len > 1) {
    /* Drop one UTF-8 character and append an ellipsis. */
    do len--; while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80);
    if (len + 4 > sizeof buf) break;
    memcpy(buf + len, "\xe2\x80\xa6", 4);
  }
  kd_fig_text(cr, x, y, buf, ax, ay, 0);
  cairo_restore(cr);
}

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
  if (dash == 1) {
    double d[2] = {3.2 * lw / 0.8, 1.8 * lw / 0.8};
    cairo_set_dash(cr, d, 2, 0);
  } else if (dash == 2) {
    double d[2] = {0.9 * lw / 0.8, 1.6 * lw / 0.8};
    cairo_set_dash(cr, d, 2, 0);
  } else {
    cairo_set_dash(cr, NULL, 0, 0);
  }
}

void kd_fig_panel_letter(cairo_t *cr, const KdFigStyle *st, KdFigRect r, int index) {
  char buf[8];
  if (index < 26) {
    snprintf(buf, sizeof buf, "%c", 'a' + index);
  } else {
    snprintf(buf, sizeof buf, "%c%c", 'a' + (index / 26 - 1) % 26, 'a' + index % 26);
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

void kd_fig_paint_nearest(cairo_t *cr, cairo_surface_t *surf, KdFigRect dst, double alpha) {
  if (!surf) return;
  int sw = cairo_image_surface_get_width(surf), sh = cairo_image_surface_get_height(surf);
  if (sw <= 0 || sh <= 0 || dst.w <= 0 || dst.h <= 0) return;
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
}

KdFigRect kd_fig_fit_aspect(KdFigRect r, double w, double h) {
  if (w <= 0 || h <= 0 || r.w <= 0 || r.h <= 0) return r;
  double k = fmin(r.w / w, r.h / h);
  KdFigRect o = {r.x + (r.w - w * k) / 2, r.y + (r.h - h * k) / 2, w * k, h * k};
  return o;
}
