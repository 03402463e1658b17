/* A live run: one training session driven by its own thread, controlled
 * from other threads (the UI, the CLI's main thread) and other processes
 * (RUN_DIR/control.jsonl, see train/control.h).
 *
 * Thread-safety by design: only the run thread touches the session, the
 * trainer and the config values the trainer reads. Other threads enqueue
 * messages (mutex + condvar queue) that the run thread applies at the next
 * step boundary, and read a small status struct copied under the mutex, so
 * no caller ever waits for a step. Every applied change, pause and resume
 * is an event in events.jsonl with its step; a change logged at step S is
 * in effect from step S+1 on. A non-finite loss pauses the run (the update
 * is skipped and the BN running statistics put back, so the weights stay
 * the last good ones); a `set` that fixes the cause and a resume continue
 * it. See docs/RUNS.md. */
#ifndef KD_RUN_H
#define KD_RUN_H

#include "detect/cocoeval.h"
#include "train/session.h"

typedef struct KdRun KdRun;

typedef enum {
  KD_RUN_READY,    /* opened, thread not started */
  KD_RUN_RUNNING,
  KD_RUN_PAUSED,
  KD_RUN_STOPPED,  /* stopped before train.steps; checkpoint written; --resume continues */
  KD_RUN_FINISHED, /* train.steps done, final checkpoint and evaluation written */
  KD_RUN_FAILED,   /* an error ended it (status.message) */
} KdRunState;

const char *kd_run_state_name(KdRunState s);

/* Called on the run thread after every step (also skipped ones), outside
 * the run's lock: the place for probes. It may read the session and the
 * trainer's last forward; it must not step or free them. In an inspect
 * session (KdRunOpts.inspect) it is called with st NULL at every wake of
 * the run thread (at least every 100 ms, and after every applied change). */
typedef void (*KdRunAfterStep)(void *user, KdSession *s, const KdStepStats *st);

/* Called on the run thread after a live change is applied (its key and
 * value as applied), outside the run's lock: how a window in the same
 * process learns the settings in effect without reading events.jsonl. */
typedef void (*KdRunOnSet)(void *user, const char *key, const char *value);

typedef struct KdRunOpts {
  KdSessionOpts session;   /* progress is called on the caller's thread while opening */
  KdRunAfterStep after_step;
  void *after_step_user;
  KdRunOnSet on_set;
  void *on_set_user;
  int no_control_file;     /* 1: ignore RUN_DIR/control.jsonl */
  int inspect;             /* 1: an inspect session: the models as they are, no
                              step ever (resume and step are refused, logged as
                              control_ignored), live changes applied as usual;
                              phase "inspect" while it waits. Not with --resume
                              or data-parallel runs. */
} KdRunOpts;

#define KD_RUN_RING 64 /* step stats kept for kd_run_recent */

typedef struct KdRunStatus {
  KdRunState state;
  int step, total;
  double rate;          /* steps/s over recent steps (0 until known) */
  KdStepStats last;     /* latest step (all loss parts); last.step == 0: none yet */
  int eval_step;        /* step of the latest evaluation; -1: none */
  int eval_images;      /* in the latest evaluation, left-out ones included */
  int eval_left_out;    /* of those, images that failed to load (events.jsonl names them) */
  double eval[KD_COCO_NSTATS];
  const char *phase;    /* "idle", "step", "eval", "checkpoint" (static string) */
  long phase_done, phase_total; /* progress of eval */
  long changes;         /* settings applied so far: the UI refreshes its sliders when it moves */
  char message[1024];   /* why it paused (non-finite), failed, or what last refused */
} KdRunStatus;

/* Opens the session (data, models, run directory) on the calling thread
 * and takes the run directory's lock. cfg is borrowed: it must outlive the
 * run and belongs to the run thread from kd_run_start until kd_run_wait
 * returns. On resume, the live settings logged up to the checkpoint are
 * re-applied to cfg (see docs/RUNS.md). */
KdRun *kd_run_new(KdConfig *cfg, const KdRunOpts *o, KdError *err);
/* Starts the run thread. Commands queued before start are applied first
 * (kd_run_pause then kd_run_start starts paused). */
int kd_run_start(KdRun *r, KdError *err);

/* Queue a command; 0, or -1 (err) once the run no longer takes commands.
 * source names who asked in the event log ("ui", "cli", "signal"; NULL:
 * "ui"). */
int kd_run_pause(KdRun *r, const char *source, KdError *err);
int kd_run_resume(KdRun *r, const char *source, KdError *err);
int kd_run_step_once(KdRun *r, KdError *err); /* one step while paused */
/* Finishes the current step, writes a checkpoint, logs a stop event. */
int kd_run_stop(KdRun *r, const char *source, KdError *err);
/* Validated now (unknown key, non-live key, bad value or out of range:
 * refused with a message naming the key and range), applied by the run
 * thread at the next step boundary and logged as
 * {"step":S,"event":"set","key":..,"value":..,"old":..,"source":..}. */
int kd_run_set(KdRun *r, const char *key, const char *value, const char *source, KdError *err);
/* The same, for a change that puts back the value an earlier set replaced
 * (the window's undo): its set event carries "undo":true. */
int kd_run_undo(KdRun *r, const char *key, const char *value, const char *source, KdError *err);

/* A copy of the status; never waits for a step. */
void kd_run_status(KdRun *r, KdRunStatus *out);
/* Copies the kept step stats with step > after_step, oldest first, at most
 * max; returns how many. */
int kd_run_recent(KdRun *r, int after_step, KdStepStats *out, int max);
const char *kd_run_dir(const KdRun *r);
/* The run's session, for the calling thread between kd_run_new and
 * kd_run_start only (then it belongs to the run thread): e.g. to bind a
 * prober up front, so that bad probe images fail the start. */
KdSession *kd_run_session(KdRun *r);

/* Joins the run thread. 0 when it finished or stopped, -1 when it failed. */
int kd_run_wait(KdRun *r);
/* Stops and joins a started run, then frees everything (the session too). */
void kd_run_free(KdRun *r);

#endif
