/* HEAD / TF-HEAD pieces (distill/assist.h; KD-METHODS §5):
 *   - hand cases: AKD's adapted MSE, CKD's tower pixels at the RoIs'
 *     anchors (GT boxes skipped, two levels, rows grouped by level) and
 *     its MSE against the teacher rows; the warm-up; the assistant's levels
 *     (mmdet's level-by-index mapping);
 *   - the student proposals: max class logit as objectness, per-level top-n,
 *     per-level NMS, each proposal's (level, y, x, anchor), the GT box
 *     added with no position;
 *   - the assistant built from a two-stage teacher: its tensors are copies
 *     of the teacher's RoI head, adapters of the right widths;
 *   - finite-difference checks of AKD and CKD w.r.t. the assistant's
 *     features, the student's tower and the adapters.
 *   --oracle: the loss formulas (weights, warm-up, both AKD terms, CKD)
 *   against head_oracle.py (PyTorch, F.mse_loss over F.linear); 77
 *   without torch. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "distill/assist.h"
#include "distill/distiller.h"
#include "distill/norms.h"
#include "distill/side.h"
#include "dump_defeat_fgd.h"
#include "gradcheck.h"
#include "train/session.h"
#include "train/settings.h"

static KdTensor *mat(KdCtx *c, int r, int k, const float *v) {
  KdTensor *t = kd_tensor_new(c, 2, (int[]){r, k});
  memcpy(t->data, v, sizeof(float) * (size_t)r * k);
  return t;
}

/* Lin(x) = [[1, 5], [3, -1]] against t: squares 1, 0, 4, 4 -> 9 / 4. */
static void test_mse_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdLinear ad = {mat(c, 2, 2, (float[]){1, 0, 0, 2}), kd_tensor_new(c, 1, (int[]){2})};
  ad.b->data[0] = 0, ad.b->data[1] = 1;
  KdTensor *x = mat(c, 2, 2, (float[]){1, 2, 3, -1}), *t = mat(c, 2, 2, (float[]){0, 5, 1, 1});
  KdTensor *l = kd_assist_mse(c, &ad, x, t);
  CHECK(l && fabsf(l->data[0] - 2.25f) < 1e-6f);
  CHECK(kd_assist_mse(c, &ad, x, mat(c, 1, 2, (float[]){0, 0})) == NULL && kd_ctx_failed(c));
  kd_ctx_free(c);
}

/* v(n, c, y, x) = 100n + 10c + 3y + x on level 0 (2x3) and 1000 + the same
 * on level 1 (1x2). RoIs: 0 level 0 image 1 (1, 2); 1 a GT box; 2 level 1
 * image 0 (0, 1); 3 level 0 image 0 (0, 1). */
static void fill_rois(KdAssistRois *r, float *rois, int *lv, int *y, int *x, int *an) {
  static const int L[4] = {0, -1, 1, 0}, I[4] = {1, 0, 0, 0}, Y[4] = {1, -1, 0, 0}, X[4] = {2, -1, 1, 1};
  memset(r, 0, sizeof *r);
  for (int k = 0; k < 4; k++) {
    rois[5 * k] = (float)I[k];
    lv[k] = L[k], y[k] = Y[k], x[k] = X[k], an[k] = L[k] < 0 ? -1 : 0;
  }
  r->s.nrois = 4, r->s.rois = rois, r->level = lv, r->y = y, r->x = x, r->anchor = an, r->npix = 3;
}

static KdTensor *tower_level(KdCtx *c, int l) {
  const int H = l ? 1 : 2, W = l ? 2 : 3;
  KdTensor *t = kd_tensor4(c, 2, 2, H, W);
  for (int n = 0; n < 2; n++)
    for (int ch = 0; ch < 2; ch++)
      for (int yy = 0; yy < H; yy++)
        for (int xx = 0; xx < W; xx++) t->data[((n * 2 + ch) * H + yy) * W + xx] = 1000.0f * l + 100 * n + 10 * ch + 3 * yy + xx;
  return t;
}

