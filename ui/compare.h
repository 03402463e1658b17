/* Several runs on one chart: the same logged series of each run (a loss
 * part, eval.AP, lr...) or a sum of series ("det.cls+det.box", the
 * detection loss of a baseline and a distilled student alike), one colour
 * per run, one dash per series (with one series, runs past the palette's
 * distinct colours take the next dash). eval.* series are in percent. `kdscope export --figure compare` draws it;
 * GTK-free (in kdfigure). */
#ifndef KD_COMPARE_H
#define KD_COMPARE_H

#include "core/error.h"
#include "figure.h"
#include "train/runlog.h"

#define KD_COMPARE_MAX_RUNS 32   /* runs given (the results figure) */
#define KD_COMPARE_MAX_LINES 24  /* runs on one chart: a colour each, the dash changes
                                    every KD_COMPARE_COLOURS runs (one series a run) */
#define KD_COMPARE_COLOURS 8     /* the palette's most distinct colours */
#define KD_COMPARE_MAX_METRICS 3 /* solid, dashed, dotted */

typedef struct KdCompare {
  const KdRunLog *const *logs;
  const char *const *labels; /* legend name per run */
  int nruns;
  const char *const *metrics; /* series names; "a+b" sums a and b at the steps both have */
  int nmetrics;
  KdSmooth smooth;
  int logy;
  const char *title; /* NULL: the metric's name (one metric) or "runs compared" */
  /* compare chart: legend place (0: top), axis limits xmin, xmax, ymin,
   * ymax (NULL, or NaN entries: the data's), renamed series names (a
   * metric's name in the legend and on the y axis; math markup as
   * figure_text.h) */
  KdFigLegendPos legend;
  const double *limits;
  const char *const *rename_from, *const *rename_to;
  int nrename;
  /* results figure: labelled reference lines, in the units shown */
  const char *const *line_labels;
  const double *line_x;
  int nlines;
} KdCompare;

typedef struct KdCompareStore KdCompareStore;
KdCompareStore *kd_compare_store_new(void);
void kd_compare_store_free(KdCompareStore *s);

/* Fills *out with the chart, its spec in store (valid until the next build
 * into it or its free; it borrows the logs). -1 with err when a run lacks a
 * metric (the message names the run and lists the series it has), a sum's
 * parts share no step, or there are too many runs or metrics. */
int kd_compare_build(const KdCompare *c, KdCompareStore *store, KdFigPanel *out, KdError *err);

/* The results figure: each run's last value of metrics[0] (default use:
 * eval.AP, the final evaluation), runs sharing a label on one row (a
 * method's seeds), rows in the order their labels first appear; dots, the
 * mean, "mean ± SD (n)". eval.* values are shown x100 (COCO AP in percent,
 * as papers give it). -1 with err as kd_compare_build. */
int kd_compare_results_build(const KdCompare *c, KdCompareStore *store, KdFigPanel *out, KdError *err);

/* The series a sum names, evaluated on one log: x, y (heap, caller frees
 * both) at the steps every part has. 0 on success, -1 with err. */
int kd_compare_series(const KdRunLog *log, const char *metric, double **x, double **y, size_t *n,
                      KdError *err);

#endif
