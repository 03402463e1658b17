/* Figures: the Cairo drawing shared by the window's panels and the
 * exporter, so an exported figure is exactly what a panel showed.
 *
 * Everything here takes plain data (float grids, RGB8 images, box arrays,
 * (x, y) series, markers), never engine types; adapters from probe
 * snapshots and run logs live elsewhere. All drawing is in points (1/72 in)
 * in user space: a panel draws into a KdFigRect of points, and the caller's
 * transform decides the device scale (kd_fig_paint). No GTK here.
 *
 * Each figure kind has a spec struct, a draw function
 *   void kd_fig_X_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigX *spec)
 * a preferred height for a width (its fixed layout), and a KdFigPanel
 * wrapper so code that only paints or exports can treat all kinds alike.
 * Specs borrow their arrays; nothing is copied or kept after the call. */
#ifndef KD_FIGURE_H
#define KD_FIGURE_H

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

#include "colormap.h"
#include "series.h"

/* ---- common types ----------------------------------------------------- */

typedef struct KdFigRect {
  double x, y, w, h; /* points */
} KdFigRect;

/* The face every figure uses unless the style names another. */
#define KD_FIG_DEFAULT_FONT "DejaVu Sans"

typedef struct KdFigStyle {
  const char *font_family; /* default "DejaVu Sans" (ships in Debian, embeds in PDF) */
  double font_pt;          /* base font size, default 8 */
  double line_pt;          /* axis and frame line width, default 0.6 */
  int panel_letters;       /* label sub-panels (a), (b)... where a figure has them */
  double raster_dpi;       /* vector pages: embed images at this many pixels per
                              inch (0: at their native size) */
} KdFigStyle;

/* A float grid, row-major, h rows of w; NaN marks "no data". */
typedef struct KdFigMap {
  const float *v;
  int h, w;
} KdFigMap;

/* An RGB8 image; stride in bytes (0 means 3*w). */
typedef struct KdFigImage {
  const uint8_t *rgb;
  int h, w, stride;
} KdFigImage;

/* A box in the image's pixel coordinates (x1, y1, x2, y2); cls < 0 draws no
 * class name, score < 0 no score (ground truth). */
typedef struct KdFigBox {
  float x1, y1, x2, y2;
  int cls;
  float score;
} KdFigBox;

/* Line dashes (KdFigSeries.dash, legend keys). Dotted marks another
 * run's series (a reference) on the curves. */
enum { KD_FIG_SOLID, KD_FIG_DASHED, KD_FIG_DOTTED, KD_FIG_DASHDOT, KD_FIG_LONGDASH };
/* Markers along a line (KdFigSeries.marker). */
enum { KD_FIG_MARK_NONE, KD_FIG_MARK_CIRCLE, KD_FIG_MARK_SQUARE, KD_FIG_MARK_TRIANGLE };

/* A named (x, y) series. color: series-palette index, or -1 for the
 * series' position; dash: KD_FIG_SOLID.., or -1 for the position's
 * (kd_fig_series_style). points: draw a dot per sample (for sparse series
 * such as AP per evaluation). */
typedef struct KdFigSeries {
  const char *name;
  const double *x, *y;
  size_t n;
  int color, dash, points;
} KdFigSeries;

/* More about a series, where a chart has it (KdFigPlot.extra). marker:
 * KD_FIG_MARK_*, -1 for the position's. breaks: steps of the live changes
 * of this series' run; smoothing restarts after each (kd_series_segments).
 * hidden: not drawn and not in the y range; its legend key stays, greyed,
 * where the chart is interactive. */
typedef struct KdFigSeriesExtra {
  int marker;
  const double *breaks;
  int nbreaks;
  int hidden;
} KdFigSeriesExtra;

/* A vertical marker where something changed (e.g. "λ_fgd 2→4"). */
typedef struct KdFigMarker {
  double x;
  const char *label;
} KdFigMarker;

/* How a value range is chosen: lo < hi fixes it; otherwise it is the data's
 * [min, max] (symmetric [-m, m] for a diverging map). log maps log10 values
 * (values <= 0 take the lowest colour). */
typedef struct KdFigRange {
  double lo, hi;
  int log;
} KdFigRange;

/* A position marked on every map of a figure (the window's linked cursor):
 * (u, v) in [0, 1) across and down the map; the cell holding it gets an
 * outline on each map, whatever the map's size. on = 0: none. */
