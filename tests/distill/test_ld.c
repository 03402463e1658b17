/* LD (engine/distill/ld.c): a hand case at T = 1 (main LD weighted by the
 * student's max class score over 4, class KD over the positive count, no
 * gradient through the weight), the VLR term against kd_ld_vlr and a KL
 * computed here (over 16, an image without boxes giving none), a level
 * without positives, the refusal of non-GFL inputs, finite-difference
 * checks w.r.t. the student's side distributions (all terms) and class
 * logits (class KD), and, with --oracle, parity of every part and gradient
 * with ld_oracle.py (PyTorch, 1e-4; 77 without torch). */
#include <math.h>
#include <string.h>

#include "../detect/oracle.h"
#include "check.h"
#include "core/rng.h"
#include "detect/assign.h"
#include "detect/atss.h"
#include "distill/method.h"
#include "distill/side.h"
#include "gradcheck.h"
#include "kl_ref.h"

static KdConfig *cfg;
static const KdMethod *ldm;
static KdLevels levels;

/* A batch of GFL outputs on nlev levels of strides 8, 16, ... */
typedef struct {
  int n, K, B, nlev, hw[2 * KD_MAX_LEVELS], At;
  int *labels;      /* [n*At] */
  float *anchors;   /* [At*4]: squares of 2 x stride on the points */
  KdGtImage *gt;    /* [n] */
} Case;

static void set(const char *key, double v) { CHECK(kd_config_set_num(cfg, key, v, NULL) == 0); }

static void case_anchors(Case *k) {
  int a = 0;
  for (int l = 0; l < k->nlev; l++) {
    float s = (float)(8 << l);
    for (int y = 0; y < k->hw[2 * l]; y++)
      for (int x = 0; x < k->hw[2 * l + 1]; x++, a++) {
        float *b = k->anchors + 4 * a;
        b[0] = x * s - s, b[1] = y * s - s, b[2] = x * s + s, b[3] = y * s + s;
      }
  }
}

/* sd, td: dist per level; sc, tc: cls per level. */
static KdTensor *run(KdCtx *c, const Case *k, KdTensor **sd, KdTensor **td, KdTensor **sc, KdTensor **tc, KdDistillOut *out) {
  KdDenseAssign as = {.A = 1, .K = k->K, .A_total = k->At, .anchors = k->anchors, .target_cls = k->labels};
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = k->n, .gt = k->gt};
  in.s.assign = &as;
  in.s.nout = in.t.nout = 2;
  in.s.out[0].name = in.t.out[0].name = "cls";
  in.s.out[1].name = in.t.out[1].name = "dist";
  int strides[KD_MAX_LEVELS];
  for (int l = 0; l < k->nlev; l++) {
    strides[l] = 8 << l;
    in.s.out[0].lv[l] = sc[l], in.t.out[0].lv[l] = tc[l];
    in.s.out[1].lv[l] = sd[l], in.t.out[1].lv[l] = td[l];
  }
  kd_levels_from_strides(&levels, k->nlev, strides);
  kd_distill_same_levels(&in, &levels);
  KdMethodInst inst = {ldm, NULL, NULL};
  memset(out, 0, sizeof *out);
  int rc = kd_method_read_params(&inst, cfg, NULL) || ldm->loss(&inst, &in, out);
  kd_method_inst_release(&inst);
  return rc ? NULL : out->loss;
}

static double part(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nparts; i++)
    if (!strcmp(o->parts[i].name, name)) return o->parts[i].value->data[0];
  return NAN;
}

static void defaults(void) {
  set("ld.ld", 0.25), set("ld.ld_T", 10), set("ld.vlr", 0.25), set("ld.vlr_T", 10), set("ld.vlr_lo", 0.25);
  set("ld.kd", 10), set("ld.kd_T", 2);
}

