/* HEAD's sampled RoIs, teacher vs assistant vs student per RoI: the image
 * with the RoIs beside a scatter of two per-RoI gaps; the pointer's point
 * is ringed and its RoI drawn thick on the image (figure.h, KdFigRois). */
#include <math.h>
#include <stdio.h>

#include "figure_priv.h"

/* Where the parts go in r: the image column, the plot and its axes. */
typedef struct {
  KdFigRect img, plot;
  KdFigAxis xa, ya;
  double top;
} Layout;

static double gap(const KdFigRois *f, int i, int g) { return f->rows[(size_t)i * f->cols + 6 + g]; }
static int positive(const KdFigRois *f, int i) { return f->rows[(size_t)i * f->cols + 4] > 0.5f; }
static int on_plot(const KdFigRois *f, int i) { return isfinite(gap(f, i, f->xgap)) && isfinite(gap(f, i, f->ygap)); }

static void layout(KdFigRect r, const KdFigStyle *st, const KdFigRois *f, Layout *L) {
  double th = kd_fig_title_height(st, f->title);
  double body = r.h - th, iw = fmin(r.w * 0.42, body * 1.05);
  L->img = (KdFigRect){r.x, r.y + th, iw, body};
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int i = 0; i < f->n; i++) {
    if (!on_plot(f, i)) continue;
    xlo = fmin(xlo, gap(f, i, f->xgap)), xhi = fmax(xhi, gap(f, i, f->xgap));
    ylo = fmin(ylo, gap(f, i, f->ygap)), yhi = fmax(yhi, gap(f, i, f->ygap));
  }
  if (!isfinite(xlo)) xlo = ylo = 0, xhi = yhi = 1;
  /* Gaps are MSEs: the axes start at 0 so that distances read as ratios. */
  double ph = body - kd_fig_axis_bottom_margin(st, f->xlabel, 1) - st->font_pt * 0.6;
  kd_fig_axis_setup(&L->ya, 0, yhi > 0 ? yhi : 1, 0, ph > 120 ? 6 : 4, 1);
  cairo_t *cr = kd_fig_measure_cr(st);
  double lm = kd_fig_axis_left_margin(cr, st, &L->ya, f->ylabel);
  cairo_destroy(cr);
  double px = r.x + iw + st->font_pt * 1.2 + lm;
  L->plot = (KdFigRect){px, r.y + th + st->font_pt * 0.6, r.x + r.w - px - st->font_pt, ph};
  kd_fig_axis_setup(&L->xa, 0, xhi > 0 ? xhi : 1, 0, (int)fmax(3, L->plot.w / (st->font_pt * 4.5)), 1);
  L->top = th;
}

static void point(const Layout *L, const KdFigRois *f, int i, double *x, double *y) {
  *x = kd_fig_axis_map(&L->xa, gap(f, i, f->xgap), L->plot.x, L->plot.x + L->plot.w);
  *y = kd_fig_axis_map(&L->ya, gap(f, i, f->ygap), L->plot.y + L->plot.h, L->plot.y);
}

static int hit(const Layout *L, const KdFigStyle *st, const KdFigRois *f, double x, double y) {
  int best = -1;
  double bd = pow(st->font_pt * 0.8, 2);
  for (int i = 0; i < f->n; i++) {
    if (!on_plot(f, i)) continue;
    double px, py;
    point(L, f, i, &px, &py);
    double d = (px - x) * (px - x) + (py - y) * (py - y);
    if (d < bd) bd = d, best = i;
  }
  return best;
}

static void rgb_of(const KdFigRois *f, int i, double rgb[3]) {
  if (positive(f, i)) kd_fig_palette(3, rgb); /* the image's positive RoIs: orange */
  else rgb[0] = rgb[1] = rgb[2] = 0.55;
}

