/* Shared by the run tests: a tiny fashion-det set built into a temp
 * directory, a tiny detector config over it, and small readers of a run
 * directory's logs. Header-only (static functions). */
#ifndef KD_TEST_RUN_FIXTURE_H
#define KD_TEST_RUN_FIXTURE_H

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data/fashion.h"
#include "core/fileio.h"
#include "model/safetensors.h"
#include "train/run.h"
#include "train/session.h"

static inline int fixture_have_source(void) {
  const char *d = getenv("KD_FASHION_MNIST_DIR");
  char p[4096];
  snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", d && *d ? d : KD_FASHION_DEFAULT_SOURCE);
  return access(p, R_OK) == 0;
}

/* A fresh temp directory (mkdtemp) into buf; -1 on failure. */
static inline int fixture_tmpdir(char *buf, size_t len, const char *tag) {
  const char *t = getenv("TMPDIR");
  snprintf(buf, len, "%s/kd-%s-XXXXXX", t && *t ? t : "/tmp", tag);
  return mkdtemp(buf) ? 0 : -1;
}

static inline void fixture_rmrf(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
}

/* A fashion-det set of n_train + n_val images at size px into dir/data. */
static inline int fixture_build(const char *dir, char *data, size_t len, int n_train, int n_val, int size, uint64_t seed) {
  snprintf(data, len, "%s/data", dir);
  KdFashionCfg fc;
  kd_fashion_cfg_default(&fc);
  fc.n_train = n_train;
  fc.n_val = n_val;
  fc.size = size;
  fc.seed = seed;
  KdError err;
  if (kd_fashion_build(data, &fc, 0, NULL, NULL, &err)) {
    fprintf(stderr, "fixture: %s\n", err.msg);
    return -1;
  }
  return 0;
}

/* 64 train + 16 val images at 64 px into dir/data. */
static inline int fixture_data(const char *dir, char *data, size_t len) { return fixture_build(dir, data, len, 64, 16, 64, 5); }

/* Every setting registered, the tiny detector and a short schedule. */
static inline KdConfig *fixture_config(const char *data, int steps) {
  KdConfig *c = kd_config_new();
  if (!c || kd_settings_register_all(c)) return NULL;
  char buf[64];
  snprintf(buf, sizeof buf, "%d", steps);
  const char *kv[][2] = {{"model.depth", "10"}, {"model.width", "8"}, {"model.fpn_channels", "16"}, {"model.head_convs", "1"},
                         {"data.size", "64"}, {"train.batch", "2"}, {"train.steps", buf}, {"train.log_every", "1"},
                         {"train.eval_every", "0"}, {"train.checkpoint_every", "1000000"}, {"train.eval_images", "4"},
                         {"train.warmup_steps", "4"}, {"data.dir", data}, {"distill.methods", "fitnet"}};
  KdError err;
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
    if (kd_config_set(c, kv[i][0], kv[i][1], &err)) {
      fprintf(stderr, "fixture: %s\n", err.msg);
      kd_config_free(c);
      return NULL;
    }
  return c;
}

/* A teacher for distillation runs: dir/teacher.json (the fixture's tiny
 * detector, FIXTURE_TEACHER_JSON, or any config text) and
 * dir/teacher.safetensors, a checkpoint of a fresh model of that config;
 * their paths into json and ckpt. -1 on failure (printed). */
#define FIXTURE_TEACHER_JSON "{\"model\": {\"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"head_convs\": 1}}\n"

/* A tiny Faster R-CNN teacher (HEAD's tests): P2..P6, small RPN and RoI head. */
#define FIXTURE_FRCNN_TEACHER_JSON                                                                                         \
  "{\"model\": {\"head\": \"faster_rcnn\", \"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"fpn_first_level\": 2," \
  " \"extra_levels\": 1, \"extra_from\": \"pool\"},"                                                                      \
  " \"rpn\": {\"anchor_sizes\": \"8,16,32,64,128\", \"pre_nms_top_n_train\": 200, \"post_nms_top_n_train\": 100,"     \
  " \"pre_nms_top_n_test\": 100, \"post_nms_top_n_test\": 50},"                                                           \
  " \"roi\": {\"representation\": 32, \"batch_per_image\": 32, \"canonical_scale\": 56}}\n"

/* The same for a teacher of config text (a JSON document). */
static inline int fixture_teacher_of(const char *dir, const char *text, char *json, size_t jlen, char *ckpt, size_t clen) {
  snprintf(json, jlen, "%s/teacher.json", dir);
  snprintf(ckpt, clen, "%s/teacher.safetensors", dir);
  FILE *f = fopen(json, "w");
  if (!f) return fprintf(stderr, "fixture: cannot write %s\n", json), -1;
  fputs(text, f);
  fclose(f);
  KdConfig *tcfg = NULL;
  KdError err;
  KdModel *tm = kd_model_from_files(json, NULL, &tcfg, &err);
  int rc = tm && kd_safetensors_save(ckpt, kd_model_params(tm), NULL, &err) == 0 ? 0 : -1;
  if (rc) fprintf(stderr, "fixture: teacher: %s\n", err.msg);
  kd_model_free(tm);
  kd_config_free(tcfg);
  return rc;
}

