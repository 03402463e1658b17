/* CSGR (distill/csgr.c) in process, through the distiller: images without
 * boxes and with crowd boxes only have a zero category map (the category
 * part is then exactly 0, the relation part is not); one class gives a
 * map of mean 1, several a mean above 1; a student equal to the teacher
 * gives 0 in both relation variants; finite-difference gradients of the
 * whole loss w.r.t. the student features (KL relation with per-image and
 * batch standardisation, the learnable CCA relation, an adapter). The
 * values against PyTorch: csgr_oracle.py (suite oracle); a real
 * distillation: tests/train/test_csgr_run.c. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "distill/distiller.h"
#include "distill/side.h"
#include "gradcheck.h"



/* The CCA loss sums large squares: float rounding in L, not truncation, sets
 * the numeric error (it shrinks as eps grows), hence a larger step. */
#define EPS_CCA 3e-2
enum { N = 2, IMG = 64, NLEV = 2 };

static KdConfig *cfg;
static KdLevels levels;
static const float boxes[] = {4, 6, 30, 40, 36, 2, 60, 22, 10, 44, 22, 58};
static const int labels[] = {0, 1, 0}, no_crowd[3] = {0}, all_crowd[3] = {1, 1, 1};
static KdGtImage gt[N];
static KdDistiller *dist;
static float teacher[NLEV][N * 8 * 8 * 8];

static void set(const char *key, const char *value) {
  KdError err;
  CHECK_MSG(kd_config_set(cfg, key, value, &err) == 0, "%s", err.msg);
}

/* A distiller with csgr on, widths ct / cs, its parts drawn at random
 * (non-zero gamma) when `shake`. */
static void make(int ct, int cs, int shake) {
  KdError err;
  kd_distiller_free(dist);
  KdDistillShapes sh = {.nlev = NLEV, .strides = {8, 16}, .t_channels = ct, .s_channels = cs};
  dist = kd_distiller_new(&sh, 3, &err);
  CHECK_MSG(dist && kd_distiller_configure(dist, cfg, &err) == 0, "%s", err.msg);
  KdRng r;
  kd_rng_seed(&r, 4, 2);
  KdParams *st = kd_distiller_params(dist);
  for (int i = 0; shake && i < kd_params_count(st); i++) {
    KdTensor *p = kd_params_at(st, i);
    for (size_t k = 0; k < p->numel; k++) p->data[k] = 0.3f * kd_rng_normal(&r);
  }
}

