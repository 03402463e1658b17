/* PGD (engine/distill/pgd.c, pgdmask.c) by hand and by finite differences:
 * the prediction-guided weighting (the top-k by teacher score, the
 * Gaussian of their centres, the inside-the-box rule, top-1 by IoU,
 * crowd boxes, the draws it takes) and the background mask; each of the
 * five terms on a case small enough to add up by hand; the official batch
 * mixing (pgd.mix=official) against the per-image default; the empty reg
 * mask; refusal without the towers or with towers of two widths; gradient
 * checks w.r.t. both students towers under both mixings; and FitNet with
 * the masks as pieces (fitnet.mask=gt|fgd-scale|pgd): a constant mask gives
 * plain FitNet's mean, partial masks weight by hand, PGD's mask is the one
 * pgdmask.c makes, the needs each adds. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "distill/method.h"
#include "distill/pgdmask.h"
#include "distill/side.h"
#include "dump_defeat_fgd.h"
#include "gradcheck.h"

static const KdMethod *pgd;
static KdLevels levels;

/* A method instance without learnable parts. */
typedef struct {
  KdConfig *cfg;
  KdMethodInst inst;
} Inst;

static void inst_init(Inst *p) {
  memset(p, 0, sizeof *p);
  p->cfg = kd_config_new();
  p->inst.m = pgd;
  CHECK(p->cfg && kd_config_register(p->cfg, pgd->params, pgd->nparams) == 0 &&
        kd_method_read_params(&p->inst, p->cfg, NULL) == 0);
}

static void inst_set(Inst *p, const char *key, const char *v) {
  KdError err;
  CHECK_MSG(kd_config_set(p->cfg, key, v, &err) == 0 && kd_method_read_params(&p->inst, p->cfg, &err) == 0, "%s: %s",
            key, err.msg);
}

static void inst_free(Inst *p) {
  kd_method_inst_release(&p->inst);
  kd_config_free(p->cfg);
}

/* One side's outputs by name at nlev levels. */
static void side_out(KdDistillSide *s, const char *name, KdTensor *const *lv, int nlev) {
  s->out[s->nout].name = name;
  for (int l = 0; l < nlev; l++) s->out[s->nout].lv[l] = lv ? lv[l] : NULL;
  s->nout++;
}

typedef struct {
  int nlev, n;
  KdTensor *tc[2], *td[2];            /* teacher cls, dist (NULL with given masks) */
  KdTensor *tct[2], *sct[2], *trt[2], *srt[2]; /* towers */
} PgdScene;

static KdTensor *run(Inst *p, KdCtx *c, const PgdScene *s, const int *strides, const KdGtImage *gt,
                     const KdDistillPgdIn *pi, KdDistillOut *out) {
  KdDistillInputs in = {.c = c, .cfg = p->cfg, .n = s->n, .gt = gt, .pgd_in = pi};
  if (s->tc[0]) side_out(&in.t, "cls", s->tc, s->nlev), side_out(&in.t, "dist", s->td, s->nlev);
  /* pgd.tower=first reads the towers after their first conv, last their outputs */
  const int last = !strcmp(kd_config_str(p->cfg, "pgd.tower"), "last");
  const char *cn = last ? "cls_tower" : "cls_tower0", *rn = last ? "reg_tower" : "reg_tower0";
  side_out(&in.t, cn, s->tct, s->nlev), side_out(&in.t, rn, s->trt, s->nlev);
  side_out(&in.s, cn, s->sct, s->nlev), side_out(&in.s, rn, s->srt, s->nlev);
  kd_levels_from_strides(&levels, s->nlev, strides);
  kd_distill_same_levels(&in, &levels);
  memset(out, 0, sizeof *out);
  return pgd->loss(&p->inst, &in, out) ? NULL : out->loss;
}

static double part(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nparts; i++)
    if (!strcmp(o->parts[i].name, name)) return o->parts[i].value->data[0];
  return NAN;
}

static KdTensor *filled(KdCtx *c, int n, int ch, int h, int w, const float *v) {
  KdTensor *t = kd_tensor4(c, n, ch, h, w);
  if (t && v) memcpy(t->data, v, t->numel * sizeof *v);
  return t;
}

/* ---- the weighting, by hand ---- */

