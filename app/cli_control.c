/* kdscope set | pause | resume | stop RUN_DIR: control a run going on in
 * another process through RUN_DIR/control.jsonl (train/control.h,
 * docs/RUNS.md). Values are checked here against the run's own settings,
 * so a typo fails at once; --wait waits until the run has logged the
 * command in events.jsonl. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train/control.h"
#include "core/fileio.h"
#include "train/session.h"
#include "verbs.h"

static const char set_usage[] =
    "usage: kdscope set RUN_DIR key=value... [--wait] [--timeout SECONDS]\n"
    "       kdscope set RUN_DIR --list\n\n"
    "Changes live settings (loss weights, temperatures, learning rate,\n"
    "distill.methods ...) of a run that a headless `kdscope train` or\n"
    "`kdscope distill` is running. Each value is checked against the run's\n"
    "settings here (unknown key, setting that cannot change mid-run, value out\n"
    "of range: exit 1, nothing sent); the run applies it at its next step\n"
    "boundary and logs it in events.jsonl. --wait waits until it has (default\n"
    "timeout 60 s). A run that is not going on applies the change when it is\n"
    "resumed. --list prints the live settings with their current values.\n";

static const char pause_usage[] =
    "usage: kdscope pause RUN_DIR [--wait] [--timeout SECONDS]\n\n"
    "Pauses a run going on in another process after its current step.\n"
    "`kdscope resume RUN_DIR` continues it.\n";
static const char resume_usage[] =
    "usage: kdscope resume RUN_DIR [--wait] [--timeout SECONDS]\n\n"
    "Continues a paused run going on in another process (to restart a run\n"
    "whose process ended, use `kdscope train|distill --resume RUN_DIR`).\n";
static const char stop_usage[] =
    "usage: kdscope stop RUN_DIR [--wait] [--timeout SECONDS]\n\n"
    "Stops a run going on in another process: it finishes its current step,\n"
    "writes a checkpoint and exits; `--resume RUN_DIR` continues it later.\n"
    "--wait waits until the checkpoint is written.\n";

typedef struct Args {
  const char *dir;
  const char *kvs[64];
  int nkv, wait, list;
  double timeout;
} Args;

/* 0 ok, 1 user error (printed), 2 --help printed. */
static int parse(int argc, char **argv, const char *verb, const char *usage, int takes_kv, Args *a) {
  memset(a, 0, sizeof *a);
  a->timeout = 60;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(usage, stdout);
      return 2;
    } else if (!strcmp(o, "--wait")) {
      a->wait = 1;
    } else if (!strcmp(o, "--list") && takes_kv) {
      a->list = 1;
    } else if (!strcmp(o, "--timeout") && i + 1 < argc) {
      char *end;
      a->timeout = strtod(argv[++i], &end);
      if (*end || !(a->timeout > 0)) {
        fprintf(stderr, "kdscope %s: --timeout expects a positive number of seconds, got '%s'\n", verb, argv[i]);
        return 1;
      }
    } else if (o[0] == '-') {
      fprintf(stderr, "kdscope %s: unknown or incomplete option '%s' (see --help)\n", verb, o);
      return 1;
    } else if (!a->dir) {
      a->dir = o;
    } else if (takes_kv && a->nkv < 64) {
      a->kvs[a->nkv++] = o;
    } else {
      fprintf(stderr, "kdscope %s: unexpected argument '%s' (see --help)\n", verb, o);
      return 1;
    }
  }
  if (!a->dir) {
    fprintf(stderr, "kdscope %s: RUN_DIR is required (see --help)\n", verb);
    return 1;
  }
  if (takes_kv && !a->list && !a->nkv) {
    fprintf(stderr, "kdscope %s: give at least one key=value (or --list; see --help)\n", verb);
    return 1;
  }
  return 0;
}

/* The run's settings: every descriptor, the run's config.json, and (with
 * replay) the changes logged since. */
