/* The "prototypes" figure: global knowledge's prototypes of one level and
 * the probe images' instances (the snapshot's gk.* tables, docs/
 * SNAPSHOTS.md). Each side on the PCA plane of its own prototypes (widths
 * differ); the student's plane then rotated, reflected and scaled onto
 * the teacher's by orthogonal Procrustes on the paired prototypes, so a
 * line between a pair is the part of their gap the two planes show. The
 * bases are fitted on the prototypes, which change only at a PGM
 * generation: between generations the axes stay put and only the
 * instances move. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe/maps.h"
#include "snapfig_priv.h"
#include "snapview.h"

int kd_snapfig_has_protos(const KdSnapshot *s) {
  for (int k = 0; s && k < s->nfields; k++)
    if (!strncmp(s->fields[k].name, "gk.proto_t.", 11)) return 1;
  return 0;
}

/* Rows of X (n x C) on the 2-D basis (mean, axes) into xy. */
static void project(const float *X, int n, int C, const float *mean, const float *axes, float *xy) {
  for (int i = 0; i < n; i++) kd_pca2_project(X + (size_t)i * C, C, mean, axes, xy + 2 * i);
}

/* The similarity x -> s R x (R a rotation, or a reflection when that fits
 * better) that brings the paired rows a (n x 2) closest to b; applied to
 * the m rows of each array in pts. */
static void procrustes(const float *a, const float *b, int n, float *const *pts, const int *m, int npts) {
  double best = INFINITY, T[4] = {1, 0, 0, 1};
  for (int refl = 0; refl < 2; refl++) {
    double sxx = 0, sxy = 0, norm = 0;
    for (int i = 0; i < n; i++) {
      double x = a[2 * i], y = refl ? -a[2 * i + 1] : a[2 * i + 1], u = b[2 * i], w = b[2 * i + 1];
      sxx += x * u + y * w, sxy += x * w - y * u, norm += x * x + y * y;
    }
    double th = atan2(sxy, sxx), c = cos(th), s = sin(th), sc = norm > 0 ? (c * sxx + s * sxy) / norm : 1, err = 0;
    double M[4] = {sc * c, -sc * s * (refl ? -1 : 1), sc * s, sc * c * (refl ? -1 : 1)};
    for (int i = 0; i < n; i++) {
      double x = M[0] * a[2 * i] + M[1] * a[2 * i + 1] - b[2 * i], y = M[2] * a[2 * i] + M[3] * a[2 * i + 1] - b[2 * i + 1];
      err += x * x + y * y;
    }
    if (err < best) best = err, memcpy(T, M, sizeof T);
  }
  for (int k = 0; k < npts; k++)
    for (int i = 0; i < m[k]; i++) {
      float *p = pts[k] + 2 * i;
      double x = p[0], y = p[1];
      p[0] = (float)(T[0] * x + T[1] * y), p[1] = (float)(T[2] * x + T[3] * y);
    }
}

