/* A setting against the last AP over runs (run_browser_hparams.h). */
#include "run_browser_hparams.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Point {
  double x, y;
  const char *name;
  int color;
} Point;

struct KdHparamStore {
  Point pts[KD_HPARAM_MAX_RUNS];
  int n, logx;
  double xlo, xhi, ylo, yhi;
  char title[256], xlabel[256];
};

KdHparamStore *kd_hparam_store_new(void) { return calloc(1, sizeof(KdHparamStore)); }
void kd_hparam_store_free(KdHparamStore *s) { free(s); }

static int has_key(const char **keys, int n, const char *key) {
  for (int i = 0; i < n; i++)
    if (!strcmp(keys[i], key)) return 1;
  return 0;
}

static int add_key(const char **keys, int n, int max, const char *key) {
  if (n < max && !has_key(keys, n, key)) keys[n++] = key;
  return n;
}

int kd_hparam_keys(const KdRunSummary *const *runs, int n, const char **keys, int max) {
  if (n <= 0 || !runs[0]->cfg) return 0;
  const KdConfig *c0 = runs[0]->cfg;
  int k = 0;
  const KdParamDesc *d = kd_config_find(c0, "train.lr");
  if (d) k = add_key(keys, k, max, d->key);
  if ((d = kd_config_find(c0, "train.seed"))) k = add_key(keys, k, max, d->key);
  /* Each run's methods' main weights. */
  for (int r = 0; r < n; r++) {
    char list[256], key[160];
    snprintf(list, sizeof list, "%s", runs[r]->methods);
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
      snprintf(key, sizeof key, "%s.weight", m);
      if ((d = kd_config_find(c0, key))) k = add_key(keys, k, max, d->key);
    }
  }
  /* Any other number that differs between the runs. */
  for (int i = 0; i < kd_config_count(c0) && k < max; i++) {
    d = kd_config_desc(c0, i);
    if (d->type == KD_CFG_STRING || d->type == KD_CFG_ENUM || d->type == KD_CFG_BOOL) continue;
    double v0 = kd_run_summary_num(runs[0], d->key);
    for (int r = 1; r < n; r++) {
      double v = kd_run_summary_num(runs[r], d->key);
      if (v != v0 && !(isnan(v) && isnan(v0))) {
        k = add_key(keys, k, max, d->key);
        break;
      }
    }
  }
  return k;
}

/* A range with room around the points; one value gets a span around it. */
static void padded(double lo, double hi, int log, double *plo, double *phi) {
  if (log) {
    if (hi <= lo) lo /= 2, hi *= 2;
    double f = pow(hi / lo, 0.08);
    *plo = lo / f, *phi = hi * f;
    return;
  }
  if (hi <= lo) {
    double d = fabs(lo) > 0 ? fabs(lo) * 0.5 : 1;
    lo -= d, hi += d;
  }
  double m = (hi - lo) * 0.08;
  *plo = lo - m, *phi = hi + m;
}

/* ---- drawing: a plain scatter, points labelled with their runs ---- */

typedef struct Geom {
  KdFigRect plot;
  double fs;
} Geom;

static void geom(KdFigRect r, const KdFigStyle *st, Geom *g) {
  g->fs = st->font_pt;
  double left = g->fs * 6, top = g->fs * 2.2, bottom = g->fs * 3.6, right = g->fs * 1.5;
  g->plot = (KdFigRect){r.x + left, r.y + top, fmax(10, r.w - left - right), fmax(10, r.h - top - bottom)};
}

static double map_x(const KdHparamStore *s, const Geom *g, double x) {
  double t = s->logx ? (log10(x) - log10(s->xlo)) / (log10(s->xhi) - log10(s->xlo)) : (x - s->xlo) / (s->xhi - s->xlo);
  return g->plot.x + t * g->plot.w;
}

static double map_y(const KdHparamStore *s, const Geom *g, double y) {
  return g->plot.y + g->plot.h - (y - s->ylo) / (s->yhi - s->ylo) * g->plot.h;
}

static void text(cairo_t *cr, double x, double y, const char *t, double ax, double ay) {
  cairo_text_extents_t te;
  cairo_font_extents_t fe;
  cairo_text_extents(cr, t, &te);
  cairo_font_extents(cr, &fe);
  cairo_move_to(cr, x - ax * te.x_advance, y - ay * (fe.ascent + fe.descent) + fe.ascent);
  cairo_show_text(cr, t);
}

static void draw_ticks(cairo_t *cr, const KdHparamStore *s, const Geom *g, int xaxis) {
  KdFigTicks t;
  double lo = xaxis ? s->xlo : s->ylo, hi = xaxis ? s->xhi : s->yhi;
  int log = xaxis && s->logx;
  if (log) kd_fig_ticks_log(lo, hi, 6, &t);
  else kd_fig_ticks_linear(lo, hi, xaxis ? 7 : 6, &t);
  char buf[64];
  for (int i = 0; i < t.nmajor; i++) {
    double v = t.major[i];
    kd_fig_format_tick(v, t.step, log, buf, sizeof buf);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    if (xaxis) {
      double px = map_x(s, g, v);
      cairo_new_path(cr);
      cairo_move_to(cr, px, g->plot.y), cairo_line_to(cr, px, g->plot.y + g->plot.h);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
      text(cr, px, g->plot.y + g->plot.h + g->fs * 0.3, buf, 0.5, 0);
    } else {
      double py = map_y(s, g, v);
      cairo_new_path(cr);
      cairo_move_to(cr, g->plot.x, py), cairo_line_to(cr, g->plot.x + g->plot.w, py);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
      text(cr, g->plot.x - g->fs * 0.4, py, buf, 1, 0.5);
    }
  }
}

