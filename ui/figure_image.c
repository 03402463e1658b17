/* The probe image with ground-truth, teacher and student boxes, class
 * names and scores, a two-stage model's RPN proposals and HEAD's sampled
 * RoIs (positives as proposals, negatives grey). The image is embedded at native resolution
 * (nearest-neighbour); boxes and labels are vector. */
#include <math.h>
#include <stdio.h>

#include "figure_priv.h"

enum { SRC_NEG, SRC_PROPS, SRC_GT, SRC_TEACHER, SRC_STUDENT, NSRC };
/* palette: grey (-1), orange, green, blue, vermillion */
static const int src_color[NSRC] = {-1, 3, 2, 0, 1};
static const int src_dash[NSRC] = {0, 0, 0, 1, 0};
static const double src_width[NSRC] = {0.5, 0.6, 1.4, 1.4, 1.4}; /* x line_pt: proposals thin, under the rest */
static const char *src_name[NSRC] = {"negative RoIs", "RPN proposals", "ground truth", "teacher", "student"};
static const double grey[3] = {0.55, 0.55, 0.55};

static void src_rgb(int src, double rgb[3]) {
  if (src_color[src] < 0) rgb[0] = grey[0], rgb[1] = grey[1], rgb[2] = grey[2];
  else kd_fig_palette(src_color[src], rgb);
}

/* The keys: ground truth, teacher, student, then proposals and negatives when drawn. */
static int legend_keys(const KdFigDetView *d, KdFigKey keys[NSRC]) {
  static const int order[NSRC] = {SRC_GT, SRC_TEACHER, SRC_STUDENT, SRC_PROPS, SRC_NEG};
  int n = 0;
  for (int s = 0; s < NSRC; s++) {
    int src = order[s];
    if (src == SRC_PROPS && d->nproposals <= 0) continue;
    if (src == SRC_NEG && d->nnegatives <= 0) continue;
    keys[n] = (KdFigKey){0};
    keys[n].label = src == SRC_PROPS && d->proposals_label   ? d->proposals_label
                    : src == SRC_NEG && d->negatives_label ? d->negatives_label
                                                           : src_name[src];
    src_rgb(src, keys[n].rgb);
    keys[n].dash = src_dash[src];
    keys[n++].kind = KD_FIG_KEY_BOX;
  }
  return n;
}

static double legend_height(const KdFigStyle *st, double w, const KdFigDetView *d) {
  cairo_t *cr = kd_fig_measure_cr(st);
  KdFigKey keys[NSRC];
  int n = legend_keys(d, keys);
  double h = kd_fig_legend(cr, st, 0, 0, w, keys, n, 0);
  cairo_destroy(cr);
  return h + st->font_pt * 0.2;
}

static double image_aspect(const KdFigDetView *d) {
  return d->image.w > 0 && d->image.h > 0 ? (double)d->image.h / d->image.w : 1;
}

/* At double-column width a full-width image would be a page tall: the
 * layout caps the image at this height and centres it. */
#define MAX_IMAGE_H_PT 260.0

double kd_fig_detview_height(double w, const KdFigStyle *st, const KdFigDetView *d) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  double h = kd_fig_title_height(st, d->title) + fmin(w * image_aspect(d), MAX_IMAGE_H_PT);
  if (d->legend) h += legend_height(st, w, d);
  return h;
}

/* Label chips placed so far (all sources), so a new chip goes where it
 * covers none of them, or is left out: a crowded image keeps its boxes
 * and the labels that fit, never a pile of unreadable chips. */
#define MAX_CHIPS 256
typedef struct Chips {
  KdFigRect r[MAX_CHIPS];
  int n;
} Chips;

static int chip_free(const Chips *c, KdFigRect a, KdFigRect ir) {
  if (a.x < ir.x - 0.01 || a.y < ir.y - 0.01 || a.x + a.w > ir.x + ir.w + 0.01 ||
      a.y + a.h > ir.y + ir.h + 0.01)
    return 0;
  for (int i = 0; i < c->n; i++) {
    const KdFigRect *b = &c->r[i];
    if (a.x < b->x + b->w && b->x < a.x + a.w && a.y < b->y + b->h && b->y < a.y + a.h) return 0;
  }
  return 1;
}

/* Draws one source's boxes (labels = 0) or their labels (labels = 1) into
 * the image rectangle `ir`; all boxes go first so no line crosses a label. */