/* One image, one level of stride 8 on a 2 x 3 grid: points (0,0) (8,0)
 * (16,0) / (0,8) (8,8) (16,8). B = 3 equal bins: every teacher box is its
 * point +- 8 px. */
static void test_weighting(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *cls = kd_tensor4(c, 1, 1, 2, 3), *dist = kd_tensor4(c, 1, 12, 2, 3);
  kd_tensor_fill(dist, 0.0f);
  const float logit[6] = {4, 3, 2, 1, -1, -2}; /* the top 4 by score: the first four points */
  memcpy(cls->data, logit, sizeof logit);
  KdPgdLevel lv = {8, cls, dist};
  float u[64];
  for (int i = 0; i < 64; i++) u[i] = 0.5f; /* no jitter */
  /* xi 0: q is the score. Top 4 centres (0,0) (8,0) (16,0) (0,8): mu (6, 2),
   * Sigma = [[44, -12], [-12, 12]], det 384, Mahalanobis^2 = 7/3, 1/3,
   * 7/3, 3. The box (-2,-2,12,10) holds (0,0) (8,0) (0,8) (8,8) strictly;
   * (16,0) is outside (weight dropped), (8,8) not a candidate (0). */
  const float box[4] = {-2, -2, 12, 10};
  const int lab = 0;
  KdGtImage g = {box, &lab, NULL, 1};
  KdTensor *m;
  CHECK(kd_pgd_draws(&g, 1, 4) == 8);
  CHECK(kd_pgd_fg_masks(c, &lv, 1, 1, &g, 0.0f, 4, u, &m) == 0);
  const double want[6] = {exp(-7.0 / 6), exp(-1.0 / 6), 0, exp(-1.5), 0, 0};
  for (int i = 0; i < 6; i++) CHECK_NEAR(m->data[i], want[i], 1e-6);
  /* Background: the points in no box. */
  KdTensor *bg = kd_pgd_bg_mask(c, &g, (KdMaskGrid){1, 2, 3, 8});
  const float bwant[6] = {0, 0, 1, 0, 0, 1};
  for (int i = 0; i < 6; i++) CHECK(bg && bg->data[i] == bwant[i]);
  /* xi 1, top-1: the best IoU, whatever the score. Box (1,1,15,15): the
   * teacher box of (8,8) is (0,0,16,16), IoU 196/256; weight 1 there. */
  const float box2[4] = {1, 1, 15, 15};
  KdGtImage g2 = {box2, &lab, NULL, 1};
  CHECK(kd_pgd_fg_masks(c, &lv, 1, 1, &g2, 1.0f, 1, u, &m) == 0);
  for (int i = 0; i < 6; i++) CHECK(m->data[i] == (i == 4 ? 1.0f : 0.0f));
  /* xi 0, top-1: the best score is (0,0), on the box's edge region but not
   * strictly inside: nothing. */
  CHECK(kd_pgd_fg_masks(c, &lv, 1, 1, &g2, 0.0f, 1, u, &m) == 0);
  for (int i = 0; i < 6; i++) CHECK(m->data[i] == 0.0f);
  /* A crowd box marks nothing and takes no draws; an image without boxes is all background. */
  const int crowd = 1;
  KdGtImage gc = {box, &lab, &crowd, 1};
  CHECK(kd_pgd_draws(&gc, 1, 9) == 0);
  CHECK(kd_pgd_fg_masks(c, &lv, 1, 1, &gc, 0.0f, 4, u, &m) == 0);
  bg = kd_pgd_bg_mask(c, &gc, (KdMaskGrid){1, 2, 3, 8});
  for (int i = 0; i < 6; i++) CHECK(m->data[i] == 0.0f && bg->data[i] == 1.0f);
  /* The jitter moves the fit (and only slightly). */
  for (int i = 0; i < 8; i++) u[i] = (float)(i % 3) / 3.0f;
  CHECK(kd_pgd_fg_masks(c, &lv, 1, 1, &g, 0.0f, 4, u, &m) == 0);
  double moved = 0;
  for (int i = 0; i < 6; i++) moved = fmax(moved, fabs(m->data[i] - want[i]));
  CHECK_MSG(moved > 0 && moved < 0.05, "jitter moved the weights by %g", moved);
  /* A label outside the classes is refused. */
  const int bad = 3;
  KdGtImage gb = {box, &bad, NULL, 1};
  CHECK(kd_pgd_fg_masks(c, &lv, 1, 1, &gb, 0.0f, 4, u, &m) == -1 && strstr(kd_ctx_error(c), "label 3"));
  kd_ctx_free(c);
}

