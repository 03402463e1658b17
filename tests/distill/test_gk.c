/* Global-knowledge RDM (engine/distill/gk.c) by hand: one instance on a
 * 2 x 2 map through an identity adapter (the crop's inclusive end takes the
 * whole map, q from the prototypes, w = 1 - |q_s - q_t|, the soft mask,
 * DeFeat's normalisers with fg 1 / bg 4); an instance with negative w
 * (background weight above 1, fg normaliser clamped at 1); a class without
 * prototypes (w = 1); the soft-label KL by its formula; the attenuation
 * from epochs and from progress; the level reduction; the projection term
 * by hand; the student's positive anchors give the same loss as those
 * anchors given as instance rows; the run-state helpers (gk.h).
 * Finite-difference checks: crop pooling, the projection op, and the whole
 * loss w.r.t. the student's features (student prototypes zero, so w does
 * not move with them), instance logits and adapters. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "distill/gk.h"
#include "distill/gk_ops.h"
#include "distill/method.h"
#include "distill/side.h"
#include "dump_defeat_fgd.h"
#include "gradcheck.h"

extern const KdMethod kd_method_gk;
static KdLevels levels;

static double part(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nparts; i++)
    if (!strcmp(o->parts[i].name, name)) return o->parts[i].value->data[0];
  return NAN;
}

/* Adapter l as the identity on C channels (centre tap). */
static void identity_adapter(Fix *f, int l, int C) {
  char name[64];
  snprintf(name, sizeof name, "distill.gk.adapt.%d.weight", l);
  KdTensor *w = kd_params_find(f->store, name);
  snprintf(name, sizeof name, "distill.gk.adapt.%d.bias", l);
  KdTensor *b = kd_params_find(f->store, name);
  kd_tensor_fill(w, 0.0f), kd_tensor_fill(b, 0.0f);
  for (int c = 0; c < C; c++) w->data[(c * C + c) * 9 + 4] = 1.0f;
}

/* Runs gk on one level of stride 8 (img x img input) with instances given as rows. */
static KdTensor *run1(Fix *f, KdCtx *c, int nlev, KdTensor **tf, KdTensor **sf, const KdDistillInstIn *ii, double progress,
                      int epoch, int epochs, KdDistillOut *out) {
  KdDistillInputs in = {.c = c, .cfg = f->cfg, .n = tf[0]->shape[0], .progress = progress, .epoch = epoch, .epochs = epochs,
                        .inst_in = ii};
  int strides[KD_MAX_LEVELS];
  for (int l = 0; l < nlev; l++) strides[l] = 8 << l, in.t.feat[l] = tf[l], in.s.feat[l] = sf[l];
  in.img_h = in.img_w = 8 * tf[0]->shape[2];
  kd_levels_from_strides(&levels, nlev, strides);
  kd_distill_same_levels(&in, &levels);
  memset(out, 0, sizeof *out);
  return kd_method_gk.loss(&f->inst, &in, out) ? NULL : out->loss;
}

/* 1 x 2 x 2 x 2 maps: teacher [3, 4] everywhere, student (a, b) at cell
 * (0, 0), 0 elsewhere. */
static void maps(KdCtx *c, KdTensor **tf, KdTensor **sf, float a, float b) {
  tf[0] = kd_tensor4(c, 1, 2, 2, 2), sf[0] = kd_tensor4(c, 1, 2, 2, 2);
  for (int i = 0; i < 4; i++) tf[0]->data[i] = 3, tf[0]->data[4 + i] = 4;
  kd_tensor_fill(sf[0], 0);
  sf[0]->data[0] = a, sf[0]->data[4] = b;
}

