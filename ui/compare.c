/* Several runs on one chart (compare.h). */
#include "compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TERMS 8
#define MAX_SERIES (KD_COMPARE_MAX_LINES * KD_COMPARE_MAX_METRICS)

struct KdCompareStore {
  double *x[MAX_SERIES], *y[MAX_SERIES];
  char names[MAX_SERIES][128];
  KdFigSeries series[MAX_SERIES];
  KdFigPlot plot;
  /* results */
  double rvals[KD_COMPARE_MAX_RUNS][KD_COMPARE_MAX_RUNS];
  const double *rptr[KD_COMPARE_MAX_RUNS];
  int rcount[KD_COMPARE_MAX_RUNS];
  const char *rcat[KD_COMPARE_MAX_RUNS];
  char xlabel[160];
  KdFigDots dots;
};

KdCompareStore *kd_compare_store_new(void) { return calloc(1, sizeof(KdCompareStore)); }

static void store_clear(KdCompareStore *s) {
  for (int i = 0; i < MAX_SERIES; i++) {
    free(s->x[i]);
    free(s->y[i]);
    s->x[i] = s->y[i] = NULL;
  }
}

void kd_compare_store_free(KdCompareStore *s) {
  if (!s) return;
  store_clear(s);
  free(s);
}

int kd_compare_series(const KdRunLog *log, const char *metric, double **xo, double **yo, size_t *no,
                      KdError *err) {
  *xo = *yo = NULL;
  *no = 0;
  char buf[256], all[600];
  if (!metric || !*metric || snprintf(buf, sizeof buf, "%s", metric) >= (int)sizeof buf)
    return kd_error(err, "compare: expected a series name like det.cls or a sum like det.cls+det.box");
  KdRunSeries terms[MAX_TERMS];
  int nt = 0;
  for (char *save = NULL, *w = strtok_r(buf, "+", &save); w; w = strtok_r(NULL, "+", &save)) {
    if (nt == MAX_TERMS) return kd_error(err, "compare: '%s' sums more than %d series", metric, MAX_TERMS);
    terms[nt] = kd_runlog_find(log, w);
    if (!terms[nt].n) {
      kd_runlog_names(log, NULL, all, sizeof all);
      return kd_error(err, "no series '%s' (series: %s)", w, all);
    }
    nt++;
  }
  if (!nt) return kd_error(err, "compare: '%s' names no series", metric);
  size_t n = terms[0].n;
  double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  if (!x || !y) {
    free(x);
    free(y);
    return kd_error(err, "compare: out of memory");
  }
  memcpy(x, terms[0].x, n * sizeof *x);
  memcpy(y, terms[0].y, n * sizeof *y);
  /* Keep the steps every term has: both step lists increase, so one merge
   * pass per term. */
  for (int t = 1; t < nt; t++) {
    size_t i = 0, j = 0, k = 0;
    while (i < n && j < terms[t].n) {
      if (x[i] < terms[t].x[j]) i++;
      else if (x[i] > terms[t].x[j]) j++;
      else {
        x[k] = x[i];
        y[k++] = y[i++] + terms[t].y[j++];
      }
    }
    n = k;
  }
  if (!n) {
    free(x);
    free(y);
    return kd_error(err, "compare: the series in '%s' share no logged step", metric);
  }
  *xo = x;
  *yo = y;
  *no = n;
  return 0;
}

static const char *renamed(const KdCompare *c, const char *name) {
  for (int i = 0; i < c->nrename; i++)
    if (!strcmp(c->rename_from[i], name)) return c->rename_to[i];
  return name;
}

