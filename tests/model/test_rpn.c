/* The RPN module: torchvision's parameter names and init, the output
 * shapes, its sampled loss recomputed by hand from the logits, the
 * sampler's quota with more GT boxes than it, images with no GT and with
 * degenerate GT boxes (losses defined, no division by zero), sampling
 * that depends only on the seed, and settings errors naming the key. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "model/rpn.h"

#define C 16

typedef struct {
  KdParams *p;
  KdRpn *rpn;
  KdCtx *c;
  KdTensor *obj[2], *del[2];
} Fix;

static KdLevels two_levels(void) {
  KdLevels lv = {0};
  kd_levels_add(&lv, 4), kd_levels_add(&lv, 8);
  return lv;
}

static KdRpnCfg small_cfg(void) {
  KdRpnCfg cfg;
  kd_rpn_cfg_default(&cfg);
  cfg.nsizes = 2, cfg.sizes[0] = 8, cfg.sizes[1] = 16;
  cfg.batch_size_per_image = 64;
  return cfg;
}

static int fix_new(Fix *f, int n) {
  KdError err;
  KdLevels lv = two_levels();
  KdRpnCfg cfg = small_cfg();
  memset(f, 0, sizeof *f);
  f->p = kd_params_new();
  f->rpn = kd_rpn_new(&cfg, C, &lv, f->p, &err);
  CHECK_MSG(f->rpn != NULL, "%s", err.msg);
  if (!f->rpn || kd_params_finalize(f->p, &err)) return -1;
  KdRng r;
  kd_rng_seed(&r, 1, 2);
  kd_rpn_init(f->rpn, &r);
  /* larger weights than the init, so the logits spread */
  KdTensor *w = kd_params_find(f->p, "rpn.head.cls_logits.weight");
  for (size_t i = 0; i < w->numel; i++) w->data[i] = kd_rng_normal(&r) * 0.3f;
  f->c = kd_ctx_new(16u << 20);
  KdTensor *feat[2] = {kd_tensor4(f->c, n, C, 16, 16), kd_tensor4(f->c, n, C, 8, 8)};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < feat[l]->numel; i++) feat[l]->data[i] = kd_rng_range(&r, -1, 1);
  kd_rpn_forward(f->rpn, f->c, feat, f->obj, f->del);
  return kd_ctx_failed(f->c) ? -1 : 0;
}

static void fix_free(Fix *f) {
  kd_ctx_free(f->c);
  kd_rpn_free(f->rpn);
  kd_params_free(f->p);
}

static void test_layers(void) {
  Fix f;
  if (fix_new(&f, 2)) return;
  static const struct {
    const char *name;
    int d0, d1, k;
  } want[] = {{"rpn.head.conv.0.0.weight", C, C, 3},
              {"rpn.head.cls_logits.weight", 3, C, 1},
              {"rpn.head.bbox_pred.weight", 12, C, 1}};
  for (size_t i = 0; i < 3; i++) {
    KdTensor *t = kd_params_find(f.p, want[i].name);
    CHECK_MSG(t && t->ndim == 4 && t->shape[0] == want[i].d0 && t->shape[1] == want[i].d1 && t->shape[2] == want[i].k,
              "%s", want[i].name);
  }
  CHECK(kd_params_count(f.p) == 6);
  /* init: N(0, 0.01) weights, zero biases */
  KdTensor *w = kd_params_find(f.p, "rpn.head.conv.0.0.weight"), *b = kd_params_find(f.p, "rpn.head.bbox_pred.bias");
  double ss = 0;
  for (size_t i = 0; i < w->numel; i++) ss += (double)w->data[i] * w->data[i];
  CHECK_NEAR(sqrt(ss / (double)w->numel), 0.01, 0.001);
  for (size_t i = 0; i < b->numel; i++) CHECK(b->data[i] == 0.0f);
  CHECK(f.obj[0]->shape[0] == 2 && f.obj[0]->shape[1] == 3 && f.obj[0]->shape[2] == 16 && f.del[1]->shape[1] == 12);
  CHECK(kd_rpn_anchors_per_loc(f.rpn) == 3);
  fix_free(&f);
}

/* The loss recomputed from the logits and targets of the sampled anchors. */
static void expect_loss(Fix *f, const KdDenseAssign *t, const signed char *sel, int n, double cls, double box) {
  double bce = 0, l1 = 0;
  int sampled = 0, off = 0;
  for (int l = 0; l < 2; l++) {
    int H = f->obj[l]->shape[2], W = f->obj[l]->shape[3], HW = H * W;
    for (int i = 0; i < n; i++)
      for (int hw = 0; hw < HW; hw++)
        for (int a = 0; a < 3; a++) {
          size_t k = (size_t)i * t->A_total + off + hw * 3 + a;
          if (sel[k] < 0) continue;
          sampled++;
          double x = f->obj[l]->data[((size_t)i * 3 + a) * HW + hw], y = sel[k] == 1;
          bce += fmax(x, 0) - x * y + log1p(exp(-fabs(x)));
          if (sel[k] != 1) continue;
          for (int j = 0; j < 4; j++) {
            double d = f->del[l]->data[((size_t)i * 12 + 4 * a + j) * HW + hw] - t->target_deltas[4 * k + j];
            l1 += fabs(d) < 1.0 / 9 ? 0.5 * d * d * 9 : fabs(d) - 0.5 / 9;
          }
        }
    off += HW * 3;
  }
  double norm = sampled ? sampled : 1;
  CHECK_NEAR(cls, bce / norm, 1e-5);
  CHECK_NEAR(box, l1 / norm, 1e-5);
}

