/* One chart of series vs step: true linear/log axes (log by default where
 * the data span decades), smoothing restarted at each live change of the
 * series' run over the raw series drawn faintly, per-pixel min/max
 * thinning so spikes survive, lines told apart by colour, dash and marker,
 * change markers labelled horizontally over the plot, a playhead, and a
 * legend above, at the right or inside a corner. */
#include "figure_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_ROWS 2    /* rows of marker labels before they become numbers */
#define FOOT_ENTRIES 12 /* numbered markers explained under the chart */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static const char *legend_names[KD_FIG_LEGEND_NPOS] = {"top", "right", "upper-right", "upper-left",
                                                       "lower-left", "lower-right", "none"};

int kd_fig_legend_pos_from_name(const char *name) {
  for (int i = 0; name && i < KD_FIG_LEGEND_NPOS; i++)
    if (!strcmp(name, legend_names[i])) return i;
  return -1;
}

const char *kd_fig_legend_pos_name(KdFigLegendPos p) {
  return (unsigned)p < KD_FIG_LEGEND_NPOS ? legend_names[p] : "top";
}

static int smoothing_on(const KdFigPlot *p) { return p->smooth.kind != KD_SMOOTH_NONE && !p->smooth_off; }

static const KdFigSeriesExtra no_extra = {KD_FIG_MARK_NONE, NULL, 0, 0};

static const KdFigSeriesExtra *extra_of(const KdFigPlot *p, int i) { return p->extra ? &p->extra[i] : &no_extra; }

static int hidden(const KdFigPlot *p, int i) { return extra_of(p, i)->hidden; }

/* Series i's colour, dash and marker: its own, or its position's. */
static void series_look(const KdFigPlot *p, int i, double rgb[3], int *dash, int *marker) {
  const KdFigSeries *s = &p->series[i];
  int d, m;
  kd_fig_series_style(s->color >= 0 ? s->color : i, rgb, &d, &m);
  *dash = s->dash >= 0 ? s->dash : d;
  *marker = extra_of(p, i)->marker >= 0 ? extra_of(p, i)->marker : m;
}

static double xval(const KdFigSeries *s, size_t j) { return s->x ? s->x[j] : (double)j; }

static void data_range(const KdFigPlot *p, int logy, double *xlo, double *xhi, double *ylo, double *yhi);

/* ---- keys ---- */

void kd_plot_prepare(const KdFigPlot *p, KdPlotGeom *g) {
  int k = 0;
  g->nkeys = 0;
  g->logy = kd_fig_plot_logy(p);
  data_range(p, g->logy, &g->xlo, &g->xhi, &g->ylo, &g->yhi);
  if (p->no_legend || p->legend == KD_FIG_LEGEND_NONE) return;
  for (int i = 0; i < p->nseries && k < KD_PLOT_MAX_KEYS - 1; i++) {
    const KdFigSeries *s = &p->series[i];
    if (!s->name || !*s->name || (hidden(p, i) && !p->interactive)) continue;
    KdFigKey *key = &g->keys[k];
    *key = (KdFigKey){0};
    key->label = s->name;
    series_look(p, i, key->rgb, &key->dash, &key->marker);
    key->kind = s->points && s->n < 64 ? (s->n > 1 ? KD_FIG_KEY_DOT_LINE : KD_FIG_KEY_DOT) : KD_FIG_KEY_LINE;
    if (key->kind != KD_FIG_KEY_LINE) key->marker = 0;
    key->greyed = hidden(p, i);
    g->key_series[k++] = i;
  }
  if (p->smooth.kind != KD_SMOOTH_NONE && (smoothing_on(p) || p->interactive) && k < KD_PLOT_MAX_KEYS) {
    char what[40];
    if (p->smooth.kind == KD_SMOOTH_EMA)
      snprintf(what, sizeof what, "EMA %.2f", p->smooth.weight);
    else
      snprintf(what, sizeof what, "mean of %d", p->smooth.window);
    if (!p->interactive)
      snprintf(g->note, sizeof g->note, "%s%s", what, p->hide_raw ? "" : " (raw faint)");
    else if (p->smooth_off)
      snprintf(g->note, sizeof g->note, "raw (click: %s)", what);
    else
      snprintf(g->note, sizeof g->note, "%s per segment (click: raw)", what);
    g->keys[k] = (KdFigKey){g->note, {0.72, 0.72, 0.72}, 0, KD_FIG_KEY_LINE, 0, 0};
    g->key_series[k++] = KD_FIG_KEY_SMOOTHING;
  }
  g->nkeys = k;
}

