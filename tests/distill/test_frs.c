/* FRS (engine/distill/frs.c): a hand case through an identity adapter
 * (mask = the teacher's max class probability, both terms over its sum),
 * the linear warm-up, the probability BCE's saturation (log clamp at -100,
 * no gradient), the richness mask recorded per level, refusal without
 * class logits, finite-difference checks w.r.t. the student's features,
 * logits and the adapters; FitNet with FRS's mask (fitnet.mask=frs) by
 * hand, with its loss maps; and, with --oracle, parity with frs_oracle.py
 * (PyTorch restatement of Distilling_FRS_Single's loss; 77 without torch). */
#include <math.h>
#include <string.h>

#include "../detect/oracle.h"
#include "check.h"
#include "core/rng.h"
#include "distill/method.h"
#include "distill/side.h"
#include "dump_defeat_fgd.h"
#include "gradcheck.h"

static const KdMethod *frs;
static KdLevels levels;

static KdTensor *run(Fix *f, KdCtx *c, int nlev, int step, KdTensor **tf, KdTensor **sf, KdTensor **tc, KdTensor **sc,
                     KdDistillOut *out) {
  KdDistillInputs in = {.c = c, .cfg = f->cfg, .n = tf[0]->shape[0], .step = step};
  in.s.nout = in.t.nout = 1;
  in.s.out[0].name = in.t.out[0].name = "cls";
  int strides[KD_MAX_LEVELS];
  for (int l = 0; l < nlev; l++) {
    strides[l] = 8 << l;
    in.t.feat[l] = tf[l], in.s.feat[l] = sf[l];
    in.t.out[0].lv[l] = tc[l], in.s.out[0].lv[l] = sc ? sc[l] : NULL;
  }
  kd_levels_from_strides(&levels, nlev, strides);
  kd_distill_same_levels(&in, &levels);
  memset(out, 0, sizeof *out);
  return frs->loss(&f->inst, &in, out) ? NULL : out->loss;
}

static double part(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nparts; i++)
    if (!strcmp(o->parts[i].name, name)) return o->parts[i].value->data[0];
  return NAN;
}

/* The adapter of level l as the identity (1 -> 1 channel, centre tap 1). */
static void identity_adapter(Fix *f, int l) {
  char name[64];
  snprintf(name, sizeof name, "distill.frs.adap.%d.weight", l);
  KdTensor *w = kd_params_find(f->store, name);
  snprintf(name, sizeof name, "distill.frs.adap.%d.bias", l);
  KdTensor *b = kd_params_find(f->store, name);
  kd_tensor_fill(w, 0.0f), kd_tensor_fill(b, 0.0f);
  w->data[4] = 1.0f;
}

