/* The "rois" figure: HEAD's (or TF-HEAD's) sampled RoIs of a probe image
 * (the snapshot's img<i>.rois.<method>, engine/distill/assist.h) with
 * their per-RoI gaps; and the RoIs as boxes on the image figure. */
#include <stdio.h>
#include <string.h>

#include "snapfig_priv.h"
#include "snapview.h"

/* The methods that write RoI tables, with their gap columns' names and
 * the two on the scatter's axes. */
static const struct {
  const char *method, *label, *gaps[3];
  int x, y;
  const char *xlabel, *ylabel;
} tables[] = {
    {"head", "HEAD", {"AKD fc1", "AKD fc2", "CKD"}, 1, 2, "AKD fc2: assistant vs teacher", "CKD: student pixel vs teacher fc2"},
    {"tfhead", "TF-HEAD", {"CKD, assistant 1", "CKD, assistant 2", "CKD, assistant 3"}, 0, 1, "CKD to assistant 1",
     "CKD to assistant 2"},
};
#define NTABLES (int)(sizeof tables / sizeof tables[0])

static const KdSnapField *rois_field(const KdSnapshot *s, int image, int *which) {
  for (int t = 0; s && t < NTABLES; t++) {
    const KdSnapField *f = kd_snapshot_findf(s, "img%d.rois.%s", image, tables[t].method);
    if (f && f->ndim == 2 && f->shape[1] >= 6 + 3) {
      *which = t;
      return f;
    }
  }
  return NULL;
}

int kd_snapfig_has_rois(const KdSnapshot *s) {
  for (int i = 0; s && i < s->nimages; i++) {
    int t;
    if (rois_field(s, i, &t)) return 1;
  }
  return 0;
}

int kd_snapfig_rois_boxes(const KdSnapshot *s, int image, KdSnapFigStore *p, KdFigDetView *d) {
  int t;
  const KdSnapField *f = rois_field(s, image, &t);
  if (!f) return 0;
  int np = 0, nn = 0;
  for (int i = 0; i < f->shape[0]; i++) {
    const float *r = f->data + (size_t)i * f->shape[1];
    if (r[5] > 0.5f) continue; /* a GT box added as a proposal: the GT's own box is drawn */
    KdFigBox b = {r[0], r[1], r[2], r[3], (int)r[4] - 1, -1.0f};
    if (r[4] > 0.5f && np < SF_MAXB) p->props[np++] = b;
    else if (r[4] < 0.5f && nn < SF_MAXB) p->negs[nn++] = b;
  }
  d->proposals = p->props, d->nproposals = np;
  d->negatives = p->negs, d->nnegatives = nn;
  snprintf(p->props_label, sizeof p->props_label, "%s positive RoIs (%d)", tables[t].label, np);
  snprintf(p->negs_label, sizeof p->negs_label, "negative RoIs (%d)", nn);
  d->proposals_label = p->props_label, d->negatives_label = p->negs_label;
  return 1;
}

int kd_snapfig_build_rois(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  int t;
  const KdSnapField *f = rois_field(s, v->image, &t);
  if (!f)
    return kd_error(err, "rois: the snapshot at step %d has no sampled RoIs of image %d (HEAD or TF-HEAD off)", s->step, v->image);
  KdFigRois *r = &p->rois;
  *r = (KdFigRois){0};
  KdFigDetView *d = &r->det;
  d->image = kd_snapview_image(s, v->image);
  d->gt = p->gt;
  d->ngt = kd_snapview_boxes(s, v->image, "gt", p->gt, SF_MAXB);
  kd_snapfig_rois_boxes(s, v->image, p, d);
  d->class_names = (const char *const *)s->class_names;
  d->nclasses = s->nclasses;
  d->legend = 1;
  r->rows = f->data, r->n = f->shape[0], r->cols = f->shape[1];
  r->xgap = tables[t].x, r->ygap = tables[t].y;
  for (int g = 0; g < 3; g++) r->gap_names[g] = tables[t].gaps[g];
  r->xlabel = tables[t].xlabel, r->ylabel = tables[t].ylabel;
  r->class_names = d->class_names, r->nclasses = d->nclasses;
  r->hover_on = v->hover_on, r->hover_x = v->hover_x, r->hover_y = v->hover_y;
  snprintf(p->title, sizeof p->title, "%s's sampled RoIs, probe image %d, step %d: per-RoI gaps (unweighted MSE)", tables[t].label,
           v->image, s->step);
  r->title = kd_snapfig_title(v, p->title);
  *out = kd_fig_rois_panel(r);
  return 0;
}