static void test_hand(void) {
  Fix f;
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = 2, .s_channels = 2, .num_classes = 3, .num_anchors = 1};
  CHECK(fix_init(&f, &kd_method_gk, &sh, 1) == 0);
  identity_adapter(&f, 0, 2);
  KdError err;
  /* Class 0: teacher prototype (1, 0), student (0, 1); class 1: none. */
  const float pt[2] = {1, 0}, ps[2] = {0, 1};
  const int lab[1] = {0};
  CHECK(kd_gk_set_level(f.store, 0, pt, ps, lab, 1, &err) == 0);
  KdCtx *c = kd_ctx_new(1 << 22);
  KdTensor *tf[1], *sf[1];
  KdDistillOut out;
  /* box (0,0)-(8,8): mask cell (0,0); its crop rows/cols 0..1 (inclusive). */
  const float box[5] = {0, 0, 0, 8, 8};
  int label = 0;
  KdDistillInstIn ii = {.n = 1, .boxes = box, .labels = &label};
  const double D0A = 4 + 9, Dother = 9 + 16;
  /* (1, 1): p_s = (1/4, 1/4), q_s = cos 45deg; p_t = (3, 4), q_t = 0.6. */
  maps(c, tf, sf, 1, 1);
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.0, 0, 0, &out) != NULL);
  double w = 1 - fabs(sqrt(0.5) - 0.6);
  CHECK_NEAR(part(&out, "feat_fg"), 1 * w * D0A / fmax(1, 2 * 2 * w), 1e-5);
  double bg = ((1 - w) * D0A + 3 * Dother) / (2 * 2 * (4 - w));
  CHECK_NEAR(part(&out, "feat_bg"), 4 * bg, 1e-4);
  CHECK(part(&out, "soft") == 0 && part(&out, "r2i") == 0);
  CHECK(out.nstats == 2 && fabs(out.stats[0].value - w) < 1e-6);
  CHECK(out.nmasks == 1 && fabs(out.masks[0].map->data[0] - w) < 1e-6 && out.masks[0].map->data[1] == 0);
  /* (1, -1): q_s = -cos 45deg, w = 1 - |-0.7071 - 0.6| = -0.3071 < 0: the fg
   * normaliser max(1, 2 C sum M) is 1, the cell's bg weight 1 - w > 1. */
  const double D0B = 4 + 25;
  maps(c, tf, sf, 1, -1);
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.0, 0, 0, &out) != NULL);
  w = 1 - fabs(-sqrt(0.5) - 0.6);
  CHECK(w < 0);
  CHECK_NEAR(part(&out, "feat_fg"), w * D0B / 1.0, 1e-5);
  CHECK_NEAR(part(&out, "feat_bg"), 4 * ((1 - w) * D0B + 3 * Dother) / (2 * 2 * (4 - w)), 1e-4);
  /* Attenuation: epoch 1 of 4 -> 0.75; without epochs, 1 - progress. */
  double fg_full = part(&out, "feat_fg");
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.9, 1, 4, &out) != NULL);
  CHECK_NEAR(part(&out, "feat_fg"), 0.75 * fg_full, 1e-5);
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.3, 0, 0, &out) != NULL);
  CHECK_NEAR(part(&out, "feat_fg"), 0.7 * fg_full, 1e-5);
  fix_set(&f, "gk.attenuation", 0);
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.3, 0, 0, &out) != NULL);
  CHECK_NEAR(part(&out, "feat_fg"), fg_full, 1e-5);
  /* A class without prototypes: w = 1 (DeFeat's binary mask). */
  label = 1;
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.0, 0, 0, &out) != NULL);
  CHECK_NEAR(part(&out, "feat_fg"), D0B / 4.0, 1e-5);
  CHECK_NEAR(out.stats[0].value, 1.0, 0);
  /* Soft-label KL, T 2: t = (0, 0), s = (ln 3, 0) on the instance, class 0. */
  label = 0;
  maps(c, tf, sf, 1, 1);
  w = 1 - fabs(sqrt(0.5) - 0.6);
  float tl[2] = {0, 0}, sl[2] = {logf(3), 0};
  ii.t_cls = kd_tensor_wrap(c, tl, 2, (int[]){1, 2});
  ii.s_cls = kd_tensor_wrap(c, sl, 2, (int[]){1, 2});
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.5, 0, 0, &out) != NULL);
  const double p0 = sqrt(3) / (sqrt(3) + 1), kl = 0.5 * log(0.5 / p0) + 0.5 * log(0.5 / (1 - p0));
  CHECK_NEAR(part(&out, "soft"), 1.0 * 4 * w * kl / 2 / 1, 1e-6); /* w_soft T^2 w KL / K / R, not attenuated */
  /* Projection term: one instance, one prototype per side:
   * SmoothL1(w cos(p_s, P_s) - w cos(p_t, P_t)) = SmoothL1(w (0.7071 - 0.6)). */
  fix_set(&f, "gk.use_r2i", 1);
  fix_set(&f, "gk.attenuation", 1);
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.5, 0, 0, &out) != NULL);
  const double u = w * (sqrt(0.5) - 0.6);
  CHECK_NEAR(part(&out, "r2i"), 5 * 0.5 * 0.5 * u * u, 1e-7);
  CHECK_NEAR(out.loss->data[0], part(&out, "feat_fg") + part(&out, "feat_bg") + part(&out, "soft") + part(&out, "r2i"), 1e-5);
  /* Rows over their limit, bad labels. */
  int many[KD_GK_MAX_PROTOS + 1];
  float rows[2 * (KD_GK_MAX_PROTOS + 1)] = {0};
  for (int i = 0; i <= KD_GK_MAX_PROTOS; i++) many[i] = 2;
  CHECK(kd_gk_set_level(f.store, 0, rows, rows, many, KD_GK_MAX_PROTOS + 1, &err) == -1 && strstr(err.msg, "class 2"));
  many[0] = 3;
  CHECK(kd_gk_set_level(f.store, 0, rows, rows, many, 1, &err) == -1 && strstr(err.msg, "class 3"));
  CHECK(kd_gk_set_level(f.store, 1, rows, rows, many, 0, &err) == -1);
  CHECK(kd_gk_epoch(f.store) && kd_gk_epoch(f.store)[0] == -1.0f);
  kd_ctx_free(c);
  fix_free(&f);
}

