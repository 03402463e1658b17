#include "train/runlog.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct Series {
  char *name;
  double *x, *y;
  size_t n, cap;
} Series;

typedef struct Event {
  int step, undo;
  char *type, *key, *value, *old, *source, *json;
} Event;

typedef struct Tail {
  char path[4096];
  long off;     /* bytes consumed (complete lines) */
  char *buf;    /* pending partial line */
  size_t blen, bcap;
} Tail;

struct KdRunLog {
  Tail metrics, events;
  Series *s;
  int ns, cap;
  Event *e;
  int ne, ecap;
  int last_step;
  unsigned long gen;
};

static void clear(KdRunLog *l) {
  for (int i = 0; i < l->ns; i++) free(l->s[i].name), free(l->s[i].x), free(l->s[i].y);
  for (int i = 0; i < l->ne; i++) {
    Event *e = &l->e[i];
    free(e->type), free(e->key), free(e->value), free(e->old), free(e->source), free(e->json);
  }
  l->ns = l->ne = 0;
  l->last_step = 0;
  l->metrics.off = l->events.off = 0;
  l->metrics.blen = l->events.blen = 0;
}

KdRunLog *kd_runlog_open(const char *run_dir, KdError *err) {
  KdRunLog *l = calloc(1, sizeof *l);
  if (!l) return kd_error(err, "out of memory"), NULL;
  snprintf(l->metrics.path, sizeof l->metrics.path, "%s/metrics.jsonl", run_dir);
  snprintf(l->events.path, sizeof l->events.path, "%s/events.jsonl", run_dir);
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "%s/config.json", run_dir);
  struct stat st;
  if (stat(cfg, &st)) {
    free(l);
    return kd_error(err, "%s: not a run directory (no config.json)", run_dir), NULL;
  }
  return l;
}

void kd_runlog_free(KdRunLog *l) {
  if (!l) return;
  clear(l);
  free(l->s);
  free(l->e);
  free(l->metrics.buf);
  free(l->events.buf);
  free(l);
}

static Series *series(KdRunLog *l, const char *name) {
  for (int i = 0; i < l->ns; i++)
    if (!strcmp(l->s[i].name, name)) return &l->s[i];
  if (l->ns == l->cap) {
    int cap = l->cap ? 2 * l->cap : 32;
    Series *s = realloc(l->s, sizeof *s * (size_t)cap);
    if (!s) return NULL;
    l->s = s, l->cap = cap;
  }
  Series *s = &l->s[l->ns];
  memset(s, 0, sizeof *s);
  s->name = strdup(name);
  if (!s->name) return NULL;
  l->ns++;
  return s;
}

static void push(KdRunLog *l, const char *name, double x, double y) {
  Series *s = series(l, name);
  if (!s) return;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    double *nx = realloc(s->x, sizeof *nx * cap), *ny = realloc(s->y, sizeof *ny * cap);
    if (nx) s->x = nx;
    if (ny) s->y = ny;
    if (!nx || !ny) return;
    s->cap = cap;
  }
  s->x[s->n] = x, s->y[s->n] = y;
  s->n++;
}

static void metrics_line(KdRunLog *l, const char *line) {
  cJSON *j = cJSON_Parse(line);
  if (!j) return;
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
  if (cJSON_IsNumber(step)) {
    double x = step->valuedouble;
    if ((int)x > l->last_step) l->last_step = (int)x;
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "eval");
    if (cJSON_IsObject(ev)) {
      for (const cJSON *it = ev->child; it; it = it->next) {
        /* Timing and image counts are facts of the evaluation, not curves. */
        if (!cJSON_IsNumber(it) || !strcmp(it->string, "seconds") || !strncmp(it->string, "images", 6)) continue;
        char nm[96];
        snprintf(nm, sizeof nm, "eval.%s", it->string);
        push(l, nm, x, it->valuedouble);
      }
    } else {
      static const char *top[] = {"loss", "lr", "grad_norm", "step_s"};
      for (int i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, top[i]);
        if (cJSON_IsNumber(v)) push(l, top[i], x, v->valuedouble);
      }
      const cJSON *parts = cJSON_GetObjectItemCaseSensitive(j, "parts");
      for (const cJSON *it = parts ? parts->child : NULL; it; it = it->next)
        if (cJSON_IsNumber(it)) push(l, it->string, x, it->valuedouble);
    }
  }
  cJSON_Delete(j);
}

static char *dup_str(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (cJSON_IsString(v)) return strdup(v->valuestring);
  if (cJSON_IsNumber(v)) {
    char b[64];
    snprintf(b, sizeof b, "%.9g", v->valuedouble);
    return strdup(b);
  }
  return strdup("");
}