static void test_pixels_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdAssistRois r;
  float rois[20] = {0};
  int lv[4], y[4], x[4], an[4], rows[4] = {-1, -1, -1, -1};
  fill_rois(&r, rois, lv, y, x, an);
  KdTensor *tower[2] = {tower_level(c, 0), tower_level(c, 1)};
  KdTensor *pix = kd_assist_pixels(c, tower, 2, &r, rows);
  CHECK(pix && pix->ndim == 2 && pix->shape[0] == 3 && pix->shape[1] == 2);
  /* level 0 first (RoIs 0, 3), then level 1 (RoI 2) */
  static const float want[6] = {105, 115, 1, 11, 1001, 1011};
  for (int i = 0; pix && i < 6; i++) CHECK_NEAR(pix->data[i], want[i], 0);
  CHECK(rows[0] == 0 && rows[1] == 3 && rows[2] == 2);
  /* CKD: Lin_c (C 2 -> D 3) = 0.01 * [[1, 0], [0, 1], [1, 1]], no bias,
   * against the teacher's fc2 rows 0, 3, 2. */
  KdLinear ad = {mat(c, 3, 2, (float[]){0.01f, 0, 0, 0.01f, 0.01f, 0.01f}), kd_tensor_zeros(c, 1, (int[]){3})};
  KdTensor *t2 = mat(c, 4, 3, (float[]){1, 1, 2, 9, 9, 9, 10, 10, 20, 0, 0, 0});
  KdTensor *l = kd_assist_mse(c, &ad, pix, kd_assist_rows(c, t2, rows, 3));
  /* rows: (1.05, 1.15, 2.2) - (1, 1, 2); (0.01, 0.11, 0.12) - 0; (10.01, 10.11, 20.12) - (10, 10, 20) */
  const double d[9] = {0.05, 0.15, 0.2, 0.01, 0.11, 0.12, 0.01, 0.11, 0.12};
  double want_l = 0;
  for (int i = 0; i < 9; i++) want_l += d[i] * d[i] / 9.0;
  CHECK(l && fabs(l->data[0] - want_l) < 1e-6);
  /* only GT boxes: no pixels */
  r.level[0] = r.level[2] = r.level[3] = -1, r.npix = 0;
  CHECK(kd_assist_pixels(c, tower, 2, &r, rows) == NULL && !kd_ctx_failed(c));
  kd_ctx_free(c);
}

static void test_warmup_levels(void) {
  CHECK(kd_assist_warmup(0, 200) == 0.0f && kd_assist_warmup(100, 200) == 0.5f && kd_assist_warmup(200, 200) == 1.0f &&
        kd_assist_warmup(900, 200) == 1.0f && kd_assist_warmup(0, 0) == 1.0f);
  KdLevels s, out, t;
  kd_levels_from_strides(&s, 3, (int[]){8, 16, 32});
  KdRoiHeadCfg rc;
  kd_roi_head_cfg_default(&rc);
  rc.pool.canonical_level = 4;
  kd_assist_levels(&s, 4, 4, &rc, &out);
  CHECK(out.n == 3 && out.stride[0] == 8 && rc.pool.canonical_level == 5);
  /* a box pools from the student level of the index its teacher level has */
  int first;
  kd_levels_from_strides(&t, 5, (int[]){4, 8, 16, 32, 64});
  CHECK(kd_assist_teacher_levels(&t, &first) == 4 && first == 4);
  KdRoiPoolCfg tp = rc.pool;
  tp.canonical_level = 4, tp.canonical_scale = 112;
  rc.pool.canonical_scale = 112;
  for (float side = 6; side < 500; side *= 1.3f) {
    const float box[4] = {0, 0, side, side};
    const int ti = kd_roi_pool_level(&tp, t.stride, 4, box), si = kd_roi_pool_level(&rc.pool, out.stride, 3, box);
    CHECK_MSG(si == (ti < 3 ? ti : 2), "a %g px box: teacher level %d, assistant level %d", side, ti, si);
  }
  kd_levels_from_strides(&s, 5, (int[]){8, 16, 32, 64, 128});
  kd_roi_head_cfg_default(&rc);
  kd_assist_levels(&s, 4, 4, &rc, &out);
  CHECK(out.n == 4 && out.stride[3] == 64);
}

