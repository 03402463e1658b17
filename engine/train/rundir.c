#include "train/rundir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "model/safetensors.h"
#include "train/checkpoint.h"
#include "core/fileio.h"

struct KdRunDir {
  char path[3072];
  char events[3200], metrics[3200], csv[3200], ckdir[3200];
};

static void set_paths(KdRunDir *r) {
  snprintf(r->events, sizeof r->events, "%s/events.jsonl", r->path);
  snprintf(r->metrics, sizeof r->metrics, "%s/metrics.jsonl", r->path);
  snprintf(r->csv, sizeof r->csv, "%s/metrics.csv", r->path);
  snprintf(r->ckdir, sizeof r->ckdir, "%s/checkpoints", r->path);
}

static void iso_time(char *buf, size_t len) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static char default_root[2048] = "runs";

void kd_rundir_set_default_root(const char *root) {
  snprintf(default_root, sizeof default_root, "%s", root && *root ? root : "runs");
}

KdRunDir *kd_rundir_create(const char *dir, const KdConfig *cfg, KdError *err) {
  KdRunDir *r = calloc(1, sizeof *r);
  if (!r) return kd_error(err, "out of memory"), NULL;
  if (dir) {
    snprintf(r->path, sizeof r->path, "%s", dir);
  } else {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(r->path, sizeof r->path, "%s/%s-%s", default_root, stamp, kd_config_str(cfg, "name"));
  }
  set_paths(r);
  char cfgpath[3200];
  snprintf(cfgpath, sizeof cfgpath, "%s/config.json", r->path);
  if (kd_path_exists(cfgpath)) {
    kd_error(err, "%s already holds a run (use --resume %s to continue it, or another --out)", r->path, r->path);
    free(r);
    return NULL;
  }
  if (kd_mkdir_p(r->ckdir, err) || kd_config_save(cfg, cfgpath, err)) {
    free(r);
    return NULL;
  }
  return r;
}

/* Rewrites a .jsonl (or .csv with a header) keeping complete lines whose
 * "step" is <= step; a torn last line (no newline) is dropped. */
static int cut_log(const char *path, int step, int csv, int *dropped, KdError *err) {
  size_t len;
  KdError e2;
  char *text = kd_read_text(path, &len, (size_t)1 << 30, &e2);
  if (!text) return 0; /* absent: nothing to cut */
  char *out = malloc(len + 1);
  if (!out) {
    free(text);
    return kd_error(err, "out of memory");
  }
  size_t o = 0;
  int line_no = 0;
  char *p = text;
  while (*p) {
    char *nl = strchr(p, '\n');
    if (!nl) {
      (*dropped)++;
      break;
    }
    int keep = 1;
    if (csv) {
      if (line_no > 0) keep = atoi(p) <= step;
    } else {
      const char *s = strstr(p, "\"step\":");
      keep = s && s < nl && atoi(s + 7) <= step;
    }
    if (keep) {
      memcpy(out + o, p, (size_t)(nl - p) + 1);
      o += (size_t)(nl - p) + 1;
    } else {
      (*dropped)++;
    }
    line_no++;
    p = nl + 1;
  }
  int rc = kd_write_file_atomic(path, out, o, err);
  free(out);
  free(text);
  return rc;
}

int kd_rundir_latest_checkpoint(const char *dir) {
  char ck[3200];
  snprintf(ck, sizeof ck, "%s/checkpoints", dir);
  DIR *d = opendir(ck);
  if (!d) return 0;
  int best = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int step;
    char tail[64];
    if (sscanf(e->d_name, "step_%d.%63s", &step, tail) == 2 && !strcmp(tail, "safetensors") && step > best) {
      char optim[3400];
      snprintf(optim, sizeof optim, "%s/step_%08d.optim.safetensors", ck, step);
      if (kd_path_exists(optim)) best = step;
    }
  }
  closedir(d);
  return best;
}

KdRunDir *kd_rundir_resume(const char *dir, int *step, KdError *err) {
  KdRunDir *r = calloc(1, sizeof *r);
  if (!r) return kd_error(err, "out of memory"), NULL;
  snprintf(r->path, sizeof r->path, "%s", dir);
  set_paths(r);
  char cfgpath[3200];
  snprintf(cfgpath, sizeof cfgpath, "%s/config.json", dir);
  if (!kd_path_exists(cfgpath)) {
    free(r);
    return kd_error(err, "%s: not a run directory (no config.json)", dir), NULL;
  }
  *step = kd_rundir_latest_checkpoint(dir);
  int dropped = 0;
  if (cut_log(r->metrics, *step, 0, &dropped, err) || cut_log(r->events, *step, 0, &dropped, err) ||
      cut_log(r->csv, *step, 1, &dropped, err)) {
    free(r);
    return NULL;
  }
  /* Half-written files of the killed process (its .tmp.<pid> names). */
  char sub[3300];
  int stale = kd_remove_stale_temps(dir);
  snprintf(sub, sizeof sub, "%s/checkpoints", dir);
  stale += kd_remove_stale_temps(sub);
  snprintf(sub, sizeof sub, "%s/snapshots", dir);
  stale += kd_remove_stale_temps(sub);
  char extra[128];
  snprintf(extra, sizeof extra, "\"dropped_lines\":%d,\"stale_temps_removed\":%d", dropped, stale);
  if (kd_rundir_event(r, *step, "resume", extra, err)) {
    free(r);
    return NULL;
  }
  return r;
}

void kd_rundir_free(KdRunDir *r) { free(r); }
const char *kd_rundir_path(const KdRunDir *r) { return r ? r->path : ""; }

