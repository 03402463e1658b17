/* A run's snapshot directory: appending, the index log and a reader that
 * follows it as it grows (snapfile.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "probe/snapfile.h"
#include "core/fileio.h"

#define INDEX_MAX (256u << 20)

typedef struct {
  int step;
  double time;
  size_t bytes;
  char file[64];
} Entry;

struct KdSnapshots {
  char dir[4096]; /* RUN_DIR/snapshots */
  Entry *e;
  int n, cap;
  long off;     /* index bytes consumed (through the last complete line) */
  ino_t ino;    /* a new inode means the index was rewritten */
};

static int dir_path(char *buf, size_t len, const char *run_dir, const char *name, KdError *err) {
  int n = name ? snprintf(buf, len, "%s/snapshots/%s", run_dir, name) : snprintf(buf, len, "%s/snapshots", run_dir);
  return n < 0 || (size_t)n >= len ? kd_error(err, "%s: path too long", run_dir) : 0;
}

/* A file name from the index must stay inside the directory. */
static int safe_name(const char *f) { return f[0] && f[0] != '.' && !strchr(f, '/'); }

/* One index line -> entry; -1 if it does not parse. */
static int parse_line(const char *line, size_t len, Entry *e) {
  cJSON *o = cJSON_ParseWithLength(line, len);
  if (!o) return -1;
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step"), *f = cJSON_GetObjectItemCaseSensitive(o, "file");
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "bytes"), *t = cJSON_GetObjectItemCaseSensitive(o, "time");
  int rc = -1;
  if (cJSON_IsNumber(s) && s->valuedouble >= 0 && s->valuedouble < 2e9 && cJSON_IsString(f) && safe_name(f->valuestring) &&
      strlen(f->valuestring) < sizeof e->file) {
    e->step = (int)s->valuedouble;
    snprintf(e->file, sizeof e->file, "%s", f->valuestring);
    /* A size that no file has (or that size_t cannot hold) reads as unknown. */
    e->bytes = cJSON_IsNumber(b) && b->valuedouble >= 0 && b->valuedouble < 0x1p53 ? (size_t)b->valuedouble : 0;
    e->time = cJSON_IsNumber(t) ? t->valuedouble : NAN;
    rc = 0;
  }
  cJSON_Delete(o);
  return rc;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kd_snapshots_append(const char *run_dir, const KdSnapshot *s, int f16_maps, size_t *bytes, KdError *err) {
  char dir[4096], file[64], path[4200], line[512];
  size_t size = 0;
  snprintf(file, sizeof file, "step_%08d.safetensors", s->step);
  if (dir_path(dir, sizeof dir, run_dir, NULL, err) || kd_mkdir_p(dir, err)) return -1;
  if (dir_path(path, sizeof path, run_dir, file, err) || kd_snapshot_write_file(path, s, f16_maps, &size, err)) return -1;
  snprintf(line, sizeof line, "{\"step\":%d,\"file\":\"%s\",\"bytes\":%zu,\"time\":%.3f,\"capture_s\":%.6f}", s->step, file,
           size, isfinite(s->time) ? s->time : wall_now(), isfinite(s->capture_s) ? s->capture_s : 0.0);
  if (dir_path(path, sizeof path, run_dir, "index.jsonl", err) || kd_append_line(path, line, err)) return -1;
  if (bytes) *bytes = size;
  return 0;
}

int kd_snapshots_truncate(const char *run_dir, int after_step, KdError *err) {
  char path[4200], victim[4200];
  if (dir_path(path, sizeof path, run_dir, "index.jsonl", err)) return -1;
  if (!kd_path_exists(path)) return 0;
  size_t len;
  char *txt = kd_read_text(path, &len, INDEX_MAX, err);
  if (!txt) return -1;
  char *keep = malloc(len + 1);
  if (!keep) {
    free(txt);
    return kd_error(err, "%s: out of memory", path);
  }
  size_t k = 0;
  for (char *p = txt, *nl; (nl = memchr(p, '\n', len - (size_t)(p - txt))); p = nl + 1) {
    Entry e;
    if (parse_line(p, (size_t)(nl - p), &e)) continue; /* torn or bad: dropped too */
    if (e.step <= after_step) {
      memcpy(keep + k, p, (size_t)(nl + 1 - p));
      k += (size_t)(nl + 1 - p);
    } else if (!dir_path(victim, sizeof victim, run_dir, e.file, NULL)) {
      unlink(victim);
    }
  }
  int rc = kd_write_file_atomic(path, keep, k, err);
  free(txt), free(keep);
  return rc;
}

