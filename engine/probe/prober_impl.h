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

#endif
