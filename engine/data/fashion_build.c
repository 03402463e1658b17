/* Builds fashion-det on disk: renders every image (OpenMP, any thread
 * count gives the same bytes), writes JPEGs and COCO json into a temp
 * directory, then renames it into place. Also the default location. */
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/fashion.h"
#include "core/fileio.h"
#include "data/jpeg.h"

#define MARKER "fashion-det.json"

void kd_fashion_cfg_default(KdFashionCfg *c) {
  *c = (KdFashionCfg){.seed = 0, .n_train = 6000, .n_val = 500, .size = 128, .quality = 90};
}

int kd_fashion_is_complete(const char *dir) {
  char p[4096];
  return kd_path_fmt(p, sizeof p, NULL, "%s/%s", dir, MARKER) == 0 && kd_path_exists(p);
}

/* ---- json text (our own printer, so bytes are stable) ---- */

typedef struct Buf {
  char *p;
  size_t len, cap;
  int oom;
} Buf;

__attribute__((format(printf, 2, 3))) static void bprintf(Buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q, b->cap = cap;
  }
}

static int write_json(const char *path, int split, const KdFashionScene *scenes, int n, int size,
                      const KdFashionCfg *cfg, KdError *err) {
  Buf b = {0};
  bprintf(&b, "{\"info\":{\"description\":\"fashion-det %s: Fashion-MNIST %s items on cluttered backgrounds, made by kdscope\",",
          split ? "val" : "train", split ? "t10k" : "train");
  bprintf(&b, "\"version\":\"1\",\"seed\":%llu},\n\"licenses\":[],\n\"categories\":[\n", (unsigned long long)cfg->seed);
  for (int c = 0; c < KD_FASHION_CLASSES; c++)
    bprintf(&b, "{\"id\":%d,\"name\":\"%s\",\"supercategory\":\"clothing\"}%s\n", c + 1,
            kd_fashion_class_names[c], c + 1 < KD_FASHION_CLASSES ? "," : "");
  bprintf(&b, "],\n\"images\":[\n");
  for (int i = 0; i < n; i++)
    bprintf(&b, "{\"id\":%d,\"file_name\":\"%06d.jpg\",\"width\":%d,\"height\":%d}%s\n", i + 1, i + 1, size, size,
            i + 1 < n ? "," : "");
  bprintf(&b, "],\n\"annotations\":[\n");
  long ann = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < scenes[i].n_items; j++) {
      const KdFashionItem *it = &scenes[i].items[j];
      int w = it->box[2] - it->box[0], h = it->box[3] - it->box[1];
      bprintf(&b, "%s{\"id\":%ld,\"image_id\":%d,\"category_id\":%d,\"bbox\":[%d,%d,%d,%d],\"area\":%d,\"iscrowd\":0}",
              ann ? ",\n" : "", ann + 1, i + 1, it->label + 1, it->box[0], it->box[1], w, h, w * h);
      ann++;
    }
  bprintf(&b, "\n]}\n");
  int rc = b.oom ? kd_error(err, "%s: out of memory", path) : kd_write_file(path, b.p, b.len, err);
  free(b.p);
  return rc;
}

/* ---- the build ---- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Renders and writes the images of both splits in parallel. */
static int render_all(const char *tmp, const KdFashionCfg *cfg, const KdFashionMnist src[2],
                      KdFashionScene *scenes[2], KdProgressFn progress, void *user, KdError *err) {
  long total = (long)cfg->n_train + cfg->n_val, done = 0;
  int failed = 0;
  double last = 0;
  int nt = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
  {
    KdFashionRender *r = kd_fashion_render_new(cfg->size);
    KdJpeg *j = kd_jpeg_new();
    uint8_t *rgb = malloc((size_t)cfg->size * cfg->size * 3);
    KdError e;
    int mine_ok = r && j && rgb;
    if (!mine_ok) {
#pragma omp critical(kd_fashion_err)
      if (!failed) failed = 1, kd_error(err, "out of memory starting the builder");
    }
#pragma omp for schedule(dynamic, 8)
    for (long t = 0; t < total; t++) {
      int fail_now;
#pragma omp atomic read
      fail_now = failed;
      if (fail_now || !mine_ok) continue;
      int split = t < cfg->n_train ? 0 : 1, i = split ? (int)(t - cfg->n_train) : (int)t;
      char path[4096];
      int rc = kd_path_fmt(path, sizeof path, &e, "%s/images/%s/%06d.jpg", tmp, split ? "val" : "train", i + 1);
      if (!rc && kd_fashion_render(r, &src[split], cfg->seed, split, i, rgb, NULL, &scenes[split][i]))
        rc = kd_error(&e, "out of memory rendering %s", path);
      else rc = kd_jpeg_write_file(j, path, rgb, cfg->size, cfg->size, cfg->quality, &e);
      if (rc) {
#pragma omp critical(kd_fashion_err)
        if (!failed) failed = 1, *err = e;
      }
      long d;
#pragma omp atomic capture
      d = ++done;
      if (progress && omp_get_thread_num() == 0) {
        double t1 = now_s();
        if (t1 - last > 0.1) last = t1, progress(user, "images", d, total);
      }
    }
    kd_fashion_render_free(r);
    kd_jpeg_free(j);
    free(rgb);
  }
  if (!failed && progress) progress(user, "images", total, total);
  return failed ? -1 : 0;
}

