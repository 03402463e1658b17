/* DeFeat (engine/distill/defeat.c):
 *   (default) a hand-computed case, a gradient check of the whole loss
 *             w.r.t. student features, class logits and the adapters, and
 *             input checks;
 *   --oracle  parts and gradients vs torch_defeat_oracle.py (float64, 1e-4);
 *   --bench   loss magnitudes at init and forward+backward time at the
 *             preset's size (batch 8, 64 channels, P3..P5, real targets). */
#include <math.h>
#include <string.h>
#include <omp.h>
#include <time.h>

#include "check.h"
#include "core/ops.h"
#include "detect/anchors.h"
#include "detect/targets.h"
#include "distill/masks.h"
#include "dump_defeat_fgd.h"
#include "gradcheck.h"

extern const KdMethod kd_method_defeat;

static double part(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nparts; i++)
    if (!strcmp(o->parts[i].name, name)) return o->parts[i].value->data[0];
  return NAN;
}

/* ---- hand case ----
 * One level 4x4 (stride 8), C = 2, adapter = identity (centre taps 1).
 * T = 1 everywhere; S = 0 except S(ch0,3,3) = 3. Box [0,0,16,16] -> mask rows
 * and cols 0..1 (4 cells). D = 1 except D(ch0,3,3) = 4.
 *   L_obj = 8 / max(1, 2*2*4) = 0.5;  L_bg = (23 + 4) / (2*2*12) = 0.5625.
 * Head: A = 1, K = 2, teacher logits 0 (q = 1/2, 1/2). Anchor 0 positive
 * with s = (ln 3, 0): KL = 0.5 ln(4/3) = 0.1438410; anchor 1 positive, s = 0:
 * KL 0 -> obj = 0.0719205 (T_obj 1). Anchor 2 negative, s = (0, ln 3) at
 * T_bg = 2: p = softmax(0, ln3/2), 4*KL = 0.1490091; anchor 3 negative, 0;
 * anchor 4 ignored (s = (ln 3, 0), must not count) -> bg = 0.0745046.
 * weight 0.5, alpha 4/16, beta 2/3:
 *   neck_obj 1.0, neck_bg 4.5, head_obj 0.0719205, head_bg 0.1117569. */
