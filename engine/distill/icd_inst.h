/* ICD's instance descriptors (KD-METHODS-2 §A.4): per image its real GTs
 * and sampled fake instances, each a jittered centre, a class and a size
 * bin, encoded as the input of the instance encoder; host-side, no
 * gradient. */
#ifndef KD_DISTILL_ICD_INST_H
#define KD_DISTILL_ICD_INST_H

#include "core/rng.h"
#include "detect/targets.h"

#define KD_ICD_CENTRE_DIM 256 /* 128 sine features for each of x and y */
#define KD_ICD_SIZE_BINS 5
#define KD_ICD_MAX_LABELS 300

typedef struct KdIcdInstCfg {
  int num_classes;
  float fake_ratio; /* fakes per real GT (official 5: 6n instances in all) */
  float jitter;     /* centre jitter as a fraction of the box size (0.3) */
  int img_h, img_w; /* network input size, for normalising and the size bins */
} KdIcdInstCfg;

/* The batch's instances, padded to kmax per image (row n*kmax + j). */
typedef struct KdIcdInst {
  int n, kmax, din;      /* din = num_classes + KD_ICD_CENTRE_DIM + 2 * KD_ICD_SIZE_BINS */
  float *desc;           /* [n*kmax, din]: class one-hot | centre x, y embedding | w bin, h bin one-hot */
  float *target;         /* [n*kmax, 4]: (l, t, r, b) from the jittered centre, normalised */
  float *box;            /* [n*kmax, 4]: the instance's box x1, y1, x2, y2, normalised */
  float *centre;         /* [n*kmax, 2]: the jittered centre, normalised */
  unsigned char *valid;  /* [n*kmax]: real or fake (not padding) */
  unsigned char *real;   /* [n*kmax]: one of the image's GTs (the first n_real rows) */
  int nreal, nvalid;
} KdIcdInst;

/* K_img = min(max(1, int((1 + fake_ratio) n)), max(300, n)) per image, n
 * its non-crowd GTs. Fake: class uniform, centre U(0.03, 0.97)^2, w and h
 * N(0.2, 0.2) clipped to [-0.2, 0.6] then [0.002, 0.7], box clamped to the
 * image; every instance's centre jittered by U(-jitter, jitter) (w, h).
 * Draws from r in a fixed order (image, instance). Buffers from alloc
 * (arena-like, not freed here); -1 when it returns NULL. */
int kd_icd_instances(const KdIcdInstCfg *cfg, const KdGtImage *gt, int n, KdRng *r, void *(*alloc)(void *, size_t),
                     void *alloc_user, KdIcdInst *out);
/* The same from given rows (image, real, class, x1, y1, x2, y2, cx, cy)
 * in input pixels, kept in their order within each image. -1 with err
 * naming the row when a value is out of range (image not in 0..n-1, class
 * not in 0..K-1, real not 0/1, x2 < x1 or y2 < y1), -2 out of memory. */
#define KD_ICD_INST_COLS 9
int kd_icd_instances_given(const KdIcdInstCfg *cfg, const float *rows, int m, int n, void *(*alloc)(void *, size_t),
                           void *alloc_user, KdIcdInst *out, char *err, size_t errlen);
/* The size bin of a length in pixels: clamp(trunc(1.44 ln(size) - 5), 0, 4). */
int kd_icd_size_bin(float pixels);

#endif