/* ---- the five terms, by hand ---- */

/* One image, one cell, C = 2, stride 16 (level weight 1.25): teacher
 * towers (0, 0), student (T ln 3, 0), so the teacher's channel attention
 * is (1, 1), the student's (3/2, 1/2), and both spatial attentions 1.
 * Masks given: cls 1, reg 0.5, bg 0. */
static void test_terms(void) {
  Inst p;
  inst_init(&p);
  KdCtx *c = kd_ctx_new(1 << 20);
  const float T = 0.8f, a = T * logf(3.0f);
  PgdScene s = {.nlev = 1, .n = 1};
  const float zero[2] = {0, 0}, sv[2] = {a, 0};
  s.tct[0] = filled(c, 1, 2, 1, 1, zero), s.trt[0] = filled(c, 1, 2, 1, 1, zero);
  s.sct[0] = filled(c, 1, 2, 1, 1, sv), s.srt[0] = filled(c, 1, 2, 1, 1, sv);
  s.sct[0]->requires_grad = s.srt[0]->requires_grad = 1;
  KdDistillPgdIn pi = {0};
  const float one = 1, half = 0.5f, nil = 0;
  pi.cls[0] = filled(c, 1, 1, 1, 1, &one), pi.reg[0] = filled(c, 1, 1, 1, 1, &half), pi.bg[0] = filled(c, 1, 1, 1, 1, &nil);
  KdDistillOut out;
  const int stride = 16;
  KdTensor *loss = run(&p, c, &s, &stride, NULL, &pi, &out);
  CHECK(loss && out.nparts == 5);
  CHECK_NEAR(part(&out, "fg"), 0.08 * 1.25 * a * a, 1e-6);
  CHECK(part(&out, "bg") == 0.0);
  CHECK_NEAR(part(&out, "cls_att"), 8e-4 * 1.0, 1e-8);
  CHECK_NEAR(part(&out, "reg"), 0.128 * 0.5 * 0.5 * a * a, 1e-6);
  CHECK_NEAR(part(&out, "reg_att"), 8e-4 * 1.0, 1e-8);
  double sum = 0;
  for (int i = 0; i < out.nparts; i++) sum += out.parts[i].value->data[0];
  CHECK_NEAR(loss->data[0], sum, 1e-7);
  CHECK(out.nmasks == 3 && !strcmp(out.masks[0].name, "pgd.cls") && !strcmp(out.masks[2].name, "pgd.bg"));
  CHECK(kd_backward(c, loss) == 0);
  /* d fg / d S_0 = 2 alpha lw a (attention constants) plus the attention
   * terms' share; the second channel: only theirs. Check the sign. */
  CHECK(s.sct[0]->grad[0] > 0);
  inst_set(&p, "pgd.lw_step", "0");
  loss = run(&p, c, &s, &stride, NULL, &pi, &out);
  CHECK_NEAR(part(&out, "fg"), 0.08 * a * a, 1e-6);
  /* pgd.tower=last reads "cls_tower"/"reg_tower": the same numbers from those. */
  inst_set(&p, "pgd.tower", "last");
  loss = run(&p, c, &s, &stride, NULL, &pi, &out);
  CHECK_NEAR(part(&out, "fg"), 0.08 * a * a, 1e-6);
  inst_set(&p, "pgd.tower", "first");
  kd_ctx_free(c);
  inst_free(&p);
}

/* Two images, C = 1, a 1 x 2 map, |towers| 1 everywhere (attention 1):
 * student (-1, 1) and (1, -1) against teacher 1: d^2 (4, 0) and (0, 4).
 * cls masks (1, 0) and (1, 1) -> normalised (1, 0), (1/2, 1/2); bg masks
 * (0, 1) and (0, 1). Per image: fg = (4 + 2) / 2 = 3, bg = (0 + 4) / 2 = 2.
 * The official broadcast weights both images by the masks' sum (3/2, 1/2)
 * and (0, 2): fg = (6 + 2) / 2 = 4, bg = (0 + 8) / 2 = 4. The reg mask is
 * empty: its parts are 0. */
