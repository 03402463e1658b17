/* `kdscope bench steps`: median seconds of the reference training steps on
 * random weights and a synthetic batch (random pixels, 3 boxes an image):
 * teacher forward (no tape), student forward+backward, a full teacher
 * training step, and the two-stage teacher preset's forward and training
 * step; GFLOP/s from the conv FLOPs; peak memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "assets.h"
#include "bench.h"
#include "core/arena.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "model/detector.h"
#include "distill/distiller.h"
#include "train/session.h"
#include "train/settings.h"
#include "train/trainer.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct Synth {
  float *images;
  KdGtImage gt[256];
  float boxes[256 * 12];
  int labels[256 * 3];
} Synth;

static void synth_batch(Synth *s, int n, int size, KdRng *r) {
  for (size_t i = 0; i < (size_t)n * 3 * size * size; i++) s->images[i] = kd_rng_range(r, -2.0f, 2.0f);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < 3; j++) {
      float w = kd_rng_range(r, 12, 80), h = kd_rng_range(r, 12, 80);
      float x = kd_rng_range(r, 0, (float)size - w), y = kd_rng_range(r, 0, (float)size - h);
      float *b = &s->boxes[(i * 3 + j) * 4];
      b[0] = x, b[1] = y, b[2] = x + w, b[3] = y + h;
      s->labels[i * 3 + j] = (int)kd_rng_below(r, 10);
    }
    s->gt[i] = (KdGtImage){.boxes = &s->boxes[i * 12], .labels = &s->labels[i * 3], .crowd = NULL, .n = 3};
  }
}

static void print_figure(const KdBenchOpts *o, const char *name, double s, double flops, size_t arena) {
  double gf = flops / s / 1e9;
  printf("  %-30s %7.1f ms  %6.1f GFLOP/s  %4.1f%% of FMA peak", name, 1e3 * s, gf, o->fma_peak > 0 ? 100 * gf / o->fma_peak : 0);
  if (arena) printf("  arena %.0f MiB", arena / 1048576.0);
  printf("\n");
}

static KdModel *preset(int student, KdError *err) {
  KdModelCfg m;
  kd_model_cfg_default(&m);
  if (student) m.backbone.depth = 10, m.backbone.width = 16;
  return kd_model_new(&m, 1, err);
}

/* Median seconds of `steps` trainer steps (after 2 untimed) into *sec,
 * the arena's peak into *peak. */
static int time_steps(KdConfig *cfg, KdModel *m, const KdBenchOpts *o, const Synth *s, double *t, double *sec, size_t *peak) {
  KdError err;
  KdTrainer *tr = kd_trainer_new(cfg, m, NULL, NULL, &err);
  if (!tr) return fprintf(stderr, "bench: %s\n", err.msg), -1;
  KdTrainBatch b = {.n = o->batch, .h = o->size, .w = o->size, .images = s->images, .gt = s->gt};
  KdStepStats st;
  for (int i = 0; i < o->steps + 2; i++) {
    if (kd_trainer_step(tr, &b, &st, &err)) {
      fprintf(stderr, "bench: %s\n", err.msg);
      kd_trainer_free(tr);
      return -1;
    }
    if (i >= 2) t[i - 2] = st.seconds;
  }
  *sec = median(t, o->steps);
  *peak = kd_trainer_arena_peak(tr);
  kd_trainer_free(tr);
  return 0;
}

/* The two-stage teacher preset on the same batch: the evaluation forward
 * (no tape; the RoI head on post_nms_top_n_test proposals an image, as
 * the head's FLOP count assumes) and a training step at the preset's
 * optimizer. A training forward's RoI head runs on batch_per_image RoIs
 * an image (500 proposals and the GT always give that many), so its FLOPs
 * are those of the same model counted with that many test proposals. */
static int bench_frcnn(const KdBenchOpts *o, const Synth *s, double *t, KdBenchStepsResult *res) {
  KdError err;
  char path[4200];
  snprintf(path, sizeof path, "%s/configs/teacher-frcnn.json", kd_assets_dir(NULL));
  KdConfig *cfg = NULL;
  KdModel *m = kd_model_from_files(path, NULL, &cfg, &err);
  if (!m) return fprintf(stderr, "bench: %s\n", err.msg), -1;
  int rc = kd_config_set_num(cfg, "train.warmup_steps", 0, &err);
  int shape[4] = {o->batch, 3, o->size, o->size};
  KdCtx *c = kd_ctx_new(64u << 20);
  kd_ctx_set_grad(c, 0);
  for (int i = 0; !rc && i < o->steps + 2; i++) {
    kd_ctx_reset(c);
    double t0 = now_s();
    KdDetOut out;
    if (kd_model_forward(m, c, kd_tensor_wrap(c, s->images, 4, shape), 0, &out))
      rc = -1, fprintf(stderr, "bench: two-stage forward: %s\n", kd_ctx_error(c));
    if (i >= 2) t[i - 2] = now_s() - t0;
  }
  res->frcnn_fwd_arena_bytes = kd_arena_peak(kd_ctx_arena(c));
  kd_ctx_free(c);
  res->frcnn_fwd_s = median(t, o->steps);
  res->frcnn_fwd_flops = kd_model_flops(m, o->batch, o->size, o->size);
  KdModelCfg mc = *kd_model_cfg(m);
  mc.head.rpn.post_nms_top_n_test = mc.head.roi.batch_per_image;
  KdModel *counted = rc ? NULL : kd_model_new(&mc, 1, &err);
  if (!rc && !counted) rc = -1, fprintf(stderr, "bench: %s\n", err.msg);
  if (counted) res->frcnn_train_flops = 3.0 * kd_model_flops(counted, o->batch, o->size, o->size);
  kd_model_free(counted);
  if (!rc) rc = time_steps(cfg, m, o, s, t, &res->frcnn_train_step_s, &res->frcnn_arena_bytes);
  kd_config_free(cfg);
  kd_model_free(m);
  return rc;
}

