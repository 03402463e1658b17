/* RPN proposals on hand-built levels: the per-level top-n on logits, the
 * tiny-box removal, clipping, the score threshold, NMS within a level and
 * not across levels, the post-NMS cap, the dw clamp, image indexing, and
 * the config's errors. (The whole chain against torchvision is in
 * tests/model/test_frcnn_parity.c.) */
#include <math.h>
#include <string.h>

#include "check.h"
#include "detect/proposals.h"

static float sig(float v) { return 1.0f / (1.0f + expf(-v)); }

/* Level 0: 1x4 locations, level 1: 1x1, one anchor each, two images. */
typedef struct {
  KdCtx *c;
  KdTensor *obj[2], *del[2];
  float anchors[5 * 4];
} Fix;

static void fix_init(Fix *f) {
  f->c = kd_ctx_new(1u << 20);
  f->obj[0] = kd_tensor4(f->c, 2, 1, 1, 4), f->del[0] = kd_tensor4(f->c, 2, 4, 1, 4);
  f->obj[1] = kd_tensor4(f->c, 2, 1, 1, 1), f->del[1] = kd_tensor4(f->c, 2, 4, 1, 1);
  for (int l = 0; l < 2; l++) kd_tensor_fill(f->del[l], 0.0f);
  static const float a[] = {0, 0, 10, 10,  0.5f, 0, 10.5f, 10,  50, 50, 50.0005f, 60,  -20, -20, 30, 30,  0, 0, 10, 10};
  memcpy(f->anchors, a, sizeof a);
  /* image 0: a0 2, a1 3, a2 5 (too thin), a3 1; level 1: 0 */
  static const float l0[] = {2, 3, 5, 1, /* image 1 */ 1, 1, -1, 4};
  memcpy(f->obj[0]->data, l0, sizeof l0);
  f->obj[1]->data[0] = 0.0f, f->obj[1]->data[1] = -3.0f;
}

static int run(Fix *f, KdProposalCfg pc, float *boxes, float *scores, int *count) {
  KdBoxCoder bc = kd_box_coder_default();
  float wh[4] = {64, 64, 64, 64};
  KdError err = {{0}};
  int rc = kd_proposals(f->c, &pc, f->obj, f->del, 2, 1, f->anchors, &bc, wh, boxes, scores, count, &err);
  CHECK_MSG(rc == 0, "%s", err.msg);
  return rc;
}

static void check_box(const float *b, float x1, float y1, float x2, float y2) {
  CHECK_NEAR(b[0], x1, 1e-4);
  CHECK_NEAR(b[1], y1, 1e-4);
  CHECK_NEAR(b[2], x2, 1e-4);
  CHECK_NEAR(b[3], y2, 1e-4);
}

static void test_filters(void) {
  Fix f;
  fix_init(&f);
  KdProposalCfg pc = {.pre_nms_top_n = 3, .post_nms_top_n = 8, .nms_thresh = 0.7f, .min_size = 1e-3f, .score_thresh = 0};
  float boxes[2 * 8 * 4], scores[2 * 8];
  int count[2];
  if (run(&f, pc, boxes, scores, count)) return;
  /* image 0: top 3 of level 0 are a2 (removed: 5e-4 wide), a1, a0 (IoU
   * 0.905 with a1: suppressed); a3 is not in the top 3. Level 1's box
   * overlaps a1 as much but NMS stays within a level. */
  CHECK(count[0] == 2);
  check_box(boxes, 0.5f, 0, 10.5f, 10);
  CHECK_NEAR(scores[0], sig(3), 1e-6);
  check_box(boxes + 4, 0, 0, 10, 10);
  CHECK_NEAR(scores[1], 0.5, 1e-6);
  /* image 1: a3 (4, clipped to the image), a0 (1) and a1 (1): the tie goes
   * to the lower index, a0, and a1 is suppressed by it; level 1 at -3. */
  CHECK(count[1] == 3);
  check_box(boxes + 32, 0, 0, 30, 30);
  CHECK_NEAR(scores[8], sig(4), 1e-6);
  check_box(boxes + 36, 0, 0, 10, 10);
  check_box(boxes + 40, 0, 0, 10, 10);
  CHECK_NEAR(scores[10], sig(-3), 1e-6);

  /* The post-NMS cap and the score threshold. */
  pc.post_nms_top_n = 1;
  if (run(&f, pc, boxes, scores, count)) return;
  CHECK(count[0] == 1 && count[1] == 1);
  check_box(boxes + 4, 0, 0, 30, 30); /* image 1 starts at slot 1 now */
  pc.post_nms_top_n = 8, pc.score_thresh = 0.6f;
  if (run(&f, pc, boxes, scores, count)) return;
  CHECK(count[0] == 1 && count[1] == 2);
  kd_ctx_free(f.c);
}

/* Deltas move the anchor; dw beyond log(1000/16) is clamped. */
static void test_decode(void) {
  Fix f;
  fix_init(&f);
  float *d = f.del[1]->data; /* N=2, 4 channels, 1x1: image 0's dx, dy, dw, dh */
  d[0] = 0.1f, d[1] = 0.0f, d[2] = 100.0f, d[3] = logf(0.5f);
  KdProposalCfg pc = {.pre_nms_top_n = 1, .post_nms_top_n = 8, .nms_thresh = 0.7f, .min_size = 1e-3f};
  float boxes[2 * 8 * 4], scores[2 * 8];
  int count[2];
  if (run(&f, pc, boxes, scores, count)) return;
  /* level 0's top 1 is a2, too thin; level 1's anchor (0,0,10,10):
   * centre 6, width 10*62.5 clipped to the image, height 5 */
  CHECK(count[0] == 1);
  check_box(boxes, 0, 2.5f, 64, 7.5f);
  kd_ctx_free(f.c);
}

static void test_errors(void) {
  Fix f;
  fix_init(&f);
  KdBoxCoder bc = kd_box_coder_default();
  float wh[4] = {64, 64, 64, 64}, boxes[64], scores[16];
  int count[2];
  KdError err = {{0}};
  KdProposalCfg pc = {.pre_nms_top_n = 0, .post_nms_top_n = 8, .nms_thresh = 0.7f};
  CHECK(kd_proposals(f.c, &pc, f.obj, f.del, 2, 1, f.anchors, &bc, wh, boxes, scores, count, &err) == -1 &&
        strstr(err.msg, "pre_nms_top_n: 0"));
  pc.pre_nms_top_n = 5, pc.nms_thresh = 1.5f;
  CHECK(kd_proposals(f.c, &pc, f.obj, f.del, 2, 1, f.anchors, &bc, wh, boxes, scores, count, &err) == -1 &&
        strstr(err.msg, "nms_thresh"));
  pc.nms_thresh = 0.7f;
  /* two anchors per location claimed, one present */
  CHECK(kd_proposals(f.c, &pc, f.obj, f.del, 2, 2, f.anchors, &bc, wh, boxes, scores, count, &err) == -1 &&
        strstr(err.msg, "level 0 has objectness 2,1,1,4"));
  kd_ctx_free(f.c);
}

int main(void) {
  test_filters();
  test_decode();
  test_errors();
  return check_status("test_proposals");
}