static int check_cfg(const KdFashionCfg *c, KdError *err) {
  if (c->n_train < 1 || c->n_train > 999999) return kd_error(err, "--train: expected 1..999999 images, got %d", c->n_train);
  if (c->n_val < 1 || c->n_val > 999999) return kd_error(err, "--val: expected 1..999999 images, got %d", c->n_val);
  if (c->size < 32 || c->size > 1024) return kd_error(err, "--size: expected 32..1024 pixels, got %d", c->size);
  if (c->quality < 1 || c->quality > 100) return kd_error(err, "quality: expected 1..100, got %d", c->quality);
  return 0;
}

static int build_into(const char *tmp, const KdFashionCfg *cfg, KdProgressFn progress, void *user, KdError *err) {
  char p[4096];
  static const char *dirs[] = {"images/train", "images/val", "annotations"};
  for (int i = 0; i < 3; i++) {
    if (kd_path_fmt(p, sizeof p, err, "%s/%s", tmp, dirs[i]) || kd_mkdir_p(p, err)) return -1;
  }
  if (progress) progress(user, "reading Fashion-MNIST", 0, 0);
  KdFashionMnist src[2] = {{0}};
  KdFashionScene *scenes[2] = {calloc((size_t)cfg->n_train, sizeof(KdFashionScene)),
                               calloc((size_t)cfg->n_val, sizeof(KdFashionScene))};
  int rc = -1;
  if (!scenes[0] || !scenes[1]) {
    kd_error(err, "out of memory");
    goto done;
  }
  if (kd_fashion_mnist_load(cfg->source_dir, "train", &src[0], err) ||
      kd_fashion_mnist_load(cfg->source_dir, "t10k", &src[1], err))
    goto done;
  if (render_all(tmp, cfg, src, scenes, progress, user, err)) goto done;
  if (kd_path_fmt(p, sizeof p, err, "%s/annotations/instances_train.json", tmp) ||
      write_json(p, 0, scenes[0], cfg->n_train, cfg->size, cfg, err) ||
      kd_path_fmt(p, sizeof p, err, "%s/annotations/instances_val.json", tmp) ||
      write_json(p, 1, scenes[1], cfg->n_val, cfg->size, cfg, err))
    goto done;
  char meta[512];
  int n = snprintf(meta, sizeof meta,
                   "{\"generator\":\"kdscope fashion-det\",\"version\":1,\"seed\":%llu,\"train\":%d,\"val\":%d,"
                   "\"size\":%d,\"quality\":%d}\n",
                   (unsigned long long)cfg->seed, cfg->n_train, cfg->n_val, cfg->size, cfg->quality);
  if (kd_path_fmt(p, sizeof p, err, "%s/%s", tmp, MARKER) == 0) rc = kd_write_file(p, meta, (size_t)n, err);
done:
  kd_fashion_mnist_free(&src[0]);
  kd_fashion_mnist_free(&src[1]);
  free(scenes[0]);
  free(scenes[1]);
  return rc;
}

/* Directory is empty (only . and ..)? rename() can replace it then. */
static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return 0;
  struct dirent *e;
  int empty = 1;
  while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  closedir(d);
  return empty;
}