static void test_hand(void) {
  Fix f;
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = 1, .s_channels = 1, .num_classes = 1, .num_anchors = 1};
  CHECK(fix_init(&f, frs, &sh, 1) == 0);
  identity_adapter(&f, 0);
  fix_set(&f, "frs.feat", 1), fix_set(&f, "frs.cls", 1), fix_set(&f, "frs.warm", 0);
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *tf = kd_tensor4(c, 1, 1, 1, 2), *sf = kd_tensor4(c, 1, 1, 1, 2), *tc = kd_tensor4(c, 1, 1, 1, 2),
           *sc = kd_tensor4(c, 1, 1, 1, 2);
  tf->data[0] = 1, tf->data[1] = 2, sf->data[0] = sf->data[1] = 0;
  tc->data[0] = 0, tc->data[1] = logf(3.0f); /* mask 1/2, 3/4: sum 5/4 */
  sc->data[0] = sc->data[1] = 0;             /* p = 1/2: BCE = ln 2 whatever q */
  sf->requires_grad = sc->requires_grad = 1;
  KdDistillOut out;
  KdTensor *loss = run(&f, c, 1, 0, &tf, &sf, &tc, &sc, &out);
  CHECK(loss && out.nparts == 2 && out.nmasks == 1 && !strcmp(out.masks[0].name, "frs.richness"));
  CHECK_NEAR(out.masks[0].map->data[1], 0.75, 1e-6);
  CHECK_NEAR(part(&out, "feat"), (0.5 * 1 + 0.75 * 4) / 1.25, 1e-5);
  CHECK_NEAR(part(&out, "cls"), log(2.0), 1e-6);
  CHECK(kd_backward(c, loss) == 0);
  /* d feat / d S = -2 m (T - S) / sum m; d cls / d s = m (p - q) / sum m */
  CHECK_NEAR(sf->grad[0], -2 * 0.5 * 1 / 1.25, 1e-5);
  CHECK_NEAR(sf->grad[1], -2 * 0.75 * 2 / 1.25, 1e-5);
  CHECK_NEAR(sc->grad[0], 0.5 * (0.5 - 0.5) / 1.25, 1e-6);
  CHECK_NEAR(sc->grad[1], 0.75 * (0.5 - 0.75) / 1.25, 1e-6);
  /* The warm-up: step 250 of 500 halves both; step 0 gives 0; 500 on, whole. */
  fix_set(&f, "frs.warm", 500);
  loss = run(&f, c, 1, 250, &tf, &sf, &tc, &sc, &out);
  CHECK_NEAR(loss->data[0], 0.5 * (2.8 + log(2.0)), 1e-5);
  CHECK(run(&f, c, 1, 0, &tf, &sf, &tc, &sc, &out)->data[0] == 0.0f);
  CHECK_NEAR(run(&f, c, 1, 900, &tf, &sf, &tc, &sc, &out)->data[0], 2.8 + log(2.0), 1e-5);
  fix_set(&f, "frs.warm", 0);
  /* Saturation: p = 1 in float: BCE = -(1 - q) * (-100) at the clamp, and no gradient. */
  sc->data[1] = 30.0f;
  kd_ctx_clear_step_grads(c);
  loss = run(&f, c, 1, 0, &tf, &sf, &tc, &sc, &out);
  CHECK_NEAR(part(&out, "cls"), (0.5 * log(2.0) + 0.75 * 0.25 * 100.0) / 1.25, 1e-4);
  CHECK(kd_backward(c, loss) == 0 && sc->grad[1] == 0.0f);
  /* No class logits on the student: refused. */
  CHECK(!run(&f, c, 1, 0, &tf, &sf, &tc, NULL, &out) && strstr(kd_ctx_error(c), "frs:"));
  kd_ctx_free(c);
  fix_free(&f);
}

/* FitNet with FRS's mask (fitnet.mask=frs): sum m (A(S) - T)^2 / (C sum m),
 * its mask recorded, its loss maps summing to the part, the need it adds. */
static void test_fitnet_mask(void) {
  const KdMethod *fit = kd_method_find("fitnet");
  Fix f;
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = 2, .s_channels = 2, .num_classes = 1, .num_anchors = 1};
  CHECK(fit && fix_init(&f, fit, &sh, 1) == 0);
  KdTensor *w = kd_params_find(f.store, "distill.fitnet.adapt.0.weight"), *b = kd_params_find(f.store, "distill.fitnet.adapt.0.bias");
  kd_tensor_fill(w, 0.0f), kd_tensor_fill(b, 0.0f);
  w->data[0] = w->data[3] = 1.0f; /* identity 1x1 */
  CHECK(kd_config_set(f.cfg, "fitnet.mask", "frs", NULL) == 0 && kd_method_read_params(&f.inst, f.cfg, NULL) == 0);
  CHECK(fit->needs_now && fit->needs_now(f.cfg) == KD_NEED_LOGITS);
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *tf = kd_tensor4(c, 1, 2, 1, 2), *sf = kd_tensor4(c, 1, 2, 1, 2), *tc = kd_tensor4(c, 1, 1, 1, 2);
  const float tv[4] = {1, 2, 3, -1}; /* channel-major: c0 (1, 2), c1 (3, -1) */
  memcpy(tf->data, tv, sizeof tv);
  kd_tensor_fill(sf, 0.0f);
  tc->data[0] = 0, tc->data[1] = logf(3.0f); /* m = (1/2, 3/4) */
  KdDistillInputs in = {.c = c, .cfg = f.cfg, .n = 1, .maps = 1};
  in.s.nout = in.t.nout = 1;
  in.s.out[0].name = in.t.out[0].name = "cls";
  in.t.feat[0] = tf, in.s.feat[0] = sf, in.t.out[0].lv[0] = tc, in.s.out[0].lv[0] = tc;
  int stride = 8;
  kd_levels_from_strides(&levels, 1, &stride);
  kd_distill_same_levels(&in, &levels);
  KdDistillOut out;
  memset(&out, 0, sizeof out);
  CHECK(fit->loss(&f.inst, &in, &out) == 0);
  double want = (0.5 * (1 + 9) + 0.75 * (4 + 1)) / (2 * 1.25);
  CHECK_NEAR(out.loss->data[0], want, 1e-5);
  CHECK(out.nmasks == 1 && !strcmp(out.masks[0].name, "fitnet.frs") && out.ngaps == 1);
  double gsum = out.gaps[0].map->data[0] + out.gaps[0].map->data[1];
  CHECK_NEAR(gsum, want, 1e-5);
  /* A constant mask gives the plain mean. */
  tc->data[1] = 0;
  memset(&out, 0, sizeof out);
  CHECK(fit->loss(&f.inst, &in, &out) == 0);
  CHECK_NEAR(out.loss->data[0], (1 + 4 + 9 + 1) / 4.0, 1e-5);
  kd_ctx_free(c);
  fix_free(&f);
}

