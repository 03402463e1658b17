/* Test helpers for the DeFeat/FGD tests: a method instance outside the
 * distiller (Fix), a random step with packed features, logits, boxes and
 * anchor targets (Scene), named float arrays written as one safetensors file
 * (kd_safetensors_write) for the PyTorch oracles, which read it with
 * struct+json; running an oracle script; and binding a method's stored
 * parameters to gradient-check inputs. Header-only, tests only. */
#ifndef KD_TEST_DUMP_DEFEAT_FGD_H
#define KD_TEST_DUMP_DEFEAT_FGD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "distill/method.h"
#include "distill/side.h"
#include "model/safetensors.h"

#define DUMP_MAX 160

typedef struct {
  int n;
  const char *names[DUMP_MAX];
  const float *data[DUMP_MAX];
  int ndims[DUMP_MAX];
  int shapes[DUMP_MAX][4];
  char *owned[DUMP_MAX]; /* names we formatted */
  float *copies[DUMP_MAX];
} Dump;

/* Adds a copy of v (so arena memory may be reset afterwards). */
static inline void dump_add(Dump *d, const char *name, const float *v, int ndim, const int *shape) {
  if (d->n >= DUMP_MAX) {
    fprintf(stderr, "dump: too many arrays\n");
    abort();
  }
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
  float *c = malloc((numel ? numel : 1) * sizeof *c);
  char *nm = strdup(name);
  if (!c || !nm) abort();
  memcpy(c, v, numel * sizeof *c);
  int i = d->n++;
  d->owned[i] = nm, d->copies[i] = c;
  d->names[i] = nm, d->data[i] = c, d->ndims[i] = ndim;
  for (int k = 0; k < 4; k++) d->shapes[i][k] = k < ndim ? shape[k] : 0;
}

static inline void dump_tensor(Dump *d, const char *name, const KdTensor *t) {
  dump_add(d, name, t->data, t->ndim, t->shape);
}

static inline void dump_scalar(Dump *d, const char *name, float v) { dump_add(d, name, &v, 0, NULL); }

