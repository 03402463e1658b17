/* Curves: series vs step on true linear/log axes, smoothed per chart
 * (debiased EMA or moving average) over the raw series drawn faintly, then
 * thinned by per-pixel min/max so spikes survive; vertical markers where
 * parameters changed. Also the stacked loss/AP figure and the fg/bg
 * gradient figure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "figure_priv.h"

#define MAX_KEYS 24

typedef struct PlotGeom {
  KdFigAxis x, y;
  KdFigRect plot;
  double legend_y, legend_h;
} PlotGeom;

static int smoothing_on(const KdFigPlot *p) { return p->smooth.kind != KD_SMOOTH_NONE; }

static void series_color(const KdFigSeries *s, int i, double rgb[3]) {
  kd_fig_palette(s->color >= 0 ? s->color : i, rgb);
}

/* Keys from the series, plus a note on the smoothing when it is on. */
static int plot_keys(const KdFigPlot *p, KdFigKey *keys, char *note, size_t note_len) {
  int k = 0;
  for (int i = 0; i < p->nseries && k < MAX_KEYS - 1; i++) {
    const KdFigSeries *s = &p->series[i];
    if (!s->name || !*s->name) continue;
    keys[k].label = s->name;
    series_color(s, i, keys[k].rgb);
    keys[k].dash = s->dash;
    keys[k].kind = s->points && s->n < 64 ? (s->n > 1 ? KD_FIG_KEY_DOT_LINE : KD_FIG_KEY_DOT) : KD_FIG_KEY_LINE;
    k++;
  }
  if (smoothing_on(p) && k < MAX_KEYS) {
    if (p->smooth.kind == KD_SMOOTH_EMA)
      snprintf(note, note_len, "EMA %.2f%s", p->smooth.weight, p->hide_raw ? "" : " (raw faint)");
    else
      snprintf(note, note_len, "mean of %d%s", p->smooth.window, p->hide_raw ? "" : " (raw faint)");
    keys[k] = (KdFigKey){note, {0.72, 0.72, 0.72}, 0, KD_FIG_KEY_LINE};
    k++;
  }
  return k;
}

