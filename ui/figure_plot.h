/* One chart of series vs step (figure_plot.c), the piece the curves, the
 * gradient and the compare figures are made of: its layout (legend above,
 * at the right or inside, marker labels in a strip over the plot), its
 * drawing and what lies under a point. Internal to ui/figure*.c. */
#ifndef KD_FIGURE_PLOT_H
#define KD_FIGURE_PLOT_H

#include "figure_priv.h"

#define KD_PLOT_MAX_KEYS 32
#define KD_PLOT_MAX_LABELS 64 /* markers beyond these are drawn unlabelled */

typedef struct KdPlotGeom {
  KdFigAxis x, y;
  KdFigRect plot;
  KdFigLegendPos pos;
  KdFigRect legend; /* the keys' box */
  KdFigKey keys[KD_PLOT_MAX_KEYS];
  int key_series[KD_PLOT_MAX_KEYS]; /* series index, KD_FIG_KEY_SMOOTHING, or -1 */
  KdFigRect key_rect[KD_PLOT_MAX_KEYS];
  int nkeys;
  char note[96];
  double xlo, xhi, ylo, yhi; /* the data's ranges (kd_plot_data_range), once */
  int logy;                  /* kd_fig_plot_logy, once */
  /* marker labels: horizontal, in rows of a strip over the plot; numbers
   * (explained under the chart) when the labels do not fit */
  double strip_h, foot_h;
  int numbered;
  signed char mrow[KD_PLOT_MAX_LABELS]; /* row, -1: unlabelled */
} KdPlotGeom;

typedef struct KdPlotOpts {
  int x_tick_labels;       /* tick labels and the x label under the plot */
  int label_markers;       /* the marker labels' strip */
  const KdFigAxis *xshared; /* this x axis instead of the data's (stacked charts) */
  double left, right;      /* forced margins, 0: the chart's own */
} KdPlotOpts;

/* What every layout of p starts from, into g: the legend keys of its
 * series (and its smoothing note; none with p->no_legend), the data's
 * ranges and its y scale (each a pass over every sample, so once). */
void kd_plot_prepare(const KdFigPlot *p, KdPlotGeom *g);
/* Lays p out in r (g prepared). */
void kd_plot_layout(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, KdFigRect r,
                    const KdPlotOpts *o, KdPlotGeom *g);
/* The chart's height for width w with a plot area plot_h tall. */
double kd_plot_height(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, double w,
                      double plot_h, const KdPlotOpts *o, KdPlotGeom *g);
/* The left margin the y axis needs and the right one the legend takes. */
double kd_plot_left_margin(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, const KdPlotGeom *g);
double kd_plot_right_margin(cairo_t *cr, const KdFigStyle *st, const KdPlotGeom *g);
void kd_plot_render(cairo_t *cr, const KdFigStyle *st, const KdFigPlot *p, KdFigRect r,
                    const KdPlotGeom *g, const KdPlotOpts *o);
/* What lies under (x, y): a key, or the values at the step there. */
int kd_plot_pick(const KdFigPlot *p, const KdPlotGeom *g, double x, double y, KdFigPick *out);
/* The data's x and y ranges (visible series, limits applied). */
void kd_plot_data_range(const KdFigPlot *p, double *xlo, double *xhi, double *ylo, double *yhi);
/* The sample of s nearest to step x (s->x ascending, as logs are). */
size_t kd_plot_nearest(const KdFigSeries *s, double x);

#endif