static int loss_case(Fix *f, const KdGtImage *gt, int n, uint64_t seed, signed char *sel, int *npos, int *nsamp) {
  KdError err;
  KdDenseAssign t;
  CHECK_MSG(kd_rpn_targets(f->rpn, f->c, f->obj, gt, n, &t, &err) == 0, "%s", err.msg);
  CHECK(t.A_total == 3 * (256 + 64));
  KdRng r;
  kd_rng_seed(&r, seed, 5);
  *nsamp = kd_rpn_sample(f->rpn, &t, n, &r, sel, &err);
  *npos = 0;
  for (int i = 0; i < n * t.A_total; i++) *npos += sel[i] == 1;
  KdTensor *cls = NULL, *box = NULL;
  CHECK_MSG(kd_rpn_loss(f->rpn, f->c, f->obj, f->del, &t, sel, n, &cls, &box, &err) == 0, "%s", err.msg);
  if (!cls || !box) return -1;
  CHECK(isfinite(cls->data[0]) && isfinite(box->data[0]));
  expect_loss(f, &t, sel, n, cls->data[0], box->data[0]);
  return 0;
}

static void test_loss(void) {
  Fix f;
  if (fix_new(&f, 2)) return;
  const int At = 3 * 320;
  signed char *sel = malloc(2 * At), *again = malloc(2 * At);
  /* image 0: three boxes, image 1: none */
  float boxes[] = {4, 4, 20, 12, 30, 30, 46, 62, 40, 8, 56, 24};
  int labels[] = {0, 1, 2};
  KdGtImage gt[2] = {{boxes, labels, NULL, 3}, {NULL, NULL, NULL, 0}};
  int npos, ns;
  if (loss_case(&f, gt, 2, 11, sel, &npos, &ns) == 0) {
    CHECK(npos > 0 && npos <= 32 && ns == 128);
    int pos1 = 0;
    for (int i = At; i < 2 * At; i++) pos1 += sel[i] == 1;
    CHECK(pos1 == 0); /* no GT: negatives only */
  }
  /* the same seed draws the same anchors, another seed others */
  int n2, s2;
  loss_case(&f, gt, 2, 11, again, &n2, &s2);
  CHECK(!memcmp(sel, again, 2 * At));
  loss_case(&f, gt, 2, 12, again, &n2, &s2);
  CHECK(memcmp(sel, again, 2 * At) != 0);
  /* more GT boxes than the quota: at most half the batch is positive */
  enum { M = 200 };
  float *many = malloc(sizeof(float) * 4 * M);
  int *ml = calloc(M, sizeof *ml);
  for (int i = 0; i < M; i++) {
    float x = (float)(i % 14) * 4, y = (float)(i / 14) * 4;
    float b[4] = {x, y, x + 8, y + 8};
    memcpy(many + 4 * i, b, sizeof b);
  }
  fix_free(&f);
  if (fix_new(&f, 1)) return;
  KdGtImage gm[1] = {{many, ml, NULL, M}};
  if (loss_case(&f, gm, 1, 3, sel, &npos, &ns) == 0) CHECK(npos == 32 && ns == 64);
  /* degenerate boxes (zero width, inverted) make no positive; the loss is defined */
  float bad[] = {10, 10, 10, 30, 40, 40, 20, 20};
  KdGtImage gd[1] = {{bad, labels, NULL, 2}};
  if (loss_case(&f, gd, 1, 3, sel, &npos, &ns) == 0) CHECK(npos == 0 && ns == 64);
  free(many), free(ml), free(sel), free(again);
  fix_free(&f);
}

static void test_errors(void) {
  KdRpnCfg cfg = small_cfg();
  KdLevels lv = two_levels();
  KdError err = {{0}};
  cfg.nsizes = 3;
  CHECK(kd_rpn_cfg_check(&cfg, &lv, &err) == -1 && strstr(err.msg, "rpn.anchor_sizes: 3 sizes for the neck's 2 levels"));
  cfg = small_cfg(), cfg.bg_iou_thresh = 0.8f;
  CHECK(kd_rpn_cfg_check(&cfg, &lv, &err) == -1 && strstr(err.msg, "rpn.bg_iou_thresh"));
  cfg = small_cfg(), cfg.post_nms_top_n_test = 0;
  CHECK(kd_rpn_cfg_check(&cfg, &lv, &err) == -1 && strstr(err.msg, "rpn (test): post_nms_top_n: 0"));
  cfg = small_cfg(), cfg.sizes[1] = -4;
  CHECK(kd_rpn_cfg_check(&cfg, &lv, &err) == -1 && strstr(err.msg, "anchor.sizes[1]"));
  float v[8];
  CHECK(kd_anchor_parse_list("rpn.aspect_ratios", "0.5, 1,2", v, 8, &err) == 3 && v[0] == 0.5f && v[2] == 2.0f);
  CHECK(kd_anchor_parse_list("rpn.anchor_sizes", "32,,64", v, 8, &err) == -1 && strstr(err.msg, "rpn.anchor_sizes"));
  CHECK(kd_anchor_parse_list("rpn.anchor_sizes", "1,2,3", v, 2, &err) == -1 && strstr(err.msg, "more than 2"));
}

int main(void) {
  test_layers();
  test_loss();
  test_errors();
  return check_status("test_rpn");
}