int kd_fashion_build(const char *out_dir, const KdFashionCfg *cfg, int replace, KdProgressFn progress,
                     void *user, KdError *err) {
  if (check_cfg(cfg, err)) return -1;
  size_t n = strlen(out_dir);
  while (n > 1 && out_dir[n - 1] == '/') n--;
  char out[4000], tmp[4096], old[4096];
  if (n == 0 || n >= sizeof out) return kd_error(err, "'%s': bad output directory", out_dir);
  memcpy(out, out_dir, n);
  out[n] = 0;
  struct stat st;
  int exists = stat(out, &st) == 0;
  if (exists && !S_ISDIR(st.st_mode)) return kd_error(err, "%s: exists and is not a directory", out);
  int previous = exists && kd_fashion_is_complete(out);
  if (exists && !previous && !dir_is_empty(out))
    return kd_error(err, "%s: directory exists and is not empty; expected a new or empty directory", out);
  if (previous && !replace)
    return kd_error(err, "%s: already holds a fashion-det set; pass --force to replace it", out);
  if (kd_path_fmt(tmp, sizeof tmp, err, "%s.tmp.%ld", out, (long)getpid()) ||
      kd_path_fmt(old, sizeof old, err, "%s.old.%ld", out, (long)getpid()))
    return -1;
  if (kd_remove_tree(tmp, err)) return -1;
  if (build_into(tmp, cfg, progress, user, err)) {
    KdError ignore;
    kd_remove_tree(tmp, &ignore);
    return -1;
  }
  if (previous && rename(out, old) != 0) {
    int e = errno;
    kd_remove_tree(tmp, err);
    return kd_error(err, "%s: cannot move the previous set aside: %s", out, strerror(e));
  }
  if (rename(tmp, out) != 0) {
    int e = errno;
    KdError ignore;
    kd_remove_tree(tmp, &ignore);
    if (previous) rename(old, out);
    /* Someone else finished the same directory first: theirs is as good. */
    if ((e == ENOTEMPTY || e == EEXIST) && kd_fashion_is_complete(out)) return 0;
    return kd_error(err, "%s: cannot rename the finished build into place: %s", out, strerror(e));
  }
  if (previous) kd_remove_tree(old, err);
  return 0;
}

/* ---- the default set ---- */

int kd_default_data_dir(char *buf, size_t len) {
  const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
  int n;
  if (xdg && xdg[0] == '/') n = snprintf(buf, len, "%s/kdscope/fashion-det", xdg);
  else if (home && *home) n = snprintf(buf, len, "%s/.local/share/kdscope/fashion-det", home);
  else return -1;
  return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Removes "<dir>.tmp.<pid>" leftovers whose process is gone. */
static void remove_stale(const char *dir) {
  const char *slash = strrchr(dir, '/');
  if (!slash) return;
  char parent[4096], prefix[512];
  if (kd_path_fmt(parent, sizeof parent, NULL, "%.*s", (int)(slash - dir), dir) ||
      kd_path_fmt(prefix, sizeof prefix, NULL, "%s.tmp.", slash + 1))
    return;
  DIR *d = opendir(parent);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    char *end;
    long pid = strtol(e->d_name + strlen(prefix), &end, 10);
    if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char p[4096];
    KdError ignore;
    if (kd_path_fmt(p, sizeof p, NULL, "%s/%s", parent, e->d_name) == 0) kd_remove_tree(p, &ignore);
  }
  closedir(d);
}

int kd_ensure_default_dataset(char *dir_out, size_t len, KdProgressFn progress, void *user, KdError *err) {
  if (kd_default_data_dir(dir_out, len))
    return kd_error(err, "cannot place the default data set: neither XDG_DATA_HOME nor HOME is set (pass --data DIR)");
  if (kd_fashion_is_complete(dir_out)) return 0;
  char parent[4096];
  if (kd_path_fmt(parent, sizeof parent, err, "%s", dir_out)) return -1;
  char *slash = strrchr(parent, '/');
  if (slash) *slash = 0;
  if (kd_mkdir_p(parent, err)) return -1;
  remove_stale(dir_out);
  KdFashionCfg cfg;
  kd_fashion_cfg_default(&cfg);
  if (kd_fashion_build(dir_out, &cfg, 0, progress, user, err))
    return kd_error_prefix(err, "building the default data set in %s: ", dir_out);
  return 0;
}
