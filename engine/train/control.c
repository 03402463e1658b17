#include "train/control.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "distill/distiller.h"
#include "core/fileio.h"

#define MAX_LINE (64 * 1024)

const char *kd_control_kind_name(KdControlKind k) {
  switch (k) {
  case KD_CTL_SET: return "set";
  case KD_CTL_PAUSE: return "pause";
  case KD_CTL_RESUME: return "resume";
  case KD_CTL_STOP: return "stop";
  }
  return "?";
}

static int kind_from_name(const char *s, KdControlKind *k) {
  static const KdControlKind all[] = {KD_CTL_SET, KD_CTL_PAUSE, KD_CTL_RESUME, KD_CTL_STOP};
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, kd_control_kind_name(all[i]))) return *k = all[i], 0;
  return -1;
}

static void path_in(char *buf, size_t len, const char *dir, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

int kd_control_check_set(KdConfig *cfg, const char *key, const char *value, char *canon, size_t len, KdError *err) {
  return kd_control_check_set_avail(cfg, NULL, key, value, canon, len, err);
}

int kd_control_check_set_avail(KdConfig *cfg, const KdDistillAvail *avail, const char *key, const char *value, char *canon,
                               size_t len, KdError *err) {
  const KdParamDesc *d = kd_config_find(cfg, key);
  if (!d) {
    const char *near = kd_config_suggest(cfg, key);
    if (near) return kd_error(err, "unknown setting '%s' (did you mean '%s'?)", key, near);
    return kd_error(err, "unknown setting '%s' (`kdscope set RUN_DIR --list` shows the live ones)", key);
  }
  if (!d->live)
    return kd_error(err, "%s cannot change while a run goes on (it is not a live setting; `kdscope set RUN_DIR --list` shows the live ones)", key);
  if (!strcmp(key, "distill.methods")) { /* before storing: a refused value must not stay in cfg */
    int n = kd_method_count();
    int *active = calloc((size_t)(n > 0 ? n : 1), sizeof *active);
    if (!active) return kd_error(err, "out of memory");
    int rc = kd_distill_parse_methods(value, active, err);
    free(active);
    if (rc) return kd_error_prefix(err, "distill.methods: ");
  }
  char old[2048]; /* exactly, to put it back */
  if (d->type == KD_CFG_FLOAT || d->type == KD_CFG_INT) snprintf(old, sizeof old, "%.17g", kd_config_num(cfg, key));
  else kd_config_format(cfg, key, old, (int)sizeof old);
  if (kd_config_set(cfg, key, value, err)) return -1;
  if (avail && kd_distill_check(cfg, kd_config_str(cfg, "distill.methods"), avail, err)) {
    kd_config_set(cfg, key, old, NULL); /* refused: cfg stays as it was */
    return -1;
  }
  if (canon) kd_config_format(cfg, key, canon, (int)len);
  return 0;
}

static void iso_time(char *buf, size_t len) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* Largest "seq" in the file behind fd (read whole: control files are
 * small); *torn when it does not end in '\n'. -1 on a read error. */
static long max_seq(int fd, int *torn) {
  struct stat st;
  *torn = 0;
  if (fstat(fd, &st)) return -1;
  size_t size = (size_t)st.st_size;
  char *buf = malloc(size + 1);
  if (!buf) return -1;
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  buf[got] = 0;
  long best = 0;
  for (const char *s = buf; (s = strstr(s, "\"seq\":")); s += 6) {
    long v = strtol(s + 6, NULL, 10);
    if (v > best) best = v;
  }
  *torn = got > 0 && buf[got - 1] != '\n';
  free(buf);
  return best;
}

int kd_control_append(const char *run_dir, KdControlCmd *cmds, int n, KdError *err) {
  char path[4096];
  path_in(path, sizeof path, run_dir, "control.jsonl");
  size_t cap = (size_t)n * 2400 + 8;
  char *out = malloc(cap);
  if (!out) return kd_error(err, "out of memory");
  int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(out);
    return kd_error(err, "%s: cannot open for append: %s", path, strerror(errno));
  }
  /* The lock orders writers: seq numbers are unique and increase down the file. */
  while (flock(fd, LOCK_EX) && errno == EINTR) {
  }
  int torn;
  long seq = max_seq(fd, &torn);
  if (seq < 0) {
    flock(fd, LOCK_UN);
    close(fd);
    free(out);
    return kd_error(err, "%s: cannot read", path);
  }
  char t[40];
  iso_time(t, sizeof t);
  size_t o = 0;
  if (torn) out[o++] = '\n'; /* a writer died mid-line: start ours clean */
  for (int i = 0; i < n; i++) {
    cmds[i].seq = ++seq;
    o += (size_t)snprintf(out + o, cap - o, "{\"seq\":%ld,\"time\":\"%s\",\"cmd\":\"%s\"", seq, t, kd_control_kind_name(cmds[i].kind));
    if (cmds[i].kind == KD_CTL_SET) {
      char k[300], v[2100];
      kd_json_escape(cmds[i].key, k, sizeof k);
      kd_json_escape(cmds[i].value, v, sizeof v);
      o += (size_t)snprintf(out + o, cap - o, ",\"key\":\"%s\",\"value\":\"%s\"%s", k, v, cmds[i].undo ? ",\"undo\":true" : "");
    }
    o += (size_t)snprintf(out + o, cap - o, ",\"pid\":%ld}\n", (long)getpid());
  }
  ssize_t w = write(fd, out, o);
  int e = errno;
  flock(fd, LOCK_UN);
  close(fd);
  free(out);
  if (w != (ssize_t)o) return kd_error(err, "%s: append failed: %s", path, w < 0 ? strerror(e) : "short write");
  return 0;
}

