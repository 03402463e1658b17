/* The faster_rcnn head kind without torch: the outputs of a training and
 * an evaluation forward, the four loss parts (finite, summing to the
 * total, gradients reaching the RPN and the RoI head), sampling that
 * depends on the seed and step only, images with no GT, degenerate GT
 * boxes and more GT boxes than the samplers' quotas, decode refusing a
 * training forward, the RoI hook, the box-to-level rule, what it offers
 * distillation, and a RetinaNet checkpoint refused naming the tensor. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "model/detector.h"
#include "model/safetensors.h"

#define S 64

static KdModelCfg tiny(const char *kind) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8;
  mc.neck = (KdNeckCfg){.channels = 16, .first_level = 2, .extra_levels = 1, .extra = KD_EXTRA_MAXPOOL};
  snprintf(mc.head.kind, sizeof mc.head.kind, "%s", kind);
  mc.head.convs = 1;
  KdRpnCfg *r = &mc.head.rpn;
  static const float sizes[] = {8, 16, 32, 64, 128};
  memcpy(r->sizes, sizes, sizeof sizes), r->nsizes = 5;
  r->pre_nms_top_n_train = 200, r->post_nms_top_n_train = 100, r->pre_nms_top_n_test = 100, r->post_nms_top_n_test = 50;
  r->batch_size_per_image = 64;
  KdRoiHeadCfg *o = &mc.head.roi;
  o->representation = 32, o->batch_per_image = 32, o->pool.canonical_scale = 56;
  return mc;
}

typedef struct {
  KdModel *m;
  KdCtx *c;
  KdTensor *x;
} Fix;

static int fix_new(Fix *f, int n) {
  KdError err;
  KdModelCfg mc = tiny("faster_rcnn");
  f->m = kd_model_new(&mc, 4, &err);
  CHECK_MSG(f->m != NULL, "%s", err.msg);
  f->c = kd_ctx_new(64u << 20);
  f->x = kd_tensor4(f->c, n, 3, S, S);
  KdRng r;
  kd_rng_seed(&r, 2, 2);
  for (size_t i = 0; i < f->x->numel; i++) f->x->data[i] = kd_rng_range(&r, -1, 1);
  return f->m ? 0 : -1;
}

static void fix_free(Fix *f) {
  kd_ctx_free(f->c);
  kd_model_free(f->m);
}

static const float boxes0[] = {4, 4, 28, 20, 30, 10, 60, 50};
static const int labels0[] = {1, 7};

static double loss_of(Fix *f, const KdGtImage *gt, int n, int step, KdDetLoss *out) {
  KdError err;
  kd_ctx_reset(f->c);
  KdTensor *x = kd_tensor4(f->c, n, 3, S, S);
  memcpy(x->data, f->x->data, x->numel * sizeof(float));
  KdDetOut o;
  CHECK(kd_model_forward(f->m, f->c, x, 1, &o) == 0);
  KdDetLossCfg lc = {.box_weight = 1, .seed = 1, .step = step};
  int rc = kd_model_loss(f->m, f->c, &o, gt, n, &lc, out, &err);
  CHECK_MSG(rc == 0, "%s", err.msg);
  if (rc) return NAN;
  double sum = 0;
  for (int i = 0; i < out->nparts; i++) {
    CHECK_MSG(isfinite(out->parts[i].value->data[0]), "%s", out->parts[i].name);
    sum += out->parts[i].value->data[0];
  }
  CHECK_NEAR(out->total->data[0], sum, 1e-5 * (1 + fabs(sum)));
  return out->total->data[0];
}

static void test_forward_loss(void) {
  Fix f;
  if (fix_new(&f, 2)) return;
  KdHeadInfo hi;
  kd_model_head_info(f.m, &hi);
  CHECK(hi.provides == KD_HEAD_HAS_ROIS && hi.A == 3 && hi.K == 10 && hi.anchors && hi.pos_iou == 0.7f);
  /* training forward: RPN outputs and training proposals, no RoI head */
  KdDetOut o;
  CHECK(kd_model_forward(f.m, f.c, f.x, 1, &o) == 0 && o.nlev == 5);
  KdTensor *const *obj = kd_det_out(&o, "objectness"), *const *del = kd_det_out(&o, "rpn_box");
  CHECK(obj && del && !kd_det_out(&o, "cls"));
  for (int l = 0; obj && l < o.nlev; l++) CHECK(obj[l]->shape[1] == 3 && del[l]->shape[1] == 12 && obj[l]->shape[2] == S >> (l + 2));
  const KdHeadRois *ro = &o.head.rois;
  CHECK(ro->props.n == 2 && ro->props.cap == 100 && !ro->ran && ro->props.count[0] > 0 && ro->props.count[0] <= 100);
  float wh[4] = {S, S, S, S};
  KdPostCfg pc;
  kd_post_cfg_default(&pc);
  KdDetection det[200];
  int count[2];
  KdError err;
  CHECK(kd_model_decode(f.m, &o, &pc, 2, wh, det, count, &err) == -1 && strstr(err.msg, "training one"));
  /* the loss: four parts, the gradient reaching the RPN and the RoI head */
  KdGtImage gt[2] = {{boxes0, labels0, NULL, 2}, {NULL, NULL, NULL, 0}};
  KdDetLoss loss;
  double a = loss_of(&f, gt, 2, 7, &loss);
  static const char *const names[4] = {"rpn_cls", "rpn_box", "roi_cls", "roi_box"};
  CHECK(loss.nparts == 4 && !loss.has_assign && loss.rpn_sel && loss.rois.nrois > 0 && loss.rois.num_pos > 0);
  for (int i = 0; i < 4 && i < loss.nparts; i++) CHECK(!strcmp(loss.parts[i].name, names[i]));
  CHECK(kd_backward(f.c, loss.total) == 0);
  KdParams *p = kd_model_params(f.m);
  static const char *const trained[] = {"rpn.head.cls_logits.weight", "rpn.head.bbox_pred.weight", "roi_heads.box_head.fc6.weight",
                                        "roi_heads.box_predictor.bbox_pred.weight", "backbone.body.conv1.weight"};
  for (size_t i = 0; i < sizeof trained / sizeof trained[0]; i++) {
    KdTensor *t = kd_params_find(p, trained[i]);
    double g = 0;
    for (size_t j = 0; t && t->grad && j < t->numel; j++) g += fabs(t->grad[j]);
    CHECK_MSG(g > 0, "no gradient on %s", trained[i]);
  }
  kd_params_zero_grad(p);
  /* the same seed and step sample the same; another step others */
  KdDetLoss again;
  CHECK(loss_of(&f, gt, 2, 7, &again) == a);
  CHECK(loss_of(&f, gt, 2, 8, &again) != a);
  /* evaluation forward: the RoI head on the test proposals, then decode */
  kd_ctx_reset(f.c);
  KdTensor *x = kd_tensor4(f.c, 2, 3, S, S);
  memcpy(x->data, f.x->data, x->numel * sizeof(float));
  CHECK(kd_model_forward(f.m, f.c, x, 0, &o) == 0);
  ro = &o.head.rois;
  CHECK(ro->ran && ro->props.cap == 50 && ro->nrois == ro->props.count[0] + ro->props.count[1] && ro->cls &&
        ro->cls->shape[0] == ro->nrois && ro->cls->shape[1] == 11 && ro->box->shape[1] == 44);
  pc.score_thr = 0.0f, pc.max_det = 20;
  CHECK_MSG(kd_model_decode(f.m, &o, &pc, 2, wh, det, count, &err) == 0, "%s", err.msg);
  for (int i = 0; i < 2; i++) {
    CHECK(count[i] > 0 && count[i] <= 20);
    for (int k = 0; k < count[i]; k++) {
      const KdDetection *d = &det[i * 20 + k];
      CHECK(d->x1 >= 0 && d->x2 <= S && d->label >= 0 && d->label < 10 && (k == 0 || d->score <= d[-1].score));
    }
  }
  /* the RoI hook: the same outputs for the same RoIs */
  KdHeadOut ho;
  CHECK(kd_model_roi_forward(f.m, f.c, o.feat, ro->rois, ro->nrois, &ho, &err) == 0);
  CHECK(ho.rois.cls && !memcmp(ho.rois.cls->data, ro->cls->data, ro->cls->numel * sizeof(float)));
  /* levels: canonical 56 px at P4: 14 px boxes go to P2, 40 px to P3, 100 px to P4 */
  float small[4] = {0, 0, 14, 14}, mid[4] = {0, 0, 40, 40}, big[4] = {0, 0, 100, 100};
  CHECK(kd_model_box_level(f.m, small) == 0 && kd_model_box_level(f.m, mid) == 1 && kd_model_box_level(f.m, big) == 2);
  CHECK(kd_model_flops(f.m, 1, S, S) > 0);
  fix_free(&f);
}

