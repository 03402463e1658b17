/* `kdscope loss` end to end, without Python: the JSON and the gradient
 * file agree with the method run in-process on the same tensors; FitNet
 * adapters come from the seed (deterministic, --seed == --set train.seed)
 * or from the file (an identity adapter gives the plain MSE); logit KD
 * builds the assignment from gt.*; and every bad input is a clean exit 1
 * with a message naming the tensor and what was expected, never a crash.
 * Usage: test_distill_loss_cli KDSCOPE */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/rng.h"
#include "distill/method.h"
#include "distill/side.h"
#include "model/safetensors.h"

static const char *kd;
static char dir[256];

/* ---- building input files ---- */

typedef struct {
  int n;
  const char *names[32];
  float *data[32];
  int ndims[32], shapes[32][4];
} File;

static float *add(File *f, const char *name, int ndim, int d0, int d1, int d2, int d3) {
  int i = f->n++;
  f->names[i] = name;
  f->ndims[i] = ndim;
  int sh[4] = {d0, d1, d2, d3};
  size_t numel = 1;
  for (int d = 0; d < 4; d++) {
    f->shapes[i][d] = d < ndim ? sh[d] : 1;
    numel *= (size_t)f->shapes[i][d];
  }
  f->data[i] = calloc(numel, sizeof(float));
  return f->data[i];
}

static void fill(float *v, size_t n, KdRng *r) {
  for (size_t i = 0; i < n; i++) v[i] = kd_rng_normal(r);
}

static const char *write_file(File *f, const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  KdError err;
  if (kd_safetensors_write(path, f->n, f->names, (const float *const *)f->data, f->ndims, (const int(*)[4])f->shapes,
                           NULL, &err))
    fprintf(stderr, "write: %s\n", err.msg);
  for (int i = 0; i < f->n; i++) free(f->data[i]);
  f->n = 0;
  return path;
}

/* Features P3 (8x8) and P4 (4x4), N=2, C channels. */
static void features(File *f, KdRng *r, int ct, int cs) {
  fill(add(f, "teacher.P3", 4, 2, ct, 8, 8), (size_t)2 * ct * 64, r);
  fill(add(f, "student.P3", 4, 2, cs, 8, 8), (size_t)2 * cs * 64, r);
  fill(add(f, "teacher.P4", 4, 2, ct, 4, 4), (size_t)2 * ct * 16, r);
  fill(add(f, "student.P4", 4, 2, cs, 4, 4), (size_t)2 * cs * 16, r);
}

/* ---- running the binary ---- */

static char output[1 << 16];

/* Runs kdscope with args (NULL-terminated); stdout+stderr into output.
 * Returns the exit status, or 100 + signal if it crashed. */