static void test_hand(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  /* One image, one level of 1 x 2, K = 2, B = 3 (reg_max 2); location 0 positive. */
  int labels[2] = {0, KD_MATCH_NEG};
  float an[8];
  KdGtImage gt = {NULL, NULL, NULL, 0};
  Case k = {.n = 1, .K = 2, .B = 3, .nlev = 1, .hw = {1, 2}, .At = 2, .labels = labels, .anchors = an, .gt = &gt};
  case_anchors(&k);
  KdTensor *sd = kd_tensor4(c, 1, 12, 1, 2), *td = kd_tensor4(c, 1, 12, 1, 2);
  KdTensor *sc = kd_tensor4(c, 1, 2, 1, 2), *tc = kd_tensor4(c, 1, 2, 1, 2);
  kd_tensor_fill(sd, 0.0f), kd_tensor_fill(sc, 0.0f), kd_tensor_fill(tc, 0.0f);
  for (int e = 0; e < 4; e++) /* q = (1/2, 1/4, 1/4) at T = 1 on every side of location 0 */
    td->data[(e * 3 + 0) * 2] = logf(2.0f), td->data[(e * 3 + 1) * 2] = 0, td->data[(e * 3 + 2) * 2] = 0;
  for (int i = 0; i < 12; i++) td->data[i * 2 + 1] = 3.0f * (float)(i % 3); /* the negative: never read */
  tc->data[2] = logf(3.0f);                                            /* class 1 of location 0: q = (1/4, 3/4) */
  sd->requires_grad = sc->requires_grad = 1;
  defaults();
  set("ld.ld_T", 1), set("ld.kd_T", 1), set("ld.vlr", 0);
  KdDistillOut out;
  KdTensor *loss = run(c, &k, &sd, &td, &sc, &tc, &out);
  CHECK(loss && out.nparts == 3);
  double klb = 0.5 * log(1.5) + 0.5 * log(0.75), klc = 0.25 * log(0.5) + 0.75 * log(1.5);
  /* main: 0.25 * w (0.5) * 4 sides * KL / B (3) / 4 */
  CHECK_NEAR(part(&out, "main"), 0.25 * 0.5 * 4 * klb / 3 / 4, 1e-6);
  /* class KD: 10 * KL / K (2) / 1 positive */
  CHECK_NEAR(part(&out, "cls"), 10 * klc / 2, 1e-6);
  CHECK(part(&out, "vlr") == 0.0);
  CHECK_NEAR(loss->data[0], part(&out, "main") + part(&out, "cls"), 1e-6);
  CHECK(kd_backward(c, loss) == 0);
  /* d cls / d s = 10 / (K * 1) * (p - q) / T = 5 * (1/4, -1/4); no gradient through w */
  CHECK_NEAR(sc->grad[0], 1.25, 1e-5);
  CHECK_NEAR(sc->grad[2], -1.25, 1e-5);
  CHECK(sc->grad[1] == 0.0f && sc->grad[3] == 0.0f);
  /* d main / d s_b = 0.25 * 0.5 / 12 * (p_b - q_b) at T = 1 */
  CHECK_NEAR(sd->grad[0], 0.25 * 0.5 / 12 * (1.0 / 3 - 0.5), 1e-6);
  CHECK_NEAR(sd->grad[2], 0.25 * 0.5 / 12 * (1.0 / 3 - 0.25), 1e-6);
  for (int i = 0; i < 12; i++) CHECK(sd->grad[2 * i + 1] == 0.0f);
  /* T^2 scales the temperature-softened KL: T = 2 gives 4 * KL at T 2 */
  set("ld.ld_T", 2);
  loss = run(c, &k, &sd, &td, &sc, &tc, &out);
  CHECK_NEAR(part(&out, "main"), 0.25 * 0.5 * 4 * 4 * kl_ref(td->data, sd->data, 3, 2, 2.0) / 3 / 4, 1e-6);
  /* No positives: every part 0. */
  labels[0] = KD_MATCH_NEG;
  loss = run(c, &k, &sd, &td, &sc, &tc, &out);
  CHECK(loss && loss->data[0] == 0.0f);
  labels[0] = 0;
  /* Not a GFL head: no "dist". */
  KdTensor *none[1] = {NULL};
  CHECK(!run(c, &k, none, none, &sc, &tc, &out) && strstr(kd_ctx_error(c), "ld:"));
  kd_ctx_free(c);
}

/* A random two-image, two-level case with GT and the ATSS positives. */
typedef struct {
  Case k;
  int labels[2 * 52];
  float anchors[52 * 4], boxes[12];
  int glab[3];
  KdGtImage gt[2];
  KdTensor *sd[2], *td[2], *sc[2], *tc[2];
} Scene;