static void rois_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  const KdFigRois *f = spec;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  Layout L;
  layout(r, st, f, &L);
  kd_fig_title(cr, st, r, f->title);
  kd_fig_detview_draw(cr, L.img, st, &f->det);
  kd_fig_axes_draw(cr, st, L.plot, &L.xa, &L.ya, f->xlabel, f->ylabel, 1);
  int h = f->hover_on ? hit(&L, st, f, f->hover_x, f->hover_y) : -1;
  double rad = fmax(1.4, st->font_pt * 0.28);
  cairo_save(cr);
  cairo_rectangle(cr, L.plot.x, L.plot.y, L.plot.w, L.plot.h);
  cairo_clip(cr);
  for (int pass = 0; pass < 2; pass++) /* negatives under positives */
    for (int i = 0; i < f->n; i++) {
      if (!on_plot(f, i) || positive(f, i) != pass) continue;
      double x, y, rgb[3];
      point(&L, f, i, &x, &y);
      rgb_of(f, i, rgb);
      kd_fig_set_rgb(cr, rgb, 1);
      cairo_arc(cr, x, y, rad, 0, 2 * M_PI);
      if (pass) cairo_fill(cr);
      else cairo_set_line_width(cr, st->line_pt * 0.8), cairo_stroke(cr);
    }
  if (h >= 0) {
    double x, y;
    point(&L, f, h, &x, &y);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, st->line_pt * 1.4);
    cairo_arc(cr, x, y, rad * 2.4, 0, 2 * M_PI);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  if (h < 0 || f->det.image.w <= 0) return;
  /* The hovered RoI on the image: black under its colour, so it reads on any background. */
  KdFigRect ir = kd_fig_detview_image_rect(L.img, st, &f->det);
  const float *b = f->rows + (size_t)h * f->cols;
  double sx = ir.w / f->det.image.w, sy = ir.h / f->det.image.h, rgb[3];
  rgb_of(f, h, rgb);
  cairo_save(cr);
  cairo_rectangle(cr, ir.x, ir.y, ir.w, ir.h);
  cairo_clip(cr);
  for (int k = 0; k < 2; k++) {
    cairo_rectangle(cr, ir.x + b[0] * sx, ir.y + b[1] * sy, (b[2] - b[0]) * sx, (b[3] - b[1]) * sy);
    if (k) kd_fig_set_rgb(cr, rgb, 1);
    else cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, st->line_pt * (k ? 1.6 : 3.2));
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

static double rois_height(double w, const KdFigStyle *st, const void *spec) {
  const KdFigRois *f = spec;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  return kd_fig_title_height(st, f->title) + fmax(kd_fig_detview_height(w * 0.42, st, &f->det), fmin(w * 0.4, 240));
}

static int rois_pick(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  const KdFigRois *f = spec;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  Layout L;
  layout(r, st, f, &L);
  int i = hit(&L, st, f, x, y);
  if (i < 0) return 0;
  const float *row = f->rows + (size_t)i * f->cols;
  int lab = (int)row[4];
  const char *cls = lab > 0 && f->class_names && lab - 1 < f->nclasses ? f->class_names[lab - 1] : NULL;
  char gaps[200] = "";
  for (int g = 0, n = 0; g < 3 && 6 + g < f->cols; g++)
    if (f->gap_names[g] && isfinite(row[6 + g]))
      n += snprintf(gaps + n, sizeof gaps - (size_t)n, "%s%s %.4g", n ? ", " : "", f->gap_names[g], row[6 + g]);
  char kind[64];
  if (lab > 0) snprintf(kind, sizeof kind, "positive (%s)", cls ? cls : "?");
  else snprintf(kind, sizeof kind, "negative");
  snprintf(out->text, sizeof out->text, "RoI %d, %s, box %.0f,%.0f-%.0f,%.0f: %s (per-RoI MSE, unweighted)", i, kind, row[0],
           row[1], row[2], row[3], gaps);
  return 1;
}

KdFigPanel kd_fig_rois_panel(const KdFigRois *r) { return (KdFigPanel){rois_draw, rois_height, r, rois_pick}; }