static void test_hand(void) {
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = 2, .s_channels = 2, .num_classes = 2, .num_anchors = 1};
  Fix f;
  if (fix_init(&f, &kd_method_defeat, &sh, 1)) {
    CHECK(0);
    return;
  }
  KdTensor *w = kd_params_find(f.store, "distill.defeat.neck_adapt.0.weight");
  KdTensor *b = kd_params_find(f.store, "distill.defeat.neck_adapt.0.bias");
  CHECK(w && b && w->numel == 36 && b->numel == 2);
  for (int i = 0; i < 36 && w; i++) w->data[i] = (i == 4 || i == 3 * 9 + 4) ? 1.0f : 0.0f;
  for (int i = 0; i < 2 && b; i++) b->data[i] = 0.0f;
  fix_set(&f, "defeat.weight", 0.5);
  fix_set(&f, "defeat.beta_obj", 2);
  fix_set(&f, "defeat.beta_bg", 3);
  fix_set(&f, "defeat.T_bg", 2);
  float s[32] = {0}, t[32], scls[32] = {0}, tcls[32] = {0};
  for (int i = 0; i < 32; i++) t[i] = 1.0f;
  s[15] = 3.0f;
  const float l3 = logf(3.0f);
  scls[0] = l3;          /* anchor 0 = (0,0), class 0 */
  scls[16 + 2] = l3;     /* anchor 2 = (0,2), class 1 */
  scls[4] = l3;          /* anchor 4 = (1,0), class 0: ignored */
  int tc[16];
  for (int i = 0; i < 16; i++) tc[i] = -2;
  tc[0] = 1, tc[1] = 0, tc[2] = -1, tc[3] = -1;
  const float box[4] = {0, 0, 16, 16};
  KdGtImage gt = {box, NULL, NULL, 1};
  KdCtx *c = kd_ctx_new(1 << 20);
  KdDistillInputs in = {.c = c, .cfg = f.cfg, .n = 1, .img_h = 32, .img_w = 32, .gt = &gt};
  KdLevels lv;
  kd_levels_from_strides(&lv, 1, (int[]){8});
  kd_distill_same_levels(&in, &lv);
  KdDenseAssign as = {.A = 1, .K = 2, .A_total = 16, .target_cls = tc};
  in.s.assign = &as;
  in.s.nout = in.t.nout = 1;
  in.s.out[0].name = in.t.out[0].name = "cls";
  in.s.feat[0] = kd_tensor_wrap(c, s, 4, (int[]){1, 2, 4, 4});
  in.t.feat[0] = kd_tensor_wrap(c, t, 4, (int[]){1, 2, 4, 4});
  in.s.out[0].lv[0] = kd_tensor_wrap(c, scls, 4, (int[]){1, 2, 4, 4});
  in.t.out[0].lv[0] = kd_tensor_wrap(c, tcls, 4, (int[]){1, 2, 4, 4});
  in.s.feat[0]->requires_grad = in.s.out[0].lv[0]->requires_grad = 1;
  KdDistillOut o;
  memset(&o, 0, sizeof o);
  CHECK(kd_method_defeat.loss(&f.inst, &in, &o) == 0);
  if (!o.loss) {
    fprintf(stderr, "%s\n", kd_ctx_error(c));
    goto out;
  }
  CHECK(o.nparts == 4);
  CHECK_NEAR(part(&o, "neck_obj"), 1.0, 1e-6);
  CHECK_NEAR(part(&o, "neck_bg"), 4.5, 1e-5);
  CHECK_NEAR(part(&o, "head_obj"), 0.0719205, 1e-6);
  CHECK_NEAR(part(&o, "head_bg"), 0.1117569, 1e-6);
  CHECK_NEAR(o.loss->data[0], 1.0 + 4.5 + 0.0719205 + 0.1117569, 1e-5);
  /* The mask is exposed for the probes. */
  CHECK(o.nmasks == 1 && !strcmp(o.masks[0].name, "defeat.fg") && o.masks[0].level == 0);
  if (o.nmasks == 1) {
    double ms = 0;
    for (int i = 0; i < 16; i++) ms += o.masks[0].map->data[i];
    CHECK(ms == 4.0 && o.masks[0].map->data[5] == 1.0f && o.masks[0].map->data[2] == 0.0f);
  }
  /* Gradients by hand: d neck_bg / dS(ch0,3,3) = 0.5*16 * 2*(3-1)/48 = 2/3;
   * dS(ch1,0,0) inside the box: 0.5*4 * 2*(0-1)/16 = -0.25. */
  CHECK(kd_backward(c, o.loss) == 0);
  CHECK_NEAR(in.s.feat[0]->grad[15], 2.0 / 3.0, 1e-6);
  CHECK_NEAR(in.s.feat[0]->grad[16], -0.25, 1e-6);
  /* The ignored anchor gets no gradient. */
  CHECK(in.s.out[0].lv[0]->grad[4] == 0.0f && in.s.out[0].lv[0]->grad[16 + 4] == 0.0f);

  /* Head off: beta 0 needs no logits or targets and yields zero parts. */
  fix_set(&f, "defeat.beta_obj", 0);
  fix_set(&f, "defeat.beta_bg", 0);
  kd_ctx_reset(c);
  in.s.feat[0] = kd_tensor_wrap(c, s, 4, (int[]){1, 2, 4, 4});
  in.t.feat[0] = kd_tensor_wrap(c, t, 4, (int[]){1, 2, 4, 4});
  in.s.out[0].lv[0] = in.t.out[0].lv[0] = NULL;
  in.s.assign = NULL;
  memset(&o, 0, sizeof o);
  CHECK(kd_method_defeat.loss(&f.inst, &in, &o) == 0);
  CHECK(o.loss && part(&o, "head_obj") == 0.0 && fabs(part(&o, "neck_bg") - 4.5) < 1e-5);
  /* Head on without targets: an error that says how to turn it off. */
  fix_set(&f, "defeat.beta_bg", 1);
  kd_ctx_reset(c);
  in.s.feat[0] = kd_tensor_wrap(c, s, 4, (int[]){1, 2, 4, 4});
  in.t.feat[0] = kd_tensor_wrap(c, t, 4, (int[]){1, 2, 4, 4});
  memset(&o, 0, sizeof o);
  CHECK(kd_method_defeat.loss(&f.inst, &in, &o) == -1 && strstr(kd_ctx_error(c), "beta_obj"));
  kd_ctx_clear_error(c);
  /* Mismatched teacher width is a ctx error naming both shapes. */
  kd_ctx_reset(c);
  in.s.feat[0] = kd_tensor_wrap(c, s, 4, (int[]){1, 2, 4, 4});
  in.t.feat[0] = kd_tensor_wrap(c, t, 4, (int[]){1, 2, 2, 8});
  memset(&o, 0, sizeof o);
  CHECK(kd_method_defeat.loss(&f.inst, &in, &o) == -1 && strstr(kd_ctx_error(c), "teacher"));
  kd_ctx_clear_error(c);
