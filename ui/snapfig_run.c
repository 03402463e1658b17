/* Figures of a whole run: the loss parts over COCO AP from the run log
 * (curves) and foreground vs background gradient magnitude by source over
 * every snapshot of the run (gradients, DeFeat's observation). Both mark
 * where a setting changed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapfig_priv.h"

/* Logged series that are not loss parts. */
static int is_loss(const char *name) {
  static const char *skip[] = {"lr", "grad_norm", "step_s"};
  for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
    if (!strcmp(name, skip[i])) return 0;
  return strncmp(name, "eval.", 5) != 0;
}

int kd_snapfig_markers(const KdSnapFigView *v, const KdRunLog *log, KdSnapFigStore *p) {
  int nm = 0;
  for (int i = 0; log && i < kd_runlog_nevents(log) && nm < SF_MAXM; i++) {
    KdRunEvent e = kd_runlog_event(log, i);
    if (!strcmp(e.type, "set"))
      snprintf(p->marker_labels[nm], sizeof p->marker_labels[nm], "%s%s %s\xe2\x86\x92%s", e.undo ? "undo " : "",
               kd_snapfig_renamed(v, e.key), e.old, e.value);
    else if (!strcmp(e.type, "nonfinite"))
      snprintf(p->marker_labels[nm], sizeof p->marker_labels[nm], "non-finite");
    else
      continue;
    p->markers[nm] = (KdFigMarker){e.step, p->marker_labels[nm]};
    nm++;
  }
  return nm;
}

/* The steps of a run's live changes: where its smoothing restarts. */
static int set_steps(const KdRunLog *log, double *out) {
  int n = 0;
  for (int i = 0; log && i < kd_runlog_nevents(log) && n < SF_MAXM; i++) {
    KdRunEvent e = kd_runlog_event(log, i);
    if (!strcmp(e.type, "set")) out[n++] = e.step;
  }
  return n;
}

int kd_snapfig_hidden(const KdSnapFigView *v, const char *name) {
  for (int i = 0; i < v->nhide; i++)
    if (v->hide[i] && !strcmp(v->hide[i], name)) return 1;
  return 0;
}

/* AP series k (a fraction per evaluation) in percent, in the store. */
static const double *percent(KdSnapFigStore *p, int k, const KdRunSeries *s) {
  if (s->n > p->ap_cap[k]) {
    double *d = realloc(p->ap_pct[k], s->n * sizeof *d);
    if (!d) return NULL;
    p->ap_pct[k] = d;
    p->ap_cap[k] = s->n;
  }
  for (size_t j = 0; j < s->n; j++) p->ap_pct[k][j] = 100.0 * s->y[j];
  return p->ap_pct[k];
}

static KdFigScale scale_of(int logy) {
  return logy == KD_SNAPFIG_LOGY_LOG ? KD_FIG_SCALE_LOG : logy == KD_SNAPFIG_LOGY_LINEAR ? KD_FIG_SCALE_LINEAR
                                                                                          : KD_FIG_SCALE_AUTO;
}

/* The loss parts to draw: the view's list (checked) or every logged one. */
static int loss_parts(const KdSnapFigView *v, const KdRunLog *log, KdRunSeries *out, KdError *err) {
  int nl = 0;
  if (!v->parts) {
    for (int i = 0; i < kd_runlog_nseries(log) && nl < SF_MAXS; i++) {
      KdRunSeries s = kd_runlog_series(log, i);
      if (is_loss(s.name) && s.n) out[nl++] = s;
    }
    return nl;
  }
  for (int k = 0; k < v->nparts; k++) {
    KdRunSeries s = kd_runlog_find(log, v->parts[k]);
    if (!s.n || !is_loss(s.name)) {
      char all[800];
      kd_runlog_names(log, is_loss, all, sizeof all);
      return kd_error(err, "curves: unknown loss part '%s' (parts: %s)", v->parts[k], all);
    }
    if (nl == SF_MAXS) return kd_error(err, "curves: at most %d parts", SF_MAXS);
    out[nl++] = s;
  }
  return nl;
}