/* ---- gradient checks: two levels, 3 -> 4 channels, K = 2 ---- */
typedef struct {
  Fix *f;
  KdTensor *tf[2], *tc[2];
  DumpBind bind[8];
} Gs;
static Gs gs;

/* in: sf0, sf1, sc0, sc1, then every adapter tensor as one flat input */
static KdTensor *fwd(KdCtx *c, KdTensor **x, void *u) {
  (void)u;
  size_t off = 0;
  for (int i = 0; i < kd_params_count(gs.f->store); i++) {
    KdTensor *p = kd_params_at(gs.f->store, i);
    dump_bind(&gs.bind[i], p, x[4]->data + off, x[4]->grad ? x[4]->grad + off : NULL, x[4]->requires_grad);
    off += p->numel;
  }
  KdDistillOut out;
  KdTensor *sf[2] = {x[0], x[1]}, *sc[2] = {x[2], x[3]};
  return run(gs.f, c, 2, 1000, gs.tf, sf, gs.tc, sc, &out);
}

static void scene(KdCtx *c, KdRng *r, KdTensor **tf, KdTensor **tc) {
  for (int l = 0; l < 2; l++) {
    int h = 4 >> l, w = 5 >> l;
    tf[l] = kd_tensor4(c, 2, 4, h, w), tc[l] = kd_tensor4(c, 2, 2, h, w);
    for (size_t i = 0; i < tf[l]->numel; i++) tf[l]->data[i] = kd_rng_normal(r);
    for (size_t i = 0; i < tc[l]->numel; i++) tc[l]->data[i] = 2.0f * kd_rng_normal(r);
  }
}

static int grad_check(void) {
  Fix f;
  KdDistillShapes sh = {.nlev = 2, .strides = {8, 16}, .t_channels = 4, .s_channels = 3, .num_classes = 2, .num_anchors = 1};
  CHECK(fix_init(&f, frs, &sh, 3) == 0);
  fix_set(&f, "frs.feat", 0.5), fix_set(&f, "frs.cls", 2);
  KdCtx *c = kd_ctx_new(1 << 22);
  KdRng r;
  kd_rng_seed(&r, 5, 2);
  gs.f = &f;
  scene(c, &r, gs.tf, gs.tc);
  Gc *g = gc_new("frs/features, logits, adapters", fwd, NULL);
  for (int l = 0; l < 2; l++) gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4 >> l, 5 >> l});
  for (int l = 0; l < 2; l++) gc_input(g, GC_CHECK, 4, (int[]){2, 2, 4 >> l, 5 >> l});
  size_t np = 0;
  for (int i = 0; i < kd_params_count(f.store); i++) np += kd_params_at(f.store, i)->numel;
  float *pv = gc_input(g, GC_CHECK | GC_PARAM, 1, (int[]){(int)np});
  size_t off = 0;
  for (int i = 0; i < kd_params_count(f.store); i++) {
    KdTensor *p = kd_params_at(f.store, i);
    memcpy(pv + off, p->data, p->numel * sizeof(float));
    off += p->numel;
  }
  int fails = gc_run(g);
  for (int i = 0; i < kd_params_count(f.store); i++) dump_unbind(&gs.bind[i]);
  kd_ctx_free(c);
  fix_free(&f);
  return fails;
}

