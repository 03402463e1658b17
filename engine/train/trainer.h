/* One training step of a detector, optionally distilled from a teacher:
 * teacher forward (no tape) -> student forward -> detection loss
 * (+ distillation losses) -> backward -> optimizer step -> arena reset.
 * Owned by one thread; not thread-safe (the run object serialises). */
#ifndef KD_TRAINER_H
#define KD_TRAINER_H

#include "core/tensor.h"
#include "distill/distiller.h"
#include "detect/targets.h"
#include "model/detector.h"
#include "train/config.h"
#include "train/optim.h"

#define KD_MAX_PARTS 48

typedef struct KdLossPart {
  char name[48];
  double value;
} KdLossPart;

typedef struct KdStepStats {
  int step;           /* steps completed after this one */
  double loss;        /* total */
  int nparts;
  KdLossPart parts[KD_MAX_PARTS]; /* "det.cls", "det.box", "defeat.neck_obj", ... */
  float grad_norm, lr;
  int num_pos;
  double seconds;
  int skipped;        /* non-finite loss or gradient: no update was made */
  char bad_part[48];  /* the first non-finite part, when skipped */
} KdStepStats;

/* A batch as the trainer needs it: normalised images and GT in
 * network-input pixels. */
typedef struct KdTrainBatch {
  int n, h, w;
  const float *images; /* n,3,h,w */
  const KdGtImage *gt; /* [n] */
} KdTrainBatch;

typedef struct KdTrainer KdTrainer;

/* The trainer borrows student, teacher and distiller (both may be NULL)
 * and reads the settings in cfg (which must outlive it; live changes are
 * read each step). */
KdTrainer *kd_trainer_new(KdConfig *cfg, KdModel *student, KdModel *teacher, KdDistiller *distiller, KdError *err);
void kd_trainer_free(KdTrainer *t);
int kd_trainer_step(KdTrainer *t, const KdTrainBatch *b, KdStepStats *st, KdError *err);
KdOptim *kd_trainer_optim(KdTrainer *t);
KdCtx *kd_trainer_ctx(KdTrainer *t);
int kd_trainer_steps_done(const KdTrainer *t);
/* The last step's tensors (valid until the next step): FPN features and
 * head outputs of teacher and student, and the distillation outputs. */
typedef struct KdStepView {
  int n, h, w, nlev;
  const void *tout, *sout; /* KdDetOut* */
  int nmethods;
  const KdMethod *methods[KD_DISTILL_MAX_OUT];
  const KdDistillOut *outs;
  const KdDistillInputs *inputs;
} KdStepView;
const KdStepView *kd_trainer_last_step(const KdTrainer *t);
/* Bytes the step arena peaked at. */
size_t kd_trainer_arena_peak(const KdTrainer *t);

#endif