/* A two-stage student's positive sampled RoI as the instance (a
 * background RoI beside it is not one): p from the mean of its 7x7
 * aligned RoIAlign, not the crop, and the background 1 - [M > 0]. The
 * student map is (1, 0) at cell (0, 0) and (0, 1) at cell (1, 1), the
 * teacher (3, 4) everywhere. RoI (0,0)-(8,8) at stride 8: bin centres at
 * -0.5 + (i + 0.5) / 7, clamped at 0, so cell (0, 0) weighs
 * (6.1429 / 7)^2 = 0.770102 and cell (1, 1) (0.8571 / 7)^2 = 0.014994:
 * q_s = cos(p_s, (0, 1)) = 0.019467 (the crop's mean would give 0.7071),
 * q_t = 0.6, w = 0.419467. */
static void test_roi_path(void) {
  Fix f;
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = 2, .s_channels = 2, .num_classes = 3, .num_anchors = 1};
  CHECK(fix_init(&f, &kd_method_gk, &sh, 1) == 0);
  identity_adapter(&f, 0, 2);
  fix_set(&f, "gk.soft", 0);
  KdError err;
  const float pt[2] = {1, 0}, ps[2] = {0, 1};
  const int lab[1] = {0};
  CHECK(kd_gk_set_level(f.store, 0, pt, ps, lab, 1, &err) == 0);
  KdCtx *c = kd_ctx_new(1 << 22);
  KdTensor *tf = kd_tensor4(c, 1, 2, 2, 2), *sf = kd_tensor4(c, 1, 2, 2, 2);
  for (int i = 0; i < 4; i++) tf->data[i] = 3, tf->data[4 + i] = 4;
  kd_tensor_fill(sf, 0);
  sf->data[0] = 1, sf->data[4 + 3] = 1;
  float rois[10] = {0, 0, 0, 8, 8, 0, 4, 4, 16, 16};
  int labels[2] = {1, 0}, count[1] = {2};
  KdRoiSample sm = {.nrois = 2, .num_pos = 1, .rois = rois, .labels = labels, .count = count};
  KdDistillInputs in = {.c = c, .cfg = f.cfg, .n = 1, .img_h = 16, .img_w = 16};
  int strides[1] = {8};
  kd_levels_from_strides(&levels, 1, strides);
  in.t.feat[0] = tf, in.s.feat[0] = sf, in.s.sample = &sm;
  kd_distill_same_levels(&in, &levels);
  KdDistillOut out;
  memset(&out, 0, sizeof out);
  CHECK(kd_method_gk.loss(&f.inst, &in, &out) == 0);
  /* per axis: four samples clamped to 0 (weight 1 on cell 0), three at 1/7, 2/7, 3/7 */
  const double wa = pow((4 + (1 - 1.0 / 7) + (1 - 2.0 / 7) + (1 - 3.0 / 7)) / 7, 2), wb = pow((1.0 / 7 + 2.0 / 7 + 3.0 / 7) / 7, 2);
  const double qs = wb / sqrt(wa * wa + wb * wb), w = 1 - fabs(qs - 0.6);
  CHECK_NEAR(qs, 0.019467, 1e-5);
  CHECK_NEAR(out.stats[0].value, w, 1e-5); /* w_mean over the one instance */
  CHECK_NEAR(out.stats[1].value, 1.0, 0);  /* one instance: the background RoI is not one */
  CHECK_NEAR(part(&out, "feat_fg"), w * 20 / fmax(1, 2 * 2 * w), 1e-5);
  CHECK_NEAR(part(&out, "feat_bg"), 4.0 * (25 + 25 + 18) / (2 * 2 * 3), 1e-4); /* 1 - [M > 0]: the box cell is out */
  /* The projection term pools the student as q did (the RoIAlign mean, not
   * the crop's 0.7071): SmoothL1(w (q_s - q_t)), one prototype a side. */
  fix_set(&f, "gk.use_r2i", 1);
  memset(&out, 0, sizeof out);
  CHECK(kd_method_gk.loss(&f.inst, &in, &out) == 0);
  const double u = w * (qs - 0.6);
  CHECK_NEAR(part(&out, "r2i"), 5 * 0.5 * u * u, 1e-6);
  kd_ctx_free(c);
  fix_free(&f);
}

