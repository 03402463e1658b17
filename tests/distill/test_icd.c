/* ICD (KD-METHODS-2 §A): a hand case (parameters set so that the attention
 * is uniform and the predictor outputs 0: the real/fake BCE is ln 2, the
 * regression L1 is read off the jittered centre, the mimic counts the
 * positions where student and teacher order a head's two channels
 * oppositely), under both normalisers, and its loss map; the distillation delay (features
 * detached: no gradient to them, the value projection still learns); the
 * sampler (instance counts, the cap, real rows first, ranges, the size
 * bins); a shape it cannot take; finite-difference checks of the loss
 * w.r.t. the student's features. (PyTorch: icd_oracle.py.) */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "distill/icd_inst.h"
#include "distill/method.h"
#include "distill/side.h"
#include "gradcheck.h"

enum { N = 2, E = 16, HH = 2, WW = 2, IMG = 16, NCLS = 3 };

static KdConfig *cfg;
static KdLevels levels;

typedef struct {
  KdMethodInst inst;
  KdParams *store;
} Method;

static int method_open(Method *m, int ch_t, int ch_s) {
  memset(m, 0, sizeof *m);
  m->inst.m = kd_method_find("icd");
  m->store = kd_params_new();
  KdDistillShapes sh = {.nlev = 1, .strides = {8}, .t_channels = ch_t, .s_channels = ch_s, .num_classes = NCLS};
  KdError err;
  if (!m->inst.m || !m->store || m->inst.m->init(&m->inst, &sh, m->store, &err) || kd_params_finalize(m->store, &err))
    return -1;
  return kd_method_read_params(&m->inst, cfg, NULL);
}

static void method_close(Method *m) {
  kd_method_inst_release(&m->inst);
  kd_params_free(m->store);
}

static KdTensor *param(Method *m, const char *name) {
  char full[96];
  snprintf(full, sizeof full, "distill.icd.%s", name);
  return kd_params_find(m->store, full);
}

/* Instances: image 0 one real GT (0,0)-(8,8) of class 1, centre jittered to
 * (5, 3), and a fake; image 1 one fake and no GT. */
static const float gt_box[4] = {0, 0, 8, 8};
static const int gt_label[1] = {1};
static const float inst_rows[3 * KD_ICD_INST_COLS] = {0, 1, 1, 0, 0, 8, 8, 5, 3,  //
                                                       0, 0, 2, 4, 4, 12, 10, 8, 7, //
                                                       1, 0, 0, 2, 2, 6, 14, 4, 8};

static int maps;

static KdTensor *run(KdCtx *c, Method *m, KdTensor *t, KdTensor *s, double progress, KdDistillOut *out) {
  static KdGtImage gt[N] = {{.boxes = gt_box, .labels = gt_label, .n = 1}, {.n = 0}};
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = N, .img_h = IMG, .img_w = IMG, .gt = gt, .progress = progress, .maps = maps};
  in.t.channels = t->shape[1], in.s.channels = s->shape[1];
  in.t.feat[0] = t, in.s.feat[0] = s;
  in.icd_inst = inst_rows, in.icd_ninst = 3;
  int strides[1] = {8};
  kd_levels_from_strides(&levels, 1, strides);
  kd_distill_same_levels(&in, &levels);
  memset(out, 0, sizeof *out);
  if (kd_method_read_params(&m->inst, cfg, NULL) || m->inst.m->loss(&m->inst, &in, out)) return NULL;
  return out->loss;
}

static double part(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nparts; i++)
    if (!strcmp(o->parts[i].name, name)) return o->parts[i].value->data[0];
  return NAN;
}

static void set(const char *key, const char *v) { CHECK(kd_config_set(cfg, key, v, NULL) == 0); }