typedef struct KdFigMark {
  int on;
  double u, v;
} KdFigMark;

/* What lies under a point: one line of text, and where on a map it is;
 * over a chart with a step axis, the step there and the axis' range; over
 * a legend key, its series. */
typedef struct KdFigPick {
  char text[512];
  KdFigMark cell;      /* on when the point is over a map */
  double step;         /* the step under the point, NaN when not over a step axis */
  double step_lo, step_hi; /* the step axis' shown range */
  int key;             /* the legend key's series index (KD_FIG_KEY_SMOOTHING: the
                          smoothing note), -1 when not over a key */
  char key_name[96];   /* that series' name */
} KdFigPick;
#define KD_FIG_KEY_SMOOTHING 10000

typedef struct KdFigPanel {
  void (*draw)(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec);
  /* Preferred height in points for a width in points (the fixed layout). */
  double (*height_for_width)(double w, const KdFigStyle *st, const void *spec);
  const void *spec;
  /* Optional: what lies under (x, y) (points, in the rectangle r the panel
   * was drawn in) for a hover readout; 0 when nothing there has a value. */
  int (*pick)(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out);
} KdFigPanel;

void kd_fig_style_default(KdFigStyle *st);

/* The palette for classes and box sources (Okabe-Ito, colour-blind safe).
 * index wraps. */
void kd_fig_palette(int index, double rgb[3]);
/* The look of line series i: one of 12 colours that stay apart for
 * colour-blind readers, a dash that changes with every colour and a
 * marker with every fourth, so up to 12 series stay distinguishable in
 * grey print. index wraps; any output may be NULL. */
#define KD_FIG_SERIES_STYLES 12
void kd_fig_series_style(int index, double rgb[3], int *dash, int *marker);

/* The blank margin kd_fig_paint leaves round a figure (points), and the
 * page height a figure needs for a page width, margin included (what
 * exports and panels size themselves by). */
double kd_fig_margin(const KdFigStyle *st);
double kd_fig_panel_height(const KdFigPanel *p, const KdFigStyle *st, double width_pt);

/* ---- text and fonts ---- */

/* A figure label as Pango markup: _{..} subscript, ^{..} superscript,
 * \alpha .. \Omega and a few symbols (\cdot \times \to \pm \infty
 * \ell \leq \geq \approx) as Unicode, $ dropped, the rest escaped.
 * Every figure text goes through it. Returns the length written. */
int kd_fig_label_markup(const char *label, char *out, size_t len);
/* Whether fontconfig knows the family (installed). */
int kd_fig_font_installed(const char *family);
/* The family if installed; else the default with a message naming the
 * Debian package that has it ("font 'Latin Modern Roman' is not installed
 * (Debian package fonts-lmodern); using DejaVu Sans"). msg may be NULL. */
const char *kd_fig_font_resolve(const char *family, char *msg, size_t len);
/* The families offered for papers (NULL-terminated). */
const char *const *kd_fig_paper_fonts(void);
/* Drops this thread's text state and Pango's font map (before
 * cairo_debug_reset_static_data in leak checks). */
void kd_fig_text_shutdown(void);

/* Paints a panel at device scale `scale` (device units per point: dpi/72):
 * white background, fixed font options (no hinting, grey antialiasing, so
 * the pixels do not depend on the surface or the screen's settings), then
 * the panel in a rectangle of width_pt x height_pt. This is the one entry
 * point for the screen and for every export. */
void kd_fig_paint(cairo_t *cr, const KdFigPanel *p, const KdFigStyle *st, double width_pt,
                  double height_pt, double scale);

/* The pick of a panel painted by kd_fig_paint at width_pt x height_pt:
 * fills out and returns 1 when the point has a value to show (out is
 * cleared either way). */
int kd_fig_pick(const KdFigPanel *p, const KdFigStyle *st, double width_pt, double height_pt,
                double x, double y, KdFigPick *out);
/* An empty pick: no text, no cell, no step, no key. */
void kd_fig_pick_clear(KdFigPick *out);

/* ---- image with boxes --------------------------------------------------- */

/* GT solid green, teacher dashed blue, student solid vermillion; labels
 * "name score". Detections below score_thresh are not drawn. Proposals
 * (a two-stage model's RPN boxes) thin orange under the rest, unlabelled
 * and unthresholded, with a key of their own when there are any. */
