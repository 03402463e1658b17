/* The "dist" figure: LD's side distributions at a picked cell of a GFL
 * pair (the snapshot's img<i>.<L>.mask.ld.dist_t / dist_s logits, 4 sides
 * x (R+1) bins): teacher and student softmax (T = 1) per side as paired
 * bars, the GT edge of the cell's box marked where the cell lies in one. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "figure_priv.h"
#include "snapfig_priv.h"

static const char *const sides[4] = {"left", "top", "right", "bottom"};

int kd_snapfig_has_dist(const KdSnapshot *s) {
  for (int k = 0; s && k < s->nfields; k++)
    if (strstr(s->fields[k].name, ".mask.ld.dist_t")) return 1;
  return 0;
}

static void softmax(const float *x, int n, int stride, float *out) {
  double mx = -INFINITY, sum = 0;
  for (int i = 0; i < n; i++) mx = fmax(mx, x[(size_t)i * stride]);
  for (int i = 0; i < n; i++) sum += out[i] = (float)exp(x[(size_t)i * stride] - mx);
  for (int i = 0; i < n; i++) out[i] = (float)(out[i] / sum);
}

/* The anchor point's distances to the sides of the smallest non-crowd GT
 * box holding it, in strides (GFL's targets); 0 when none holds it. */
static int gt_edges(const KdSnapshot *s, int image, double cx, double cy, int stride, double d[4]) {
  const KdSnapField *g = kd_snapshot_findf(s, "img%d.gt", image);
  double best = INFINITY;
  for (int i = 0; g && g->ndim == 2 && g->shape[1] >= 6 && i < g->shape[0]; i++) {
    const float *b = g->data + (size_t)i * g->shape[1];
    double area = (b[2] - b[0]) * (b[3] - b[1]);
    if (b[5] > 0.5f || cx < b[0] || cx > b[2] || cy < b[1] || cy > b[3] || area >= best) continue;
    best = area;
    d[0] = (cx - b[0]) / stride, d[1] = (cy - b[1]) / stride, d[2] = (b[2] - cx) / stride, d[3] = (b[3] - cy) / stride;
  }
  return isfinite(best);
}

/* One key for the four charts, over them. */
static double keys(cairo_t *cr, const KdFigStyle *st, double x, double y, double w, int draw) {
  KdFigKey k[2] = {{"teacher", {0}, 0, KD_FIG_KEY_FILL, 0, 0}, {"student", {0}, 0, KD_FIG_KEY_FILL, 0, 0}};
  kd_fig_palette(0, k[0].rgb), kd_fig_palette(1, k[1].rgb);
  return kd_fig_legend(cr, st, x, y, w, k, 2, draw);
}

static void dist_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  const struct SfDist *x = spec;
  double th = kd_fig_title_height(st, x->title_ptr), w = r.w / 4;
  kd_fig_title(cr, st, r, x->title_ptr);
  double lh = keys(cr, st, r.x, r.y + th, r.w, 1);
  for (int k = 0; k < 4; k++) kd_fig_bars_draw(cr, (KdFigRect){r.x + k * w, r.y + th + lh, w, r.h - th - lh}, st, &x->bars[k]);
}

static double dist_height(double w, const KdFigStyle *st, const void *spec) {
  const struct SfDist *x = spec;
  cairo_t *cr = kd_fig_measure_cr(st);
  double lh = keys(cr, st, 0, 0, w, 0);
  cairo_destroy(cr);
  return kd_fig_title_height(st, x->title_ptr) + lh + kd_fig_bars_height(w / 4, st, &x->bars[0]);
}

int kd_snapfig_build_dist(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  char lv[16];
  kd_snapshot_level_name(s, v->level, lv, sizeof lv);
  const KdSnapField *ft = kd_snapshot_findf(s, "img%d.%s.mask.ld.dist_t", v->image, lv);
  const KdSnapField *fs = kd_snapshot_findf(s, "img%d.%s.mask.ld.dist_s", v->image, lv);
  if (!ft || !fs || ft->ndim != 3 || fs->ndim != 3 || ft->shape[0] != fs->shape[0] || ft->shape[0] % 4 ||
      ft->shape[0] / 4 > SF_DIST_MAXB || ft->shape[1] != fs->shape[1] || ft->shape[2] != fs->shape[2])
    return kd_error(err, "dist: the snapshot at step %d has no LD side distributions at %s (LD off, or not a GFL pair)", s->step, lv);
  struct SfDist *x = &p->dist;
  const int B = ft->shape[0] / 4, H = ft->shape[1], W = ft->shape[2], HW = H * W;
  int y, xc;
  kd_snapfig_pick_cell(v->pick, H, W, &y, &xc);
  int stride = s->strides[v->level];
  /* The GFL head's point of the cell: its anchor centre, (x, y) x stride (offset 0, as mmdet's and torchvision's). */
  double cx = (double)xc * stride, cy = (double)y * stride, d[4];
  int has_gt = gt_edges(s, v->image, cx, cy, stride, d);
  for (int k = 0; k < 4; k++) {
    softmax(ft->data + (size_t)k * B * HW + (size_t)y * W + xc, B, HW, x->v[k][0]);
    softmax(fs->data + (size_t)k * B * HW + (size_t)y * W + xc, B, HW, x->v[k][1]);
    x->vals[k][0] = x->v[k][0], x->vals[k][1] = x->v[k][1];
    snprintf(x->titles[k], sizeof x->titles[k], "%s", sides[k]);
    snprintf(x->marks[k], sizeof x->marks[k], "GT %.2f", has_gt ? d[k] : 0.0);
    x->bars[k] = (KdFigBars){.title = x->titles[k], .xlabel = "bin (strides)", .ylabel = k ? NULL : "probability",
                             .values = x->vals[k], .nseries = 2, .n = B,
                             .sort_by = -1, .mark_label = has_gt ? x->marks[k] : NULL, .mark = has_gt ? d[k] : NAN};
  }
  snprintf(x->title, sizeof x->title, "%s cell (%d, %d) (row, column), image %d, step %d: side distributions, softmax of the logits%s", lv,
           y, xc, v->image, s->step, has_gt ? "; dashed: the GT box's edge" : " (the cell lies in no GT box)");
  x->title_ptr = kd_snapfig_title(v, x->title);
  *out = (KdFigPanel){dist_draw, dist_height, x, NULL};
  return 0;
}