/* ---- reader ---- */

struct KdControlReader {
  char path[4096];
  int fd;          /* -1 until the file exists */
  long applied;    /* largest seq handled */
  off_t start_size; /* file size when the reader opened */
  off_t off;       /* file bytes read into buf */
  off_t buf_at;    /* file offset of buf[0] */
  char *buf;
  size_t len, cap;
};

KdControlReader *kd_control_reader_new(const char *run_dir, long applied_seq, KdError *err) {
  KdControlReader *r = calloc(1, sizeof *r);
  if (!r) return kd_error(err, "out of memory"), NULL;
  path_in(r->path, sizeof r->path, run_dir, "control.jsonl");
  r->fd = -1;
  r->applied = applied_seq;
  struct stat st;
  if (!stat(r->path, &st)) r->start_size = st.st_size;
  return r;
}

void kd_control_reader_free(KdControlReader *r) {
  if (!r) return;
  if (r->fd >= 0) close(r->fd);
  free(r->buf);
  free(r);
}

static int read_more(KdControlReader *r) {
  if (r->fd < 0) {
    r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) return 0;
  }
  struct stat st;
  if (fstat(r->fd, &st) || st.st_size <= r->off) return 0;
  size_t want = (size_t)(st.st_size - r->off);
  if (want > MAX_LINE) want = MAX_LINE;
  if (r->len + want + 1 > r->cap) {
    size_t cap = r->len + want + 1;
    char *b = realloc(r->buf, cap);
    if (!b) return 0;
    r->buf = b;
    r->cap = cap;
  }
  ssize_t n = pread(r->fd, r->buf + r->len, want, r->off);
  if (n <= 0) return 0;
  r->len += (size_t)n;
  r->off += n;
  return 1;
}

static int parse_line(const char *line, size_t n, KdControlCmd *cmd, KdError *err) {
  memset(cmd, 0, sizeof *cmd);
  cJSON *j = cJSON_ParseWithLength(line, n);
  if (!j) return kd_error(err, "malformed JSON");
  int rc = -1;
  const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq"), *c = cJSON_GetObjectItemCaseSensitive(j, "cmd");
  if (!cJSON_IsNumber(seq) || seq->valuedouble < 1) {
    kd_error(err, "\"seq\" must be a positive number");
  } else if (!cJSON_IsString(c) || kind_from_name(c->valuestring, &cmd->kind)) {
    kd_error(err, "\"cmd\" must be one of set, pause, resume, stop");
  } else {
    cmd->seq = (long)seq->valuedouble;
    rc = 0;
    if (cmd->kind == KD_CTL_SET) {
      const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key"), *v = cJSON_GetObjectItemCaseSensitive(j, "value");
      if (!cJSON_IsString(k) || !*k->valuestring) rc = kd_error(err, "set needs a \"key\" string");
      else if (cJSON_IsString(v)) snprintf(cmd->value, sizeof cmd->value, "%s", v->valuestring);
      else if (cJSON_IsNumber(v)) snprintf(cmd->value, sizeof cmd->value, "%.17g", v->valuedouble);
      else if (cJSON_IsBool(v)) snprintf(cmd->value, sizeof cmd->value, "%s", cJSON_IsTrue(v) ? "true" : "false");
      else rc = kd_error(err, "set needs a \"value\"");
      if (!rc) snprintf(cmd->key, sizeof cmd->key, "%s", k->valuestring);
      cmd->undo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "undo"));
    }
  }
  cJSON_Delete(j);
  return rc;
}

