/* The attention panel of a picked pixel: the teacher's and the student's
 * parameter-free criss-cross relation of that pixel (CSGR's R, softmax over
 * its row and column at csgr.temp_rel) drawn as the cross on the level's
 * grid, their difference, and the category attention map of each class of
 * the probe image. Everything is recomputed from the standardised features
 * the snapshot keeps (mask.csgr.feat_t / feat_s) and its GT boxes, so any
 * pixel works live and in replay. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "distill/masks.h"
#include "probe/maps.h"
#include "snapfig_priv.h"
#include "snapview.h"

#define SF_CAT_CLASSES 4 /* classes drawn (teacher and student each) */

int kd_snapfig_level_size(const KdSnapshot *s, int image, int level, int *H, int *W, KdError *err) {
  KdFigMap m = kd_snapview_map(s, image, level, "s_energy");
  if (!m.v) return kd_error(err, "the snapshot at step %d has no maps of level %d, image %d", s ? s->step : -1, level, image);
  *H = m.h, *W = m.w;
  return 0;
}

static int clampi(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

void kd_snapfig_pick_cell(KdFigMark pick, int H, int W, int *y, int *x) {
  *y = pick.on ? clampi((int)floor(pick.v * H), H) : H / 2;
  *x = pick.on ? clampi((int)floor(pick.u * W), W) : W / 2;
}

KdFigMark kd_snapfig_cell_mark(int y, int x, int H, int W) {
  return (KdFigMark){1, (x + 0.5) / W, (y + 0.5) / H};
}

/* The side's feature of the image: C x H*W, or NULL. */
static const float *side_feat(const KdSnapshot *s, int image, const char *lv, char side, int *C, int *H, int *W) {
  const KdSnapField *f = kd_snapshot_findf(s, "img%d.%s.mask.csgr.feat_%c", image, lv, side);
  if (!f || f->ndim != 3) return NULL;
  *C = f->shape[0], *H = f->shape[1], *W = f->shape[2];
  return f->data;
}

static float *grow(struct SfCross *x, size_t n) {
  if (n > x->cap) {
    float *b = realloc(x->buf, n * sizeof *b);
    if (!b) return NULL;
    x->buf = b, x->cap = n;
  }
  return x->buf;
}

/* The relation of (h, w) as the cross on the H x W grid, NaN off it. */
static void cross_map(const float *feat, int C, int H, int W, int h, int w, float tau, float *rel, float *out) {
  for (int i = 0; i < H * W; i++) out[i] = NAN;
  kd_map_cross_relation(feat, C, H, W, h, w, tau, rel);
  for (int k = 0; k < H + W - 1; k++) {
    int ph, pw;
    kd_cc_pixel(H, W, h, w, k, &ph, &pw);
    out[ph * W + pw] = rel[k];
  }
}

/* One image's GT as a KdGtImage over the arrays given (capacity SF_MAXB). */
static KdGtImage gt_image(const KdSnapshot *s, int image, float *boxes, int *labels, int *crowd) {
  KdGtImage g = {boxes, labels, crowd, 0};
  const KdSnapField *f = kd_snapshot_findf(s, "img%d.gt", image);
  if (!f || f->ndim != 2 || f->shape[1] != 6) return g;
  g.n = f->shape[0] < SF_MAXB ? f->shape[0] : SF_MAXB;
  for (int j = 0; j < g.n; j++) {
    memcpy(boxes + 4 * j, f->data + 6 * j, 4 * sizeof(float));
    labels[j] = (int)f->data[6 * j + 4], crowd[j] = f->data[6 * j + 5] != 0;
  }
  return g;
}

/* The image's classes with a non-crowd box, in order of first box. */
static int image_classes(const KdGtImage *g, int *cls, int max) {
  int n = 0;
  for (int j = 0; j < g->n && n < max; j++) {
    int seen = g->crowd[j];
    for (int i = 0; i < n; i++) seen |= cls[i] == g->labels[j];
    if (!seen) cls[n++] = g->labels[j];
  }
  return n;
}

static double stack_height(double w, const KdFigStyle *st, const void *spec) {
  const struct SfCross *x = spec;
  double h = 0;
  for (int i = 0; i < x->nparts; i++) h += x->part[i].height_for_width(w, st, x->part[i].spec);
  return h;
}

static void stack_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  const struct SfCross *x = spec;
  double y = r.y, total = stack_height(r.w, st, spec), k = total > 0 ? r.h / total : 1;
  for (int i = 0; i < x->nparts; i++) {
    double h = x->part[i].height_for_width(r.w, st, x->part[i].spec) * k;
    x->part[i].draw(cr, (KdFigRect){r.x, y, r.w, h}, st, x->part[i].spec);
    y += h;
  }
}

