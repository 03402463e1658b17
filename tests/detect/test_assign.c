/* Assignment: thresholds, low-quality matches (ties, and the anchor's own
 * best GT), crowd regions, empty and degenerate GT, config errors, and a
 * comparison with torchvision's Matcher on real anchors (with --oracle, its own test:
 * exit 77 without torch). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "detect/anchors.h"
#include "detect/assign.h"
#include "detect/boxes.h"
#include "oracle.h"

static void test_iou(void) {
  float a[] = {0, 0, 10, 10, 5, 0, 15, 10}, b[] = {0, 0, 10, 10, 20, 20, 21, 21, 5, 5, 5, 8};
  float m[6];
  kd_box_iou(a, 2, b, 3, m);
  CHECK_NEAR(m[0], 1.0, 1e-7);
  CHECK_NEAR(m[1], 0.0, 0);
  CHECK_NEAR(m[2], 0.0, 0); /* zero-width box */
  CHECK_NEAR(m[3], 50.0 / 150.0, 1e-7);
}

static void test_thresholds(void) {
  KdAssignCfg cfg;
  kd_assign_cfg_default(&cfg);
  cfg.low_quality = 0;
  /* vs GT (0,0,10,10): IoU 1, 1/3, 80/120, 0, 60/140 = 0.43 */
  float anchors[] = {0, 0, 10, 10, 5, 0, 15, 10, 2, 0, 12, 10, 100, 100, 110, 110, 4, 0, 14, 10};
  float gt[] = {0, 0, 10, 10};
  int match[5];
  CHECK(kd_assign(&cfg, anchors, 5, gt, NULL, 1, match, NULL) == 2);
  CHECK(match[0] == 0 && match[1] == KD_MATCH_NEG && match[2] == 0 && match[3] == KD_MATCH_NEG &&
        match[4] == KD_MATCH_IGNORE);
  /* IoU exactly 0.5 is positive, exactly 0.4 is ignored (not negative). */
  float a2[] = {0, 0, 10, 20, 0, 0, 10, 25}; /* IoU with GT: 100/200, 100/250 */
  CHECK(kd_assign(&cfg, a2, 2, gt, NULL, 1, match, NULL) == 1);
  CHECK(match[0] == 0 && match[1] == KD_MATCH_IGNORE);
}

static void test_low_quality(void) {
  KdAssignCfg cfg;
  kd_assign_cfg_default(&cfg);
  /* GT 0 is 8x20; anchors 2 and 3 both have IoU 80/180 with it (tie). */
  float anchors[] = {0, 0, 100, 100, 0, 0, 60, 60, 50, 50, 60, 60, 50, 60, 60, 70, 300, 300, 310, 310};
  float gt[] = {50, 50, 58, 70, 0, 0, 100, 100, 0, 0, 20, 20};
  int match[5];
  int np = kd_assign(&cfg, anchors, 5, gt, NULL, 3, match, NULL);
  /* anchor 0 = GT 1 (IoU 1). GT 2's best anchor is anchor 1 (400/3600 vs
   * 400/10000), but anchor 1's own best GT is GT 1 (3600/10000): torchvision
   * gives it GT 1. Anchors 2, 3: tied best of GT 0. Anchor 4: negative. */
  CHECK(np == 4);
  CHECK(match[0] == 1);
  CHECK(match[1] == 1);
  CHECK(match[2] == 0 && match[3] == 0);
  CHECK(match[4] == KD_MATCH_NEG);
  cfg.low_quality = 0;
  CHECK(kd_assign(&cfg, anchors, 5, gt, NULL, 3, match, NULL) == 1);
  CHECK(match[1] == KD_MATCH_NEG && match[2] == KD_MATCH_IGNORE && match[3] == KD_MATCH_IGNORE);

  /* 25 identical anchors inside a big GT tie at its maximum (IoU .01),
   * more than the per-GT tie list holds: all become positive. */
  kd_assign_cfg_default(&cfg);
  float grid[26 * 4];
  for (int i = 0; i < 25; i++) {
    float *b = grid + 4 * i;
    b[0] = 20.0f * (i % 5) + 3, b[1] = 20.0f * (i / 5) + 3, b[2] = b[0] + 10, b[3] = b[1] + 10;
  }
  float far_box[4] = {500, 500, 510, 510}, big[4] = {0, 0, 100, 100};
  memcpy(grid + 100, far_box, sizeof far_box);
  int gm[26];
  CHECK(kd_assign(&cfg, grid, 26, big, NULL, 1, gm, NULL) == 25);
  for (int i = 0; i < 25; i++) CHECK(gm[i] == 0);
  CHECK(gm[25] == KD_MATCH_NEG);
  /* one anchor a little larger wins alone */
  grid[4 * 7 + 2] += 1.0f;
  CHECK(kd_assign(&cfg, grid, 26, big, NULL, 1, gm, NULL) == 1);
  CHECK(gm[7] == 0 && gm[0] == KD_MATCH_NEG);

  /* A degenerate GT (zero width) and one far from every anchor make
   * nothing positive (torchvision would make every anchor positive). */
  kd_assign_cfg_default(&cfg);
  float g2[] = {5, 5, 5, 9, 1000, 1000, 1010, 1010};
  CHECK(kd_assign(&cfg, anchors, 5, g2, NULL, 2, match, NULL) == 0);
  for (int a = 0; a < 5; a++) CHECK(match[a] == KD_MATCH_NEG);
}

