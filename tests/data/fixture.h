/* Helpers for data tests: a temp directory removed at exit, text and JPEG
 * files written into it. Header-only; each test includes it once. */
#ifndef KD_TEST_DATA_FIXTURE_H
#define KD_TEST_DATA_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "data/jpeg.h"

#include "fx_tmpdir.h"

static inline void fx_write(const char *rel, const void *data, size_t len) {
  KdError e;
  if (kd_write_file(fx_path(rel), data, len, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    exit(1);
  }
}

static inline void fx_text(const char *rel, const char *text) { fx_write(rel, text, strlen(text)); }

static inline void fx_mkdir(const char *rel) {
  KdError e;
  if (kd_mkdir_p(fx_path(rel), &e)) {
    fprintf(stderr, "%s\n", e.msg);
    exit(1);
  }
}

/* A w x h JPEG (quality 95) filled with col, with an optional rectangle
 * [rx0,rx1) x [ry0,ry1) in rcol. */
static inline void fx_jpeg(const char *rel, int w, int h, const uint8_t col[3], int rx0, int ry0, int rx1, int ry1,
                    const uint8_t rcol[3]) {
  uint8_t *px = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int in = x >= rx0 && x < rx1 && y >= ry0 && y < ry1;
      memcpy(px + 3 * ((size_t)y * w + x), in ? rcol : col, 3);
    }
  KdJpeg *j = kd_jpeg_new();
  KdError e;
  if (kd_jpeg_write_file(j, fx_path(rel), px, w, h, 95, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    exit(1);
  }
  kd_jpeg_free(j);
  free(px);
}

static inline int contains(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

#endif