typedef struct KdFigDetView {
  KdFigImage image;
  const KdFigBox *gt, *teacher, *student;
  int ngt, nteacher, nstudent;
  const KdFigBox *proposals;
  int nproposals;
  const char *proposals_label; /* their key; NULL: "RPN proposals" */
  const KdFigBox *negatives;   /* thin grey under everything (HEAD's negative RoIs) */
  int nnegatives;
  const char *negatives_label; /* their key; NULL: "negative RoIs" */
  const char *const *class_names;
  int nclasses;
  float score_thresh;
  int labels; /* draw class names and scores */
  int legend; /* a GT / teacher / student key under the image */
  const char *title;
} KdFigDetView;

void kd_fig_detview_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigDetView *d);
double kd_fig_detview_height(double w, const KdFigStyle *st, const KdFigDetView *d);
/* Where the image lies when d is drawn in r. */
KdFigRect kd_fig_detview_image_rect(KdFigRect r, const KdFigStyle *st, const KdFigDetView *d);
KdFigPanel kd_fig_detview_panel(const KdFigDetView *d);

/* ---- heatmaps ---------------------------------------------------------------- */

/* A row of maps ("small multiples") with colorbars: teacher | student | gap
 * energy of one FPN level, masks, spatial attention, gradient magnitude per
 * source. Maps with the same `group` share one colour range and one
 * colorbar (the default teacher/student pairing: put both in group 0);
 * give each its own group to scale independently. Maps are drawn as
 * images at native resolution, nearest-neighbour, over `under` (the probe
 * image, stretched to the same extent) with opacity `alpha` when set. */
#define KD_FIG_MAX_MAPS 8

typedef struct KdFigMapItem {
  KdFigMap map;
  const char *title;
  int group; /* 0 .. KD_FIG_MAX_MAPS-1 */
} KdFigMapItem;

typedef struct KdFigMapGroup {
  KdCmap cmap;
  KdFigRange range;
  const char *label; /* colorbar label, e.g. "energy" */
} KdFigMapGroup;

typedef struct KdFigMaps {
  const KdFigMapItem *items;
  int n;
  const KdFigMapGroup *groups; /* indexed by item.group */
  int ngroups;
  const KdFigImage *under; /* optional */
  double alpha;            /* map opacity over `under` (0 or 1: opaque) */
  const char *title;
  KdFigMark mark;
} KdFigMaps;

void kd_fig_maps_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigMaps *m);
double kd_fig_maps_height(double w, const KdFigStyle *st, const KdFigMaps *m);
KdFigPanel kd_fig_maps_panel(const KdFigMaps *m);
/* "(x col, y row) of WxH: title value; ..." for the cell under (x, y) in r,
 * with the values of every map of that size at the same cell. */
int kd_fig_maps_pick(KdFigRect r, const KdFigStyle *st, const KdFigMaps *m, double x, double y,
                     KdFigPick *out);

/* The value range a group resolves to over the given maps (what the
 * colorbar shows): fixed, or the data's min/max. Returns 0, or -1 when no
 * finite value exists (then [0, 1]). */
int kd_fig_resolve_range(const KdFigRange *r, KdCmap cmap, const KdFigMap *const *maps, int n,
                         double *lo, double *hi);

/* ---- bars ------------------------------------------------------------------------ */

/* Grouped bars: n categories, nseries values each (channel attention of
 * teacher and student; fg/bg means per source). Too many bars for the
 * width: series 0 as bars, the others as outlined steps over them. */
typedef struct KdFigBars {
  const char *title, *xlabel, *ylabel;
  const char *const *series_names;
  const float *const *values; /* values[s][i] */
  int nseries, n;
  const char *const *categories; /* optional tick labels per category */
  int sort_by;                   /* order categories by this series, descending; -1 keeps */
  int logy;
  const char *mark_label;        /* a dashed vertical line at category position mark (unsorted
                                    charts; NULL: none), labelled: LD's GT edge */
  double mark;
} KdFigBars;

void kd_fig_bars_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigBars *b);
double kd_fig_bars_height(double w, const KdFigStyle *st, const KdFigBars *b);
KdFigPanel kd_fig_bars_panel(const KdFigBars *b);