/* Two levels: sum vs mean; the projection term sums over levels. Two
 * instances of one class on level 0, none on level 1. */
static void test_levels(void) {
  Fix f;
  KdDistillShapes sh = {.nlev = 2, .strides = {8, 16}, .t_channels = 2, .s_channels = 2, .num_classes = 1, .num_anchors = 1};
  CHECK(fix_init(&f, &kd_method_gk, &sh, 1) == 0);
  KdCtx *c = kd_ctx_new(1 << 22);
  KdRng r;
  kd_rng_seed(&r, 3, 1);
  KdTensor *tf[2], *sf[2];
  for (int l = 0; l < 2; l++) {
    tf[l] = kd_tensor4(c, 1, 2, 4 >> l, 4 >> l), sf[l] = kd_tensor4(c, 1, 2, 4 >> l, 4 >> l);
    for (size_t i = 0; i < tf[l]->numel; i++) tf[l]->data[i] = kd_rng_normal(&r), sf[l]->data[i] = kd_rng_normal(&r);
  }
  const float box[10] = {0, 0, 0, 10, 10, 0, 12, 12, 30, 30};
  const int lab[2] = {0, 0};
  KdDistillInstIn ii = {.n = 2, .boxes = box, .labels = lab};
  KdDistillOut out;
  CHECK(run1(&f, c, 2, tf, sf, &ii, 0, 0, 0, &out));
  const double sum_fg = part(&out, "feat_fg"), sum_bg = part(&out, "feat_bg");
  KdError err;
  CHECK(kd_config_set(f.cfg, "gk.reduce", "mean", &err) == 0 && kd_method_read_params(&f.inst, f.cfg, &err) == 0);
  CHECK(run1(&f, c, 2, tf, sf, &ii, 0, 0, 0, &out));
  CHECK_NEAR(part(&out, "feat_fg"), sum_fg / 2, 1e-6);
  CHECK_NEAR(part(&out, "feat_bg"), sum_bg / 2, 1e-6);
  CHECK(out.nmasks == 2 && out.nstats == 2 && out.stats[1].value == 2);
  kd_ctx_free(c);
  fix_free(&f);
}

/* The training path: positive anchors of an assignment give the loss of
 * the same anchors given as rows (boxes, classes, logits). */