/* ---- ranges ---- */


/* The ranges for y scale logy. */
static void data_range(const KdFigPlot *p, int logy, double *xlo, double *xhi, double *ylo, double *yhi) {
  *xlo = *ylo = INFINITY;
  *xhi = *yhi = -INFINITY;
  double x0 = isfinite(p->xmin) ? p->xmin : -INFINITY, x1 = isfinite(p->xmax) ? p->xmax : INFINITY;
  for (int i = 0; i < p->nseries; i++) {
    const KdFigSeries *s = &p->series[i];
    if (hidden(p, i) || !s->y) continue;
    for (size_t j = 0; j < s->n; j++) {
      double x = xval(s, j), y = s->y[j];
      if (!isfinite(x) || (p->logx && x <= 0)) continue;
      *xlo = fmin(*xlo, x);
      *xhi = fmax(*xhi, x);
      /* y from the samples inside the x limits (a zoom rescales y) */
      if (!isfinite(y) || (logy && y <= 0) || x < x0 || x > x1) continue;
      *ylo = fmin(*ylo, y);
      *yhi = fmax(*yhi, y);
    }
  }
  if (isfinite(p->xmin)) *xlo = p->xmin;
  if (isfinite(p->xmax)) *xhi = p->xmax;
  if (isfinite(p->ymin)) *ylo = p->ymin;
  if (isfinite(p->ymax)) *yhi = p->ymax;
  if (*xlo >= *xhi && isfinite(p->xmin) != isfinite(p->xmax)) { /* one limit past the data */
    if (isfinite(p->xmin)) *xhi = *xlo + 1;
    else *xlo = *xhi - 1;
  }
}

void kd_plot_data_range(const KdFigPlot *p, double *xlo, double *xhi, double *ylo, double *yhi) {
  data_range(p, kd_fig_plot_logy(p), xlo, xhi, ylo, yhi);
}

int kd_fig_plot_logy(const KdFigPlot *p) {
  if (p->logy == KD_FIG_SCALE_LOG) return 1;
  if (p->logy != KD_FIG_SCALE_AUTO) return 0;
  double lo = INFINITY, hi = 0;
  double x0 = isfinite(p->xmin) ? p->xmin : -INFINITY, x1 = isfinite(p->xmax) ? p->xmax : INFINITY;
  for (int i = 0; i < p->nseries; i++) {
    const KdFigSeries *s = &p->series[i];
    if (hidden(p, i) || !s->y) continue;
    for (size_t j = 0; j < s->n; j++) {
      double x = xval(s, j), y = s->y[j];
      if (!(y > 0) || !isfinite(y) || x < x0 || x > x1) continue;
      lo = fmin(lo, y);
      hi = fmax(hi, y);
    }
  }
  if (isfinite(p->ymin) && p->ymin <= 0) return 0; /* a limit at or under zero asks for linear */
  return hi > 0 && lo < INFINITY && log10(hi / lo) > KD_FIG_AUTO_LOG_DECADES;
}

/* ---- layout ---- */

static double label_font(const KdFigStyle *st) { return st->font_pt * 0.75; }

static void setup_y(const KdFigStyle *st, const KdFigPlot *p, double ph, KdPlotGeom *g) {
  int pad = !(isfinite(p->ymin) && isfinite(p->ymax));
  kd_fig_axis_setup(&g->y, g->ylo, g->yhi, g->logy, clampi((int)(ph / (st->font_pt * 2.6)), 3, 8), pad);
  /* one fixed limit stays exactly where it was asked */
  if (isfinite(p->ymin) && !isfinite(p->ymax) && !(g->y.log && p->ymin <= 0)) g->y.lo = p->ymin;
  if (isfinite(p->ymax) && !isfinite(p->ymin)) g->y.hi = p->ymax;
}