KdSnapshots *kd_snapshots_open(const char *run_dir, KdError *err) {
  KdSnapshots *r = calloc(1, sizeof *r);
  if (!r) return kd_error(err, "out of memory"), NULL;
  if (dir_path(r->dir, sizeof r->dir, run_dir, NULL, err) || kd_snapshots_refresh(r, err) < 0) {
    kd_snapshots_close(r);
    return NULL;
  }
  return r;
}

void kd_snapshots_close(KdSnapshots *r) {
  if (!r) return;
  free(r->e);
  free(r);
}

/* Per step the latest line wins; entries stay sorted by step. */
static int put(KdSnapshots *r, const Entry *e) {
  int lo = 0, hi = r->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (r->e[mid].step < e->step) lo = mid + 1;
    else hi = mid;
  }
  if (lo < r->n && r->e[lo].step == e->step) {
    r->e[lo] = *e;
    return 0;
  }
  if (r->n == r->cap) {
    int cap = r->cap ? 2 * r->cap : 64;
    Entry *ne = realloc(r->e, sizeof *ne * (size_t)cap);
    if (!ne) return -1;
    r->e = ne, r->cap = cap;
  }
  memmove(r->e + lo + 1, r->e + lo, sizeof *r->e * (size_t)(r->n - lo));
  r->e[lo] = *e;
  r->n++;
  return 0;
}

int kd_snapshots_refresh(KdSnapshots *r, KdError *err) {
  char path[4200];
  snprintf(path, sizeof path, "%s/index.jsonl", r->dir);
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return 0; /* nothing probed yet */
    return kd_error(err, "%s: cannot open: %s", path, strerror(errno));
  }
  struct stat st;
  if (fstat(fileno(f), &st)) {
    fclose(f);
    return kd_error(err, "%s: cannot stat", path);
  }
  if (st.st_ino != r->ino || st.st_size < r->off) { /* rewritten (a resume): start over */
    r->ino = st.st_ino;
    r->off = 0;
    r->n = 0;
  }
  long avail = (long)st.st_size - r->off;
  if (avail <= 0 || fseek(f, r->off, SEEK_SET)) {
    fclose(f);
    return 0;
  }
  char *buf = malloc((size_t)avail);
  size_t got = buf ? fread(buf, 1, (size_t)avail, f) : 0;
  fclose(f);
  if (!buf) return kd_error(err, "%s: out of memory", path);
  int changed = 0;
  char *p = buf, *end = buf + got, *nl;
  for (; p < end && (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
    Entry e;
    if (nl > p && !parse_line(p, (size_t)(nl - p), &e)) {
      if (put(r, &e)) {
        free(buf);
        return kd_error(err, "out of memory");
      }
      changed++;
    }
  }
  r->off += (long)(p - buf); /* a line without its '\n' is read next time */
  free(buf);
  return changed;
}

int kd_snapshots_count(const KdSnapshots *r) { return r->n; }
int kd_snapshots_step(const KdSnapshots *r, int i) { return i >= 0 && i < r->n ? r->e[i].step : -1; }
double kd_snapshots_time(const KdSnapshots *r, int i) { return i >= 0 && i < r->n ? r->e[i].time : NAN; }
size_t kd_snapshots_bytes(const KdSnapshots *r, int i) { return i >= 0 && i < r->n ? r->e[i].bytes : 0; }

int kd_snapshots_at_step(const KdSnapshots *r, int step) {
  int lo = 0, hi = r->n; /* first entry with step > step */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (r->e[mid].step <= step) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

const char *kd_snapshots_path(const KdSnapshots *r, int i, char *buf, size_t len) {
  if (i < 0 || i >= r->n) return NULL;
  int n = snprintf(buf, len, "%s/%s", r->dir, r->e[i].file);
  return n < 0 || (size_t)n >= len ? NULL : buf;
}

int kd_snapshot_load(KdSnapshots *r, int i, KdSnapshot **out, KdError *err) {
  char path[4200];
  *out = NULL;
  if (i < 0 || i >= r->n) return kd_error(err, "snapshot %d: out of range (0..%d)", i, r->n - 1);
  if (!kd_snapshots_path(r, i, path, sizeof path)) return kd_error(err, "%s: path too long", r->dir);
  return kd_snapshot_read_file(path, out, err);
}