static void test_mixing(void) {
  Inst p;
  inst_init(&p);
  inst_set(&p, "pgd.alpha", "1"), inst_set(&p, "pgd.beta", "1");
  KdCtx *c = kd_ctx_new(1 << 20);
  PgdScene s = {.nlev = 1, .n = 2};
  const float t[4] = {1, 1, 1, 1}, sv[4] = {-1, 1, 1, -1};
  s.tct[0] = filled(c, 2, 1, 1, 2, t), s.trt[0] = filled(c, 2, 1, 1, 2, t);
  s.sct[0] = filled(c, 2, 1, 1, 2, sv), s.srt[0] = filled(c, 2, 1, 1, 2, sv);
  s.sct[0]->requires_grad = s.srt[0]->requires_grad = 1;
  KdDistillPgdIn pi = {0};
  const float mc[4] = {1, 0, 1, 1}, mb[4] = {0, 1, 0, 1}, mr[4] = {0, 0, 0, 0};
  pi.cls[0] = filled(c, 2, 1, 1, 2, mc), pi.bg[0] = filled(c, 2, 1, 1, 2, mb), pi.reg[0] = filled(c, 2, 1, 1, 2, mr);
  KdDistillOut out;
  const int stride = 8;
  KdTensor *loss = run(&p, c, &s, &stride, NULL, &pi, &out);
  CHECK(loss);
  CHECK_NEAR(part(&out, "fg"), 3.0, 1e-6);
  CHECK_NEAR(part(&out, "bg"), 2.0, 1e-6);
  CHECK_NEAR(part(&out, "cls_att"), 0.0, 1e-7);
  CHECK(part(&out, "reg") == 0.0 && part(&out, "reg_att") == 0.0);
  CHECK(kd_backward(c, loss) == 0);
  inst_set(&p, "pgd.mix", "official");
  loss = run(&p, c, &s, &stride, NULL, &pi, &out);
  CHECK_NEAR(part(&out, "fg"), 4.0, 1e-6);
  CHECK_NEAR(part(&out, "bg"), 4.0, 1e-6);
  /* Refusals (each a failing step: its own context): no towers on the student; towers of two widths. */
  PgdScene bad = s;
  bad.sct[0] = NULL;
  KdCtx *c2 = kd_ctx_new(1 << 20);
  CHECK(!run(&p, c2, &bad, &stride, NULL, &pi, &out) && strstr(kd_ctx_error(c2), "pgd: level P3: needs the cls") &&
        strstr(kd_ctx_error(c2), "cls_tower0"));
  kd_ctx_free(c2);
  c2 = kd_ctx_new(1 << 20);
  bad = s;
  bad.srt[0] = kd_tensor4(c, 2, 3, 1, 2);
  CHECK(!run(&p, c2, &bad, &stride, NULL, &pi, &out) && strstr(kd_ctx_error(c2), "of one shape"));
  kd_ctx_free(c2);
  kd_ctx_free(c);
  inst_free(&p);
}

/* The towers run in the blocked layout in training: the same loss as plain. */
static void test_blocked(void) {
  Inst p;
  inst_init(&p);
  KdCtx *c = kd_ctx_new(1 << 22);
  KdRng r;
  kd_rng_seed(&r, 8, 1);
  PgdScene s = {.nlev = 1, .n = 2};
  KdTensor **all[4] = {s.tct, s.sct, s.trt, s.srt};
  for (int k = 0; k < 4; k++) {
    all[k][0] = kd_tensor4(c, 2, 16, 2, 3);
    for (size_t i = 0; i < all[k][0]->numel; i++) all[k][0]->data[i] = kd_rng_normal(&r);
  }
  KdDistillPgdIn pi = {0};
  const float mc[12] = {0, .5f, 1, 0, .2f, 0, 1, 1, 0, 0, 0, .3f}, mb[12] = {1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0};
  pi.cls[0] = filled(c, 2, 1, 2, 3, mc), pi.reg[0] = filled(c, 2, 1, 2, 3, mc), pi.bg[0] = filled(c, 2, 1, 2, 3, mb);
  KdDistillOut out;
  const int stride = 8;
  KdTensor *plain = run(&p, c, &s, &stride, NULL, &pi, &out);
  PgdScene b = s;
  KdTensor **ball[4] = {b.tct, b.sct, b.trt, b.srt};
  for (int k = 0; k < 4; k++) ball[k][0] = kd_to_blocked(c, all[k][0]);
  CHECK(b.tct[0] && b.tct[0]->blocked);
  KdTensor *blk = run(&p, c, &b, &stride, NULL, &pi, &out);
  CHECK(plain && blk && plain->data[0] > 0);
  CHECK_NEAR(blk->data[0], plain->data[0], 1e-6 * plain->data[0]);
  kd_ctx_free(c);
  inst_free(&p);
}

