/* Post-processing: a hand-built level (threshold strictness, decode, clip,
 * class-wise NMS with IoU exactly 0.5, top-k per level, max_det, an empty
 * image, no clipping), config errors, and random heads vs a restatement of
 * torchvision's RetinaNet.postprocess_detections (with --oracle, its own test: exit 77 without torch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "detect/anchors.h"
#include "detect/postprocess.h"
#include "oracle.h"

static void check_det(const KdDetection *d, float x1, float y1, float x2, float y2, double score, int label) {
  CHECK_NEAR(d->x1, x1, 1e-5);
  CHECK_NEAR(d->y1, y1, 1e-5);
  CHECK_NEAR(d->x2, x2, 1e-5);
  CHECK_NEAR(d->y2, y2, 1e-5);
  CHECK_NEAR(d->score, score, 1e-6);
  CHECK(d->label == label);
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

static void test_hand(void) {
  /* 2x2 level, stride 8, one 16x16 anchor per cell centred at (x+.5)*8 */
  KdAnchorCfg acfg;
  kd_anchor_cfg_default(&acfg);
  acfg.nlevels = 1, acfg.nscales = 1, acfg.nratios = 1, acfg.ratios[0] = 1.0f;
  acfg.size_mult = 2.0f, acfg.offset = 0.5f, acfg.torchvision_round = 0;
  int hw[2] = {2, 2};
  float anchors[16];
  CHECK(kd_anchors_generate(&acfg, hw, anchors, NULL, NULL) == 0);
  KdCtx *c = kd_ctx_new(1 << 16);
  KdTensor *cls = kd_tensor4(c, 2, 2, 2, 2), *box = kd_tensor4(c, 2, 4, 2, 2);
  kd_tensor_fill(cls, -10.0f);
  kd_tensor_fill(box, 0.0f);
  /* image 0, element (class k, cell i) at k*4 + i */
  cls->data[0 * 4 + 0] = 2.0f;   /* cell 0 class 0: box (-4,-4,12,12) -> clip (0,0,12,12) */
  cls->data[0 * 4 + 1] = 1.0f;   /* cell 1 class 0: (4,-4,20,12) -> (4,0,16,12), IoU .5 with the first */
  cls->data[1 * 4 + 1] = 0.5f;   /* cell 1 class 1: same box, other class */
  cls->data[1 * 4 + 3] = -2.9f;  /* cell 3 class 1: score .0522 > .05 */
  cls->data[0 * 4 + 2] = -2.95f; /* cell 2 class 0: score .0497, dropped */
  box->data[0 * 4 + 3] = 0.25f;  /* cell 3 dx: +4 px -> (8,4,24,20) -> (8,4,16,16) */
  KdTensor *cl[1] = {cls}, *bl[1] = {box};
  KdBoxCoder bc = kd_box_coder_default();
  KdPostCfg cfg;
  kd_post_cfg_default(&cfg);
  float wh[4] = {16, 16, 16, 16};
  KdDetection out[2 * 100];
  int count[2];
  KdError err = {{0}};
  CHECK(kd_postprocess(cl, bl, 1, 1, anchors, &bc, &cfg, wh, out, count, &err) == 0);
  CHECK(count[0] == 4 && count[1] == 0);
  check_det(&out[0], 0, 0, 12, 12, sigm(2.0), 0);
  check_det(&out[1], 4, 0, 16, 12, sigm(1.0), 0);
  check_det(&out[2], 4, 0, 16, 12, sigm(0.5), 1);
  check_det(&out[3], 8, 4, 16, 16, sigm(-2.9), 1);
  /* IoU 0.5 > 0.4: the class-0 duplicate goes, the class-1 box stays */
  cfg.nms_iou = 0.4f;
  CHECK(kd_postprocess(cl, bl, 1, 1, anchors, &bc, &cfg, wh, out, count, NULL) == 0);
  CHECK(count[0] == 3);
  check_det(&out[1], 4, 0, 16, 12, sigm(0.5), 1);
  /* top-2 per level, then max_det */
  kd_post_cfg_default(&cfg);
  cfg.topk_per_level = 2;
  CHECK(kd_postprocess(cl, bl, 1, 1, anchors, &bc, &cfg, wh, out, count, NULL) == 0);
  CHECK(count[0] == 2 && out[1].score == out[1].score && fabs(out[1].score - sigm(1.0)) < 1e-6);
  kd_post_cfg_default(&cfg);
  cfg.max_det = 1;
  CHECK(kd_postprocess(cl, bl, 1, 1, anchors, &bc, &cfg, wh, out, count, NULL) == 0);
  CHECK(count[0] == 1 && count[1] == 0 && out[0].label == 0);
  /* no clipping */
  kd_post_cfg_default(&cfg);
  CHECK(kd_postprocess(cl, bl, 1, 1, anchors, &bc, &cfg, NULL, out, count, NULL) == 0);
  check_det(&out[0], -4, -4, 12, 12, sigm(2.0), 0);
  /* equal scores: lower flat index first ((cell, class) order) */
  cls->data[1 * 4 + 1] = 2.0f; /* cell 1 class 1 ties cell 0 class 0 */
  CHECK(kd_postprocess(cl, bl, 1, 1, anchors, &bc, &cfg, wh, out, count, NULL) == 0);
  CHECK(out[0].label == 0 && out[1].label == 1 && out[0].x1 == 0.0f && out[1].x1 == 4.0f);
  /* errors */
  cfg.score_thr = 1.5f;
  CHECK(kd_postprocess(cl, bl, 1, 1, anchors, &bc, &cfg, wh, out, count, &err) == -1);
  CHECK(strstr(err.msg, "post.score_thr") != NULL);
  kd_post_cfg_default(&cfg);
  CHECK(kd_postprocess(cl, bl, 1, 2, anchors, &bc, &cfg, wh, out, count, &err) == -1);
  CHECK(strstr(err.msg, "level 0") != NULL);
  kd_ctx_free(c);
}