/* Attention: teacher and student spatial attention (one shared range) and
 * their channel attention as bars. */
typedef struct KdFigAttention {
  KdFigMap teacher_spatial, student_spatial;
  const float *teacher_channel, *student_channel;
  int nchannels;
  int sort_channels; /* order channels by teacher attention */
  int independent;   /* scale teacher and student spatial maps separately */
  const char *title;
  KdFigMark mark;
} KdFigAttention;

void kd_fig_attention_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st,
                           const KdFigAttention *a);
double kd_fig_attention_height(double w, const KdFigStyle *st, const KdFigAttention *a);
KdFigPanel kd_fig_attention_panel(const KdFigAttention *a);

/* Gradient magnitude on the student's features by source (detection, each
 * distillation loss): one map per source on one (log by default) colour
 * range, and bars of the fg and bg means per source. */
typedef struct KdFigGradMaps {
  const char *const *sources;
  const KdFigMap *maps;
  const float *fg_mean, *bg_mean;
  int nsources; /* <= KD_FIG_MAX_MAPS */
  int linear;   /* linear colour scale instead of log */
  int independent;
  const char *title;
  KdFigMark mark;
} KdFigGradMaps;

void kd_fig_gradmaps_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st,
                          const KdFigGradMaps *g);
double kd_fig_gradmaps_height(double w, const KdFigStyle *st, const KdFigGradMaps *g);
KdFigPanel kd_fig_gradmaps_panel(const KdFigGradMaps *g);

/* ---- dots ------------------------------------------------------------------------ */

/* Values per category, one row each (a method's result over seeds): a dot
 * per value, a bar at the mean, "mean ± SD (n)" at the right (sample SD,
 * `decimals` places, -1: 1), and labelled vertical reference lines. */
typedef struct KdFigDots {
  const char *title, *xlabel;
  const char *const *categories;
  const double *const *values; /* values[c][i], i < counts[c]; NaN skipped */
  const int *counts;
  int n;
  const double *ref_x; /* nref reference lines (teacher, baseline...) */
  const char *const *ref_labels;
  int nref;
  int decimals;
} KdFigDots;

void kd_fig_dots_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigDots *d);
double kd_fig_dots_height(double w, const KdFigStyle *st, const KdFigDots *d);
KdFigPanel kd_fig_dots_panel(const KdFigDots *d);

/* ---- HEAD's sampled RoIs ------------------------------------------------------------ */

/* Per sampled RoI, teacher vs assistant vs student: the image with the
 * RoIs (positives in their class colour, negatives grey) beside a scatter
 * of two of the RoIs' gaps (HEAD: AKD fc2, the assistant's gap to the
 * teacher, against CKD, the student's). The point nearest the pointer is
 * ringed and its RoI drawn thick on the image. Positives are orange (the
 * image figure's proposal colour), negatives grey; the readout names the class. */
typedef struct KdFigRois {
  KdFigDetView det;  /* the image; its proposals / negatives are the RoIs */
  const float *rows; /* n x cols: x1, y1, x2, y2, label (class + 1, 0 bg), GT flag, gaps */
  int n, cols;
  int xgap, ygap;    /* the gap columns on the axes (0-based, after the GT flag) */
  const char *gap_names[3];
  const char *xlabel, *ylabel, *title;
  const char *const *class_names;
  int nclasses;
  int hover_on;      /* the pointer, in the coordinates the panel is painted in */
  double hover_x, hover_y;
} KdFigRois;

KdFigPanel kd_fig_rois_panel(const KdFigRois *r);

/* ---- global knowledge's prototypes --------------------------------------------------- */

/* One level's prototypes (teacher filled stars, student hollow stars, each
 * pair joined) and the probe images' instances (teacher dots, student
 * triangles, sized by their robustness weight w) on a 2-D projection,
 * coloured by class; beside it the probe image with its instances' boxes
 * coloured by w. A side is left out when its key is hidden; the point
 * nearest the pointer is ringed, its box outlined, its values read out. */