static void scene(Scene *s, KdCtx *c, uint64_t seed) {
  KdRng r;
  kd_rng_seed(&r, seed, 9);
  s->k = (Case){.n = 2, .K = 3, .B = 5, .nlev = 2, .hw = {6, 6, 4, 4}, .At = 52, .labels = s->labels,
                .anchors = s->anchors, .gt = s->gt};
  case_anchors(&s->k);
  const float b[12] = {4.3f, 6.1f, 21.7f, 19.2f, 14.2f, 3.3f, 39.5f, 33.9f, 8.8f, 20.1f, 30.4f, 44.6f};
  memcpy(s->boxes, b, sizeof b);
  s->glab[0] = 0, s->glab[1] = 2, s->glab[2] = 1;
  s->gt[0] = (KdGtImage){s->boxes, s->glab, NULL, 2};
  s->gt[1] = (KdGtImage){s->boxes + 8, s->glab + 2, NULL, 1};
  int off[3] = {0, 36, 52};
  for (int i = 0; i < 2; i++) {
    int m[52];
    KdError err;
    CHECK(kd_atss_assign(s->anchors, off, 2, s->gt[i].boxes, NULL, s->gt[i].n, 9, m, NULL, NULL, &err) > 0);
    for (int a = 0; a < 52; a++) s->labels[i * 52 + a] = m[a] >= 0 ? s->gt[i].labels[m[a]] : KD_MATCH_NEG;
  }
  for (int l = 0; l < 2; l++) {
    int h = s->k.hw[2 * l], w = s->k.hw[2 * l + 1];
    KdTensor **t[4] = {&s->sd[l], &s->td[l], &s->sc[l], &s->tc[l]};
    for (int j = 0; j < 4; j++) {
      *t[j] = kd_tensor4(c, 2, j < 2 ? 4 * s->k.B : s->k.K, h, w);
      for (size_t e = 0; e < (*t[j])->numel; e++) (*t[j])->data[e] = 3.0f * kd_rng_normal(&r);
    }
  }
}

static void test_vlr(void) {
  KdCtx *c = kd_ctx_new(1 << 22);
  Scene s;
  scene(&s, c, 5);
  defaults();
  set("ld.ld", 0), set("ld.kd", 0);
  KdDistillOut out;
  CHECK(run(c, &s.k, s.sd, s.td, s.sc, s.tc, &out) != NULL);
  /* By hand: the VLR of each image, its weights, the KL at T 10 over 5 bins, x T^2 / 16. */
  int off[3] = {0, 36, 52};
  double want = 0;
  int nv = 0;
  for (int i = 0; i < 2; i++) {
    int m[52];
    float thr[2], v[52];
    KdError err;
    kd_atss_assign(s.anchors, off, 2, s.gt[i].boxes, NULL, s.gt[i].n, 9, m, NULL, thr, &err);
    nv += kd_ld_vlr(s.anchors, 52, s.gt[i].boxes, NULL, thr, s.gt[i].n, 0.25f, v);
    for (int a = 0; a < 52; a++) {
      if (v[a] <= 0) continue;
      int l = a >= 36, cell = a - off[l];
      size_t HW = (size_t)s.k.hw[2 * l] * s.k.hw[2 * l + 1];
      for (int e = 0; e < 4; e++) {
        size_t o = ((size_t)i * 20 + e * 5) * HW + cell;
        want += v[a] * kl_ref(s.td[l]->data + o, s.sd[l]->data + o, 5, HW, 10.0) / 5;
      }
    }
  }
  want *= 0.25 * 100 / 16;
  CHECK(nv > 0);
  CHECK_NEAR(part(&out, "vlr"), want, 1e-5 * want);
  CHECK(part(&out, "main") == 0.0 && part(&out, "cls") == 0.0);
  /* An image without boxes has no VLR (the official code crashes there). */
  s.gt[1].n = 0;
  for (int a = 0; a < 52; a++) s.labels[52 + a] = KD_MATCH_NEG;
  CHECK(run(c, &s.k, s.sd, s.td, s.sc, s.tc, &out) != NULL);
  double one_image = part(&out, "vlr");
  CHECK(one_image > 0 && one_image < want);
  kd_ctx_free(c);
}

/* ---- gradient checks ---- */
static Scene *gs;

static KdTensor *fwd_dist(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  KdDistillOut out;
  return run(c, &gs->k, in, gs->td, gs->sc, gs->tc, &out);
}
static KdTensor *fwd_cls(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  KdDistillOut out;
  return run(c, &gs->k, gs->sd, gs->td, in, gs->tc, &out);
}

static int grad_checks(void) {
  KdCtx *c = kd_ctx_new(1 << 22);
  static Scene s;
  scene(&s, c, 11);
  gs = &s;
  int f = 0;
  defaults();
  set("ld.ld_T", 2), set("ld.vlr_T", 3); /* softer temperatures give larger, better-conditioned gradients */
  Gc *g = gc_new("ld/dist (main + vlr + cls)", fwd_dist, NULL);
  for (int l = 0; l < 2; l++) memcpy(gc_input(g, GC_CHECK, 4, s.sd[l]->shape), s.sd[l]->data, s.sd[l]->numel * sizeof(float));
  f += gc_run(g);
  set("ld.ld", 0), set("ld.vlr", 0);
  g = gc_new("ld/cls (class KD)", fwd_cls, NULL);
  for (int l = 0; l < 2; l++) memcpy(gc_input(g, GC_CHECK, 4, s.sc[l]->shape), s.sc[l]->data, s.sc[l]->numel * sizeof(float));
  f += gc_run(g);
  kd_ctx_free(c);
  return f;
}

