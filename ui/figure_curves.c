/* The stacked loss/AP figure and the fg/bg gradient figure, both built
 * from the one-chart pieces of figure_plot.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "figure_plot.h"

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static double plot_area_h(double w, double k) { return fmin(fmax(w * k, 100), 190); }

/* ---- loss over AP ---- */

static int has_ap(const KdFigCurves *c) { return c->ap.nseries > 0; }

/* Both charts' rectangles and geometry for r (shared by draw and pick). */
typedef struct CurvesGeom {
  KdFigRect r1, r2;
  KdPlotGeom g1, g2;
  KdPlotOpts o1, o2;
  KdFigAxis x; /* the shared step axis */
} CurvesGeom;

/* The x range over both charts (prepared), so steps line up. */
static void shared_x(const KdFigCurves *c, const CurvesGeom *G, double w, const KdFigStyle *st, KdFigAxis *x) {
  double lo = G->g1.xlo, hi = G->g1.xhi;
  if (has_ap(c) && !isfinite(c->loss.xmin) && !isfinite(c->loss.xmax)) lo = fmin(lo, G->g2.xlo), hi = fmax(hi, G->g2.xhi);
  int logx = c->loss.logx || c->ap.logx;
  kd_fig_axis_setup(x, lo, hi, logx, clampi((int)(w / (st->font_pt * 4.5)), 3, 10), 0);
}

static void curves_opts(const KdFigCurves *c, CurvesGeom *G, const KdFigAxis *x) {
  G->o1 = (KdPlotOpts){!has_ap(c), 1, x, 0, 0};
  G->o2 = (KdPlotOpts){1, 0, x, 0, 0};
}

/* The two charts' heights for width w (the AP chart 0 when left out). */
static double curves_split(cairo_t *cr, const KdFigStyle *st, const KdFigCurves *c, double w, CurvesGeom *G,
                           double *h_loss, double *h_ap) {
  kd_plot_prepare(&c->loss, &G->g1);
  if (has_ap(c)) kd_plot_prepare(&c->ap, &G->g2);
  shared_x(c, G, w, st, &G->x);
  curves_opts(c, G, &G->x);
  *h_loss = kd_plot_height(cr, st, &c->loss, w, plot_area_h(w, has_ap(c) ? 0.42 : 0.5), &G->o1, &G->g1);
  *h_ap = has_ap(c) ? kd_plot_height(cr, st, &c->ap, w, plot_area_h(w, 0.25) * 0.75, &G->o2, &G->g2) : 0;
  return *h_loss + *h_ap;
}

double kd_fig_curves_height(double w, const KdFigStyle *st, const KdFigCurves *c) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  CurvesGeom G;
  double a, b;
  cairo_t *cr = kd_fig_measure_cr(st);
  double h = curves_split(cr, st, c, w, &G, &a, &b);
  cairo_destroy(cr);
  return h + (has_ap(c) ? st->font_pt * 0.5 : 0);
}

static void curves_geom(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigCurves *c, CurvesGeom *G) {
  double h_loss, h_ap;
  double gap = has_ap(c) ? st->font_pt * 0.5 : 0;
  double total = curves_split(cr, st, c, r.w, G, &h_loss, &h_ap);
  double k = total > 0 ? (r.h - gap) / total : 1; /* fill what we were given */
  G->r1 = (KdFigRect){r.x, r.y, r.w, h_loss * k};
  G->r2 = (KdFigRect){r.x, r.y + h_loss * k + gap, r.w, h_ap * k};
  if (!has_ap(c)) {
    kd_plot_layout(cr, st, &c->loss, G->r1, &G->o1, &G->g1);
    return;
  }
  /* Both charts get the wider margins so the x axes align. */
  kd_plot_layout(cr, st, &c->loss, G->r1, &G->o1, &G->g1);
  kd_plot_layout(cr, st, &c->ap, G->r2, &G->o2, &G->g2);
  double left = fmax(kd_plot_left_margin(cr, st, &c->loss, &G->g1), kd_plot_left_margin(cr, st, &c->ap, &G->g2));
  double right = fmax(kd_plot_right_margin(cr, st, &G->g1), kd_plot_right_margin(cr, st, &G->g2));
  G->o1.left = G->o2.left = left;
  G->o1.right = G->o2.right = right;
  kd_plot_layout(cr, st, &c->loss, G->r1, &G->o1, &G->g1);
  kd_plot_layout(cr, st, &c->ap, G->r2, &G->o2, &G->g2);
}

void kd_fig_curves_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigCurves *c) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  CurvesGeom G;
  curves_geom(cr, r, st, c, &G);
  kd_plot_render(cr, st, &c->loss, G.r1, &G.g1, &G.o1);
  if (has_ap(c)) kd_plot_render(cr, st, &c->ap, G.r2, &G.g2, &G.o2);
  if (st->panel_letters && has_ap(c)) {
    kd_fig_panel_letter(cr, st, (KdFigRect){G.r1.x, G.r1.y, 0, 0}, 0);
    kd_fig_panel_letter(cr, st, (KdFigRect){G.r2.x, G.r2.y, 0, 0}, 1);
  }
}

