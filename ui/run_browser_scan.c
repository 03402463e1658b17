/* Run directories read for the run browser (run_browser_scan.h). */
#include "run_browser_scan.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "train/control.h"
#include "train/rundir.h"
#include "train/runlog.h"
#include "train/session.h"

static int exists(const char *dir, const char *name) {
  char p[4400];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &st) == 0;
}

int kd_run_dir_is_run(const char *dir) { return exists(dir, "config.json") && exists(dir, "events.jsonl"); }

static long long mtime_of(const char *dir, const char *name) {
  char p[4400];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  if (stat(p, &st)) return 0;
  return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

long long kd_run_summary_stamp(const char *dir) {
  long long a = mtime_of(dir, "events.jsonl"), b = mtime_of(dir, "metrics.jsonl");
  /* The lock: a process that took it or died changes the status with no
   * log line; its pid is rewritten on each take. */
  long long c = kd_control_is_running(dir, NULL);
  return (a > b ? a : b) + c;
}

void kd_run_summary_clear(KdRunSummary *s) {
  kd_config_free(s->cfg);
  kd_runlog_free(s->log);
  memset(s, 0, sizeof *s);
}

void kd_run_summaries_free(KdRunSummary *s, int n) {
  for (int i = 0; s && i < n; i++) kd_run_summary_clear(&s[i]);
  free(s);
}

const char *kd_run_status_label(KdRunStatusKind k) {
  static const char *names[] = {"running", "paused", "finished", "stopped", "failed"};
  return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

int kd_run_summary_resumable(const KdRunSummary *s) {
  return (s->status == KD_RUNST_STOPPED || s->status == KD_RUNST_FAILED) && s->checkpoint > 0;
}

/* The status from the last event that changes it, and the lock. */
static void read_status(KdRunSummary *s, const KdRunLog *log) {
  long pid = 0;
  int live = kd_control_is_running(s->dir, &pid);
  const char *last = NULL, *reason = "";
  int nonfinite = 0; /* a non-finite pause not followed by a resume */
  for (int i = 0; i < kd_runlog_nevents(log); i++) {
    KdRunEvent e = kd_runlog_event(log, i);
    if (!strcmp(e.type, "nonfinite")) nonfinite = 1;
    else if (!strcmp(e.type, "resume") || !strcmp(e.type, "start")) nonfinite = 0;
    if (!strcmp(e.type, "finish") || !strcmp(e.type, "stop") || !strcmp(e.type, "error") || !strcmp(e.type, "pause") ||
        !strcmp(e.type, "resume") || !strcmp(e.type, "start"))
      last = e.type, reason = e.json;
  }
  if (live) {
    s->status = last && !strcmp(last, "pause") ? KD_RUNST_PAUSED : KD_RUNST_RUNNING;
    snprintf(s->detail, sizeof s->detail, "pid %ld%s", pid, nonfinite ? ", paused on a non-finite loss" : "");
  } else if (last && !strcmp(last, "finish")) {
    s->status = KD_RUNST_FINISHED;
    snprintf(s->detail, sizeof s->detail, "finished at step %d", s->steps_done);
  } else if ((last && !strcmp(last, "error")) || nonfinite) {
    s->status = KD_RUNST_FAILED;
    snprintf(s->detail, sizeof s->detail, "%s at step %d", nonfinite ? "non-finite loss" : "error", s->steps_done);
    const char *m = last && !strcmp(last, "error") ? strstr(reason, "\"message\":\"") : NULL;
    if (m) snprintf(s->detail, sizeof s->detail, "error: %.200s", m + 11);
  } else {
    s->status = KD_RUNST_STOPPED;
    snprintf(s->detail, sizeof s->detail, last && !strcmp(last, "stop") ? "stopped at step %d"
                                                                        : "ended at step %d with no stop event (killed?)",
             s->steps_done);
  }
}

/* Everything but the name from the files: the settings afresh, the log
 * incrementally when it is kept. */
static int read_files(KdRunSummary *s, KdError *err) {
  s->mtime_ns = kd_run_summary_stamp(s->dir);
  char path[4400];
  snprintf(path, sizeof path, "%s/config.json", s->dir);
  long seq;
  int nsets;
  KdConfig *cfg = kd_config_new();
  if (!cfg || kd_settings_register_all(cfg) || kd_config_load_file(cfg, path, err) ||
      kd_control_replay_events(s->dir, cfg, &seq, &nsets, err)) {
    kd_config_free(cfg);
    return -1;
  }
  kd_config_free(s->cfg);
  s->cfg = cfg;
  if (!s->log && !(s->log = kd_runlog_open(s->dir, err))) return -1;
  if (kd_runlog_refresh(s->log, err) < 0) return -1;
  const KdRunLog *log = s->log;
  s->distill = *kd_config_str(cfg, "teacher.checkpoint") != 0;
  for (int i = 0; i < kd_runlog_nevents(log); i++) {
    KdRunEvent e = kd_runlog_event(log, i);
    if (!strcmp(e.type, "start")) s->distill = strstr(e.json, "\"mode\":\"train\"") == NULL;
  }
  snprintf(s->methods, sizeof s->methods, "%s", s->distill ? kd_config_str(cfg, "distill.methods") : "");
  s->seed = kd_config_int(cfg, "train.seed");
  s->steps_total = kd_config_int(cfg, "train.steps");
  s->lr = kd_config_num(cfg, "train.lr");
  s->steps_done = kd_runlog_last_step(log);
  KdRunSeries ap = kd_runlog_find(log, "eval.AP");
  s->ap = ap.n ? 100.0 * ap.y[ap.n - 1] : NAN;
  s->ap_step = ap.n ? (int)ap.x[ap.n - 1] : -1;
  KdRunSeries ss = kd_runlog_find(log, "step_s");
  size_t k = ss.n < 20 ? ss.n : 20;
  double sum = 0;
  for (size_t i = ss.n - k; i < ss.n; i++) sum += ss.y[i];
  s->rate = sum > 0 ? (double)k / sum : 0;
  s->checkpoint = kd_rundir_latest_checkpoint(s->dir);
  read_status(s, log);
  /* A run that goes on keeps its log, read on from where it was; the
   * others let it go (a browser over many long runs holds no series). */
  if (s->status != KD_RUNST_RUNNING && s->status != KD_RUNST_PAUSED) kd_runlog_free(s->log), s->log = NULL;
  return 0;
}

int kd_run_summary_read(const char *dir, KdRunSummary *s, KdError *err) {
  if (!kd_run_dir_is_run(dir)) return kd_error(err, "%s: not a run directory (no config.json and events.jsonl)", dir);
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  size_t len = strlen(s->dir);
  while (len > 1 && s->dir[len - 1] == '/') s->dir[--len] = 0;
  const char *base = strrchr(s->dir, '/');
  snprintf(s->name, sizeof s->name, "%s", base ? base + 1 : s->dir);
  if (read_files(s, err)) {
    kd_run_summary_clear(s);
    return -1;
  }
  return 0;
}

int kd_run_summary_update(KdRunSummary *s, KdError *err) {
  if (!kd_run_dir_is_run(s->dir)) return kd_error(err, "%s: not a run directory any more", s->dir);
  return read_files(s, err);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void kd_run_list_free(char **dirs) {
  for (char **d = dirs; d && *d; d++) free(*d);
  free(dirs);
}

int kd_run_list(const char *folder, char ***dirs, int *n, KdError *err) {
  *dirs = NULL;
  *n = 0;
  int cap = 16;
  char **list = calloc((size_t)cap + 1, sizeof *list);
  if (!list) return kd_error(err, "out of memory");
  if (kd_run_dir_is_run(folder)) {
    list[(*n)++] = strdup(folder);
    *dirs = list;
    return 0;
  }
  DIR *d = opendir(folder);
  if (!d) {
    free(list);
    return kd_error(err, "%s: cannot read the folder", folder);
  }
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/%s", folder, e->d_name);
    if (!kd_run_dir_is_run(dir)) continue;
    if (*n == cap) {
      char **grown = realloc(list, ((size_t)cap * 2 + 1) * sizeof *list);
      if (!grown) break;
      list = grown;
      cap *= 2;
    }
    list[(*n)++] = strdup(dir);
    list[*n] = NULL;
  }
  closedir(d);
  qsort(list, (size_t)*n, sizeof *list, by_name);
  *dirs = list;
  return 0;
}

int kd_run_scan(const char *folder, KdRunSummary **out, int *n, int *skipped, KdError *err) {
  *out = NULL;
  *n = 0;
  if (skipped) *skipped = 0;
  char **dirs;
  int nd;
  if (kd_run_list(folder, &dirs, &nd, err)) return -1;
  KdRunSummary *list = calloc((size_t)(nd ? nd : 1), sizeof *list);
  if (!list) {
    kd_run_list_free(dirs);
    return kd_error(err, "out of memory");
  }
  for (int i = 0; i < nd; i++) {
    KdError e2;
    if (kd_run_summary_read(dirs[i], &list[*n], nd == 1 && !strcmp(dirs[i], folder) ? err : &e2) == 0) (*n)++;
    else if (nd == 1 && !strcmp(dirs[i], folder)) {
      kd_run_list_free(dirs);
      free(list);
      return -1;
    } else if (skipped) (*skipped)++;
  }
  kd_run_list_free(dirs);
  *out = list;
  return 0;
}

void kd_run_summary_weights(const KdRunSummary *s, char *buf, size_t len) {
  buf[0] = 0;
  char list[256], key[160], val[64];
  snprintf(list, sizeof list, "%s", s->methods);
  size_t at = 0;
  for (char *save = NULL, *m = strtok_r(list, ",", &save); m && at < len; m = strtok_r(NULL, ",", &save)) {
    while (*m == ' ') m++;
    snprintf(key, sizeof key, "%s.weight", m);
    if (!kd_config_find(s->cfg, key)) continue;
    kd_config_format(s->cfg, key, val, sizeof val);
    at += (size_t)snprintf(buf + at, len - at, "%s%s=%s", at ? " " : "", key, val);
  }
}

double kd_run_summary_num(const KdRunSummary *s, const char *key) {
  const KdParamDesc *d = s->cfg ? kd_config_find(s->cfg, key) : NULL;
  if (!d || d->type == KD_CFG_STRING || d->type == KD_CFG_ENUM) return NAN;
  return kd_config_num(s->cfg, key);
}