/* ---- oracle ---- */
static int run_oracle(void) {
  KdCtx *c = kd_ctx_new(1 << 22);
  Scene s;
  scene(&s, c, 23);
  defaults();
  KdDistillOut out;
  for (int l = 0; l < 2; l++) s.sd[l]->requires_grad = s.sc[l]->requires_grad = 1;
  KdTensor *loss = run(c, &s.k, s.sd, s.td, s.sc, s.tc, &out);
  CHECK(loss && kd_backward(c, loss) == 0);
  Oracle o;
  CHECK(oracle_open(&o) == 0);
  int dims[4] = {2, 3, 5, 2}, off[3] = {0, 36, 52};
  float prm[6] = {0.25f, 10, 0.25f, 10, 10, 2}, vlr[104];
  for (int i = 0; i < 2; i++) {
    int m[52];
    float thr[2];
    KdError err;
    kd_atss_assign(s.anchors, off, 2, s.gt[i].boxes, NULL, s.gt[i].n, 9, m, NULL, thr, &err);
    kd_ld_vlr(s.anchors, 52, s.gt[i].boxes, NULL, thr, s.gt[i].n, 0.25f, vlr + 52 * i);
  }
  oracle_i(&o, "dims", dims, 4);
  oracle_f(&o, "params", prm, 6);
  oracle_i(&o, "hw", s.k.hw, 4);
  oracle_i(&o, "labels", s.labels, 104);
  oracle_f(&o, "vlr", vlr, 104);
  char name[8];
  const char *pre[4] = {"sd", "td", "sc", "tc"};
  for (int l = 0; l < 2; l++) {
    KdTensor *t[4] = {s.sd[l], s.td[l], s.sc[l], s.tc[l]};
    for (int j = 0; j < 4; j++) {
      snprintf(name, sizeof name, "%s%d", pre[j], l);
      oracle_f(&o, name, t[j]->data, t[j]->numel);
    }
  }
  int rc = oracle_run(&o, "../distill/ld_oracle.py", "ld");
  if (rc == 77) {
    oracle_close(&o);
    kd_ctx_free(c);
    printf("ld oracle: skipped (no torch)\n");
    return 77;
  }
  CHECK_MSG(rc == 0, "ld_oracle.py exited %d", rc);
  const char *parts[4] = {"main", "vlr", "cls", "loss"};
  for (int i = 0; rc == 0 && i < 4; i++) {
    size_t n;
    const double *ref = oracle_get(&o, parts[i], &n);
    double mine = i < 3 ? part(&out, parts[i]) : loss->data[0];
    CHECK_MSG(ref && fabs(mine - ref[0]) <= 1e-4 * fabs(ref[0]) + 1e-7, "%s: %.9g vs torch %.9g", parts[i], mine,
              ref ? ref[0] : NAN);
    printf("ld %s: %.6f (torch %.6f)\n", parts[i], mine, ref ? ref[0] : NAN);
  }
  for (int l = 0; rc == 0 && l < 2; l++) {
    KdTensor *t[2] = {s.sd[l], s.sc[l]};
    for (int j = 0; j < 2; j++) {
      snprintf(name, sizeof name, "g%s%d", j ? "sc" : "sd", l);
      size_t n;
      const double *ref = oracle_get(&o, name, &n);
      CHECK(ref && n == t[j]->numel && t[j]->grad);
      int bad = 0;
      for (size_t e = 0; ref && t[j]->grad && e < n; e++)
        bad += !(fabs(t[j]->grad[e] - ref[e]) <= 1e-4 * fabs(ref[e]) + 1e-7);
      CHECK_MSG(bad == 0, "%s: %d gradients differ", name, bad);
    }
  }
  oracle_close(&o);
  kd_ctx_free(c);
  return check_status("test_ld --oracle");
}

int main(int argc, char **argv) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  ldm = kd_method_find("ld");
  CHECK(ldm != NULL);
  if (!ldm) return check_status("test_ld");
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return run_oracle();
  test_hand();
  test_vlr();
  int f = grad_checks();
  CHECK_MSG(f == 0, "%d gradient elements out of tolerance", f);
  printf("worst err/tol %.3f\n", gc_worst_ratio());
  kd_config_free(cfg);
  return check_status("test_ld");
}