static void setup_x(const KdFigStyle *st, const KdFigPlot *p, double pw, const KdPlotOpts *o, KdPlotGeom *g) {
  if (o->xshared) {
    g->x = *o->xshared;
    return;
  }
  kd_fig_axis_setup(&g->x, g->xlo, g->xhi, p->logx, clampi((int)(pw / (st->font_pt * 4.5)), 3, 10), 0);
}

double kd_plot_left_margin(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, const KdPlotGeom *g) {
  return kd_fig_axis_left_margin(cr, st, &g->y, p->ylabel);
}

static double base_right(const KdFigStyle *st) { return st->font_pt * 1.2; }

double kd_plot_right_margin(cairo_t *cr, const KdFigStyle *st, const KdPlotGeom *g) {
  if (g->pos != KD_FIG_LEGEND_RIGHT || g->nkeys == 0) return base_right(st);
  double w, h;
  kd_fig_legend_column(cr, st, 0, 0, g->keys, g->nkeys, 0, NULL, &w, &h);
  return base_right(st) * 0.5 + st->font_pt * 0.6 + w;
}

/* The label a marker shows: its text, or its number. */
static const char *marker_text(const KdFigPlot *p, const KdPlotGeom *g, int i, char *buf, size_t len) {
  if (!g->numbered) return p->markers[i].label;
  snprintf(buf, len, "%d", i + 1);
  return buf;
}

static int has_label(const KdFigPlot *p, int i) {
  return p->markers[i].label && *p->markers[i].label;
}

/* Rows for the marker labels over the plot (centred on their lines,
 * inside the plot's width); -1 where none fits. Returns the labels that
 * found no row. */
static int place_labels(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, KdPlotGeom *g) {
  double ends[LABEL_ROWS];
  for (int r = 0; r < LABEL_ROWS; r++) ends[r] = -INFINITY;
  cairo_save(cr);
  kd_fig_font(cr, st, label_font(st), KD_FIG_NORMAL);
  int lost = 0;
  double gap = label_font(st) * 0.6;
  for (int i = 0; i < p->nmarkers && i < KD_PLOT_MAX_LABELS; i++) {
    g->mrow[i] = -1;
    if (!has_label(p, i)) continue;
    double px = kd_fig_axis_map(&g->x, p->markers[i].x, g->plot.x, g->plot.x + g->plot.w);
    if (!isfinite(px) || px < g->plot.x - 0.5 || px > g->plot.x + g->plot.w + 0.5) continue;
    char num[16];
    double tw = kd_fig_text_width(cr, marker_text(p, g, i, num, sizeof num));
    double x0 = fmin(fmax(px - tw / 2, g->plot.x), g->plot.x + g->plot.w - tw);
    int r = 0;
    while (r < LABEL_ROWS && ends[r] > x0 - gap) r++;
    if (r == LABEL_ROWS) {
      lost++;
      continue;
    }
    ends[r] = x0 + tw;
    g->mrow[i] = (signed char)r;
  }
  cairo_restore(cr);
  return lost;
}

static int label_rows(const KdFigPlot *p, const KdPlotGeom *g) {
  int rows = 0;
  for (int i = 0; i < p->nmarkers && i < KD_PLOT_MAX_LABELS; i++)
    if (g->mrow[i] + 1 > rows) rows = g->mrow[i] + 1;
  return rows;
}

/* Numbered markers' explanations, wrapped to width w: rows used (drawn
 * from y when draw). */
