/* kdscope make-dataset: builds fashion-det (or previews/benchmarks an
 * existing set), and the --data resolution other verbs share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/dataset.h"
#include "data/fashion.h"
#include "data/loader.h"
#include "cli_common.h"
#include "data/preview.h"
#include "progress.h"
#include "verbs.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: kdscope make-dataset [--out DIR] [--seed N] [--train N] [--val N] [--size S]\n"
          "                            [--threads N] [--force] [--preview FILE.png]\n"
          "       kdscope make-dataset --data DIR [--preview FILE.png] [--bench]\n\n"
          "Builds fashion-det: Fashion-MNIST clothing (Debian's dataset-fashion-mnist) tinted and\n"
          "placed on cluttered backgrounds, 1-6 items per image, as JPEG + COCO json.\n\n"
          "  --out DIR          where to build (default: %s)\n"
          "  --seed N           random seed (default 0); same options => byte-identical output\n"
          "  --train N, --val N images per split (default 6000, 500)\n"
          "  --size S           canvas side in pixels (default 128)\n"
          "  --threads N        builder threads (default: all cores; output does not depend on it)\n"
          "  --force            replace an existing fashion-det set in DIR\n"
          "  --data DIR         use an existing set in DIR instead of building one\n"
          "  --preview F.png    write a contact sheet of images with their boxes\n"
          "  --split NAME       split for --preview and --bench (default train)\n"
          "  --bench            time decode + augment of batches of 8 on one loader thread\n\n"
          "After building (or with --data alone) it prints the split's box sizes and the\n"
          "anchors that fit them, as `kdscope data-stats` does for the student preset.\n",
          "$XDG_DATA_HOME/kdscope/fashion-det");
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out) {
  char *end;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || x < lo || x > hi) {
    fprintf(stderr, "kdscope make-dataset: %s expects a whole number in %ld..%ld, got '%s'\n", opt, lo, hi,
            v ? v : "(nothing)");
    return -1;
  }
  *out = x;
  return 0;
}

int kd_cli_resolve_data(const char *data_arg, char *dir, size_t len) {
  if (data_arg) {
    if (snprintf(dir, len, "%s", data_arg) >= (int)len) {
      fprintf(stderr, "kdscope: --data path too long\n");
      return -1;
    }
    return 0;
  }
  char def[4096];
  int have = kd_default_data_dir(def, sizeof def) == 0 && kd_fashion_is_complete(def);
  if (!have) fprintf(stderr, "kdscope: building the default data set (first use) in %s\n", def);
  KdProgress *bar = have ? NULL : kd_progress_new(stderr, 0);
  KdError err;
  int rc = kd_ensure_default_dataset(dir, len, bar ? kd_progress_fn : NULL, bar, &err);
  if (bar) kd_progress_done(bar), kd_progress_free(bar);
  if (rc) fprintf(stderr, "kdscope: %s\n", err.msg);
  return rc;
}

/* Decode + augment throughput of the loader thread, batches of 8. */
static int bench(const char *dir, const char *split) {
  KdError err;
  KdDataset *ds;
  if (kd_dataset_open_dir(dir, split, &ds, &err)) {
    fprintf(stderr, "kdscope make-dataset: %s\n", err.msg);
    return 1;
  }
  KdLoaderCfg cfg;
  kd_loader_cfg_default(&cfg); /* training settings: shuffle, flip, jitter */
  cfg.drop_last = 0;           /* tiny sets still bench */
  KdLoader *l = kd_loader_new(ds, &cfg, &err);
  if (!l) {
    fprintf(stderr, "kdscope make-dataset: %s\n", err.msg);
    kd_dataset_free(ds);
    return 1;
  }
  const KdBatch *b;
  long n = 0, imgs = 0;
  double t0 = now_s(), prep = 0;
  while (now_s() - t0 < 3.0 && n < 2000) {
    if (kd_loader_next(l, &b, &err) || !b) break;
    prep += b->prep_s, imgs += b->n, n++;
  }
  double wall = now_s() - t0;
  printf("%s: %s\n", split, kd_dataset_summary(ds));
  printf("decode+augment: %.3f ms per batch of %d at %dx%d (%.0f images/s, one loader thread; %ld batches)\n",
         1e3 * prep / (double)n, cfg.batch_size, cfg.image.size, cfg.image.size, (double)imgs / prep, n);
  printf("consumer side: %.0f images/s end to end (includes queue hand-off)\n", (double)imgs / wall);
  kd_loader_free(l);
  kd_dataset_free(ds);
  return 0;
}

