/* The gfl head kind without torch: its outputs (names, shapes, the side
 * distributions' channel layout), config errors, the loss (ATSS positives,
 * parts and their sum, the assignment it exposes, zero box parts without
 * GT), the per-level scale's gradient, that a few plain gradient steps on
 * one batch lower the loss, and decode into image-clipped boxes. With
 * --oracle: the whole loss (ATSS targets, QFL's IoU targets and
 * normaliser, the weighted GIoU and DFL over the weight sum) and its
 * gradients w.r.t. the head's outputs against tests/detect/gfl_ref.py's
 * restatement of mmdet's GFLHead.loss (1e-4; 77 without torch). */
#include <string.h>

#include "../detect/oracle.h"
#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
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

static int run_oracle(void) {
  KdModelCfg mc = tiny();
  KdError err;
  KdModel *m = kd_model_new(&mc, 5, &err);
  CHECK(m != NULL);
  if (!m) return check_status("model_gfl --oracle");
  KdCtx *c = kd_ctx_new(64u << 20);
  KdRng r;
  kd_rng_seed(&r, 3, 1);
  KdTensor *x = kd_tensor4(c, 2, 3, 64, 64);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_normal(&r);
  /* Larger random head outputs than init gives: scale gfl_cls / gfl_reg weights up. */
  KdParams *p = kd_model_params(m);
  const char *outs[2] = {"head.gfl_cls.weight", "head.gfl_reg.weight"};
  for (int j = 0; j < 2; j++) {
    KdTensor *w = kd_params_find(p, outs[j]);
    for (size_t i = 0; i < w->numel; i++) w->data[i] *= 60.0f;
  }
  KdDetOut o;
  CHECK(kd_model_forward(m, c, x, 1, &o) == 0);
  float gt[6 * 5] = {0, 6, 9, 30, 27, 0, 20, 14, 60, 58, 0, 2, 40, 17, 61, 1, 33, 2, 47, 21, 1, 5, 30, 44, 63, 1, 28, 25, 36, 33};
  int lab[6] = {3, 7, 1, 1, 0, 9};
  float boxes[2][12];
  int labels[2][3];
  for (int g = 0; g < 6; g++) {
    int i = (int)gt[5 * g], k = g % 3;
    for (int j = 0; j < 4; j++) boxes[i][4 * k + j] = gt[5 * g + 1 + j];
    labels[i][k] = lab[g];
  }
  KdGtImage gti[2] = {{boxes[0], labels[0], NULL, 3}, {boxes[1], labels[1], NULL, 3}};
  KdDetLoss L;
  CHECK(kd_model_loss(m, c, &o, gti, 2, &lc, &L, &err) == 0 && kd_backward(c, L.total) == 0);
  KdTensor *const *cls = kd_det_out(&o, "cls"), *const *dist = kd_det_out(&o, "dist");
  Oracle orc;
  CHECK(oracle_open(&orc) == 0);
  int dims[4] = {2, 10, 17, 3}, hw[6], strides[3] = {8, 16, 32};
  for (int l = 0; l < 3; l++) hw[2 * l] = cls[l]->shape[2], hw[2 * l + 1] = cls[l]->shape[3];
  float prm[4] = {lc.qfl_beta, lc.box_weight, lc.dfl_weight, mc.head.anchors.size_mult};
  float gl[6];
  for (int g = 0; g < 6; g++) gl[g] = (float)lab[g];
  oracle_i(&orc, "dims", dims, 4);
  oracle_f(&orc, "params", prm, 4);
  oracle_i(&orc, "hw", hw, 6);
  oracle_i(&orc, "strides", strides, 3);
  oracle_f(&orc, "gt", gt, 30);
  oracle_f(&orc, "labels", gl, 6);
  char name[16];
  for (int l = 0; l < 3; l++) {
    snprintf(name, sizeof name, "cls%d", l);
    oracle_f(&orc, name, cls[l]->data, cls[l]->numel);
    snprintf(name, sizeof name, "dist%d", l);
    oracle_f(&orc, name, dist[l]->data, dist[l]->numel);
  }
  int rc = oracle_run(&orc, "gfl_ref.py", "gflhead");
  if (rc == 77) {
    oracle_close(&orc), kd_ctx_free(c), kd_model_free(m);
    printf("gfl head oracle: skipped (no torch)\n");
    return 77;
  }
  CHECK_MSG(rc == 0, "gfl_ref.py exited %d", rc);
  const char *parts[4] = {"cls", "box", "dfl", "loss"};
  for (int i = 0; rc == 0 && i < 4; i++) {
    size_t n;
    const double *ref = oracle_get(&orc, parts[i], &n);
    double mine = i < 3 ? L.parts[i].value->data[0] : L.total->data[0];
    CHECK_MSG(ref && fabs(mine - ref[0]) <= 1e-4 * fabs(ref[0]) + 1e-7, "%s: %.9g vs torch %.9g", parts[i], mine,
              ref ? ref[0] : NAN);
    printf("gfl %s: %.6f (torch %.6f)\n", parts[i], mine, ref ? ref[0] : NAN);
  }
  printf("gfl: %d positives\n", L.num_pos);
  for (int l = 0; rc == 0 && l < 3; l++) {
    KdTensor *t[2] = {cls[l], dist[l]};
    for (int j = 0; j < 2; j++) {
      snprintf(name, sizeof name, "g%s%d", j ? "dist" : "cls", l);
      size_t n;
      const double *ref = oracle_get(&orc, name, &n);
      CHECK(ref && n == t[j]->numel);
      double scale = 1e-12;
      for (size_t e = 0; ref && e < n; e++) scale = fmax(scale, fabs(ref[e]));
      int bad = 0; /* no gradient buffer: nothing reached it (a level without positives), i.e. zeros */
      for (size_t e = 0; ref && e < n; e++) {
        float g = t[j]->grad ? t[j]->grad[e] : 0.0f;
        bad += !(fabs(g - ref[e]) <= 1e-4 * scale);
      }
      CHECK_MSG(bad == 0, "%s: %d gradients differ", name, bad);
    }
  }
  oracle_close(&orc);
  kd_ctx_free(c);
  kd_model_free(m);
  return check_status("model_gfl --oracle");
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return run_oracle();
  test_errors();
  test_train_decode();
  return check_status("model_gfl");
}
