/* Values per category as dots (a results table's seeds per method): one
 * row per category, a dot per value, a bar at the row's mean, "mean ± SD"
 * at the right, labelled vertical reference lines (teacher, baseline). */
#include <math.h>
#include <stdio.h>

#include "figure_priv.h"

static double row_h(const KdFigStyle *st) { return st->font_pt * 1.7; }

static int has_refs(const KdFigDots *d) { return d->nref > 0 && d->ref_x && d->ref_labels; }

double kd_fig_dots_height(double w, const KdFigStyle *st, const KdFigDots *d) {
  (void)w;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  double top = kd_fig_title_height(st, d->title) + (has_refs(d) ? st->font_pt * KD_FIG_LINE : st->font_pt * 0.4);
  return top + (d->n > 0 ? d->n : 1) * row_h(st) + kd_fig_axis_bottom_margin(st, d->xlabel, 1);
}

/* Mean and sample SD of a row's finite values; n of them. */
static int row_stats(const KdFigDots *d, int c, double *mean, double *sd) {
  int n = 0;
  double s = 0, ss = 0;
  for (int i = 0; i < d->counts[c]; i++)
    if (isfinite(d->values[c][i])) s += d->values[c][i], n++;
  *mean = n ? s / n : NAN;
  for (int i = 0; i < d->counts[c]; i++)
    if (isfinite(d->values[c][i])) ss += (d->values[c][i] - *mean) * (d->values[c][i] - *mean);
  *sd = n > 1 ? sqrt(ss / (n - 1)) : NAN;
  return n;
}

static void row_text(const KdFigDots *d, int c, char *buf, size_t len) {
  double m, sd;
  int n = row_stats(d, c, &m, &sd);
  int dec = d->decimals >= 0 ? d->decimals : 1;
  if (!n) snprintf(buf, len, "–");
  else if (n == 1) snprintf(buf, len, "%.*f (1)", dec, m);
  else snprintf(buf, len, "%.*f ± %.*f (%d)", dec, m, dec, sd, n);
}

void kd_fig_dots_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigDots *d) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  if (d->n <= 0) return;
  double th = kd_fig_title_height(st, d->title);
  double top = th + (has_refs(d) ? st->font_pt * KD_FIG_LINE : st->font_pt * 0.4);
  double rh = row_h(st), ph = d->n * rh;
  /* Margins: category names at the left, the row statistics at the right. */
  cairo_save(cr);
  kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
  double lm = 0, rm = 0;
  char text[64];
  for (int c = 0; c < d->n; c++) {
    lm = fmax(lm, kd_fig_text_width(cr, d->categories[c]));
    row_text(d, c, text, sizeof text);
    rm = fmax(rm, kd_fig_text_width(cr, text));
  }
  cairo_restore(cr);
  double pad = st->font_pt * 0.6;
  lm = fmin(lm + pad, r.w * 0.35);
  rm = fmin(rm + pad, r.w * 0.3);
  KdFigRect plot = {r.x + lm, r.y + top, r.w - lm - rm, ph};

  double lo = INFINITY, hi = -INFINITY;
  for (int c = 0; c < d->n; c++)
    for (int i = 0; i < d->counts[c]; i++)
      if (isfinite(d->values[c][i])) lo = fmin(lo, d->values[c][i]), hi = fmax(hi, d->values[c][i]);
  for (int k = 0; has_refs(d) && k < d->nref; k++)
    if (isfinite(d->ref_x[k])) lo = fmin(lo, d->ref_x[k]), hi = fmax(hi, d->ref_x[k]);
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
  KdFigAxis x, y = {0, d->n, 0, {{0}, 0, {0}, 0, 0}};
  kd_fig_axis_setup(&x, lo, hi, 0, (int)fmax(3, plot.w / (st->font_pt * 4)), 1);

  kd_fig_title(cr, st, r, d->title);
  kd_fig_axes_draw(cr, st, plot, &x, &y, d->xlabel, NULL, 1);

  cairo_save(cr);
  /* Row guides, then the reference lines under the dots. */
  cairo_set_line_width(cr, st->line_pt * 0.5);
  cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
  for (int c = 0; c < d->n; c++) {
    double py = plot.y + (c + 0.5) * rh;
    cairo_move_to(cr, plot.x, py);
    cairo_line_to(cr, plot.x + plot.w, py);
  }
  cairo_stroke(cr);
  kd_fig_font(cr, st, st->font_pt * 0.875, KD_FIG_NORMAL);
  for (int k = 0; has_refs(d) && k < d->nref; k++) {
    double px = kd_fig_axis_map(&x, d->ref_x[k], plot.x, plot.x + plot.w);
    if (!isfinite(px)) continue;
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cairo_set_line_width(cr, st->line_pt);
    kd_fig_set_dash(cr, 1, st->line_pt);
    cairo_move_to(cr, px, plot.y);
    cairo_line_to(cr, px, plot.y + plot.h);
    cairo_stroke(cr);
    kd_fig_set_dash(cr, 0, 1);
    double ax = px < plot.x + plot.w * 0.15 ? 0 : px > plot.x + plot.w * 0.85 ? 1 : 0.5;
    /* Two lines close together: their labels turn away from each other. */
    double tw = kd_fig_text_width(cr, d->ref_labels[k]);
    for (int o = 0; o < d->nref; o++) {
      double qx = kd_fig_axis_map(&x, d->ref_x[o], plot.x, plot.x + plot.w);
      if (o == k || !isfinite(qx) || fabs(qx - px) > tw) continue;
      ax = px < qx || (px == qx && k < o) ? 1 : 0;
    }
    kd_fig_text(cr, px, plot.y - st->font_pt * 0.15, d->ref_labels[k], ax, 1, 0);
  }
  double dot = st->font_pt * 0.28;
  for (int c = 0; c < d->n; c++) {
    double py = plot.y + (c + 0.5) * rh, rgb[3];
    kd_fig_palette(c, rgb);
    for (int i = 0; i < d->counts[c]; i++) {
      double px = kd_fig_axis_map(&x, d->values[c][i], plot.x, plot.x + plot.w);
      if (!isfinite(px)) continue;
      cairo_new_path(cr);
      cairo_arc(cr, px, py, dot, 0, 2 * M_PI);
      kd_fig_set_rgb(cr, rgb, 0.35);
      cairo_fill_preserve(cr);
      kd_fig_set_rgb(cr, rgb, 1);
      cairo_set_line_width(cr, st->line_pt);
      cairo_stroke(cr);
    }
    double m, sd;
    if (row_stats(d, c, &m, &sd) > 0) {
      double px = kd_fig_axis_map(&x, m, plot.x, plot.x + plot.w);
      cairo_set_source_rgb(cr, 0, 0, 0);
      cairo_set_line_width(cr, st->line_pt * 2);
      cairo_move_to(cr, px, py - rh * 0.32);
      cairo_line_to(cr, px, py + rh * 0.32);
      cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
    kd_fig_text_fit(cr, plot.x - pad * 0.6, py, d->categories[c], 1, 0.5, lm - pad * 0.6);
    row_text(d, c, text, sizeof text);
    kd_fig_text_fit(cr, plot.x + plot.w + pad * 0.6, py, text, 0, 0.5, rm - pad * 0.6);
  }
  cairo_restore(cr);
}

static void dots_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_dots_draw(cr, r, st, spec);
}
static double dots_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_dots_height(w, st, spec);
}
KdFigPanel kd_fig_dots_panel(const KdFigDots *d) { return (KdFigPanel){dots_draw_v, dots_height_v, d, NULL}; }