/* ---- gradient checks: two levels, N = 2, C = 3, masks from a random teacher ---- */
static struct {
  Inst *p;
  PgdScene s;
  KdGtImage gt[2];
  KdDistillPgdIn pi;
} gs;
static const int gs_strides[2] = {8, 16};

static KdTensor *fwd(KdCtx *c, KdTensor **x, void *u) {
  (void)u;
  PgdScene s = gs.s;
  s.sct[0] = x[0], s.sct[1] = x[1], s.srt[0] = x[2], s.srt[1] = x[3];
  KdDistillOut out;
  return run(gs.p, c, &s, gs_strides, gs.gt, &gs.pi, &out);
}

static int grad_check(const char *mix) {
  Inst p;
  inst_init(&p);
  inst_set(&p, "pgd.mix", mix);
  inst_set(&p, "pgd.alpha", "1"), inst_set(&p, "pgd.beta", "0.5"), inst_set(&p, "pgd.gamma", "1");
  inst_set(&p, "pgd.delta", "0.5"), inst_set(&p, "pgd.topk", "5");
  KdCtx *c = kd_ctx_new(1 << 22);
  KdRng r;
  kd_rng_seed(&r, 3, 7);
  gs.p = &p;
  memset(&gs.s, 0, sizeof gs.s);
  gs.s.nlev = 2, gs.s.n = 2;
  for (int l = 0; l < 2; l++) {
    int h = 4 >> l, w = 5 >> l;
    gs.s.tc[l] = kd_tensor4(c, 2, 2, h, w), gs.s.td[l] = kd_tensor4(c, 2, 16, h, w);
    gs.s.tct[l] = kd_tensor4(c, 2, 3, h, w), gs.s.trt[l] = kd_tensor4(c, 2, 3, h, w);
    KdTensor *all[4] = {gs.s.tc[l], gs.s.td[l], gs.s.tct[l], gs.s.trt[l]};
    for (int k = 0; k < 4; k++)
      for (size_t i = 0; i < all[k]->numel; i++) all[k]->data[i] = 1.5f * kd_rng_normal(&r);
  }
  static const float boxes[2][8] = {{2, 3, 30, 25, 10, 1, 38, 20}, {0, 0, 20, 31, 0, 0, 0, 0}};
  static const int labels[2][2] = {{0, 1}, {1, 0}};
  gs.gt[0] = (KdGtImage){boxes[0], labels[0], NULL, 2};
  gs.gt[1] = (KdGtImage){boxes[1], labels[1], NULL, 1};
  /* The masks once, then given: constants of every forward. */
  static float u[2 * 3 * 2 * 5];
  for (int i = 0; i < (int)(sizeof u / sizeof u[0]); i++) u[i] = kd_rng_uniform(&r);
  KdDistillPgdIn draws = {.jitter = u};
  KdDistillInputs in = {.c = c, .cfg = p.cfg, .n = 2, .gt = gs.gt, .pgd_in = &draws};
  side_out(&in.t, "cls", gs.s.tc, 2), side_out(&in.t, "dist", gs.s.td, 2);
  kd_levels_from_strides(&levels, 2, gs_strides);
  kd_distill_same_levels(&in, &levels);
  memset(&gs.pi, 0, sizeof gs.pi);
  CHECK(kd_pgd_masks(&in, "pgd", 0.8f, 0.6f, 5, gs.pi.cls, gs.pi.reg, gs.pi.bg) == 0);
  double nz = 0;
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < gs.pi.reg[l]->numel; i++) nz += gs.pi.reg[l]->data[i] != 0.0f;
  CHECK_MSG(nz >= 3, "only %g reg-mask cells", nz);
  char name[64];
  snprintf(name, sizeof name, "pgd/towers (%s)", mix);
  Gc *g = gc_new(name, fwd, NULL);
  for (int j = 0; j < 2; j++)
    for (int l = 0; l < 2; l++) gc_input(g, GC_CHECK | GC_AWAY_ZERO, 4, (int[]){2, 3, 4 >> l, 5 >> l});
  int fails = gc_run(g);
  kd_ctx_free(c);
  inst_free(&p);
  return fails;
}

