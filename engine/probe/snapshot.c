/* The snapshot container: named fields, reference counting, lookup. */
#include "probe/snapshot.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KdSnapshot *kd_snapshot_new(void) {
  KdSnapshot *s = calloc(1, sizeof *s);
  if (s) atomic_init(&s->refs, 1);
  return s;
}

KdSnapshot *kd_snapshot_ref(KdSnapshot *s) {
  if (s) atomic_fetch_add(&s->refs, 1);
  return s;
}

void kd_snapshot_free(KdSnapshot *s) {
  if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
  for (int i = 0; i < s->nfields; i++) free(s->fields[i].data);
  free(s->fields);
  for (int i = 0; i < s->nclasses; i++) free(s->class_names[i]);
  free(s->class_names);
  free(s->rgb);
  free(s);
}

const KdSnapField *kd_snapshot_find(const KdSnapshot *s, const char *name) {
  for (int i = 0; i < s->nfields; i++)
    if (!strcmp(s->fields[i].name, name)) return &s->fields[i];
  return NULL;
}

const KdSnapField *kd_snapshot_findf(const KdSnapshot *s, const char *fmt, ...) {
  char name[KD_SNAP_NAME];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return n < 0 || n >= (int)sizeof name ? NULL : kd_snapshot_find(s, name);
}

const char *kd_snapshot_level_name(const KdSnapshot *s, int l, char *buf, int len) {
  int p = 0;
  for (int st = l >= 0 && l < s->nlev ? s->strides[l] : 0; st > 1; st >>= 1) p++;
  snprintf(buf, (size_t)len, "P%d", p);
  return buf;
}

KdSnapField *kd_snapshot_add(KdSnapshot *s, const char *name, int ndim, const int *shape) {
  if (strlen(name) >= KD_SNAP_NAME || ndim < 0 || ndim > 4 || kd_snapshot_find(s, name)) return NULL;
  size_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) return NULL;
    n *= (size_t)shape[d];
  }
  if (s->nfields == s->cap_fields) {
    int cap = s->cap_fields ? 2 * s->cap_fields : 64;
    KdSnapField *f = realloc(s->fields, sizeof *f * (size_t)cap);
    if (!f) return NULL;
    s->fields = f, s->cap_fields = cap;
  }
  float *data = calloc(n ? n : 1, sizeof(float));
  if (!data) return NULL;
  KdSnapField *f = &s->fields[s->nfields++];
  memset(f, 0, sizeof *f);
  snprintf(f->name, sizeof f->name, "%s", name);
  f->ndim = ndim;
  for (int d = 0; d < ndim; d++) f->shape[d] = shape[d];
  f->numel = n;
  f->data = data;
  return f;
}

KdSnapField *kd_snapshot_add1(KdSnapshot *s, const char *name, int d0) { return kd_snapshot_add(s, name, 1, &d0); }

KdSnapField *kd_snapshot_add2(KdSnapshot *s, const char *name, int d0, int d1) {
  int shape[2] = {d0, d1};
  return kd_snapshot_add(s, name, 2, shape);
}

int kd_snapshot_set_classes(KdSnapshot *s, int n, const char *const *names) {
  s->class_names = calloc(n > 0 ? (size_t)n : 1, sizeof(char *));
  if (!s->class_names) return -1;
  s->nclasses = n;
  for (int i = 0; i < n; i++)
    if (!(s->class_names[i] = strdup(names[i] ? names[i] : ""))) return -1;
  return 0;
}