static inline int dump_write(Dump *d, const char *path) {
  KdError err;
  if (kd_safetensors_write(path, d->n, d->names, d->data, d->ndims, (const int(*)[4])d->shapes, NULL, &err)) {
    fprintf(stderr, "dump: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static inline void dump_free(Dump *d) {
  for (int i = 0; i < d->n; i++) free(d->owned[i]), free(d->copies[i]);
  d->n = 0;
}

/* Runs /usr/bin/python3 (or $KD_ORACLE_PYTHON) tests/distill/<script> <file>.
 * Returns its exit status: 0 pass, 77 skip (no python or torch), else fail. */
static inline int dump_run_oracle(const char *script, const char *file) {
  const char *py = getenv("KD_ORACLE_PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  const char *root = getenv("KD_SOURCE_ROOT");
  if (access(py, X_OK) != 0) {
    printf("skip: %s not found\n", py);
    return 77;
  }
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/tests/distill/%s %s", py, root ? root : ".", script, file);
  int st = system(cmd);
  return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : 1;
}

/* A temp file path under $TMPDIR (created empty). */
static inline int dump_tmp_path(char *buf, size_t len, const char *stem) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  snprintf(buf, len, "%s/%s_XXXXXX", dir, stem);
  int fd = mkstemp(buf);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

/* Makes a stored parameter use gradient-check memory (values and gradient
 * buffer of a GC_PARAM input, or a range of one), so the harness perturbs
 * it and reads its gradient. Restore with dump_unbind before freeing. */
typedef struct {
  KdTensor *p;
  float *data, *grad;
  unsigned rg;
} DumpBind;

static inline void dump_bind(DumpBind *b, KdTensor *param, float *data, float *grad, int rg) {
  if (!b->p) b->p = param, b->data = param->data, b->grad = param->grad, b->rg = param->requires_grad;
  param->data = data;
  param->grad = grad;
  param->requires_grad = rg != 0;
}

static inline void dump_unbind(DumpBind *b) {
  if (!b->p) return;
  b->p->data = b->data, b->p->grad = b->grad, b->p->requires_grad = b->rg;
  b->p = NULL;
}

/* ---- a method instance outside the distiller ---- */
typedef struct {
  KdConfig *cfg;
  KdParams *store;
  KdMethodInst inst;
} Fix;

static inline int fix_init(Fix *f, const KdMethod *m, const KdDistillShapes *sh, uint64_t seed) {
  KdError err;
  memset(f, 0, sizeof *f);
  f->cfg = kd_config_new();
  f->store = kd_params_new();
  f->inst.m = m;
  if (!f->cfg || !f->store || kd_config_register(f->cfg, m->params, m->nparams) ||
      m->init(&f->inst, sh, f->store, &err) || kd_params_finalize(f->store, &err) ||
      kd_method_read_params(&f->inst, f->cfg, &err)) {
    fprintf(stderr, "fix_init %s failed\n", m->name);
    return -1;
  }
  KdRng r;
  kd_rng_seed(&r, seed, 11);
  m->init_weights(&f->inst, &r);
  return 0;
}

static inline void fix_set(Fix *f, const char *key, double v) {
  KdError err;
  if (kd_config_set_num(f->cfg, key, v, &err) || kd_method_read_params(&f->inst, f->cfg, &err)) {
    fprintf(stderr, "fix_set %s: %s\n", key, err.msg);
    abort();
  }
}

static inline void fix_free(Fix *f) {
  kd_method_inst_release(&f->inst);
  kd_params_free(f->store);
  kd_config_free(f->cfg);
}

/* ---- a random step: features, logits, boxes, anchor targets ---- */
#define SC_MAXBOX 8
typedef struct {
  int n, img, nlev, cs, ct, A, K, A_total;
  int strides[KD_DISTILL_MAX_LEVELS], hw[KD_DISTILL_MAX_LEVELS];
  /* packed per kind, level after level */
  float *s_feat, *t_feat, *s_cls, *t_cls;
  size_t off_sf[KD_DISTILL_MAX_LEVELS + 1], off_tf[KD_DISTILL_MAX_LEVELS + 1], off_cls[KD_DISTILL_MAX_LEVELS + 1];
  float boxes[16][SC_MAXBOX * 4];
  KdGtImage gt[16];
  int *tcls;
  KdLevels levels;      /* both sides' (part names point here) */
  KdDenseAssign assign; /* the student's: tcls */
} Scene;

/* Feature maps of side img/stride, strides 8,16,..; values ~N(0,fscale);
 * cls logits ~N(-2, 1.5); targets: a random mix of positive classes,
 * negatives and ignored anchors (each kind present). */
static inline void scene_new(Scene *s, uint64_t seed, int n, int img, int nlev, int cs, int ct, int A, int K,
                             float fscale) {
  memset(s, 0, sizeof *s);
  s->n = n, s->img = img, s->nlev = nlev, s->cs = cs, s->ct = ct, s->A = A, s->K = K;
  KdRng r;
  kd_rng_seed(&r, seed, 21);
  for (int l = 0; l < nlev; l++) {
    s->strides[l] = 8 << l, s->hw[l] = img / s->strides[l];
    size_t p = (size_t)s->hw[l] * s->hw[l];
    s->off_sf[l + 1] = s->off_sf[l] + (size_t)n * cs * p;
    s->off_tf[l + 1] = s->off_tf[l] + (size_t)n * ct * p;
    s->off_cls[l + 1] = s->off_cls[l] + (size_t)n * A * K * p;
    s->A_total += (int)p * A;
  }
  kd_levels_from_strides(&s->levels, nlev, s->strides);
  s->s_feat = malloc(s->off_sf[nlev] * sizeof(float));
  s->t_feat = malloc(s->off_tf[nlev] * sizeof(float));
  s->s_cls = malloc(s->off_cls[nlev] * sizeof(float));
  s->t_cls = malloc(s->off_cls[nlev] * sizeof(float));
  s->tcls = malloc((size_t)n * s->A_total * sizeof(int));
  if (!s->s_feat || !s->t_feat || !s->s_cls || !s->t_cls || !s->tcls) abort();
  for (size_t i = 0; i < s->off_sf[nlev]; i++) s->s_feat[i] = fscale * kd_rng_normal(&r);
  for (size_t i = 0; i < s->off_tf[nlev]; i++) s->t_feat[i] = fscale * kd_rng_normal(&r);
  for (size_t i = 0; i < s->off_cls[nlev]; i++) s->s_cls[i] = -2.0f + 1.5f * kd_rng_normal(&r);
  for (size_t i = 0; i < s->off_cls[nlev]; i++) s->t_cls[i] = -2.0f + 1.5f * kd_rng_normal(&r);
  for (int i = 0; i < n * s->A_total; i++) {
    uint32_t u = kd_rng_below(&r, 10);
    s->tcls[i] = u < 3 ? (int)kd_rng_below(&r, (uint32_t)K) : u < 8 ? -1 : -2;
  }
  s->assign = (KdDenseAssign){.A = A, .K = K, .A_total = s->A_total, .target_cls = s->tcls};
  for (int i = 0; i < n && i < 16; i++) {
    int nb = 1 + (int)kd_rng_below(&r, SC_MAXBOX - 2);
    for (int j = 0; j < nb; j++) {
      /* long side 10%..65% of the image, aspect up to 2.5 */
      float L = kd_rng_range(&r, 0.1f, 0.65f) * (float)img, asp = kd_rng_range(&r, 0.4f, 2.5f);
      float w = asp >= 1 ? L : L * asp, h = asp >= 1 ? L / asp : L;
      float x = kd_rng_range(&r, 0, (float)img - w), y = kd_rng_range(&r, 0, (float)img - h);
      float *b = &s->boxes[i][4 * j];
      b[0] = x, b[1] = y, b[2] = x + w, b[3] = y + h;
    }
    s->gt[i] = (KdGtImage){s->boxes[i], NULL, NULL, nb};
  }
}

static inline void scene_free(Scene *s) {
  free(s->s_feat), free(s->t_feat), free(s->s_cls), free(s->t_cls), free(s->tcls);
}

/* Wraps the scene (or the given packed arrays, e.g. gradcheck copies) as the
 * step's inputs. Student tensors require grad when `grad`. */
static inline void scene_inputs(const Scene *s, KdCtx *c, const KdConfig *cfg, KdDistillInputs *in, float *sf, float *sc,
                                int grad) {
  memset(in, 0, sizeof *in);
  *in = (KdDistillInputs){.c = c, .cfg = cfg, .n = s->n, .img_h = s->img, .img_w = s->img, .gt = s->gt};
  in->s.assign = &s->assign;
  in->s.nout = in->t.nout = 1;
  in->s.out[0].name = in->t.out[0].name = "cls";
  kd_distill_same_levels(in, &s->levels);
  for (int l = 0; l < s->nlev; l++) {
    int h = s->hw[l];
    in->s.feat[l] = kd_tensor_wrap(c, (sf ? sf : s->s_feat) + s->off_sf[l], 4, (int[]){s->n, s->cs, h, h});
    in->t.feat[l] = kd_tensor_wrap(c, s->t_feat + s->off_tf[l], 4, (int[]){s->n, s->ct, h, h});
    in->s.out[0].lv[l] = kd_tensor_wrap(c, (sc ? sc : s->s_cls) + s->off_cls[l], 4, (int[]){s->n, s->A * s->K, h, h});
    in->t.out[0].lv[l] = kd_tensor_wrap(c, s->t_cls + s->off_cls[l], 4, (int[]){s->n, s->A * s->K, h, h});
    in->s.feat[l]->requires_grad = grad;
    in->s.out[0].lv[l]->requires_grad = grad;
  }
}

#endif