/* ---- oracle ---- */
static int run_oracle(void) {
  Fix f;
  KdDistillShapes sh = {.nlev = 2, .strides = {8, 16}, .t_channels = 4, .s_channels = 3, .num_classes = 2, .num_anchors = 1};
  CHECK(fix_init(&f, frs, &sh, 7) == 0);
  KdCtx *c = kd_ctx_new(1 << 22);
  KdRng r;
  kd_rng_seed(&r, 9, 2);
  KdTensor *tf[2], *tc[2], *sf[2], *sc[2];
  scene(c, &r, tf, tc);
  for (int l = 0; l < 2; l++) {
    sf[l] = kd_tensor4(c, 2, 3, 4 >> l, 5 >> l), sc[l] = kd_tensor4(c, 2, 2, 4 >> l, 5 >> l);
    for (size_t i = 0; i < sf[l]->numel; i++) sf[l]->data[i] = kd_rng_normal(&r);
    for (size_t i = 0; i < sc[l]->numel; i++) sc[l]->data[i] = 2.0f * kd_rng_normal(&r);
    sf[l]->requires_grad = sc[l]->requires_grad = 1;
  }
  KdDistillOut out;
  const int step = 200; /* inside the warm-up: factor 0.4 */
  KdTensor *loss = run(&f, c, 2, step, tf, sf, tc, sc, &out);
  CHECK(loss && kd_backward(c, loss) == 0);
  Oracle o;
  CHECK(oracle_open(&o) == 0);
  float prm[4] = {0.005f, 0.02f, 500, (float)step};
  oracle_f(&o, "params", prm, 4);
  char name[32];
  for (int l = 0; l < 2; l++) {
    KdTensor *t[4] = {tf[l], sf[l], tc[l], sc[l]};
    const char *pre[4] = {"tf", "sf", "tc", "sc"};
    for (int j = 0; j < 4; j++) {
      snprintf(name, sizeof name, "%s%d", pre[j], l);
      oracle_f(&o, name, t[j]->data, t[j]->numel);
      snprintf(name, sizeof name, "%s%d_shape", pre[j], l);
      oracle_i(&o, name, t[j]->shape, 4);
    }
    for (int j = 0; j < 2; j++) {
      snprintf(name, sizeof name, "distill.frs.adap.%d.%s", l, j ? "bias" : "weight");
      KdTensor *p = kd_params_find(f.store, name);
      snprintf(name, sizeof name, "adap%d_%s", l, j ? "b" : "w");
      oracle_f(&o, name, p->data, p->numel);
    }
  }
  int rc = oracle_run(&o, "../distill/frs_oracle.py", "frs");
  if (rc == 77) {
    oracle_close(&o), kd_ctx_free(c), fix_free(&f);
    printf("frs oracle: skipped (no torch)\n");
    return 77;
  }
  CHECK_MSG(rc == 0, "frs_oracle.py exited %d", rc);
  const char *parts[2] = {"feat", "cls"};
  for (int i = 0; rc == 0 && i < 2; i++) {
    size_t n;
    const double *ref = oracle_get(&o, parts[i], &n);
    double mine = part(&out, parts[i]);
    CHECK_MSG(ref && fabs(mine - ref[0]) <= 1e-4 * fabs(ref[0]) + 1e-8, "%s: %.9g vs torch %.9g", parts[i], mine,
              ref ? ref[0] : NAN);
    printf("frs %s: %.8f (torch %.8f)\n", parts[i], mine, ref ? ref[0] : NAN);
  }
  for (int l = 0; rc == 0 && l < 2; l++) {
    KdTensor *t[4] = {sf[l], sc[l], NULL, NULL};
    char pn[2][48];
    snprintf(pn[0], sizeof pn[0], "distill.frs.adap.%d.weight", l);
    snprintf(pn[1], sizeof pn[1], "distill.frs.adap.%d.bias", l);
    t[2] = kd_params_find(f.store, pn[0]), t[3] = kd_params_find(f.store, pn[1]);
    const char *gname[4] = {"gsf", "gsc", "gw", "gb"};
    for (int j = 0; j < 4; j++) {
      snprintf(name, sizeof name, "%s%d", gname[j], l);
      size_t n;
      const double *ref = oracle_get(&o, name, &n);
      CHECK(ref && n == t[j]->numel && t[j]->grad);
      double scale = 1e-12;
      for (size_t e = 0; ref && e < n; e++) scale = fmax(scale, fabs(ref[e]));
      int bad = 0;
      for (size_t e = 0; ref && t[j]->grad && e < n; e++) bad += !(fabs(t[j]->grad[e] - ref[e]) <= 1e-4 * scale);
      CHECK_MSG(bad == 0, "%s: %d gradients differ", name, bad);
    }
  }
  oracle_close(&o);
  kd_ctx_free(c);
  fix_free(&f);
  return check_status("test_frs --oracle");
}

int main(int argc, char **argv) {
  frs = kd_method_find("frs");
  CHECK(frs != NULL);
  if (!frs) return check_status("test_frs");
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return run_oracle();
  test_hand();
  test_fitnet_mask();
  int f = grad_check();
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  return check_status("test_frs");
}
