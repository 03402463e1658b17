/* Exchange with the Python oracles (torch_ref.py, coco_oracle.py): named
 * arrays in a text file, one per line "name count v0 v1 ...". Floats are
 * written with 9 significant digits (exact for float32), doubles with 17.
 * oracle_run() returns the script's exit status: 0 ok, 77 skipped (no
 * python/torch/numpy), anything else a failure. KD_ORACLE_PYTHON overrides
 * the interpreter (to exercise the skip paths). Header-only, tests only. */
#ifndef KD_TEST_ORACLE_H
#define KD_TEST_ORACLE_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ORACLE_PY "/usr/bin/python3"

typedef struct {
  char path_in[256], path_out[256];
  FILE *in;
  /* parsed output */
  int n;
  char names[64][32];
  double *vals[64];
  size_t lens[64];
} Oracle;

static inline int oracle_open(Oracle *o) {
  memset(o, 0, sizeof *o);
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  snprintf(o->path_in, sizeof o->path_in, "%s/kd_oracle_in_XXXXXX", dir);
  snprintf(o->path_out, sizeof o->path_out, "%s/kd_oracle_out_XXXXXX", dir);
  int fi = mkstemp(o->path_in), fo = mkstemp(o->path_out);
  if (fi < 0 || fo < 0) return -1;
  close(fo);
  o->in = fdopen(fi, "w");
  return o->in ? 0 : -1;
}

static inline void oracle_f(Oracle *o, const char *name, const float *v, size_t n) {
  fprintf(o->in, "%s %zu", name, n);
  for (size_t i = 0; i < n; i++) fprintf(o->in, " %.9g", v[i]);
  fputc('\n', o->in);
}

static inline void oracle_d(Oracle *o, const char *name, const double *v, size_t n) {
  fprintf(o->in, "%s %zu", name, n);
  for (size_t i = 0; i < n; i++) fprintf(o->in, " %.17g", v[i]);
  fputc('\n', o->in);
}

static inline void oracle_i(Oracle *o, const char *name, const int *v, size_t n) {
  fprintf(o->in, "%s %zu", name, n);
  for (size_t i = 0; i < n; i++) fprintf(o->in, " %d", v[i]);
  fputc('\n', o->in);
}

static inline int oracle_parse(Oracle *o) {
  FILE *f = fopen(o->path_out, "r");
  if (!f) return 1;
  char name[32];
  size_t len;
  while (o->n < 64 && fscanf(f, "%31s %zu", name, &len) == 2) {
    double *v = malloc((len ? len : 1) * sizeof *v);
    for (size_t i = 0; i < len; i++)
      if (fscanf(f, "%lf", &v[i]) != 1) v[i] = NAN;
    snprintf(o->names[o->n], sizeof o->names[0], "%s", name);
    o->vals[o->n] = v;
    o->lens[o->n++] = len;
  }
  fclose(f);
  return 0;
}

/* Runs tests/detect/<script> once for n jobs (mode in out, ...), so the
 * interpreter and torch load once, and parses every job's output. */
static inline int oracle_run_many(Oracle **os, const char *const *modes, int n, const char *script) {
  for (int i = 0; i < n; i++) {
    fclose(os[i]->in);
    os[i]->in = NULL;
  }
  const char *py = getenv("KD_ORACLE_PYTHON");
  if (!py || !*py) py = ORACLE_PY;
  if (access(py, X_OK) != 0) {
    printf("oracle: %s not found, skipping\n", py);
    return 77;
  }
  const char *root = getenv("KD_SOURCE_ROOT");
  size_t cap = 512 + (size_t)n * 600, len = 0;
  char *cmd = malloc(cap);
  if (!cmd) return 1;
  len += (size_t)snprintf(cmd, cap, "%s %s/tests/detect/%s", py, root ? root : ".", script);
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(cmd + len, cap - len, " %s %s %s", modes[i], os[i]->path_in, os[i]->path_out);
  int st = system(cmd);
  free(cmd);
  int rc = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : 1;
  for (int i = 0; i < n && rc == 0; i++) rc = oracle_parse(os[i]);
  return rc;
}

/* Runs tests/detect/<script> <mode> in out and parses out. */
static inline int oracle_run(Oracle *o, const char *script, const char *mode) {
  return oracle_run_many(&o, &mode, 1, script);
}

/* The named output array (NULL if absent); *len its length. */
static inline const double *oracle_get(const Oracle *o, const char *name, size_t *len) {
  for (int i = 0; i < o->n; i++)
    if (!strcmp(o->names[i], name)) {
      if (len) *len = o->lens[i];
      return o->vals[i];
    }
  if (len) *len = 0;
  return NULL;
}

static inline void oracle_close(Oracle *o) {
  if (o->in) fclose(o->in);
  for (int i = 0; i < o->n; i++) free(o->vals[i]);
  unlink(o->path_in);
  unlink(o->path_out);
}

#endif