out:
  kd_ctx_free(c);
  fix_free(&f);
}

/* ---- gradient check ---- */
typedef struct {
  Scene *s;
  Fix *f;
  DumpBind bind[64];
  int nb;
} GcUser;

/* inputs: 0 student features (packed), 1 student logits (packed), 2 every
 * learnable parameter (packed in store order). */
static KdTensor *fwd_defeat(KdCtx *c, KdTensor **x, void *u) {
  GcUser *g = u;
  Scene *s = g->s;
  KdDistillInputs in;
  scene_inputs(s, c, g->f->cfg, &in, NULL, NULL, 0);
  for (int l = 0; l < s->nlev; l++) {
    int h = s->hw[l];
    in.s.feat[l] = kd_reshape(c, kd_slice(c, x[0], 0, (int)s->off_sf[l], (int)(s->off_sf[l + 1] - s->off_sf[l])), 4,
                              (int[]){s->n, s->cs, h, h});
    in.s.out[0].lv[l] = kd_reshape(c, kd_slice(c, x[1], 0, (int)s->off_cls[l], (int)(s->off_cls[l + 1] - s->off_cls[l])), 4,
                             (int[]){s->n, s->A * s->K, h, h});
  }
  size_t off = 0;
  for (int i = 0; i < kd_params_count(g->f->store); i++) {
    KdTensor *p = kd_params_at(g->f->store, i);
    dump_bind(&g->bind[i], p, x[2]->data + off, x[2]->grad ? x[2]->grad + off : NULL, x[2]->requires_grad);
    off += p->numel;
  }
  g->nb = kd_params_count(g->f->store);
  KdDistillOut o;
  memset(&o, 0, sizeof o);
  if (g->f->inst.m->loss(&g->f->inst, &in, &o)) return NULL;
  return o.loss;
}