static void data_range(const KdFigPlot *p, double *xlo, double *xhi, double *ylo, double *yhi) {
  *xlo = *ylo = INFINITY;
  *xhi = *yhi = -INFINITY;
  for (int i = 0; i < p->nseries; i++) {
    const KdFigSeries *s = &p->series[i];
    for (size_t j = 0; j < s->n; j++) {
      double x = s->x ? s->x[j] : (double)j, y = s->y[j];
      if (!isfinite(x) || !isfinite(y)) continue;
      if (p->logx && x <= 0) continue;
      if (p->logy && y <= 0) continue;
      *xlo = fmin(*xlo, x);
      *xhi = fmax(*xhi, x);
      *ylo = fmin(*ylo, y);
      *yhi = fmax(*yhi, y);
    }
  }
  if (isfinite(p->xmin) && isfinite(p->xmax) && p->xmin < p->xmax) {
    *xlo = p->xmin;
    *xhi = p->xmax;
  }
  if (isfinite(p->ymin) && isfinite(p->ymax) && p->ymin < p->ymax) {
    *ylo = p->ymin;
    *yhi = p->ymax;
  }
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static double plot_right_margin(const KdFigStyle *st) { return st->font_pt * 1.2; }

/* Lays out one chart in r. xshared: use this x axis instead of the data's
 * (stacked charts); left: a forced left margin (0: own). */
static void plot_layout(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, KdFigRect r,
                        const KdFigKey *keys, int nkeys, int x_tick_labels,
                        const KdFigAxis *xshared, double left, PlotGeom *g) {
  double th = kd_fig_title_height(st, p->title);
  g->legend_y = r.y + th;
  g->legend_h = nkeys > 0 ? kd_fig_legend(cr, st, r.x, 0, r.w, keys, nkeys, 0) : 0;
  double top = th + g->legend_h + st->font_pt * 0.4;
  double bottom = kd_fig_axis_bottom_margin(st, p->xlabel, x_tick_labels);
  double ph = r.h - top - bottom;
  double xlo, xhi, ylo, yhi;
  data_range(p, &xlo, &xhi, &ylo, &yhi);
  int pad_y = !(isfinite(p->ymin) && isfinite(p->ymax) && p->ymin < p->ymax);
  kd_fig_axis_setup(&g->y, ylo, yhi, p->logy, clampi((int)(ph / (st->font_pt * 2.6)), 3, 8),
                    pad_y);
  double lm = left > 0 ? left : kd_fig_axis_left_margin(cr, st, &g->y, p->ylabel);
  double pw = r.w - lm - plot_right_margin(st);
  if (xshared) {
    g->x = *xshared;
  } else {
    kd_fig_axis_setup(&g->x, xlo, xhi, p->logx, clampi((int)(pw / (st->font_pt * 4.5)), 3, 10),
                      0);
  }
  g->plot = (KdFigRect){r.x + lm, r.y + top, pw, ph};
}

/* Draws a polyline through the kept samples, breaking at NaN. */
static void stroke_series(cairo_t *cr, const double *px, const double *py, const size_t *idx,
                          size_t m) {
  int pen = 0;
  for (size_t k = 0; k < m; k++) {
    size_t i = idx[k];
    if (!isfinite(px[i]) || !isfinite(py[i])) {
      pen = 0;
      continue;
    }
    if (pen)
      cairo_line_to(cr, px[i], py[i]);
    else
      cairo_move_to(cr, px[i], py[i]);
    pen = 1;
  }
  cairo_stroke(cr);
}

/* Column width for thinning: one device pixel on raster surfaces, a
 * quarter point on vector ones (they are printed at high resolution). */
static double thin_bucket(cairo_t *cr) {
  cairo_surface_type_t t = cairo_surface_get_type(cairo_get_target(cr));
  if (t == CAIRO_SURFACE_TYPE_PDF || t == CAIRO_SURFACE_TYPE_SVG || t == CAIRO_SURFACE_TYPE_PS)
    return 0.25;
  double dx = 1, dy = 0;
  cairo_device_to_user_distance(cr, &dx, &dy);
  return fabs(dx) > 0 ? fabs(dx) : 1;
}

static void draw_series(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, const PlotGeom *g,
                        int si) {
  const KdFigSeries *s = &p->series[si];
  if (!s->y || s->n == 0) return;
  size_t n = s->n;
  double *px = malloc(n * sizeof *px), *py = malloc(n * sizeof *py);
  double *sm = malloc(n * sizeof *sm), *spy = malloc(n * sizeof *spy);
  size_t *idx = malloc(n * sizeof *idx);
  if (!px || !py || !sm || !spy || !idx) goto out;
  double x0 = g->plot.x, x1 = g->plot.x + g->plot.w;
  double y0 = g->plot.y + g->plot.h, y1 = g->plot.y;
  for (size_t i = 0; i < n; i++) {
    px[i] = kd_fig_axis_map(&g->x, s->x ? s->x[i] : (double)i, x0, x1);
    py[i] = kd_fig_axis_map(&g->y, s->y[i], y0, y1);
  }
  /* Smooth the full series first, then thin what is drawn. */
  int smooth = smoothing_on(p);
  if (smooth) {
    kd_series_smooth(&p->smooth, s->y, n, sm);
    for (size_t i = 0; i < n; i++) spy[i] = kd_fig_axis_map(&g->y, sm[i], y0, y1);
  }
  double rgb[3], lw = st->line_pt * 1.6, bucket = thin_bucket(cr);
  series_color(s, si, rgb);
  cairo_save(cr);
  cairo_rectangle(cr, g->plot.x, g->plot.y, g->plot.w, g->plot.h);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  /* y is passed to the thinning in device orientation; min/max are swapped
   * but both are kept, which is all that matters. */
  if (!smooth || !p->hide_raw) {
    size_t m = kd_series_thin_minmax(px, py, n, bucket, idx);
    kd_fig_set_rgb(cr, rgb, smooth ? 0.28 : 1);
    cairo_set_line_width(cr, smooth ? lw * 0.6 : lw);
    kd_fig_set_dash(cr, smooth ? 0 : s->dash, lw);
    stroke_series(cr, px, py, idx, m);
    if (s->points && !smooth) {
      /* A dot on the frame (the last evaluation sits at the x range's end)
       * is drawn whole: the clip grows by the dot's radius. */
      double rad = lw * 1.3;
      cairo_save(cr);
      cairo_reset_clip(cr);
      cairo_rectangle(cr, g->plot.x - rad, g->plot.y - rad, g->plot.w + 2 * rad, g->plot.h + 2 * rad);
      cairo_clip(cr);
      for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        if (!isfinite(px[i]) || !isfinite(py[i])) continue;
        cairo_new_sub_path(cr);
        cairo_arc(cr, px[i], py[i], rad, 0, 2 * M_PI);
      }
      cairo_fill(cr);
      cairo_restore(cr);
    }
  }
  if (smooth) {
    size_t m = kd_series_thin_minmax(px, spy, n, bucket, idx);
    kd_fig_set_rgb(cr, rgb, 1);
    cairo_set_line_width(cr, lw);
    kd_fig_set_dash(cr, s->dash, lw);
    stroke_series(cr, px, spy, idx, m);
  }
  cairo_restore(cr);
out:
  free(px);
  free(py);
  free(sm);
  free(spy);
  free(idx);
}