/* Two levels: P3 2x2 and P4 1x1, one anchor each, K = 2, 16x16 image,
 * boxes = anchors (zero deltas): P3 cell (y, x) is [8x, 8y, 8x+8, 8y+8],
 * P4's [0, 0, 16, 16]. Objectness max_k: P3 [[1.5, 2.0], [0.2, 0.5]], P4
 * 3.0. Top 3 per level keeps P3 cells (0,1), (0,0), (1,1). One GT [0, 0,
 * 8, 8] of class 1. */
static void test_proposals(void) {
  KdCtx *c = kd_ctx_new(4 << 20);
  KdError err = {0};
  KdLevels lv;
  kd_levels_from_strides(&lv, 2, (int[]){8, 16});
  KdTensor *cls[2] = {kd_tensor4(c, 1, 2, 2, 2), kd_tensor4(c, 1, 2, 1, 1)};
  KdTensor *box[2] = {kd_tensor_zeros(c, 4, (int[]){1, 4, 2, 2}), kd_tensor_zeros(c, 4, (int[]){1, 4, 1, 1})};
  static const float l0[8] = {0.1f, 2.0f, -1, 0.5f, 1.5f, -3, 0.2f, 0.4f}, l1[2] = {3.0f, -2};
  memcpy(cls[0]->data, l0, sizeof l0), memcpy(cls[1]->data, l1, sizeof l1);
  float anchors[5 * 4] = {0, 0, 8, 8, 8, 0, 16, 8, 0, 8, 8, 16, 8, 8, 16, 16, 0, 0, 16, 16};
  KdDenseAssign as = {.A = 1, .K = 2, .A_total = 5, .anchors = anchors};
  float gb[4] = {0, 0, 8, 8};
  int gl[1] = {1};
  KdGtImage gt = {.n = 1, .boxes = gb, .labels = gl};
  KdRng rng;
  kd_rng_seed(&rng, 3, 4);
  KdDistillInputs in = {.c = c, .n = 1, .img_h = 16, .img_w = 16, .gt = &gt, .rng = &rng};
  in.s.levels = &lv, in.s.assign = &as, in.s.nout = 2;
  in.s.out[0].name = "cls", in.s.out[1].name = "box";
  for (int l = 0; l < 2; l++) in.s.out[0].lv[l] = cls[l], in.s.out[1].lv[l] = box[l];
  KdRoiHeadCfg rc;
  kd_roi_head_cfg_default(&rc);
  rc.num_classes = 2, rc.representation = 8;
  KdParams *p = kd_params_new();
  KdRoiHead *h = kd_roi_head_new_at(&rc, 4, &lv, p, "x", &err);
  CHECK(h && kd_params_finalize(p, &err) == 0 && kd_params_find(p, "x.box_head.fc6.weight"));
  const KdProposalCfg pc = {.pre_nms_top_n = 3, .post_nms_top_n = 10, .nms_thresh = 0.7f, .min_size = 1e-3f};
  KdAssistRois r;
  CHECK(kd_assist_rois(&in, &pc, h, &r, &err) == 0);
  CHECK_MSG(r.nprops == 4 && r.s.nrois == 5 && r.npix == 4 && r.s.num_pos == 2, "%d proposals, %d RoIs, %d pixels, %d pos",
            r.nprops, r.s.nrois, r.npix, r.s.num_pos);
  int seen[5] = {0}, gt_seen = 0;
  for (int k = 0; k < r.s.nrois; k++) {
    const float *q = r.s.rois + 5 * k;
    if (r.level[k] < 0) {
      CHECK(q[1] == 0 && q[2] == 0 && q[3] == 8 && q[4] == 8 && r.s.labels[k] == 2 && r.y[k] == -1);
      gt_seen++;
      continue;
    }
    const int stride = r.level[k] ? 16 : 8, flat = r.level[k] ? 4 : r.y[k] * 2 + r.x[k];
    CHECK_MSG(q[1] == (float)(stride * r.x[k]) && q[2] == (float)(stride * r.y[k]) && q[3] - q[1] == stride &&
                  r.anchor[k] == 0,
              "RoI %d at level %d (%d, %d) is [%g %g %g %g]", k, r.level[k], r.y[k], r.x[k], q[1], q[2], q[3], q[4]);
    seen[flat]++;
  }
  CHECK(gt_seen == 1 && seen[0] == 1 && seen[1] == 1 && seen[2] == 0 && seen[3] == 1 && seen[4] == 1);
  CHECK(kd_assist_rois(&(KdDistillInputs){.c = c, .n = 1, .gt = &gt}, &pc, h, &r, &err) == -1);
  kd_roi_head_free(h);
  kd_params_free(p);
  kd_ctx_free(c);
}

