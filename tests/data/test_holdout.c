/* data.holdout: the held-out part of a training set and the rest are
 * disjoint, cover the set, keep json order, do not depend on the json's
 * image order, keep id lookups and counts right, and refuse sizes that
 * leave nothing to train on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/dataset.h"

enum { N = 12 };

static char *json(int reverse) {
  static char buf[8192];
  int n = snprintf(buf, sizeof buf, "{\"categories\": [{\"id\": 1, \"name\": \"a\"}], \"images\": [");
  for (int k = 0; k < N; k++) {
    int i = reverse ? N - 1 - k : k;
    n += snprintf(buf + n, sizeof buf - (size_t)n, "%s{\"id\": %d, \"file_name\": \"%d.jpg\", \"width\": 64, \"height\": 64}",
                  k ? ", " : "", 100 + i, i);
  }
  n += snprintf(buf + n, sizeof buf - (size_t)n, "], \"annotations\": [");
  /* image 100+i has i % 3 boxes */
  int id = 1, first = 1;
  for (int i = 0; i < N; i++)
    for (int b = 0; b < i % 3; b++, first = 0)
      n += snprintf(buf + n, sizeof buf - (size_t)n,
                    "%s{\"id\": %d, \"image_id\": %d, \"category_id\": 1, \"bbox\": [1, 1, 10, 10]}", first ? "" : ", ", id++, 100 + i);
  snprintf(buf + n, sizeof buf - (size_t)n, "]}");
  return buf;
}

static KdDataset *open(int reverse) {
  KdDataset *ds = NULL;
  KdError err;
  const char *j = json(reverse);
  if (kd_dataset_parse(j, strlen(j), "train.json", NULL, &ds, &err)) fprintf(stderr, "%s\n", err.msg);
  return ds;
}

int main(void) {
  KdError err;
  KdDataset *tr = open(0), *ho = open(0), *rev = open(1);
  CHECK(tr && ho && rev);
  if (!tr || !ho || !rev) return 1;
  CHECK(kd_dataset_holdout(tr, 4, 0, &err) == 0);
  CHECK(kd_dataset_holdout(ho, 4, 1, &err) == 0);
  CHECK(kd_dataset_holdout(rev, 4, 1, &err) == 0);
  CHECK(kd_dataset_num_images(tr) == N - 4 && kd_dataset_num_images(ho) == 4);
  int seen[N] = {0};
  long boxes = 0;
  for (int part = 0; part < 2; part++) {
    KdDataset *d = part ? ho : tr;
    int64_t prev = -1;
    for (int i = 0; i < kd_dataset_num_images(d); i++) {
      KdDatasetImage im = kd_dataset_image(d, i);
      int k = (int)(im.id - 100);
      CHECK(k >= 0 && k < N);
      seen[k]++;
      CHECK_MSG(im.id > prev, "json order kept (%lld after %lld)", (long long)im.id, (long long)prev);
      prev = im.id;
      CHECK(im.n_boxes == k % 3);
      CHECK(kd_dataset_image_index(d, im.id) == i);
      boxes += im.n_boxes;
    }
    CHECK(kd_dataset_stats(d).images == kd_dataset_num_images(d));
  }
  for (int k = 0; k < N; k++) CHECK_MSG(seen[k] == 1, "image %d in exactly one part (%d)", 100 + k, seen[k]);
  CHECK(kd_dataset_stats(tr).boxes + kd_dataset_stats(ho).boxes == boxes && boxes == (N / 3) * 3);
  /* The split follows the ids, not the json's order. */
  int same = 1;
  for (int i = 0; i < 4; i++) same &= kd_dataset_image_index(rev, kd_dataset_image(ho, i).id) >= 0;
  CHECK_MSG(same, "the reversed json holds out the same images");
  CHECK(kd_dataset_image_index(tr, kd_dataset_image(ho, 0).id) == -1);
  CHECK(strstr(kd_dataset_summary(ho), "held out: 4 of 12 images") != NULL);
  KdDataset *bad = open(0);
  CHECK(kd_dataset_holdout(bad, N, 0, &err) != 0 && strstr(err.msg, "data.holdout") && strstr(err.msg, "1..11"));
  CHECK(kd_dataset_holdout(bad, 0, 1, &err) != 0);
  CHECK(kd_dataset_num_images(bad) == N);
  kd_dataset_free(bad);
  kd_dataset_free(tr), kd_dataset_free(ho), kd_dataset_free(rev);
  return check_status("holdout");
}