static int footnote(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, const KdPlotGeom *g, double x,
                    double y, double w, int draw) {
  cairo_save(cr);
  double fs = label_font(st), line = fs * KD_FIG_LINE;
  kd_fig_font(cr, st, fs, KD_FIG_NORMAL);
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  int rows = 0, shown = 0, more = 0;
  double xx = x, sep = fs * 1.2;
  for (int i = 0; i < p->nmarkers && i < KD_PLOT_MAX_LABELS; i++) {
    if (!has_label(p, i) || g->mrow[i] < 0) continue;
    if (shown == FOOT_ENTRIES) {
      more++;
      continue;
    }
    char e[160];
    snprintf(e, sizeof e, "%d: %s", i + 1, p->markers[i].label);
    double ew = kd_fig_text_width(cr, e);
    if (rows == 0) rows = 1;
    if (xx > x && xx + ew > x + w) {
      rows++;
      xx = x;
    }
    if (draw) kd_fig_text_fit(cr, xx, y + (rows - 1) * line + line / 2, e, 0, 0.5, w);
    xx += ew + sep;
    shown++;
  }
  if (more) {
    char e[64];
    snprintf(e, sizeof e, "\xe2\x80\xa6 and %d more", more);
    double ew = kd_fig_text_width(cr, e);
    if (xx > x && xx + ew > x + w) rows++, xx = x;
    if (draw) kd_fig_text(cr, xx, y + (rows - 1) * line + line / 2, e, 0, 0.5, 0);
  }
  cairo_restore(cr);
  return rows;
}

/* The keys' box for the legend's place, and each key's rectangle. */
static void place_legend(cairo_t *cr, const KdFigStyle *st, KdFigRect r, double top_y, KdPlotGeom *g) {
  if (g->nkeys == 0) {
    g->legend = (KdFigRect){0, 0, 0, 0};
    return;
  }
  if (g->pos == KD_FIG_LEGEND_TOP) {
    double h = kd_fig_legend_rects(cr, st, r.x, top_y, r.w, g->keys, g->nkeys, g->key_rect);
    g->legend = (KdFigRect){r.x, top_y, r.w, h};
    return;
  }
  double w, h, pad = st->font_pt * 0.35;
  kd_fig_legend_column(cr, st, 0, 0, g->keys, g->nkeys, 0, NULL, &w, &h);
  double x, y;
  const KdFigRect *pl = &g->plot;
  switch (g->pos) {
  case KD_FIG_LEGEND_RIGHT: x = pl->x + pl->w + st->font_pt * 0.6, y = pl->y; break;
  case KD_FIG_LEGEND_UPPER_LEFT: x = pl->x + pad * 2, y = pl->y + pad * 2; break;
  case KD_FIG_LEGEND_LOWER_LEFT: x = pl->x + pad * 2, y = pl->y + pl->h - h - pad * 2; break;
  case KD_FIG_LEGEND_LOWER_RIGHT: x = pl->x + pl->w - w - pad * 2, y = pl->y + pl->h - h - pad * 2; break;
  default: x = pl->x + pl->w - w - pad * 2, y = pl->y + pad * 2; break;
  }
  kd_fig_legend_column(cr, st, x, y, g->keys, g->nkeys, 0, g->key_rect, &w, &h);
  g->legend = (KdFigRect){x, y, w, h};
}

void kd_plot_layout(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, KdFigRect r,
                    const KdPlotOpts *o, KdPlotGeom *g) {
  g->pos = p->legend;
  double th = kd_fig_title_height(st, p->title);
  double legend_h = 0;
  if (g->pos == KD_FIG_LEGEND_TOP && g->nkeys > 0)
    legend_h = kd_fig_legend(cr, st, r.x, 0, r.w, g->keys, g->nkeys, 0);
  double bottom = kd_fig_axis_bottom_margin(st, p->xlabel, o->x_tick_labels);
  double rm = o->right > 0 ? o->right : kd_plot_right_margin(cr, st, g);
  double line = label_font(st) * KD_FIG_LINE;
  g->strip_h = g->foot_h = 0;
  g->numbered = 0;
  for (int i = 0; i < KD_PLOT_MAX_LABELS; i++) g->mrow[i] = -1;
  /* Two passes: the label strip's height depends on where the markers
   * fall, which depends on the margins, which depend on the plot height. */
  for (int pass = 0; pass < 2; pass++) {
    double top = th + legend_h + g->strip_h + st->font_pt * 0.4;
    double ph = r.h - top - bottom - g->foot_h;
    setup_y(st, p, ph, g);
    double lm = o->left > 0 ? o->left : kd_plot_left_margin(cr, st, p, g);
    double pw = r.w - lm - rm;
    setup_x(st, p, pw, o, g);
    g->plot = (KdFigRect){r.x + lm, r.y + top, pw, ph};
    if (pass == 1 || !o->label_markers || p->nmarkers <= 0 || !p->markers) break;
    g->numbered = 0;
    if (place_labels(cr, st, p, g) > 0) {
      g->numbered = 1;
      place_labels(cr, st, p, g);
      g->foot_h = footnote(cr, st, p, g, r.x, 0, r.w, 0) * line + st->font_pt * 0.2;
    }
    int rows = label_rows(p, g);
    g->strip_h = rows * line;
    if (rows == 0) break;
  }
  place_legend(cr, st, r, r.y + th, g);
}

