/* The grid figure of one snapshot: rows = chosen probe images, columns
 * image | teacher energy | student energy | gap | mask of one level, in the
 * order asked; the gap is the one a method's loss sees (view.gap) or the
 * raw features'. Default columns are those the snapshot has data for; a
 * column asked for by name must have data on every row. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "snapfig_priv.h"
#include "snapview.h"

static const char *col_names[KD_FIG_NCOLS] = {"image", "teacher", "student", "gap", "mask"};

int kd_snapfig_col_from_name(const char *name) {
  for (int c = 0; name && c < KD_FIG_NCOLS; c++)
    if (!strcmp(name, col_names[c])) return c;
  return -1;
}

const char *kd_snapfig_col_name(KdFigCol c) {
  return (unsigned)c < KD_FIG_NCOLS ? col_names[c] : "?";
}

static const KdFigMap *row_map(const KdFigGridRow *r, KdFigCol c) {
  switch (c) {
  case KD_FIG_COL_TEACHER: return &r->teacher;
  case KD_FIG_COL_STUDENT: return &r->student;
  case KD_FIG_COL_GAP: return &r->gap;
  case KD_FIG_COL_MASK: return &r->mask;
  default: return NULL;
  }
}

static int col_has_data(const KdSnapFigStore *p, int nrows, KdFigCol c) {
  for (int i = 0; i < nrows; i++) {
    const KdFigMap *m = row_map(&p->rows[i], c);
    if (m ? !m->v : !p->rows[i].det.image.rgb) return 0;
  }
  return 1;
}

static const char *why_missing(KdFigCol c) {
  switch (c) {
  case KD_FIG_COL_TEACHER: return "the run has no teacher";
  case KD_FIG_COL_GAP: return "no such gap: teacher and student widths differ, or the method is off";
  case KD_FIG_COL_MASK: return "no such mask on this level";
  default: return "not captured";
  }
}

/* The mask column: [0, 1] for masks that are weights, else the data's range. */
static KdFigRange mask_range(const KdSnapFigStore *p, int nrows) {
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < nrows; i++) {
    const KdFigMap *m = &p->rows[i].mask;
    for (size_t k = 0; m->v && k < (size_t)m->h * (size_t)m->w; k++)
      if (isfinite(m->v[k])) lo = fmin(lo, m->v[k]), hi = fmax(hi, m->v[k]);
  }
  if (!(lo <= hi) || (lo >= 0 && hi <= 1)) return (KdFigRange){0, 1, 0};
  return (KdFigRange){lo, hi > lo ? hi : lo + 1, 0};
}