static void test_hand(void) {
  Method m;
  CHECK(method_open(&m, E, E) == 0);
  /* every parameter 0 (finalize) but the two value projections = identity */
  KdTensor *inw = param(&m, "decoder.attn.in_proj_weight"), *sv = param(&m, "student.value.weight");
  CHECK(inw && sv);
  if (!inw || !sv) return;
  for (int i = 0; i < E; i++) inw->data[(2 * E + i) * E + i] = 1.0f, sv->data[i * E + i] = 1.0f;
  KdCtx *c = kd_ctx_new(8 << 20);
  KdTensor *t = kd_tensor4(c, N, E, HH, WW), *s = kd_tensor4(c, N, E, HH, WW);
  /* head h = channels (2h, 2h+1): teacher (+1, -1) everywhere; student
   * (c+1, c-1) the same way round except at cell 0 of image 0. Image 1 has
   * no GT: its values do not matter. */
  for (int n = 0; n < N; n++)
    for (int ch = 0; ch < E; ch++)
      for (int p = 0; p < HH * WW; p++) {
        const size_t i = ((size_t)(n * E + ch) * HH * WW) + p;
        const float sign = ch % 2 ? -1.0f : 1.0f;
        t->data[i] = sign;
        s->data[i] = n == 1 ? (float)((ch * 7 + p * 3) % 5) : 0.25f * (float)ch + (p == 0 ? -sign : sign);
      }
  s->requires_grad = 1;
  const double r2 = 1.0 / (1.0 + 1e-5); /* LayerNorm of (a, a -+ 2): -+1/sqrt(1 + eps) */
  const double reg = (0.1875 + 0.3125 + 0.3125 + 0.1875) / 0.5; /* |0.5 - (5,3,3,5)/16| / (8/16) */
  set("icd.bypass", "0");
  KdDistillOut out;
  maps = 1;
  KdTensor *loss = run(c, &m, t, s, 0.0, &out);
  maps = 0;
  CHECK_MSG(loss != NULL, "%s", kd_ctx_error(c));
  if (!loss) return;
  CHECK(out.nparts == 3);
  /* per image: 1/(N H d) sum_h sum_d (1/L) sum_s diff^2 = 8 r2 (1/4) / (N d) */
  CHECK_NEAR(part(&out, "mimic"), 8.0 * 2.0 * r2 * 0.25, 1e-5);
  CHECK_NEAR(part(&out, "conf"), log(2.0), 1e-6);
  CHECK_NEAR(part(&out, "reg"), reg, 1e-6);
  CHECK_NEAR(loss->data[0], part(&out, "mimic") + part(&out, "conf") + part(&out, "reg"), 1e-5);
  CHECK(out.nmasks == 1 && !strcmp(out.masks[0].name, "icd.attn"));
  if (out.nmasks == 1) { /* uniform attention of the one real query: 1/L; image 1 none */
    CHECK_NEAR(out.masks[0].map->data[0], 0.25, 1e-6);
    CHECK(out.masks[0].map->data[HH * WW] == 0.0f);
  }
  /* the loss map: at cell 0 of image 0 all of the mimic, 0 elsewhere */
  CHECK(out.ngaps == 1);
  if (out.ngaps == 1) {
    const float *g = out.gaps[0].map->data;
    CHECK_NEAR(g[0], part(&out, "mimic"), 1e-5);
    double rest = 0;
    for (int i = 1; i < N * HH * WW; i++) rest += fabs(g[i]);
    CHECK(rest < 1e-5);
  }
  CHECK(kd_backward(c, loss) == 0);
  double g1 = 0, g0 = 0;
  for (int i = 0; i < E * HH * WW; i++) g0 += fabs(s->grad[i]), g1 += fabs(s->grad[E * HH * WW + i]);
  CHECK(g0 > 0 && g1 == 0.0); /* an image without GT gets no gradient */

  /* the MegEngine normaliser: one weighted mean over the batch: r2 */
  set("icd.norm", "pooled");
  loss = run(c, &m, t, s, 0.0, &out);
  if (loss) CHECK_NEAR(part(&out, "mimic"), 8.0 * r2, 1e-5);
  set("icd.norm", "per_image");

  /* the delay: progress < bypass detaches the features; the student's value projection still learns */
  set("icd.bypass", "0.5");
  kd_params_zero_grad(m.store);
  KdTensor *s2 = kd_tensor_copy(c, s);
  s2->requires_grad = 1;
  loss = run(c, &m, t, s2, 0.25, &out);
  CHECK(loss && kd_backward(c, loss) == 0);
  double gs = 0, gv = 0;
  for (size_t i = 0; s2->grad && i < s2->numel; i++) gs += fabs(s2->grad[i]);
  for (size_t i = 0; i < sv->numel; i++) gv += fabs(sv->grad[i]);
  CHECK_MSG(gs == 0.0 && gv > 0, "detached: |grad S| %g, |grad W_v| %g", gs, gv);
  set("icd.bypass", "0.011");
  kd_ctx_free(c);
  method_close(&m);
}

static void *heap_alloc(void *user, size_t n) {
  (void)user;
  static char pool[1 << 22];
  static size_t used;
  n = (n + 63) & ~(size_t)63;
  if (used + n > sizeof pool) return NULL; /* the sampler then fails: a CHECK below */
  void *p = pool + used;
  used += n;
  return p;
}