static void hparam_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  const KdHparamStore *s = spec;
  Geom g;
  geom(r, st, &g);
  cairo_save(cr);
  cairo_select_font_face(cr, st->font_family, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, g.fs * 1.1);
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, r.x + r.w / 2, r.y + g.fs * 0.4, s->title, 0.5, 0);
  cairo_select_font_face(cr, st->font_family, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, g.fs);
  cairo_set_line_width(cr, st->line_pt);
  draw_ticks(cr, s, &g, 1);
  draw_ticks(cr, s, &g, 0);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_new_path(cr);
  cairo_rectangle(cr, g.plot.x, g.plot.y, g.plot.w, g.plot.h);
  cairo_stroke(cr);
  text(cr, g.plot.x + g.plot.w / 2, g.plot.y + g.plot.h + g.fs * 1.7, s->xlabel, 0.5, 0);
  cairo_save(cr);
  cairo_translate(cr, r.x + g.fs * 0.3, g.plot.y + g.plot.h / 2);
  cairo_rotate(cr, -M_PI / 2);
  text(cr, 0, 0, "last AP (%)", 0.5, 0);
  cairo_restore(cr);
  /* points, each named by its run (names left out when they would crowd) */
  for (int i = 0; i < s->n; i++) {
    const Point *p = &s->pts[i];
    double rgb[3], px = map_x(s, &g, p->x), py = map_y(s, &g, p->y);
    kd_fig_palette(p->color, rgb);
    cairo_new_path(cr); /* the last label left a current point */
    cairo_arc(cr, px, py, g.fs * 0.45, 0, 2 * M_PI);
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, st->line_pt * 0.6);
    cairo_stroke(cr);
    if (s->n <= 16) {
      cairo_set_source_rgb(cr, rgb[0] * 0.7, rgb[1] * 0.7, rgb[2] * 0.7);
      text(cr, px + g.fs * 0.7, py - g.fs * 0.2, p->name, 0, 1);
    }
  }
  cairo_restore(cr);
}

static double hparam_height(double w, const KdFigStyle *st, const void *spec) {
  (void)spec;
  return fmax(st->font_pt * 22, fmin(w * 0.45, st->font_pt * 40));
}

static int hparam_pick(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  const KdHparamStore *s = spec;
  Geom g;
  geom(r, st, &g);
  int best = -1;
  double bd = g.fs * g.fs; /* within a font size */
  for (int i = 0; i < s->n; i++) {
    double dx = map_x(s, &g, s->pts[i].x) - x, dy = map_y(s, &g, s->pts[i].y) - y;
    if (dx * dx + dy * dy < bd) bd = dx * dx + dy * dy, best = i;
  }
  if (best < 0) return 0;
  snprintf(out->text, sizeof out->text, "%s: %s = %g, last AP %.2f%%", s->pts[best].name, s->xlabel, s->pts[best].x,
           s->pts[best].y);
  return 1;
}

int kd_hparam_build(const KdRunSummary *const *runs, int n, const char *key, KdHparamStore *s, KdFigPanel *out,
                    int *left_out, KdError *err) {
  *left_out = 0;
  if (n > KD_HPARAM_MAX_RUNS) return kd_error(err, "hyperparameters: %d runs, at most %d", n, KD_HPARAM_MAX_RUNS);
  const KdParamDesc *d = n > 0 && runs[0]->cfg ? kd_config_find(runs[0]->cfg, key) : NULL;
  if (!d) return kd_error(err, "hyperparameters: no setting '%s'", key ? key : "");
  int np = 0, log = d->log_scale;
  double xlo = INFINITY, xhi = -INFINITY, ymax = 0;
  for (int r = 0; r < n; r++) {
    double x = kd_run_summary_num(runs[r], key), y = runs[r]->ap;
    if (!isfinite(x) || !isfinite(y)) {
      (*left_out)++;
      continue;
    }
    if (x <= 0) log = 0;
    /* colour r: the run's place in the selection, as on the compare chart */
    s->pts[np++] = (Point){x, y, runs[r]->name, r};
    xlo = fmin(xlo, x), xhi = fmax(xhi, x), ymax = fmax(ymax, y);
  }
  if (!np) return kd_error(err, "no run chosen has both %s and an evaluation (%d left out)", key, *left_out);
  s->n = np;
  s->logx = log;
  snprintf(s->title, sizeof s->title, "last COCO AP against %s, %d run%s%s", key, np, np == 1 ? "" : "s",
           *left_out ? " (runs without an evaluation left out)" : "");
  snprintf(s->xlabel, sizeof s->xlabel, "%s", key);
  padded(xlo, xhi, log, &s->xlo, &s->xhi);
  s->ylo = 0;
  s->yhi = ymax > 0 ? ymax * 1.15 : 1.0;
  *out = (KdFigPanel){hparam_draw, hparam_height, s, hparam_pick};
  return 0;
}

int kd_hparam_point(const KdHparamStore *s, int i, double *x, double *ap, const char **name) {
  if (i >= 0 && i < s->n) {
    if (x) *x = s->pts[i].x;
    if (ap) *ap = s->pts[i].y;
    if (name) *name = s->pts[i].name;
  }
  return s->n;
}
