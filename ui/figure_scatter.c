/* Prototype / instance projection: 2-D teacher (filled circles) and
 * student (hollow triangles) points coloured by class, each pair joined by
 * a thin line; prototypes as stars. */
#include <math.h>
#include <stdio.h>

#include "figure_priv.h"

#define MAX_KEYS 24

static int scatter_keys(const KdFigScatter *s, KdFigKey *keys, char names[][24]) {
  int k = 0;
  keys[k++] = (KdFigKey){"teacher", {0.15, 0.15, 0.15}, 0, KD_FIG_KEY_DOT, 0, 0};
  keys[k++] = (KdFigKey){"student", {0.15, 0.15, 0.15}, 0, KD_FIG_KEY_TRIANGLE, 0, 0};
  if (s->proto_xy && s->nproto > 0)
    keys[k++] = (KdFigKey){"prototype", {0.6, 0.6, 0.6}, 0, KD_FIG_KEY_STAR, 0, 0};
  /* One key per class that occurs. */
  int maxc = s->nclasses > 0 ? s->nclasses : 0;
  if (!s->class_names) {
    for (int i = 0; s->cls && i < s->n; i++)
      if (s->cls[i] + 1 > maxc) maxc = s->cls[i] + 1;
  }
  for (int c = 0; c < maxc && k < MAX_KEYS; c++) {
    int seen = 0;
    for (int i = 0; s->cls && i < s->n && !seen; i++) seen = s->cls[i] == c;
    if (!seen) continue;
    const char *label = s->class_names && c < s->nclasses ? s->class_names[c] : NULL;
    if (!label) {
      snprintf(names[k], 24, "class %d", c);
      label = names[k];
    }
    keys[k] = (KdFigKey){label, {0}, 0, KD_FIG_KEY_FILL, 0, 0};
    kd_fig_palette(c, keys[k].rgb);
    k++;
  }
  return k;
}

double kd_fig_scatter_height(double w, const KdFigStyle *st, const KdFigScatter *s) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdFigKey keys[MAX_KEYS];
  char names[MAX_KEYS][24];
  int nk = scatter_keys(s, keys, names);
  cairo_t *cr = kd_fig_measure_cr(st);
  double lh = kd_fig_legend(cr, st, 0, 0, w, keys, nk, 0);
  cairo_destroy(cr);
  double ph = fmin(w * 0.62, 220); /* square-ish for a projection */
  return kd_fig_title_height(st, s->title) + lh + st->font_pt * 0.4 + ph +
         kd_fig_axis_bottom_margin(st, s->xlabel, 1);
}

