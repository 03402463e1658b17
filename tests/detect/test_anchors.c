/* Anchors: counts and level offsets, hand-computed boxes in torchvision's
 * rounding mode, exact shapes without rounding, config errors, and the
 * whole P3..P7 set against torchvision's AnchorGenerator (with --oracle, its own test:
 * exit 77 without torch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "detect/anchors.h"
#include "oracle.h"

static void check_box(const float *b, float x1, float y1, float x2, float y2) {
  CHECK_NEAR(b[0], x1, 1e-6);
  CHECK_NEAR(b[1], y1, 1e-6);
  CHECK_NEAR(b[2], x2, 1e-6);
  CHECK_NEAR(b[3], y2, 1e-6);
}

static void test_default(void) {
  KdAnchorCfg cfg;
  kd_anchor_cfg_default(&cfg);
  CHECK(kd_anchors_per_loc(&cfg) == 9);
  int hw[] = {16, 16, 8, 8, 4, 4};
  CHECK(kd_anchors_total(&cfg, hw) == 3024);
  float *a = malloc(3024 * 4 * sizeof *a);
  int off[4];
  KdError err = {{0}};
  CHECK(kd_anchors_generate(&cfg, hw, a, off, &err) == 0);
  CHECK(off[0] == 0 && off[1] == 2304 && off[2] == 2880 && off[3] == 3024);
  /* P3, location (0,0), a = 1: ratio 0.5, scale 2^(1/3): size int(32*1.26)=40,
   * ws = 40*sqrt(2) = 56.57 -> half 28.28 -> 28; hs = 40/sqrt(2) -> half 14.14 -> 14. */
  check_box(a + 4 * 1, -28, -14, 28, 14);
  /* a = 4: ratio 1, scale 2^(1/3): half 20. */
  check_box(a + 4 * 4, -20, -20, 20, 20);
  /* a = 8: ratio 2, scale 2^(2/3): size int(50.8) = 50, ws = 50/sqrt(2) = 35.36
   * -> half 17.68 -> 18; hs = 70.71 -> half 35.36 -> 35. */
  check_box(a + 4 * 8, -18, -35, 18, 35);
  /* P3 location (y=1, x=2), a = 0 (ratio 0.5, size 32: half-extents 22.63 ->
   * 23 and 11.31 -> 11), centre (16, 8). Index (1*16 + 2)*9. */
  check_box(a + 4 * 162, 16 - 23, 8 - 11, 16 + 23, 8 + 11);
  /* P5 (stride 32, size 128) last location (3,3), a = 4 (ratio 1, scale
   * 2^(1/3): int(161.27) = 161, half 80.5 -> 80 (round half to even)). */
  check_box(a + 4 * (2880 + 15 * 9 + 4), 96 - 80, 96 - 80, 96 + 80, 96 + 80);
  free(a);
}

static void test_exact_geometry(void) {
  KdAnchorCfg cfg;
  kd_anchor_cfg_default(&cfg);
  cfg.torchvision_round = 0;
  cfg.offset = 0.5f;
  cfg.size_mult = 2.0f;
  cfg.nlevels = 2;
  int hw[] = {3, 5, 2, 2};
  int total = kd_anchors_total(&cfg, hw);
  CHECK(total == (15 + 4) * 9);
  float *a = malloc((size_t)total * 4 * sizeof *a);
  CHECK(kd_anchors_generate(&cfg, hw, a, NULL, NULL) == 0);
  for (int i = 0; i < total; i++) {
    int lvl = i >= 15 * 9, loc = (lvl ? i - 135 : i) / 9, ai = i % 9, W = lvl ? 2 : 5;
    int stride = lvl ? 16 : 8, r = ai / 3, s = ai % 3;
    const float *b = a + 4 * i;
    double w = b[2] - b[0], h = b[3] - b[1], size = 2.0 * stride * pow(2.0, s / 3.0);
    double ratio = r == 0 ? 0.5 : (r == 1 ? 1.0 : 2.0);
    CHECK_NEAR(w * h, size * size, 1e-3 * size * size);
    CHECK_NEAR(h / w, ratio, 1e-5);
    CHECK_NEAR(0.5 * (b[0] + b[2]), (loc % W + 0.5) * stride, 1e-4);
    CHECK_NEAR(0.5 * (b[1] + b[3]), (loc / W + 0.5) * stride, 1e-4);
  }
  free(a);
}

static void test_errors(void) {
  KdAnchorCfg cfg;
  KdError err = {{0}};
  kd_anchor_cfg_default(&cfg);
  cfg.nscales = 0;
  CHECK(kd_anchor_cfg_check(&cfg, &err) == -1);
  CHECK(strstr(err.msg, "anchor.scales") != NULL);
  kd_anchor_cfg_default(&cfg);
  cfg.ratios[1] = -1.0f;
  CHECK(kd_anchor_cfg_check(&cfg, &err) == -1);
  CHECK(strstr(err.msg, "anchor.ratios[1]") != NULL);
  kd_anchor_cfg_default(&cfg);
  int hw[] = {4, 0, 2, 2, 1, 1};
  float buf[4 * 9 * 8];
  CHECK(kd_anchors_generate(&cfg, hw, buf, NULL, &err) == -1);
  CHECK(strstr(err.msg, "level 0") != NULL);
}

/* P3..P7 on a 128x128 input vs torchvision's RetinaNet anchor generator. */
static int test_torchvision(void) {
  KdAnchorCfg cfg;
  kd_anchor_cfg_default(&cfg);
  cfg.nlevels = 5;
  int hw[] = {16, 16, 8, 8, 4, 4, 2, 2, 1, 1};
  int total = kd_anchors_total(&cfg, hw);
  float *a = malloc((size_t)total * 4 * sizeof *a);
  CHECK(kd_anchors_generate(&cfg, hw, a, NULL, NULL) == 0);
  Oracle o;
  CHECK(oracle_open(&o) == 0);
  oracle_i(&o, "hw", hw, 10);
  oracle_i(&o, "img", (int[]){128, 128}, 2);
  oracle_i(&o, "sizes", (int[]){32, 64, 128, 256, 512}, 5);
  int rc = oracle_run(&o, "torch_ref.py", "anchors");
  if (rc == 0) {
    size_t n;
    const double *ref = oracle_get(&o, "anchors", &n);
    CHECK(ref && n == (size_t)total * 4);
    double worst = 0;
    for (size_t i = 0; ref && i < n; i++) worst = fmax(worst, fabs(ref[i] - a[i]));
    CHECK_MSG(worst == 0.0, "max |ours - torchvision| = %g", worst);
  } else {
    CHECK_MSG(rc == 77, "oracle failed with status %d", rc);
  }
  oracle_close(&o);
  free(a);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return check_oracle_status("test_anchors", test_torchvision());
  test_default();
  test_exact_geometry();
  test_errors();
  return check_status("test_anchors");
}
