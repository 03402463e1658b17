/* COCO results format (see cocoresults.h). Printed by hand rather than via
 * cJSON: one short line per detection, streamed into one buffer, written
 * to a temp file that is fsynced and renamed over the target. */
#include "detect/cocoresults.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>

void kd_dets_to_coco(const KdDetection *d, int n, int64_t image_id, float scale, float pad_x, float pad_y,
                     KdCocoDet *out) {
  for (int i = 0; i < n; i++) {
    double x1 = ((double)d[i].x1 - pad_x) / scale, y1 = ((double)d[i].y1 - pad_y) / scale;
    double x2 = ((double)d[i].x2 - pad_x) / scale, y2 = ((double)d[i].y2 - pad_y) / scale;
    out[i] = (KdCocoDet){.image_id = image_id, .category = d[i].label, .bbox = {x1, y1, x2 - x1, y2 - y1},
                         .score = d[i].score};
  }
}

char *kd_coco_results_json(const KdCocoDet *dt, int n, const int *cat_ids, int n_cat, KdError *err) {
  size_t cap = 64 + (size_t)n * 256, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    kd_error(err, "coco results: out of memory for %d detections", n);
    return NULL;
  }
  len += (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < n; i++) {
    const KdCocoDet *d = &dt[i];
    if (d->category < 0 || (cat_ids && d->category >= n_cat)) {
      free(buf);
      kd_error(err, "coco results: detection %d has category %d, the id table has %d entries", i, d->category, n_cat);
      return NULL;
    }
    if (!isfinite(d->bbox[0]) || !isfinite(d->bbox[1]) || !isfinite(d->bbox[2]) || !isfinite(d->bbox[3]) ||
        !isfinite(d->score)) {
      free(buf);
      kd_error(err, "coco results: detection %d has a non-finite box or score", i);
      return NULL;
    }
    int cid = cat_ids ? cat_ids[d->category] : d->category;
    /* Each line is < 200 bytes: 5 numbers of <= 16 chars, ids, keys. */
    len += (size_t)snprintf(buf + len, cap - len,
                            "%s\n{\"image_id\": %lld, \"category_id\": %d, \"bbox\": [%.9g, %.9g, %.9g, %.9g], "
                            "\"score\": %.9g}",
                            i ? "," : "", (long long)d->image_id, cid, d->bbox[0], d->bbox[1], d->bbox[2],
                            d->bbox[3], d->score);
  }
  snprintf(buf + len, cap - len, "%s]\n", n ? "\n" : "");
  return buf;
}

int kd_coco_write_results(const char *path, const KdCocoDet *dt, int n, const int *cat_ids, int n_cat, KdError *err) {
  char *text = kd_coco_results_json(dt, n, cat_ids, n_cat, err);
  if (!text) return -1;
  size_t len = strlen(text), plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) {
    free(text);
    return kd_error(err, "coco results %s: out of memory", path);
  }
  snprintf(tmp, plen + 16, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  int ok = f && fwrite(text, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int e = errno;
  if (f && fclose(f) != 0) ok = 0;
  if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
  if (!ok) {
    if (f) remove(tmp);
    kd_error(err, "coco results %s: cannot write: %s", path, strerror(e));
  }
  free(tmp);
  free(text);
  return ok ? 0 : -1;
}
