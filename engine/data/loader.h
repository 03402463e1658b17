/* Batches for training and evaluation, prepared on one prefetch thread.
 *
 * Order and augmentation are pure functions of (seed, step): epoch e uses a
 * permutation drawn from (seed, e); sample i of epoch e draws its flip and
 * jitter from its own stream (seed, e, i). So two loaders with the same
 * config give the same batches in the same order whatever the thread
 * timing, and a loader started at step k (resume) gives exactly the batches
 * a fresh loader gives from step k on. A sharded loader (one per rank of
 * a data-parallel run) gives its slice of those same global batches.
 *
 * Bad images: a file that fails to read or decode does not end a training
 * run. In training (loop = 1) it is replaced in its batch by the next image
 * of the dataset that decodes (deterministic, batch stays full); in a
 * single pass (loop = 0, evaluation) it is left out and the batch is
 * smaller. Either way the batch's `warnings` names the file and the reason,
 * its `bad` list holds the image and the reason (evaluation reports and
 * counts them), the image is remembered as bad, and kd_loader_stats counts
 * it. If
 * KD_LOADER_MAX_BAD images in a row fail, kd_loader_next fails: the data
 * folder is broken, not one file. */
#ifndef KD_LOADER_H
#define KD_LOADER_H

#include <stdint.h>

#include "data/dataset.h"
#include "data/transform.h"

#define KD_LOADER_MAX_BAD 16

typedef struct KdLoaderCfg {
  int batch_size;    /* default 8 */
  int shuffle;       /* new permutation each epoch; default 1 */
  int augment;       /* flip + jitter from image cfg; default 1 */
  int drop_last;     /* drop the last partial batch; default 1 */
  int loop;          /* 1: epochs without end (training); 0: one pass */
  int queue_depth;   /* batches prepared ahead; default 3 */
  uint64_t seed;     /* default 0 */
  long start_step;   /* first batch to produce (resume); default 0 */
  int shards, shard; /* data-parallel runs: of each global batch of batch_size
                      * images, take the shard-th of shards equal slices
                      * (batch_size % shards == 0); default 1, 0: all */
  int pass_stride, pass_offset; /* one pass (loop 0) only: the global batches
                                * offset, offset + stride, ... (a rank's share
                                * of a sharded evaluation); default 1, 0 */
  KdImageCfg image;
} KdLoaderCfg;

/* Training defaults (above). */
void kd_loader_cfg_default(KdLoaderCfg *c);
/* Evaluation: in order, no augmentation, last partial batch kept, one pass. */
void kd_loader_cfg_eval(KdLoaderCfg *c);

/* An image that failed to read or decode. */
typedef struct KdBadImage {
  int index;        /* dataset image index */
  char reason[400]; /* why, without the file's path: "cannot open: No such file or directory" */
} KdBadImage;

/* A prepared batch. Owned by the loader; valid until the next
 * kd_loader_next or kd_loader_free. Boxes of image i are
 * box_off[i] .. box_off[i+1]-1 (crowd boxes included, flagged). */
typedef struct KdBatch {
  int n, h, w;          /* images in this batch, input size */
  long step;            /* global batch number (0 = first batch of epoch 0) */
  long epoch;
  float *images;        /* [n, 3, h, w], normalised */
  int *index;           /* [n] dataset image index */
  KdXform *xform;       /* [n] input pixels <-> original pixels */
  int *box_off;         /* [n + 1] */
  float *boxes;         /* [box_off[n] * 4] x1,y1,x2,y2 in input pixels */
  int *labels;          /* [box_off[n]] contiguous class */
  uint8_t *crowd;       /* [box_off[n]] 1 = ignore region */
  const char *warnings; /* NULL, or lines naming images that failed */
  int n_bad;            /* images that failed while this batch was made (first failure only) */
  const KdBadImage *bad; /* [n_bad]; in a one-pass loader, the images left out of this batch */
  double prep_s;        /* time spent reading + decoding + augmenting it */
} KdBatch;

typedef struct KdLoaderStats {
  long batches;        /* handed out */
  double prep_s;       /* total decode + augment time of those batches */
  double wait_s;       /* total time kd_loader_next blocked */
  long bad_images;     /* distinct images that failed */
} KdLoaderStats;

typedef struct KdLoader KdLoader;

/* Starts the prefetch thread. The dataset must outlive the loader. */
KdLoader *kd_loader_new(const KdDataset *ds, const KdLoaderCfg *cfg, KdError *err);
/* Blocks until the next batch is ready. Returns 0 with *batch set, 0 with
 * *batch = NULL at the end of a one-pass loader, -1 on a fatal error. */
int kd_loader_next(KdLoader *l, const KdBatch **batch, KdError *err);
void kd_loader_free(KdLoader *l);

KdLoaderStats kd_loader_stats(const KdLoader *l);
/* Batches per epoch (depends on drop_last). */
long kd_loader_batches_per_epoch(const KdLoader *l);

/* The pieces the loader uses, public so tests and tools can reproduce any
 * sample: the order of dataset indices in an epoch (order has n entries),
 * and the RNG stream of one sample's augmentation. */
void kd_loader_epoch_order(uint64_t seed, long epoch, int shuffle, int n, int *order);
void kd_loader_sample_rng(uint64_t seed, long epoch, int index, KdRng *rng);

#endif