/* ---- FitNet with the masks as pieces ---- */

static void fitnet_identity(Fix *f, int C) {
  KdTensor *w = kd_params_find(f->store, "distill.fitnet.adapt.0.weight"), *b = kd_params_find(f->store, "distill.fitnet.adapt.0.bias");
  kd_tensor_fill(w, 0.0f), kd_tensor_fill(b, 0.0f);
  for (int i = 0; i < C; i++) w->data[i * C + i] = 1.0f;
}

static double fitnet_loss(Fix *f, KdCtx *c, KdTensor *tf, KdTensor *sf, KdTensor *tc, KdTensor *td, const KdGtImage *gt,
                          const KdDistillPgdIn *pi, KdDistillOut *out) {
  KdDistillInputs in = {.c = c, .cfg = f->cfg, .n = tf->shape[0], .gt = gt, .maps = 1, .pgd_in = pi};
  in.t.feat[0] = tf, in.s.feat[0] = sf;
  if (tc) side_out(&in.t, "cls", &tc, 1), side_out(&in.t, "dist", &td, 1);
  int stride = 8;
  kd_levels_from_strides(&levels, 1, &stride);
  kd_distill_same_levels(&in, &levels);
  memset(out, 0, sizeof *out);
  return f->inst.m->loss(&f->inst, &in, out) ? NAN : out->loss->data[0];
}