int kd_snapfig_build_protos(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  char lv[16];
  kd_snapshot_level_name(s, v->level, lv, sizeof lv);
  const KdSnapField *Pt = kd_snapshot_findf(s, "gk.proto_t.%s", lv), *Ps = kd_snapshot_findf(s, "gk.proto_s.%s", lv);
  const KdSnapField *Pl = kd_snapshot_findf(s, "gk.proto_label.%s", lv), *inst = kd_snapshot_find(s, "gk.inst");
  const KdSnapField *It = kd_snapshot_findf(s, "gk.inst_t.%s", lv), *Is = kd_snapshot_findf(s, "gk.inst_s.%s", lv);
  const KdSnapField *Ir = kd_snapshot_findf(s, "gk.inst_row.%s", lv);
  if (!Pt || !Ps || !Pl || Pt->ndim != 2 || Ps->ndim != 2 || Pt->shape[0] != Ps->shape[0] || Pt->shape[0] < 2)
    return kd_error(err, "prototypes: the snapshot at step %d has no global-knowledge prototypes at %s (gk off, or before its "
                         "first PGM generation)", s->step, lv);
  struct SfProtos *x = &st->protos;
  const int M = Pt->shape[0] < SF_PMAX ? Pt->shape[0] : SF_PMAX, Ct = Pt->shape[1], Cs = Ps->shape[1];
  float *mt = malloc(sizeof(float) * (size_t)(Ct + Cs) * 3);
  if (!mt) return kd_error(err, "prototypes: out of memory");
  float *at = mt + Ct, *ms = mt + 3 * Ct, *as = ms + Cs, var_t[3], var_s[3];
  if (kd_pca2(Pt->data, M, Ct, mt, at, var_t) || kd_pca2(Ps->data, M, Cs, ms, as, var_s)) {
    free(mt);
    return kd_error(err, "prototypes: out of memory");
  }
  project(Pt->data, M, Ct, mt, at, x->pt_xy);
  project(Ps->data, M, Cs, ms, as, x->ps_xy);
  for (int i = 0; i < M; i++) x->pcls[i] = (int)Pl->data[i];
  int ni = 0;
  if (It && Is && Ir && inst && inst->ndim == 2 && inst->shape[1] == 10 && It->shape[1] == Ct && Is->shape[1] == Cs) {
    ni = It->shape[0] < SF_PMAX ? It->shape[0] : SF_PMAX;
    project(It->data, ni, Ct, mt, at, x->it_xy);
    project(Is->data, ni, Cs, ms, as, x->is_xy);
    for (int i = 0; i < ni; i++) {
      int r = (int)Ir->data[i];
      const float *q = inst->data + (size_t)(r >= 0 && r < inst->shape[0] ? r : 0) * 10;
      x->iimage[i] = (int)q[0], x->icls[i] = (int)q[2];
      x->iqs[i] = q[7], x->iqt[i] = q[8], x->iw[i] = q[9];
    }
  }
  /* The drawn image's instances, every level, with their point on this level's plot if any. */
  int nb = 0;
  for (int r = 0; inst && inst->ndim == 2 && inst->shape[1] == 10 && r < inst->shape[0] && nb < SF_PMAX; r++) {
    const float *q = inst->data + (size_t)r * 10;
    if ((int)q[0] != v->image) continue;
    memcpy(x->bbox + 4 * nb, q + 3, 4 * sizeof(float));
    x->bw[nb] = q[9], x->brow[nb] = -1;
    for (int i = 0; i < ni; i++)
      if ((int)Ir->data[i] == r) x->brow[nb] = i;
    nb++;
  }
  free(mt);
  float *const pts[2] = {x->ps_xy, x->is_xy};
  const int counts[2] = {M, ni};
  procrustes(x->ps_xy, x->pt_xy, M, pts, counts, 2);
  KdFigProtos *f = &x->fig;
  *f = (KdFigProtos){.pt_xy = x->pt_xy, .ps_xy = x->ps_xy, .pcls = x->pcls, .np = M, .it_xy = x->it_xy, .is_xy = x->is_xy,
                     .icls = x->icls, .iimage = x->iimage, .iw = x->iw, .iqs = x->iqs, .iqt = x->iqt, .ni = ni, .bbox = x->bbox,
                     .bw = x->bw, .brow = x->brow, .nb = nb, .show_t = !kd_snapfig_hidden(v, "teacher"),
                     .show_s = !kd_snapfig_hidden(v, "student"),
                     .class_names = (const char *const *)s->class_names, .nclasses = s->nclasses, .hover_on = v->hover_on,
                     .hover_x = v->hover_x, .hover_y = v->hover_y};
  f->det.image = kd_snapview_image(s, v->image);
  snprintf(x->xl, sizeof x->xl, "PC1 of the teacher's prototypes (%.0f%% of their variance)",
           var_t[2] > 0 ? 100.0 * var_t[0] / var_t[2] : 0.0);
  snprintf(x->yl, sizeof x->yl, "PC2 (%.0f%%)", var_t[2] > 0 ? 100.0 * var_t[1] / var_t[2] : 0.0);
  f->xlabel = x->xl, f->ylabel = x->yl;
  snprintf(x->title, sizeof x->title, "%s, step %d: %d prototype pairs, %d instances; student plane aligned (Procrustes); image %d by w",
           lv, s->step, M, ni, v->image);
  f->title = kd_snapfig_title(v, x->title);
  *out = kd_fig_protos_panel(f);
  return 0;
}