int kd_snapfig_build_curves(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out,
                            KdError *err) {
  const KdRunLog *log = v->log;
  if (!log || !kd_runlog_nseries(log)) return kd_error(err, "curves: no logged step yet");
  KdRunSeries parts[SF_MAXS];
  int nparts = loss_parts(v, log, parts, err);
  if (nparts < 0) return -1;
  int nb = set_steps(log, p->breaks), nrb = set_steps(v->ref, p->ref_breaks);
  /* Each part in its position's colour, dash and marker; the reference's
   * same parts dotted in the same colour and marker. */
  int nl = 0;
  for (int i = 0; i < nparts; i++) {
    p->loss[nl] = (KdFigSeries){kd_snapfig_renamed(v, parts[i].name), parts[i].x, parts[i].y, parts[i].n, i, -1, 0};
    p->loss_extra[nl++] = (KdFigSeriesExtra){-1, p->breaks, nb, kd_snapfig_hidden(v, parts[i].name)};
  }
  const char *label = v->ref_label && *v->ref_label ? v->ref_label : "reference";
  for (int i = 0; v->ref && i < nparts; i++) {
    KdRunSeries s = kd_runlog_find(v->ref, parts[i].name);
    if (!s.n) continue;
    int marker;
    kd_fig_series_style(i, NULL, NULL, &marker);
    snprintf(p->ref_names[i], sizeof p->ref_names[i], "%s: %s", label, kd_snapfig_renamed(v, parts[i].name));
    p->loss[nl] = (KdFigSeries){p->ref_names[i], s.x, s.y, s.n, i, KD_FIG_DOTTED, 0};
    p->loss_extra[nl++] = (KdFigSeriesExtra){marker, p->ref_breaks, nrb, kd_snapfig_hidden(v, p->ref_names[i])};
  }
  /* AP per evaluation, in percent: the run's, then the reference's dotted. */
  int na = 0;
  double ap_max = 0;
  static const char *apn[2] = {"eval.AP", "eval.AP50"};
  for (int r = 0; r < 2; r++) {
    const KdRunLog *l = r ? v->ref : log;
    for (int i = 0; l && i < 2; i++) {
      KdRunSeries s = kd_runlog_find(l, apn[i]);
      const double *pct = s.n ? percent(p, na, &s) : NULL;
      if (!pct) continue;
      const char *name = kd_snapfig_renamed(v, apn[i] + 5);
      if (r) {
        snprintf(p->ref_names[SF_MAXS + i], sizeof p->ref_names[0], "%s: %s", label, name);
        name = p->ref_names[SF_MAXS + i];
      }
      p->ap[na] = (KdFigSeries){name, s.x, pct, s.n, i, r ? KD_FIG_DOTTED : i ? KD_FIG_DASHED : KD_FIG_SOLID, 1};
      p->ap_extra[na++] = (KdFigSeriesExtra){KD_FIG_MARK_NONE, NULL, 0, kd_snapfig_hidden(v, r ? name : apn[i] + 5)};
      for (size_t j = 0; j < s.n; j++)
        if (isfinite(pct[j])) ap_max = fmax(ap_max, pct[j]);
    }
  }
  /* A series to leave out must be one the figure has (a typo would
   * otherwise go unnoticed in a paper's figure). */
  for (int h = 0; !v->interactive && h < v->nhide; h++) {
    int found = 0;
    for (int i = 0; i < nl && !found; i++) found = p->loss_extra[i].hidden && kd_snapfig_hidden(v, p->loss[i].name);
    for (int i = 0; i < nparts && !found; i++) found = !strcmp(parts[i].name, v->hide[h]);
    for (int i = 0; i < nl && !found; i++) found = !strcmp(p->loss[i].name, v->hide[h]);
    for (int i = 0; i < na && !found; i++) found = !strcmp(p->ap[i].name, v->hide[h]) || !strcmp(v->hide[h], i % 2 ? "AP50" : "AP");
    if (!found) return kd_error(err, "curves: --hide %s: no such series (loss parts, AP, AP50, or 'LABEL: part' of --compare)", v->hide[h]);
  }
  int nm = kd_snapfig_markers(v, log, p);
  KdFigPlot base = {.xlabel = "step", .markers = p->markers, .nmarkers = nm, .xmin = v->xmin, .xmax = v->xmax,
                    .ymin = NAN, .ymax = NAN, .legend = v->legend, .cursor_on = v->cursor_on,
                    .cursor = v->cursor, .interactive = v->interactive};
  KdFigCurves *c = &p->curves;
  c->loss = base;
  c->loss.title = kd_snapfig_title(v, "losses (weighted parts)");
  c->loss.ylabel = "loss";
  c->loss.series = p->loss;
  c->loss.extra = p->loss_extra;
  c->loss.nseries = nl;
  c->loss.logy = scale_of(v->logy);
  c->loss.smooth = v->smooth;
  c->loss.smooth_off = v->smooth_off;
  c->loss.ymin = v->ymin;
  c->loss.ymax = v->ymax;
  /* The AP chart only once there is an evaluation. */
  c->ap = base;
  c->ap.title = kd_snapfig_title(v, "COCO AP (val)");
  c->ap.ylabel = "AP (%)";
  c->ap.series = p->ap;
  c->ap.extra = p->ap_extra;
  c->ap.nseries = na;
  c->ap.logy = KD_FIG_SCALE_LINEAR;
  /* AP is never negative: the axis starts just under 0 so points at 0
   * (an early evaluation) stay visible above the frame. */
  double top = fmin(100.0, fmax(5.0, ap_max * 1.08));
  c->ap.ymin = isfinite(v->apmin) ? v->apmin : -0.03 * top;
  c->ap.ymax = isfinite(v->apmax) ? v->apmax : top;
  *out = kd_fig_curves_panel(c);
  return 0;
}

