#include "core/params.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct Entry {
  KdTensor *t;
  char *name;
  KdParamKind kind;
  size_t offset;
} Entry;

struct KdParams {
  Entry *e;
  int n, cap;
  int n_stored; /* entries [0, n_stored) have storage in the blocks */
  float *values, *grads, *buffers;
  size_t n_values, n_buffers;           /* floats all entries need */
  size_t stored_values, stored_buffers; /* floats the blocks hold */
};

KdParams *kd_params_new(void) { return calloc(1, sizeof(KdParams)); }

void kd_params_free(KdParams *p) {
  if (!p) return;
  for (int i = 0; i < p->n; i++) {
    free(p->e[i].name);
    free(p->e[i].t);
  }
  free(p->e);
  free(p->values);
  free(p->grads);
  free(p->buffers);
  free(p);
}

KdTensor *kd_params_add(KdParams *p, const char *name, int ndim, const int *shape, KdParamKind kind) {
  if (ndim < 1 || ndim > KD_MAX_DIMS || kd_params_find(p, name)) return NULL;
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 1) return NULL;
    numel *= (size_t)shape[i];
  }
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 64;
    Entry *e = realloc(p->e, (size_t)cap * sizeof *e);
    if (!e) return NULL;
    p->e = e;
    p->cap = cap;
  }
  KdTensor *t = calloc(1, sizeof *t);
  char *nm = strdup(name);
  if (!t || !nm) {
    free(t);
    free(nm);
    return NULL;
  }
  t->ndim = ndim;
  for (int i = 0; i < KD_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
  t->numel = numel;
  t->name = nm;
  t->is_param = 1;
  t->requires_grad = kind == KD_PARAM_TRAIN;
  Entry *en = &p->e[p->n++];
  en->t = t;
  en->name = nm;
  en->kind = kind;
  if (kind == KD_PARAM_TRAIN) {
    en->offset = p->n_values;
    p->n_values += (numel + 15) & ~(size_t)15; /* keep every view 64-byte aligned */
  } else {
    en->offset = p->n_buffers;
    p->n_buffers += (numel + 15) & ~(size_t)15;
  }
  return t;
}

static float *zalloc(size_t n) {
  size_t bytes = (n ? n : 16) * sizeof(float);
  float *f = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (f) memset(f, 0, bytes);
  return f;
}

/* Moves the first n floats of *old into fresh, frees *old, keeps fresh. */
static void take(float **old, float *fresh, size_t n) {
  if (*old && n) memcpy(fresh, *old, n * sizeof(float));
  free(*old);
  *old = fresh;
}

int kd_params_finalize(KdParams *p, KdError *err) {
  if (p->n_stored == p->n && p->values) return 0;
  float *v = zalloc(p->n_values), *g = zalloc(p->n_values), *b = zalloc(p->n_buffers);
  if (!v || !g || !b) {
    free(v), free(g), free(b);
    return kd_error(err, "out of memory for %zu parameters", p->n_values + p->n_buffers);
  }
  take(&p->values, v, p->stored_values);
  take(&p->grads, g, p->stored_values);
  take(&p->buffers, b, p->stored_buffers);
  p->stored_values = p->n_values;
  p->stored_buffers = p->n_buffers;
  for (int i = 0; i < p->n; i++) {
    Entry *e = &p->e[i];
    if (e->kind == KD_PARAM_TRAIN) {
      e->t->data = p->values + e->offset;
      e->t->grad = p->grads + e->offset;
    } else {
      e->t->data = p->buffers + e->offset;
    }
  }
  p->n_stored = p->n;
  return 0;
}

int kd_params_count(const KdParams *p) { return p->n; }
KdTensor *kd_params_at(const KdParams *p, int i) { return p->e[i].t; }
KdParamKind kd_params_kind(const KdParams *p, int i) { return p->e[i].kind; }

KdTensor *kd_params_find(const KdParams *p, const char *name) {
  for (int i = 0; i < p->n; i++)
    if (strcmp(p->e[i].name, name) == 0) return p->e[i].t;
  return NULL;
}

float *kd_params_values(const KdParams *p, size_t *count) {
  if (count) *count = p->stored_values;
  return p->values;
}

float *kd_params_grads(const KdParams *p, size_t *count) {
  if (count) *count = p->stored_values;
  return p->grads;
}

float *kd_params_buffers(const KdParams *p, size_t *count) {
  if (count) *count = p->stored_buffers;
  return p->buffers;
}

void kd_params_zero_grad(KdParams *p) {
  if (p->grads) memset(p->grads, 0, p->stored_values * sizeof(float));
}

size_t kd_params_numel(const KdParams *p) {
  size_t n = 0;
  for (int i = 0; i < p->n; i++)
    if (p->e[i].kind == KD_PARAM_TRAIN) n += p->e[i].t->numel;
  return n;
}

void kd_params_set_requires_grad(KdParams *p, int on) {
  for (int i = 0; i < p->n; i++)
    if (p->e[i].kind == KD_PARAM_TRAIN) p->e[i].t->requires_grad = on != 0;
}

int kd_params_copy_matching(KdParams *dst, const KdParams *src, const char *prefix) {
  int copied = 0;
  size_t plen = prefix ? strlen(prefix) : 0;
  for (int i = 0; i < dst->n; i++) {
    Entry *e = &dst->e[i];
    if (plen && strncmp(e->name, prefix, plen) != 0) continue;
    KdTensor *s = kd_params_find(src, e->name);
    if (!s || !kd_tensor_same_shape(s, e->t)) continue;
    memcpy(e->t->data, s->data, e->t->numel * sizeof(float));
    copied++;
  }
  return copied;
}