void kd_fig_scatter_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigScatter *s) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  KdFigKey keys[MAX_KEYS];
  char names[MAX_KEYS][24];
  int nk = scatter_keys(s, keys, names);
  double th = kd_fig_title_height(st, s->title);
  double lh = kd_fig_legend(cr, st, r.x, 0, r.w, keys, nk, 0);
  double top = th + lh + st->font_pt * 0.4;
  double ph = r.h - top - kd_fig_axis_bottom_margin(st, s->xlabel, 1);

  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  const float *sets[3] = {s->teacher_xy, s->student_xy, s->proto_xy};
  int counts[3] = {s->n, s->n, s->nproto};
  for (int k = 0; k < 3; k++)
    for (int i = 0; sets[k] && i < counts[k]; i++) {
      double x = sets[k][2 * i], y = sets[k][2 * i + 1];
      if (!isfinite(x) || !isfinite(y)) continue;
      xlo = fmin(xlo, x);
      xhi = fmax(xhi, x);
      ylo = fmin(ylo, y);
      yhi = fmax(yhi, y);
    }
  KdFigAxis xa, ya;
  kd_fig_axis_setup(&ya, ylo, yhi, 0, ph > 120 ? 6 : 4, 1);
  /* A projection has no natural zero: pad both sides symmetrically. */
  if (isfinite(ylo) && ylo >= 0) {
    double p = (yhi - ylo) * 0.05 + 1e-12;
    kd_fig_axis_setup(&ya, ylo - p, yhi + p, 0, ph > 120 ? 6 : 4, 0);
  }
  double lm = kd_fig_axis_left_margin(cr, st, &ya, s->ylabel);
  KdFigRect plot = {r.x + lm, r.y + top, r.w - lm - st->font_pt * 1.2, ph};
  double xp = isfinite(xlo) ? (xhi - xlo) * 0.05 + 1e-12 : 0;
  kd_fig_axis_setup(&xa, xlo - xp, xhi + xp, 0, (int)fmax(3, plot.w / (st->font_pt * 4.5)), 0);

  kd_fig_title(cr, st, r, s->title);
  kd_fig_legend(cr, st, r.x, r.y + th, r.w, keys, nk, 1);
  kd_fig_axes_draw(cr, st, plot, &xa, &ya, s->xlabel, s->ylabel, 1);

  double x0 = plot.x, x1 = plot.x + plot.w, y0 = plot.y + plot.h, y1 = plot.y;
  double rad = fmax(1.4, st->font_pt * 0.28), lw = st->line_pt;
  cairo_save(cr);
  cairo_rectangle(cr, plot.x, plot.y, plot.w, plot.h);
  cairo_clip(cr);
  for (int i = 0; i < s->n; i++) {
    if (!s->teacher_xy || !s->student_xy) break;
    double rgb[3];
    kd_fig_palette(s->cls ? s->cls[i] : 0, rgb);
    double tx = kd_fig_axis_map(&xa, s->teacher_xy[2 * i], x0, x1);
    double ty = kd_fig_axis_map(&ya, s->teacher_xy[2 * i + 1], y0, y1);
    double sx = kd_fig_axis_map(&xa, s->student_xy[2 * i], x0, x1);
    double sy = kd_fig_axis_map(&ya, s->student_xy[2 * i + 1], y0, y1);
    if (s->join_pairs && isfinite(tx + ty + sx + sy)) {
      kd_fig_set_rgb(cr, rgb, 0.55);
      cairo_set_line_width(cr, lw * 0.7);
      cairo_move_to(cr, tx, ty);
      cairo_line_to(cr, sx, sy);
      cairo_stroke(cr);
    }
  }
  for (int i = 0; s->teacher_xy && i < s->n; i++) {
    double rgb[3];
    kd_fig_palette(s->cls ? s->cls[i] : 0, rgb);
    double tx = kd_fig_axis_map(&xa, s->teacher_xy[2 * i], x0, x1);
    double ty = kd_fig_axis_map(&ya, s->teacher_xy[2 * i + 1], y0, y1);
    if (!isfinite(tx + ty)) continue;
    kd_fig_set_rgb(cr, rgb, 1);
    cairo_arc(cr, tx, ty, rad, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  for (int i = 0; s->student_xy && i < s->n; i++) {
    double rgb[3];
    kd_fig_palette(s->cls ? s->cls[i] : 0, rgb);
    double sx = kd_fig_axis_map(&xa, s->student_xy[2 * i], x0, x1);
    double sy = kd_fig_axis_map(&ya, s->student_xy[2 * i + 1], y0, y1);
    if (!isfinite(sx + sy)) continue;
    double q = rad * 1.25;
    cairo_move_to(cr, sx, sy - q);
    cairo_line_to(cr, sx + q * 0.95, sy + q * 0.7);
    cairo_line_to(cr, sx - q * 0.95, sy + q * 0.7);
    cairo_close_path(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_fill_preserve(cr);
    kd_fig_set_rgb(cr, rgb, 1);
    cairo_set_line_width(cr, lw * 0.9);
    cairo_stroke(cr);
  }
  for (int i = 0; s->proto_xy && i < s->nproto; i++) {
    double rgb[3];
    kd_fig_palette(s->proto_cls ? s->proto_cls[i] : i, rgb);
    double px = kd_fig_axis_map(&xa, s->proto_xy[2 * i], x0, x1);
    double py = kd_fig_axis_map(&ya, s->proto_xy[2 * i + 1], y0, y1);
    if (!isfinite(px + py)) continue;
    kd_fig_star_path(cr, px, py, rad * 2.2);
    kd_fig_set_rgb(cr, rgb, 1);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, lw * 0.8);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

static void scatter_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_scatter_draw(cr, r, st, spec);
}
static double scatter_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_scatter_height(w, st, spec);
}
KdFigPanel kd_fig_scatter_panel(const KdFigScatter *s) {
  return (KdFigPanel){scatter_draw_v, scatter_height_v, s, NULL};
}