/* Marker lines go under the curves (labels = 0), their labels over them
 * (lines = 0) so no curve hides a label. */
static void draw_markers(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p,
                         const PlotGeom *g, int lines, int labels) {
  if (p->nmarkers <= 0 || !p->markers) return;
  cairo_save(cr);
  cairo_rectangle(cr, g->plot.x, g->plot.y, g->plot.w, g->plot.h);
  cairo_clip(cr);
  double lw = st->line_pt;
  double fs = st->font_pt * 0.75;
  kd_fig_font(cr, st, fs, KD_FIG_NORMAL);
  for (int i = 0; i < p->nmarkers; i++) {
    double px = kd_fig_axis_map(&g->x, p->markers[i].x, g->plot.x, g->plot.x + g->plot.w);
    if (!isfinite(px)) continue;
    if (lines) {
      cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
      cairo_set_line_width(cr, lw);
      kd_fig_set_dash(cr, 1, lw);
      cairo_move_to(cr, px, g->plot.y);
      cairo_line_to(cr, px, g->plot.y + g->plot.h);
      cairo_stroke(cr);
    }
    const char *lab = p->markers[i].label;
    if (!labels || !lab || !*lab) continue;
    /* The label runs down the line from the top, on its right side (left
     * near the plot's right edge), on a white chip. */
    double tw = kd_fig_text_width(cr, lab);
    double maxw = g->plot.h - fs * 0.6;
    double w = fmin(tw, maxw), pad = fs * 0.15, chip = fs * 1.2;
    double cx = px + lw * 0.5;
    if (cx + chip > g->plot.x + g->plot.w) cx = px - lw * 0.5 - chip;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, cx, g->plot.y + fs * 0.3, chip, w + 2 * pad);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_save(cr);
    cairo_translate(cr, cx + fs * 0.1, g->plot.y + fs * 0.3 + pad);
    cairo_rotate(cr, M_PI / 2);
    kd_fig_text_fit(cr, 0, 0, lab, 0, 1, maxw);
    cairo_restore(cr);
  }
  cairo_restore(cr);
}

static void plot_render(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, KdFigRect r,
                        const PlotGeom *g, const KdFigKey *keys, int nkeys, int label_markers,
                        int x_tick_labels) {
  kd_fig_title(cr, st, r, p->title);
  if (nkeys > 0) kd_fig_legend(cr, st, r.x, g->legend_y, r.w, keys, nkeys, 1);
  kd_fig_axes_draw(cr, st, g->plot, &g->x, &g->y, p->xlabel, p->ylabel, x_tick_labels);
  draw_markers(cr, st, p, g, 1, 0);
  for (int i = 0; i < p->nseries; i++) draw_series(cr, st, p, g, i);
  if (label_markers) draw_markers(cr, st, p, g, 0, 1);
  /* Frame again on top so curves touching it do not hide it. */
  cairo_save(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, st->line_pt);
  cairo_rectangle(cr, g->plot.x, g->plot.y, g->plot.w, g->plot.h);
  cairo_stroke(cr);
  cairo_restore(cr);
}

/* ---- one chart ---- */

static double chart_height(double w, const KdFigStyle *st, const KdFigPlot *p,
                           const KdFigKey *keys, int nkeys, double plot_h) {
  cairo_t *cr = kd_fig_measure_cr(st);
  double lh = nkeys > 0 ? kd_fig_legend(cr, st, 0, 0, w, keys, nkeys, 0) : 0;
  cairo_destroy(cr);
  return kd_fig_title_height(st, p->title) + lh + st->font_pt * 0.4 + plot_h +
         kd_fig_axis_bottom_margin(st, p->xlabel, 1);
}