/* ---- gradients over the run ---- */

static int grow(KdSnapFigStore *p, size_t need) {
  if (need <= p->cap) return 0;
  size_t cap = p->cap ? p->cap * 2 : 64;
  while (cap < need) cap *= 2;
  double *a = realloc(p->step, cap * sizeof *a);
  if (!a) return -1;
  p->step = a;
  for (int s = 0; s < SF_MAXSRC; s++) {
    double *f = realloc(p->fgv[s], cap * sizeof *f);
    if (f) p->fgv[s] = f;
    double *b = realloc(p->bgv[s], cap * sizeof *b);
    if (b) p->bgv[s] = b;
    if (!f || !b) return -1;
  }
  p->cap = cap;
  return 0;
}

static int source_index(KdSnapFigStore *p, int *nsrc, const char *name) {
  for (int s = 0; s < *nsrc; s++)
    if (!strcmp(p->src_names[s], name)) return s;
  if (*nsrc == SF_MAXSRC) return -1;
  snprintf(p->src_names[*nsrc], sizeof p->src_names[*nsrc], "%s", name);
  for (size_t i = 0; i < p->n; i++) p->fgv[*nsrc][i] = p->bgv[*nsrc][i] = NAN; /* absent before */
  return (*nsrc)++;
}

/* Cell-weighted means over the chosen images and levels of one snapshot's
 * grad_fgbg.<src>: the mean |grad| over every fg (bg) cell. */