double kd_plot_height(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, double w,
                      double plot_h, const KdPlotOpts *o, KdPlotGeom *g) {
  const double tall = 10000;
  kd_plot_layout(cr, st, p, (KdFigRect){0, 0, w, tall}, o, g);
  return tall - g->plot.h + plot_h;
}

/* ---- drawing ---- */

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

/* Thins and strokes samples [a, b) of (px, py). */
static void stroke_range(cairo_t *cr, const double *px, const double *py, size_t a, size_t b, double bucket,
                         size_t *idx) {
  if (b <= a) return;
  size_t m = kd_series_thin_minmax(px + a, py + a, b - a, bucket, idx);
  for (size_t k = 0; k < m; k++) idx[k] += a;
  stroke_series(cr, px, py, idx, m);
}

/* Markers along a line at evenly spaced x positions (offset per series so
 * neighbours' markers do not sit on each other). */
static void line_markers(cairo_t *cr, const KdPlotGeom *g, const double *px, const double *py, size_t n,
                         int marker, int si, double r) {
  if (!marker || n == 0) return;
  const int count = 8;
  for (int k = 0; k < count; k++) {
    double want = g->plot.x + g->plot.w * (k + 0.35 + 0.3 * ((si * 7) % 10) / 10.0) / count;
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (px[mid] < want) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= n) continue;
    if (lo > 0 && fabs(px[lo - 1] - want) < fabs(px[lo] - want)) lo--;
    if (isfinite(px[lo]) && isfinite(py[lo]) && fabs(px[lo] - want) < g->plot.w / count / 2)
      kd_fig_marker(cr, marker, px[lo], py[lo], r);
  }
}