int kd_snapfig_build_grid(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out,
                          KdError *err) {
  const KdSnapshot *s = v->snap;
  int nrows = v->images ? v->nimages : s->nimages;
  if (nrows <= 0) return kd_error(err, "grid: no probe image to show");
  if (nrows > KD_PROBE_MAX_IMAGES)
    return kd_error(err, "grid: %d rows asked, at most %d", nrows, KD_PROBE_MAX_IMAGES);
  /* The mask column's mask: as asked, or the level's first method mask. */
  const char *mask = v->mask;
  const char *names[1];
  if (!mask) mask = kd_snapview_masks(s, v->images ? v->images[0] : 0, v->level, names, 1) ? names[0] : "fg";
  char mask_field[96], lv[16];
  /* The gap column: as asked, else the gap the first active method's loss sees, else the raw features'. */
  char gap_field[96] = "gap";
  const KdMethod *gm = NULL;
  if (v->gap && strcmp(v->gap, "raw")) {
    if (!(gm = kd_method_find(v->gap)) || !gm->gap_label)
      return kd_error(err, "grid: --gap %s: expected raw or a method with a loss map (fitnet, defeat, fgd, pkd, cwd)", v->gap);
  } else if (!v->gap) {
    const KdMethod *ms[1];
    if (kd_snapfig_method_gaps(s, v->images ? v->images[0] : 0, v->level, ms, 1)) gm = ms[0];
  }
  if (gm) snprintf(gap_field, sizeof gap_field, "gap.%s", gm->name), kd_snapfig_gap_title(gm, p->gap_title, sizeof p->gap_title);
  else snprintf(p->gap_title, sizeof p->gap_title, "raw gap");
  if (v->gap && !kd_snapview_map(s, v->images ? v->images[0] : 0, v->level, gap_field).v)
    return kd_error(err, "grid: --gap %s: the snapshot at step %d has no %s on %s (methods: %s)", v->gap, s->step,
                    gm ? "loss map of that method" : "raw gap (the widths differ)",
                    kd_snapshot_level_name(s, v->level, lv, sizeof lv), s->methods[0] ? s->methods : "none");
  if (!strcmp(mask, "fg"))
    snprintf(mask_field, sizeof mask_field, "fg");
  else
    snprintf(mask_field, sizeof mask_field, "mask.%s", mask);
  for (int r = 0; r < nrows; r++) {
    int im = v->images ? v->images[r] : r;
    if (kd_snapfig_check_image(s, im, err)) return -1;
    SfRowBoxes *b = &p->rowboxes[r];
    KdFigGridRow *row = &p->rows[r];
    *row = (KdFigGridRow){0};
    KdFigDetView *d = &row->det;
    d->image = kd_snapview_image(s, im);
    d->gt = b->gt, d->teacher = b->t, d->student = b->s;
    d->ngt = kd_snapview_boxes(s, im, "gt", b->gt, SF_ROW_MAXB);
    d->nteacher = kd_snapview_boxes(s, im, "det.t", b->t, SF_ROW_MAXB);
    d->nstudent = kd_snapview_boxes(s, im, "det.s", b->s, SF_ROW_MAXB);
    d->class_names = (const char *const *)s->class_names;
    d->nclasses = s->nclasses;
    d->score_thresh = 0.3f;
    d->labels = 0; /* thumbnails: boxes only, names would hide the image */
    row->teacher = kd_snapview_map(s, im, v->level, "t_energy");
    row->student = kd_snapview_map(s, im, v->level, "s_energy");
    row->gap = kd_snapview_map(s, im, v->level, gap_field);
    row->mask = kd_snapview_map(s, im, v->level, mask_field);
    snprintf(p->rowlabels[r], sizeof p->rowlabels[r], "image %d (val %d)", im, s->image_index[im]);
    row->label = p->rowlabels[r];
  }
  int nc = 0;
  if (v->cols) {
    if (v->ncols <= 0 || v->ncols > 2 * KD_FIG_NCOLS)
      return kd_error(err, "grid: %d columns asked, 1 to %d allowed", v->ncols, 2 * KD_FIG_NCOLS);
    for (int c = 0; c < v->ncols; c++) {
      KdFigCol k = v->cols[c];
      if ((unsigned)k >= KD_FIG_NCOLS) return kd_error(err, "grid: unknown column %d", (int)k);
      if (!col_has_data(p, nrows, k))
        return kd_error(err, "grid: column '%s' has no data in the snapshot at step %d on %s (%s)%s%s",
                        col_names[k], s->step, kd_snapshot_level_name(s, v->level, lv, sizeof lv),
                        why_missing(k), k == KD_FIG_COL_MASK ? ": " : "", k == KD_FIG_COL_MASK ? mask : "");
      p->cols[nc++] = k;
    }
  } else {
    for (int c = 0; c < KD_FIG_NCOLS; c++)
      if (col_has_data(p, nrows, (KdFigCol)c)) p->cols[nc++] = (KdFigCol)c;
  }
  if (!nc) return kd_error(err, "grid: the snapshot at step %d has nothing to show", s->step);
  snprintf(p->mask_title, sizeof p->mask_title, "%s", strcmp(mask, "fg") ? mask : "GT foreground");
  snprintf(p->title, sizeof p->title, "%s features at step %d",
           kd_snapshot_level_name(s, v->level, lv, sizeof lv), s->step);
  KdFigGrid *g = &p->grid;
  *g = (KdFigGrid){.rows = p->rows, .nrows = nrows, .cols = p->cols, .ncols = nc,
                   .independent_ts = v->independent, .overlay = v->overlay,
                   .energy_cmap = KD_CMAP_VIRIDIS, .gap_cmap = KD_CMAP_MAGMA,
                   .mask_cmap = KD_CMAP_VIRIDIS, .mask_range = mask_range(p, nrows),
                   .title = kd_snapfig_title(v, p->title)};
  g->col_titles[KD_FIG_COL_MASK] = p->mask_title;
  g->col_titles[KD_FIG_COL_GAP] = p->gap_title;
  *out = kd_fig_grid_panel(g);
  return 0;
}
