/* A training session: everything one run needs, opened from a resolved
 * config — data (the default fashion-det set built on first use), student
 * (and teacher when distilling), trainer, prefetching loader, run
 * directory — and the operations a driver calls: step, evaluate,
 * checkpoint. The command-line verbs and the live run thread both drive a
 * session; a session itself starts no thread but the loader's. */
#ifndef KD_SESSION_H
#define KD_SESSION_H

#include "core/config.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "distill/distiller.h"
#include "distill/side.h"
#include "model/detector.h"
#include "train/evaluate.h"
#include "train/rundir.h"
#include "train/trainer.h"

typedef struct KdSession KdSession;

typedef struct KdSessionOpts {
  const char *out_dir;    /* NULL: <runs root>/<stamp>-<name> (kd_rundir_set_default_root) */
  const char *resume_dir; /* continue this run instead */
  int distill;            /* load the teacher (teacher.config, teacher.checkpoint) */
  KdProgressFn progress;  /* data-set building, evaluation */
  void *user;
} KdSessionOpts;

/* cfg must have the settings registered and loaded; the session keeps a
 * pointer (live changes are read each step). For resume, the run's own
 * config.json is loaded into cfg first (overrides given later still apply,
 * so pass --set values after). */
KdSession *kd_session_open(KdConfig *cfg, const KdSessionOpts *o, KdError *err);
/* What kd_session_open checks before it touches the data (every setting,
 * the models, the teacher's files), without building or opening any data
 * set: callers run it before building the default set on first use. */
int kd_session_check(KdConfig *cfg, const KdSessionOpts *o, KdError *err);
void kd_session_free(KdSession *s);

/* One step; fills st. Returns 0, or -1 on an error (err). A non-finite
 * loss is not an error: st->skipped is set and an event is logged. */
int kd_session_step(KdSession *s, KdStepStats *st, KdError *err);
/* Evaluates the student on the val split and logs it (metrics.jsonl with
 * the image counts; an images_left_out event naming the images that failed
 * to load, when that list is new). kd_eval_result_free(res) after. */
int kd_session_evaluate(KdSession *s, KdEvalResult *res, KdError *err);
int kd_session_checkpoint(KdSession *s, KdError *err);
int kd_session_event(KdSession *s, const char *type, const char *extra_json, KdError *err);

int kd_session_steps_done(const KdSession *s);
int kd_session_total_steps(const KdSession *s);
KdRunDir *kd_session_rundir(KdSession *s);
KdModel *kd_session_student(KdSession *s);
KdModel *kd_session_teacher(KdSession *s);
const KdDataset *kd_session_val(const KdSession *s);
KdTrainer *kd_session_trainer(KdSession *s);
KdDistiller *kd_session_distiller(KdSession *s); /* NULL unless distilling */
/* What the student/teacher pair gives the methods (NULL unless distilling):
 * a live set of distill.methods or of a setting a method's needs depend on
 * is checked against it. */
const KdDistillAvail *kd_session_distill_avail(const KdSession *s);
double kd_session_data_wait(const KdSession *s); /* seconds the last step waited for data */

/* Registers every setting: detector, data, training, distillation. */
int kd_settings_register_all(KdConfig *c);

/* Loads a model config file (a JSON config with model.* keys) into a fresh
 * model, and its weights from a checkpoint. Used for teachers and eval. */
KdModel *kd_model_from_files(const char *config_path, const char *checkpoint, KdConfig **cfg_out, KdError *err);

#endif