static void draw_series(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, const KdPlotGeom *g,
                        int si) {
  const KdFigSeries *s = &p->series[si];
  const KdFigSeriesExtra *ex = extra_of(p, si);
  if (!s->y || s->n == 0 || ex->hidden) return;
  size_t n = s->n;
  double *px = malloc(n * sizeof *px), *py = malloc(n * sizeof *py);
  double *sm = malloc(n * sizeof *sm), *spy = malloc(n * sizeof *spy);
  size_t *idx = malloc(n * sizeof *idx);
  size_t nb = ex->breaks && s->x && ex->nbreaks > 0 ? (size_t)ex->nbreaks : 0;
  size_t *starts = malloc((nb + 1) * sizeof *starts);
  if (!px || !py || !sm || !spy || !idx || !starts) goto out;
  double x0 = g->plot.x, x1 = g->plot.x + g->plot.w;
  double y0 = g->plot.y + g->plot.h, y1 = g->plot.y;
  for (size_t i = 0; i < n; i++) {
    px[i] = kd_fig_axis_map(&g->x, xval(s, i), x0, x1);
    py[i] = kd_fig_axis_map(&g->y, s->y[i], y0, y1);
  }
  /* Smooth each segment between live changes, then thin what is drawn. */
  size_t ns = nb ? kd_series_segments(s->x, n, ex->breaks, ex->nbreaks, starts) : 0;
  int smooth = smoothing_on(p);
  if (smooth) {
    kd_series_smooth_segments(&p->smooth, s->y, n, starts, ns, sm);
    for (size_t i = 0; i < n; i++) spy[i] = kd_fig_axis_map(&g->y, sm[i], y0, y1);
  }
  double rgb[3], lw = st->line_pt * 1.6, bucket = thin_bucket(cr);
  int dash, marker;
  series_look(p, si, rgb, &dash, &marker);
  cairo_save(cr);
  cairo_rectangle(cr, g->plot.x, g->plot.y, g->plot.w, g->plot.h);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  /* y is passed to the thinning in device orientation; min/max are swapped
   * but both are kept, which is all that matters. */
  if (!smooth || !p->hide_raw) {
    kd_fig_set_rgb(cr, rgb, smooth ? 0.28 : 1);
    cairo_set_line_width(cr, smooth ? lw * 0.6 : lw);
    kd_fig_set_dash(cr, smooth ? 0 : dash, lw);
    stroke_range(cr, px, py, 0, n, bucket, idx);
    if (s->points && !smooth) {
      /* A dot on the frame (the last evaluation sits at the x range's end)
       * is drawn whole: the clip grows by the dot's radius. */
      double rad = lw * 1.3;
      cairo_save(cr);
      cairo_reset_clip(cr);
      cairo_rectangle(cr, g->plot.x - rad, g->plot.y - rad, g->plot.w + 2 * rad, g->plot.h + 2 * rad);
      cairo_clip(cr);
      for (size_t i = 0; i < n; i++) {
        if (!isfinite(px[i]) || !isfinite(py[i])) continue;
        cairo_new_sub_path(cr);
        cairo_arc(cr, px[i], py[i], rad, 0, 2 * M_PI);
      }
      cairo_fill(cr);
      cairo_restore(cr);
    }
  }
  if (smooth) {
    kd_fig_set_rgb(cr, rgb, 1);
    cairo_set_line_width(cr, lw);
    kd_fig_set_dash(cr, dash, lw);
    /* one line per segment: the smoothed curve does not bridge a change */
    size_t a = 0;
    for (size_t k = 0; k <= ns; k++) {
      size_t b = k < ns ? starts[k] : n;
      stroke_range(cr, px, spy, a, b, bucket, idx);
      a = b;
    }
  }
  if (!s->points) {
    kd_fig_set_rgb(cr, rgb, 1);
    line_markers(cr, g, px, smooth ? spy : py, n, marker, si, lw * 1.9);
  }
  cairo_restore(cr);
out:
  free(px);
  free(py);
  free(sm);
  free(spy);
  free(idx);
  free(starts);
}

/* Marker lines under the curves; their labels (lines = 0) in the strip
 * over the plot, each joined to its line by a short tick. */