static double plot_area_h(double w, double k) { return fmin(fmax(w * k, 100), 190); }

double kd_fig_plot_height(double w, const KdFigStyle *st, const KdFigPlot *p) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdFigKey keys[MAX_KEYS];
  char note[64];
  int nk = p->no_legend ? 0 : plot_keys(p, keys, note, sizeof note);
  return chart_height(w, st, p, keys, nk, plot_area_h(w, 0.5));
}

void kd_fig_plot_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigPlot *p) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdFigKey keys[MAX_KEYS];
  char note[64];
  int nk = p->no_legend ? 0 : plot_keys(p, keys, note, sizeof note);
  PlotGeom g;
  plot_layout(cr, st, p, r, keys, nk, 1, NULL, 0, &g);
  plot_render(cr, st, p, r, &g, keys, nk, 1, 1);
}

static void plot_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_plot_draw(cr, r, st, spec);
}
static double plot_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_plot_height(w, st, spec);
}
KdFigPanel kd_fig_plot_panel(const KdFigPlot *p) {
  return (KdFigPanel){plot_draw_v, plot_height_v, p, NULL};
}

/* ---- loss over AP ---- */

static double curves_split(const KdFigStyle *st, const KdFigCurves *c, double w, double *h_loss,
                           double *h_ap) {
  KdFigKey k1[MAX_KEYS], k2[MAX_KEYS];
  char n1[64], n2[64];
  int nk1 = c->loss.no_legend ? 0 : plot_keys(&c->loss, k1, n1, sizeof n1);
  int nk2 = c->ap.no_legend ? 0 : plot_keys(&c->ap, k2, n2, sizeof n2);
  *h_loss = chart_height(w, st, &c->loss, k1, nk1, plot_area_h(w, 0.42));
  *h_ap = chart_height(w, st, &c->ap, k2, nk2, plot_area_h(w, 0.25) * 0.75);
  return *h_loss + *h_ap;
}

double kd_fig_curves_height(double w, const KdFigStyle *st, const KdFigCurves *c) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  double a, b;
  return curves_split(st, c, w, &a, &b) + st->font_pt * 0.5;
}

/* The x range over both charts, so steps line up. */
static void shared_x(const KdFigCurves *c, double w, const KdFigStyle *st, KdFigAxis *x) {
  double a0, a1, b0, b1, y0, y1;
  data_range(&c->loss, &a0, &a1, &y0, &y1);
  data_range(&c->ap, &b0, &b1, &y0, &y1);
  double lo = fmin(a0, b0), hi = fmax(a1, b1);
  int logx = c->loss.logx || c->ap.logx;
  kd_fig_axis_setup(x, lo, hi, logx, clampi((int)(w / (st->font_pt * 4.5)), 3, 10), 0);
}

/* Both charts' rectangles and geometry for r (shared by draw and pick). */
typedef struct CurvesGeom {
  KdFigRect r1, r2;
  KdFigKey k1[MAX_KEYS], k2[MAX_KEYS];
  char n1[64], n2[64];
  int nk1, nk2;
  PlotGeom g1, g2;
} CurvesGeom;

static void curves_geom(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigCurves *c, CurvesGeom *G) {
  double h_loss, h_ap;
  double total = curves_split(st, c, r.w, &h_loss, &h_ap);
  double k = total > 0 ? (r.h - st->font_pt * 0.5) / total : 1; /* fill what we were given */
  G->r1 = (KdFigRect){r.x, r.y, r.w, h_loss * k};
  G->r2 = (KdFigRect){r.x, r.y + h_loss * k + st->font_pt * 0.5, r.w, h_ap * k};
  G->nk1 = c->loss.no_legend ? 0 : plot_keys(&c->loss, G->k1, G->n1, sizeof G->n1);
  G->nk2 = c->ap.no_legend ? 0 : plot_keys(&c->ap, G->k2, G->n2, sizeof G->n2);
  /* Both charts get the wider left margin so the x axes align. */
  KdFigAxis x;
  shared_x(c, r.w, st, &x);
  plot_layout(cr, st, &c->loss, G->r1, G->k1, G->nk1, 0, &x, 0, &G->g1);
  plot_layout(cr, st, &c->ap, G->r2, G->k2, G->nk2, 1, &x, 0, &G->g2);
  double left = fmax(kd_fig_axis_left_margin(cr, st, &G->g1.y, c->loss.ylabel),
                     kd_fig_axis_left_margin(cr, st, &G->g2.y, c->ap.ylabel));
  plot_layout(cr, st, &c->loss, G->r1, G->k1, G->nk1, 0, &x, left, &G->g1);
  plot_layout(cr, st, &c->ap, G->r2, G->k2, G->nk2, 1, &x, left, &G->g2);
}