int kd_bench_steps(const KdBenchOpts *o, KdBenchStepsResult *res) {
  KdError err;
  memset(res, 0, sizeof *res);
  KdModel *teacher = preset(0, &err), *student = preset(1, &err);
  KdConfig *cfg = kd_config_new();
  if (!teacher || !student || !cfg || kd_settings_register_all(cfg)) {
    fprintf(stderr, "bench: %s\n", err.msg);
    return -1;
  }
  kd_config_set_num(cfg, "train.warmup_steps", 0, &err);
  kd_config_set_num(cfg, "train.lr", 1e-4, &err);
  Synth *s = calloc(1, sizeof *s);
  s->images = malloc(sizeof(float) * (size_t)o->batch * 3 * o->size * o->size);
  KdRng r;
  kd_rng_seed(&r, 3, 3);
  synth_batch(s, o->batch, o->size, &r);
  double *t = calloc((size_t)o->steps + 3, sizeof *t);
  int shape[4] = {o->batch, 3, o->size, o->size};

  /* teacher forward, no tape */
  KdCtx *c = kd_ctx_new(64u << 20);
  kd_ctx_set_grad(c, 0);
  for (int i = 0; i < o->steps + 2; i++) {
    kd_ctx_reset(c);
    double t0 = now_s();
    KdDetOut out;
    kd_model_forward(teacher, c, kd_tensor_wrap(c, s->images, 4, shape), 0, &out);
    if (i >= 2) t[i - 2] = now_s() - t0;
  }
  res->teacher_fwd_s = median(t, o->steps);
  res->teacher_fwd_flops = kd_model_flops(teacher, o->batch, o->size, o->size);
  kd_ctx_free(c);

  /* student forward + backward (detection loss), and teacher training step:
   * both are full trainer steps; the student's includes the optimizer. */
  KdModel *nets[2] = {student, teacher};
  double *outs[2] = {&res->student_step_s, &res->teacher_train_step_s};
  size_t *peaks[2] = {&res->student_arena_bytes, &res->teacher_arena_bytes};
  for (int k = 0; k < 2; k++)
    if (time_steps(cfg, nets[k], o, s, t, outs[k], peaks[k])) return -1;
  /* distillation step: teacher forward + student step + DeFeat (the
   * default method; FitNet if DeFeat is not built in) */
  {
    const char *method = kd_method_find("defeat") ? "defeat" : "fitnet";
    kd_config_set(cfg, "distill.methods", method, &err);
    KdDistillShapes sh;
    kd_distill_shapes(&sh, student, teacher);
    KdDistiller *d = kd_distiller_new(&sh, 1, &err);
    KdTrainer *tr = d ? kd_trainer_new(cfg, student, teacher, d, &err) : NULL;
    if (!tr) {
      fprintf(stderr, "bench: %s\n", err.msg);
      return -1;
    }
    KdTrainBatch b = {.n = o->batch, .h = o->size, .w = o->size, .images = s->images, .gt = s->gt};
    KdStepStats st;
    for (int i = 0; i < o->steps + 2; i++) {
      if (kd_trainer_step(tr, &b, &st, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return -1;
      }
      if (i >= 2) t[i - 2] = st.seconds;
    }
    res->distill_step_s = median(t, o->steps);
    res->distill_arena_bytes = kd_trainer_arena_peak(tr);
    snprintf(res->distill_method, sizeof res->distill_method, "%s", method);
    kd_trainer_free(tr);
    kd_distiller_free(d);
  }
  if (bench_frcnn(o, s, t, res)) return -1;
  res->student_flops = 3.0 * kd_model_flops(student, o->batch, o->size, o->size);
  res->teacher_train_flops = 3.0 * res->teacher_fwd_flops;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  res->peak_rss_bytes = (size_t)ru.ru_maxrss * 1024;
  if (!o->json) {
    printf("\nsteps (batch %d, %dx%d, median of %d)\n", o->batch, o->size, o->size, o->steps);
    char dname[64];
    snprintf(dname, sizeof dname, "distillation step (%s)", res->distill_method);
    print_figure(o, "teacher forward (no tape)", res->teacher_fwd_s, res->teacher_fwd_flops, 0);
    print_figure(o, "student step (fwd+bwd+optim)", res->student_step_s, res->student_flops, res->student_arena_bytes);
    print_figure(o, "teacher training step", res->teacher_train_step_s, res->teacher_train_flops, res->teacher_arena_bytes);
    print_figure(o, dname, res->distill_step_s, res->teacher_fwd_flops + res->student_flops, res->distill_arena_bytes);
    print_figure(o, "two-stage teacher forward", res->frcnn_fwd_s, res->frcnn_fwd_flops, res->frcnn_fwd_arena_bytes);
    print_figure(o, "two-stage teacher train step", res->frcnn_train_step_s, res->frcnn_train_flops, res->frcnn_arena_bytes);
    printf("  peak RSS %.0f MiB\n", res->peak_rss_bytes / 1048576.0);
  }
  free(t);
  free(s->images);
  free(s);
  kd_config_free(cfg);
  kd_model_free(teacher);
  kd_model_free(student);
  return 0;
}
