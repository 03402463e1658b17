/* Exchange with the Python oracles (torch_ref.py, coco_oracle.py): named
 * arrays in a text file, one per line "name count v0 v1 ...". Floats are
 * written with 9 significant digits (exact for float32), doubles with 17.
 * oracle_run() returns the script's exit status: 0 ok, 77 skipped (no
 * python/torch/numpy), anything else a failure. Header-only, tests only. */
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

/* Runs tests/detect/<script> <mode> in out and parses out. */
static inline int oracle_run(Oracle *o, const char *script, const char *mode) {
  fclose(o->in);
  o->in = NULL;
  if (access(ORACLE_PY, X_OK) != 0) {
    printf("oracle: %s not found, skipping\n", ORACLE_PY);
    return 77;
  }
  const char *root = getenv("KD_SOURCE_ROOT");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/tests/detect/%s %s %s %s", ORACLE_PY, root ? root : ".", script, mode, o->path_in,
           o->path_out);
  int st = system(cmd);
  int rc = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : 1;
  if (rc) return rc;
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
