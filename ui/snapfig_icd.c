/* The "icd" figure: ICD's teacher-side attention of one instance query at
 * a level (the snapshot's img<i>.queries.icd, every valid query's
 * attention, mean over heads): the real query of the GT box holding the
 * picked cell (a click on a map; else the image's first GT) beside up to
 * two fake queries (the same class first) for contrast, on one range. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "snapfig_priv.h"
#include "snapview.h"

int kd_snapfig_has_icd(const KdSnapshot *s) {
  for (int k = 0; s && k < s->nfields; k++)
    if (strstr(s->fields[k].name, ".queries.icd")) return 1;
  return 0;
}

int kd_snapfig_build_icd(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  char lv[16];
  kd_snapshot_level_name(s, v->level, lv, sizeof lv);
  const KdSnapField *f = kd_snapshot_findf(s, "img%d.queries.icd", v->image);
  if (!f || f->ndim != 2 || f->shape[1] < 7)
    return kd_error(err, "icd: the snapshot at step %d has no ICD queries of image %d (ICD off, or no GT box)", s->step, v->image);
  /* This level's cells within a query's row: after the finer levels'. */
  int off = 0, H = 0, W = 0;
  for (int l = 0; l <= v->level; l++) {
    KdFigMap e = kd_snapview_map(s, v->image, l, "t_energy");
    if (!e.v) return kd_error(err, "icd: no teacher map at level %d to size the queries' cells", l);
    if (l < v->level) off += e.h * e.w;
    else H = e.h, W = e.w;
  }
  const int C = f->shape[1], R = f->shape[0];
  if (6 + off + H * W > C) return kd_error(err, "icd: the queries hold %d cells, level %s needs %d", C - 6, lv, off + H * W);
  int y, x;
  kd_snapfig_pick_cell(v->pick, H, W, &y, &x);
  const double stride = s->strides[v->level], px = (x + 0.5) * stride, py = (y + 0.5) * stride;
  int real = -1, first = -1;
  double best = INFINITY;
  for (int r = 0; r < R; r++) {
    const float *q = f->data + (size_t)r * C;
    if (q[0] < 0.5f) continue;
    if (first < 0) first = r;
    double a = (q[4] - q[2]) * (q[5] - q[3]);
    if (px >= q[2] && px <= q[4] && py >= q[3] && py <= q[5] && a < best) best = a, real = r;
  }
  int held = real >= 0;
  if (!held) real = first;
  if (real < 0) return kd_error(err, "icd: image %d has no real query", v->image);
  int rows[3] = {real, -1, -1}, n = 1;
  const float cls = f->data[(size_t)real * C + 1];
  for (int pass = 0; pass < 2 && n < 3; pass++)
    for (int r = 0; r < R && n < 3; r++) {
      const float *q = f->data + (size_t)r * C;
      if (q[0] > 0.5f || (pass == 0 && q[1] != cls) || (pass == 1 && q[1] == cls)) continue;
      rows[n++] = r;
    }
  double hi = 0;
  for (int k = 0; k < n; k++) {
    const float *m = f->data + (size_t)rows[k] * C + 6 + off;
    for (int i = 0; i < H * W; i++) hi = fmax(hi, m[i]);
    const int c = (int)f->data[(size_t)rows[k] * C + 1];
    const char *name = c >= 0 && c < s->nclasses ? s->class_names[c] : "?";
    snprintf(p->item_titles[k], sizeof p->item_titles[k], "%s %s", k ? "fake query," : "GT query,", name);
    p->items[k] = (KdFigMapItem){{m, H, W}, p->item_titles[k], 0};
  }
  p->groups[0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, hi > 0 ? hi : 1, 0}, "attention (mean over heads)"};
  snprintf(p->title, sizeof p->title, "%s: ICD's teacher attention of %s GT query%s and fake queries, image %d, step %d", lv,
           held ? "the picked cell's" : "the first", held ? "" : " (the picked cell is in no GT box)", v->image, s->step);
  kd_snapfig_maps_spec(v, p, n, 1);
  *out = kd_fig_maps_panel(&p->maps);
  return 0;
}
