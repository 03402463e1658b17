/* Grouped bar charts: channel attention of teacher and student, fg/bg
 * gradient means per source. When there are too many bars for the width,
 * series 0 stays as bars and the others become outlined steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "figure_priv.h"

#define MAX_SERIES 8

static int nser(const KdFigBars *b) {
  return b->nseries < MAX_SERIES ? b->nseries : MAX_SERIES;
}

/* Grouped bars need this much width per bar; otherwise series 1.. are
 * outlined steps over series 0. */
static int fits_grouped(const KdFigBars *b, double plot_w) {
  return nser(b) == 1 || (b->n > 0 && plot_w / b->n * 0.8 / nser(b) >= 1.5);
}

static int bar_keys(const KdFigBars *b, KdFigKey *keys, int grouped) {
  int k = 0;
  for (int s = 0; s < nser(b); s++) {
    if (!b->series_names || !b->series_names[s]) continue;
    keys[k] = (KdFigKey){b->series_names[s], {0}, 0,
                         grouped || s == 0 ? KD_FIG_KEY_FILL : KD_FIG_KEY_LINE, 0, 0};
    kd_fig_palette(s, keys[k].rgb);
    k++;
  }
  return nser(b) > 1 ? k : 0;
}

double kd_fig_bars_height(double w, const KdFigStyle *st, const KdFigBars *b) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdFigKey keys[MAX_SERIES];
  int nk = bar_keys(b, keys, 1); /* same rows either way */
  cairo_t *cr = kd_fig_measure_cr(st);
  double lh = nk ? kd_fig_legend(cr, st, 0, 0, w, keys, nk, 0) : 0;
  cairo_destroy(cr);
  double ph = fmin(fmax(w * 0.3, 70), 130);
  return kd_fig_title_height(st, b->title) + lh + st->font_pt * 0.4 + ph +
         kd_fig_axis_bottom_margin(st, b->xlabel, 1);
}

typedef struct SortItem {
  float v;
  int i;
} SortItem;

/* Descending by value, NaN last, ties by index (a stable order). */
static int cmp_desc(const void *pa, const void *pb) {
  const SortItem *a = pa, *b = pb;
  int na = isnan(a->v), nb = isnan(b->v);
  if (na || nb) return na != nb ? na - nb : a->i - b->i;
  return a->v < b->v ? 1 : a->v > b->v ? -1 : a->i - b->i;
}