static void fgbg_mean(const KdSnapshot *s, const KdSnapField *f, const KdSnapFigView *v,
                      double *fg, double *bg) {
  const KdSnapField *cnt = kd_snapshot_find(s, "fgbg_count");
  int n = f->shape[0], L = f->shape[1];
  if (cnt && (cnt->ndim != 3 || cnt->shape[0] != n || cnt->shape[1] != L)) cnt = NULL;
  double sum[2] = {0, 0}, w[2] = {0, 0};
  int ni = v->images ? v->nimages : n;
  for (int k = 0; k < ni; k++) {
    int i = v->images ? v->images[k] : k;
    if (i < 0 || i >= n) continue;
    for (int l = 0; l < L; l++) {
      if (v->level >= 0 && l != v->level) continue;
      for (int j = 0; j < 2; j++) {
        size_t at = ((size_t)i * L + l) * 2 + j;
        double c = cnt ? cnt->data[at] : 1;
        if (c <= 0) continue;
        sum[j] += c * f->data[at];
        w[j] += c;
      }
    }
  }
  *fg = w[0] > 0 ? sum[0] / w[0] : NAN;
  *bg = w[1] > 0 ? sum[1] / w[1] : NAN;
}

static int check_selection(const KdSnapshot *s, const KdSnapFigView *v, KdError *err) {
  for (int k = 0; v->images && k < v->nimages; k++)
    if (kd_snapfig_check_image(s, v->images[k], err)) return -1;
  return v->level >= 0 ? kd_snapfig_check_level(s, v->level, err) : 0;
}

int kd_snapfig_build_gradients(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out,
                               KdError *err) {
  if (!v->snaps) return kd_error(err, "gradients: no snapshot reader");
  int count = kd_snapshots_count(v->snaps);
  if (count == 0) return kd_error(err, "gradients: no snapshot yet (the prober writes them while the run trains)");
  int last = v->snap ? v->snap->step : kd_snapshots_step(v->snaps, count - 1);
  int nsrc = 0;
  char lv[16] = "";
  p->n = 0;
  for (int i = 0; i < count; i++) {
    int step = kd_snapshots_step(v->snaps, i);
    if (step > last) break;
    KdSnapshot *s;
    if (kd_snapshot_load(v->snaps, i, &s, err)) return kd_error_prefix(err, "gradients: ");
    if (check_selection(s, v, err)) {
      kd_snapshot_free(s);
      return kd_error_prefix(err, "gradients: ");
    }
    if (v->level >= 0 && !lv[0]) kd_snapshot_level_name(s, v->level, lv, sizeof lv);
    if (grow(p, p->n + 1)) {
      kd_snapshot_free(s);
      return kd_error(err, "gradients: out of memory");
    }
    size_t at = p->n++;
    p->step[at] = step;
    for (int k = 0; k < nsrc; k++) p->fgv[k][at] = p->bgv[k][at] = NAN;
    for (int fi = 0; fi < s->nfields; fi++) {
      const KdSnapField *f = &s->fields[fi];
      if (strncmp(f->name, "grad_fgbg.", 10) || !strcmp(f->name + 10, "total")) continue;
      if (f->ndim != 3 || f->shape[2] != 2) continue;
      int k = source_index(p, &nsrc, f->name + 10);
      if (k >= 0) fgbg_mean(s, f, v, &p->fgv[k][at], &p->bgv[k][at]);
    }
    kd_snapshot_free(s);
  }
  if (!p->n) return kd_error(err, "gradients: no snapshot at or before step %d", last);
  if (!nsrc) return kd_error(err, "gradients: the snapshots hold no per-source gradients (grad_fgbg.*)");
  for (int k = 0; k < nsrc; k++) {
    p->src_ptr[k] = kd_snapfig_renamed(v, p->src_names[k]);
    p->fg_ptr[k] = p->fgv[k];
    p->bg_ptr[k] = p->bgv[k];
  }
  int nm = kd_snapfig_markers(v, v->log, p);
  snprintf(p->title, sizeof p->title, "fg vs bg |dL/dS| by source, %s", lv[0] ? lv : "all levels");
  p->gc = (KdFigGradCurves){.sources = p->src_ptr, .step = p->step, .fg = p->fg_ptr,
                            .bg = p->bg_ptr, .nsources = nsrc, .n = p->n, .markers = p->markers,
                            .nmarkers = nm, .smooth = v->smooth,
                            .title = kd_snapfig_title(v, p->title)};
  *out = kd_fig_gradcurves_panel(&p->gc);
  return 0;
}
