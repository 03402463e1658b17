/* Test helpers shared by the data and probe fixtures: a temp directory
 * removed at exit (kept with KD_TEST_KEEP=1) and paths inside it.
 * Header-only; include once per test. */
#ifndef KD_TEST_FX_TMPDIR_H
#define KD_TEST_FX_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

static char fx_dir[512];

static inline void fx_cleanup(void) {
  KdError e;
  if (getenv("KD_TEST_KEEP")) fprintf(stderr, "kept %s\n", fx_dir); /* for debugging */
  else if (fx_dir[0]) kd_remove_tree(fx_dir, &e);
}

/* Makes a fresh temp directory; aborts the test run if it cannot. */
static inline const char *fx_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  snprintf(fx_dir, sizeof fx_dir, "%s/kd-%s-XXXXXX", base && *base ? base : "/tmp", tag);
  if (!mkdtemp(fx_dir)) {
    perror("mkdtemp");
    exit(1);
  }
  atexit(fx_cleanup);
  return fx_dir;
}

static inline const char *fx_path(const char *rel) {
  static char p[8][1024];
  static int k;
  k = (k + 1) % 8;
  snprintf(p[k], sizeof p[k], "%s/%s", fx_dir, rel);
  return p[k];
}

#endif
