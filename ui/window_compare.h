/* The runs the window compares: any number of run directories (baselines,
 * other seeds, other methods) beside the window's own run, one logged
 * series of each on one chart (compare.h: a colour per run, the dash
 * changing past the palette), named by their directories. The window draws
 * it in its "compare" panel; the browser and "Compare with a run…" fill
 * it. Logs are re-read as they grow. GTK main thread. */
#ifndef KDS_WINDOW_COMPARE_H
#define KDS_WINDOW_COMPARE_H

#include <glib.h>

#include "figure.h"
#include "train/runlog.h"

typedef struct KdsCompare KdsCompare;

KdsCompare *kds_compare_new(void);
void kds_compare_free(KdsCompare *c);
/* Replaces the runs compared (n = 0 clears). FALSE with e naming the
 * directory when one is not a run; then nothing changes. */
gboolean kds_compare_set_runs(KdsCompare *c, const char *const *dirs, int n, GError **e);
/* Adds one run (a run already there is not added twice). */
gboolean kds_compare_add(KdsCompare *c, const char *dir, GError **e);
int kds_compare_count(const KdsCompare *c);
const char *kds_compare_dir(const KdsCompare *c, int i);
/* The legend name of run i: its directory's name, less the prefix all the
 * runs' names share (a date stamp) when that leaves each a name. */
const char *kds_compare_label(const KdsCompare *c, int i);
/* The window's own run, drawn first (NULL: none); the same directory in
 * the set is drawn once. */
void kds_compare_set_current(KdsCompare *c, const KdRunLog *log, const char *dir);
/* The series drawn: the i-th of kds_compare_metric_name. */
void kds_compare_set_metric(KdsCompare *c, int i);
int kds_compare_metric(const KdsCompare *c);
/* "det.cls+det.box" (the detection loss, comparable across methods),
 * "loss", "eval.AP", "eval.AP50"; NULL past the last. */
const char *kds_compare_metric_name(int i);
void kds_compare_set_style(KdsCompare *c, const KdSmooth *smooth, int logy);
/* Re-reads the logs; TRUE when any grew. */
gboolean kds_compare_refresh(KdsCompare *c);
/* The chart (valid until the next build or the free); FALSE when no run
 * has the series yet (the reason in kds_compare_empty_text). */
gboolean kds_compare_build(KdsCompare *c, KdFigPanel *out);
/* How many runs the last build drew (runs without the series are left out). */
int kds_compare_drawn(const KdsCompare *c);
const char *kds_compare_empty_text(const KdsCompare *c);

#endif