static void test_anchor_path(void) {
  Fix f;
  enum { A = 2, K = 3, H = 2 };
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = 2, .s_channels = 2, .num_classes = K, .num_anchors = A};
  CHECK(fix_init(&f, &kd_method_gk, &sh, 4) == 0);
  KdError err;
  const float pt[4] = {1, 0.5f, -1, 2}, ps[4] = {0.3f, 1, 2, -1};
  const int lab[2] = {1, 1};
  CHECK(kd_gk_set_level(f.store, 0, pt, ps, lab, 2, &err) == 0);
  fix_set(&f, "gk.use_r2i", 1);
  KdCtx *c = kd_ctx_new(1 << 22);
  KdRng r;
  kd_rng_seed(&r, 8, 1);
  KdTensor *tf[1] = {kd_tensor4(c, 1, 2, H, H)}, *sf[1] = {kd_tensor4(c, 1, 2, H, H)};
  KdTensor *tc = kd_tensor4(c, 1, A * K, H, H), *sc = kd_tensor4(c, 1, A * K, H, H);
  for (size_t i = 0; i < 8; i++) tf[0]->data[i] = kd_rng_normal(&r), sf[0]->data[i] = kd_rng_normal(&r);
  for (size_t i = 0; i < tc->numel; i++) tc->data[i] = kd_rng_normal(&r), sc->data[i] = kd_rng_normal(&r);
  float anchors[H * H * A * 4];
  int tcls[H * H * A];
  for (int i = 0; i < H * H * A; i++) {
    const int hw = i / A, a = i % A;
    float *b = anchors + 4 * i;
    b[0] = (float)(hw % H) * 8 - 2.0f * a, b[1] = (float)(hw / H) * 8, b[2] = b[0] + 6 + 4 * a, b[3] = b[1] + 7;
    tcls[i] = i == 1 ? 1 : i == 4 ? 2 : i == 6 ? 1 : i == 3 ? -2 : -1;
  }
  KdDenseAssign as = {.A = A, .K = K, .A_total = H * H * A, .anchors = anchors, .target_cls = tcls};
  KdDistillInputs in = {.c = c, .cfg = f.cfg, .n = 1, .img_h = 16, .img_w = 16, .progress = 0.25};
  in.s.assign = &as;
  in.s.nout = in.t.nout = 1;
  in.s.out[0].name = in.t.out[0].name = "cls";
  in.s.out[0].lv[0] = sc, in.t.out[0].lv[0] = tc;
  in.s.feat[0] = sf[0], in.t.feat[0] = tf[0];
  kd_levels_from_strides(&levels, 1, (int[]){8});
  kd_distill_same_levels(&in, &levels);
  KdDistillOut o1, o2;
  memset(&o1, 0, sizeof o1);
  CHECK(kd_method_gk.loss(&f.inst, &in, &o1) == 0);
  /* The same three positives as rows. */
  float rows[15], tl[9], sl[9];
  int labels[3], r3 = 0;
  for (int i = 0; i < H * H * A; i++) {
    if (tcls[i] < 0) continue;
    rows[5 * r3] = 0;
    memcpy(rows + 5 * r3 + 1, anchors + 4 * i, 4 * sizeof(float));
    labels[r3] = tcls[i];
    for (int k = 0; k < K; k++) {
      const int ch = (i % A) * K + k, hw = i / A;
      tl[3 * r3 + k] = tc->data[ch * H * H + hw], sl[3 * r3 + k] = sc->data[ch * H * H + hw];
    }
    r3++;
  }
  KdDistillInstIn ii = {.n = 3, .boxes = rows, .labels = labels, .t_cls = kd_tensor_wrap(c, tl, 2, (int[]){3, K}),
                        .s_cls = kd_tensor_wrap(c, sl, 2, (int[]){3, K})};
  CHECK(run1(&f, c, 1, tf, sf, &ii, 0.25, 0, 0, &o2) != NULL);
  CHECK(o1.nparts == 4 && o2.nparts == 4);
  for (int p = 0; p < 4; p++) CHECK_NEAR(o1.parts[p].value->data[0], o2.parts[p].value->data[0], 1e-6);
  CHECK(part(&o1, "soft") > 0 && part(&o1, "r2i") > 0);
  CHECK(o1.stats[1].value == 3);
  kd_ctx_free(c);
  fix_free(&f);
}

/* ---- gradient checks ---- */
static KdGkCrop gcrops[3] = {{0, 0, 1, 0, 2}, {1, 1, 2, 1, 1}, {0, 2, 2, 0, 0}};

static KdTensor *fwd_pool(KdCtx *c, KdTensor **x, void *u) {
  (void)u;
  KdTensor *p = kd_gk_pool(c, x[0], gcrops, 3);
  return kd_sum_all(c, kd_mul(c, p, x[1]));
}

static float r2i_protos[4 * 3], r2i_dt[3 * 4], r2i_w[3] = {0.9f, -0.4f, 1.3f};
static KdTensor *fwd_r2i(KdCtx *c, KdTensor **x, void *u) {
  (void)u;
  return kd_gk_r2i(c, x[0], r2i_protos, 4, r2i_dt, r2i_w);
}

typedef struct {
  Fix *f;
  KdTensor *tf[2];
  const KdDistillInstIn *ii;
  KdTensor *tcl;
  DumpBind bind[8];
} Gs;
static Gs gs;