static KdConfig *run_config(const char *dir, int replay, const char *verb) {
  char path[4200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (!kd_path_exists(path)) {
    fprintf(stderr, "kdscope %s: %s is not a run directory (no config.json)\n", verb, dir);
    return NULL;
  }
  KdConfig *c = kd_config_new();
  KdError err;
  long seq;
  int n;
  if (!c || kd_settings_register_all(c) || kd_config_load_file(c, path, &err) ||
      (replay && kd_control_replay_events(dir, c, &seq, &n, &err))) {
    fprintf(stderr, "kdscope %s: %s\n", verb, c ? err.msg : "out of memory");
    kd_config_free(c);
    return NULL;
  }
  return c;
}

static void list_live(KdConfig *c) {
  for (int i = 0; i < kd_config_count(c); i++) {
    const KdParamDesc *d = kd_config_desc(c, i);
    if (!d->live) continue;
    char v[1024];
    kd_config_format(c, d->key, v, sizeof v);
    if (d->type == KD_CFG_FLOAT || d->type == KD_CFG_INT)
      printf("%-28s %-12s [%g, %g]%s  %s\n", d->key, v, d->min, d->max, d->log_scale ? " log" : "", d->label);
    else
      printf("%-28s %-12s %s\n", d->key, v, d->label);
  }
}

/* The events.jsonl line naming control seq, into line; 1 found, 0 not yet. */
static int find_event(const char *dir, long seq, char *line, size_t len) {
  char path[4200], pat[48];
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  snprintf(pat, sizeof pat, "\"seq\":%ld}", seq);
  size_t n;
  char *text = kd_read_text(path, &n, (size_t)1 << 30, NULL);
  if (!text) return 0;
  char *hit = strstr(text, pat);
  if (hit) {
    char *start = hit;
    while (start > text && start[-1] != '\n') start--;
    char *end = strchr(hit, '\n');
    size_t l = end ? (size_t)(end - start) : strlen(start);
    if (l >= len) l = len - 1;
    memcpy(line, start, l);
    line[l] = 0;
  }
  free(text);
  return hit != NULL;
}

static void describe(const char *line) {
  cJSON *j = cJSON_Parse(line);
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step"), *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "key"), *val = cJSON_GetObjectItemCaseSensitive(j, "value");
  const cJSON *old = cJSON_GetObjectItemCaseSensitive(j, "old"), *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
  const cJSON *why = cJSON_GetObjectItemCaseSensitive(j, "reason");
  int s = cJSON_IsNumber(step) ? step->valueint : -1;
  const char *e = cJSON_IsString(ev) ? ev->valuestring : "?";
  if (!strcmp(e, "set") && cJSON_IsString(key) && cJSON_IsString(val))
    printf("%s = %s (was %s) from step %d on\n", key->valuestring, val->valuestring, cJSON_IsString(old) ? old->valuestring : "?", s + 1);
  else if (!strcmp(e, "set_refused"))
    printf("refused by the run: %s\n", cJSON_IsString(msg) ? msg->valuestring : "?");
  else if (!strcmp(e, "control_ignored"))
    printf("ignored by the run: %s\n", cJSON_IsString(why) ? why->valuestring : "?");
  else
    printf("%s at step %d\n", e, s);
  cJSON_Delete(j);
}

/* Waits until the run logs the last command; 0, or 1 (printed). */
static int wait_applied(const char *dir, const KdControlCmd *cmds, int n, double timeout, const char *verb) {
  struct timespec t0, now, nap = {0, 50 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char line[8192];
  for (;;) {
    int all = 1;
    for (int i = 0; i < n && all; i++) all = find_event(dir, cmds[i].seq, line, sizeof line);
    if (all) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!kd_control_is_running(dir, NULL)) {
      fprintf(stderr, "kdscope %s: the process running %s ended before it applied the command\n", verb, dir);
      return 1;
    }
    if ((double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec) > timeout) {
      fprintf(stderr, "kdscope %s: %s did not apply the command within %g s (busy evaluating?); it stays queued\n", verb, dir, timeout);
      return 1;
    }
    nanosleep(&nap, NULL);
  }
  int refused = 0;
  for (int i = 0; i < n; i++) {
    find_event(dir, cmds[i].seq, line, sizeof line);
    describe(line);
    refused |= strstr(line, "\"event\":\"set_refused\"") != NULL;
  }
  return refused;
}

static int control(int argc, char **argv, const char *verb, const char *usage, KdControlKind kind) {
  Args a;
  int rc = parse(argc, argv, verb, usage, kind == KD_CTL_SET, &a);
  if (rc) return rc == 2 ? 0 : 1;
  KdConfig *c = run_config(a.dir, a.list, verb);
  if (!c) return 1;
  if (a.list) {
    list_live(c);
    kd_config_free(c);
    return 0;
  }
  KdControlCmd cmds[64];
  int n = 0;
  KdError err;
  if (kind == KD_CTL_SET) {
    for (int i = 0; i < a.nkv; i++, n++) {
      const char *eq = strchr(a.kvs[i], '=');
      memset(&cmds[n], 0, sizeof cmds[n]);
      cmds[n].kind = KD_CTL_SET;
      if (!eq || eq == a.kvs[i] || (size_t)(eq - a.kvs[i]) >= sizeof cmds[n].key) {
        fprintf(stderr, "kdscope set: expected key=value, got '%s'\n", a.kvs[i]);
        kd_config_free(c);
        return 1;
      }
      memcpy(cmds[n].key, a.kvs[i], (size_t)(eq - a.kvs[i]));
      /* All or nothing: a typo in the third value sends none. */
      if (kd_control_check_set(c, cmds[n].key, eq + 1, cmds[n].value, sizeof cmds[n].value, &err)) {
        fprintf(stderr, "kdscope set: %s\n", err.msg);
        kd_config_free(c);
        return 1;
      }
    }
  } else {
    memset(&cmds[0], 0, sizeof cmds[0]);
    cmds[n++].kind = kind;
  }
  kd_config_free(c);
  long pid = 0;
  int running = kd_control_is_running(a.dir, &pid);
  if (!running && (kind != KD_CTL_SET || a.wait)) {
    fprintf(stderr, "kdscope %s: no process is running %s (start it with `kdscope train|distill --resume %s`)\n", verb, a.dir, a.dir);
    return 1;
  }
  if (kd_control_append(a.dir, cmds, n, &err)) {
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    return 1;
  }
  for (int i = 0; i < n && !a.wait; i++) {
    if (kind == KD_CTL_SET) printf("%s = %s sent (seq %ld)\n", cmds[i].key, cmds[i].value, cmds[i].seq);
    else printf("%s sent (seq %ld)\n", verb, cmds[i].seq);
  }
  if (!running) fprintf(stderr, "kdscope %s: note: no process is running %s; the change applies when it is resumed\n", verb, a.dir);
  return a.wait ? wait_applied(a.dir, cmds, n, a.timeout, verb) : 0;
}

int kd_cli_set(int argc, char **argv) { return control(argc, argv, "set", set_usage, KD_CTL_SET); }
int kd_cli_pause(int argc, char **argv) { return control(argc, argv, "pause", pause_usage, KD_CTL_PAUSE); }
int kd_cli_resume(int argc, char **argv) { return control(argc, argv, "resume", resume_usage, KD_CTL_RESUME); }
int kd_cli_stop(int argc, char **argv) { return control(argc, argv, "stop", stop_usage, KD_CTL_STOP); }