static int stack_pick(KdFigRect r, const KdFigStyle *st, const void *spec, double px, double py, KdFigPick *out) {
  const struct SfCross *x = spec;
  double y = r.y, total = stack_height(r.w, st, spec), k = total > 0 ? r.h / total : 1;
  for (int i = 0; i < x->nparts; i++) {
    double h = x->part[i].height_for_width(r.w, st, x->part[i].spec) * k;
    if (py >= y && py < y + h) return x->part[i].pick ? x->part[i].pick((KdFigRect){r.x, y, r.w, h}, st, x->part[i].spec, px, py, out) : 0;
    y += h;
  }
  return 0;
}

/* The category maps H*W*a_k of each class, teacher then student. */
static int category_part(const KdSnapFigView *v, struct SfCross *x, const char *lv, float *bufs, float tau_c) {
  const KdSnapshot *s = v->snap;
  float boxes[4 * SF_MAXB];
  int labels[SF_MAXB], crowd[SF_MAXB], cls[SF_CAT_CLASSES];
  KdGtImage g = gt_image(s, v->image, boxes, labels, crowd);
  int nc = image_classes(&g, cls, SF_CAT_CLASSES), n = 0;
  for (int k = 0; k < nc; k++)
    for (int side = 0; side < 2; side++) {
      int C, H, W;
      const float *f = side_feat(s, v->image, lv, side ? 's' : 't', &C, &H, &W);
      if (!f) continue;
      const int HW = H * W;
      float *m = bufs + (size_t)n * HW;
      double *a = malloc((size_t)HW * sizeof *a);
      if (!a) return -1;
      int rc = kd_category_attn(f, C, H, W, &g, cls[k], s->strides[v->level], tau_c, a);
      for (int p = 0; p < HW; p++) m[p] = rc < 0 ? NAN : rc == 1 ? 1.0f : (float)(a[p] * HW);
      free(a);
      const char *name = cls[k] >= 0 && cls[k] < s->nclasses ? s->class_names[cls[k]] : "?";
      snprintf(x->titles[1][n], sizeof x->titles[1][n], "%s (%s)", name, side ? "S" : "T");
      x->items[1][n] = (KdFigMapItem){{m, H, W}, x->titles[1][n], 0};
      n++;
    }
  if (!n) return 0;
  snprintf(x->labels[1][0], sizeof x->labels[1][0], "category attention H\xc2\xb7W\xc2\xb7" "a_k (\xcf\x84_c = %.2g)", tau_c);
  x->groups[1][0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, x->labels[1][0]};
  snprintf(x->sub_title, sizeof x->sub_title, "category attention of each class in the image (%d of %d shown)", nc,
           image_classes(&g, (int[SF_MAXB]){0}, SF_MAXB));
  x->maps[1] = (KdFigMaps){.items = x->items[1], .n = n, .groups = x->groups[1], .ngroups = 1,
                           .title = kd_snapfig_title(v, x->sub_title), .mark = v->mark.on ? v->mark : v->pick};
  x->part[x->nparts++] = kd_fig_maps_panel(&x->maps[1]);
  return 0;
}

