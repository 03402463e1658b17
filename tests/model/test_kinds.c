/* Detector kinds: the level table each neck layout carries (P3..P5,
 * P2..P7, the max-pool P6), config errors naming the setting, frozen BN,
 * init_from_teacher pairing neck levels by stride (a P2..P5 teacher into a
 * P3..P5 student), the head run alone on given features (the hook a
 * method uses to run the teacher's head), the RoI slot's refusal, the
 * model's own loss and decode, and the box-to-level rule. */
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "distill/side.h"
#include "model/detector.h"

static KdModelCfg tiny(void) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = 16, mc.head.convs = 1;
  return mc;
}

static void test_levels(void) {
  static const struct {
    int first, extra;
    KdExtraKind kind;
    int n, s0;
    const char *last;
  } cases[] = {{3, 0, KD_EXTRA_P6P7_P5, 3, 8, "P5"}, {2, 2, KD_EXTRA_P6P7_C5, 6, 4, "P7"}, {2, 1, KD_EXTRA_MAXPOOL, 5, 4, "P6"}};
  KdError err;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    KdModelCfg mc = tiny();
    mc.neck.first_level = cases[i].first, mc.neck.extra_levels = cases[i].extra, mc.neck.extra = cases[i].kind;
    KdModel *m = kd_model_new(&mc, 1, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) continue;
    const KdLevels *lv = kd_model_levels(m);
    CHECK(lv->n == cases[i].n && lv->stride[0] == cases[i].s0 && !strcmp(lv->name[lv->n - 1], cases[i].last));
    for (int l = 1; l < lv->n; l++) CHECK(lv->stride[l] == 2 * lv->stride[l - 1] && kd_model_stride(m, l) == lv->stride[l]);
    /* The outputs follow the table: level l is input / stride. */
    KdCtx *c = kd_ctx_new(8u << 20);
    kd_ctx_set_grad(c, 0);
    KdTensor *x = kd_tensor4(c, 1, 3, 64, 64);
    kd_tensor_fill(x, 0.1f);
    KdDetOut out;
    CHECK(kd_model_forward(m, c, x, 0, &out) == 0 && out.nlev == lv->n);
    KdTensor *const *cls = kd_det_out(&out, "cls");
    for (int l = 0; cls && l < lv->n; l++)
      CHECK(out.feat[l]->shape[2] == (64 + lv->stride[l] - 1) / lv->stride[l] && cls[l]->shape[1] == 9 * 10);
    CHECK(kd_det_out(&out, "box") && kd_det_out(&out, "cls_tower") && !kd_det_out(&out, "centerness"));
    CHECK(kd_model_flops(m, 1, 64, 64) > 0);
    kd_ctx_free(c);
    kd_model_free(m);
  }
}

static void expect_bad(KdModelCfg mc, const char *what) {
  KdError err = {{0}};
  KdModel *m = kd_model_new(&mc, 1, &err);
  CHECK_MSG(!m && strstr(err.msg, what), "'%s' not in '%s'", what, err.msg);
  kd_model_free(m);
}

static void test_errors(void) {
  KdModelCfg mc = tiny();
  mc.backbone.depth = 12;
  expect_bad(mc, "model.depth: 12 is not one of 10, 18, 34, 50, 101");
  mc = tiny(), mc.neck.extra = KD_EXTRA_MAXPOOL, mc.neck.extra_levels = 2;
  expect_bad(mc, "model.extra_levels: 2, but the max-pool extra block gives one level");
  mc = tiny(), mc.neck.first_level = 4;
  expect_bad(mc, "model.fpn_first_level");
  mc = tiny(), snprintf(mc.head.kind, sizeof mc.head.kind, "fcos");
  expect_bad(mc, "model.head: unknown head kind 'fcos' (known: retinanet, faster_rcnn, gfl)");
}

