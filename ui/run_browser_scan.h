/* What the run browser shows of a run directory, read from its files: the
 * settings in effect (config.json with the logged live changes replayed),
 * the methods and their main weights, steps done, the last COCO AP and the
 * run's status from events.jsonl and whether a process holds its lock.
 * A folder of runs is the run directories directly under it. GTK-free
 * (kdfigure); reads only, never writes into a run. */
#ifndef KD_RUN_BROWSER_SCAN_H
#define KD_RUN_BROWSER_SCAN_H

#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "train/runlog.h"

typedef enum KdRunStatusKind {
  KD_RUNST_RUNNING,  /* a process holds the lock and the run is not paused */
  KD_RUNST_PAUSED,   /* a process holds the lock, the last state event is a pause */
  KD_RUNST_FINISHED, /* a finish event: train.steps done */
  KD_RUNST_STOPPED,  /* nobody runs it and it did not finish: stopped (or killed) */
  KD_RUNST_FAILED    /* nobody runs it and it ended on an error or a non-finite pause */
} KdRunStatusKind;

typedef struct KdRunSummary {
  char dir[4096];
  char name[256];      /* the directory's base name */
  KdConfig *cfg;       /* owned: config.json + replayed set events */
  int distill;         /* a distillation run (else `kdscope train`) */
  char methods[256];   /* "fitnet,defeat"; "" for a train run */
  int seed, steps_total, steps_done;
  double lr;
  double ap;           /* last eval.AP in percent; NaN before the first evaluation */
  int ap_step;
  double rate;         /* steps/s over the last logged step times (0: unknown) */
  KdRunStatusKind status;
  char detail[256];    /* why the status (for a tooltip): "pid 4242", "killed: no stop event" */
  int checkpoint;      /* latest complete checkpoint's step, 0 if none */
  long long mtime_ns;  /* newest change of its logs: re-read when it moves */
  KdRunLog *log;       /* owned, kept while a process runs it (read on incrementally) */
} KdRunSummary;

/* 1 when dir holds a run (config.json and events.jsonl). */
int kd_run_dir_is_run(const char *dir);
/* Reads dir into *s (which must be zeroed or cleared first). -1 with err
 * naming the file when it is not a run or cannot be read. */
int kd_run_summary_read(const char *dir, KdRunSummary *s, KdError *err);
void kd_run_summary_clear(KdRunSummary *s);
/* Reads s's run again (a running run's log from where it was). -1 with
 * err when it can no longer be read (s keeps its last values). */
int kd_run_summary_update(KdRunSummary *s, KdError *err);
/* The logs' newest modification time (ns), cheap: two stats and the lock. */
long long kd_run_summary_stamp(const char *dir);
/* The paths of the run directories directly under folder (folder alone
 * when it is a run), by name, without reading them: *dirs (NULL-ended,
 * kd_run_list_free) of *n. -1 with err when folder cannot be read. */
int kd_run_list(const char *folder, char ***dirs, int *n, KdError *err);
void kd_run_list_free(char **dirs);
/* The run directories directly under folder, by name; *out (malloc'd,
 * kd_run_summaries_free) of *n. A folder that is itself a run lists that
 * run alone. -1 with err when folder cannot be read. Runs that fail to read
 * are left out and counted in *skipped (may be NULL). */
int kd_run_scan(const char *folder, KdRunSummary **out, int *n, int *skipped, KdError *err);
void kd_run_summaries_free(KdRunSummary *s, int n);

const char *kd_run_status_label(KdRunStatusKind k);
/* Resumable from the window: nobody runs it, not finished, a checkpoint. */
int kd_run_summary_resumable(const KdRunSummary *s);
/* "fitnet.weight=1 defeat.weight=2": each active method's main weight
 * (<method>.weight) as the config prints it. */
void kd_run_summary_weights(const KdRunSummary *s, char *buf, size_t len);
/* A setting's value as a number (NaN when absent or not a number). */
double kd_run_summary_num(const KdRunSummary *s, const char *key);

#endif