static int curves_pick_v(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *pick) {
  const KdFigCurves *c = spec;
  cairo_t *cr = kd_fig_measure_cr(st);
  CurvesGeom G;
  curves_geom(cr, r, st, c, &G);
  cairo_destroy(cr);
  if (kd_plot_pick(&c->loss, &G.g1, x, y, pick)) return 1;
  if (!has_ap(c) || !kd_plot_pick(&c->ap, &G.g2, x, y, pick)) return 0;
  if (pick->key >= 0 && pick->key != KD_FIG_KEY_SMOOTHING) pick->key += c->loss.nseries; /* AP keys after loss' */
  return 1;
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
#define MAX_BREAKS 64

/* The chart behind the gradient figure: per source a solid fg and a dashed
 * bg series in the source's colour; smoothing restarts at the markers. */
typedef struct GradPlot {
  KdFigSeries ser[2 * MAX_SOURCES];
  KdFigSeriesExtra extra[2 * MAX_SOURCES];
  double breaks[MAX_BREAKS];
  KdFigPlot p;
} GradPlot;

static void grad_plot(const KdFigGradCurves *g, GradPlot *gp) {
  int ns = g->nsources < MAX_SOURCES ? g->nsources : MAX_SOURCES;
  int nb = 0;
  for (int i = 0; i < g->nmarkers && nb < MAX_BREAKS; i++) gp->breaks[nb++] = g->markers[i].x;
  for (int s = 0; s < ns; s++) {
    gp->ser[2 * s] = (KdFigSeries){g->sources[s], g->step, g->fg[s], g->n, s, KD_FIG_SOLID, 0};
    gp->ser[2 * s + 1] = (KdFigSeries){NULL, g->step, g->bg[s], g->n, s, KD_FIG_DASHED, 0};
    gp->extra[2 * s] = gp->extra[2 * s + 1] = (KdFigSeriesExtra){KD_FIG_MARK_NONE, gp->breaks, nb, 0};
  }
  gp->p = (KdFigPlot){.title = g->title,
                      .xlabel = "step",
                      .ylabel = "mean |grad|",
                      .series = gp->ser,
                      .nseries = 2 * ns,
                      .markers = g->markers,
                      .nmarkers = g->nmarkers,
                      .logy = g->linear_y ? KD_FIG_SCALE_LINEAR : KD_FIG_SCALE_LOG,
                      .smooth = g->smooth,
                      .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN,
                      .extra = gp->extra};
}

/* Its keys: a colour per source, then the fg/bg line styles. */
static void grad_keys(const KdFigGradCurves *g, const GradPlot *gp, KdPlotGeom *geo) {
  kd_plot_prepare(&gp->p, geo); /* only for the smoothing note, if any */
  KdFigKey note = geo->nkeys > 0 ? geo->keys[geo->nkeys - 1] : (KdFigKey){0};
  int has_note = geo->nkeys > 0 && geo->key_series[geo->nkeys - 1] == KD_FIG_KEY_SMOOTHING;
  int ns = gp->p.nseries / 2, k = 0;
  for (int s = 0; s < ns; s++) {
    geo->keys[k] = (KdFigKey){g->sources[s], {0}, 0, KD_FIG_KEY_FILL, 0, 0};
    kd_fig_series_style(s, geo->keys[k].rgb, NULL, NULL);
    geo->key_series[k++] = -1;
  }
  geo->keys[k] = (KdFigKey){"foreground", {0.2, 0.2, 0.2}, KD_FIG_SOLID, KD_FIG_KEY_LINE, 0, 0};
  geo->key_series[k++] = -1;
  geo->keys[k] = (KdFigKey){"background", {0.2, 0.2, 0.2}, KD_FIG_DASHED, KD_FIG_KEY_LINE, 0, 0};
  geo->key_series[k++] = -1;
  if (has_note) {
    geo->keys[k] = note;
    geo->keys[k].label = geo->note;
    geo->key_series[k++] = -1;
  }
  geo->nkeys = k;
}

static const KdPlotOpts grad_opts = {1, 1, NULL, 0, 0};

double kd_fig_gradcurves_height(double w, const KdFigStyle *st, const KdFigGradCurves *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  GradPlot gp;
  KdPlotGeom geo;
  grad_plot(g, &gp);
  grad_keys(g, &gp, &geo);
  cairo_t *cr = kd_fig_measure_cr(st);
  double h = kd_plot_height(cr, st, &gp.p, w, plot_area_h(w, 0.5), &grad_opts, &geo);
  cairo_destroy(cr);
  return h;
}

void kd_fig_gradcurves_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st,
                            const KdFigGradCurves *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  GradPlot gp;
  KdPlotGeom geo;
  grad_plot(g, &gp);
  grad_keys(g, &gp, &geo);
  kd_plot_layout(cr, st, &gp.p, r, &grad_opts, &geo);
  kd_plot_render(cr, st, &gp.p, r, &geo, &grad_opts);
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
  GradPlot gp;
  KdPlotGeom geo;
  grad_plot(g, &gp);
  grad_keys(g, &gp, &geo);
  cairo_t *cr = kd_fig_measure_cr(st);
  kd_plot_layout(cr, st, &gp.p, r, &grad_opts, &geo);
  cairo_destroy(cr);
  const KdFigRect *pl = &geo.plot;
  if (g->n == 0 || gp.p.nseries == 0 || x < pl->x || x > pl->x + pl->w || y < pl->y || y > pl->y + pl->h) return 0;
  double t = (x - pl->x) / pl->w;
  pick->step = geo.x.lo + t * (geo.x.hi - geo.x.lo);
  pick->step_lo = geo.x.lo;
  pick->step_hi = geo.x.hi;
  size_t k = kd_plot_nearest(&gp.ser[0], pick->step);
  size_t used = (size_t)snprintf(out, len, "step %.0f:", g->step[k]);
  for (int s = 0; s < gp.p.nseries / 2 && used < len; s++)
    used += (size_t)snprintf(out + used, len - used, "%s %s fg %.3g bg %.3g", s ? "," : "", g->sources[s], g->fg[s][k],
                             g->bg[s][k]);
  return 1;
}

KdFigPanel kd_fig_gradcurves_panel(const KdFigGradCurves *g) {
  return (KdFigPanel){grad_draw_v, grad_height_v, g, grad_pick_v};
}