static void test_gradcheck(void) {
  Scene s;
  scene_new(&s, 7, 2, 32, 3, 3, 4, 2, 3, 1.0f);
  /* fs 4: scale < 8 -> P3, [8,16) -> P4, >= 16 -> P5; one box per level. */
  const float b0[] = {2, 2, 6, 7, 4, 4, 20, 18, 0, 8, 30, 31}, b1[] = {10, 3, 14, 20};
  memcpy(s.boxes[0], b0, sizeof b0);
  memcpy(s.boxes[1], b1, sizeof b1);
  s.gt[0].n = 3, s.gt[1].n = 1;
  KdDistillShapes sh = {.nlev = 3, .strides = {8, 16, 32}, .t_channels = 4, .s_channels = 3};
  Fix f;
  if (fix_init(&f, &kd_method_defeat, &sh, 3)) {
    CHECK(0);
    return;
  }
  fix_set(&f, "defeat.weight", 0.8);
  fix_set(&f, "defeat.alpha_obj", 1);
  fix_set(&f, "defeat.alpha_bg", 2);
  fix_set(&f, "defeat.beta_obj", 1.5);
  fix_set(&f, "defeat.beta_bg", 0.7);
  fix_set(&f, "defeat.T_obj", 2);
  fix_set(&f, "defeat.T_bg", 0.5);
  fix_set(&f, "defeat.finest_scale", 4);
  GcUser u = {.s = &s, .f = &f};
  Gc *g = gc_new("defeat/loss", fwd_defeat, &u);
  float *sf = gc_input(g, GC_CHECK, 1, (int[]){(int)s.off_sf[3]});
  float *sc = gc_input(g, GC_CHECK, 1, (int[]){(int)s.off_cls[3]});
  int np = (int)kd_params_numel(f.store);
  float *pp = gc_input(g, GC_CHECK | GC_PARAM, 1, &np);
  memcpy(sf, s.s_feat, s.off_sf[3] * sizeof(float));
  memcpy(sc, s.s_cls, s.off_cls[3] * sizeof(float));
  /* Adapter weights of order 0.3 (the 1e-4 init would hide the weight
   * gradient's dependence on the student). */
  KdRng r;
  kd_rng_seed(&r, 9, 9);
  for (int i = 0; i < np; i++) pp[i] = 0.3f * kd_rng_normal(&r);
  check_failures += gc_run(g);
  for (int i = 0; i < u.nb; i++) dump_unbind(&u.bind[i]);
  fix_free(&f);
  scene_free(&s);
}

static void test_init(void) {
  /* Adapter init: |w| < 2e-4 (fmod(N,2)*1e-4), nonzero; bias within 1/sqrt(9*Cin). */
  KdDistillShapes sh = {.nlev = 3, .strides = {8, 16, 32}, .t_channels = 64, .s_channels = 32};
  Fix f;
  if (fix_init(&f, &kd_method_defeat, &sh, 5)) {
    CHECK(0);
    return;
  }
  KdTensor *w = kd_params_find(f.store, "distill.defeat.neck_adapt.2.weight");
  KdTensor *b = kd_params_find(f.store, "distill.defeat.neck_adapt.2.bias");
  CHECK(w && b && w->shape[0] == 64 && w->shape[1] == 32 && w->shape[2] == 3 && b->numel == 64);
  double wmax = 0, wss = 0, bmax = 0;
  for (size_t i = 0; i < w->numel; i++) wmax = fmax(wmax, fabs(w->data[i])), wss += w->data[i] * w->data[i];
  for (size_t i = 0; i < b->numel; i++) bmax = fmax(bmax, fabs(b->data[i]));
  double wstd = sqrt(wss / (double)w->numel);
  CHECK(wmax < 2e-4 && wstd > 0.8e-4 && wstd < 1.0e-4); /* N(0,1) wrapped at +-2: std ~0.88e-4 */
  CHECK(bmax <= 1.0 / sqrt(32 * 9) && bmax > 0.5 / sqrt(32 * 9));
  CHECK(kd_params_count(f.store) == 6);
  fix_free(&f);
}

