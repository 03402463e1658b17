/* Reads a run directory's logs as they grow: metrics.jsonl into named
 * series (every loss part, lr, grad_norm, eval.AP...), events.jsonl into
 * events and change markers. Incremental: refresh reads only new complete
 * lines, so following a live run costs a stat per call. Shared by the
 * window, the exporter and tests. */
#ifndef KD_RUNLOG_H
#define KD_RUNLOG_H

#include <stddef.h>

#include "core/error.h"

typedef struct KdRunLog KdRunLog;

typedef struct KdRunSeries {
  const char *name; /* "loss", "det.cls", "defeat.neck_bg", "eval.AP", ... */
  const double *x;  /* steps, increasing */
  const double *y;
  size_t n;
} KdRunSeries;

typedef struct KdRunEvent {
  int step;
  const char *type;  /* "set", "pause", "resume", "nonfinite", "checkpoint", ... */
  const char *key;   /* set: the setting; else "" */
  const char *value, *old; /* set: new and previous value text; else "" */
  const char *source;
  int undo;          /* set, set_refused: it puts back the value an earlier set replaced */
  const char *json;  /* the whole line */
} KdRunEvent;

KdRunLog *kd_runlog_open(const char *run_dir, KdError *err);
void kd_runlog_free(KdRunLog *l);
/* Reads new complete lines. Returns 1 when anything was added, 0 when
 * nothing changed, -1 on a read error. A run cut back on resume (files
 * shorter than before) is re-read from the start. */
int kd_runlog_refresh(KdRunLog *l, KdError *err);
int kd_runlog_nseries(const KdRunLog *l);
KdRunSeries kd_runlog_series(const KdRunLog *l, int i);
/* The series with this name; n = 0 when absent. */
KdRunSeries kd_runlog_find(const KdRunLog *l, const char *name);
int kd_runlog_nevents(const KdRunLog *l);
KdRunEvent kd_runlog_event(const KdRunLog *l, int i);
/* "a, b, c" of the non-empty series whose name `keep` accepts (NULL: all),
 * ending in ", ..." when buf is too short; for messages. */
void kd_runlog_names(const KdRunLog *l, int (*keep)(const char *name), char *buf, size_t len);
/* The latest step seen in metrics. */
int kd_runlog_last_step(const KdRunLog *l);
/* Bumped whenever data changes (redraw when it moves). */
unsigned long kd_runlog_generation(const KdRunLog *l);

#endif