static void draw_markers(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, const KdPlotGeom *g,
                         int lines) {
  if (p->nmarkers <= 0 || !p->markers) return;
  cairo_save(cr);
  double lw = st->line_pt, fs = label_font(st), line = fs * KD_FIG_LINE;
  kd_fig_font(cr, st, fs, KD_FIG_NORMAL);
  for (int i = 0; i < p->nmarkers; i++) {
    double px = kd_fig_axis_map(&g->x, p->markers[i].x, g->plot.x, g->plot.x + g->plot.w);
    if (!isfinite(px) || px < g->plot.x - 0.5 || px > g->plot.x + g->plot.w + 0.5) continue;
    if (lines) {
      cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
      cairo_set_line_width(cr, lw);
      kd_fig_set_dash(cr, KD_FIG_DASHED, lw);
      cairo_move_to(cr, px, g->plot.y);
      cairo_line_to(cr, px, g->plot.y + g->plot.h);
      cairo_stroke(cr);
      continue;
    }
    if (i >= KD_PLOT_MAX_LABELS || g->mrow[i] < 0) continue;
    char num[16];
    const char *lab = marker_text(p, g, i, num, sizeof num);
    double tw = kd_fig_text_width(cr, lab);
    double x0 = fmin(fmax(px - tw / 2, g->plot.x), g->plot.x + g->plot.w - tw);
    /* row 0 sits right over the plot, further rows above it */
    double rows = label_rows(p, g), y = g->plot.y - st->font_pt * 0.4 - (rows - g->mrow[i]) * line;
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    kd_fig_text(cr, x0, y + line / 2, lab, 0, 0.5, 0);
    cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
    cairo_set_line_width(cr, lw * 0.7);
    kd_fig_set_dash(cr, KD_FIG_SOLID, lw);
    cairo_move_to(cr, px, y + line * 0.95);
    cairo_line_to(cr, px, g->plot.y);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

/* The playhead: the step the window shows, across the plot. */
static void draw_cursor(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, const KdPlotGeom *g) {
  if (!p->cursor_on) return;
  double px = kd_fig_axis_map(&g->x, p->cursor, g->plot.x, g->plot.x + g->plot.w);
  if (!isfinite(px) || px < g->plot.x - 0.5 || px > g->plot.x + g->plot.w + 0.5) return;
  double lw = st->line_pt * 1.4, a = st->font_pt * 0.45;
  cairo_save(cr);
  cairo_set_source_rgb(cr, 0.80, 0.10, 0.10);
  cairo_set_line_width(cr, lw);
  cairo_move_to(cr, px, g->plot.y);
  cairo_line_to(cr, px, g->plot.y + g->plot.h);
  cairo_stroke(cr);
  cairo_move_to(cr, px - a, g->plot.y);
  cairo_line_to(cr, px + a, g->plot.y);
  cairo_line_to(cr, px, g->plot.y + a * 1.3);
  cairo_close_path(cr);
  cairo_fill(cr);
  cairo_restore(cr);
}

static void draw_legend(cairo_t *cr, const KdFigStyle *st, const KdPlotGeom *g) {
  if (g->nkeys == 0) return;
  double keyw = st->font_pt * 1.6;
  if (g->pos != KD_FIG_LEGEND_TOP && g->pos != KD_FIG_LEGEND_RIGHT) {
    double pad = st->font_pt * 0.3;
    cairo_save(cr);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
    cairo_rectangle(cr, g->legend.x - pad, g->legend.y - pad * 0.5, g->legend.w + 2 * pad, g->legend.h + pad);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, st->line_pt * 0.6);
    cairo_stroke(cr);
    cairo_restore(cr);
  }
  for (int k = 0; k < g->nkeys; k++)
    kd_fig_legend_key(cr, st, &g->keys[k], g->key_rect[k].x, g->key_rect[k].y + g->key_rect[k].h / 2, keyw);
}

void kd_plot_render(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, KdFigRect r,
                    const KdPlotGeom *g, const KdPlotOpts *o) {
  kd_fig_title(cr, st, r, p->title);
  if (g->pos == KD_FIG_LEGEND_TOP || g->pos == KD_FIG_LEGEND_RIGHT) draw_legend(cr, st, g);
  kd_fig_axes_draw(cr, st, g->plot, &g->x, &g->y, p->xlabel, p->ylabel, o->x_tick_labels);
  draw_markers(cr, st, p, g, 1);
  for (int i = 0; i < p->nseries; i++) draw_series(cr, st, p, g, i);
  if (o->label_markers) draw_markers(cr, st, p, g, 0);
  draw_cursor(cr, st, p, g);
  /* Frame again on top so curves touching it do not hide it. */
  cairo_save(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, st->line_pt);
  cairo_rectangle(cr, g->plot.x, g->plot.y, g->plot.w, g->plot.h);
  cairo_stroke(cr);
  cairo_restore(cr);
  if (g->pos != KD_FIG_LEGEND_TOP && g->pos != KD_FIG_LEGEND_RIGHT) draw_legend(cr, st, g);
  if (g->numbered && g->foot_h > 0)
    footnote(cr, st, p, g, r.x, r.y + r.h - g->foot_h + st->font_pt * 0.2, r.w, 1);
}

/* ---- what lies under a point ---- */

size_t kd_plot_nearest(const KdFigSeries *s, double x) {
  size_t lo = 0, hi = s->n;
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (xval(s, mid) <= x) lo = mid;
    else hi = mid;
  }
  if (lo + 1 < s->n && fabs(xval(s, lo + 1) - x) < fabs(x - xval(s, lo))) lo++;
  return lo;
}

static int in_rect(KdFigRect r, double x, double y) {
  return x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h;
}

