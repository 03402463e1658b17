/* Global knowledge's prototypes and instances on a 2-D projection beside
 * the probe image with the instances' robustness weights (figure.h,
 * KdFigProtos). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "colormap.h"
#include "figure_priv.h"

#define MAXK 16

typedef struct {
  KdFigRect plot, img, bar;
  KdFigAxis xa, ya;
  KdFigKey keys[MAXK];
  KdFigRect key_r[MAXK];
  int nk;
  double wlo;
} Layout;

static int keys(const KdFigProtos *f, KdFigKey *k) {
  int n = 0;
  k[n++] = (KdFigKey){"teacher", {0.15, 0.15, 0.15}, 0, KD_FIG_KEY_DOT, !f->show_t, 0};
  k[n++] = (KdFigKey){"student", {0.15, 0.15, 0.15}, 0, KD_FIG_KEY_TRIANGLE, !f->show_s, 0};
  k[n++] = (KdFigKey){"prototype", {0.6, 0.6, 0.6}, 0, KD_FIG_KEY_STAR, 0, 0};
  for (int c = 0; c < f->nclasses && n < MAXK; c++) {
    int seen = 0;
    for (int i = 0; i < f->np && !seen; i++) seen = f->pcls[i] == c;
    for (int i = 0; i < f->ni && !seen; i++) seen = f->icls[i] == c;
    if (!seen) continue;
    k[n] = (KdFigKey){f->class_names ? f->class_names[c] : "?", {0}, 0, KD_FIG_KEY_FILL, 0, 0};
    kd_fig_palette(c, k[n++].rgb);
  }
  return n;
}

static void grow(double *lo, double *hi, const float *xy, int n, int k) {
  for (int i = 0; xy && i < n; i++)
    if (isfinite(xy[2 * i + k])) *lo = fmin(*lo, xy[2 * i + k]), *hi = fmax(*hi, xy[2 * i + k]);
}

static void layout(KdFigRect r, const KdFigStyle *st, const KdFigProtos *f, Layout *L) {
  cairo_t *cr = kd_fig_measure_cr(st);
  double th = kd_fig_title_height(st, f->title);
  L->nk = keys(f, L->keys);
  double lh = kd_fig_legend_rects(cr, st, r.x, r.y + th, r.w, L->keys, L->nk, L->key_r);
  double top = r.y + th + lh + st->font_pt * 0.4, body = r.y + r.h - top;
  double iw = fmin(r.w * 0.36, body * 0.9);
  L->img = (KdFigRect){r.x + r.w - iw, top, iw, body - kd_fig_colorbar_height(st, 1)};
  L->bar = (KdFigRect){L->img.x, L->img.y + L->img.h, iw, kd_fig_colorbar_height(st, 1)};
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int k = 0; k < 2; k++) {
    double *lo = k ? &ylo : &xlo, *hi = k ? &yhi : &xhi;
    if (f->show_t) grow(lo, hi, f->pt_xy, f->np, k), grow(lo, hi, f->it_xy, f->ni, k);
    if (f->show_s) grow(lo, hi, f->ps_xy, f->np, k), grow(lo, hi, f->is_xy, f->ni, k);
  }
  if (!isfinite(xlo)) xlo = ylo = -1, xhi = yhi = 1;
  double ph = body - kd_fig_axis_bottom_margin(st, f->xlabel, 1);
  double py = (yhi - ylo) * 0.06 + 1e-9, px = (xhi - xlo) * 0.06 + 1e-9;
  kd_fig_axis_setup(&L->ya, ylo - py, yhi + py, 0, ph > 120 ? 6 : 4, 0);
  double lm = kd_fig_axis_left_margin(cr, st, &L->ya, f->ylabel);
  L->plot = (KdFigRect){r.x + lm, top, L->img.x - r.x - lm - st->font_pt * 1.5, ph};
  kd_fig_axis_setup(&L->xa, xlo - px, xhi + px, 0, (int)fmax(3, L->plot.w / (st->font_pt * 4.5)), 0);
  L->wlo = 1;
  for (int i = 0; i < f->nb; i++) L->wlo = fmin(L->wlo, f->bw[i]);
  L->wlo = fmin(floor(L->wlo * 10) / 10, 0.9);
  cairo_destroy(cr);
}

static void at(const Layout *L, const float *xy, int i, double *x, double *y) {
  *x = kd_fig_axis_map(&L->xa, xy[2 * i], L->plot.x, L->plot.x + L->plot.w);
  *y = kd_fig_axis_map(&L->ya, xy[2 * i + 1], L->plot.y + L->plot.h, L->plot.y);
}

/* The point under (x, y): instance i (>= 0), prototype -2 - k, or -1;
 * *side 0 teacher, 1 student. */