static void draw_boxes(cairo_t *cr, const KdFigStyle *st, const KdFigDetView *d, KdFigRect ir,
                       int src, double font, int labels, Chips *chips) {
  const KdFigBox *const bs[NSRC] = {d->negatives, d->proposals, d->gt, d->teacher, d->student};
  const int ns[NSRC] = {d->nnegatives, d->nproposals, d->ngt, d->nteacher, d->nstudent};
  const KdFigBox *b = bs[src];
  int n = ns[src];
  if (!b || n <= 0 || d->image.w <= 0 || d->image.h <= 0 || (labels && src <= SRC_PROPS)) return;
  double sx = ir.w / d->image.w, sy = ir.h / d->image.h;
  double rgb[3], lw = st->line_pt * src_width[src];
  src_rgb(src, rgb);
  cairo_save(cr);
  cairo_rectangle(cr, ir.x, ir.y, ir.w, ir.h);
  cairo_clip(cr);
  kd_fig_font(cr, st, font, KD_FIG_NORMAL);
  for (int i = 0; i < n; i++) {
    if (src > SRC_GT && b[i].score < d->score_thresh) continue;
    double x1 = ir.x + b[i].x1 * sx, y1 = ir.y + b[i].y1 * sy;
    double x2 = ir.x + b[i].x2 * sx, y2 = ir.y + b[i].y2 * sy;
    if (!(x2 > x1 && y2 > y1)) continue;
    if (!labels) {
      kd_fig_set_rgb(cr, rgb, src == SRC_NEG ? 0.6 : 1);
      cairo_set_line_width(cr, lw);
      kd_fig_set_dash(cr, src_dash[src], lw * 0.6);
      cairo_rectangle(cr, x1, y1, x2 - x1, y2 - y1);
      cairo_stroke(cr);
      continue;
    }
    char label[96];
    const char *name = (b[i].cls >= 0 && b[i].cls < d->nclasses && d->class_names)
                           ? d->class_names[b[i].cls]
                           : NULL;
    if (name && b[i].score >= 0)
      snprintf(label, sizeof label, "%s %.2f", name, b[i].score);
    else if (name)
      snprintf(label, sizeof label, "%s", name);
    else if (b[i].score >= 0)
      snprintf(label, sizeof label, "%.2f", b[i].score);
    else
      continue;
    /* A chip in the source colour. Preferred spots keep the sources apart
     * (ground truth inside the top edge, teacher above the box, student
     * below it); then the other edges, then right-aligned; the first spot
     * clear of earlier chips wins. */
    double tw = kd_fig_text_width(cr, label) + font * 0.4, th = font * 1.15;
    const double ys[3][4] = {{y1, y1 - th, y2 - th, y2},
                             {y1 - th, y1, y2, y2 - th},
                             {y2, y2 - th, y1 - th, y1}};
    const double xs[2] = {fmin(fmax(x1, ir.x), ir.x + ir.w - tw), fmax(fmin(x2 - tw, ir.x + ir.w - tw), ir.x)};
    KdFigRect chip = {0, 0, 0, 0};
    int found = 0;
    for (int k = 0; k < 8 && !found; k++) {
      chip = (KdFigRect){xs[k / 4], ys[src - SRC_GT][k % 4], tw, th};
      found = chip_free(chips, chip, ir);
    }
    if (!found) continue;
    if (chips->n < MAX_CHIPS) chips->r[chips->n++] = chip;
    kd_fig_set_rgb(cr, rgb, 0.85);
    cairo_rectangle(cr, chip.x, chip.y, chip.w, chip.h);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    kd_fig_text(cr, chip.x + font * 0.2, chip.y + th / 2, label, 0, 0.5, 0);
  }
  cairo_restore(cr);
}

KdFigRect kd_fig_detview_image_rect(KdFigRect r, const KdFigStyle *st, const KdFigDetView *d) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  double th = kd_fig_title_height(st, d->title);
  double lh = d->legend ? legend_height(st, r.w, d) : 0;
  KdFigRect area = {r.x, r.y + th, r.w, r.h - th - lh};
  return kd_fig_fit_aspect(area, d->image.w > 0 ? d->image.w : 1, d->image.h > 0 ? d->image.h : 1);
}

void kd_fig_detview_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigDetView *d) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  kd_fig_title(cr, st, r, d->title);
  KdFigRect ir = kd_fig_detview_image_rect(r, st, d);
  cairo_save(cr);
  cairo_surface_t *s = kd_fig_image_surface(&d->image);
  if (s) {
    kd_fig_paint_nearest(cr, s, ir, 1);
    cairo_surface_destroy(s);
  } else {
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_rectangle(cr, ir.x, ir.y, ir.w, ir.h);
    cairo_fill(cr);
  }
  /* Label size follows the image; thumbnails (grid cells at single-column
   * width) get boxes only, as labels would hide the image. */
  double font = fmin(st->font_pt * 0.8, fmax(st->font_pt * 0.55, ir.w / 16));
  KdFigDetView dd = *d;
  if (ir.w < 80) dd.labels = 0;
  d = &dd;
  Chips chips = {.n = 0};
  for (int pass = 0; pass < (d->labels ? 2 : 1); pass++)
    for (int src = 0; src < NSRC; src++) draw_boxes(cr, st, d, ir, src, font, pass, &chips);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, st->line_pt * 0.8);
  cairo_rectangle(cr, ir.x, ir.y, ir.w, ir.h);
  cairo_stroke(cr);
  if (d->legend) {
    KdFigKey keys[NSRC];
    int nk = legend_keys(d, keys);
    kd_fig_legend(cr, st, r.x, ir.y + ir.h + st->font_pt * 0.2, r.w, keys, nk, 1);
  }
  cairo_restore(cr);
}

static void det_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_detview_draw(cr, r, st, spec);
}
static double det_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_detview_height(w, st, spec);
}
KdFigPanel kd_fig_detview_panel(const KdFigDetView *d) {
  return (KdFigPanel){det_draw_v, det_height_v, d, NULL};
}