typedef struct KdFigProtos {
  const float *pt_xy, *ps_xy; /* np x 2, row k of both: one prototype pair */
  const int *pcls;
  int np;
  const float *it_xy, *is_xy; /* ni x 2, the instances of every probe image */
  const int *icls, *iimage;
  const float *iw, *iqs, *iqt;
  int ni;
  const float *bbox, *bw; /* the drawn image's instances (every level): nb x 4 boxes (input pixels), w */
  const int *brow;        /* their index among it_xy (-1: on another level) */
  int nb;
  int show_t, show_s;
  KdFigDetView det; /* the probe image drawn beside (no boxes of its own) */
  const char *const *class_names;
  int nclasses;
  const char *title, *xlabel, *ylabel;
  int hover_on;
  double hover_x, hover_y;
} KdFigProtos;

KdFigPanel kd_fig_protos_panel(const KdFigProtos *p);

/* ---- scatter ---------------------------------------------------------------------- */

/* 2-D projections of teacher and student instance features: teacher filled
 * circles, student hollow triangles, coloured by class, pair i joined by a
 * thin line; optional prototypes as stars. */
typedef struct KdFigScatter {
  const float *teacher_xy, *student_xy; /* n x 2 */
  const int *cls;                       /* n, may be NULL */
  int n;
  const float *proto_xy; /* nproto x 2, optional */
  const int *proto_cls;
  int nproto;
  const char *const *class_names;
  int nclasses;
  int join_pairs;
  const char *title, *xlabel, *ylabel;
} KdFigScatter;

void kd_fig_scatter_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigScatter *s);
double kd_fig_scatter_height(double w, const KdFigStyle *st, const KdFigScatter *s);
KdFigPanel kd_fig_scatter_panel(const KdFigScatter *s);

/* ---- curves -------------------------------------------------------------------------- */

/* Where a chart's legend goes: above the plot (default), in a column at
 * its right, inside one of its corners, or nowhere. */
typedef enum KdFigLegendPos {
  KD_FIG_LEGEND_TOP,
  KD_FIG_LEGEND_RIGHT,
  KD_FIG_LEGEND_UPPER_RIGHT,
  KD_FIG_LEGEND_UPPER_LEFT,
  KD_FIG_LEGEND_LOWER_LEFT,
  KD_FIG_LEGEND_LOWER_RIGHT,
  KD_FIG_LEGEND_NONE,
  KD_FIG_LEGEND_NPOS
} KdFigLegendPos;
/* "top", "right", "upper-right", ...; -1 for another name. */
int kd_fig_legend_pos_from_name(const char *name);
const char *kd_fig_legend_pos_name(KdFigLegendPos p);

/* How a chart picks its y scale: from the data (log when the drawn
 * positive values span more than KD_FIG_AUTO_LOG_DECADES), or forced. */
typedef enum KdFigScale { KD_FIG_SCALE_LINEAR, KD_FIG_SCALE_LOG, KD_FIG_SCALE_AUTO } KdFigScale;
#define KD_FIG_AUTO_LOG_DECADES 1.5

/* One chart of series vs step. Smoothing (per chart) runs on each series
 * segment between its breaks, then thinning picks per-pixel min/max; with
 * smoothing on, the raw series is drawn faintly under the smoothed one
 * (unless hide_raw). log axes are true log axes: samples <= 0 on a log
 * axis are not drawn. logy is a KdFigScale (0 linear, 1 log, 2 auto). Axis
 * limits: xmin.. ymax, each NaN for the data's; with x limits, the y range
 * follows the samples inside them. cursor_on: a playhead at step cursor.
 * interactive: hidden series keep a greyed key, and the smoothing note is
 * always there (a click on it shows the raw series). */
typedef struct KdFigPlot {
  const char *title, *xlabel, *ylabel;
  const KdFigSeries *series;
  int nseries;
  const KdFigMarker *markers;
  int nmarkers;
  int logx, logy;
  KdSmooth smooth;
  int hide_raw;
  double xmin, xmax, ymin, ymax; /* NaN: from the data */
  int no_legend;
  KdFigLegendPos legend;
  int cursor_on;
  double cursor;
  int interactive;
  int smooth_off; /* interactive: smoothing chosen but switched off by a click */
  const KdFigSeriesExtra *extra; /* nseries entries, or NULL: no markers, breaks or hiding */
} KdFigPlot;

/* Whether the chart draws a log y axis (its scale, or its data for auto). */
int kd_fig_plot_logy(const KdFigPlot *p);