static int hit(const Layout *L, const KdFigStyle *st, const KdFigProtos *f, double x, double y, int *side) {
  int best = -1;
  double bd = pow(st->font_pt * 0.7, 2);
  for (int s = 0; s < 2; s++) {
    if (!(s ? f->show_s : f->show_t)) continue;
    const float *sets[2] = {s ? f->is_xy : f->it_xy, s ? f->ps_xy : f->pt_xy};
    const int ns[2] = {f->ni, f->np};
    for (int k = 0; k < 2; k++)
      for (int i = 0; sets[k] && i < ns[k]; i++) {
        double px, py;
        at(L, sets[k], i, &px, &py);
        double d = (px - x) * (px - x) + (py - y) * (py - y);
        if (isfinite(d) && d < bd) bd = d, best = k ? -2 - i : i, *side = s;
      }
  }
  return best;
}

static void star(cairo_t *cr, double x, double y, double r, const double rgb[3], int filled, double lw) {
  kd_fig_star_path(cr, x, y, r);
  if (filled) kd_fig_set_rgb(cr, rgb, 1);
  else cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_fill_preserve(cr);
  kd_fig_set_rgb(cr, rgb, 1);
  cairo_set_line_width(cr, lw);
  cairo_stroke(cr);
}

static void protos_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  const KdFigProtos *f = spec;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  Layout L;
  layout(r, st, f, &L);
  kd_fig_title(cr, st, r, f->title);
  kd_fig_legend(cr, st, r.x, r.y + kd_fig_title_height(st, f->title), r.w, L.keys, L.nk, 1);
  kd_fig_axes_draw(cr, st, L.plot, &L.xa, &L.ya, f->xlabel, f->ylabel, 1);
  int side = 0, h = f->hover_on ? hit(&L, st, f, f->hover_x, f->hover_y, &side) : -1;
  double rad = fmax(1.2, st->font_pt * 0.22), lw = st->line_pt;
  cairo_save(cr);
  cairo_rectangle(cr, L.plot.x, L.plot.y, L.plot.w, L.plot.h);
  cairo_clip(cr);
  for (int i = 0; i < f->ni; i++) { /* instances: small, sized by w */
    double rgb[3], x, y, q = rad * (0.5 + 0.8 * fmin(fmax(f->iw[i], 0), 1));
    kd_fig_palette(f->icls[i], rgb);
    if (f->show_t && f->it_xy) {
      at(&L, f->it_xy, i, &x, &y);
      kd_fig_set_rgb(cr, rgb, 0.75);
      cairo_arc(cr, x, y, q, 0, 2 * M_PI);
      cairo_fill(cr);
    }
    if (f->show_s && f->is_xy) {
      at(&L, f->is_xy, i, &x, &y);
      cairo_move_to(cr, x, y - q * 1.2);
      cairo_line_to(cr, x + q * 1.1, y + q * 0.8);
      cairo_line_to(cr, x - q * 1.1, y + q * 0.8);
      cairo_close_path(cr);
      kd_fig_set_rgb(cr, rgb, 0.75);
      cairo_set_line_width(cr, lw * 0.7);
      cairo_stroke(cr);
    }
  }
  for (int i = 0; f->show_t && f->show_s && i < f->np; i++) { /* pairs */
    double rgb[3], x0, y0, x1, y1;
    kd_fig_palette(f->pcls[i], rgb);
    at(&L, f->pt_xy, i, &x0, &y0), at(&L, f->ps_xy, i, &x1, &y1);
    kd_fig_set_rgb(cr, rgb, 0.6);
    cairo_set_line_width(cr, lw * 0.7);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
  }
  for (int s = 0; s < 2; s++)
    for (int i = 0; (s ? f->show_s : f->show_t) && i < f->np; i++) {
      double rgb[3], x, y;
      kd_fig_palette(f->pcls[i], rgb);
      at(&L, s ? f->ps_xy : f->pt_xy, i, &x, &y);
      star(cr, x, y, rad * 2.6, rgb, !s, lw * 0.9);
    }
  if (h != -1) {
    double x, y;
    at(&L, h >= 0 ? (side ? f->is_xy : f->it_xy) : (side ? f->ps_xy : f->pt_xy), h >= 0 ? h : -2 - h, &x, &y);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, lw * 1.3);
    cairo_arc(cr, x, y, rad * 3.4, 0, 2 * M_PI);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  /* The image with its instances' boxes coloured by w. */
  kd_fig_detview_draw(cr, L.img, st, &f->det);
  KdFigRect ir = kd_fig_detview_image_rect(L.img, st, &f->det);
  double sx = f->det.image.w > 0 ? ir.w / f->det.image.w : 1, sy = f->det.image.h > 0 ? ir.h / f->det.image.h : 1;
  cairo_save(cr);
  cairo_rectangle(cr, ir.x, ir.y, ir.w, ir.h);
  cairo_clip(cr);
  for (int i = 0; i < f->nb; i++) {
    const float *b = f->bbox + 4 * i;
    double rgb[3];
    kd_cmap_rgb(KD_CMAP_VIRIDIS, (f->bw[i] - L.wlo) / (1 - L.wlo), rgb);
    kd_fig_set_rgb(cr, rgb, 1);
    cairo_set_line_width(cr, lw * (h >= 0 && f->brow[i] == h ? 3 : 1.1));
    cairo_rectangle(cr, ir.x + b[0] * sx, ir.y + b[1] * sy, (b[2] - b[0]) * sx, (b[3] - b[1]) * sy);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  kd_fig_colorbar_h(cr, st, L.bar, KD_CMAP_VIRIDIS, L.wlo, 1, 0, "robustness weight w of the image's instances");
}