static void test_sampler(void) {
  float boxes[400 * 4];
  int labels[400];
  for (int i = 0; i < 400; i++) {
    boxes[4 * i] = 10, boxes[4 * i + 1] = 20, boxes[4 * i + 2] = 50, boxes[4 * i + 3] = 40;
    labels[i] = i % NCLS;
  }
  const int crowd[3] = {0, 1, 0};
  KdGtImage gt[3] = {{.boxes = boxes, .labels = labels, .crowd = crowd, .n = 3}, {.n = 0}, {.boxes = boxes, .labels = labels, .n = 100}};
  KdIcdInstCfg ic = {.num_classes = NCLS, .fake_ratio = 5, .jitter = 0.3f, .img_h = 128, .img_w = 128};
  KdRng r;
  kd_rng_seed(&r, 3, 1);
  KdIcdInst is;
  CHECK(kd_icd_instances(&ic, gt, 3, &r, heap_alloc, NULL, &is) == 0);
  /* 2 non-crowd GTs: 12; no GT: 1; 100 GTs: min(600, max(300, 100)) = 300 */
  CHECK(is.kmax == 300 && is.nreal == 102 && is.nvalid == 12 + 1 + 300);
  int bad = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < is.kmax; j++) {
      const size_t row = (size_t)i * is.kmax + j;
      const int want_valid = j < (i == 0 ? 12 : i == 1 ? 1 : 300), want_real = j < (i == 0 ? 2 : i == 1 ? 0 : 100);
      bad += is.valid[row] != want_valid || is.real[row] != want_real;
      if (!is.valid[row]) continue;
      const float *b = is.box + row * 4, *cc = is.centre + row * 2, *d = is.desc + row * is.din;
      const float w = b[2] - b[0], h = b[3] - b[1];
      bad += !(b[0] >= 0 && b[2] <= 1 && b[1] >= 0 && b[3] <= 1 && w >= 0 && h >= 0);
      bad += fabsf(cc[0] - 0.5f * (b[0] + b[2])) > 0.3f * w + 1e-6f || fabsf(cc[1] - 0.5f * (b[1] + b[3])) > 0.3f * h + 1e-6f;
      int ones = 0;
      for (int k = 0; k < NCLS; k++) ones += d[k] == 1.0f;
      bad += ones != 1;
      if (want_real) { /* the GT's class and box */
        const int g = i == 0 ? (j == 0 ? 0 : 2) : j;
        bad += d[labels[g]] != 1.0f || fabsf(b[0] - boxes[4 * g] / 128.0f) > 1e-6f;
      }
      const float *t = is.target + row * 4;
      bad += fabsf(t[0] + t[2] - w) > 1e-6f || fabsf(t[1] + t[3] - h) > 1e-6f;
    }
  CHECK_MSG(bad == 0, "%d sampler rows out of spec", bad);
  /* 1.44 ln(px) - 5, truncated, in 0..4 */
  CHECK(kd_icd_size_bin(10) == 0 && kd_icd_size_bin(64) == 0 && kd_icd_size_bin(100) == 1 && kd_icd_size_bin(300) == 3 &&
        kd_icd_size_bin(1000) == 4 && kd_icd_size_bin(0) == 0);
}

static void test_errors(void) {
  Method m;
  CHECK(method_open(&m, 12, 12) == 0); /* created without parts: 12 is not 8 heads */
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *t = kd_tensor4(c, N, 12, HH, WW), *s = kd_tensor4(c, N, 12, HH, WW);
  kd_tensor_fill(t, 0), kd_tensor_fill(s, 0);
  KdDistillOut out;
  CHECK(run(c, &m, t, s, 0.0, &out) == NULL && strstr(kd_ctx_error(c), "icd: neck width 12 is not divisible by the decoder's 8 heads"));
  kd_ctx_free(c);
  method_close(&m);
}

static Method gm;
static KdTensor *gt_feat;

static KdTensor *grad_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  KdDistillOut out;
  return run(c, &gm, kd_tensor_copy(c, gt_feat), in[0], 0.0, &out);
}

static int gradcheck(void) {
  int f = 0;
  if (method_open(&gm, E, E)) return 1;
  KdRng r;
  kd_rng_seed(&r, 9, 2);
  gm.inst.m->init_weights(&gm.inst, &r);
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *t = kd_tensor4(c, N, E, HH, WW);
  float tv[N * E * HH * WW];
  for (size_t i = 0; i < t->numel; i++) tv[i] = kd_rng_normal(&r);
  gt_feat = kd_tensor_wrap(c, tv, 4, (int[]){N, E, HH, WW});
  set("icd.bypass", "0");
  const char *norms[2] = {"per_image", "pooled"};
  for (int k = 0; k < 2; k++) {
    set("icd.norm", norms[k]);
    char name[64];
    snprintf(name, sizeof name, "icd/student_%s", norms[k]);
    Gc *g = gc_new(name, grad_fwd, NULL);
    gc_input(g, GC_CHECK, 4, (int[]){N, E, HH, WW});
    /* a LayerNorm over 2 values curves sharply where they meet: a smaller step */
    gc_tol(g, 3e-3, 0, 0);
    f += gc_run(g);
  }
  set("icd.norm", "per_image");
  set("icd.bypass", "0.011");
  kd_ctx_free(c);
  method_close(&gm);
  return f;
}

int main(void) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  CHECK(kd_method_find("icd") != NULL);
  if (!kd_method_find("icd")) return check_status("test_icd");
  CHECK_NEAR(kd_config_num(cfg, "icd.weight"), 8.0, 0.0);
  test_hand();
  test_sampler();
  test_errors();
  CHECK(gradcheck() == 0);
  kd_config_free(cfg);
  return check_status("test_icd");
}