static int run(const char *const *args) {
  char log[512];
  snprintf(log, sizeof log, "%s/out.txt", dir);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(99);
    const char *argv[32] = {kd};
    int n = 1;
    for (; args[n - 1] && n < 31; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    execv(kd, (char *const *)argv);
    _exit(98);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  FILE *f = fopen(log, "r");
  size_t len = f ? fread(output, 1, sizeof output - 1, f) : 0;
  output[len] = 0;
  if (f) fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* Expects exit 1 and a message containing each of the needles. */
static void expect_error(const char *what, const char *const *args, const char *n1, const char *n2) {
  int rc = run(args);
  CHECK_MSG(rc == 1, "%s: exit %d:\n%s", what, rc, output);
  CHECK_MSG(strstr(output, n1) != NULL, "%s: no '%s' in:\n%s", what, n1, output);
  if (n2) CHECK_MSG(strstr(output, n2) != NULL, "%s: no '%s' in:\n%s", what, n2, output);
}

static cJSON *run_json(const char *const *args) {
  int rc = run(args);
  CHECK_MSG(rc == 0, "exit %d:\n%s", rc, output);
  const char *brace = strchr(output, '{');
  cJSON *j = brace ? cJSON_Parse(brace) : NULL;
  CHECK_MSG(j != NULL, "no JSON in:\n%s", output);
  return j;
}

static double jnum(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ---- cases ---- */

/* pkd through the CLI equals pkd in-process, loss and gradients. */
static void test_pkd_matches_engine(void) {
  KdRng r;
  kd_rng_seed(&r, 21, 1);
  File f = {0};
  features(&f, &r, 4, 4);
  /* keep copies for the in-process run */
  float *copy[4];
  for (int i = 0; i < 4; i++) {
    size_t n = (size_t)f.shapes[i][0] * f.shapes[i][1] * f.shapes[i][2] * f.shapes[i][3];
    copy[i] = malloc(n * sizeof(float));
    memcpy(copy[i], f.data[i], n * sizeof(float));
  }
  char in[512], grads[512];
  snprintf(in, sizeof in, "%s", write_file(&f, "pkd.safetensors"));
  snprintf(grads, sizeof grads, "%s/pkd_grads.safetensors", dir);
  cJSON *j = run_json((const char *[]){"loss", "--method", "pkd", "--in", in, "--out", grads, "--set", "pkd.weight=3", NULL});
  double loss = jnum(j, "loss");
  const cJSON *parts = cJSON_GetObjectItemCaseSensitive(j, "parts");
  CHECK(cJSON_GetArraySize(parts) == 2 && isfinite(jnum(parts, "pkd.P3")) && isfinite(jnum(parts, "pkd.P4")));
  CHECK_NEAR(jnum(parts, "pkd.P3") + jnum(parts, "pkd.P4"), loss, 1e-6 * loss);
  CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "num_pos")));
  cJSON_Delete(j);

  KdConfig *cfg = kd_config_new();
  kd_distill_register(cfg);
  kd_config_set_num(cfg, "pkd.weight", 3, NULL);
  KdCtx *c = kd_ctx_new(1 << 20);
  int s3[4] = {2, 4, 8, 8}, s4[4] = {2, 4, 4, 4};
  KdDistillInputs din = {.c = c, .cfg = cfg, .n = 2};
  KdLevels lv;
  kd_levels_from_strides(&lv, 2, (int[]){8, 16});
  kd_distill_same_levels(&din, &lv);
  din.t.feat[0] = kd_tensor_wrap(c, copy[0], 4, s3), din.s.feat[0] = kd_tensor_wrap(c, copy[1], 4, s3);
  din.t.feat[1] = kd_tensor_wrap(c, copy[2], 4, s4), din.s.feat[1] = kd_tensor_wrap(c, copy[3], 4, s4);
  din.s.feat[0]->requires_grad = din.s.feat[1]->requires_grad = 1;
  KdMethodInst inst = {kd_method_find("pkd"), NULL, NULL};
  KdDistillOut out = {0};
  CHECK(kd_method_read_params(&inst, cfg, NULL) == 0);
  CHECK(inst.m->loss(&inst, &din, &out) == 0 && kd_backward(c, out.loss) == 0);
  kd_method_inst_release(&inst);
  CHECK_NEAR(loss, out.loss->data[0], 1e-6 * fabs(loss));

  KdError err;
  KdSafetensors *st = kd_safetensors_open(grads, &err);
  CHECK(st != NULL);
  if (st) {
    /* two gradients and the two levels' loss maps (N,H,W), which sum to the loss */
    CHECK(kd_safetensors_count(st) == 4 && kd_safetensors_find(st, "grad.teacher.P3") < 0);
    double maps = 0;
    for (int l = 0; l < 2; l++) {
      int i = kd_safetensors_find(st, l ? "gap.pkd.P4" : "gap.pkd.P3"), shape[8], nd = 0;
      CHECK(i >= 0 && kd_safetensors_shape(st, i, shape, &nd) == 0 && nd == 3);
      const KdTensor *x = din.s.feat[l];
      size_t n = (size_t)x->shape[0] * x->shape[2] * x->shape[3];
      CHECK(i < 0 || (shape[0] == x->shape[0] && shape[1] == x->shape[2] && shape[2] == x->shape[3]));
      float *g = malloc(n * sizeof(float));
      CHECK(g && i >= 0 && kd_safetensors_read_f32(st, l ? "gap.pkd.P4" : "gap.pkd.P3", g, n, &err) == 0);
      for (size_t k = 0; g && i >= 0 && k < n; k++) maps += g[k];
      free(g);
    }
    CHECK_NEAR(maps, loss, 1e-5 * fabs(loss));
    CHECK(!strcmp(kd_safetensors_meta(st, "method"), "pkd"));
    const char *names[2] = {"grad.student.P3", "grad.student.P4"};
    for (int l = 0; l < 2; l++) {
      size_t n = din.s.feat[l]->numel;
      float *g = malloc(n * sizeof(float));
      CHECK(kd_safetensors_read_f32(st, names[l], g, n, &err) == 0);
      double worst = 0, mx = 0;
      for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(g[i] - din.s.feat[l]->grad[i]));
        mx = fmax(mx, fabs(din.s.feat[l]->grad[i]));
      }
      CHECK(mx > 0 && worst <= 1e-6 * mx);
      free(g);
    }
    kd_safetensors_close(st);
  }
  kd_ctx_free(c);
  kd_config_free(cfg);
  for (int i = 0; i < 4; i++) free(copy[i]);
}

