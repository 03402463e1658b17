/* Building blocks shared by the figure kinds: text with anchors, the
 * nearest-neighbour raster for maps and images, colorbars, axes, legends.
 * Internal to ui/figure*.c; all lengths in points. */
#ifndef KD_FIGURE_PRIV_H
#define KD_FIGURE_PRIV_H

#include "figure.h"

/* Vertical rhythm: a text line is this many font sizes tall. */
#define KD_FIG_LINE 1.25
/* A point's worth of breathing room, in font sizes. */
#define KD_FIG_PAD 0.35

/* ---- text ---- */
typedef enum { KD_FIG_NORMAL, KD_FIG_BOLD } KdFigWeight;
/* Selects the style's face at size_pt (relative sizes: st->font_pt * k). */
void kd_fig_font(cairo_t *cr, const KdFigStyle *st, double size_pt, KdFigWeight weight);
double kd_fig_text_width(cairo_t *cr, const char *s);
/* Draws s so that the anchor (ax, ay) of its box lands on (x, y): ax 0 left,
 * 0.5 centre, 1 right; ay 0 top, 0.5 middle, 1 bottom of the font's
 * ascent..descent box. angle in radians (text rotates about the anchor). */
void kd_fig_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                 double angle);
/* As kd_fig_text, shrinking the font (down to 70%) and then ellipsising so
 * the text fits maxw. */
void kd_fig_text_fit(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                     double maxw);
/* A context on a 1x1 surface for measuring text in height functions. */
cairo_t *kd_fig_measure_cr(const KdFigStyle *st);
void kd_fig_set_rgb(cairo_t *cr, const double rgb[3], double alpha);
/* "(a)", "(b)"... "(z)", "(aa)" in bold at the top-left corner of r, on a
 * white chip so it reads over an image. */
void kd_fig_panel_letter(cairo_t *cr, const KdFigStyle *st, KdFigRect r, int index);
/* The raster dpi kd_fig_paint set on the context (vector pages), or 0. */
double kd_fig_raster_dpi(cairo_t *cr);
/* The style, or the defaults when st is NULL. */
const KdFigStyle *kd_fig_style_or_default(const KdFigStyle *st, KdFigStyle *tmp);

/* ---- rasters ---- */
/* An RGB24 surface of the map at native resolution, coloured through cmap
 * over [lo, hi] (log10 when log); NULL on allocation failure. */
cairo_surface_t *kd_fig_map_surface(const KdFigMap *m, KdCmap cmap, double lo, double hi,
                                    int log);
cairo_surface_t *kd_fig_image_surface(const KdFigImage *im);
/* Paints surf stretched onto dst with nearest-neighbour sampling (PDF/SVG
 * keep it as one embedded image at native resolution). */
void kd_fig_paint_nearest(cairo_t *cr, cairo_surface_t *surf, KdFigRect dst, double alpha);
/* The largest rectangle of aspect w:h centred in r. */
KdFigRect kd_fig_fit_aspect(KdFigRect r, double w, double h);

/* ---- colorbar ---- */
/* A horizontal colorbar whose bar spans r.w; r.h should be
 * kd_fig_colorbar_height(st). Ticks below, label (if any) under them, and
 * the exact range ends always labelled. */
void kd_fig_colorbar_h(cairo_t *cr, const KdFigStyle *st, KdFigRect r, KdCmap cmap, double lo,
                       double hi, int log, const char *label);
double kd_fig_colorbar_height(const KdFigStyle *st, int has_label);
/* Whether every finite value of the maps is 0 or 1 (a binary mask): such
 * maps get a two-colour key (kd_fig_binary_key, in a colorbar's place)
 * instead of a continuous bar. */
int kd_fig_maps_binary(const KdFigMap *const *maps, int n);
void kd_fig_binary_key(cairo_t *cr, const KdFigStyle *st, KdFigRect r, KdCmap cmap, double lo, double hi,
                       const char *label);

/* ---- axes ---- */
typedef struct KdFigAxis {
  double lo, hi; /* data range shown */
  int log;
  KdFigTicks ticks;
} KdFigAxis;

/* Chooses a padded range (lin: 3% each side unless clamped at 0-crossing;
 * log: to whole minor ticks) and ticks for the data range [dlo, dhi]. */
void kd_fig_axis_setup(KdFigAxis *a, double dlo, double dhi, int log, int max_ticks, int pad);
/* Maps a data value to the [p0, p1] coordinate range (NaN when it cannot be
 * shown: <= 0 on a log axis). */
double kd_fig_axis_map(const KdFigAxis *a, double v, double p0, double p1);
/* Left margin the y tick labels and label need. */
double kd_fig_axis_left_margin(cairo_t *cr, const KdFigStyle *st, const KdFigAxis *y,
                               const char *ylabel);
double kd_fig_axis_bottom_margin(const KdFigStyle *st, const char *xlabel, int tick_labels);
/* Frame, ticks (in), grid lines, tick labels, axis labels around plot. */
void kd_fig_axes_draw(cairo_t *cr, const KdFigStyle *st, KdFigRect plot, const KdFigAxis *x,
                      const KdFigAxis *y, const char *xlabel, const char *ylabel,
                      int x_tick_labels);

/* ---- legend ---- */
typedef enum { KD_FIG_KEY_LINE, KD_FIG_KEY_BOX, KD_FIG_KEY_DOT, KD_FIG_KEY_TRIANGLE,
               KD_FIG_KEY_FILL, KD_FIG_KEY_STAR,
               KD_FIG_KEY_DOT_LINE /* points joined by a line of the key's dash */ } KdFigKeyKind;
typedef struct KdFigKey {
  const char *label;
  double rgb[3];
  int dash;
  KdFigKeyKind kind;
  int greyed; /* a hidden series: faint and struck through */
  int marker; /* KD_FIG_MARK_*: drawn on the key's line */
} KdFigKey;
/* Lays keys out in rows within width w starting at (x, y); draws when draw
 * is set; returns the height used. */
double kd_fig_legend(cairo_t *cr, const KdFigStyle *st, double x, double y, double w,
                     const KdFigKey *keys, int n, int draw);
/* The same layout, drawing nothing: each key's box (swatch and label). */
double kd_fig_legend_rects(cairo_t *cr, const KdFigStyle *st, double x, double y, double w,
                           const KdFigKey *keys, int n, KdFigRect *rects);
/* Keys stacked in one column from (x, y): its size into *w, *h, each key's
 * box into rects (when not NULL); drawn when draw is set. */
void kd_fig_legend_column(cairo_t *cr, const KdFigStyle *st, double x, double y,
                          const KdFigKey *keys, int n, int draw, KdFigRect *rects, double *w,
                          double *h);
/* One key: swatch of width keyw at (x, centre y) and its label. */
void kd_fig_legend_key(cairo_t *cr, const KdFigStyle *st, const KdFigKey *k, double x, double y,
                       double keyw);
/* A marker shape (KD_FIG_MARK_*) of radius r at (x, y), filled in the
 * source colour with a white rim. */
void kd_fig_marker(cairo_t *cr, int marker, double x, double y, double r);
void kd_fig_set_dash(cairo_t *cr, int dash, double lw);
/* A five-pointed star path of outer radius r centred on (x, y). */
void kd_fig_star_path(cairo_t *cr, double x, double y, double r);

/* ---- shared geometry ---- */
/* Title line height (0 when there is no title) and drawing. */
double kd_fig_title_height(const KdFigStyle *st, const char *title);
void kd_fig_title(cairo_t *cr, const KdFigStyle *st, KdFigRect r, const char *title);

#endif