static inline int fixture_teacher(const char *dir, char *json, size_t jlen, char *ckpt, size_t clen) {
  return fixture_teacher_of(dir, FIXTURE_TEACHER_JSON, json, jlen, ckpt, clen);
}

/* A real distillation of `methods` for `steps` steps in a run directory
 * dir/run (into out): the fixture's data, a teacher of config text
 * teacher_json, nkv more settings kv of the student's run, through a KdRun
 * whose after_step hook is given; *run holds the run while it goes (so
 * the hook can set live values). 0 when it finished every step, else -1
 * (printed). */
static inline int fixture_method_run_of(const char *dir, const char *teacher_json, const char *methods,
                                        const char *const (*kv)[2], int nkv, int steps, KdRunAfterStep hook, void *user,
                                        KdRun **run, char *out, size_t olen) {
  char data[4200], teacher[4300], ckpt[4400];
  if (fixture_data(dir, data, sizeof data) ||
      fixture_teacher_of(dir, teacher_json, teacher, sizeof teacher, ckpt, sizeof ckpt))
    return -1;
  KdError err = {0};
  KdConfig *cfg = fixture_config(data, steps);
  int rc = cfg && kd_config_set(cfg, "teacher.config", teacher, &err) == 0 &&
                   kd_config_set(cfg, "teacher.checkpoint", ckpt, &err) == 0 &&
                   kd_config_set(cfg, "distill.methods", methods, &err) == 0
               ? 0
               : -1;
  for (int i = 0; rc == 0 && i < nkv; i++) rc = kd_config_set(cfg, kv[i][0], kv[i][1], &err);
  if (rc) fprintf(stderr, "fixture: %s\n", err.msg);
  snprintf(out, olen, "%s/run", dir);
  KdRunOpts ro = {.session = {.out_dir = out, .distill = 1}, .after_step = hook, .after_step_user = user};
  KdRun *r = rc ? NULL : kd_run_new(cfg, &ro, &err);
  *run = r;
  KdRunStatus st = {0};
  if (r && kd_run_start(r, &err) == 0 && kd_run_wait(r) == 0) kd_run_status(r, &st);
  if (st.state != KD_RUN_FINISHED || st.step != steps) {
    fprintf(stderr, "fixture: the %s run: %s (state %s, step %d)\n", methods, err.msg[0] ? err.msg : st.message,
            kd_run_state_name(st.state), st.step);
    rc = -1;
  }
  *run = NULL;
  kd_run_free(r);
  kd_config_free(cfg);
  return rc;
}

/* fixture_method_run_of with the fixture's RetinaNet teacher, no extra settings. */
static inline int fixture_method_run(const char *dir, const char *methods, int steps, KdRunAfterStep hook, void *user,
                                     KdRun **run, char *out, size_t olen) {
  return fixture_method_run_of(dir, FIXTURE_TEACHER_JSON, methods, NULL, 0, steps, hook, user, run, out, olen);
}

/* The complete lines of RUN/name parsed as JSON, in order; *n lines.
 * A line that is not JSON becomes NULL (callers check). */
static inline cJSON **fixture_jsonl(const char *run, const char *name, int *n) {
  char path[8400];
  snprintf(path, sizeof path, "%s/%s", run, name);
  *n = 0;
  size_t len;
  char *text = kd_read_text(path, &len, (size_t)1 << 30, NULL);
  if (!text) return NULL;
  int cap = 16;
  cJSON **v = malloc((size_t)cap * sizeof *v);
  for (char *p = text; v && *p;) {
    char *nl = strchr(p, '\n');
    if (!nl) nl = p + strlen(p);
    if (*n == cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
    if (!v) break;
    v[(*n)++] = cJSON_ParseWithLength(p, (size_t)(nl - p));
    p = *nl ? nl + 1 : nl;
  }
  free(text);
  return v;
}

static inline void fixture_jsonl_free(cJSON **v, int n) {
  for (int i = 0; i < n; i++) cJSON_Delete(v[i]);
  free(v);
}

static inline const char *fixture_str(const cJSON *o, const char *k) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(x) ? x->valuestring : NULL;
}

static inline double fixture_num(const cJSON *o, const char *k) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static inline int fixture_is_event(const cJSON *o, const char *type) {
  const char *e = o ? fixture_str(o, "event") : NULL;
  return e && !strcmp(e, type);
}

/* The last step RUN/metrics.jsonl logged (0 before the first). */
static inline int fixture_last_step(const char *run) {
  int n, s = 0;
  cJSON **m = fixture_jsonl(run, "metrics.jsonl", &n);
  for (int i = 0; i < n; i++)
    if (m[i] && cJSON_GetObjectItemCaseSensitive(m[i], "parts")) s = (int)fixture_num(m[i], "step");
  fixture_jsonl_free(m, n);
  return s;
}

/* How many events of type RUN/events.jsonl holds. */
static inline int fixture_count_events(const char *run, const char *type) {
  int n, c = 0;
  cJSON **ev = fixture_jsonl(run, "events.jsonl", &n);
  for (int i = 0; i < n; i++) c += fixture_is_event(ev[i], type);
  fixture_jsonl_free(ev, n);
  return c;
}

static inline void fixture_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

#endif