/* FitNet: seeded adapters are deterministic; given ones are used. */
static void test_fitnet_params(void) {
  KdRng r;
  kd_rng_seed(&r, 22, 1);
  File f = {0};
  features(&f, &r, 4, 4);
  char in[512], grads[512];
  snprintf(in, sizeof in, "%s", write_file(&f, "fitnet_seed.safetensors"));
  const char *a3[] = {"loss", "--method", "fitnet", "--in", in, "--seed", "3", NULL};
  const char *b3[] = {"loss", "--method", "fitnet", "--in", in, "--set", "train.seed=3", NULL};
  const char *a4[] = {"loss", "--method", "fitnet", "--in", in, "--seed", "4", NULL};
  cJSON *j1 = run_json(a3), *j2 = run_json(b3), *j3 = run_json(a4);
  double l1 = jnum(j1, "loss"), l2 = jnum(j2, "loss"), l3 = jnum(j3, "loss");
  CHECK(isfinite(l1) && l1 == l2 && l1 != l3);
  cJSON_Delete(j1), cJSON_Delete(j2), cJSON_Delete(j3);

  /* identity adapters: loss = sum_l mean (S - T)^2 */
  kd_rng_seed(&r, 23, 1);
  features(&f, &r, 4, 4);
  double want = 0;
  for (int l = 0; l < 2; l++) {
    size_t n = (size_t)2 * 4 * (l ? 16 : 64);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += pow(f.data[2 * l + 1][i] - f.data[2 * l][i], 2);
    want += sum / (double)n;
  }
  for (int l = 0; l < 2; l++) {
    static const char *wn[2] = {"distill.fitnet.adapt.0.weight", "distill.fitnet.adapt.1.weight"};
    static const char *bn[2] = {"distill.fitnet.adapt.0.bias", "distill.fitnet.adapt.1.bias"};
    float *w = add(&f, wn[l], 4, 4, 4, 1, 1);
    for (int k = 0; k < 4; k++) w[k * 4 + k] = 1.0f;
    add(&f, bn[l], 1, 4, 1, 1, 1);
  }
  snprintf(in, sizeof in, "%s", write_file(&f, "fitnet_given.safetensors"));
  snprintf(grads, sizeof grads, "%s/fitnet_grads.safetensors", dir);
  cJSON *j = run_json((const char *[]){"loss", "--method", "fitnet", "--in", in, "--out", grads, NULL});
  CHECK_NEAR(jnum(j, "loss"), want, 1e-5 * want);
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "params_from_input")) == 4);
  cJSON_Delete(j);
  KdError err;
  KdSafetensors *st = kd_safetensors_open(grads, &err);
  CHECK(st && kd_safetensors_count(st) == 8); /* 2 features, 4 adapter tensors, 2 loss maps */
  CHECK(st && kd_safetensors_find(st, "grad.distill.fitnet.adapt.1.bias") >= 0);
  CHECK(st && kd_safetensors_find(st, "grad.distill.defeat.adapt.0.weight") < 0); /* only the method's own */
  kd_safetensors_close(st);
}

