/* The prober's state, shared by prober.c (lifecycle, images, budget) and
 * capture.c (the maps). Not a public header. */
#ifndef KD_PROBE_PROBER_IMPL_H
#define KD_PROBE_PROBER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "detect/postprocess.h"
#include "probe/prober.h"

struct KdProber {
  KdProbeCfg cfg;
  KdSession *session;
  KdTrainer *trainer;
  KdModel *student, *teacher;
  KdDistiller *distiller;
  const KdDataset *val;
  KdCtx *ctx;
  char run_dir[4096];
  /* probe batch */
  KdImageCfg ic;       /* how the images are prepared (the evaluation loader's) */
  int n, size;
  float *images;       /* n,3,size,size normalised */
  uint8_t *rgb;        /* n,size,size,3 */
  int image_index[KD_PROBE_MAX_IMAGES];
  int64_t image_id[KD_PROBE_MAX_IMAGES];
  int *box_off;        /* [n+1] */
  float *boxes;        /* input pixels */
  int *labels, *crowd;
  KdGtImage gt[KD_PROBE_MAX_IMAGES];
  /* detections (each model decodes with its own anchors) */
  KdPostCfg post;
  /* gradient sum per level (the "total" map) */
  float *gsum[KD_MAX_LEVELS];
  size_t gsum_n[KD_MAX_LEVELS];
  /* budget */
  atomic_int requested;
  int started, next_step;
  double step_s;
  KdStepStats step_stats;
  int have_stats;
  int dead;          /* the run hook could not bind: it stays quiet */
  /* read by other threads: under mu */
  pthread_mutex_t mu;
  int bound;           /* bound: val is set */
  int pend_n;          /* > 0: images asked for by kd_prober_set_images, taken at the next capture */
  int pend[KD_PROBE_MAX_IMAGES];
  KdProbeStats stats;
  size_t arena_peak;
  char error[1024]; /* last error of the run hook */
};

/* capture.c: fills s from a forward on the probe batch (incl. the
 * backward passes); parameter grads are left for the caller to zero. */
int kd_probe_fill(KdProber *p, KdSnapshot *s, KdError *err);
/* capture.c: the field "img<i>.<L>.<what>" (L from the snapshot's level
 * l) of the given shape, or NULL (out of memory). */
float *kd_probe_map_field(KdSnapshot *s, int i, int l, const char *what, int ndim, const int *shape);
/* The teacher when this forward ran it (not in a run with no active method). */
KdModel *kd_probe_teacher(const KdProber *p, const KdForward *f);
/* <prefix>.mean (C), .axes (2, C), .var (3) of a PCA basis; -1 out of memory. */
int kd_probe_pca_fields(KdSnapshot *s, const char *prefix, const float *mean, const float *axes, const float *var, int C);
/* capture_rpn.c: the fields of two-stage sides (proposals, objectness,
 * RoI features of the GT boxes); nothing for one-stage ones. */
int kd_probe_two_stage(KdProber *p, const KdForward *f, KdSnapshot *s, KdError *err);

/* The top proposals a snapshot keeps per image and two-stage side. */
#define KD_PROBE_PROPOSALS 20

#endif