void kd_fig_curves_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigCurves *c) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  CurvesGeom G;
  curves_geom(cr, r, st, c, &G);
  plot_render(cr, st, &c->loss, G.r1, &G.g1, G.k1, G.nk1, 1, 0);
  plot_render(cr, st, &c->ap, G.r2, &G.g2, G.k2, G.nk2, 0, 1);
  if (st->panel_letters) {
    kd_fig_panel_letter(cr, st, (KdFigRect){G.r1.x, G.r1.y, 0, 0}, 0);
    kd_fig_panel_letter(cr, st, (KdFigRect){G.r2.x, G.r2.y, 0, 0}, 1);
  }
}

/* The sample of s nearest to step x (s->x ascending, as logs are). */
static size_t nearest_sample(const KdFigSeries *s, double x) {
  size_t lo = 0, hi = s->n;
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if ((s->x ? s->x[mid] : (double)mid) <= x) lo = mid;
    else hi = mid;
  }
  if (lo + 1 < s->n) {
    double a = s->x ? s->x[lo] : (double)lo, b = s->x ? s->x[lo + 1] : (double)(lo + 1);
    if (fabs(b - x) < fabs(x - a)) lo++;
  }
  return lo;
}

/* "step S: name value, ..." for the samples of every series nearest to the
 * step under x; the chart is p drawn with geometry g. */
static int plot_pick(const KdFigPlot *p, const PlotGeom *g, double x, double y, char *out, size_t len) {
  if (x < g->plot.x || x > g->plot.x + g->plot.w || y < g->plot.y || y > g->plot.y + g->plot.h) return 0;
  double t = (x - g->plot.x) / g->plot.w;
  double step = g->x.log ? pow(10, log10(g->x.lo) + t * (log10(g->x.hi) - log10(g->x.lo))) : g->x.lo + t * (g->x.hi - g->x.lo);
  /* Report the logged step nearest to the pointer (of the first series with
   * data), then each series' value at its sample nearest that step. */
  double at = NAN;
  for (int i = 0; i < p->nseries && isnan(at); i++) {
    const KdFigSeries *s = &p->series[i];
    if (s->n > 0 && s->y) {
      size_t k = nearest_sample(s, step);
      at = s->x ? s->x[k] : (double)k;
    }
  }
  if (isnan(at)) return 0;
  size_t used = (size_t)snprintf(out, len, "step %.0f:", at);
  for (int i = 0; i < p->nseries && used < len; i++) {
    const KdFigSeries *s = &p->series[i];
    if (s->n == 0 || !s->y || !s->name) continue;
    size_t k = nearest_sample(s, at);
    double sx = s->x ? s->x[k] : (double)k;
    if (fabs(sx - at) > fmax(1.0, 0.02 * (g->x.hi - g->x.lo))) continue; /* no sample near this step */
    used += (size_t)snprintf(out + used, len - used, "%s %s %.4g", i ? "," : "", s->name, s->y[k]);
  }
  return 1;
}

static int curves_pick_v(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *pick) {
  char *out = pick->text;
  const size_t len = sizeof pick->text;
  const KdFigCurves *c = spec;
  cairo_t *cr = kd_fig_measure_cr(st);
  CurvesGeom G;
  curves_geom(cr, r, st, c, &G);
  cairo_destroy(cr);
  return plot_pick(&c->loss, &G.g1, x, y, out, len) || plot_pick(&c->ap, &G.g2, x, y, out, len);
}

static void curves_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_curves_draw(cr, r, st, spec);
}
static double curves_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_curves_height(w, st, spec);
}
KdFigPanel kd_fig_curves_panel(const KdFigCurves *c) {
  return (KdFigPanel){curves_draw_v, curves_height_v, c, curves_pick_v};
}

/* ---- fg/bg gradient magnitude by source ---- */

#define MAX_SOURCES 8

/* The chart behind the gradient figure: per source a solid fg and a dashed
 * bg series in the source's colour. */