/* Logit KD from gt.*: positives found, only cls gradients written. */
static void test_logitkd(void) {
  KdRng r;
  kd_rng_seed(&r, 24, 1);
  File f = {0};
  fill(add(&f, "teacher.cls.P3", 4, 2, 18, 8, 8), 2 * 18 * 64, &r);
  fill(add(&f, "student.cls.P3", 4, 2, 18, 8, 8), 2 * 18 * 64, &r);
  fill(add(&f, "teacher.cls.P4", 4, 2, 18, 4, 4), 2 * 18 * 16, &r);
  fill(add(&f, "student.cls.P4", 4, 2, 18, 4, 4), 2 * 18 * 16, &r);
  float *b = add(&f, "gt.boxes", 2, 3, 5, 1, 1), *lab = add(&f, "gt.labels", 1, 3, 1, 1, 1);
  const float rows[15] = {0, 4, 4, 36, 30, 1, 10, 20, 60, 62, 1, 30, 2, 50, 20};
  memcpy(b, rows, sizeof rows);
  lab[0] = 0, lab[1] = 1, lab[2] = 0;
  float *sz = add(&f, "image.size", 1, 2, 1, 1, 1);
  sz[0] = sz[1] = 64;
  char in[512], grads[512];
  snprintf(in, sizeof in, "%s", write_file(&f, "logitkd.safetensors"));
  snprintf(grads, sizeof grads, "%s/logitkd_grads.safetensors", dir);
  cJSON *j = run_json((const char *[]){"loss", "--method", "logitkd", "--in", in, "--out", grads, NULL});
  CHECK(jnum(j, "num_pos") >= 3 && jnum(j, "loss") > 0);
  cJSON_Delete(j);
  KdError err;
  KdSafetensors *st = kd_safetensors_open(grads, &err);
  CHECK(st && kd_safetensors_count(st) == 2 && kd_safetensors_find(st, "grad.student.cls.P4") >= 0);
  kd_safetensors_close(st);
}