static KdModel *model(const char *const (*kv)[2], int n) {
  KdConfig *cfg = kd_config_new();
  KdError err = {0};
  KdModelCfg mc;
  int rc = cfg && !kd_settings_register_all(cfg) ? 0 : -1;
  for (int i = 0; !rc && i < n; i++) rc = kd_config_set(cfg, kv[i][0], kv[i][1], &err);
  KdModel *m = !rc && !kd_settings_model(cfg, &mc, &err) ? kd_model_new(&mc, 5, &err) : NULL;
  if (!m) fprintf(stderr, "model: %s\n", err.msg);
  kd_config_free(cfg);
  return m;
}

static int same(const KdTensor *a, const KdTensor *b) {
  return a && b && kd_tensor_same_shape(a, b) && !memcmp(a->data, b->data, a->numel * sizeof(float));
}

/* The assistant from a tiny Faster R-CNN teacher: a copy of its RoI head. */
static void test_assistant_init(void) {
  static const char *const tk[][2] = {{"model.head", "faster_rcnn"}, {"model.depth", "10"}, {"model.width", "8"},
                                      {"model.fpn_channels", "16"},   {"model.fpn_first_level", "2"},
                                      {"model.extra_levels", "1"},    {"model.extra_from", "pool"},
                                      {"rpn.anchor_sizes", "8,16,32,64,128"}, {"roi.representation", "32"}};
  static const char *const sk[][2] = {{"model.depth", "10"}, {"model.width", "8"}, {"model.fpn_channels", "16"},
                                      {"model.head_convs", "1"}};
  KdModel *t = model(tk, 9), *s = model(sk, 4);
  CHECK(t && s);
  if (!t || !s) return;
  KdDistillShapes sh;
  kd_distill_shapes(&sh, s, t);
  KdError err = {0};
  KdDistiller *d = kd_distiller_new(&sh, 3, &err);
  CHECK(d && kd_distiller_ensure(d, "head", &err) == 0 && kd_distiller_ensure(d, "tfhead", &err) == 0);
  KdParams *st = kd_distiller_params(d), *tp = kd_model_params(t);
  static const char *const names[] = {"box_head.fc6.weight", "box_head.fc6.bias", "box_head.fc7.weight",
                                      "box_predictor.cls_score.weight", "box_predictor.bbox_pred.bias"};
  for (int i = 0; i < 5; i++) {
    char a[128], b[128];
    snprintf(a, sizeof a, "distill.head.assist.%s", names[i]);
    snprintf(b, sizeof b, "roi_heads.%s", names[i]);
    CHECK_MSG(same(kd_params_find(st, a), kd_params_find(tp, b)), "%s is not a copy of %s", a, b);
  }
  const KdTensor *a1 = kd_params_find(st, "distill.head.akd.fc1.weight"), *ck = kd_params_find(st, "distill.head.ckd.weight");
  CHECK(a1 && a1->shape[0] == 32 && a1->shape[1] == 32 && ck && ck->shape[0] == 32 && ck->shape[1] == 16);
  /* TF-HEAD's assistants are fresh: not the teacher's, not each other's */
  CHECK(!same(kd_params_find(st, "distill.tfhead.assist_0.box_head.fc7.weight"),
              kd_params_find(st, "distill.tfhead.assist_1.box_head.fc7.weight")));
  CHECK(kd_params_find(st, "distill.tfhead.assist_2.box_predictor.cls_score.weight") &&
        kd_params_find(st, "distill.tfhead.ckd_1.weight"));
  /* nothing of the assistant in the student's own parameters */
  for (int i = 0; i < kd_params_count(kd_model_params(s)); i++) CHECK(!strstr(kd_params_at(kd_model_params(s), i)->name, "assist"));
  /* without a two-stage teacher HEAD builds nothing and its loss says why */
  KdDistillShapes sh2;
  kd_distill_shapes(&sh2, s, s);
  KdDistiller *d2 = kd_distiller_new(&sh2, 3, &err);
  CHECK(d2 && kd_distiller_ensure(d2, "head", &err) == 0 && !kd_params_find(kd_distiller_params(d2), "distill.head.ckd.weight"));
  kd_distiller_free(d2);
  kd_distiller_free(d);
  kd_model_free(t);
  kd_model_free(s);
}