/* Degenerate boxes, no boxes, and more boxes than both quotas. */
static void test_bad_gt(void) {
  Fix f;
  if (fix_new(&f, 1)) return;
  KdDetLoss loss;
  KdGtImage none = {NULL, NULL, NULL, 0};
  loss_of(&f, &none, 1, 1, &loss);
  CHECK(loss.rois.num_pos == 0 && loss.parts[1].value->data[0] == 0.0f && loss.parts[3].value->data[0] == 0.0f);
  static const float bad[] = {10, 10, 10, 40, 50, 50, 20, 20, 30, 30, 30.0f, 30.0f};
  static const int bl[] = {0, 1, 2};
  KdGtImage deg = {bad, bl, NULL, 3};
  loss_of(&f, &deg, 1, 1, &loss);
  enum { M = 150 };
  float *many = malloc(sizeof(float) * 4 * M);
  int *ml = malloc(sizeof(int) * M);
  for (int i = 0; i < M; i++) {
    float x = (float)(i % 12) * 4, y = (float)(i / 12) * 4;
    float b[4] = {x, y, x + 16, y + 16};
    memcpy(many + 4 * i, b, sizeof b);
    ml[i] = i % 10;
  }
  KdGtImage lots = {many, ml, NULL, M};
  loss_of(&f, &lots, 1, 1, &loss);
  int rpn_pos = 0;
  for (int i = 0; loss.rpn_sel && i < 3 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1); i++) rpn_pos += loss.rpn_sel[i] == 1;
  CHECK_MSG(rpn_pos == 32 && loss.rois.num_pos == 8 && loss.rois.nrois == 32, "%d RPN positives, %d of %d RoIs", rpn_pos,
            loss.rois.num_pos, loss.rois.nrois);
  free(many), free(ml);
  fix_free(&f);
}