static double protos_height(double w, const KdFigStyle *st, const void *spec) {
  const KdFigProtos *f = spec;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  return kd_fig_title_height(st, f->title) + st->font_pt * 3 + fmin(w * 0.42, 280);
}

static int protos_pick(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  const KdFigProtos *f = spec;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  Layout L;
  layout(r, st, f, &L);
  for (int k = 0; k < 2; k++) /* the teacher / student keys hide a side */
    if (x >= L.key_r[k].x && x <= L.key_r[k].x + L.key_r[k].w && y >= L.key_r[k].y && y <= L.key_r[k].y + L.key_r[k].h) {
      out->key = k;
      snprintf(out->key_name, sizeof out->key_name, "%s", k ? "student" : "teacher");
      snprintf(out->text, sizeof out->text, "click: %s the %s's points", (k ? f->show_s : f->show_t) ? "hide" : "show",
               k ? "student" : "teacher");
      return 1;
    }
  int side = 0, h = hit(&L, st, f, x, y, &side);
  if (h == -1) return 0;
  const char *who = side ? "student" : "teacher";
  if (h < -1) {
    int k = -2 - h, c = f->pcls[k];
    snprintf(out->text, sizeof out->text, "%s prototype %d, class %s", who, k, f->class_names && c >= 0 && c < f->nclasses ? f->class_names[c] : "?");
    return 1;
  }
  int c = f->icls[h];
  snprintf(out->text, sizeof out->text, "instance %d (%s side), image %d, class %s: q_s %.3f, q_t %.3f, w %.3f", h, who,
           f->iimage[h], f->class_names && c >= 0 && c < f->nclasses ? f->class_names[c] : "?", f->iqs[h], f->iqt[h], f->iw[h]);
  return 1;
}

KdFigPanel kd_fig_protos_panel(const KdFigProtos *p) { return (KdFigPanel){protos_draw, protos_height, p, protos_pick}; }