int kd_rundir_event(KdRunDir *r, int step, const char *type, const char *extra_json, KdError *err) {
  if (!r) return 0; /* a data-parallel rank other than 0 writes nothing */
  char t[40], line[4096];
  iso_time(t, sizeof t);
  snprintf(line, sizeof line, "{\"step\":%d,\"time\":\"%s\",\"event\":\"%s\"%s%s}", step, t, type, extra_json && *extra_json ? "," : "",
           extra_json ? extra_json : "");
  return kd_append_line(r->events, line, err);
}

static int csv_header(KdRunDir *r, KdError *err) {
  if (kd_path_exists(r->csv)) return 0;
  return kd_append_line(r->csv, "step,name,value", err);
}

int kd_rundir_log_step(KdRunDir *r, const KdStepStats *st, double data_wait_s, KdError *err) {
  if (!r) return 0; /* a data-parallel rank other than 0 writes nothing */
  char line[8192], t[40];
  iso_time(t, sizeof t);
  int n = snprintf(line, sizeof line, "{\"step\":%d,\"time\":\"%s\",\"loss\":%.7g,\"lr\":%.7g,\"grad_norm\":%.7g,\"num_pos\":%d,\"step_s\":%.5f,\"data_wait_s\":%.5f,\"parts\":{",
                   st->step, t, st->loss, st->lr, st->grad_norm, st->num_pos, st->seconds, data_wait_s);
  for (int i = 0; i < st->nparts && n < (int)sizeof line - 128; i++)
    n += snprintf(line + n, sizeof line - (size_t)n, "%s\"%s\":%.7g", i ? "," : "", st->parts[i].name, st->parts[i].value);
  if (st->nstats) n += snprintf(line + n, sizeof line - (size_t)n, "},\"stats\":{");
  for (int i = 0; i < st->nstats && n < (int)sizeof line - 128; i++)
    n += snprintf(line + n, sizeof line - (size_t)n, "%s\"%s\":%.7g", i ? "," : "", st->stats[i].name, st->stats[i].value);
  snprintf(line + n, sizeof line - (size_t)n, "}}");
  if (kd_append_line(r->metrics, line, err) || csv_header(r, err)) return -1;
  /* Tidy CSV: one row per value. */
  char rows[8192];
  n = snprintf(rows, sizeof rows, "%d,loss,%.7g\n%d,lr,%.7g\n%d,grad_norm,%.7g", st->step, st->loss, st->step, st->lr, st->step, st->grad_norm);
  for (int i = 0; i < st->nparts && n < (int)sizeof rows - 128; i++)
    n += snprintf(rows + n, sizeof rows - (size_t)n, "\n%d,%s,%.7g", st->step, st->parts[i].name, st->parts[i].value);
  for (int i = 0; i < st->nstats && n < (int)sizeof rows - 128; i++)
    n += snprintf(rows + n, sizeof rows - (size_t)n, "\n%d,%s,%.7g", st->step, st->stats[i].name, st->stats[i].value);
  return kd_append_line(r->csv, rows, err);
}

int kd_rundir_log_eval(KdRunDir *r, int step, const char *split, const KdEvalResult *res, KdError *err) {
  if (!r) return 0; /* a data-parallel rank other than 0 writes nothing */
  char line[2048], t[40];
  iso_time(t, sizeof t);
  int n = snprintf(line, sizeof line,
                   "{\"step\":%d,\"time\":\"%s\",\"eval\":{\"split\":\"%s\",\"seconds\":%.2f,\"images\":%d,"
                   "\"images_evaluated\":%d,\"images_left_out\":%d",
                   step, t, split, res->seconds, res->images, res->evaluated, res->left_out);
  for (int i = 0; i < KD_COCO_NSTATS; i++)
    n += snprintf(line + n, sizeof line - (size_t)n, ",\"%s\":%.6f", kd_coco_stat_names[i], res->stats[i]);
  snprintf(line + n, sizeof line - (size_t)n, "}}");
  if (kd_append_line(r->metrics, line, err) || csv_header(r, err)) return -1;
  char rows[2048];
  n = 0;
  for (int i = 0; i < KD_COCO_NSTATS; i++)
    n += snprintf(rows + n, sizeof rows - (size_t)n, "%s%d,eval.%s.%s,%.6f", i ? "\n" : "", step, split, kd_coco_stat_names[i],
                  res->stats[i]);
  return kd_append_line(r->csv, rows, err);
}

void kd_rundir_checkpoint_paths(const KdRunDir *r, int step, char *weights, char *optim, size_t len) {
  if (weights) snprintf(weights, len, "%s/step_%08d.safetensors", r->ckdir, step);
  if (optim) snprintf(optim, len, "%s/step_%08d.optim.safetensors", r->ckdir, step);
}

int kd_rundir_save_checkpoint(KdRunDir *r, int step, KdParams *const *weights, int nweights, const KdParams *optim_state,
                              const char *const *meta_kv, KdError *err) {
  if (!r) return 0;
  char w[3400], o[3400];
  kd_rundir_checkpoint_paths(r, step, w, o, sizeof w);
  /* Optimizer state first: a checkpoint counts as complete only when both
   * files exist, and the weights file appears last. */
  if (optim_state && kd_safetensors_save(o, optim_state, meta_kv, err)) return -1;
  if (kd_checkpoint_save(w, weights, nweights, meta_kv, err)) return -1;
  char extra[3600];
  snprintf(extra, sizeof extra, "\"checkpoint\":\"%s\"", w);
  return kd_rundir_event(r, step, "checkpoint", extra, err);
}