static void test_errors(void) {
  KdRng r;
  kd_rng_seed(&r, 25, 1);
  File f = {0};
  char p[512];
#define ARGS(m, file) ((const char *[]){"loss", "--method", m, "--in", file, NULL})

  fill(add(&f, "student.P3", 4, 2, 4, 8, 8), 512, &r);
  snprintf(p, sizeof p, "%s", write_file(&f, "e1.safetensors"));
  expect_error("missing teacher", ARGS("pkd", p), "missing tensor 'teacher.P3'", "e1.safetensors");

  fill(add(&f, "teacher.cls.P3", 4, 2, 18, 8, 8), 2 * 18 * 64, &r);
  fill(add(&f, "student.cls.P3", 4, 2, 18, 8, 8), 2 * 18 * 64, &r);
  snprintf(p, sizeof p, "%s", write_file(&f, "e2.safetensors"));
  expect_error("pkd without features", ARGS("pkd", p), "missing tensor 'student.P3'", "method pkd needs");
  expect_error("logitkd without gt", ARGS("logitkd", p), "gt.boxes", "method logitkd needs");

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "student.P3", 3, 2, 4, 64, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "e3.safetensors"));
  expect_error("3-D student", ARGS("pkd", p), "'student.P3' has shape (2,4,64)", "expected N,C,H,W");

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "student.P3", 4, 2, 4, 8, 7);
  snprintf(p, sizeof p, "%s", write_file(&f, "e4.safetensors"));
  expect_error("H,W mismatch", ARGS("pkd", p), "differ in H,W", "student.P3");

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "student.P3", 4, 2, 4, 8, 8)[77] = NAN;
  snprintf(p, sizeof p, "%s", write_file(&f, "e5.safetensors"));
  expect_error("NaN", ARGS("pkd", p), "'student.P3' has a non-finite value", "index 77");

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "studnet.P3", 4, 2, 4, 8, 8);
  snprintf(p, sizeof p, "%s", write_file(&f, "e6.safetensors"));
  expect_error("typo", ARGS("pkd", p), "unknown tensor 'studnet.P3'", NULL);

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "student.P3", 4, 2, 4, 8, 8);
  add(&f, "teacher.P5", 4, 2, 4, 2, 2);
  add(&f, "student.P5", 4, 2, 4, 2, 2);
  snprintf(p, sizeof p, "%s", write_file(&f, "e7.safetensors"));
  expect_error("gap", ARGS("pkd", p), "missing tensor 'teacher.P4'", "without gaps");

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "student.P3", 4, 3, 4, 8, 8);
  snprintf(p, sizeof p, "%s", write_file(&f, "e8.safetensors"));
  expect_error("batch", ARGS("pkd", p), "batch 3", NULL);

  add(&f, "teacher.cls.P3", 4, 2, 20, 8, 8);
  add(&f, "student.cls.P3", 4, 2, 20, 8, 8);
  add(&f, "gt.boxes", 2, 1, 5, 1, 1);
  add(&f, "gt.labels", 1, 1, 1, 1, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "e9.safetensors"));
  expect_error("cls channels", ARGS("logitkd", p), "20 channels", "A*K with A = 9");

  add(&f, "teacher.cls.P3", 4, 2, 18, 8, 8);
  add(&f, "student.cls.P3", 4, 2, 18, 8, 8);
  add(&f, "gt.boxes", 2, 1, 4, 1, 1);
  add(&f, "gt.labels", 1, 1, 1, 1, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "e10.safetensors"));
  expect_error("gt.boxes shape", ARGS("logitkd", p), "'gt.boxes' has shape (1,4)", "expected (M,5)");

  add(&f, "teacher.cls.P3", 4, 2, 18, 8, 8);
  add(&f, "student.cls.P3", 4, 2, 18, 8, 8);
  float *bx = add(&f, "gt.boxes", 2, 1, 5, 1, 1);
  bx[0] = 2, bx[3] = bx[4] = 10;
  add(&f, "gt.labels", 1, 1, 1, 1, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "e11.safetensors"));
  expect_error("image index", ARGS("logitkd", p), "image index 2", "[0, 2)");

  add(&f, "teacher.cls.P3", 4, 2, 18, 8, 8);
  add(&f, "student.cls.P3", 4, 2, 18, 8, 8);
  bx = add(&f, "gt.boxes", 2, 1, 5, 1, 1);
  bx[3] = bx[4] = 10;
  add(&f, "gt.labels", 1, 1, 1, 1, 1)[0] = 2;
  snprintf(p, sizeof p, "%s", write_file(&f, "e12.safetensors"));
  expect_error("label", ARGS("logitkd", p), "gt.labels[0] = 2", "[0, 2)");

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "student.P3", 4, 2, 4, 8, 8);
  add(&f, "distill.fitnet.adapt.0.weight", 4, 4, 4, 3, 3);
  snprintf(p, sizeof p, "%s", write_file(&f, "e13.safetensors"));
  expect_error("adapter shape", ARGS("fitnet", p), "distill.fitnet.adapt.0.weight' has shape (4,4,3,3)",
               "expected (4,4,1,1)");

  add(&f, "teacher.P3", 4, 2, 4, 8, 8);
  add(&f, "student.P3", 4, 2, 4, 8, 8);
  add(&f, "distill.fitnet.adapter.0.weight", 4, 4, 4, 1, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "e14.safetensors"));
  expect_error("unknown parameter", ARGS("fitnet", p), "not a learnable part", "adapter.0");

  expect_error("unknown method", ARGS("pdk", p), "unknown method 'pdk'", "pkd");
  expect_error("no file", ARGS("pkd", "/nonexistent/x.safetensors"), "/nonexistent/x.safetensors", NULL);
  expect_error("bad --set", ((const char *[]){"loss", "--method", "cwd", "--in", p, "--set", "cwd.tau=0", NULL}),
               "cwd.tau", NULL);
  expect_error("no --in", ((const char *[]){"loss", "--method", "cwd", NULL}), "--in", NULL);
  /* a corrupt file */
  FILE *g = fopen(p, "r+b");
  if (g) {
    fputs("garbage!", g);
    fclose(g);
  }
  expect_error("corrupt", ARGS("pkd", p), "e14.safetensors", NULL);
  CHECK(run((const char *[]){"loss", "--help", NULL}) == 0 && strstr(output, "logitkd.bg_weight"));
}