int kd_control_next(KdControlReader *r, KdControlCmd *cmd, int *before_start, KdError *err) {
  for (;;) {
    char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
    if (!nl) {
      if (r->len >= MAX_LINE) { /* no newline in 64 KiB: not ours, drop it */
        r->buf_at += (off_t)r->len;
        r->len = 0;
        return kd_error(err, "control.jsonl: a line longer than %d bytes was skipped", MAX_LINE);
      }
      if (!read_more(r)) return 0;
      continue;
    }
    size_t n = (size_t)(nl - r->buf);
    off_t at = r->buf_at;
    int rc = n ? parse_line(r->buf, n, cmd, err) : 1;
    if (rc < 0) kd_error_prefix(err, "control.jsonl at byte %lld: ", (long long)at);
    memmove(r->buf, nl + 1, r->len - n - 1);
    r->len -= n + 1;
    r->buf_at += (off_t)n + 1;
    if (rc < 0) return -1;
    if (rc > 0 || cmd->seq <= r->applied) continue; /* blank, or handled before */
    r->applied = cmd->seq;
    if (before_start) *before_start = at < r->start_size;
    return 1;
  }
}

/* ---- events replay ---- */

/* Probe images picked while the run went on (a "probe_images" event):
 * a resumed or followed run shows the same images. */
static void replay_probe_images(KdConfig *cfg, const cJSON *images) {
  char list[256] = "";
  size_t o = 0;
  const cJSON *i;
  cJSON_ArrayForEach(i, images) {
    if (!cJSON_IsNumber(i) || o + 16 >= sizeof list) return;
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%d", o ? "," : "", (int)i->valuedouble);
  }
  /* one index alone reads as a count: "17," is the list of one */
  if (o && !strchr(list, ',')) snprintf(list + o, sizeof list - o, ",");
  if (o && kd_config_find(cfg, "probe.images")) kd_config_set(cfg, "probe.images", list, NULL);
}

int kd_control_replay_events(const char *run_dir, KdConfig *cfg, long *applied_seq, int *nsets, KdError *err) {
  char path[4096];
  path_in(path, sizeof path, run_dir, "events.jsonl");
  *applied_seq = 0;
  *nsets = 0;
  if (!kd_path_exists(path)) return 0;
  size_t len;
  char *text = kd_read_text(path, &len, (size_t)1 << 30, err);
  if (!text) return -1;
  for (char *p = text; *p;) {
    char *nl = strchr(p, '\n');
    if (!nl) break; /* a torn last line: the event never completed */
    cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
    p = nl + 1;
    if (!j) continue;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq"), *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
    if (cJSON_IsNumber(seq) && (long)seq->valuedouble > *applied_seq) *applied_seq = (long)seq->valuedouble;
    if (cJSON_IsString(ev) && !strcmp(ev->valuestring, "set")) {
      const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key"), *v = cJSON_GetObjectItemCaseSensitive(j, "value");
      const KdParamDesc *d = cJSON_IsString(k) ? kd_config_find(cfg, k->valuestring) : NULL;
      if (d && d->live && cJSON_IsString(v) && !kd_config_set(cfg, k->valuestring, v->valuestring, NULL)) (*nsets)++;
    } else if (cJSON_IsString(ev) && !strcmp(ev->valuestring, "probe_images"))
      replay_probe_images(cfg, cJSON_GetObjectItemCaseSensitive(j, "images"));
    cJSON_Delete(j);
  }
  free(text);
  return 0;
}

/* ---- lock ---- */

int kd_control_lock(const char *run_dir, KdError *err) {
  char path[4096];
  path_in(path, sizeof path, run_dir, "lock");
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return kd_error(err, "%s: cannot open: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    if (n > 0) pid[n] = 0;
    close(fd);
    return kd_error(err, "%s is already being run by another process (pid %ld); stop it first (kdscope stop %s)", run_dir,
                    strtol(pid, NULL, 10), run_dir);
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n) {
    close(fd);
    return kd_error(err, "%s: cannot write: %s", path, strerror(errno));
  }
  return fd;
}

void kd_control_unlock(int fd) {
  if (fd >= 0) close(fd); /* closing drops the flock */
}

int kd_control_is_running(const char *run_dir, long *pid) {
  char path[4096];
  path_in(path, sizeof path, run_dir, "lock");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  int running = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  if (running && pid) {
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    *pid = n > 0 ? strtol(buf, NULL, 10) : 0;
  }
  close(fd);
  return running;
}
