/* The methods' loss maps (KdDistillGap, what the probe shows as
 * gap.<method>): for FitNet, DeFeat, FGD, PKD and CWD, on random features
 * with GT boxes, the maps of every level sum to the parts the method names
 * (gap_parts) of the same loss, under default and changed settings and
 * with adapters between unequal widths; asking for maps leaves the loss
 * bit for bit as it was and a training step (maps off) records none; a
 * weight of 0 on one part empties the cells that part covers; equal sides
 * give zero maps. The independent recomputation in torch is
 * gapmap_oracle.py (suite oracle). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "distill/distiller.h"
#include "distill/side.h"

enum { N = 2, IMG = 64, NLEV = 3 };

static KdConfig *cfg;
static KdLevels levels;
static const float boxes[] = {4, 6, 30, 40, 36, 2, 60, 22, 10, 44, 22, 58, 0, 0, 63, 63};
static const int labels[] = {0, 1, 2, 1}, crowd[4] = {0};
static KdGtImage gt[N];

static void set(const char *key, const char *value) {
  KdError err;
  CHECK_MSG(kd_config_set(cfg, key, value, &err) == 0, "%s", err.msg);
}

/* One method's loss on features of widths ct (teacher) and cs (student);
 * same = 1: the student equals the teacher. */
typedef struct {
  KdCtx *c;
  KdDistiller *d;
  KdDistillInputs in;
  KdDistillOut out[KD_DISTILL_MAX_OUT];
  const KdMethod *ms[KD_DISTILL_MAX_OUT];
  int nout;
} Run;

static int run(Run *r, const char *method, int ct, int cs, int maps, int same, uint64_t seed) {
  KdError err;
  memset(r, 0, sizeof *r);
  set("distill.methods", method);
  KdDistillShapes sh = {.nlev = NLEV, .strides = {8, 16, 32}, .t_channels = ct, .s_channels = cs};
  r->c = kd_ctx_new(8u << 20);
  r->d = kd_distiller_new(&sh, 3, &err);
  if (!r->c || !r->d || kd_distiller_configure(r->d, cfg, &err)) return fprintf(stderr, "%s\n", err.msg), -1;
  /* Non-default learnable parts (FGD's GcBlocks start as identities, DeFeat's adapter near 0). */
  KdRng rng;
  kd_rng_seed(&rng, seed, 9);
  KdParams *st = kd_distiller_params(r->d);
  for (int i = 0; i < kd_params_count(st); i++) {
    KdTensor *p = kd_params_at(st, i);
    for (size_t k = 0; k < p->numel; k++) p->data[k] = 0.3f * kd_rng_normal(&rng);
  }
  r->in = (KdDistillInputs){.c = r->c, .cfg = cfg, .n = N, .img_h = IMG, .img_w = IMG, .gt = gt, .maps = maps};
  for (int l = 0; l < NLEV; l++) {
    int h = IMG >> (3 + l);
    KdTensor *t = kd_tensor4(r->c, N, ct, h, h), *s = kd_tensor4(r->c, N, cs, h, h);
    for (size_t k = 0; k < t->numel; k++) t->data[k] = 2.0f * kd_rng_normal(&rng) + 0.5f;
    for (size_t k = 0; k < s->numel; k++)
      s->data[k] = same ? t->data[k] : 0.6f * (ct == cs ? t->data[k] : 0.0f) + kd_rng_normal(&rng);
    r->in.t.feat[l] = t, r->in.s.feat[l] = s;
  }
  kd_distill_same_levels(&r->in, &levels);
  KdTensor *total;
  if (kd_distiller_loss(r->d, &r->in, &total, r->out, r->ms, &r->nout, &err) || r->nout != 1)
    return fprintf(stderr, "%s: %s\n", method, err.msg), -1;
  return 0;
}

static void done(Run *r) {
  kd_distiller_free(r->d);
  kd_ctx_free(r->c);
}

static double gap_parts(const Run *r) {
  double a = 0;
  for (int k = 0; k < r->out[0].nparts; k++)
    if (kd_method_gap_part(r->ms[0], r->out[0].parts[k].name)) a += r->out[0].parts[k].value->data[0];
  return a;
}

static double map_sum(const Run *r, double *lo) {
  double a = 0;
  *lo = INFINITY;
  for (int g = 0; g < r->out[0].ngaps; g++) {
    const KdTensor *m = r->out[0].gaps[g].map;
    for (size_t k = 0; k < m->numel; k++) a += m->data[k], *lo = fmin(*lo, m->data[k]);
  }
  return a;
}

