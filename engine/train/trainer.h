/* One training step of a detector, optionally distilled from a teacher:
 * teacher forward (no tape) -> student forward -> detection loss
 * (+ distillation losses) -> backward -> optimizer step -> arena reset.
 * Owned by one thread; not thread-safe (the run object serialises).
 * In a data-parallel run (train/dist.h) kd_trainer_step is collective:
 * every rank calls it on its shard of the same global batch, and it
 * averages gradients and BN buffers over the ranks before the update. */
#ifndef KD_TRAINER_H
#define KD_TRAINER_H

#include "core/config.h"
#include "core/tensor.h"
#include "core/rng.h"
#include "distill/distiller.h"
#include "detect/targets.h"
#include "model/detector.h"
#include "train/optim.h"

#define KD_MAX_PARTS 48
#define KD_MAX_STATS 8

typedef struct KdLossPart {
  char name[48];
  double value;
} KdLossPart;

typedef struct KdStepStats {
  int step;           /* steps completed after this one */
  double loss;        /* total */
  int nparts;
  KdLossPart parts[KD_MAX_PARTS]; /* "det.cls", "det.box", "defeat.neck_obj", ... */
  int nstats;
  KdLossPart stats[KD_MAX_STATS]; /* the methods' diagnostics ("rm.mean_pos"): not parts of the loss */
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
  int maps;            /* ask the methods for their loss maps (the probe; KdDistillInputs.maps) */
} KdTrainBatch;

typedef struct KdTrainer KdTrainer;

/* The trainer borrows student, teacher and distiller (both may be NULL)
 * and reads the settings in cfg (which must outlive it; live changes take
 * effect at the next forward). */
KdTrainer *kd_trainer_new(KdConfig *cfg, KdModel *student, KdModel *teacher, KdDistiller *distiller, KdError *err);
/* Applies what changed since the last forward (each forward calls it): the
 * distiller rereads its settings when cfg changed, and the optimizer takes
 * slots for learnable parts created since. */
int kd_trainer_sync(KdTrainer *t, KdError *err);
void kd_trainer_free(KdTrainer *t);
int kd_trainer_step(KdTrainer *t, const KdTrainBatch *b, KdStepStats *st, KdError *err);
KdOptim *kd_trainer_optim(KdTrainer *t);
KdCtx *kd_trainer_ctx(KdTrainer *t);
int kd_trainer_steps_done(const KdTrainer *t);
/* Training images per epoch, for the epoch count methods see (0: unknown). */
void kd_trainer_set_epoch_images(KdTrainer *t, int images);
/* Forward + losses of a batch, without backward or update: what a step
 * computes before it learns, reusable by probes (their own ctx, eval-mode
 * BN via training = 0) so probes see exactly the training losses. Tensors
 * live in ctx c until it is reset. */
typedef struct KdForward {
  int n, h, w, nlev;
  KdDetOut tout, sout;        /* tout is zeroed without a teacher */
  KdDetLoss det;              /* the student head's loss: parts ("cls", "box") unweighted, total weighted */
  KdDetLossCfg lc;            /* its settings this step (din.det_lc) */
  KdDistillInputs din;        /* valid when nmethods > 0 */
  KdRng rng;                  /* din.rng */
  int nmethods;
  const KdMethod *methods[KD_DISTILL_MAX_OUT];
  KdDistillOut outs[KD_DISTILL_MAX_OUT];
  KdTensor *total;            /* det.total + every active method's loss */
} KdForward;
int kd_trainer_forward(KdTrainer *t, KdCtx *c, const KdTrainBatch *b, int training, KdForward *f, KdError *err);
/* The last step's forward (valid until the next step). */
const KdForward *kd_trainer_last_forward(const KdTrainer *t);
/* Bytes the step arena peaked at. */
size_t kd_trainer_arena_peak(const KdTrainer *t);

#endif
