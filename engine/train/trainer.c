#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ops.h"
#include "distill/side.h"
#include "train/dist.h"
#include "train/settings.h"

struct KdTrainer {
  KdConfig *cfg;
  KdModel *student, *teacher;
  KdDistiller *distiller;
  KdForward fwd;
  KdCtx *ctx;
  KdOptim *optim;
  int epoch_images;
  unsigned long cfg_serial; /* the config as the distiller last read it */
  int nan_injected; /* the test hook fires once (a skipped step is tried again) */
  float *flat;      /* data-parallel runs: the step's gradients and buffers, packed for one allreduce */
  size_t flat_cap;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

KdTrainer *kd_trainer_new(KdConfig *cfg, KdModel *student, KdModel *teacher, KdDistiller *distiller, KdError *err) {
  KdTrainer *t = calloc(1, sizeof *t);
  if (!t) return kd_error(err, "out of memory"), NULL;
  t->cfg = cfg;
  t->student = student;
  t->teacher = teacher;
  t->distiller = distiller;
  t->ctx = kd_ctx_new(64u << 20);
  KdOptimCfg ocfg;
  if (!t->ctx || kd_settings_optim(cfg, &ocfg, err)) goto fail;
  if (distiller && kd_distiller_configure(distiller, cfg, err)) goto fail;
  t->cfg_serial = kd_config_serial(cfg);
  KdParams *stores[2] = {kd_model_params(student), distiller ? kd_distiller_params(distiller) : NULL};
  t->optim = kd_optim_new(&ocfg, stores, distiller ? 2 : 1, err);
  if (!t->optim) goto fail;
  return t;
fail:
  kd_trainer_free(t);
  return NULL;
}

void kd_trainer_free(KdTrainer *t) {
  if (!t) return;
  kd_optim_free(t->optim);
  kd_ctx_free(t->ctx);
  free(t->flat);
  free(t);
}

KdOptim *kd_trainer_optim(KdTrainer *t) { return t->optim; }
KdCtx *kd_trainer_ctx(KdTrainer *t) { return t->ctx; }
int kd_trainer_steps_done(const KdTrainer *t) { return kd_optim_steps_done(t->optim); }
void kd_trainer_set_epoch_images(KdTrainer *t, int images) { t->epoch_images = images; }
const KdForward *kd_trainer_last_forward(const KdTrainer *t) { return &t->fwd; }
size_t kd_trainer_arena_peak(const KdTrainer *t) { return kd_arena_peak(kd_ctx_arena(t->ctx)); }

int kd_trainer_sync(KdTrainer *t, KdError *err) {
  if (t->distiller && kd_config_serial(t->cfg) != t->cfg_serial) {
    if (kd_distiller_configure(t->distiller, t->cfg, err)) return -1;
    t->cfg_serial = kd_config_serial(t->cfg);
  }
  return kd_optim_track(t->optim, err);
}

static void add_part(KdStepStats *st, const char *name, const KdTensor *v) {
  if (st->nparts >= KD_MAX_PARTS || !v) return;
  KdLossPart *p = &st->parts[st->nparts++];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->value = v->data[0];
}

/* What the methods see of this step: both sides, their pairing, when it is. */
static int distill_inputs(KdTrainer *t, KdCtx *c, const KdTrainBatch *b, KdForward *f) {
  KdDistillInputs *in = &f->din;
  *in = (KdDistillInputs){.c = c, .cfg = t->cfg, .n = b->n, .img_h = b->h, .img_w = b->w, .gt = b->gt, .maps = b->maps};
  kd_distill_side_from(&in->t, t->teacher, &f->tout, NULL);
  if (!in->t.levels) in->t.levels = kd_model_levels(t->teacher); /* its forward skipped: the pairing stands */
  kd_distill_side_from(&in->s, t->student, &f->sout, f->det.has_assign ? &f->det.assign : NULL);
  if (f->det.rois.nrois > 0) in->s.sample = &f->det.rois;
  kd_distill_pair(in);
  int steps = kd_config_int(t->cfg, "train.steps");
  in->step = kd_optim_steps_done(t->optim);
  in->progress = steps > 0 ? (double)in->step / steps : 0.0;
  /* Epochs of the global batch (train.batch), not of this call's images: a
   * rank's shard or the probe's images see the training epoch too. */
  const long long B = kd_config_int(t->cfg, "train.batch");
  in->epoch = t->epoch_images > 0 ? (int)((long long)in->step * B / t->epoch_images) : 0;
  in->epochs = t->epoch_images > 0 && steps > 0 ? (int)(((long long)steps * B + t->epoch_images - 1) / t->epoch_images) : 0;
  kd_rng_seed(&f->rng, (uint64_t)kd_config_int(t->cfg, "train.seed"), 0x6b640000u + (uint64_t)in->step);
  in->rng = &f->rng;
  return in->npairs > 0 ? 0 : (kd_ctx_fail(c, "no student level has a teacher level of its stride"), -1);
}

int kd_trainer_forward(KdTrainer *t, KdCtx *c, const KdTrainBatch *b, int training, KdForward *f, KdError *err) {
  memset(f, 0, sizeof *f);
  f->n = b->n, f->h = b->h, f->w = b->w;
  int shape[4] = {b->n, 3, b->h, b->w};
  KdTensor *images = kd_tensor_wrap(c, (float *)b->images, 4, shape);
  if (kd_trainer_sync(t, err)) return -1;
  /* No active method (a baseline run through `distill`), or none that
   * reads the teacher (LGD, TF-HEAD): its forward would be wasted work. */
  int distilling = t->teacher && t->distiller && kd_distiller_active(t->distiller) > 0;
  if (distilling && kd_distiller_reads_teacher(t->distiller)) {
    int g = kd_ctx_set_grad(c, 0);
    kd_model_forward(t->teacher, c, images, 0, &f->tout);
    kd_ctx_set_grad(c, g);
  }
  KdDetOut *sout = &f->sout;
  if (kd_model_forward(t->student, c, images, training, sout)) return kd_error(err, "forward: %s", kd_ctx_error(c));
  f->nlev = sout->nlev;
  kd_settings_det_loss(t->cfg, &f->lc);
  f->lc.seed = (uint64_t)kd_config_int(t->cfg, "train.seed");
  f->lc.step = kd_optim_steps_done(t->optim);
  if (kd_model_loss(t->student, c, sout, b->gt, b->n, &f->lc, &f->det, err)) return -1;
  f->total = f->det.total;
  if (distilling) {
    if (distill_inputs(t, c, b, f)) return kd_error(err, "distillation: %s", kd_ctx_error(c));
    f->din.det_lc = &f->lc;
    KdTensor *kd_total;
    if (kd_distiller_loss(t->distiller, &f->din, &kd_total, f->outs, f->methods, &f->nmethods, err)) return -1;
    f->total = kd_add(c, f->det.total, kd_total);
    if (!f->total) return kd_error(err, "distillation loss: %s", kd_ctx_error(c));
  }
  return 0;
}

/* ---- data-parallel steps (train/dist.h; no-ops on one rank) ----
 *
 * Each rank holds an equal slice of the global batch. The global loss of a
 * dense head is sum(per-anchor loss) / max(P, 1) over the whole batch (P:
 * its positives); a rank's head divides by its own max(P_r, 1). Weighting
 * a rank's detection loss by w_r = N max(P_r, 1) / max(P, 1) makes the
 * mean over the ranks of their losses (and gradients) the global ones.
 * Distillation losses are means over images or locations: their mean over
 * equal slices is the global value as it is. */
static float dense_weight(const KdForward *f, double global_pos, int ranks) {
  if (ranks < 2 || !f->det.has_assign) return 1.0f;
  double own = f->det.num_pos > 0 ? f->det.num_pos : 1, all = global_pos > 0 ? global_pos : 1;
  return (float)(ranks * own / all);
}

/* The stores whose gradients and buffers a step averages. */
static int step_stores(KdTrainer *t, KdParams **p) {
  p[0] = kd_model_params(t->student);
  p[1] = t->distiller ? kd_distiller_params(t->distiller) : NULL;
  return p[1] ? 2 : 1;
}

/* One allreduce of every gradient and buffer (BN running statistics) of
 * the student and the learnable distillation parts, then their mean: the
 * clipping after it sees the global gradient norm, and every rank keeps
 * the same weights and statistics. train.reduce = ordered sums in rank
 * order on rank 0 instead: slower, bit-reproducible for a given N. */
static int average_grads(KdTrainer *t, KdError *err) {
  KdParams *p[2];
  int np = step_stores(t, p);
  size_t total = 0, n;
  for (int i = 0; i < np; i++) {
    kd_params_grads(p[i], &n), total += n;
    kd_params_buffers(p[i], &n), total += n;
  }
  if (total > t->flat_cap) {
    float *grown = realloc(t->flat, total * sizeof *grown);
    if (!grown) return kd_error(err, "out of memory for %zu gradient values", total); /* the run aborts the job */
    t->flat = grown, t->flat_cap = total;
  }
  size_t at = 0;
  for (int i = 0; i < np; i++)
    for (int b = 0; b < 2; b++) {
      float *v = b ? kd_params_buffers(p[i], &n) : kd_params_grads(p[i], &n);
      if (n) memcpy(t->flat + at, v, n * sizeof *v);
      at += n;
    }
  if (!strcmp(kd_config_str(t->cfg, "train.reduce"), "ordered")) kd_dist_sum_f32_ordered(t->flat, total);
  else kd_dist_sum_f32(t->flat, total);
  float inv = 1.0f / (float)kd_dist_size();
  at = 0;
  for (int i = 0; i < np; i++)
    for (int b = 0; b < 2; b++) {
      float *v = b ? kd_params_buffers(p[i], &n) : kd_params_grads(p[i], &n);
      for (size_t k = 0; k < n; k++) v[k] = t->flat[at + k] * inv;
      at += n;
    }
  return 0;
}

/* The logged loss, parts and diagnostics: their means over the ranks. */
static void average_stats(KdStepStats *st) {
  double v[1 + KD_MAX_PARTS + KD_MAX_STATS];
  int n = 0;
  v[n++] = st->loss;
  for (int i = 0; i < st->nparts; i++) v[n++] = st->parts[i].value;
  for (int i = 0; i < st->nstats; i++) v[n++] = st->stats[i].value;
  kd_dist_sum_f64(v, (size_t)n);
  double inv = 1.0 / kd_dist_size();
  n = 0;
  st->loss = v[n++] * inv;
  for (int i = 0; i < st->nparts; i++) st->parts[i].value = v[n++] * inv;
  for (int i = 0; i < st->nstats; i++) st->stats[i].value = v[n++] * inv;
}

int kd_trainer_step(KdTrainer *t, const KdTrainBatch *b, KdStepStats *st, KdError *err) {
  double t0 = now_s();
  memset(st, 0, sizeof *st);
  KdCtx *c = t->ctx;
  kd_ctx_reset(c);
  kd_ctx_clear_error(c);
  KdForward *f = &t->fwd;
  if (kd_trainer_forward(t, c, b, 1, f, err)) return -1;
  for (int p = 0; p < f->det.nparts; p++) {
    char name[48];
    snprintf(name, sizeof name, "det.%s", f->det.parts[p].name);
    add_part(st, name, f->det.parts[p].value);
  }
  for (int i = 0; i < f->nmethods; i++)
    for (int p = 0; p < f->outs[i].nparts && st->nparts < KD_MAX_PARTS; p++) {
      KdLossPart *lp = &st->parts[st->nparts++];
      snprintf(lp->name, sizeof lp->name, "%s.%s", f->methods[i]->name, f->outs[i].parts[p].name);
      lp->value = f->outs[i].parts[p].value->data[0];
    }
  for (int i = 0; i < f->nmethods; i++)
    for (int p = 0; p < f->outs[i].nstats && st->nstats < KD_MAX_STATS; p++) {
      KdLossPart *sp = &st->stats[st->nstats++];
      snprintf(sp->name, sizeof sp->name, "%s.%s", f->methods[i]->name, f->outs[i].stats[p].name);
      sp->value = f->outs[i].stats[p].value;
    }
  KdTensor *total = f->total;
  st->loss = total->data[0];
  st->num_pos = f->det.num_pos;
  st->lr = kd_optim_lr(t->optim);
  /* Test hook debug.inject_nan_step: this step turns non-finite. */
  int on_rank = kd_config_int(t->cfg, "debug.inject_nan_rank");
  int inject = !t->nan_injected && kd_config_int(t->cfg, "debug.inject_nan_step") == kd_optim_steps_done(t->optim) + 1 &&
               (on_rank < 0 || on_rank == kd_dist_rank());
  t->nan_injected |= inject;
  int inject_grad = inject && !strcmp(kd_config_str(t->cfg, "debug.inject_nan_in"), "gradient");
  if (inject && !inject_grad && st->nparts) st->parts[0].value = st->loss = NAN;
  for (int i = 0; i < st->nparts; i++) {
    if (!isfinite(st->parts[i].value)) {
      st->skipped = 1;
      snprintf(st->bad_part, sizeof st->bad_part, "%s", st->parts[i].name);
      break;
    }
  }
  int ranks = kd_dist_size();
  if (ranks > 1) {
    /* The skip is decided together: a rank that skipped alone would leave
     * the others waiting in the allreduce. */
    double all[2] = {st->skipped, f->det.num_pos};
    kd_dist_sum_f64(all, 2);
    if (all[0] > 0 && !st->skipped) {
      st->skipped = 1;
      snprintf(st->bad_part, sizeof st->bad_part, "loss on another rank");
    }
    st->num_pos = (int)all[1];
    float w = st->skipped ? 1.0f : dense_weight(f, all[1], ranks);
    if (w != 1.0f) {
      total = kd_add(c, total, kd_scale(c, f->det.total, w - 1.0f));
      if (!total) return kd_error(err, "loss: %s", kd_ctx_error(c));
      for (int i = 0; i < st->nparts; i++)
        if (!strncmp(st->parts[i].name, "det.", 4)) st->parts[i].value *= w;
      st->loss = total->data[0];
    }
    if (!st->skipped) average_stats(st);
  }
  if (!st->skipped) {
    if (kd_backward(c, total)) return kd_error(err, "backward: %s", kd_ctx_error(c));
    if (inject_grad) kd_params_grads(kd_model_params(t->student), NULL)[0] = NAN;
    if (ranks > 1 && average_grads(t, err)) return -1;
    if (kd_optim_step(t->optim, &st->grad_norm)) {
      st->skipped = 1;
      snprintf(st->bad_part, sizeof st->bad_part, "gradient");
    }
  } else {
    kd_params_zero_grad(kd_model_params(t->student));
    if (t->distiller) kd_params_zero_grad(kd_distiller_params(t->distiller));
  }
  st->step = kd_optim_steps_done(t->optim);
  st->seconds = now_s() - t0;
  return 0;
}