static void test_frozen(void) {
  KdModelCfg mc = tiny();
  mc.backbone.bn = KD_BN_FROZEN;
  KdError err;
  KdModel *m = kd_model_new(&mc, 1, &err);
  CHECK(m != NULL);
  if (!m) return;
  KdTensor *g = kd_params_find(kd_model_params(m), "backbone.body.layer2.0.bn1.weight");
  KdTensor *d = kd_params_find(kd_model_params(m), "backbone.body.layer2.0.downsample.1.bias");
  KdTensor *w = kd_params_find(kd_model_params(m), "backbone.body.layer2.0.conv1.weight");
  CHECK(g && d && w && !g->requires_grad && !d->requires_grad && w->requires_grad);
  kd_model_free(m);
}

static int same(KdModel *a, const char *na, KdModel *b, const char *nb) {
  KdTensor *x = kd_params_find(kd_model_params(a), na), *y = kd_params_find(kd_model_params(b), nb);
  return x && y && kd_tensor_same_shape(x, y) && !memcmp(x->data, y->data, x->numel * sizeof(float));
}

static void test_inherit(void) {
  KdModelCfg tc = tiny(), sc = tiny();
  tc.neck.first_level = 2;
  KdError err;
  KdModel *t = kd_model_new(&tc, 5, &err), *s = kd_model_new(&sc, 6, &err);
  CHECK(t && s);
  if (!t || !s) return;
  /* teacher inner/layer 0..3 = C2..C5; the student's 0..2 = C3..C5 */
  CHECK(!same(s, "backbone.fpn.layer_blocks.0.0.weight", t, "backbone.fpn.layer_blocks.1.0.weight"));
  int n = kd_model_inherit(s, t);
  CHECK(n == 3 * 4 + 2 * (2 + 2)); /* 3 levels x (inner w, b, layer w, b) + head convs and outputs (w, b) */
  for (int l = 0; l < 3; l++) {
    char a[64], b[64];
    snprintf(a, sizeof a, "backbone.fpn.layer_blocks.%d.0.weight", l);
    snprintf(b, sizeof b, "backbone.fpn.layer_blocks.%d.0.weight", l + 1);
    CHECK_MSG(same(s, a, t, b), "level %d: student %s != teacher %s", l, a, b);
    snprintf(a, sizeof a, "backbone.fpn.inner_blocks.%d.0.weight", l);
    snprintf(b, sizeof b, "backbone.fpn.inner_blocks.%d.0.weight", l + 1);
    CHECK(same(s, a, t, b));
  }
  CHECK(!same(s, "backbone.fpn.layer_blocks.0.0.weight", t, "backbone.fpn.layer_blocks.0.0.weight"));
  CHECK(same(s, "head.classification_head.cls_logits.weight", t, "head.classification_head.cls_logits.weight"));
  CHECK(!same(s, "backbone.body.conv1.weight", t, "backbone.body.conv1.weight"));
  kd_model_free(t), kd_model_free(s);
}

/* The teacher's head on given features: the forward's outputs again, the
 * gradient reaching the features and not the teacher. */
