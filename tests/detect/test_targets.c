/* Batch targets: labels, deltas and boxes of positives, zeros elsewhere,
 * the positive count across images, crowd handling, and input errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "detect/anchors.h"
#include "detect/targets.h"

int main(void) {
  KdAnchorCfg acfg;
  kd_anchor_cfg_default(&acfg);
  int hw[] = {16, 16, 8, 8, 4, 4};
  int A = kd_anchors_total(&acfg, hw);
  float *anchors = malloc((size_t)A * 4 * sizeof *anchors);
  kd_anchors_generate(&acfg, hw, anchors, NULL, NULL);
  KdAssignCfg cfg;
  kd_assign_cfg_default(&cfg);
  KdBoxCoder bc = kd_box_coder_default();

  /* Image 0: two objects and a crowd; image 1: nothing; image 2: one object. */
  float b0[] = {10, 12, 50, 60, 70, 20, 120, 40, 0, 80, 60, 128}, b2[] = {30, 30, 94, 94};
  int l0[] = {3, 1, 7}, c0[] = {0, 0, 1}, l2[] = {0};
  KdGtImage gt[3] = {{b0, l0, c0, 3}, {NULL, NULL, NULL, 0}, {b2, l2, NULL, 1}};
  int N = 3, K = 4; /* label 7 of the crowd box is not checked */
  int *tc = malloc((size_t)N * A * sizeof *tc), *mg = malloc((size_t)N * A * sizeof *mg);
  float *td = malloc((size_t)N * A * 4 * sizeof *td), *tb = malloc((size_t)N * A * 4 * sizeof *tb);
  int npos = -1;
  KdError err = {{0}};
  CHECK(kd_build_targets(&cfg, &bc, anchors, A, gt, N, K, tc, td, tb, mg, &npos, &err) == 0);
  int count[3] = {0}, ignored_in_crowd = 0;
  for (int n = 0; n < N; n++)
    for (int a = 0; a < A; a++) {
      size_t i = (size_t)n * A + a;
      if (tc[i] >= 0) {
        count[n]++;
        const KdGtImage *g = &gt[n];
        CHECK(mg[i] >= 0 && mg[i] < g->n);
        CHECK(tc[i] == g->labels[mg[i]]);
        CHECK(!(g->crowd && g->crowd[mg[i]]));
        float d[4];
        kd_box_encode(&bc, anchors + 4 * a, g->boxes + 4 * mg[i], d);
        for (int j = 0; j < 4; j++) {
          CHECK(td[4 * i + j] == d[j]);
          CHECK(tb[4 * i + j] == g->boxes[4 * mg[i] + j]);
        }
      } else {
        CHECK(tc[i] == mg[i]);
        CHECK(td[4 * i] == 0 && td[4 * i + 3] == 0 && tb[4 * i + 2] == 0);
        /* anchors well inside the crowd box (0,80)-(60,128) are ignored */
        const float *an = anchors + 4 * a;
        if (n == 0 && an[0] >= 0 && an[1] >= 80 && an[2] <= 60 && an[3] <= 128 && an[2] - an[0] < 40)
          ignored_in_crowd += tc[i] == KD_MATCH_IGNORE;
      }
    }
  CHECK(count[0] >= 2 && count[1] == 0 && count[2] >= 1);
  CHECK(npos == count[0] + count[1] + count[2]);
  CHECK(ignored_in_crowd > 10);
  /* Without the optional outputs the same classes come out. */
  int *tc2 = malloc((size_t)N * A * sizeof *tc2);
  int npos2 = -1;
  CHECK(kd_build_targets(&cfg, &bc, anchors, A, gt, N, K, tc2, td, NULL, NULL, &npos2, NULL) == 0);
  CHECK(npos2 == npos && memcmp(tc, tc2, (size_t)N * A * sizeof *tc) == 0);

  /* A label outside 0..K-1 is refused with the image and box named. */
  int bad[] = {3, 4, 0};
  gt[0].labels = bad;
  CHECK(kd_build_targets(&cfg, &bc, anchors, A, gt, N, K, tc, td, NULL, NULL, &npos, &err) == -1);
  CHECK(strstr(err.msg, "image 0 box 1") != NULL);
  gt[0].labels = l0;
  float nanbox[] = {0, 0, NAN, 5};
  KdGtImage g1 = {nanbox, l2, NULL, 1};
  CHECK(kd_build_targets(&cfg, &bc, anchors, A, &g1, 1, K, tc, td, NULL, NULL, &npos, &err) == -1);
  CHECK(strstr(err.msg, "not finite") != NULL);
  free(anchors);
  free(tc);
  free(tc2);
  free(mg);
  free(td);
  free(tb);
  return check_status("test_targets");
}