/* DeFeat's decoupled RoI KL by hand: row 0 background (t/T_bg = (0, ln 3)
 * at T_bg 2: q = (1/4, 3/4) against p = (1/2, 1/2)), rows 1 and 2 objects
 * (q = (1/2, 1/2) against p = (3/4, 1/4); t = s). */
static void test_decoupled_kl(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  const float l3 = logf(3.0f);
  KdTensor *t = mat(c, 3, 2, (float[]){0, 2 * l3, 0, 0, 0.5f, -1}), *s = mat(c, 3, 2, (float[]){0, 0, l3, 0, 0.5f, -1});
  const int labels[3] = {0, 2, 1};
  KdTensor *obj, *bg;
  CHECK(kd_dist_kl_decoupled(c, t, s, labels, 1.0f, 2.0f, &obj, &bg) == 0);
  const double kl_obj = 0.5 * log(4.0 / 3.0), kl_bg = 0.25 * log(0.5) + 0.75 * log(1.5);
  CHECK(obj && fabs(obj->data[0] - kl_obj / 2) < 1e-6);
  CHECK(bg && fabs(bg->data[0] - 4 * kl_bg) < 1e-6);
  /* T_bg is its own: at T_bg = T_obj = 1 the background row gives q = (1/10, 9/10) */
  CHECK(kd_dist_kl_decoupled(c, t, s, labels, 1.0f, 1.0f, &obj, &bg) == 0);
  CHECK(fabs(bg->data[0] - (0.1 * log(0.2) + 0.9 * log(1.8))) < 1e-6);
  /* no background RoI: the background part is 0 (the reference's labels.max() would take the top class) */
  const int all_obj[3] = {1, 2, 1};
  CHECK(kd_dist_kl_decoupled(c, t, s, all_obj, 1.0f, 2.0f, &obj, &bg) == 0 && bg->data[0] == 0.0f && obj->data[0] > 0);
  kd_ctx_free(c);
}

/* ---- gradient checks ---- */
static KdTensor *gc_akd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  KdLinear ad = {in[1], in[2]};
  return kd_assist_mse(c, &ad, in[0], in[3]);
}

static KdTensor *gc_ckd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  static KdAssistRois r;
  static float rois[20];
  static int lv[4], y[4], x[4], an[4];
  int rows[4];
  fill_rois(&r, rois, lv, y, x, an);
  KdTensor *tower[2] = {in[0], in[1]};
  KdLinear ad = {in[2], in[3]};
  KdTensor *pix = kd_assist_pixels(c, tower, 2, &r, rows);
  return kd_assist_mse(c, &ad, pix, kd_assist_rows(c, in[4], rows, r.npix));
}

static KdTensor *gc_dkl(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  static const int labels[5] = {0, 3, 1, 0, 2};
  KdTensor *obj, *bg;
  if (kd_dist_kl_decoupled(c, in[0], in[1], labels, 1.5f, 0.7f, &obj, &bg)) return NULL;
  return kd_add(c, obj, kd_scale(c, bg, 0.6f));
}

