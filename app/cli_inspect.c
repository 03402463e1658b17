/* The config of an inspect session (`kdscope inspect`, `kdscope window
 * --student S [--teacher T]`): two models as they are over a data set, no
 * training. A model is a directory: `kdscope import`'s (config.json +
 * model.safetensors) or a run directory (config.json + its latest
 * checkpoint). */
#include "inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "train/rundir.h"
#include "train/session.h"

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int kd_cli_model_source(const char *dir, char *config, char *ckpt, size_t len, KdError *err) {
  struct stat st;
  if (!dir || stat(dir, &st) || !S_ISDIR(st.st_mode))
    return kd_error(err, "%s: not a directory (expected kdscope import's output: config.json + model.safetensors, "
                         "or a run directory with a checkpoint)", dir ? dir : "(none)");
  char *abs = realpath(dir, NULL);
  if (!abs) return kd_error(err, "%s: cannot resolve the path", dir);
  int rc = 0;
  snprintf(config, len, "%s/config.json", abs);
  snprintf(ckpt, len, "%s/model.safetensors", abs);
  if (!is_file(config)) {
    rc = kd_error(err, "%s: no config.json", abs);
  } else if (!is_file(ckpt)) {
    int step = kd_rundir_latest_checkpoint(abs);
    if (step <= 0) rc = kd_error(err, "%s: neither model.safetensors nor a checkpoint in checkpoints/", abs);
    else snprintf(ckpt, len, "%s/checkpoints/step_%08d.safetensors", abs, step);
  }
  free(abs);
  return rc;
}

/* What defines a model and what it is evaluated at: taken from the
 * student's own config. Everything else (methods, their settings) is the
 * inspect config's. */
static int student_key(const char *k) {
  static const char *const prefixes[] = {"model.", "rpn.", "roi.", "anchor.", "gfl.", "atss.", "loss.", "eval."};
  static const char *const keys[] = {"data.size", "data.resize", "data.min_size", "data.max_size"};
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (!strncmp(k, prefixes[i], strlen(prefixes[i]))) return 1;
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!strcmp(k, keys[i])) return 1;
  return 0;
}

static int take_student(KdConfig *c, const char *path, int with_data, KdError *err) {
  KdConfig *s = kd_config_new();
  if (!s || kd_settings_register_all(s)) {
    kd_config_free(s);
    return kd_error(err, "out of memory");
  }
  int rc = kd_config_load_file(s, path, err);
  char v[4200];
  for (int i = 0; !rc && i < kd_config_count(s); i++) {
    const char *k = kd_config_desc(s, i)->key;
    if (!student_key(k) && !(with_data && !strcmp(k, "data.dir"))) continue;
    kd_config_format(s, k, v, sizeof v);
    if (!strcmp(k, "data.dir") && !*v) continue;
    rc = kd_config_set(c, k, v, err);
  }
  kd_config_free(s);
  if (rc) kd_error_prefix(err, "%s: ", path);
  return rc;
}

KdConfig *kd_cli_inspect_config(const KdTrainArgs *a, const char *teacher, const char *student, const char *verb) {
  KdError err;
  char scfg[4200], sck[4200], tcfg[4200], tck[4200];
  if (!student) {
    fprintf(stderr, "kdscope %s: --student DIR is required (kdscope import's output or a run directory)\n", verb);
    return NULL;
  }
  if (kd_cli_model_source(student, scfg, sck, sizeof scfg, &err) ||
      (teacher && kd_cli_model_source(teacher, tcfg, tck, sizeof tcfg, &err))) {
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    return NULL;
  }
  if (a->resume) {
    fprintf(stderr, "kdscope %s: an inspect session opens models, not a run: --resume does not apply\n", verb);
    return NULL;
  }
  /* The base config without --data and --set: they go on last. */
  KdTrainArgs base = *a;
  base.data = NULL;
  base.nsets = 0;
  KdConfig *c = kd_cli_load_config(&base, "configs/distill.json", 1, verb);
  if (!c) return NULL;
  int rc = take_student(c, scfg, !a->data, &err) || kd_config_set(c, "train.init_checkpoint", sck, &err) ||
           kd_config_set(c, "name", "inspect", &err);
  if (!rc && teacher) rc = kd_config_set(c, "teacher.config", tcfg, &err) || kd_config_set(c, "teacher.checkpoint", tck, &err);
  if (!rc && !*kd_config_str(c, "teacher.checkpoint")) rc = kd_error(&err, "--teacher DIR is required: the config names no teacher");
  if (!rc && a->data) rc = kd_config_set(c, "data.dir", a->data, &err);
  for (int i = 0; !rc && i < a->nsets; i++) rc = kd_config_set_kv(c, a->sets[i], &err);
  if (rc) {
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    kd_config_free(c);
    return NULL;
  }
  return c;
}