int kd_snapfig_build_cross(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  struct SfCross *x = &p->cross;
  char lv[16];
  kd_snapshot_level_name(s, v->level, lv, sizeof lv);
  int C[2] = {0, 0}, H = 0, W = 0, h, w;
  const float *feat[2] = {side_feat(s, v->image, lv, 't', &C[0], &H, &W), side_feat(s, v->image, lv, 's', &C[1], &H, &W)};
  const KdSnapField *temps = kd_snapshot_findf(s, "img%d.%s.mask.csgr.temps", v->image, lv);
  if (!feat[0] && !feat[1]) { /* the level's energy maps, greyed under why */
    KdFigMap te = kd_snapview_map(s, v->image, v->level, "t_energy"), se = kd_snapview_map(s, v->image, v->level, "s_energy");
    if (!se.v) return kd_error(err, "cross: the snapshot at step %d has no maps at %s", s->step, lv);
    int n = 0;
    if (te.v) x->items[0][n++] = (KdFigMapItem){te, "teacher energy", 0};
    x->items[0][n++] = (KdFigMapItem){se, "student energy", 0};
    x->groups[0][0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "mean_c X\xc2\xb2"};
    x->maps[0] = (KdFigMaps){.items = x->items[0], .n = n, .groups = x->groups[0], .ngroups = 1,
                             .title = kd_snapfig_title(v, "criss-cross relation of a picked pixel")};
    *out = kd_fig_maps_panel(&x->maps[0]);
    kd_snapfig_dim(p, strstr(s->methods, "csgr") ? "no CSGR features at this level (past the snapshot's feature budget)"
                                                  : "CSGR off: the relation is drawn from CSGR's standardised features",
                   out);
    return 0;
  }
  if (!temps || temps->numel != 2)
    return kd_error(err, "cross: the snapshot at step %d has no img%d.%s.mask.csgr.temps", s->step, v->image, lv);
  const float tau_r = temps->data[0], tau_c = temps->data[1];
  const int HW = H * W;
  kd_snapfig_pick_cell(v->pick, H, W, &h, &w);
  float *buf = grow(x, (size_t)HW * (3 + 2 * SF_CAT_CLASSES) + (size_t)(H + W));
  if (!buf) return kd_error(err, "cross: out of memory");
  float *rel = buf + (size_t)HW * (3 + 2 * SF_CAT_CLASSES), *diff = buf + 2 * HW;
  int n = 0;
  static const char *const side_title[2] = {"teacher R(u, \xc2\xb7)", "student R(u, \xc2\xb7)"};
  for (int i = 0; i < 2; i++) {
    if (!feat[i]) continue;
    cross_map(feat[i], C[i], H, W, h, w, tau_r, rel, buf + (size_t)i * HW);
    x->items[0][n++] = (KdFigMapItem){{buf + (size_t)i * HW, H, W}, side_title[i], i && v->independent ? 2 : 0};
  }
  if (feat[0] && feat[1]) {
    for (int i = 0; i < HW; i++) diff[i] = buf[HW + i] - buf[i];
    x->items[0][n++] = (KdFigMapItem){{diff, H, W}, "student \xe2\x88\x92 teacher", 1};
  }
  snprintf(x->labels[0][0], sizeof x->labels[0][0], "%srelation over the cross (\xcf\x84_r = %.2g)",
           v->independent ? "teacher " : "", tau_r);
  snprintf(x->labels[0][1], sizeof x->labels[0][1], "S \xe2\x88\x92 T");
  snprintf(x->labels[0][2], sizeof x->labels[0][2], "student relation");
  for (int g = 0; g < 3; g++)
    x->groups[0][g] = (KdFigMapGroup){g == 1 ? KD_CMAP_DIVERGING : KD_CMAP_VIRIDIS, {0, 0, 0}, x->labels[0][g]};
  snprintf(p->title, sizeof p->title, "%s: criss-cross relation of pixel (%d, %d) (row, column), image %d, step %d", lv, h, w,
           v->image, s->step);
  x->nparts = 0;
  x->maps[0] = (KdFigMaps){.items = x->items[0], .n = n, .groups = x->groups[0], .ngroups = 3,
                           .title = kd_snapfig_title(v, p->title), .mark = kd_snapfig_cell_mark(h, w, H, W)};
  x->part[x->nparts++] = kd_fig_maps_panel(&x->maps[0]);
  if (category_part(v, x, lv, buf + 3 * (size_t)HW, tau_c)) return kd_error(err, "cross: out of memory");
  *out = (KdFigPanel){stack_draw, stack_height, x, stack_pick};
  return 0;
}