void kd_fig_bars_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigBars *b) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  int ns = nser(b), n = b->n;
  if (n <= 0 || ns <= 0 || !b->values) return;
  int *order = malloc((size_t)n * sizeof *order);
  SortItem *items = malloc((size_t)n * sizeof *items);
  if (!order || !items) {
    free(order);
    free(items);
    return;
  }
  for (int i = 0; i < n; i++) order[i] = i;
  if (b->sort_by >= 0 && b->sort_by < ns) {
    for (int i = 0; i < n; i++) items[i] = (SortItem){b->values[b->sort_by][i], i};
    qsort(items, (size_t)n, sizeof *items, cmp_desc);
    for (int i = 0; i < n; i++) order[i] = items[i].i;
  }
  free(items);

  KdFigKey keys[MAX_SERIES];
  /* Whether bars fit side by side, judged on the width less a typical
   * y-axis margin (the margin itself depends on the range). */
  int grouped = fits_grouped(b, r.w - st->font_pt * 5);
  int nk = bar_keys(b, keys, grouped);
  double th = kd_fig_title_height(st, b->title);
  double lh = nk ? kd_fig_legend(cr, st, r.x, 0, r.w, keys, nk, 0) : 0;
  double top = th + lh + st->font_pt * 0.4;
  double bottom = kd_fig_axis_bottom_margin(st, b->xlabel, 1);
  double ph = r.h - top - bottom;

  double lo = INFINITY, hi = -INFINITY;
  for (int s = 0; s < ns; s++)
    for (int i = 0; i < n; i++) {
      double v = b->values[s][i];
      if (!isfinite(v) || (b->logy && v <= 0)) continue;
      lo = fmin(lo, v);
      hi = fmax(hi, v);
    }
  KdFigAxis y, x;
  if (!b->logy) lo = fmin(lo, 0); /* bars start at zero */
  kd_fig_axis_setup(&y, lo, hi, b->logy, ph > 90 ? 6 : 4, 1);
  double lm = kd_fig_axis_left_margin(cr, st, &y, b->ylabel);
  KdFigRect plot = {r.x + lm, r.y + top, r.w - lm - st->font_pt * 0.8, ph};
  x.log = 0;
  x.lo = -0.5;
  x.hi = n - 0.5;
  memset(&x.ticks, 0, sizeof x.ticks);
  int sorted = b->sort_by >= 0 && b->sort_by < ns;
  if (!b->categories && !sorted) { /* channel indices as numeric ticks */
    kd_fig_ticks_linear(0, n - 1, (int)fmax(2, plot.w / (st->font_pt * 4)), &x.ticks);
    if (x.ticks.step < 1) kd_fig_ticks_linear(0, n - 1, n, &x.ticks);
  }

  kd_fig_title(cr, st, r, b->title);
  if (nk) kd_fig_legend(cr, st, r.x, r.y + th, r.w, keys, nk, 1);
  kd_fig_axes_draw(cr, st, plot, &x, &y, b->xlabel, b->ylabel, !b->categories);

  double base = b->logy ? y.lo : fmax(y.lo, fmin(0, y.hi));
  double py0 = kd_fig_axis_map(&y, base, plot.y + plot.h, plot.y);
  double cw = plot.w / n;
  cairo_save(cr);
  cairo_rectangle(cr, plot.x, plot.y, plot.w, plot.h);
  cairo_clip(cr);
  for (int s = 0; s < ns; s++) {
    double rgb[3];
    kd_fig_palette(s, rgb);
    if (grouped || s == 0) {
      double bw = grouped ? cw * 0.8 / ns : cw * 0.9;
      kd_fig_set_rgb(cr, rgb, 1);
      for (int k = 0; k < n; k++) {
        double v = b->values[s][order[k]];
        double py = kd_fig_axis_map(&y, v, plot.y + plot.h, plot.y);
        if (!isfinite(py)) continue;
        double bx = plot.x + k * cw + (grouped ? cw * 0.1 + s * bw : cw * 0.05);
        cairo_rectangle(cr, bx, fmin(py, py0), bw, fabs(py0 - py));
      }
      cairo_fill(cr);
    } else { /* a step outline over the bars */
      kd_fig_set_rgb(cr, rgb, 1);
      cairo_set_line_width(cr, st->line_pt * 1.2);
      kd_fig_set_dash(cr, 0, 1);
      int pen = 0;
      for (int k = 0; k < n; k++) {
        double py = kd_fig_axis_map(&y, b->values[s][order[k]], plot.y + plot.h, plot.y);
        if (!isfinite(py)) {
          pen = 0;
          continue;
        }
        double xa = plot.x + k * cw, xb = xa + cw;
        if (pen)
          cairo_line_to(cr, xa, py);
        else
          cairo_move_to(cr, xa, py);
        cairo_line_to(cr, xb, py);
        pen = 1;
      }
      cairo_stroke(cr);
    }
  }
  if (b->mark_label && !sorted && isfinite(b->mark)) {
    double mx = plot.x + (b->mark + 0.5) * cw;
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, st->line_pt);
    kd_fig_set_dash(cr, 1, st->line_pt);
    cairo_move_to(cr, mx, plot.y);
    cairo_line_to(cr, mx, plot.y + plot.h);
    cairo_stroke(cr);
    kd_fig_set_dash(cr, 0, 1);
    kd_fig_font(cr, st, st->font_pt * 0.8, KD_FIG_NORMAL);
    kd_fig_text(cr, mx + st->font_pt * 0.2, plot.y + st->font_pt * 0.1, b->mark_label, 0, 0, 0);
  }
  cairo_restore(cr);

  if (b->categories) { /* category names under the axis */
    cairo_save(cr);
    kd_fig_font(cr, st, st->font_pt * 0.875, KD_FIG_NORMAL);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int k = 0; k < n; k++)
      kd_fig_text_fit(cr, plot.x + (k + 0.5) * cw, plot.y + plot.h + st->font_pt * 0.3,
                      b->categories[order[k]], 0.5, 0, cw * 0.95);
    if (b->xlabel && *b->xlabel) {
      kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
      kd_fig_text(cr, plot.x + plot.w / 2,
                  plot.y + plot.h + st->font_pt * (0.3 + 0.875 * KD_FIG_LINE), b->xlabel, 0.5, 0,
                  0);
    }
    cairo_restore(cr);
  }
  free(order);
}

static void bars_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_bars_draw(cr, r, st, spec);
}
static double bars_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_bars_height(w, st, spec);
}
KdFigPanel kd_fig_bars_panel(const KdFigBars *b) {
  return (KdFigPanel){bars_draw_v, bars_height_v, b, NULL};
}