int kd_compare_build(const KdCompare *c, KdCompareStore *s, KdFigPanel *out, KdError *err) {
  if (c->nruns < 1 || c->nruns > KD_COMPARE_MAX_LINES)
    return kd_error(err, "compare: %d runs given, expected 1 to %d on one chart", c->nruns, KD_COMPARE_MAX_LINES);
  if (c->nmetrics < 1 || c->nmetrics > KD_COMPARE_MAX_METRICS)
    return kd_error(err, "compare: %d series given, expected 1 to %d", c->nmetrics, KD_COMPARE_MAX_METRICS);
  store_clear(s);
  int ns = 0;
  for (int r = 0; r < c->nruns; r++)
    for (int m = 0; m < c->nmetrics; m++, ns++) {
      size_t n;
      KdError e;
      if (kd_compare_series(c->logs[r], c->metrics[m], &s->x[ns], &s->y[ns], &n, &e))
        return kd_error(err, "run '%s': %s", c->labels[r], e.msg);
      if (c->nmetrics > 1) snprintf(s->names[ns], sizeof s->names[ns], "%s: %s", c->labels[r], renamed(c, c->metrics[m]));
      else snprintf(s->names[ns], sizeof s->names[ns], "%s", c->labels[r]);
      int sparse = !strncmp(c->metrics[m], "eval.", 5);
      if (sparse)
        for (size_t i = 0; i < n; i++) s->y[ns][i] *= 100.0; /* COCO AP in percent, as papers give it */
      int dash = c->nmetrics > 1 ? m : (r / KD_COMPARE_COLOURS) % KD_COMPARE_MAX_METRICS;
      s->series[ns] = (KdFigSeries){s->names[ns], s->x[ns], s->y[ns], n, r, dash, sparse};
    }
  const char *title = c->title ? c->title : c->nmetrics == 1 ? renamed(c, c->metrics[0]) : "runs compared";
  const char *ylabel = c->nmetrics > 1 ? "value" : renamed(c, c->metrics[0]);
  if (c->nmetrics == 1 && ylabel == c->metrics[0] && !strncmp(ylabel, "eval.", 5)) {
    snprintf(s->xlabel, sizeof s->xlabel, "%s (%%)", ylabel + 5);
    ylabel = s->xlabel;
  }
  s->plot = (KdFigPlot){.title = *title ? title : NULL, .xlabel = "step",
                        .ylabel = ylabel, .series = s->series,
                        .nseries = ns, .logy = c->logy, .smooth = c->smooth,
                        /* With several runs, raw lines under each smoothed one blur the comparison. */
                        .hide_raw = ns > 1, .xmin = c->limits ? c->limits[0] : NAN, .xmax = c->limits ? c->limits[1] : NAN,
                        .ymin = c->limits ? c->limits[2] : NAN, .ymax = c->limits ? c->limits[3] : NAN,
                        .legend = c->legend};
  *out = kd_fig_plot_panel(&s->plot);
  return 0;
}

int kd_compare_results_build(const KdCompare *c, KdCompareStore *s, KdFigPanel *out, KdError *err) {
  if (c->nruns < 1 || c->nruns > KD_COMPARE_MAX_RUNS)
    return kd_error(err, "results: %d runs given, expected 1 to %d", c->nruns, KD_COMPARE_MAX_RUNS);
  if (c->nmetrics != 1) return kd_error(err, "results: one series, not %d", c->nmetrics);
  const char *metric = c->metrics[0];
  double scale = strncmp(metric, "eval.", 5) ? 1.0 : 100.0;
  int ncat = 0;
  for (int r = 0; r < c->nruns; r++) {
    double *x, *y;
    size_t n;
    KdError e;
    if (kd_compare_series(c->logs[r], metric, &x, &y, &n, &e))
      return kd_error(err, "run '%s': %s", c->labels[r], e.msg);
    double v = y[n - 1] * scale;
    free(x);
    free(y);
    int k = 0;
    while (k < ncat && strcmp(s->rcat[k], c->labels[r])) k++;
    if (k == ncat) s->rcat[ncat] = c->labels[r], s->rcount[ncat++] = 0;
    s->rvals[k][s->rcount[k]++] = v;
  }
  for (int k = 0; k < ncat; k++) s->rptr[k] = s->rvals[k];
  if (scale != 1.0) snprintf(s->xlabel, sizeof s->xlabel, "%s (%%, last evaluation)", metric + 5);
  else snprintf(s->xlabel, sizeof s->xlabel, "%s (last logged value)", metric);
  const char *title = c->title ? c->title : NULL;
  s->dots = (KdFigDots){.title = title && *title ? title : NULL, .xlabel = s->xlabel, .categories = s->rcat,
                        .values = s->rptr, .counts = s->rcount, .n = ncat, .ref_x = c->line_x,
                        .ref_labels = c->line_labels, .nref = c->nlines, .decimals = scale != 1.0 ? 1 : 3};
  *out = kd_fig_dots_panel(&s->dots);
  return 0;
}
