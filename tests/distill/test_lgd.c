/* LGD (KD-METHODS-2 §B) on a tiny RetinaNet student (neck 16, 3 classes,
 * 64 px, P3..P5): the instances (crowd boxes left out, the context box
 * only with a GT, the dummy for an image without), the cells each box
 * covers, the parts summing to the loss and the loss maps to the
 * distillation part, the delay and the appearance switch cutting the
 * gradient paths, a width it cannot take, finite differences of the whole
 * loss (the teacher's detection loss included) w.r.t. the student's
 * features; --oracle: the teacher maps and the distillation term against
 * lgd_oracle.py (a PyTorch restatement of the official DynamicTeacher,
 * LabelEncoder and STN with nn.MultiheadAttention), 77 without torch. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/rng.h"
#include "distill/method.h"
#include "dump_defeat_fgd.h"
#include "gradcheck.h"
#include "model/detector.h"

enum { N = 3, C = 16, IMG = 64, NCLS = 3 };

static KdConfig *cfg;
static KdModel *model;
static KdMethodInst inst;
static KdParams *store;
static KdDetLossCfg lc = {.focal_alpha = 0.25f, .focal_gamma = 2.0f, .smooth_l1_beta = 1.0f / 9, .box_weight = 1.0f};

/* image 0: two boxes and a crowd one; image 1: one box; image 2: none */
static const float b0[12] = {4, 6, 30, 40, 20, 10, 60, 50, 0, 0, 16, 16}, b1[4] = {8, 8, 24, 24};
static const int l0[3] = {0, 2, 1}, l1[1] = {1}, cr0[3] = {0, 0, 1};
static const KdGtImage gt[N] = {{.boxes = b0, .labels = l0, .crowd = cr0, .n = 3}, {.boxes = b1, .labels = l1, .n = 1}, {.n = 0}};

static void set(const char *key, const char *v) {
  KdError err;
  CHECK_MSG(kd_config_set(cfg, key, v, &err) == 0, "%s", err.msg);
}

static int open_all(int width) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = width, mc.head.convs = 1, mc.head.num_classes = NCLS;
  KdError err;
  model = kd_model_new(&mc, 5, &err);
  if (!model) return fprintf(stderr, "%s\n", err.msg), -1;
  memset(&inst, 0, sizeof inst);
  inst.m = kd_method_find("lgd");
  store = kd_params_new();
  KdDistillShapes sh = {.nlev = 3, .strides = {8, 16, 32}, .s_channels = width, .t_channels = width, .num_classes = NCLS,
                        .student = model};
  if (!inst.m || inst.m->init(&inst, &sh, store, &err) || kd_params_finalize(store, &err)) return -1;
  KdRng r;
  kd_rng_seed(&r, 3, 4);
  inst.m->init_weights(&inst, &r);
  return kd_method_read_params(&inst, cfg, NULL);
}

static void close_all(void) {
  kd_method_inst_release(&inst);
  kd_params_free(store);
  kd_model_free(model);
}

static KdTensor *feats[3];
static int maps;

static KdTensor *run(KdCtx *c, KdTensor *const *s, double progress, KdDistillOut *out) {
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = N, .img_h = IMG, .img_w = IMG, .gt = gt, .progress = progress,
                        .maps = maps, .det_lc = &lc};
  in.s.levels = kd_model_levels(model), in.s.model = model, in.s.channels = C;
  for (int l = 0; l < 3; l++) in.s.feat[l] = s[l];
  memset(out, 0, sizeof *out);
  if (kd_method_read_params(&inst, cfg, NULL) || inst.m->loss(&inst, &in, out)) return NULL;
  return out->loss;
}

static double part(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nparts; i++)
    if (!strcmp(o->parts[i].name, name)) return o->parts[i].value->data[0];
  return NAN;
}

static double stat(const KdDistillOut *o, const char *name) {
  for (int i = 0; i < o->nstats; i++)
    if (!strcmp(o->stats[i].name, name)) return o->stats[i].value;
  return NAN;
}

static void make_feats(KdCtx *c, KdRng *r, int grad) {
  for (int l = 0; l < 3; l++) {
    const int h = IMG >> (3 + l);
    feats[l] = kd_tensor4(c, N, C, h, h);
    for (size_t i = 0; i < feats[l]->numel; i++) feats[l]->data[i] = kd_rng_normal(r);
    if (grad) {
      feats[l]->requires_grad = 1;
      feats[l]->grad = kd_ctx_alloc(c, feats[l]->numel * sizeof(float));
      memset(feats[l]->grad, 0, feats[l]->numel * sizeof(float));
    }
  }
}

static double grad_norm(void) {
  double s = 0;
  for (int l = 0; l < 3; l++)
    for (size_t i = 0; i < feats[l]->numel; i++) s += (double)feats[l]->grad[i] * feats[l]->grad[i];
  return sqrt(s);
}