/* PGD's inputs: one GFL level (P3 8x8, N 2, K 2, R 3), towers of 4 channels. */
static void pgd_file(File *f, KdRng *r, int dist, int towers) {
  const char *const who[2] = {"teacher", "student"};
  static char names[2][4][32];
  const char *const kinds[4] = {"cls", "dist", "cls_tower0", "reg_tower0"};
  const int ch[4] = {2, 16, 4, 4};
  for (int w = 0; w < 2; w++)
    for (int k = 0; k < 4; k++) {
      if ((k == 1 && !dist) || (k >= 2 && !towers)) continue;
      snprintf(names[w][k], sizeof names[w][k], "%s.%s.P3", who[w], kinds[k]);
      fill(add(f, names[w][k], 4, 2, ch[k], 8, 8), (size_t)2 * ch[k] * 64, r);
    }
  float *b = add(f, "gt.boxes", 2, 1, 5, 0, 0);
  b[0] = 0, b[1] = 4, b[2] = 4, b[3] = 40, b[4] = 40;
  add(f, "gt.labels", 1, 1, 0, 0, 0);
}

static void test_pgd_errors(void) {
  KdRng r;
  kd_rng_seed(&r, 26, 1);
  File f = {0};
  char p[512];
#define PGD_ARGS(m, file) ((const char *[]){"loss", "--method", m, "--in", file, "--set", "model.head=gfl", "--set", "gfl.reg_max=3", NULL})
  pgd_file(&f, &r, 0, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "p1.safetensors"));
  expect_error("pgd without dist", PGD_ARGS("pgd", p), "missing tensor 'student.dist.P3'", "method pgd needs");
  pgd_file(&f, &r, 1, 0);
  snprintf(p, sizeof p, "%s", write_file(&f, "p2.safetensors"));
  expect_error("pgd without towers", PGD_ARGS("pgd", p), "pgd: level P3: needs the cls", "cls_tower0");
  pgd_file(&f, &r, 1, 1);
  add(&f, "pgd.jitter", 4, 2, 1, 5, 2);
  snprintf(p, sizeof p, "%s", write_file(&f, "p3.safetensors"));
  expect_error("pgd jitter top-k", PGD_ARGS("pgd", p), "'pgd.jitter' is (2,1,5,2); expected (2,1,9,2)", "pgd.topk");
  expect_error("pgd.* for another method", PGD_ARGS("logitkd", p), "pgd.* tensors are for --method pgd or fitnet", NULL);
  pgd_file(&f, &r, 1, 1);
  add(&f, "pgd.jitter", 4, 2, 1, 9, 2)[5] = 1.0f;
  snprintf(p, sizeof p, "%s", write_file(&f, "p4.safetensors"));
  expect_error("pgd jitter range", PGD_ARGS("pgd", p), "pgd.jitter[5] = 1", "[0, 1)");
  pgd_file(&f, &r, 1, 1);
  add(&f, "pgd.cls.P3", 4, 2, 1, 8, 8);
  snprintf(p, sizeof p, "%s", write_file(&f, "p5.safetensors"));
  expect_error("pgd masks incomplete", PGD_ARGS("pgd", p), "missing tensor 'pgd.reg.P3'", "pgd.cls, pgd.reg and pgd.bg");
  pgd_file(&f, &r, 1, 1);
  add(&f, "pgd.cls.P3", 4, 2, 1, 8, 8), add(&f, "pgd.reg.P3", 4, 2, 1, 8, 8), add(&f, "pgd.bg.P3", 4, 2, 1, 4, 4);
  snprintf(p, sizeof p, "%s", write_file(&f, "p6.safetensors"));
  expect_error("pgd mask size", PGD_ARGS("pgd", p), "'pgd.bg.P3' (2,1,4,4) must be (2,1,H,W)", NULL);
  /* A RetinaNet setting (no model.head=gfl): 9 anchors per location, so no side distributions. */
  pgd_file(&f, &r, 1, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "p7.safetensors"));
  expect_error("pgd on RetinaNet anchors", ARGS("pgd", p), "student.cls.P3", NULL);
  /* Valid: exit 0 with the five parts. */
  pgd_file(&f, &r, 1, 1);
  snprintf(p, sizeof p, "%s", write_file(&f, "p8.safetensors"));
  cJSON *j = run_json(PGD_ARGS("pgd", p));
  const cJSON *parts = cJSON_GetObjectItemCaseSensitive(j, "parts");
  CHECK(cJSON_GetArraySize(parts) == 5 && isfinite(jnum(j, "loss")) && jnum(j, "loss") > 0);
  cJSON_Delete(j);