/* The csgr output on student features s[] against teacher[] (width ct). */
static int loss_of(KdCtx *c, KdTensor **s, int ct, KdDistillOut *out) {
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = N, .img_h = IMG, .img_w = IMG, .gt = gt, .maps = 1};
  for (int l = 0; l < NLEV; l++) {
    const int h = IMG >> (3 + l);
    in.t.feat[l] = kd_tensor_wrap(c, teacher[l], 4, (int[]){N, ct, h, h});
    in.s.feat[l] = s[l];
  }
  kd_distill_same_levels(&in, &levels);
  KdTensor *total;
  const KdMethod *ms[KD_DISTILL_MAX_OUT];
  int nout;
  KdError err;
  if (kd_distiller_loss(dist, &in, &total, out, ms, &nout, &err) || nout != 1) {
    fprintf(stderr, "csgr: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static double part(const KdDistillOut *o, const char *name) {
  for (int k = 0; k < o->nparts; k++)
    if (!strcmp(o->parts[k].name, name)) return o->parts[k].value->data[0];
  return NAN;
}

static const KdTensor *mask(const KdDistillOut *o, int level) {
  for (int k = 0; k < o->nmasks; k++)
    if (!strcmp(o->masks[k].name, "csgr.cat_t") && o->masks[k].level == level) return o->masks[k].map;
  return NULL;
}

static void draw(int ct, float shift) {
  KdRng r;
  kd_rng_seed(&r, 8, 1);
  for (int l = 0; l < NLEV; l++)
    for (int k = 0; k < N * ct * (8 >> l) * (8 >> l); k++) teacher[l][k] = 2.0f * kd_rng_normal(&r) + shift;
}

/* Student features of width cs: 0.5 teacher + noise (copy = 1: the teacher). */
static void student(KdCtx *c, KdTensor **s, int cs, int copy) {
  KdRng r;
  kd_rng_seed(&r, 9, 1);
  for (int l = 0; l < NLEV; l++) {
    const int h = IMG >> (3 + l);
    s[l] = kd_tensor4(c, N, cs, h, h);
    for (size_t k = 0; k < s[l]->numel; k++) s[l]->data[k] = copy ? teacher[l][k] : 0.5f * teacher[l][k] + kd_rng_normal(&r);
    s[l]->requires_grad = 1;
  }
}

static void test_maps_and_zeros(void) {
  KdCtx *c = kd_ctx_new(16u << 20);
  KdTensor *s[NLEV];
  KdDistillOut o;
  draw(8, 0.3f);
  make(8, 8, 0);
  /* image 0: classes 0 and 1; image 1: class 0 alone */
  gt[0] = (KdGtImage){boxes, labels, no_crowd, 2};
  gt[1] = (KdGtImage){boxes + 8, labels + 2, no_crowd, 1};
  student(c, s, 8, 0);
  CHECK(loss_of(c, s, 8, &o) == 0);
  for (int l = 0; l < NLEV; l++) {
    const KdTensor *m = mask(&o, l);
    CHECK(m && m->numel == (size_t)N * (8 >> l) * (8 >> l));
    if (!m) continue;
    const size_t hw = m->numel / N;
    double m0 = 0, m1 = 0;
    for (size_t k = 0; k < hw; k++) m0 += m->data[k] / hw, m1 += m->data[hw + k] / hw;
    CHECK_MSG(m0 > 1.0 + 1e-3 && fabs(m1 - 1.0) < 1e-5, "level %d: mean map %.6f (2 classes), %.6f (1 class)", l, m0, m1);
  }
  CHECK(part(&o, "cat") > 0 && part(&o, "rel") > 0);
  /* no boxes anywhere, then crowd boxes only: category part exactly 0 */
  for (int v = 0; v < 2; v++) {
    gt[0] = (KdGtImage){boxes, labels, v ? all_crowd : no_crowd, v ? 3 : 0};
    gt[1] = (KdGtImage){boxes, labels, v ? all_crowd : no_crowd, v ? 3 : 0};
    kd_ctx_reset(c);
    student(c, s, 8, 0);
    CHECK(loss_of(c, s, 8, &o) == 0);
    const KdTensor *m = mask(&o, 0);
    double mx = 0;
    for (size_t k = 0; m && k < m->numel; k++) mx = fmax(mx, fabs(m->data[k]));
    CHECK_MSG(part(&o, "cat") == 0.0 && mx == 0.0 && part(&o, "rel") > 0, "%s: cat %g, map max %g, rel %g",
              v ? "crowd only" : "no boxes", part(&o, "cat"), mx, part(&o, "rel"));
    printf("csgr/%s: cat %g, rel %.6g\n", v ? "crowd_only" : "no_boxes", part(&o, "cat"), part(&o, "rel"));
  }
  /* the student equal to the teacher: both parts 0, in both relation variants */
  gt[0] = (KdGtImage){boxes, labels, no_crowd, 3};
  for (int v = 0; v < 2; v++) {
    set("csgr.relation", v ? "cca" : "kl");
    make(8, 8, 0); /* the two CCA modules start equal only with gamma 0 */
    kd_ctx_reset(c);
    student(c, s, 8, 1);
    CHECK(loss_of(c, s, 8, &o) == 0);
    CHECK_MSG(fabs(part(&o, "cat")) < 1e-9 && fabs(part(&o, "rel")) < 1e-7, "%s: same sides give cat %g rel %g",
              v ? "cca" : "kl", part(&o, "cat"), part(&o, "rel"));
  }
  set("csgr.relation", "kl");
  kd_ctx_free(c);
}

static int gc_ct = 8;
static KdTensor *fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  KdDistillOut o;
  return loss_of(c, in, gc_ct, &o) ? NULL : o.loss;
}

static int gradcheck(const char *name, int ct, int cs, double eps, const char *const *sets) {
  for (int i = 0; sets[i]; i += 2) set(sets[i], sets[i + 1]);
  draw(ct, 0.3f);
  make(ct, cs, 1);
  gc_ct = ct;
  gt[0] = (KdGtImage){boxes, labels, no_crowd, 2};
  gt[1] = (KdGtImage){boxes + 8, labels + 2, no_crowd, 1};
  Gc *g = gc_new(name, fwd, NULL);
  for (int l = 0; l < NLEV; l++) gc_input(g, GC_CHECK, 4, (int[]){N, cs, 8 >> l, 8 >> l});
  gc_tol(g, eps, 0, 0);
  return gc_run(g);
}

int main(void) {
  cfg = kd_config_new();
  KdError err;
  CHECK(cfg && kd_distill_register(cfg) == 0);
  CHECK(kd_config_set(cfg, "distill.methods", "csgr", &err) == 0);
  kd_levels_from_strides(&levels, NLEV, (int[]){8, 16});
  test_maps_and_zeros();
  int f = 0;
  f += gradcheck("csgr/kl_image", 8, 8, 0, (const char *const[]){"csgr.alpha_cat", "0.01", NULL});
  f += gradcheck("csgr/kl_batch_adapter", 8, 6, 0,
                 (const char *const[]){"csgr.norm", "batch", "csgr.temp_rel", "2", "csgr.weight", "3", NULL});
  f += gradcheck("csgr/cca_r2", 8, 8, EPS_CCA,
                 (const char *const[]){"csgr.norm", "image", "csgr.relation", "cca", "csgr.alpha_cca", "0.01", NULL});
  CHECK(f == 0);
  kd_distiller_free(dist);
  kd_config_free(cfg);
  return check_status("distill_csgr");
}