static void test_parts(void) {
  KdCtx *c = kd_ctx_new(64 << 20);
  KdRng r;
  kd_rng_seed(&r, 11, 1);
  make_feats(c, &r, 0);
  KdDistillOut o;
  maps = 1;
  KdTensor *L = run(c, feats, 0.5, &o);
  maps = 0;
  CHECK_MSG(L != NULL, "%s", kd_ctx_error(c));
  if (!L) return kd_ctx_free(c);
  /* 2 real + context, 1 + context, the dummy: 6 rows over 3 images */
  CHECK_NEAR(stat(&o, "instances"), 2.0, 1e-12);
  const double det = part(&o, "det_t"), dist = part(&o, "distill");
  CHECK(isfinite(det) && det > 0 && isfinite(dist) && dist > 0);
  CHECK_NEAR(L->data[0], det + dist, 1e-5 * (det + dist));
  /* IN makes each (image, channel) unit variance on both sides: the mean
   * squared difference of two such maps is at most 4 */
  CHECK(dist < 4.0);
  double gsum = 0;
  int cov1 = -1;
  for (int i = 0; i < o.ngaps; i++)
    for (size_t j = 0; j < o.gaps[i].map->numel; j++) gsum += o.gaps[i].map->data[j];
  CHECK_NEAR(gsum, dist, 1e-4 * dist);
  for (int i = 0; i < o.nmasks; i++) {
    if (strcmp(o.masks[i].name, "lgd.boxes") || o.masks[i].level != 0) continue;
    const KdTensor *m = o.masks[i].map;
    /* image 1's box (8,8)-(24,24) at stride 8: centre 2, size 2: cells 1..3 on each axis */
    double s = 0, in9 = 0;
    for (int y = 0; y < 8; y++)
      for (int x = 0; x < 8; x++) {
        s += m->data[64 + y * 8 + x];
        in9 += (y >= 1 && y <= 3 && x >= 1 && x <= 3) * m->data[64 + y * 8 + x];
      }
    cov1 = (int)s;
    CHECK_NEAR(in9, 9.0, 0.0);
    double s2 = 0;
    for (int q = 0; q < 64; q++) s2 += m->data[128 + q];
    CHECK_NEAR(s2, 0.0, 0.0); /* the dummy paints nothing */
  }
  CHECK_MSG(cov1 == 9, "image 1 covers %d cells at P3, expected 9", cov1);
  set("lgd.context", "false");
  kd_ctx_reset(c);
  make_feats(c, &r, 0);
  L = run(c, feats, 0.5, &o);
  CHECK(L != NULL);
  if (L) CHECK_NEAR(stat(&o, "instances"), 4.0 / 3.0, 1e-12);
  set("lgd.context", "true");
  kd_ctx_free(c);
}

/* Which paths reach the student's features. */
static double grad_of(double progress) {
  KdCtx *c = kd_ctx_new(64 << 20);
  KdRng r;
  kd_rng_seed(&r, 12, 1);
  make_feats(c, &r, 1);
  KdDistillOut o;
  KdTensor *L = run(c, feats, progress, &o);
  double g = NAN;
  if (L && !kd_backward(c, L)) g = grad_norm();
  kd_ctx_free(c);
  return g;
}

static void test_paths(void) {
  const double both = grad_of(0.5);
  CHECK(isfinite(both) && both > 0);
  set("lgd.det_weight", "0");
  CHECK_NEAR(grad_of(0.0), 0.0, 0.0); /* delayed: the distillation term is detached */
  CHECK(grad_of(0.5) > 0);
  set("lgd.det_weight", "1");
  set("lgd.weight", "0");
  CHECK(grad_of(0.5) > 0); /* the teacher's loss reaches the neck through the appearance */
  set("lgd.detach_appearance", "true");
  CHECK_NEAR(grad_of(0.5), 0.0, 0.0);
  set("lgd.detach_appearance", "false");
  set("lgd.weight", "1");
}

static void test_errors(void) {
  close_all();
  CHECK(open_all(12) == 0);
  KdCtx *c = kd_ctx_new(16 << 20);
  KdRng r;
  kd_rng_seed(&r, 1, 1);
  for (int l = 0; l < 3; l++) {
    const int h = IMG >> (3 + l);
    feats[l] = kd_tensor4(c, N, 12, h, h);
    for (size_t i = 0; i < feats[l]->numel; i++) feats[l]->data[i] = kd_rng_normal(&r);
  }
  KdDistillOut o;
  KdDistillInputs in = {.c = c, .cfg = cfg, .n = N, .img_h = IMG, .img_w = IMG, .gt = gt, .det_lc = &lc};
  in.s.levels = kd_model_levels(model), in.s.model = model, in.s.channels = 12;
  for (int l = 0; l < 3; l++) in.s.feat[l] = feats[l];
  memset(&o, 0, sizeof o);
  CHECK(inst.m->loss(&inst, &in, &o) != 0 && strstr(kd_ctx_error(c), "not divisible"));
  kd_ctx_free(c);
  close_all();
  CHECK(open_all(C) == 0);
  c = kd_ctx_new(16 << 20);
  make_feats(c, &r, 0);
  in.c = c, in.s.model = NULL, in.s.channels = C;
  for (int l = 0; l < 3; l++) in.s.feat[l] = feats[l];
  memset(&o, 0, sizeof o);
  CHECK(inst.m->loss(&inst, &in, &o) != 0 && strstr(kd_ctx_error(c), "student model"));
  kd_ctx_free(c);
}

