#include <string.h>
/* NMS: hand cases (suppression, the strict IoU > threshold rule, class-wise
 * independence, score ties, max_keep, empty input) and random boxes vs
 * torchvision.ops.batched_nms (with --oracle, its own test: exit 77 without torch). */
#include <stdlib.h>

#include "check.h"
#include "core/rng.h"
#include "detect/nms.h"
#include "oracle.h"

static void test_hand(void) {
  /* 1 overlaps 0 (IoU 81/119), 2 is apart, 3 has IoU exactly 0.5 with 0 */
  float boxes[] = {0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 10, 20};
  float scores[] = {0.9f, 0.8f, 0.7f, 0.6f};
  int keep[4];
  CHECK(kd_nms(boxes, scores, NULL, 4, 0.5f, -1, keep, NULL) == 3);
  CHECK(keep[0] == 0 && keep[1] == 2 && keep[2] == 3);
  /* lower threshold: 3 goes too (0.5 > 0.49) */
  CHECK(kd_nms(boxes, scores, NULL, 4, 0.49f, -1, keep, NULL) == 2);
  /* class-wise: 1 has another label and survives */
  int labels[] = {0, 1, 0, 0};
  CHECK(kd_nms(boxes, scores, labels, 4, 0.5f, -1, keep, NULL) == 4);
  CHECK(keep[0] == 0 && keep[1] == 1 && keep[2] == 2 && keep[3] == 3);
  /* a suppressed box does not suppress: 0 > 1 (IoU .68), 1 would kill 4
   * (IoU with 1 is .68) but 4 only has IoU 64/136 = .47 with 0 */
  float chain[] = {0, 0, 10, 10, 1, 1, 11, 11, 2, 2, 12, 12};
  float cs[] = {0.9f, 0.8f, 0.7f};
  CHECK(kd_nms(chain, cs, NULL, 3, 0.5f, -1, keep, NULL) == 2);
  CHECK(keep[0] == 0 && keep[1] == 2);
  /* ties: equal scores visit the lower index first */
  float tie[] = {0.5f, 0.5f, 0.5f, 0.5f};
  CHECK(kd_nms(boxes, tie, NULL, 4, 0.5f, -1, keep, NULL) == 3);
  CHECK(keep[0] == 0 && keep[1] == 2 && keep[2] == 3);
  float tie2[] = {0.5f, 0.5f};
  float swap[] = {1, 1, 11, 11, 0, 0, 10, 10};
  CHECK(kd_nms(swap, tie2, NULL, 2, 0.5f, -1, keep, NULL) == 1 && keep[0] == 0);
  /* max_keep */
  CHECK(kd_nms(boxes, scores, labels, 4, 0.5f, 2, keep, NULL) == 2);
  CHECK(keep[0] == 0 && keep[1] == 1);
  CHECK(kd_nms(boxes, scores, NULL, 0, 0.5f, -1, keep, NULL) == 0);
  /* zero-area boxes never suppress */
  float flat[] = {5, 5, 5, 9, 5, 5, 5, 9};
  CHECK(kd_nms(flat, scores, NULL, 2, 0.0f, -1, keep, NULL) == 2);
  /* sort helper is stable */
  float s[] = {0.1f, 0.3f, 0.3f, 0.2f, 0.3f};
  int order[5];
  kd_sort_by_score(s, 5, order);
  CHECK(order[0] == 1 && order[1] == 2 && order[2] == 4 && order[3] == 3 && order[4] == 0);
}

static int test_torch(void) {
  KdRng r;
  kd_rng_seed(&r, 77, 3);
  enum { NT = 2 };
  const int ns[NT] = {600, 1200}; /* 1200 boxes: torchvision takes its other code path */
  int *keep[NT], nk[NT];
  Oracle o[NT], *os[NT];
  const char *modes[NT] = {"nms", "nms"};
  for (int trial = 0; trial < NT; trial++) {
    int n = ns[trial];
    float *boxes = malloc((size_t)n * 4 * sizeof *boxes), *scores = malloc((size_t)n * sizeof *scores);
    int *labels = malloc((size_t)n * sizeof *labels);
    keep[trial] = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
      float w = kd_rng_range(&r, 4, 60), h = kd_rng_range(&r, 4, 60);
      boxes[4 * i] = kd_rng_range(&r, 0, 200);
      boxes[4 * i + 1] = kd_rng_range(&r, 0, 200);
      boxes[4 * i + 2] = boxes[4 * i] + w;
      boxes[4 * i + 3] = boxes[4 * i + 1] + h;
      scores[i] = ((float)i + kd_rng_uniform(&r)) / (float)n; /* distinct */
      labels[i] = (int)kd_rng_below(&r, 5);
    }
    for (int i = n - 1; i > 0; i--) { /* shuffle scores */
      int j = (int)kd_rng_below(&r, (uint32_t)i + 1);
      float t = scores[i];
      scores[i] = scores[j];
      scores[j] = t;
    }
    float thr = trial ? 0.3f : 0.5f;
    nk[trial] = kd_nms(boxes, scores, labels, n, thr, -1, keep[trial], NULL);
    CHECK(nk[trial] > 10 && nk[trial] < n);
    CHECK(oracle_open(&o[trial]) == 0);
    oracle_f(&o[trial], "boxes", boxes, (size_t)n * 4);
    oracle_f(&o[trial], "scores", scores, (size_t)n);
    oracle_i(&o[trial], "labels", labels, (size_t)n);
    oracle_f(&o[trial], "thr", &thr, 1);
    os[trial] = &o[trial];
    free(boxes);
    free(scores);
    free(labels);
  }
  int rc = oracle_run_many(os, modes, NT, "torch_ref.py");
  CHECK_MSG(rc == 0 || rc == 77, "oracle failed with status %d", rc);
  for (int trial = 0; trial < NT; trial++) {
    if (rc == 0) {
      size_t m;
      const double *ref = oracle_get(&o[trial], "keep", &m);
      CHECK_MSG(ref && (int)m == nk[trial], "kept %d, torchvision %zu", nk[trial], m);
      int diff = 0;
      for (int i = 0; ref && i < nk[trial] && i < (int)m; i++) diff += (int)ref[i] != keep[trial][i];
      CHECK_MSG(diff == 0, "%d kept indices differ from torchvision", diff);
    }
    oracle_close(&o[trial]);
    free(keep[trial]);
  }
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return check_oracle_status("test_nms", test_torch());
  test_hand();
  return check_status("test_nms");
}