static int gradchecks(void) {
  int f = 0;
  Gc *d = gc_new("defeat_roi/decoupled kl", gc_dkl, NULL);
  gc_input(d, GC_CONST, 2, (int[]){5, 4});
  gc_input(d, GC_CHECK, 2, (int[]){5, 4});
  f += gc_run(d);
  Gc *g = gc_new("head/akd mse(Lin(x), t)", gc_akd, NULL);
  gc_input(g, GC_CHECK, 2, (int[]){5, 4});
  gc_input(g, GC_CHECK | GC_PARAM, 2, (int[]){3, 4});
  gc_input(g, GC_CHECK | GC_PARAM, 1, (int[]){3});
  gc_input(g, GC_CONST, 2, (int[]){5, 3});
  f += gc_run(g);
  g = gc_new("head/ckd tower pixels", gc_ckd, NULL);
  gc_input(g, GC_CHECK, 4, (int[]){2, 2, 2, 3});
  gc_input(g, GC_CHECK, 4, (int[]){2, 2, 1, 2});
  gc_input(g, GC_CHECK | GC_PARAM, 2, (int[]){3, 2});
  gc_input(g, GC_CHECK | GC_PARAM, 1, (int[]){3});
  gc_input(g, GC_CONST, 2, (int[]){4, 3});
  f += gc_run(g);
  return f;
}

/* ---- oracle: the formulas with weights and warm-up ---- */
static void randn(KdTensor *t, KdRng *r, float s) {
  for (size_t i = 0; i < t->numel; i++) t->data[i] = s * kd_rng_normal(r);
}

static KdTensor *param(KdCtx *c, int ndim, const int *shape, KdRng *r, float s) {
  KdTensor *t = kd_tensor_new(c, ndim, shape);
  randn(t, r, s);
  t->requires_grad = 1;
  t->grad = kd_ctx_alloc(c, t->numel * sizeof(float));
  memset(t->grad, 0, t->numel * sizeof(float));
  return t;
}