/* in: sf0, sf1, student instance logits, the adapters as one flat input */
static KdTensor *fwd_loss(KdCtx *c, KdTensor **x, void *u) {
  (void)u;
  size_t off = 0;
  int b = 0;
  for (int i = 0; i < kd_params_count(gs.f->store); i++) {
    if (kd_params_kind(gs.f->store, i) != KD_PARAM_TRAIN) continue;
    KdTensor *p = kd_params_at(gs.f->store, i);
    dump_bind(&gs.bind[b++], p, x[3]->data + off, x[3]->grad ? x[3]->grad + off : NULL, x[3]->requires_grad);
    off += p->numel;
  }
  KdDistillInstIn ii = *gs.ii;
  ii.s_cls = x[2], ii.t_cls = gs.tcl;
  KdDistillOut out;
  KdTensor *sf[2] = {x[0], x[1]};
  return run1(gs.f, c, 2, gs.tf, sf, &ii, 0.2, 0, 0, &out);
}

static int grad_checks(void) {
  int fails = 0;
  KdRng r;
  kd_rng_seed(&r, 11, 3);
  Gc *g = gc_new("gk/crop pooling", fwd_pool, NULL);
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 3, 3});
  gc_input(g, GC_CONST, 2, (int[]){3, 3});
  fails += gc_run(g);
  for (int i = 0; i < 12; i++) r2i_protos[i] = kd_rng_normal(&r), r2i_dt[i] = kd_rng_range(&r, -1, 1);
  g = gc_new("gk/projection term", fwd_r2i, NULL);
  gc_input(g, GC_CHECK, 2, (int[]){3, 3});
  gc_tol(g, 1e-3, 0, 0);
  fails += gc_run(g);
  /* Whole loss: student prototypes zero (q_s = 0 whatever the features). */
  Fix f;
  KdDistillShapes sh = {.nlev = 2, .strides = {8, 16}, .t_channels = 3, .s_channels = 2, .num_classes = 2, .num_anchors = 1};
  CHECK(fix_init(&f, &kd_method_gk, &sh, 5) == 0);
  KdError err;
  float pt[2 * 3], ps[2 * 2] = {0};
  for (int i = 0; i < 6; i++) pt[i] = kd_rng_normal(&r);
  const int plab[2] = {0, 1};
  for (int l = 0; l < 2; l++) CHECK(kd_gk_set_level(f.store, l, pt, ps, plab, 2, &err) == 0);
  fix_set(&f, "gk.soft", 2);
  KdCtx *c = kd_ctx_new(1 << 22);
  for (int l = 0; l < 2; l++) {
    gs.tf[l] = kd_tensor4(c, 2, 3, 4 >> l, 4 >> l);
    for (size_t i = 0; i < gs.tf[l]->numel; i++) gs.tf[l]->data[i] = kd_rng_normal(&r);
  }
  static const float box[20] = {0, 0, 0, 14, 12, 1, 3, 5, 20, 28, 1, 16, 2, 31, 9, 0, 4, 17, 30, 31};
  static const int lab[4] = {0, 1, 0, 1};
  static KdDistillInstIn ii = {.n = 4, .boxes = box, .labels = lab};
  gs.ii = &ii, gs.f = &f;
  gs.tcl = kd_tensor_new(c, 2, (int[]){4, 2});
  for (int i = 0; i < 8; i++) gs.tcl->data[i] = 2 * kd_rng_normal(&r);
  g = gc_new("gk/loss: features, instance logits, adapters", fwd_loss, NULL);
  for (int l = 0; l < 2; l++) gc_input(g, GC_CHECK, 4, (int[]){2, 2, 4 >> l, 4 >> l});
  gc_input(g, GC_CHECK, 2, (int[]){4, 2});
  size_t np = 0;
  for (int i = 0; i < kd_params_count(f.store); i++)
    if (kd_params_kind(f.store, i) == KD_PARAM_TRAIN) np += kd_params_at(f.store, i)->numel;
  float *pv = gc_input(g, GC_CHECK | GC_PARAM, 1, (int[]){(int)np});
  size_t off = 0;
  for (int i = 0; i < kd_params_count(f.store); i++) {
    if (kd_params_kind(f.store, i) != KD_PARAM_TRAIN) continue;
    KdTensor *p = kd_params_at(f.store, i);
    memcpy(pv + off, p->data, p->numel * sizeof(float));
    off += p->numel;
  }
  fails += gc_run(g);
  for (int i = 0; i < 8; i++) dump_unbind(&gs.bind[i]);
  kd_ctx_free(c);
  fix_free(&f);
  return fails;
}

int main(void) {
  test_hand();
  test_roi_path();
  test_levels();
  test_anchor_path();
  CHECK(grad_checks() == 0);
  return check_status("distill_gk");
}
