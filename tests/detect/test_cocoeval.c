/* COCO evaluation on hand-built cases; the expected numbers are derived in
 * the comments from COCOeval's definition. Also input errors. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "detect/cocoeval.h"

#define G(img, cat, x, y, w, h, crowd) {img, cat, {x, y, w, h}, (double)(w) * (h), crowd}
#define D(img, cat, x, y, w, h, s) {img, cat, {x, y, w, h}, s}

static double st[KD_COCO_NSTATS], cap[8];

static void eval(const int64_t *imgs, int ni, int nc, const KdCocoGt *g, int ng, const KdCocoDet *d, int nd) {
  KdError err = {{0}};
  for (int i = 0; i < KD_COCO_NSTATS; i++) st[i] = NAN;
  CHECK_MSG(kd_coco_eval(imgs, ni, nc, g, ng, d, nd, st, cap, &err) == 0, "%s", err.msg);
}

static void expect(const double *want) {
  for (int i = 0; i < KD_COCO_NSTATS; i++)
    CHECK_MSG(fabs(st[i] - want[i]) < 1e-12, "%s = %.12g, expected %.12g", kd_coco_stat_names[i], st[i], want[i]);
}

/* Perfect detections: every IoU is 1, precision 1 at every recall. All GTs
 * are medium (32^2 < area < 96^2), so small/large have no GT: -1. Each image
 * has at most one GT per category, so one detection reaches recall 1. */
static void test_perfect(void) {
  int64_t imgs[] = {7, 3};
  KdCocoGt g[] = {G(7, 0, 10, 10, 50, 50, 0), G(7, 1, 100, 20, 40, 40, 0), G(3, 0, 5, 5, 30, 60, 0)};
  KdCocoDet d[] = {D(7, 0, 10, 10, 50, 50, 0.3), D(7, 1, 100, 20, 40, 40, 0.9), D(3, 0, 5, 5, 30, 60, 0.6)};
  eval(imgs, 2, 2, g, 3, d, 3);
  expect((double[]){1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1});
  /* 1 up to COCO's tp / (tp + fp + eps) */
  CHECK_NEAR(cap[0], 1.0, 1e-12);
  CHECK_NEAR(cap[1], 1.0, 1e-12);
}

/* One false positive above two true positives (one category, 2 GTs):
 * order FP, TP, TP: recall 0, .5, 1; precision 0, .5, 2/3; made monotone
 * all 2/3, so AP = 2/3 at every threshold. At 1 detection per image,
 * image 1 keeps only its FP (score .9): recall 1/2. */
static void test_false_positive(void) {
  int64_t imgs[] = {1, 2};
  KdCocoGt g[] = {G(1, 0, 0, 0, 40, 40, 0), G(2, 0, 10, 10, 40, 40, 0)};
  KdCocoDet d[] = {D(1, 0, 200, 200, 40, 40, 0.9), D(1, 0, 0, 0, 40, 40, 0.8), D(2, 0, 10, 10, 40, 40, 0.7)};
  eval(imgs, 2, 1, g, 2, d, 3);
  double t = 2.0 / 3.0;
  expect((double[]){t, t, t, -1, t, -1, 0.5, 1, 1, -1, 1, -1});
}

/* Duplicates: GT (0,0,100,100) (large). A loose box (IoU .62) scored .95
 * above an exact one (.9). At t in {.5,.55,.6} the loose one matches: TP,
 * then the exact one finds the GT taken: FP -> precision 1 up to recall 1,
 * AP 1. At t >= .65: FP, TP -> precision .5 everywhere. AP = (3*1 + 7*.5)/10.
 * In the large range the loose box (area 6200, medium) is unmatched at
 * t >= .65 and outside the range, so it is ignored there: APl = 1. */