/* A RetinaNet checkpoint given to a Faster R-CNN model: refused, naming the tensors. */
static void test_wrong_kind(void) {
  KdError err = {{0}};
  KdModelCfg rc = tiny("retinanet"), fc = tiny("faster_rcnn");
  KdModel *r = kd_model_new(&rc, 1, &err), *f = kd_model_new(&fc, 1, &err);
  CHECK(r && f);
  char path[] = "/tmp/kd_frcnn_ckXXXXXX";
  close(mkstemp(path));
  if (r && f && kd_safetensors_save(path, kd_model_params(r), NULL, &err) == 0) {
    CHECK(kd_safetensors_load(path, kd_model_params(f), 1, &err) == -1);
    CHECK_MSG(strstr(err.msg, "missing \"rpn.head.conv.0.0.weight\"") && strstr(err.msg, "head.classification_head"), "%s",
              err.msg);
  }
  unlink(path);
  kd_model_free(r), kd_model_free(f);
  /* settings errors name the key */
  fc = tiny("faster_rcnn"), fc.head.rpn.nsizes = 4;
  CHECK(!kd_model_new(&fc, 1, &err) && strstr(err.msg, "rpn.anchor_sizes: 4 sizes for the neck's 5 levels"));
  /* any neck with a level up to P5: P3..P7 pools from P3..P5 */
  fc = tiny("faster_rcnn"), fc.neck.first_level = 3, fc.neck.extra_levels = 2, fc.neck.extra = KD_EXTRA_P6P7_P5;
  KdModel *m = kd_model_new(&fc, 1, &err);
  float big[4] = {0, 0, 100, 100};
  CHECK_MSG(m && kd_model_box_level(m, big) == 1, "%s", m ? "level" : err.msg);
  kd_model_free(m);
}

/* init_from_teacher between two Faster R-CNN models copies the RPN and
 * the RoI head too. */
static void test_inherit(void) {
  KdError err;
  KdModelCfg mc = tiny("faster_rcnn");
  KdModel *t = kd_model_new(&mc, 1, &err), *s = kd_model_new(&mc, 2, &err);
  CHECK(t && s);
  if (t && s) {
    int n = kd_model_inherit(s, t);
    CHECK_MSG(n == 4 * 4 + 6 + 8, "%d tensors copied", n); /* 4 FPN levels x (inner, layer) x (w, b), rpn 6, roi 8 */
    static const char *const names[] = {"rpn.head.conv.0.0.weight", "roi_heads.box_head.fc6.weight", "roi_heads.box_predictor.cls_score.bias"};
    for (int i = 0; i < 3; i++) {
      KdTensor *a = kd_params_find(kd_model_params(s), names[i]), *b = kd_params_find(kd_model_params(t), names[i]);
      CHECK_MSG(a && b && !memcmp(a->data, b->data, a->numel * sizeof(float)), "%s", names[i]);
    }
  }
  kd_model_free(t), kd_model_free(s);
}

int main(void) {
  test_forward_loss();
  test_inherit();
  test_bad_gt();
  test_wrong_kind();
  return check_status("test_frcnn");
}