static int run_oracle(void) {
  KdCtx *c = kd_ctx_new(16 << 20);
  KdRng rg;
  kd_rng_seed(&rg, 21, 2);
  const int D = 6, C = 5;
  const float w = 0.7f, wakd = 2.0f, wckd = 1.5f;
  const int step = 30, warmup = 80;
  KdAssistRois r;
  float rois[20] = {0};
  int lv[4], y[4], x[4], an[4], rows[4];
  fill_rois(&r, rois, lv, y, x, an);
  const int R = r.s.nrois;
  KdTensor *fa[2], *ft[2], *W[3], *B[3], *tw[2];
  for (int i = 0; i < 2; i++) {
    fa[i] = param(c, 2, (int[]){R, D}, &rg, 1.0f);
    ft[i] = kd_tensor_new(c, 2, (int[]){R, D});
    randn(ft[i], &rg, 1.0f);
  }
  for (int i = 0; i < 3; i++) {
    W[i] = param(c, 2, (int[]){D, i < 2 ? D : C}, &rg, 0.3f);
    B[i] = param(c, 1, (int[]){D}, &rg, 0.1f);
  }
  tw[0] = param(c, 4, (int[]){2, C, 2, 3}, &rg, 1.0f);
  tw[1] = param(c, 4, (int[]){2, C, 1, 2}, &rg, 1.0f);
  const float warm = kd_assist_warmup(step, warmup);
  KdTensor *akd[2];
  for (int i = 0; i < 2; i++) akd[i] = kd_scale(c, kd_assist_mse(c, &(KdLinear){W[i], B[i]}, fa[i], ft[i]), w * wakd * warm);
  KdTensor *pix = kd_assist_pixels(c, tw, 2, &r, rows);
  KdTensor *ckd = kd_scale(c, kd_assist_mse(c, &(KdLinear){W[2], B[2]}, pix, kd_assist_rows(c, ft[1], rows, r.npix)),
                           w * wckd * warm);
  /* DeFeat's RoI KL on 6 RoIs of K+1 = 4 classes, T_obj 1.5, T_bg 0.5 */
  const int dlab[6] = {0, 2, 0, 3, 1, 0};
  KdTensor *dt = kd_tensor_new(c, 2, (int[]){6, 4}), *ds = param(c, 2, (int[]){6, 4}, &rg, 1.5f), *dobj, *dbg;
  randn(dt, &rg, 1.5f);
  if (kd_dist_kl_decoupled(c, dt, ds, dlab, 1.5f, 0.5f, &dobj, &dbg)) return 1;
  KdTensor *total = kd_add(c, kd_add(c, kd_add(c, akd[0], akd[1]), ckd), kd_add(c, dobj, dbg));
  if (!total || kd_backward(c, total)) {
    fprintf(stderr, "head oracle: %s\n", kd_ctx_error(c));
    return 1;
  }
  Dump d = {0};
  dump_scalar(&d, "weight", w), dump_scalar(&d, "akd_weight", wakd), dump_scalar(&d, "ckd_weight", wckd);
  dump_scalar(&d, "step", (float)step), dump_scalar(&d, "warmup_steps", (float)warmup);
  float pos[4 * 4];
  for (int k = 0; k < R; k++) pos[4 * k] = (float)lv[k], pos[4 * k + 1] = rois[5 * k], pos[4 * k + 2] = (float)y[k], pos[4 * k + 3] = (float)x[k];
  dump_add(&d, "pos", pos, 2, (int[]){R, 4});
  static const char *const fn[2] = {"fc1", "fc2"}, *const wn[3] = {"akd.fc1", "akd.fc2", "ckd"};
  char nm[64];
  for (int i = 0; i < 2; i++) {
    snprintf(nm, sizeof nm, "assist.%s", fn[i]), dump_tensor(&d, nm, fa[i]);
    snprintf(nm, sizeof nm, "teacher.%s", fn[i]), dump_tensor(&d, nm, ft[i]);
    snprintf(nm, sizeof nm, "grad.assist.%s", fn[i]), dump_add(&d, nm, fa[i]->grad, 2, fa[i]->shape);
    snprintf(nm, sizeof nm, "tower.%d", i), dump_tensor(&d, nm, tw[i]);
    snprintf(nm, sizeof nm, "grad.tower.%d", i), dump_add(&d, nm, tw[i]->grad, 4, tw[i]->shape);
  }
  for (int i = 0; i < 3; i++) {
    snprintf(nm, sizeof nm, "%s.weight", wn[i]), dump_tensor(&d, nm, W[i]);
    snprintf(nm, sizeof nm, "%s.bias", wn[i]), dump_tensor(&d, nm, B[i]);
    snprintf(nm, sizeof nm, "grad.%s.weight", wn[i]), dump_add(&d, nm, W[i]->grad, 2, W[i]->shape);
    snprintf(nm, sizeof nm, "grad.%s.bias", wn[i]), dump_add(&d, nm, B[i]->grad, 1, B[i]->shape);
  }
  dump_scalar(&d, "part.akd.fc1", akd[0]->data[0]);
  dump_scalar(&d, "part.akd.fc2", akd[1]->data[0]);
  dump_scalar(&d, "part.ckd", ckd->data[0]);
  float dl[6];
  for (int i = 0; i < 6; i++) dl[i] = (float)dlab[i];
  dump_add(&d, "dr.labels", dl, 1, (int[]){6});
  dump_tensor(&d, "dr.t", dt), dump_tensor(&d, "dr.s", ds);
  dump_add(&d, "grad.dr.s", ds->grad, 2, ds->shape);
  dump_scalar(&d, "dr.T_obj", 1.5f), dump_scalar(&d, "dr.T_bg", 0.5f);
  dump_scalar(&d, "part.dr.obj", dobj->data[0]), dump_scalar(&d, "part.dr.bg", dbg->data[0]);
  char path[256];
  int rc = 1;
  if (!dump_tmp_path(path, sizeof path, "kd_head") && !dump_write(&d, path)) {
    rc = dump_run_oracle("head_oracle.py", path);
    unlink(path);
  }
  dump_free(&d);
  kd_ctx_free(c);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return run_oracle();
  test_mse_hand();
  test_pixels_hand();
  test_warmup_levels();
  test_proposals();
  test_assistant_init();
  test_decoupled_kl();
  CHECK(gradchecks() == 0);
  return check_status("test_distill_head");
}