#undef PGD_ARGS
}

/* gk's inputs (instance rows, prototypes, progress) and `kdscope prototypes`:
 * a file that runs, then each refusal naming the tensor. */
static void gk_base(File *f, KdRng *r, int R) {
  features(f, r, 4, 3);
  float *b = add(f, "inst.boxes", 2, R, 5, 0, 0), *l = add(f, "inst.labels", 1, R, 0, 0, 0);
  for (int i = 0; i < R; i++) {
    const float row[5] = {(float)(i % 2), 4.0f * i, 2, 4.0f * i + 20, 30};
    memcpy(b + 5 * i, row, sizeof row);
    l[i] = (float)(i % 3);
  }
}

static void gk_protos(File *f, KdRng *r, int m, int ct, int cs, float label) {
  fill(add(f, "proto.teacher.P3", 2, m, ct, 0, 0), (size_t)m * ct, r);
  fill(add(f, "proto.student.P3", 2, m, cs, 0, 0), (size_t)m * cs, r);
  float *l = add(f, "proto.labels.P3", 1, m, 0, 0, 0);
  for (int i = 0; i < m; i++) l[i] = label;
}

static void test_gk(void) {
  KdRng r;
  kd_rng_seed(&r, 31, 1);
  File f = {0};
  char p[512];
  gk_base(&f, &r, 4);
  gk_protos(&f, &r, 2, 4, 3, 1);
  fill(add(&f, "inst.teacher.cls", 2, 4, 3, 0, 0), 12, &r);
  fill(add(&f, "inst.student.cls", 2, 4, 3, 0, 0), 12, &r);
  add(&f, "progress", 1, 1, 0, 0, 0)[0] = 0.25f;
  snprintf(p, sizeof p, "%s", write_file(&f, "g0.safetensors"));
  cJSON *j = run_json(ARGS("gk", p));
  const cJSON *parts = cJSON_GetObjectItemCaseSensitive(j, "parts");
  CHECK(parts && jnum(parts, "gk.soft") > 0 && jnum(parts, "gk.feat_bg") > 0 && jnum(parts, "gk.r2i") == 0);
  cJSON_Delete(j);
  expect_error("gk rows for another method", ARGS("fitnet", p), "read by method gk only", NULL);

  gk_base(&f, &r, 4);
  free(f.data[--f.n]); /* no inst.labels */
  snprintf(p, sizeof p, "%s", write_file(&f, "g1.safetensors"));
  expect_error("gk without labels", ARGS("gk", p), "'inst.labels' (R)", "R = 4");

  gk_base(&f, &r, 3);
  fill(add(&f, "inst.teacher.cls", 2, 3, 3, 0, 0), 9, &r);
  snprintf(p, sizeof p, "%s", write_file(&f, "g2.safetensors"));
  expect_error("gk one side's logits", ARGS("gk", p), "inst.teacher.cls given without inst.student.cls", NULL);

  gk_base(&f, &r, 3);
  f.data[4][5] = 7; /* row 1's image index */
  snprintf(p, sizeof p, "%s", write_file(&f, "g3.safetensors"));
  expect_error("gk image index", ARGS("gk", p), "inst.boxes row 1: image index 7", NULL);

  gk_base(&f, &r, 3);
  gk_protos(&f, &r, 2, 5, 3, 0);
  snprintf(p, sizeof p, "%s", write_file(&f, "g4.safetensors"));
  expect_error("gk prototype width", ARGS("gk", p), "'proto.teacher.P3' has 5 columns", "4 channels");

  gk_base(&f, &r, 3);
  gk_protos(&f, &r, 2, 4, 3, 0);
  free(f.data[--f.n]); /* no proto.labels.P3 */
  snprintf(p, sizeof p, "%s", write_file(&f, "g5.safetensors"));
  expect_error("gk prototypes apart", ARGS("gk", p), "come as proto.teacher.P3", "together");

  gk_base(&f, &r, 3);
  add(&f, "progress", 1, 1, 0, 0, 0)[0] = 1.5f;
  snprintf(p, sizeof p, "%s", write_file(&f, "g6.safetensors"));
  expect_error("gk progress", ARGS("gk", p), "'progress' must be (1)", "[0, 1]");

  gk_base(&f, &r, 3);
  gk_protos(&f, &r, 33, 4, 3, 0);
  snprintf(p, sizeof p, "%s", write_file(&f, "g7.safetensors"));
  expect_error("gk too many prototypes", ARGS("gk", p), "more than 32 prototypes", NULL);

  /* kdscope prototypes: a class of 2 instances gets none; a typo is refused. */
  fill(add(&f, "student.P3", 2, 2, 3, 0, 0), 6, &r);
  fill(add(&f, "teacher.P3", 2, 2, 4, 0, 0), 8, &r);
  add(&f, "labels.P3", 1, 2, 0, 0, 0);
  snprintf(p, sizeof p, "%s", write_file(&f, "g8.safetensors"));
  char o[600];
  snprintf(o, sizeof o, "%s/g8.out.safetensors", dir);
  j = run_json((const char *[]){"prototypes", "--in", p, "--out", o, NULL});
  const cJSON *lv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "levels"), "P3");
  CHECK(lv && jnum(lv, "prototypes") == 0 && jnum(lv, "instances") == 2);
  cJSON_Delete(j);
  add(&f, "student.P3", 2, 2, 3, 0, 0);
  add(&f, "teacher.P3", 2, 2, 4, 0, 0);
  add(&f, "label.P3", 1, 2, 0, 0, 0);
  snprintf(p, sizeof p, "%s", write_file(&f, "g9.safetensors"));
  expect_error("prototypes typo", ((const char *[]){"prototypes", "--in", p, "--out", o, NULL}), "unknown tensor 'label.P3'",
               NULL);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_distill_loss_cli KDSCOPE\n");
    return 1;
  }
  kd = argv[1];
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/kd-loss-cli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) return 1;
  test_pkd_matches_engine();
  test_fitnet_params();
  test_logitkd();
  test_errors();
  test_pgd_errors();
  test_gk();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_status("test_loss_cli");
}
