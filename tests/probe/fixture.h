/* Helpers for probe tests: a temp directory removed at exit, a tiny
 * fashion-det set, a random teacher saved as config + checkpoint, and a
 * distillation session over them. Header-only; include once per test. */
#ifndef KD_TEST_PROBE_FIXTURE_H
#define KD_TEST_PROBE_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/fashion.h"
#include "core/fileio.h"
#include "distill/method.h"
#include "model/safetensors.h"
#include "train/session.h"

#include "fx_tmpdir.h"

/* Model sizes of a fixture: teacher and student share the FPN width so
 * every feature method applies. */
typedef struct FxModels {
  int t_depth, t_width, s_depth, s_width, fpn, head_convs, size, batch;
} FxModels;

static const FxModels fx_tiny = {10, 8, 10, 8, 16, 1, 64, 4};

/* fashion-det in DIR/data: n_train/n_val images of side size. Returns 77
 * (meson's skip) when Fashion-MNIST is not installed, 1 on failure. */
static inline int fx_build_data(int n_train, int n_val, int size) {
  KdFashionCfg c;
  KdError e;
  kd_fashion_cfg_default(&c);
  c.n_train = n_train, c.n_val = n_val, c.size = size, c.seed = 3;
  KdFashionMnist src;
  if (kd_fashion_mnist_load(NULL, "t10k", &src, &e)) {
    printf("skip: %s\n", e.msg);
    return 77;
  }
  kd_fashion_mnist_free(&src);
  if (kd_fashion_build(fx_path("data"), &c, 0, NULL, NULL, &e)) {
    fprintf(stderr, "building fashion-det: %s\n", e.msg);
    return 1;
  }
  return 0;
}

static inline int fx_set(KdConfig *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int fx_set(KdConfig *c, const char *key, const char *fmt, ...) {
  char v[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  KdError e;
  if (kd_config_set(c, key, v, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return -1;
  }
  return 0;
}

/* DIR/teacher.json = json + DIR/teacher.safetensors (random weights). */
static inline int fx_write_teacher_json(const char *json) {
  KdError e;
  if (kd_write_file(fx_path("teacher.json"), json, strlen(json), &e)) return fprintf(stderr, "%s\n", e.msg), -1;
  KdModel *t = kd_model_from_files(fx_path("teacher.json"), NULL, NULL, &e);
  if (!t || kd_safetensors_save(fx_path("teacher.safetensors"), kd_model_params(t), NULL, &e)) {
    fprintf(stderr, "teacher: %s\n", e.msg);
    kd_model_free(t);
    return -1;
  }
  kd_model_free(t);
  return 0;
}

/* The fixture's RetinaNet teacher (random weights, seed 7). */
static inline int fx_write_teacher(const FxModels *m) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"model\": {\"depth\": %d, \"width\": %d, \"fpn_channels\": %d, \"head_convs\": %d, \"num_classes\": 10},"
           " \"data\": {\"size\": %d}, \"train\": {\"seed\": 7}}",
           m->t_depth, m->t_width, m->fpn, m->head_convs, m->size);
  return fx_write_teacher_json(json);
}

/* Every registered method the fixture's one-stage RetinaNet pair can feed, comma-separated. */
static inline const char *fx_all_methods(void) {
  static char buf[512];
  buf[0] = 0;
  for (int i = 0; i < kd_method_count(); i++) {
    /* The fixture's pair is one-stage RetinaNet: the methods of two-stage pairs
     * (HEAD, DeFeat's RoI KD) are tested with one (tests/train/test_head_run.c),
     * the GFL-only ones (LD) with a GFL pair. */
    if (kd_method_at(i)->needs & (KD_NEED_ROIS | KD_NEED_STUDENT_ROIS | KD_NEED_DIST)) continue;
    size_t o = strlen(buf);
    snprintf(buf + o, sizeof buf - o, "%s%s", o ? "," : "", kd_method_at(i)->name);
  }
  return buf;
}

/* A config for the fixture's student distilled from its teacher. */
static inline KdConfig *fx_config(const FxModels *m, const char *methods) {
  KdConfig *c = kd_config_new();
  if (!c || kd_settings_register_all(c) || fx_set(c, "model.depth", "%d", m->s_depth) ||
      fx_set(c, "model.width", "%d", m->s_width) || fx_set(c, "model.fpn_channels", "%d", m->fpn) ||
      fx_set(c, "model.head_convs", "%d", m->head_convs) || fx_set(c, "data.dir", "%s", fx_path("data")) ||
      fx_set(c, "data.size", "%d", m->size) || fx_set(c, "train.batch", "%d", m->batch) ||
      fx_set(c, "train.steps", "%d", 1000) || fx_set(c, "train.warmup_steps", "%d", 0) ||
      fx_set(c, "train.lr", "%g", 0.01) || fx_set(c, "distill.methods", "%s", methods) ||
      fx_set(c, "teacher.config", "%s", fx_path("teacher.json")) ||
      fx_set(c, "teacher.checkpoint", "%s", fx_path("teacher.safetensors"))) {
    kd_config_free(c);
    return NULL;
  }
  return c;
}

static inline KdSession *fx_session(KdConfig *c, const char *run) {
  KdSessionOpts o = {.out_dir = fx_path(run), .distill = 1};
  KdError e;
  KdSession *s = kd_session_open(c, &o, &e);
  if (!s) fprintf(stderr, "session %s: %s\n", run, e.msg);
  return s;
}

#endif