static int test_torch(void) {
  enum { N = 2, K = 3, NLEV = 3 };
  int hw[NLEV * 2] = {8, 8, 4, 4, 2, 2};
  KdAnchorCfg acfg;
  kd_anchor_cfg_default(&acfg);
  int A = kd_anchors_per_loc(&acfg), At = kd_anchors_total(&acfg, hw);
  float *anchors = malloc((size_t)At * 4 * sizeof *anchors);
  kd_anchors_generate(&acfg, hw, anchors, NULL, NULL);
  KdRng r;
  kd_rng_seed(&r, 5, 9);
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *cl[NLEV], *bl[NLEV];
  for (int l = 0; l < NLEV; l++) {
    cl[l] = kd_tensor4(c, N, A * K, hw[2 * l], hw[2 * l + 1]);
    bl[l] = kd_tensor4(c, N, A * 4, hw[2 * l], hw[2 * l + 1]);
    for (size_t i = 0; i < cl[l]->numel; i++) cl[l]->data[i] = -3.0f + 1.5f * kd_rng_normal(&r);
    for (size_t i = 0; i < bl[l]->numel; i++) bl[l]->data[i] = 0.3f * kd_rng_normal(&r);
  }
  KdPostCfg cfg = {.score_thr = 0.05f, .topk_per_level = 50, .nms_iou = 0.5f, .max_det = 30};
  float wh[2 * N] = {64, 64, 60, 56};
  KdDetection *out = malloc((size_t)N * cfg.max_det * sizeof *out);
  int count[N];
  KdBoxCoder bc = kd_box_coder_default();
  CHECK(kd_postprocess(cl, bl, NLEV, A, anchors, &bc, &cfg, wh, out, count, NULL) == 0);
  /* the oracle clips every image to one size: one job per image size */
  Oracle o[N], *os[N];
  const char *modes[N] = {"post", "post"};
  for (int n = 0; n < N; n++) {
    CHECK(oracle_open(&o[n]) == 0);
    os[n] = &o[n];
    double meta[10] = {N, A, K, NLEV, cfg.score_thr, cfg.topk_per_level, cfg.nms_iou, cfg.max_det, wh[2 * n],
                       wh[2 * n + 1]};
    oracle_d(&o[n], "meta", meta, 10);
    oracle_i(&o[n], "hw", hw, NLEV * 2);
    oracle_f(&o[n], "anchors", anchors, (size_t)At * 4);
    for (int l = 0; l < NLEV; l++) {
      char name[16];
      snprintf(name, sizeof name, "cls%d", l);
      oracle_f(&o[n], name, cl[l]->data, cl[l]->numel);
      snprintf(name, sizeof name, "box%d", l);
      oracle_f(&o[n], name, bl[l]->data, bl[l]->numel);
    }
  }
  int rc = oracle_run_many(os, modes, N, "torch_ref.py");
  CHECK_MSG(rc == 0 || rc == 77, "oracle failed with status %d", rc);
  for (int n = 0; n < N; n++) {
    if (rc == 0) {
      char name[16];
      snprintf(name, sizeof name, "det%d", n);
      size_t m;
      const double *ref = oracle_get(&o[n], name, &m);
      CHECK_MSG(ref && (int)m == 6 * count[n], "image %d: %d detections, torchvision %zu", n, count[n], m / 6);
      CHECK(count[n] >= 20);
      int bad = 0;
      for (int i = 0; ref && i < count[n] && 6 * i < (int)m; i++) {
        const KdDetection *d = &out[(size_t)n * cfg.max_det + i];
        const double *e = ref + 6 * i;
        bad += fabs(d->x1 - e[0]) > 1e-4 || fabs(d->y1 - e[1]) > 1e-4 || fabs(d->x2 - e[2]) > 1e-4 ||
               fabs(d->y2 - e[3]) > 1e-4 || fabs(d->score - e[4]) > 1e-6 || d->label != (int)e[5];
      }
      CHECK_MSG(bad == 0, "image %d: %d detections differ from torchvision", n, bad);
    }
    oracle_close(&o[n]);
  }
  kd_ctx_free(c);
  free(out);
  free(anchors);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return check_oracle_status("test_postprocess", test_torch());
  test_hand();
  return check_status("test_postprocess");
}
