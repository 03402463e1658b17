/* A run directory: config.json (resolved), events.jsonl, metrics.jsonl,
 * metrics.csv (tidy: step,name,value), checkpoints/. Files are written
 * whole (temp + rename) or appended line by line, so a kill at any moment
 * leaves a readable run. On resume, lines past the checkpoint's step are
 * dropped (and a torn last line is ignored) so the logs continue one curve.
 * The writers take a NULL run and write nothing: the ranks other than 0
 * of a data-parallel run have none (train/dist.h). */
#ifndef KD_RUNDIR_H
#define KD_RUNDIR_H

#include "core/config.h"
#include "core/error.h"
#include "core/params.h"
#include "train/evaluate.h"
#include "train/trainer.h"

typedef struct KdRunDir KdRunDir;

/* Creates dir (or runs/<YYYYmmdd-HHMMSS>-<name> when dir is NULL) and
 * writes config.json. Refuses a directory that already holds a run. */
KdRunDir *kd_rundir_create(const char *dir, const KdConfig *cfg, KdError *err);
/* Where kd_rundir_create puts a run without a directory given
 * (<root>/<stamp>-<name>); "runs" (in the current directory) unless set.
 * Process-wide: set it once, before any run opens. */
void kd_rundir_set_default_root(const char *root);
/* Opens an existing run for resuming: finds the latest complete checkpoint
 * (step 0 if none) and cuts the logs back to that step. */
KdRunDir *kd_rundir_resume(const char *dir, int *step, KdError *err);
void kd_rundir_free(KdRunDir *r);
const char *kd_rundir_path(const KdRunDir *r);

/* {"step":s,"time":...,"event":type <, extra JSON members>} */
int kd_rundir_event(KdRunDir *r, int step, const char *type, const char *extra_json, KdError *err);
int kd_rundir_log_step(KdRunDir *r, const KdStepStats *st, double data_wait_s, KdError *err);
/* {"step":s,"time":...,"eval":{"split","seconds","images","images_evaluated","images_left_out","AP",...}} */
int kd_rundir_log_eval(KdRunDir *r, int step, const char *split, const KdEvalResult *res, KdError *err);

/* checkpoints/step_<N>.safetensors (+ .optim.safetensors when optim_state). */
int kd_rundir_save_checkpoint(KdRunDir *r, int step, KdParams *const *weights, int nweights, const KdParams *optim_state,
                              const char *const *meta_kv, KdError *err);
/* Paths of the checkpoint for step (buffers of len). */
void kd_rundir_checkpoint_paths(const KdRunDir *r, int step, char *weights, char *optim, size_t len);
/* Largest step with both files present; 0 if none. */
int kd_rundir_latest_checkpoint(const char *dir);

#endif