void kd_fig_plot_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigPlot *p);
double kd_fig_plot_height(double w, const KdFigStyle *st, const KdFigPlot *p);
KdFigPanel kd_fig_plot_panel(const KdFigPlot *p);

/* The curves figure: loss parts over AP, one x range, the markers on both
 * (labelled on the top chart). An AP chart without series is left out. */
typedef struct KdFigCurves {
  KdFigPlot loss, ap;
} KdFigCurves;

void kd_fig_curves_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigCurves *c);
double kd_fig_curves_height(double w, const KdFigStyle *st, const KdFigCurves *c);
KdFigPanel kd_fig_curves_panel(const KdFigCurves *c);

/* The gradient figure (DeFeat's observation): mean gradient magnitude on
 * foreground (solid) and background (dashed) per source over steps. */
typedef struct KdFigGradCurves {
  const char *const *sources;
  const double *step;
  const double *const *fg, *const *bg; /* [source][i], n each */
  int nsources;
  size_t n;
  const KdFigMarker *markers;
  int nmarkers;
  int linear_y; /* log y by default */
  KdSmooth smooth;
  const char *title;
} KdFigGradCurves;

void kd_fig_gradcurves_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st,
                            const KdFigGradCurves *g);
double kd_fig_gradcurves_height(double w, const KdFigStyle *st, const KdFigGradCurves *g);
KdFigPanel kd_fig_gradcurves_panel(const KdFigGradCurves *g);

/* ---- composite grid ---------------------------------------------------------------- */

typedef enum KdFigCol {
  KD_FIG_COL_IMAGE,   /* image with boxes */
  KD_FIG_COL_TEACHER, /* teacher energy */
  KD_FIG_COL_STUDENT, /* student energy */
  KD_FIG_COL_GAP,     /* gap map */
  KD_FIG_COL_MASK,    /* a mask */
  KD_FIG_NCOLS
} KdFigCol;

typedef struct KdFigGridRow {
  const char *label; /* row label at the left, e.g. "image 12" or "P4" */
  KdFigDetView det;  /* image + boxes (its title and legend are not drawn) */
  KdFigMap teacher, student, gap, mask;
} KdFigGridRow;

/* Rows = chosen probe images (or levels), columns chosen from KdFigCol in
 * the order given. One colorbar per column kind under the grid, over all
 * rows; teacher and student share one range and one colorbar unless
 * independent_ts. Maps overlay the image when overlay > 0 (its opacity). */
typedef struct KdFigGrid {
  const KdFigGridRow *rows;
  int nrows;
  const KdFigCol *cols;
  int ncols;
  int independent_ts;
  double overlay;
  KdCmap energy_cmap, gap_cmap, mask_cmap;
  KdFigRange energy_range, gap_range; /* mask range is [0, 1] unless set */
  KdFigRange mask_range;
  const char *col_titles[KD_FIG_NCOLS]; /* NULL: short defaults */
  const char *title;
} KdFigGrid;

void kd_fig_grid_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigGrid *g);
double kd_fig_grid_height(double w, const KdFigStyle *st, const KdFigGrid *g);
KdFigPanel kd_fig_grid_panel(const KdFigGrid *g);

/* ---- helpers the tests and the window use -------------------------------------- */

#define KD_FIG_MAX_TICKS 32
typedef struct KdFigTicks {
  double major[KD_FIG_MAX_TICKS];
  int nmajor;
  double minor[4 * KD_FIG_MAX_TICKS];
  int nminor;
  double step; /* linear: spacing of majors; log: decades between majors, 0 for
                  1-2-5 majors, minus the spacing for linear majors */
} KdFigTicks;

/* Nice linear ticks (1, 2, 5 x 10^k) inside [lo, hi], at most max_major. */
void kd_fig_ticks_linear(double lo, double hi, int max_major, KdFigTicks *t);
/* Log ticks inside [lo, hi] (both > 0): majors at decades (every k-th
 * decade when there are too many; 1-2-5 when the range spans under about a
 * decade), minors at 2..9 x 10^k. */
void kd_fig_ticks_log(double lo, double hi, int max_major, KdFigTicks *t);
/* A tick label: compact (%g-like, 12k, 1.5M) for linear; 10^k with Unicode
 * superscripts on log axes outside [1e-3, 1e4]. */
void kd_fig_format_tick(double v, double step, int log, char *buf, size_t len);

#endif
