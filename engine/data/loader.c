/* Prefetch loader: one producer thread fills a ring of batch slots in step
 * order; the consumer takes them in the same order. Everything random is
 * derived from (seed, epoch, index), never from timing. */
#include "data/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fileio.h"
#include "data/hash.h"

#define WARN_BYTES 2048

typedef enum { SLOT_FREE, SLOT_READY, SLOT_HELD } SlotState;

typedef struct Slot {
  KdBatch b;
  SlotState state;
  size_t box_cap;
  char warn[WARN_BYTES];
  size_t warn_len;
  KdBadImage *bad;
  int bad_cap;
} Slot;

struct KdLoader {
  const KdDataset *ds;
  KdLoaderCfg cfg;
  int n_images;
  long per_epoch;
  long end_step; /* one-pass loaders stop here; LONG_MAX-like when looping */

  /* producer-only state */
  KdJpeg *jpeg;
  KdImage img;
  KdPrepScratch scratch;
  int *order;
  long order_epoch;
  uint8_t *bad; /* per image: 0 unknown/good, 1 known bad */
  int bad_run;  /* failures in a row */

  /* shared, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int thread_started, stop;
  Slot *slots;
  int n_slots;
  long produced;   /* next step the producer will make */
  long consumed;   /* next step the consumer will take */
  int held;        /* slot index the consumer holds, -1 none */
  int failed;      /* producer hit a fatal error at step `produced` */
  KdError error;
  KdLoaderStats stats;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kd_loader_cfg_default(KdLoaderCfg *c) {
  *c = (KdLoaderCfg){.batch_size = 8, .shuffle = 1, .augment = 1, .drop_last = 1, .loop = 1, .queue_depth = 3, .shards = 1, .pass_stride = 1};
  kd_image_cfg_default(&c->image);
}

void kd_loader_cfg_eval(KdLoaderCfg *c) {
  kd_loader_cfg_default(c);
  c->shuffle = 0, c->augment = 0, c->drop_last = 0, c->loop = 0;
}

void kd_loader_epoch_order(uint64_t seed, long epoch, int shuffle, int n, int *order) {
  for (int i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return;
  KdRng r;
  kd_rng_seed(&r, kd_mix64(seed ^ 0x6f72646572ULL), (uint64_t)epoch); /* "order" */
  for (int i = n - 1; i > 0; i--) {
    int j = (int)kd_rng_below(&r, (uint32_t)i + 1);
    int t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

void kd_loader_sample_rng(uint64_t seed, long epoch, int index, KdRng *rng) {
  kd_rng_seed(rng, kd_mix64(seed ^ kd_mix64((uint64_t)epoch + 0x61756775ULL)), (uint64_t)index); /* "augu" */
}

/* ---- producer ---- */

static void warnf(Slot *s, const char *fmt, const char *a, const char *b) {
  if (s->warn_len + 8 >= WARN_BYTES) return;
  int n = snprintf(s->warn + s->warn_len, WARN_BYTES - s->warn_len, fmt, a, b);
  if (n > 0) s->warn_len += (size_t)n < WARN_BYTES - s->warn_len ? (size_t)n : WARN_BYTES - s->warn_len - 1;
}

/* Records a failed image in the batch; the reason loses its leading
 * "path: " (the reader's messages start with the path). */
static int note_bad(Slot *s, int idx, const char *path, const char *msg) {
  if (s->b.n_bad == s->bad_cap) {
    int cap = s->bad_cap ? 2 * s->bad_cap : 8;
    KdBadImage *nb = realloc(s->bad, sizeof *nb * (size_t)cap);
    if (!nb) return -1;
    s->bad = nb, s->bad_cap = cap;
  }
  size_t pl = strlen(path);
  if (!strncmp(msg, path, pl) && !strncmp(msg + pl, ": ", 2)) msg += pl + 2;
  KdBadImage *b = &s->bad[s->b.n_bad++];
  b->index = idx;
  size_t n = strlen(msg) < sizeof b->reason ? strlen(msg) : sizeof b->reason - 1;
  memcpy(b->reason, msg, n);
  b->reason[n] = 0;
  s->b.bad = s->bad;
  return 0;
}

static int grow_boxes(KdLoader *l, Slot *s, size_t need) {
  if (need <= s->box_cap) return 0;
  size_t cap = need * 2;
  float *b = realloc(s->b.boxes, cap * 4 * sizeof(float));
  if (b) s->b.boxes = b;
  int *lab = realloc(s->b.labels, cap * sizeof(int));
  if (lab) s->b.labels = lab;
  uint8_t *c = realloc(s->b.crowd, cap);
  if (c) s->b.crowd = c;
  if (!b || !lab || !c) return -1;
  s->box_cap = cap;
  (void)l;
  return 0;
}

/* Reads, decodes and prepares dataset image idx into slot position k.
 * Returns 0 on success, 1 if the image is bad (warning added), -1 fatal. */
static int load_one(KdLoader *l, Slot *s, int k, int idx, long epoch, KdError *err) {
  KdDatasetImage im = kd_dataset_image(l->ds, idx);
  char path[4096] = "", esc[600];
  if (l->bad[idx]) return 1;
  KdError e;
  int S = l->cfg.image.size;
  KdXform probe = kd_xform_make(&l->cfg.image, im.width, im.height, 0);
  int cw = (int)(im.width * probe.sx + 0.5f), chh = (int)(im.height * probe.sy + 0.5f);
  if (kd_dataset_image_path(l->ds, idx, path, sizeof path) != 0) {
    kd_error(&e, "images[%d]: no image folder or path too long", idx);
  } else if (kd_jpeg_read_file(l->jpeg, path, cw, chh, &l->img, &e) == 0) {
    if (l->img.file_w != im.width || l->img.file_h != im.height) {
      char dims[96];
      snprintf(dims, sizeof dims, "%dx%d but the json says %dx%d", l->img.file_w, l->img.file_h, im.width, im.height);
      kd_escape_name(path, esc, sizeof esc);
      warnf(s, "%s: image is %s; boxes were scaled with the image\n", esc, dims);
    }
    KdAugment aug = kd_augment_none();
    if (l->cfg.augment) {
      KdRng r;
      kd_loader_sample_rng(l->cfg.seed, epoch, idx, &r);
      aug = kd_augment_draw(&l->cfg.image, &r);
    }
    float *dst = s->b.images + (size_t)k * 3 * S * S;
    if (kd_image_prepare(&l->cfg.image, &l->img, im.width, im.height, &aug, dst, &s->b.xform[k], &l->scratch, err))
      return -1;
    int off = s->b.box_off[k];
    if (grow_boxes(l, s, (size_t)off + (size_t)im.n_boxes)) return kd_error(err, "out of memory for boxes");
    kd_xform_boxes_to_input(&s->b.xform[k], im.boxes, s->b.boxes + 4 * (size_t)off, im.n_boxes);
    memcpy(s->b.labels + off, im.labels, (size_t)im.n_boxes * sizeof(int));
    memcpy(s->b.crowd + off, im.crowd, (size_t)im.n_boxes);
    s->b.index[k] = idx;
    s->b.box_off[k + 1] = off + im.n_boxes;
    return 0;
  }
  l->bad[idx] = 1;
  pthread_mutex_lock(&l->mu);
  l->stats.bad_images++;
  pthread_mutex_unlock(&l->mu);
  if (note_bad(s, idx, path, e.msg)) return kd_error(err, "out of memory for the list of bad images");
  warnf(s, "%s%s\n", l->cfg.loop ? "bad image, replaced by the next one: " : "bad image, left out: ", e.msg);
  return 1;
}

static int make_batch(KdLoader *l, Slot *s, long step, KdError *err) {
  double t0 = now_s();
  long epoch = step / l->per_epoch, first = (step % l->per_epoch) * l->cfg.batch_size;
  if (epoch != l->order_epoch) {
    kd_loader_epoch_order(l->cfg.seed, epoch, l->cfg.shuffle, l->n_images, l->order);
    l->order_epoch = epoch;
  }
  long last = first + l->cfg.batch_size;
  if (l->cfg.shards > 1) { /* this rank's slice of the global batch */
    long part = l->cfg.batch_size / l->cfg.shards;
    first += part * l->cfg.shard;
    last = first + part;
  }
  if (last > l->n_images) last = l->n_images;
  s->warn_len = 0;
  s->warn[0] = 0;
  s->b.n_bad = 0;
  s->b.box_off[0] = 0;
  int k = 0;
  for (long pos = first; pos < last; pos++) {
    int idx = l->order[pos], rc;
    while ((rc = load_one(l, s, k, idx, epoch, err)) == 1) {
      if (++l->bad_run >= KD_LOADER_MAX_BAD)
        return kd_error(err, "%d images in a row failed to load; the data folder looks broken:\n%s",
                        l->bad_run, s->warn);
      if (!l->cfg.loop) break; /* one pass: leave it out */
      idx = (idx + 1) % l->n_images; /* training: the next image stands in */
    }
    if (rc < 0) return -1;
    if (rc == 0) k++, l->bad_run = 0;
  }
  s->b.n = k;
  s->b.step = step;
  s->b.epoch = epoch;
  s->b.warnings = s->warn_len ? s->warn : NULL;
  s->b.prep_s = now_s() - t0;
  return 0;
}

static void *producer(void *arg) {
  KdLoader *l = arg;
  pthread_mutex_lock(&l->mu);
  while (!l->stop && !l->failed && l->produced < l->end_step) {
    int si = (int)(l->produced % l->n_slots);
    if (l->slots[si].state != SLOT_FREE) {
      pthread_cond_wait(&l->cv, &l->mu);
      continue;
    }
    long step = l->cfg.pass_offset + l->produced * l->cfg.pass_stride;
    pthread_mutex_unlock(&l->mu);
    KdError e = {{0}};
    int rc = make_batch(l, &l->slots[si], step, &e);
    pthread_mutex_lock(&l->mu);
    if (rc) {
      l->failed = 1;
      l->error = e;
    } else {
      l->slots[si].state = SLOT_READY;
      l->produced++;
    }
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* ---- consumer ---- */

KdLoader *kd_loader_new(const KdDataset *ds, const KdLoaderCfg *cfg, KdError *err) {
  if (!ds || !cfg) return kd_error(err, "kd_loader_new: no dataset or config"), NULL;
  if (kd_image_cfg_check(&cfg->image, err)) return NULL;
  int n = kd_dataset_num_images(ds), B = cfg->batch_size;
  if (B < 1 || B > 4096) return kd_error(err, "loader.batch_size: expected 1..4096, got %d", B), NULL;
  if (cfg->queue_depth < 1 || cfg->queue_depth > 64)
    return kd_error(err, "loader.queue_depth: expected 1..64, got %d", cfg->queue_depth), NULL;
  if (cfg->start_step < 0) return kd_error(err, "loader.start_step: expected >= 0, got %ld", cfg->start_step), NULL;
  if (cfg->shards > 1 && (B % cfg->shards || cfg->shard < 0 || cfg->shard >= cfg->shards || !cfg->drop_last))
    return kd_error(err, "loader: shard %d of %d of batches of %d (the batch must split evenly, whole batches only)", cfg->shard,
                    cfg->shards, B), NULL;
  int stride = cfg->pass_stride > 1 ? cfg->pass_stride : 1;
  if (stride > 1 && (cfg->loop || cfg->start_step || cfg->pass_offset < 0 || cfg->pass_offset >= stride))
    return kd_error(err, "loader: batches %d of every %d are for one pass from the start only", cfg->pass_offset, stride), NULL;
  long per_epoch = cfg->drop_last ? n / B : (n + B - 1) / B;
  if (per_epoch == 0)
    return kd_error(err, "%s: %d images make no batch of %d%s", kd_dataset_json_path(ds), n, B,
                    cfg->drop_last ? " (drop_last is on)" : ""), NULL;
  KdLoader *l = calloc(1, sizeof *l);
  if (!l) return kd_error(err, "out of memory"), NULL;
  l->ds = ds, l->cfg = *cfg, l->n_images = n, l->per_epoch = per_epoch, l->order_epoch = -1, l->held = -1;
  /* One pass with a stride counts its own batches: k is global batch offset + k * stride. */
  l->end_step = cfg->loop ? (1L << 62) : stride > 1 ? (per_epoch - cfg->pass_offset + stride - 1) / stride : per_epoch;
  l->cfg.pass_stride = stride, l->cfg.pass_offset = stride > 1 ? cfg->pass_offset : 0;
  l->produced = l->consumed = cfg->start_step;
  l->n_slots = cfg->queue_depth + 1;
  l->jpeg = kd_jpeg_new();
  l->order = malloc((size_t)n * sizeof(int));
  l->bad = calloc((size_t)n, 1);
  l->slots = calloc((size_t)l->n_slots, sizeof(Slot));
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  int ok = l->jpeg && l->order && l->bad && l->slots;
  size_t S = (size_t)cfg->image.size;
  for (int i = 0; ok && i < l->n_slots; i++) {
    KdBatch *b = &l->slots[i].b;
    b->h = b->w = (int)S;
    b->images = malloc((size_t)B * 3 * S * S * sizeof(float));
    b->index = malloc((size_t)B * sizeof(int));
    b->xform = malloc((size_t)B * sizeof(KdXform));
    b->box_off = malloc(((size_t)B + 1) * sizeof(int));
    ok = b->images && b->index && b->xform && b->box_off && grow_boxes(l, &l->slots[i], 64) == 0;
  }
  if (!ok) {
    kd_loader_free(l);
    return kd_error(err, "out of memory for %d batch slots of %d images", cfg->queue_depth + 1, B), NULL;
  }
  if (pthread_create(&l->thread, NULL, producer, l) != 0) {
    kd_loader_free(l);
    return kd_error(err, "cannot start the prefetch thread"), NULL;
  }
  l->thread_started = 1;
  return l;
}

int kd_loader_next(KdLoader *l, const KdBatch **batch, KdError *err) {
  *batch = NULL;
  double t0 = now_s();
  pthread_mutex_lock(&l->mu);
  if (l->held >= 0) {
    l->slots[l->held].state = SLOT_FREE;
    l->held = -1;
    pthread_cond_broadcast(&l->cv);
  }
  int si = (int)(l->consumed % l->n_slots), rc = 0;
  for (;;) {
    if (l->consumed >= l->end_step) break;
    if (l->consumed < l->produced && l->slots[si].state == SLOT_READY) {
      l->slots[si].state = SLOT_HELD;
      l->held = si;
      l->consumed++;
      *batch = &l->slots[si].b;
      l->stats.batches++;
      l->stats.prep_s += l->slots[si].b.prep_s;
      break;
    }
    if (l->failed) {
      rc = -1;
      if (err) *err = l->error;
      break;
    }
    pthread_cond_wait(&l->cv, &l->mu);
  }
  l->stats.wait_s += now_s() - t0;
  pthread_mutex_unlock(&l->mu);
  return rc;
}

void kd_loader_free(KdLoader *l) {
  if (!l) return;
  if (l->thread_started) {
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
  }
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  for (int i = 0; l->slots && i < l->n_slots; i++) {
    KdBatch *b = &l->slots[i].b;
    free(b->images), free(b->index), free(b->xform), free(b->box_off);
    free(b->boxes), free(b->labels), free(b->crowd);
    free(l->slots[i].bad);
  }
  free(l->slots);
  kd_jpeg_free(l->jpeg);
  kd_image_free(&l->img);
  kd_prep_scratch_free(&l->scratch);
  free(l->order);
  free(l->bad);
  free(l);
}

KdLoaderStats kd_loader_stats(const KdLoader *l) {
  KdLoaderStats s;
  pthread_mutex_lock((pthread_mutex_t *)&l->mu);
  s = l->stats;
  pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
  return s;
}

long kd_loader_batches_per_epoch(const KdLoader *l) { return l->per_epoch; }
