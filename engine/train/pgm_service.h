/* Global-knowledge distillation's prototypes as a service of the run
 * (docs/METHODS-GK.md): while method gk is listed, at each epoch boundary
 * (and at the first step, or when gk is listed mid-run) the session calls
 * it on the run thread between steps, and it regenerates the prototypes of
 * every paired level and class into the gk run state (distill/gk.h):
 *
 *   pool     per class, the training images holding a non-crowd box of the
 *            class wider and taller than gk.min_size (input pixels,
 *            strictly), in data-set order, shuffled by a stream of
 *            train.seed and cut to gk.max_images; its instances are those
 *            boxes (made once, again when one of those settings changes);
 *   features each instance's crop mean (distill/gk.h, kd_gk_crop) on every
 *            paired level, of the teacher (computed once and kept) and of
 *            the current student, both in eval mode, on the images as
 *            evaluation prepares them (no augmentation);
 *   select   per level and class, PGM (distill/pgm.h) with gk.num_prototypes,
 *            gk.sigma, gk.cut, gk.alpha; the chosen instances' features are
 *            the prototypes.
 *
 * Each generation is an event `pgm` in events.jsonl with its cost; a class
 * left without prototypes on some level an event `gk_no_prototypes`. The
 * prototypes live in the distillation store, so checkpoints carry them and
 * a resume goes on with the same (distill.gk.epoch says which epoch made
 * them: a resumed run regenerates only at the next boundary). */
#ifndef KD_TRAIN_PGM_SERVICE_H
#define KD_TRAIN_PGM_SERVICE_H

#include "core/config.h"
#include "data/dataset.h"
#include "distill/distiller.h"
#include "model/detector.h"
#include "train/rundir.h"

typedef struct KdPgmService KdPgmService;

/* What the service reads of a run (borrowed; they outlive the service). */
typedef struct KdPgmRun {
  const KdConfig *cfg;
  const KdDataset *train;
  KdModel *student, *teacher;
  KdDistiller *distiller;
  KdRunDir *run; /* events; NULL: none (ranks other than 0) */
} KdPgmRun;

KdPgmService *kd_pgm_service_new(const KdPgmRun *r, KdError *err);
void kd_pgm_service_free(KdPgmService *p);
/* Where its events go (the run directory is made after the service). */
void kd_pgm_service_set_rundir(KdPgmService *p, KdRunDir *run);

/* Before a step with `step` steps done: regenerates the prototypes when gk
 * is listed and they are not from the current epoch (step * train.batch /
 * images). *ran (may be NULL): 1 when it generated. -1 with err. */
int kd_pgm_service_before_step(KdPgmService *p, int step, int *ran, KdError *err);

/* What the last generation cost, in seconds (teacher features included
 * when they were computed in it), and its size. */
typedef struct KdPgmCost {
  double seconds, teacher_seconds;
  int images, instances, epoch;
} KdPgmCost;
void kd_pgm_service_cost(const KdPgmService *p, KdPgmCost *out);

#endif