static void test_crowd_and_empty(void) {
  KdAssignCfg cfg;
  kd_assign_cfg_default(&cfg);
  /* anchor 0: equal to the crowd box (IoU 1, but crowds are no targets) ->
   * ignored; 1: inside it -> ignored; 2: 100/1600 of its area inside ->
   * negative; 3: matches the normal GT; 4: far -> negative. */
  float anchors[] = {200, 200, 300, 300, 210, 210, 230, 230, 290, 290, 330, 330, 0, 0, 10, 10, 500, 500, 510, 510};
  float gt[] = {200, 200, 300, 300, 0, 0, 10, 10};
  int crowd[] = {1, 0}, match[5];
  CHECK(kd_assign(&cfg, anchors, 5, gt, crowd, 2, match, NULL) == 1);
  CHECK(match[0] == KD_MATCH_IGNORE && match[1] == KD_MATCH_IGNORE && match[2] == KD_MATCH_NEG && match[3] == 1 &&
        match[4] == KD_MATCH_NEG);
  /* crowd_ioa 0.05: anchor 2 (0.0625) is ignored too. */
  cfg.crowd_ioa = 0.05f;
  CHECK(kd_assign(&cfg, anchors, 5, gt, crowd, 2, match, NULL) == 1);
  CHECK(match[2] == KD_MATCH_IGNORE);
  /* Only a crowd box: nothing positive, the low-quality pass must not run. */
  kd_assign_cfg_default(&cfg);
  CHECK(kd_assign(&cfg, anchors, 5, gt, crowd, 1, match, NULL) == 0);
  CHECK(match[0] == KD_MATCH_IGNORE && match[3] == KD_MATCH_NEG);
  /* No GT at all. */
  CHECK(kd_assign(&cfg, anchors, 5, NULL, NULL, 0, match, NULL) == 0);
  for (int a = 0; a < 5; a++) CHECK(match[a] == KD_MATCH_NEG);
  /* Bad config names the field. */
  KdError err = {{0}};
  cfg.neg_iou = 0.6f;
  CHECK(kd_assign(&cfg, anchors, 5, gt, NULL, 2, match, &err) == -1);
  CHECK(strstr(err.msg, "assign.neg_iou") != NULL);
}

/* Many boxes (more than the on-stack buffer) vs torchvision's Matcher on the
 * 128x128 P3..P5 anchors; GT boxes of all sizes, some tiny. */
static int test_torchvision(void) {
  KdAnchorCfg acfg;
  kd_anchor_cfg_default(&acfg);
  int hw[] = {16, 16, 8, 8, 4, 4};
  int A = kd_anchors_total(&acfg, hw);
  float *anchors = malloc((size_t)A * 4 * sizeof *anchors);
  kd_anchors_generate(&acfg, hw, anchors, NULL, NULL);
  KdAssignCfg cfg;
  kd_assign_cfg_default(&cfg);
  KdRng r;
  kd_rng_seed(&r, 11, 2);
  enum { NT = 3 };
  const int sizes[NT] = {1, 7, 300};
  int *match[NT];
  Oracle o[NT], *os[NT];
  const char *modes[NT];
  for (int trial = 0; trial < NT; trial++) {
    int M = sizes[trial];
    float *gt = malloc((size_t)M * 4 * sizeof *gt);
    for (int g = 0; g < M; g++) {
      float w = kd_rng_range(&r, 3, 100), h = kd_rng_range(&r, 3, 100);
      gt[4 * g] = kd_rng_range(&r, -10, 128 - w + 10);
      gt[4 * g + 1] = kd_rng_range(&r, -10, 128 - h + 10);
      gt[4 * g + 2] = gt[4 * g] + w;
      gt[4 * g + 3] = gt[4 * g + 1] + h;
    }
    match[trial] = malloc((size_t)A * sizeof(int));
    CHECK(kd_assign(&cfg, anchors, A, gt, NULL, M, match[trial], NULL) > 0);
    CHECK(oracle_open(&o[trial]) == 0);
    oracle_f(&o[trial], "anchors", anchors, (size_t)A * 4);
    oracle_f(&o[trial], "gt", gt, (size_t)M * 4);
    os[trial] = &o[trial];
    modes[trial] = "matcher";
    free(gt);
  }
  int rc = oracle_run_many(os, modes, NT, "torch_ref.py");
  CHECK_MSG(rc == 0 || rc == 77, "oracle failed with status %d", rc);
  for (int trial = 0; trial < NT; trial++) {
    if (rc == 0) {
      size_t n;
      const double *ref = oracle_get(&o[trial], "match", &n);
      CHECK(ref && n == (size_t)A);
      int diff = 0;
      for (int a = 0; ref && a < A; a++) diff += (int)ref[a] != match[trial][a];
      CHECK_MSG(diff == 0, "M=%d: %d of %d anchors differ from torchvision's Matcher", sizes[trial], diff, A);
    }
    oracle_close(&o[trial]);
    free(match[trial]);
  }
  free(anchors);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return check_oracle_status("test_assign", test_torchvision());
  test_iou();
  test_thresholds();
  test_low_quality();
  test_crowd_and_empty();
  return check_status("test_assign");
}