static int grad_plot(const KdFigGradCurves *g, KdFigSeries *ser, KdFigPlot *p, KdFigKey *keys,
                     char *note_buf) {
  int ns = g->nsources < MAX_SOURCES ? g->nsources : MAX_SOURCES;
  for (int s = 0; s < ns; s++) {
    ser[2 * s] = (KdFigSeries){g->sources[s], g->step, g->fg[s], g->n, s, 0, 0};
    ser[2 * s + 1] = (KdFigSeries){NULL, g->step, g->bg[s], g->n, s, 1, 0};
    keys[s] = (KdFigKey){g->sources[s], {0}, 0, KD_FIG_KEY_FILL};
    kd_fig_palette(s, keys[s].rgb);
  }
  int k = ns;
  keys[k++] = (KdFigKey){"foreground", {0.2, 0.2, 0.2}, 0, KD_FIG_KEY_LINE};
  keys[k++] = (KdFigKey){"background", {0.2, 0.2, 0.2}, 1, KD_FIG_KEY_LINE};
  if (g->smooth.kind != KD_SMOOTH_NONE) {
    KdFigPlot tmp = {.smooth = g->smooth};
    KdFigKey note[2];
    int nn = plot_keys(&tmp, note, note_buf, 64);
    if (nn == 1) keys[k++] = note[0];
  }
  *p = (KdFigPlot){.title = g->title,
                   .xlabel = "step",
                   .ylabel = "mean |grad|",
                   .series = ser,
                   .nseries = 2 * ns,
                   .markers = g->markers,
                   .nmarkers = g->nmarkers,
                   .logy = !g->linear_y,
                   .smooth = g->smooth,
                   .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN,
                   .no_legend = 1};
  return k;
}

double kd_fig_gradcurves_height(double w, const KdFigStyle *st, const KdFigGradCurves *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdFigSeries ser[2 * MAX_SOURCES];
  KdFigKey keys[MAX_SOURCES + 3];
  KdFigPlot p;
  char note[64];
  int nk = grad_plot(g, ser, &p, keys, note);
  return chart_height(w, st, &p, keys, nk, plot_area_h(w, 0.5));
}

void kd_fig_gradcurves_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st,
                            const KdFigGradCurves *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdFigSeries ser[2 * MAX_SOURCES];
  KdFigKey keys[MAX_SOURCES + 3];
  KdFigPlot p;
  char note[64];
  int nk = grad_plot(g, ser, &p, keys, note);
  PlotGeom geo;
  plot_layout(cr, st, &p, r, keys, nk, 1, NULL, 0, &geo);
  plot_render(cr, st, &p, r, &geo, keys, nk, 1, 1);
}

static void grad_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_gradcurves_draw(cr, r, st, spec);
}
static double grad_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_gradcurves_height(w, st, spec);
}
/* "step S: source fg a bg b, ..." at the snapshot nearest the pointer. */
static int grad_pick_v(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *pick) {
  char *out = pick->text;
  const size_t len = sizeof pick->text;
  const KdFigGradCurves *g = spec;
  KdFigSeries ser[2 * MAX_SOURCES];
  KdFigKey keys[MAX_SOURCES + 3];
  KdFigPlot p;
  char note[64];
  int nk = grad_plot(g, ser, &p, keys, note);
  cairo_t *cr = kd_fig_measure_cr(st);
  PlotGeom geo;
  plot_layout(cr, st, &p, r, keys, nk, 1, NULL, 0, &geo);
  cairo_destroy(cr);
  if (g->n == 0 || p.nseries == 0 || x < geo.plot.x || x > geo.plot.x + geo.plot.w || y < geo.plot.y ||
      y > geo.plot.y + geo.plot.h)
    return 0;
  double t = (x - geo.plot.x) / geo.plot.w;
  size_t k = nearest_sample(&ser[0], geo.x.lo + t * (geo.x.hi - geo.x.lo));
  size_t used = (size_t)snprintf(out, len, "step %.0f:", g->step[k]);
  for (int s = 0; s < p.nseries / 2 && used < len; s++)
    used += (size_t)snprintf(out + used, len - used, "%s %s fg %.3g bg %.3g", s ? "," : "", g->sources[s], g->fg[s][k],
                             g->bg[s][k]);
  return 1;
}

KdFigPanel kd_fig_gradcurves_panel(const KdFigGradCurves *g) {
  return (KdFigPanel){grad_draw_v, grad_height_v, g, grad_pick_v};
}