static void test_fitnet_masks(void) {
  const KdMethod *fit = kd_method_find("fitnet");
  Fix f;
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = 2, .s_channels = 2, .num_classes = 1, .num_anchors = 1};
  CHECK(fit && fix_init(&f, fit, &sh, 1) == 0);
  fitnet_identity(&f, 2);
  KdCtx *c = kd_ctx_new(1 << 20);
  /* A 3 x 3 map (24 px), C = 2: teacher values, student 0. */
  KdTensor *tf = kd_tensor4(c, 1, 2, 3, 3), *sf = kd_tensor4(c, 1, 2, 3, 3);
  for (int i = 0; i < 18; i++) tf->data[i] = (float)(i % 7) - 2.5f;
  kd_tensor_fill(sf, 0.0f);
  double d2[9] = {0}, mean = 0;
  for (int i = 0; i < 18; i++) d2[i % 9] += tf->data[i] * tf->data[i], mean += tf->data[i] * tf->data[i] / 18.0;
  const int lab = 0;
  KdDistillOut out;
  struct {
    const char *mask;
    unsigned need;
  } needs[] = {{"none", 0}, {"frs", KD_NEED_LOGITS}, {"gt", KD_NEED_GT}, {"fgd-scale", KD_NEED_GT},
               {"pgd", KD_NEED_LOGITS | KD_NEED_DIST | KD_NEED_GT}};
  for (int i = 0; i < 5; i++) {
    CHECK(kd_config_set(f.cfg, "fitnet.mask", needs[i].mask, NULL) == 0);
    CHECK_MSG(fit->needs_now(f.cfg) == needs[i].need, "fitnet.mask=%s needs %#x", needs[i].mask, fit->needs_now(f.cfg));
  }
  /* gt: a box over the whole map is a constant mask: the plain mean. */
  CHECK(kd_config_set(f.cfg, "fitnet.mask", "gt", NULL) == 0 && kd_method_read_params(&f.inst, f.cfg, NULL) == 0);
  const float whole[4] = {0, 0, 24, 24}, corner[4] = {0, 0, 8, 8};
  KdGtImage g = {whole, &lab, NULL, 1};
  CHECK_NEAR(fitnet_loss(&f, c, tf, sf, NULL, NULL, &g, NULL, &out), mean, 1e-5);
  CHECK(out.nmasks == 1 && !strcmp(out.masks[0].name, "fitnet.gt"));
  /* ... a box over cell (0,0) only: that cell's mean over channels. */
  g.boxes = corner;
  CHECK_NEAR(fitnet_loss(&f, c, tf, sf, NULL, NULL, &g, NULL, &out), d2[0] / 2.0, 1e-5);
  CHECK_NEAR(out.gaps[0].map->data[0], d2[0] / 2.0, 1e-5);
  /* fgd-scale: the whole map is 1/9 everywhere (constant: the mean); the
   * corner box covers cells 0..1 x 0..1 (ceil, both ends) at 1/4 each. */
  CHECK(kd_config_set(f.cfg, "fitnet.mask", "fgd-scale", NULL) == 0 && kd_method_read_params(&f.inst, f.cfg, NULL) == 0);
  g.boxes = whole;
  CHECK_NEAR(fitnet_loss(&f, c, tf, sf, NULL, NULL, &g, NULL, &out), mean, 1e-5);
  CHECK(out.nmasks == 1 && !strcmp(out.masks[0].name, "fitnet.fgd_scale"));
  g.boxes = corner;
  CHECK_NEAR(fitnet_loss(&f, c, tf, sf, NULL, NULL, &g, NULL, &out), (d2[0] + d2[1] + d2[3] + d2[4]) / 8.0, 1e-5);
  KdCtx *c2 = kd_ctx_new(1 << 20); /* a failing step: its own context */
  CHECK(isnan(fitnet_loss(&f, c2, tf, sf, NULL, NULL, NULL, NULL, &out)));
  CHECK(strstr(kd_ctx_error(c2), "fitnet.mask=fgd-scale needs the ground truth"));
  kd_ctx_free(c2);
  /* pgd: the mask pgdmask.c makes from the teacher (draws given), and the loss it weights. */
  CHECK(kd_config_set(f.cfg, "fitnet.mask", "pgd", NULL) == 0 && kd_config_set(f.cfg, "fitnet.pgd_topk", "4", NULL) == 0 &&
        kd_method_read_params(&f.inst, f.cfg, NULL) == 0);
  KdTensor *tc = kd_tensor4(c, 1, 1, 3, 3), *td = kd_tensor4(c, 1, 12, 3, 3);
  KdRng r;
  kd_rng_seed(&r, 4, 1);
  for (size_t i = 0; i < tc->numel; i++) tc->data[i] = 2.0f * kd_rng_normal(&r);
  for (size_t i = 0; i < td->numel; i++) td->data[i] = kd_rng_normal(&r);
  const float box[4] = {1, 1, 20, 17};
  KdGtImage gp = {box, &lab, NULL, 1};
  float u[8];
  for (int i = 0; i < 8; i++) u[i] = kd_rng_uniform(&r);
  KdDistillPgdIn pi = {.jitter = u};
  double got = fitnet_loss(&f, c, tf, sf, tc, td, &gp, &pi, &out);
  CHECK_MSG(isfinite(got), "fitnet.mask=pgd: %s", kd_ctx_error(c));
  KdPgdLevel lv = {8, tc, td};
  KdTensor *m;
  CHECK(kd_pgd_fg_masks(c, &lv, 1, 1, &gp, 0.8f, 4, u, &m) == 0);
  double num = 0, den = 0;
  for (int i = 0; i < 9; i++) num += m->data[i] * d2[i], den += 2.0 * m->data[i];
  CHECK(den > 0 && out.nmasks == 1 && !strcmp(out.masks[0].name, "fitnet.pgd"));
  for (int i = 0; i < 9; i++) CHECK(out.masks[0].map->data[i] == m->data[i]);
  CHECK_NEAR(got, num / den, 1e-5);
  kd_ctx_free(c);
  fix_free(&f);
}

int main(void) {
  pgd = kd_method_find("pgd");
  CHECK(pgd != NULL);
  if (!pgd) return check_status("test_pgd");
  test_weighting();
  test_terms();
  test_mixing();
  test_blocked();
  test_fitnet_masks();
  int f = grad_check("per-image") + grad_check("official");
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("test_pgd");
}