/* ---- oracle ---- */
static int run_oracle(void) {
  Scene s;
  scene_new(&s, 11, 2, 128, 3, 12, 16, 3, 4, 1.0f);
  KdDistillShapes sh = {.nlev = 3, .strides = {8, 16, 32}, .t_channels = 16, .s_channels = 12};
  Fix f;
  if (fix_init(&f, &kd_method_defeat, &sh, 13)) return 1;
  const char *keys[] = {"defeat.weight", "defeat.alpha_obj", "defeat.alpha_bg", "defeat.beta_obj",
                        "defeat.beta_bg", "defeat.T_obj", "defeat.T_bg", "defeat.finest_scale"};
  const double vals[] = {0.9, 4, 16, 1.3, 0.6, 2.0, 0.7, 11};
  for (int i = 0; i < 8; i++) fix_set(&f, keys[i], vals[i]);
  KdRng r;
  kd_rng_seed(&r, 17, 1);
  for (int i = 0; i < kd_params_count(f.store); i++) {
    KdTensor *p = kd_params_at(f.store, i);
    for (size_t j = 0; j < p->numel; j++) p->data[j] = 0.1f * kd_rng_normal(&r);
  }
  KdCtx *c = kd_ctx_new(16u << 20);
  KdDistillInputs in;
  scene_inputs(&s, c, f.cfg, &in, NULL, NULL, 1);
  KdDistillOut o;
  memset(&o, 0, sizeof o);
  if (kd_method_defeat.loss(&f.inst, &in, &o) || kd_backward(c, o.loss)) {
    fprintf(stderr, "defeat: %s\n", kd_ctx_error(c));
    return 1;
  }
  Dump d = {0};
  char nm[64];
  for (int i = 0; i < 8; i++) dump_scalar(&d, keys[i], (float)vals[i]);
  dump_scalar(&d, "n", (float)s.n);
  dump_scalar(&d, "A", (float)s.A);
  dump_scalar(&d, "K", (float)s.K);
  for (int l = 0; l < s.nlev; l++) {
    snprintf(nm, sizeof nm, "stride.%d", l), dump_scalar(&d, nm, (float)s.strides[l]);
    snprintf(nm, sizeof nm, "s_feat.%d", l), dump_tensor(&d, nm, in.s.feat[l]);
    snprintf(nm, sizeof nm, "t_feat.%d", l), dump_tensor(&d, nm, in.t.feat[l]);
    snprintf(nm, sizeof nm, "s_cls.%d", l), dump_tensor(&d, nm, in.s.out[0].lv[l]);
    snprintf(nm, sizeof nm, "t_cls.%d", l), dump_tensor(&d, nm, in.t.out[0].lv[l]);
    snprintf(nm, sizeof nm, "grad.s_feat.%d", l), dump_add(&d, nm, in.s.feat[l]->grad, 4, in.s.feat[l]->shape);
    snprintf(nm, sizeof nm, "grad.s_cls.%d", l), dump_add(&d, nm, in.s.out[0].lv[l]->grad, 4, in.s.out[0].lv[l]->shape);
  }
  for (int i = 0; i < o.nmasks; i++) {
    snprintf(nm, sizeof nm, "mask.%d", o.masks[i].level);
    dump_tensor(&d, nm, o.masks[i].map);
  }
  for (int i = 0; i < kd_params_count(f.store); i++) {
    KdTensor *p = kd_params_at(f.store, i);
    dump_tensor(&d, p->name, p);
    snprintf(nm, sizeof nm, "grad.%s", p->name);
    dump_add(&d, nm, p->grad, p->ndim, p->shape);
  }
  for (int i = 0; i < o.nparts; i++) {
    snprintf(nm, sizeof nm, "part.%s", o.parts[i].name);
    dump_scalar(&d, nm, o.parts[i].value->data[0]);
  }
  float boxes[2][SC_MAXBOX * 4] = {{0}}, nbox[2];
  for (int n = 0; n < 2; n++) {
    memcpy(boxes[n], s.boxes[n], sizeof boxes[n]);
    nbox[n] = (float)s.gt[n].n;
  }
  dump_add(&d, "boxes", &boxes[0][0], 3, (int[]){2, SC_MAXBOX, 4});
  dump_add(&d, "nbox", nbox, 1, (int[]){2});
  float *tc = malloc((size_t)s.n * s.A_total * sizeof *tc);
  for (int i = 0; i < s.n * s.A_total; i++) tc[i] = (float)s.tcls[i];
  dump_add(&d, "target_cls", tc, 2, (int[]){s.n, s.A_total});
  free(tc);
  char path[256];
  int rc = 1;
  if (!dump_tmp_path(path, sizeof path, "kd_defeat") && !dump_write(&d, path)) {
    rc = dump_run_oracle("torch_defeat_oracle.py", path);
    unlink(path);
  }
  dump_free(&d);
  kd_ctx_free(c);
  fix_free(&f);
  scene_free(&s);
  return rc;
}