static void test_duplicates(void) {
  int64_t imgs[] = {1};
  KdCocoGt g[] = {G(1, 0, 0, 0, 100, 100, 0)};
  KdCocoDet d[] = {D(1, 0, 0, 0, 100, 62, 0.95), D(1, 0, 0, 0, 100, 100, 0.9)};
  eval(imgs, 1, 1, g, 1, d, 2);
  /* AR: recall 1 at every threshold with 10/100 dets; with 1 det only the
   * loose box: recall 1 for 3 thresholds, 0 for 7 -> .3 */
  expect((double[]){0.65, 1, 0.5, -1, -1, 1, 0.3, 1, 1, -1, -1, 1});
}

/* Crowd: a normal GT (50x50) and a crowd region (200x200). Two detections
 * inside the crowd region match it (IoU = intersection / detection area =
 * 1, a crowd GT takes any number) and are ignored; the exact one is a TP:
 * AP 1. With iscrowd = 0 the same boxes are plain: FP(.9), TP(.8), FP(.7)
 * with 2 GTs: precision 0, .5, 1/3 -> monotone .5, .5, 1/3; recall reaches
 * .5 only: 51 of 101 points at .5, AP = 25.5/101. */
static void test_crowd(void) {
  int64_t imgs[] = {1};
  KdCocoGt g[] = {G(1, 0, 0, 0, 50, 50, 0), G(1, 0, 100, 100, 200, 200, 1)};
  KdCocoDet d[] = {D(1, 0, 150, 150, 50, 50, 0.9), D(1, 0, 0, 0, 50, 50, 0.8), D(1, 0, 110, 110, 20, 20, 0.7)};
  eval(imgs, 1, 1, g, 2, d, 3);
  CHECK_NEAR(st[KD_COCO_AP], 1.0, 1e-12);
  CHECK_NEAR(st[KD_COCO_AR100], 1.0, 1e-12);
  /* the crowd is ignored in every area range: large has no GT */
  CHECK_NEAR(st[KD_COCO_APL], -1.0, 0);
  g[1].iscrowd = 0;
  eval(imgs, 1, 1, g, 2, d, 3);
  CHECK_NEAR(st[KD_COCO_AP], 25.5 / 101.0, 1e-12);
  CHECK_NEAR(st[KD_COCO_AR100], 0.5, 1e-12);
}

/* Area ranges: small GT s (10x10) and large GT L (200x200), exact detections
 * (.9, .8) and a small FP (5x5, .95) far away.
 *  all:    FP, TP, TP over 2 GTs -> 2/3.
 *  small:  L ignored; its detection matches an ignored GT -> ignored.
 *          FP, TP over 1 GT -> precision .5 -> AP .5.
 *  medium: no GT -> -1.
 *  large:  s ignored (its detection too); the FP is unmatched and outside
 *          the range -> ignored. TP -> 1.
 * AR1: each image keeps its top detection, the FP -> 0. */
static void test_areas(void) {
  int64_t imgs[] = {1};
  KdCocoGt g[] = {G(1, 0, 0, 0, 10, 10, 0), G(1, 0, 100, 100, 200, 200, 0)};
  KdCocoDet d[] = {D(1, 0, 0, 0, 10, 10, 0.9), D(1, 0, 100, 100, 200, 200, 0.8), D(1, 0, 400, 400, 5, 5, 0.95)};
  eval(imgs, 1, 1, g, 2, d, 3);
  double t = 2.0 / 3.0;
  expect((double[]){t, t, t, 0.5, -1, 1, 0, 1, 1, 1, -1, 1});
  /* The GT's area field decides, not its box: call L's area 50^2 (medium). */
  g[1].area = 2500;
  eval(imgs, 1, 1, g, 2, d, 3);
  CHECK_NEAR(st[KD_COCO_APM], 1.0, 1e-12);
  CHECK_NEAR(st[KD_COCO_APL], -1.0, 0);
}

/* Empty images and categories without GT. cat 0: a TP (.9) in image 1 and
 * an FP (.5) in image 3 (no GT there): recall 1 reached first -> AP 1.
 * cat 1: a GT in image 4, no detection -> AP 0 (not -1). cat 2: only a
 * detection -> no GT -> left out. Image 2: nothing at all. Mean AP = .5. */