static void events_line(KdRunLog *l, const char *line) {
  cJSON *j = cJSON_Parse(line);
  if (!j) return;
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
  if (cJSON_IsNumber(step) && (l->ne < l->ecap || l->ecap == 0 || 1)) {
    if (l->ne == l->ecap) {
      int cap = l->ecap ? 2 * l->ecap : 64;
      Event *e = realloc(l->e, sizeof *e * (size_t)cap);
      if (!e) {
        cJSON_Delete(j);
        return;
      }
      l->e = e, l->ecap = cap;
    }
    Event *e = &l->e[l->ne++];
    e->step = (int)step->valuedouble;
    e->type = dup_str(j, "event");
    e->key = dup_str(j, "key");
    e->value = dup_str(j, "value");
    e->old = dup_str(j, "old");
    e->source = dup_str(j, "source");
    e->undo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "undo"));
    e->json = strdup(line);
  }
  cJSON_Delete(j);
}

/* Reads new bytes of one file; calls fn for each complete line. */
static int tail(KdRunLog *l, Tail *t, void (*fn)(KdRunLog *, const char *), int *changed, int *shrunk) {
  FILE *f = fopen(t->path, "rb");
  if (!f) return 0;
  struct stat st;
  if (fstat(fileno(f), &st)) {
    fclose(f);
    return -1;
  }
  if (st.st_size < t->off + (long)t->blen) {
    *shrunk = 1;
    fclose(f);
    return 0;
  }
  if (st.st_size == t->off + (long)t->blen) {
    fclose(f);
    return 0;
  }
  fseek(f, t->off + (long)t->blen, SEEK_SET);
  size_t want = (size_t)(st.st_size - t->off - (long)t->blen);
  if (t->blen + want + 1 > t->bcap) {
    size_t cap = t->blen + want + 1;
    char *b = realloc(t->buf, cap);
    if (!b) {
      fclose(f);
      return -1;
    }
    t->buf = b, t->bcap = cap;
  }
  size_t got = fread(t->buf + t->blen, 1, want, f);
  fclose(f);
  t->blen += got;
  t->buf[t->blen] = 0;
  char *p = t->buf, *nl;
  while ((nl = memchr(p, '\n', t->blen - (size_t)(p - t->buf)))) {
    *nl = 0;
    fn(l, p);
    *changed = 1;
    p = nl + 1;
  }
  size_t used = (size_t)(p - t->buf);
  t->off += (long)used;
  memmove(t->buf, p, t->blen - used);
  t->blen -= used;
  return 0;
}

int kd_runlog_refresh(KdRunLog *l, KdError *err) {
  int changed = 0, shrunk = 0;
  if (tail(l, &l->metrics, metrics_line, &changed, &shrunk) || tail(l, &l->events, events_line, &changed, &shrunk))
    return kd_error(err, "reading the logs of %s failed", l->metrics.path);
  if (shrunk) {
    clear(l);
    changed = 1;
    if (tail(l, &l->metrics, metrics_line, &changed, &shrunk) || tail(l, &l->events, events_line, &changed, &shrunk))
      return kd_error(err, "reading the logs of %s failed", l->metrics.path);
  }
  if (changed) l->gen++;
  return changed;
}

int kd_runlog_nseries(const KdRunLog *l) { return l->ns; }

KdRunSeries kd_runlog_series(const KdRunLog *l, int i) {
  const Series *s = &l->s[i];
  return (KdRunSeries){s->name, s->x, s->y, s->n};
}

KdRunSeries kd_runlog_find(const KdRunLog *l, const char *name) {
  for (int i = 0; i < l->ns; i++)
    if (!strcmp(l->s[i].name, name)) return kd_runlog_series(l, i);
  return (KdRunSeries){name, NULL, NULL, 0};
}

int kd_runlog_nevents(const KdRunLog *l) { return l->ne; }

KdRunEvent kd_runlog_event(const KdRunLog *l, int i) {
  const Event *e = &l->e[i];
  return (KdRunEvent){e->step, e->type, e->key, e->value, e->old, e->source, e->undo, e->json};
}

int kd_runlog_last_step(const KdRunLog *l) { return l->last_step; }
unsigned long kd_runlog_generation(const KdRunLog *l) { return l->gen; }

void kd_runlog_names(const KdRunLog *l, int (*keep)(const char *name), char *buf, size_t len) {
  if (!len) return;
  buf[0] = 0;
  for (int i = 0; i < kd_runlog_nseries(l); i++) {
    KdRunSeries s = kd_runlog_series(l, i);
    if (!s.n || (keep && !keep(s.name))) continue;
    size_t n = strlen(buf);
    if (n + strlen(s.name) + 8 >= len) {
      snprintf(buf + n, len - n, ", ...");
      return;
    }
    snprintf(buf + n, len - n, "%s%s", n ? ", " : "", s.name);
  }
}