/* ---- magnitudes and time at the preset's size ---- */
static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_bench(void) {
  Scene s;
  scene_new(&s, 23, 8, 128, 3, 64, 64, 9, 10, 1.0f);
  /* Real anchors and RetinaNet targets for the random boxes. */
  KdAnchorCfg acfg;
  kd_anchor_cfg_default(&acfg);
  int hw[6] = {16, 16, 8, 8, 4, 4};
  float *anchors = malloc((size_t)s.A_total * 4 * sizeof(float));
  float *deltas = malloc((size_t)s.n * s.A_total * 4 * sizeof(float));
  int labels[8][SC_MAXBOX] = {{0}}, npos = 0;
  for (int n = 0; n < 8; n++) s.gt[n].labels = labels[n];
  KdAssignCfg as;
  kd_assign_cfg_default(&as);
  KdBoxCoder bc = kd_box_coder_default();
  KdError err;
  if (kd_anchors_generate(&acfg, hw, anchors, NULL, &err) ||
      kd_build_targets(&as, &bc, anchors, s.A_total, s.gt, s.n, s.K, s.tcls, deltas, NULL, NULL, &npos, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  KdDistillShapes sh = {.nlev = 3, .strides = {8, 16, 32}, .t_channels = 64, .s_channels = 64};
  Fix f;
  if (fix_init(&f, &kd_method_defeat, &sh, 1)) return 1;
  fix_set(&f, "defeat.finest_scale", 11);
  KdCtx *c = kd_ctx_new(64u << 20);
  int cnt[3] = {0};
  for (int n = 0; n < 8; n++)
    for (int j = 0; j < s.gt[n].n; j++) cnt[kd_defeat_level(s.gt[n].boxes + 4 * j, 11, 3)]++;
  printf("defeat at init (batch 8, 64 ch, P3-P5, N(0,1) features, logits N(-2,1.5), %d positive anchors; "
         "boxes per level %d/%d/%d):\n", npos, cnt[0], cnt[1], cnt[2]);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) fix_set(&f, "defeat.beta_obj", 0), fix_set(&f, "defeat.beta_bg", 0);
    double best = 1e9, sum = 0, cpu = 1e9;
    int reps = 20;
    KdDistillOut o;
    for (int it = 0; it < reps + 3; it++) {
      kd_ctx_reset(c);
      kd_params_zero_grad(f.store);
      KdDistillInputs in;
      scene_inputs(&s, c, f.cfg, &in, NULL, NULL, 1);
      memset(&o, 0, sizeof o);
      double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
      if (kd_method_defeat.loss(&f.inst, &in, &o) || kd_backward(c, o.loss)) {
        fprintf(stderr, "%s\n", kd_ctx_error(c));
        return 1;
      }
      double dt = clock_s(CLOCK_MONOTONIC) - t0, dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
      if (it >= 3) sum += dt, best = fmin(best, dt), cpu = fmin(cpu, dc);
    }
    for (int i = 0; pass == 0 && i < o.nparts; i++) {
      printf("  %-9s %.4g\n", o.parts[i].name, o.parts[i].value->data[0]);
      CHECK(isfinite(o.parts[i].value->data[0]));
    }
    printf("  forward+backward%s: wall mean %.2f ms, best %.2f ms; cpu best %.2f ms (%d runs, %d threads)\n",
           pass ? " (neck only)" : "", 1e3 * sum / reps, 1e3 * best, 1e3 * cpu, reps, omp_get_max_threads());
  }
  kd_ctx_free(c);
  fix_free(&f);
  free(anchors), free(deltas);
  scene_free(&s);
  return check_status("distill_defeat_bench");
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return run_oracle();
  if (argc > 1 && !strcmp(argv[1], "--bench")) return run_bench();
  test_hand();
  test_init();
  test_gradcheck();
  return check_status("distill_defeat");
}
