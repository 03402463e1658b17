/* The gfl head kind without torch: its outputs (names, shapes, the side
 * distributions' channel layout), config errors, the loss (ATSS positives,
 * parts and their sum, the assignment it exposes, zero box parts without
 * GT), the per-level scale's gradient, that a few plain gradient steps on
 * one batch lower the loss, and decode into image-clipped boxes. */
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "model/detector.h"

static KdModelCfg tiny(void) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  snprintf(mc.head.kind, sizeof mc.head.kind, "gfl");
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = 32, mc.head.convs = 2, mc.head.gn = 1;
  mc.head.anchors.size_mult = 3.0f;
  return mc;
}

static void test_errors(void) {
  KdModelCfg mc = tiny();
  KdError err;
  mc.head.gfl.reg_max = 0;
  CHECK(kd_model_cfg_check(&mc, &err) < 0 && strstr(err.msg, "gfl.reg_max"));
  mc = tiny(), mc.head.gfl.topk = 0;
  CHECK(kd_model_cfg_check(&mc, &err) < 0 && strstr(err.msg, "atss.topk"));
  mc = tiny(), mc.neck.channels = 48;
  CHECK(kd_model_cfg_check(&mc, &err) < 0 && strstr(err.msg, "GroupNorm"));
}

static const KdDetLossCfg lc = {.box_weight = 2.0f, .qfl_beta = 2.0f, .dfl_weight = 0.25f};

static void test_train_decode(void) {
  KdModelCfg mc = tiny();
  KdError err;
  KdModel *m = kd_model_new(&mc, 3, &err);
  CHECK_MSG(m != NULL, "%s", err.msg);
  if (!m) return;
  KdHeadInfo hi;
  kd_model_head_info(m, &hi);
  CHECK(hi.A == 1 && hi.K == 10 && hi.reg_max == 16 && (hi.provides & KD_HEAD_HAS_DIST) && (hi.provides & KD_HEAD_HAS_LOGITS));
  CHECK(kd_params_find(kd_model_params(m), "head.scales.2.scale") && kd_params_find(kd_model_params(m), "head.cls_convs.1.gn.weight"));
  KdCtx *c = kd_ctx_new(64u << 20);
  float boxes[2][8] = {{6, 9, 30, 27, 20, 14, 60, 58}, {33, 2, 47, 21, 0, 0, 0, 0}};
  int labels[2][2] = {{3, 7}, {1, 0}};
  KdGtImage gt[2] = {{boxes[0], labels[0], NULL, 2}, {boxes[1], labels[1], NULL, 1}};
  double first = 0, last = 0;
  KdParams *p = kd_model_params(m);
  for (int it = 0; it < 12; it++) {
    kd_ctx_reset(c);
    KdTensor *x = kd_tensor4(c, 2, 3, 64, 64);
    for (size_t i = 0; i < x->numel; i++) x->data[i] = 0.5f * (float)((i * 2654435761u >> 7) % 100) / 100.0f;
    KdDetOut o;
    CHECK(kd_model_forward(m, c, x, 1, &o) == 0);
    KdTensor *const *dist = kd_det_out(&o, "dist"), *const *cls = kd_det_out(&o, "cls");
    CHECK(dist && cls && dist[0]->shape[1] == 68 && cls[0]->shape[1] == 10 && dist[2]->shape[2] == 2);
    KdDetLoss L;
    CHECK_MSG(kd_model_loss(m, c, &o, gt, 2, &lc, &L, &err) == 0, "%s", err.msg);
    CHECK(L.nparts == 3 && !strcmp(L.parts[2].name, "dfl") && L.has_assign && L.num_pos > 0 && L.assign.A == 1);
    CHECK(L.assign.A_total == 8 * 8 + 4 * 4 + 2 * 2 && L.assign.target_boxes && L.assign.match_gt);
    double sum = L.parts[0].value->data[0] + 2.0 * L.parts[1].value->data[0] + 0.25 * L.parts[2].value->data[0];
    CHECK_NEAR(L.total->data[0], sum, 1e-4 * sum);
    if (it == 0) first = L.total->data[0];
    last = L.total->data[0];
    kd_params_zero_grad(p);
    CHECK(kd_backward(c, L.total) == 0);
    KdTensor *sc = kd_params_find(p, "head.scales.0.scale");
    CHECK(sc->grad && sc->grad[0] != 0.0f);
    /* plain gradient descent */
    for (int i = 0; i < kd_params_count(p); i++) {
      KdTensor *t = kd_params_at(p, i);
      if (kd_params_kind(p, i) != KD_PARAM_TRAIN || !t->grad) continue;
      for (size_t j = 0; j < t->numel; j++) t->data[j] -= 0.05f * t->grad[j];
    }
  }
  CHECK_MSG(last < 0.8 * first, "loss %.4f -> %.4f", first, last);
  printf("gfl loss on one batch: %.4f -> %.4f after 11 steps\n", first, last);
  /* Decode: clipped boxes with labels. */
  kd_ctx_reset(c);
  KdTensor *x = kd_tensor4(c, 2, 3, 64, 64);
  kd_tensor_fill(x, 0.1f);
  KdDetOut o;
  CHECK(kd_model_forward(m, c, x, 0, &o) == 0);
  KdPostCfg pc;
  kd_post_cfg_default(&pc);
  pc.score_thr = 0.0f;
  KdDetection det[200];
  int count[2] = {-1, -1};
  float wh[4] = {64, 64, 50, 40};
  CHECK(kd_model_decode(m, &o, &pc, 2, wh, det, count, &err) == 0 && count[0] > 0 && count[1] > 0);
  for (int k = 0; k < count[1]; k++) {
    const KdDetection *d = det + pc.max_det + k;
    CHECK(d->x1 >= 0 && d->x2 <= 50 && d->y2 <= 40 && d->x1 <= d->x2 && d->label >= 0 && d->label < 10);
  }
  /* No GT at all: the box parts are 0 and the classes still train. */
  kd_ctx_reset(c);
  x = kd_tensor4(c, 1, 3, 64, 64);
  kd_tensor_fill(x, 0.3f);
  CHECK(kd_model_forward(m, c, x, 1, &o) == 0);
  KdGtImage none = {NULL, NULL, NULL, 0};
  KdDetLoss L;
  CHECK(kd_model_loss(m, c, &o, &none, 1, &lc, &L, &err) == 0 && L.num_pos == 0);
  CHECK(L.parts[1].value->data[0] == 0.0f && L.parts[2].value->data[0] == 0.0f && L.parts[0].value->data[0] > 0.0f);
  CHECK(kd_backward(c, L.total) == 0);
  /* P3 anchors are 24 px: a 24 px box belongs there, a 96 px one to P5. */
  float small[4] = {0, 0, 24, 24}, big[4] = {0, 0, 96, 96};
  CHECK(kd_model_box_level(m, small) == 0 && kd_model_box_level(m, big) == 2);
  kd_ctx_free(c);
  kd_model_free(m);
}

int main(void) {
  test_errors();
  test_train_decode();
  return check_status("model_gfl");
}