static void test_empty(void) {
  int64_t imgs[] = {1, 2, 3, 4};
  KdCocoGt g[] = {G(1, 0, 0, 0, 40, 40, 0), G(4, 1, 0, 0, 40, 40, 0)};
  KdCocoDet d[] = {D(1, 0, 0, 0, 40, 40, 0.9), D(3, 0, 0, 0, 40, 40, 0.5), D(3, 2, 0, 0, 40, 40, 0.7)};
  eval(imgs, 4, 3, g, 2, d, 3);
  CHECK_NEAR(st[KD_COCO_AP], 0.5, 1e-12);
  CHECK_NEAR(st[KD_COCO_AR100], 0.5, 1e-12);
  CHECK_NEAR(cap[0], 1.0, 1e-12);
  CHECK(cap[1] == 0.0 && cap[2] == -1.0);
  /* no GT at all: everything undefined */
  eval(imgs, 4, 3, NULL, 0, d, 3);
  for (int i = 0; i < KD_COCO_NSTATS; i++) CHECK(st[i] == -1.0);
  /* no detections: AP 0 */
  eval(imgs, 4, 3, g, 2, NULL, 0);
  CHECK(st[KD_COCO_AP] == 0.0 && st[KD_COCO_AR100] == 0.0);
}

/* 12 GTs in one image, 12 exact detections: AR1 = 1/12, AR10 = 10/12,
 * AR100 = 1. With 1 detection: precision 1 up to recall 1/12 -> AP over
 * the 9 recall points 0, .01 .. .08 only (for the 100-det AP: 1). */
static void test_maxdets(void) {
  int64_t imgs[] = {5};
  KdCocoGt g[12];
  KdCocoDet d[12];
  for (int i = 0; i < 12; i++) {
    g[i] = (KdCocoGt)G(5, 0, 60.0 * i, 0, 40, 40, 0);
    d[i] = (KdCocoDet)D(5, 0, 60.0 * i, 0, 40, 40, 1.0 - 0.01 * i);
  }
  eval(imgs, 1, 1, g, 12, d, 12);
  CHECK_NEAR(st[KD_COCO_AR1], 1.0 / 12.0, 1e-12);
  CHECK_NEAR(st[KD_COCO_AR10], 10.0 / 12.0, 1e-12);
  CHECK_NEAR(st[KD_COCO_AR100], 1.0, 1e-12);
  CHECK_NEAR(st[KD_COCO_AP], 1.0, 1e-12);
}

static void test_errors(void) {
  int64_t imgs[] = {1, 2};
  KdCocoGt g[] = {G(1, 0, 0, 0, 40, 40, 0)};
  KdCocoDet d[] = {D(9, 0, 0, 0, 40, 40, 0.9)};
  KdError err = {{0}};
  CHECK(kd_coco_eval(imgs, 2, 1, g, 1, d, 1, st, NULL, &err) == -1);
  CHECK(strstr(err.msg, "detection 0") && strstr(err.msg, "image 9"));
  d[0].image_id = 2;
  d[0].category = 3;
  CHECK(kd_coco_eval(imgs, 2, 1, g, 1, d, 1, st, NULL, &err) == -1);
  CHECK(strstr(err.msg, "category out of range") != NULL);
  d[0].category = 0;
  d[0].score = NAN;
  CHECK(kd_coco_eval(imgs, 2, 1, g, 1, d, 1, st, NULL, &err) == -1);
  int64_t dup[] = {4, 4};
  CHECK(kd_coco_eval(dup, 2, 1, NULL, 0, NULL, 0, st, NULL, &err) == -1);
  CHECK(strstr(err.msg, "twice") != NULL);
}

int main(void) {
  test_perfect();
  test_false_positive();
  test_duplicates();
  test_crowd();
  test_areas();
  test_empty();
  test_maxdets();
  test_errors();
  return check_status("test_cocoeval");
}