static KdTensor *grad_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  KdDistillOut out;
  return run(c, in, 0.5, &out);
}

static int gradcheck(void) {
  Gc *g = gc_new("lgd/student_features", grad_fwd, NULL);
  for (int l = 0; l < 3; l++) gc_input(g, GC_CHECK, 4, (int[]){N, C, IMG >> (3 + l), IMG >> (3 + l)});
  gc_tol(g, 3e-3, 2e-3, 3e-2);
  return gc_run(g);
}

/* ---- oracle ---- */
static int run_oracle(void) {
  KdCtx *c = kd_ctx_new(64 << 20);
  KdRng r;
  kd_rng_seed(&r, 13, 1);
  make_feats(c, &r, 1);
  set("lgd.det_weight", "0");
  set("lgd.weight", "1.5");
  maps = 1;
  KdDistillOut o;
  KdTensor *L = run(c, feats, 0.5, &o);
  kd_params_zero_grad(store);
  if (!L || kd_backward(c, L)) {
    fprintf(stderr, "lgd oracle: %s\n", kd_ctx_error(c));
    return 1;
  }
  Dump d = {0};
  char nm[160];
  for (int i = 0; i < kd_params_count(store); i++) {
    KdTensor *p = kd_params_at(store, i);
    dump_tensor(&d, p->name, p);
    if (!strncmp(p->name, "distill.lgd.adapter.", 20)) {
      snprintf(nm, sizeof nm, "grad.%s", p->name);
      dump_add(&d, nm, p->grad, p->ndim, p->shape);
    }
  }
  for (int l = 0; l < 3; l++) {
    snprintf(nm, sizeof nm, "feat.%d", l), dump_tensor(&d, nm, feats[l]);
    snprintf(nm, sizeof nm, "grad.feat.%d", l), dump_add(&d, nm, feats[l]->grad, 4, feats[l]->shape);
  }
  for (int i = 0; i < o.nmasks; i++)
    if (!strcmp(o.masks[i].name, "lgd.teacher")) {
      snprintf(nm, sizeof nm, "energy.%d", o.masks[i].level);
      dump_tensor(&d, nm, o.masks[i].map);
    }
  float rows[5 * 5];
  int nr = 0;
  for (int n = 0; n < N; n++)
    for (int j = 0; j < gt[n].n; j++) {
      float *row = rows + 5 * nr++;
      row[0] = (float)n;
      memcpy(row + 1, gt[n].boxes + 4 * j, 4 * sizeof(float));
      if (gt[n].crowd && gt[n].crowd[j]) row[0] = -1; /* left out */
    }
  float labels[5];
  for (int n = 0, k = 0; n < N; n++)
    for (int j = 0; j < gt[n].n; j++) labels[k++] = (float)gt[n].labels[j];
  dump_add(&d, "gt.rows", rows, 2, (int[]){nr, 5});
  dump_add(&d, "gt.labels", labels, 1, (int[]){nr});
  dump_scalar(&d, "images", (float)N), dump_scalar(&d, "img", (float)IMG), dump_scalar(&d, "classes", (float)NCLS);
  dump_scalar(&d, "weight", 1.5f), dump_scalar(&d, "part.distill", (float)part(&o, "distill"));
  char path[256];
  int rc = 1;
  if (!dump_tmp_path(path, sizeof path, "kd_lgd") && !dump_write(&d, path)) {
    rc = dump_run_oracle("lgd_oracle.py", path);
    unlink(path);
  }
  dump_free(&d);
  maps = 0;
  set("lgd.det_weight", "1");
  set("lgd.weight", "1");
  kd_ctx_free(c);
  return rc;
}

int main(int argc, char **argv) {
  cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  CHECK(kd_method_find("lgd") != NULL);
  if (!kd_method_find("lgd") || open_all(C)) return check_status("test_lgd");
  if (argc > 1 && !strcmp(argv[1], "--oracle")) {
    int rc = run_oracle();
    close_all();
    kd_config_free(cfg);
    return rc;
  }
  CHECK_NEAR(kd_config_num(cfg, "lgd.weight"), 1.0, 0.0);
  test_parts();
  test_paths();
  test_errors();
  CHECK(gradcheck() == 0);
  close_all();
  kd_config_free(cfg);
  return check_status("test_lgd");
}