int kd_plot_pick(const KdFigPlot *p, const KdPlotGeom *g, double x, double y, KdFigPick *pick) {
  char *out = pick->text;
  const size_t len = sizeof pick->text;
  for (int k = 0; k < g->nkeys; k++) {
    if (!in_rect(g->key_rect[k], x, y)) continue;
    int si = g->key_series[k];
    pick->key = si;
    if (si == KD_FIG_KEY_SMOOTHING) {
      snprintf(pick->key_name, sizeof pick->key_name, "%s", g->note);
      snprintf(out, len, "%s", p->smooth_off ? "click: smoothed again" : "click: the raw series");
    } else {
      const KdFigSeries *s = &p->series[si];
      snprintf(pick->key_name, sizeof pick->key_name, "%s", s->name);
      snprintf(out, len, "%s: click to %s", s->name, hidden(p, si) ? "show" : "hide");
    }
    return 1;
  }
  if (!in_rect(g->plot, x, y)) return 0;
  double t = (x - g->plot.x) / g->plot.w;
  double step = g->x.log ? pow(10, log10(g->x.lo) + t * (log10(g->x.hi) - log10(g->x.lo)))
                         : g->x.lo + t * (g->x.hi - g->x.lo);
  pick->step = step;
  pick->step_lo = g->x.lo;
  pick->step_hi = g->x.hi;
  /* The logged step nearest to the pointer (of the first shown series with
   * data), then each series' value at its sample nearest that step. */
  double at = NAN;
  for (int i = 0; i < p->nseries && isnan(at); i++) {
    const KdFigSeries *s = &p->series[i];
    if (s->n > 0 && s->y && !hidden(p, i)) at = xval(s, kd_plot_nearest(s, step));
  }
  if (isnan(at)) {
    snprintf(out, len, "step %.0f", step);
    return 1;
  }
  size_t used = (size_t)snprintf(out, len, "step %.0f:", at);
  int first = 1;
  for (int i = 0; i < p->nseries && used < len; i++) {
    const KdFigSeries *s = &p->series[i];
    if (s->n == 0 || !s->y || !s->name || hidden(p, i)) continue;
    size_t k = kd_plot_nearest(s, at);
    if (fabs(xval(s, k) - at) > fmax(1.0, 0.02 * (g->x.hi - g->x.lo))) continue; /* no sample near this step */
    used += (size_t)snprintf(out + used, len - used, "%s %s %.4g", first ? "" : ",", s->name, s->y[k]);
    first = 0;
  }
  return 1;
}

/* ---- the plot as a figure of its own ---- */

static double plot_area_h(double w) { return fmin(fmax(w * 0.5, 100), 190); }

double kd_fig_plot_height(double w, const KdFigStyle *st, const KdFigPlot *p) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdPlotGeom g;
  kd_plot_prepare(p, &g);
  KdPlotOpts o = {1, 1, NULL, 0, 0};
  cairo_t *cr = kd_fig_measure_cr(st);
  double h = kd_plot_height(cr, st, p, w, plot_area_h(w), &o, &g);
  cairo_destroy(cr);
  return h;
}

void kd_fig_plot_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigPlot *p) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdPlotGeom g;
  kd_plot_prepare(p, &g);
  KdPlotOpts o = {1, 1, NULL, 0, 0};
  kd_plot_layout(cr, st, p, r, &o, &g);
  kd_plot_render(cr, st, p, r, &g, &o);
}

static void plot_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_plot_draw(cr, r, st, spec);
}
static double plot_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_plot_height(w, st, spec);
}
static int plot_pick_v(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  const KdFigPlot *p = spec;
  KdPlotGeom g;
  kd_plot_prepare(p, &g);
  KdPlotOpts o = {1, 1, NULL, 0, 0};
  cairo_t *cr = kd_fig_measure_cr(st);
  kd_plot_layout(cr, st, p, r, &o, &g);
  cairo_destroy(cr);
  return kd_plot_pick(p, &g, x, y, out);
}
KdFigPanel kd_fig_plot_panel(const KdFigPlot *p) {
  return (KdFigPanel){plot_draw_v, plot_height_v, p, plot_pick_v};
}