static void test_head_hook(void) {
  KdModelCfg mc = tiny();
  KdError err;
  KdModel *t = kd_model_new(&mc, 7, &err);
  CHECK(t != NULL);
  if (!t) return;
  kd_params_set_requires_grad(kd_model_params(t), 0);
  KdCtx *c = kd_ctx_new(16u << 20);
  KdRng r;
  kd_rng_seed(&r, 3, 3);
  KdTensor *x = kd_tensor4(c, 2, 3, 64, 64);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_range(&r, -1, 1);
  KdDetOut o, h;
  int g = kd_ctx_set_grad(c, 0);
  CHECK(kd_model_forward(t, c, x, 0, &o) == 0);
  kd_ctx_set_grad(c, g);
  KdDistillInputs in = {.c = c};
  kd_distill_side_from(&in.t, t, &o, NULL);
  KdTensor *feat[KD_MAX_LEVELS];
  for (int l = 0; l < o.nlev; l++) {
    feat[l] = kd_tensor_like(c, o.feat[l]);
    memcpy(feat[l]->data, o.feat[l]->data, o.feat[l]->numel * sizeof(float));
    feat[l]->requires_grad = 1;
  }
  CHECK(kd_distill_teacher_head(&in, feat, &h) == 0);
  KdTensor *const *a = kd_det_out(&o, "cls"), *const *b = kd_det_out(&h, "cls");
  KdTensor *sum = NULL;
  for (int l = 0; a && b && l < o.nlev; l++) {
    CHECK(kd_tensor_same_shape(a[l], b[l]) && !memcmp(a[l]->data, b[l]->data, a[l]->numel * sizeof(float)));
    KdTensor *v = kd_sum_all(c, b[l]);
    sum = sum ? kd_add(c, sum, v) : v;
  }
  CHECK(sum && kd_backward(c, sum) == 0);
  double gf = 0;
  for (int l = 0; l < o.nlev; l++)
    for (size_t i = 0; feat[l]->grad && i < feat[l]->numel; i++) gf += fabs(feat[l]->grad[i]);
  KdTensor *w = kd_params_find(kd_model_params(t), "head.classification_head.cls_logits.weight");
  CHECK(gf > 0 && w && (!w->grad || w->grad[0] == 0.0f));
  KdHeadOut ro;
  float roi[5] = {0, 0, 0, 16, 16};
  CHECK(kd_distill_teacher_rois(&in, feat, roi, 1, &ro, &err) == -1 && strstr(err.msg, "RetinaNet head has no RoI head"));
  kd_ctx_free(c);
  kd_model_free(t);
}

/* The model's loss (its anchors and assignment) and decode. */
static void test_loss_decode(void) {
  KdModelCfg mc = tiny();
  KdError err;
  KdModel *m = kd_model_new(&mc, 8, &err);
  CHECK(m != NULL);
  if (!m) return;
  KdCtx *c = kd_ctx_new(16u << 20);
  KdTensor *x = kd_tensor4(c, 1, 3, 64, 64);
  kd_tensor_fill(x, 0.2f);
  KdDetOut o;
  CHECK(kd_model_forward(m, c, x, 1, &o) == 0);
  float box[4] = {8, 8, 40, 40};
  int label = 3;
  KdGtImage gt = {box, &label, NULL, 1};
  KdDetLossCfg lc = {.focal_alpha = 0.25f, .focal_gamma = 2, .giou = 0, .smooth_l1_beta = 0.11f, .box_weight = 1};
  KdDetLoss loss;
  CHECK(kd_model_loss(m, c, &o, &gt, 1, &lc, &loss, &err) == 0);
  CHECK(loss.nparts == 2 && !strcmp(loss.parts[0].name, "cls") && !strcmp(loss.parts[1].name, "box"));
  CHECK(loss.has_assign && loss.num_pos > 0 && loss.assign.A == 9 && loss.assign.K == 10);
  CHECK(loss.assign.A_total == 9 * (8 * 8 + 4 * 4 + 2 * 2));
  CHECK_NEAR(loss.total->data[0], loss.parts[0].value->data[0] + loss.parts[1].value->data[0], 1e-5);
  KdPostCfg pc;
  kd_post_cfg_default(&pc);
  pc.score_thr = 0.0f;
  KdDetection det[100];
  int count = -1;
  float wh[2] = {64, 64};
  CHECK(kd_model_decode(m, &o, &pc, 1, wh, det, &count, &err) == 0 && count > 0 && count <= pc.max_det);
  for (int k = 0; k < count; k++) CHECK(det[k].x1 >= 0 && det[k].x2 <= 64 && det[k].label >= 0 && det[k].label < 10);
  /* anchors 32 px on P3: a 32 px box goes there, a 128 px one to P5 */
  float small[4] = {0, 0, 32, 32}, big[4] = {0, 0, 128, 128};
  CHECK(kd_model_box_level(m, small) == 0 && kd_model_box_level(m, big) == 2);
  kd_ctx_free(c);
  kd_model_free(m);
}

int main(void) {
  test_levels();
  test_errors();
  test_frozen();
  test_inherit();
  test_head_hook();
  test_loss_decode();
  return check_status("test_kinds");
}
