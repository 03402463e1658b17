/* fashion-det: the default detection data set, built from Debian's
 * dataset-fashion-mnist (28x28 grayscale photographs of clothing, 10
 * classes). Each image is a size x size RGB canvas with a cluttered
 * background (colour gradient + value noise + strokes + blobs) and 1-6
 * tinted items whose long side is 12-80 px (at size 128; scaled with size),
 * composited with their own intensity as alpha. Boxes are tight around the
 * item's visible pixels (alpha >= KD_FASHION_ALPHA_THRESHOLD); items may
 * overlap but each keeps at least half its pixels visible.
 *
 * Everything is drawn from PCG32 streams seeded by (seed, split, index), so
 * the output is byte-identical for the same options whatever the thread
 * count. Layout written: DIR/images/{train,val}/NNNNNN.jpg (NNNNNN = COCO
 * image id), DIR/annotations/instances_{train,val}.json, DIR/fashion-det.json
 * (the options; its presence marks a complete set). */
#ifndef KD_FASHION_H
#define KD_FASHION_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/progress.h"

#define KD_FASHION_CLASSES 10
#define KD_FASHION_MAX_ITEMS 6
#define KD_FASHION_ALPHA_THRESHOLD 0.25f
#define KD_FASHION_DEFAULT_SOURCE "/usr/share/datasets/fashion-mnist"

/* Class names in label order (COCO category id = label + 1). */
extern const char *const kd_fashion_class_names[KD_FASHION_CLASSES];

/* One Fashion-MNIST split in memory. */
typedef struct KdFashionMnist {
  int n;
  uint8_t *images; /* [n, 28, 28] */
  uint8_t *labels; /* [n] 0..9 */
} KdFashionMnist;

/* split: "train" or "t10k"; dir NULL = $KD_FASHION_MNIST_DIR or the
 * Debian path. Errors name the file and what was expected. */
int kd_fashion_mnist_load(const char *dir, const char *split, KdFashionMnist *out, KdError *err);
void kd_fashion_mnist_free(KdFashionMnist *m);

/* One rendered image's ground truth. */
typedef struct KdFashionItem {
  int label;         /* 0..9 */
  int source;        /* index into the Fashion-MNIST split */
  int box[4];        /* x1, y1, x2, y2: pixel edges, tight around visible pixels */
  int extent[4];     /* where the whole item was drawn (its scaled rectangle) */
  int pixels;        /* mask pixels of the whole item */
  int visible;       /* of those, not covered by later items */
} KdFashionItem;

typedef struct KdFashionScene {
  int n_items;
  KdFashionItem items[KD_FASHION_MAX_ITEMS];
} KdFashionScene;

typedef struct KdFashionRender KdFashionRender; /* per-thread scratch */
KdFashionRender *kd_fashion_render_new(int size);
void kd_fashion_render_free(KdFashionRender *r);

/* Renders image `index` of split (0 train, 1 val) into rgb [size*size*3].
 * mask (optional, [size*size]) receives the visible item id per pixel,
 * -1 for background. Returns -1 only when out of memory. */
int kd_fashion_render(KdFashionRender *r, const KdFashionMnist *src, uint64_t seed, int split,
                      int index, uint8_t *rgb, int8_t *mask, KdFashionScene *scene);

typedef struct KdFashionCfg {
  uint64_t seed;          /* default 0 */
  int n_train, n_val;     /* default 6000, 500 */
  int size;               /* canvas side, default 128 (32..1024) */
  int quality;            /* JPEG quality, default 90 */
  int threads;            /* 0 = OpenMP default */
  const char *source_dir; /* NULL = default Fashion-MNIST location */
} KdFashionCfg;

void kd_fashion_cfg_default(KdFashionCfg *c);

/* Builds the set into out_dir atomically: everything is written into a
 * sibling temp directory that is renamed into place at the end, so an
 * interrupted build never leaves a set that looks complete. If out_dir
 * exists: an empty directory is replaced; a previous fashion-det set is
 * replaced only when replace is set; anything else is an error. */
int kd_fashion_build(const char *out_dir, const KdFashionCfg *cfg, int replace, KdProgressFn progress,
                     void *user, KdError *err);

/* 1 if dir holds a complete fashion-det set (its marker file exists). */
int kd_fashion_is_complete(const char *dir);

/* $XDG_DATA_HOME/kdscope/fashion-det, else ~/.local/share/kdscope/fashion-det.
 * -1 if neither XDG_DATA_HOME nor HOME is set or buf is too small. */
int kd_default_data_dir(char *buf, size_t len);

/* The default set's directory, building it (default options) on first use.
 * Stale temp directories of dead builds are removed; if another process
 * finishes the same build first, its result is used. */
int kd_ensure_default_dataset(char *dir_out, size_t len, KdProgressFn progress, void *user,
                              KdError *err);

#endif