int kd_cli_make_dataset(int argc, char **argv) {
  KdFashionCfg cfg;
  kd_fashion_cfg_default(&cfg);
  const char *out = NULL, *data = NULL, *preview = NULL, *split = "train";
  int force = 0, do_bench = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long x;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--out")) out = v, i++;
    else if (!strcmp(a, "--data")) data = v, i++;
    else if (!strcmp(a, "--preview")) preview = v, i++;
    else if (!strcmp(a, "--split")) split = v, i++;
    else if (!strcmp(a, "--force")) force = 1;
    else if (!strcmp(a, "--bench")) do_bench = 1;
    else if (!strcmp(a, "--seed")) {
      if (parse_long(a, v, 0, 0x7fffffffL, &x)) return 1;
      cfg.seed = (uint64_t)x, i++;
    } else if (!strcmp(a, "--train")) {
      if (parse_long(a, v, 1, 999999, &x)) return 1;
      cfg.n_train = (int)x, i++;
    } else if (!strcmp(a, "--val")) {
      if (parse_long(a, v, 1, 999999, &x)) return 1;
      cfg.n_val = (int)x, i++;
    } else if (!strcmp(a, "--size")) {
      if (parse_long(a, v, 32, 1024, &x)) return 1;
      cfg.size = (int)x, i++;
    } else if (!strcmp(a, "--threads")) {
      if (parse_long(a, v, 1, 256, &x)) return 1;
      cfg.threads = (int)x, i++;
    } else {
      fprintf(stderr, "kdscope make-dataset: unknown option '%s'\n\n", a);
      usage(stderr);
      return 1;
    }
    if (i >= argc) {
      fprintf(stderr, "kdscope make-dataset: %s expects a value\n", a);
      return 1;
    }
  }
  if (data && out) {
    fprintf(stderr, "kdscope make-dataset: give --out (build) or --data (use an existing set), not both\n");
    return 1;
  }
  char dir[4096];
  KdError err;
  if (data) {
    snprintf(dir, sizeof dir, "%s", data);
  } else {
    if (out) snprintf(dir, sizeof dir, "%s", out);
    else if (kd_default_data_dir(dir, sizeof dir)) {
      fprintf(stderr, "kdscope make-dataset: neither XDG_DATA_HOME nor HOME is set; pass --out DIR\n");
      return 1;
    }
    KdProgress *bar = kd_progress_new(stderr, 0);
    double t0 = now_s();
    int rc = kd_fashion_build(dir, &cfg, force, kd_progress_fn, bar, &err);
    kd_progress_done(bar);
    kd_progress_free(bar);
    if (rc) {
      fprintf(stderr, "kdscope make-dataset: %s\n", err.msg);
      return 1;
    }
    printf("built %d train + %d val images in %s (%.1f s)\n", cfg.n_train, cfg.n_val, dir, now_s() - t0);
  }
  if (preview) {
    KdDataset *ds = NULL;
    if (kd_dataset_open_dir(dir, split, &ds, &err) || kd_dataset_preview(ds, preview, 24, 6, 256, &err)) {
      fprintf(stderr, "kdscope make-dataset: %s\n", err.msg);
      if (ds) kd_dataset_free(ds);
      return 1;
    }
    printf("%s\npreview: %s\n", kd_dataset_summary(ds), preview);
    kd_dataset_free(ds);
  }
  if (do_bench) return bench(dir, split);
  if (preview && data) return 0;
  /* The presets' anchors at this set's canvas size. */
  KdTrainArgs ta = {.steps = -1};
  char size[64];
  snprintf(size, sizeof size, "data.size=%d", cfg.size);
  if (!data) ta.sets[ta.nsets++] = size;
  KdConfig *c = kd_cli_load_config(&ta, "configs/student.json", 0, "make-dataset");
  if (!c) return 1;
  printf("\n");
  int rc = kd_cli_print_box_stats(dir, split, c, 0);
  kd_config_free(c);
  return rc;
}