/* The maps sum to the parts; maps on or off, the same loss. */
static void check_sum(const char *method, int ct, int cs, const char *what) {
  Run on, off;
  if (run(&on, method, ct, cs, 1, 0, 5) || run(&off, method, ct, cs, 0, 0, 5)) {
    CHECK_MSG(0, "%s: no loss", method);
    return;
  }
  CHECK_MSG(on.ms[0]->gap_label && on.ms[0]->gap_label[0], "%s has no map label", method);
  CHECK_MSG(on.out[0].ngaps == NLEV, "%s: %d maps, want one per level", method, on.out[0].ngaps);
  CHECK_MSG(off.out[0].ngaps == 0, "%s recorded maps in a training step", method);
  CHECK_MSG(on.out[0].loss->data[0] == off.out[0].loss->data[0], "%s: the loss changed with maps on", method);
  for (int g = 0; g < on.out[0].ngaps; g++) {
    const KdDistillGap *m = &on.out[0].gaps[g];
    int h = IMG >> (3 + m->level);
    CHECK_MSG(m->level == g && m->map->ndim == 4 && m->map->shape[0] == N && m->map->shape[1] == 1 &&
                  m->map->shape[2] == h && m->map->shape[3] == h && !m->map->requires_grad,
              "%s: map %d", method, g);
  }
  double lo, maps = map_sum(&on, &lo), parts = gap_parts(&on);
  CHECK_MSG(parts > 0 && fabs(maps - parts) <= 1e-5 * parts, "%s (%s): maps sum to %.9g, its parts to %.9g", method, what,
            maps, parts);
  printf("%-7s %-28s maps %.9g parts %.9g (min cell %.3g)\n", method, what, maps, parts, lo);
  done(&on), done(&off);
}

/* With one part's weight at 0 the cells it alone covers are 0, the others not. */
static void check_zero_part(const char *method, const char *key, int fg_zero) {
  set(key, "0");
  Run r;
  if (run(&r, method, 16, 8, 1, 0, 6)) {
    CHECK_MSG(0, "%s: no loss", method);
    return;
  }
  int zero_ok = 1, live = 0;
  for (int g = 0; g < r.out[0].ngaps; g++) {
    const KdDistillGap *m = &r.out[0].gaps[g];
    const KdTensor *fg = NULL;
    for (int k = 0; k < r.out[0].nmasks; k++)
      if (r.out[0].masks[k].level == m->level && strstr(r.out[0].masks[k].name, ".fg")) fg = r.out[0].masks[k].map;
    CHECK_MSG(fg && fg->numel == m->map->numel, "%s: no fg mask at level %d", method, m->level);
    for (size_t k = 0; fg && k < fg->numel; k++) {
      int in_fg = fg->data[k] > 0;
      if (in_fg == fg_zero) zero_ok = zero_ok && m->map->data[k] == 0.0f;
      else live += m->map->data[k] > 0;
    }
  }
  CHECK_MSG(zero_ok && live > 0, "%s with %s = 0: %s cells not all zero, or no other cell alive (%d)", method, key,
            fg_zero ? "fg" : "bg", live);
  done(&r);
  KdError err;
  const KdParamDesc *d = NULL;
  for (int k = 0; k < r.ms[0]->nparams; k++)
    if (!strcmp(r.ms[0]->params[k].key, key)) d = &r.ms[0]->params[k];
  char def[64];
  snprintf(def, sizeof def, "%.17g", d ? d->def : 1.0);
  CHECK(kd_config_set(cfg, key, def, &err) == 0);
}

static void check_equal_sides(const char *method) {
  Run r;
  if (run(&r, method, 16, 16, 1, 1, 7)) {
    CHECK_MSG(0, "%s: no loss", method);
    return;
  }
  double lo, a = map_sum(&r, &lo);
  CHECK_MSG(fabs(a) < 1e-6 && fabs(lo) < 1e-6, "%s: equal sides give maps summing to %g", method, a);
  done(&r);
}

int main(void) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  int strides[NLEV] = {8, 16, 32};
  kd_levels_from_strides(&levels, NLEV, strides);
  gt[0] = (KdGtImage){.boxes = boxes, .labels = labels, .crowd = crowd, .n = 3};
  gt[1] = (KdGtImage){.boxes = boxes + 12, .labels = labels + 3, .crowd = crowd, .n = 1};
  set("defeat.beta_obj", "0"), set("defeat.beta_bg", "0"); /* no logits here: the neck parts only */
  set("defeat.finest_scale", "11");
  check_sum("fitnet", 16, 8, "adapter 8 -> 16");
  check_sum("defeat", 16, 8, "adapter 8 -> 16");
  check_sum("fgd", 16, 8, "align 8 -> 16");
  check_sum("fgd", 16, 16, "no align");
  check_sum("pkd", 16, 16, "default");
  check_sum("cwd", 16, 16, "default");
  set("fitnet.weight", "2.5"), set("defeat.alpha_obj", "7"), set("defeat.alpha_bg", "0.3"), set("defeat.weight", "1.5");
  set("fgd.alpha", "0.02"), set("fgd.beta", "0.5"), set("fgd.temp", "2"), set("pkd.weight", "3");
  set("cwd.tau", "3"), set("cwd.weight", "0.7");
  check_sum("fitnet", 16, 8, "weight 2.5");
  check_sum("defeat", 16, 8, "alphas 7 / 0.3, weight 1.5");
  check_sum("fgd", 16, 8, "alpha, beta, temp changed");
  check_sum("pkd", 16, 16, "weight 3");
  check_sum("cwd", 16, 16, "tau 3, weight 0.7");
  check_zero_part("defeat", "defeat.alpha_bg", 0);
  check_zero_part("defeat", "defeat.alpha_obj", 1);
  check_zero_part("fgd", "fgd.beta", 0);
  check_zero_part("fgd", "fgd.alpha", 1);
  check_equal_sides("pkd");
  check_equal_sides("cwd");
  check_equal_sides("fgd");
  kd_config_free(cfg);
  return check_status("test_gapmaps");
}
