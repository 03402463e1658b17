#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ops.h"
#include "detect/anchors.h"
#include "detect/assign.h"
#include "detect/boxcoder.h"
#include "detect/detloss.h"
#include "train/settings.h"

struct KdTrainer {
  KdConfig *cfg;
  KdModel *student, *teacher;
  KdDistiller *distiller;
  KdForward fwd;
  KdCtx *ctx;
  KdOptim *optim;
  KdAnchorCfg acfg;
  KdAssignCfg assign;
  KdBoxCoder coder;
  /* anchors for the current level sizes */
  int hw[2 * KD_MAX_LEVELS], nlev, A, A_total;
  float *anchors;
  /* targets, grown to the largest batch seen */
  int *tcls;
  float *tdeltas, *tboxes;
  size_t tcap;
  unsigned long cfg_serial; /* the config as the distiller last read it */
  int nan_injected; /* the test hook fires once (a skipped step is tried again) */
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
  if (kd_settings_anchors(cfg, student, &t->acfg, err)) goto fail;
  t->A = kd_anchors_per_loc(&t->acfg);
  kd_assign_cfg_default(&t->assign);
  t->coder = kd_box_coder_default();
  return t;
fail:
  kd_trainer_free(t);
  return NULL;
}

void kd_trainer_free(KdTrainer *t) {
  if (!t) return;
  kd_optim_free(t->optim);
  kd_ctx_free(t->ctx);
  free(t->anchors);
  free(t->tcls);
  free(t->tdeltas);
  free(t->tboxes);
  free(t);
}

KdOptim *kd_trainer_optim(KdTrainer *t) { return t->optim; }
KdCtx *kd_trainer_ctx(KdTrainer *t) { return t->ctx; }
int kd_trainer_steps_done(const KdTrainer *t) { return kd_optim_steps_done(t->optim); }
const KdForward *kd_trainer_last_forward(const KdTrainer *t) { return &t->fwd; }
size_t kd_trainer_arena_peak(const KdTrainer *t) { return kd_arena_peak(kd_ctx_arena(t->ctx)); }

int kd_trainer_sync(KdTrainer *t, KdError *err) {
  if (t->distiller && kd_config_serial(t->cfg) != t->cfg_serial) {
    if (kd_distiller_configure(t->distiller, t->cfg, err)) return -1;
    t->cfg_serial = kd_config_serial(t->cfg);
  }
  return kd_optim_track(t->optim, err);
}

/* (Re)builds anchors when the level sizes change (first step, new input size). */
static int ensure_anchors(KdTrainer *t, const KdDetOut *o, KdError *err) {
  int hw[2 * KD_MAX_LEVELS], same = t->anchors && t->nlev == o->nlev;
  for (int l = 0; l < o->nlev; l++) {
    hw[2 * l] = o->cls[l]->shape[2];
    hw[2 * l + 1] = o->cls[l]->shape[3];
    if (same && (hw[2 * l] != t->hw[2 * l] || hw[2 * l + 1] != t->hw[2 * l + 1])) same = 0;
  }
  if (same) return 0;
  int total = kd_anchors_total(&t->acfg, hw);
  float *a = malloc((size_t)total * 4 * sizeof(float));
  if (!a) return kd_error(err, "out of memory for %d anchors", total);
  if (kd_anchors_generate(&t->acfg, hw, a, NULL, err)) {
    free(a);
    return -1;
  }
  free(t->anchors);
  t->anchors = a;
  t->A_total = total;
  t->nlev = o->nlev;
  memcpy(t->hw, hw, sizeof(int) * 2 * (size_t)o->nlev);
  return 0;
}

static int ensure_targets(KdTrainer *t, int n, KdError *err) {
  size_t need = (size_t)n * t->A_total;
  if (need <= t->tcap) return 0;
  int *c = realloc(t->tcls, need * sizeof *c);
  if (c) t->tcls = c;
  float *d = realloc(t->tdeltas, need * 4 * sizeof *d);
  if (d) t->tdeltas = d;
  float *b = realloc(t->tboxes, need * 4 * sizeof *b);
  if (b) t->tboxes = b;
  if (!c || !d || !b) return kd_error(err, "out of memory for training targets");
  t->tcap = need;
  return 0;
}

static void add_part(KdStepStats *st, const char *name, const KdTensor *v) {
  if (st->nparts >= KD_MAX_PARTS || !v) return;
  KdLossPart *p = &st->parts[st->nparts++];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->value = v->data[0];
}

int kd_trainer_forward(KdTrainer *t, KdCtx *c, const KdTrainBatch *b, int training, KdForward *f, KdError *err) {
  memset(f, 0, sizeof *f);
  f->n = b->n, f->h = b->h, f->w = b->w;
  int shape[4] = {b->n, 3, b->h, b->w};
  KdTensor *images = kd_tensor_wrap(c, (float *)b->images, 4, shape);
  if (kd_trainer_sync(t, err)) return -1;
  /* No active method (a baseline run through `distill`): the teacher's
   * forward would be wasted work. */
  int distilling = t->teacher && t->distiller && kd_distiller_active(t->distiller) > 0;
  if (distilling) {
    int g = kd_ctx_set_grad(c, 0);
    kd_model_forward(t->teacher, c, images, 0, &f->tout);
    kd_ctx_set_grad(c, g);
  }
  KdDetOut *sout = &f->sout, *tout = &f->tout;
  if (kd_model_forward(t->student, c, images, training, sout)) return kd_error(err, "forward: %s", kd_ctx_error(c));
  f->nlev = sout->nlev;
  if (ensure_anchors(t, sout, err)) return -1;
  /* The training step keeps its targets in buffers that persist (no
   * allocation per step); a forward on another ctx (probes) takes them
   * from that ctx, so the last step's targets stay valid. */
  int *tcls;
  float *tdeltas, *tboxes;
  if (c == t->ctx) {
    if (ensure_targets(t, b->n, err)) return -1;
    tcls = t->tcls, tdeltas = t->tdeltas, tboxes = t->tboxes;
  } else {
    size_t na = (size_t)b->n * t->A_total;
    tcls = kd_ctx_alloc(c, na * sizeof *tcls);
    tdeltas = kd_ctx_alloc(c, na * 4 * sizeof *tdeltas);
    tboxes = kd_ctx_alloc(c, na * 4 * sizeof *tboxes);
    if (!tcls || !tdeltas || !tboxes) return kd_error(err, "out of memory for targets");
  }
  if (kd_build_targets(&t->assign, &t->coder, t->anchors, t->A_total, b->gt, b->n, kd_model_cfg(t->student)->num_classes, tcls,
                       tdeltas, tboxes, NULL, &f->num_pos, err))
    return -1;
  float norm = f->num_pos > 0 ? (float)f->num_pos : 1.0f;
  const KdConfig *cfg = t->cfg;
  f->det_cls = kd_focal_loss(c, sout->cls, sout->nlev, t->A, tcls, (float)kd_config_num(cfg, "loss.focal_alpha"),
                             (float)kd_config_num(cfg, "loss.focal_gamma"), norm);
  if (!strcmp(kd_config_str(cfg, "loss.box"), "giou"))
    f->det_box = kd_giou_loss(c, sout->box, sout->nlev, t->A, t->anchors, tboxes, tcls, &t->coder, norm);
  else
    f->det_box = kd_smooth_l1_loss(c, sout->box, sout->nlev, t->A, tdeltas, tcls, (float)kd_config_num(cfg, "loss.smooth_l1_beta"), norm);
  f->det = kd_add(c, f->det_cls, kd_scale(c, f->det_box, (float)kd_config_num(cfg, "loss.box_weight")));
  if (!f->det) return kd_error(err, "loss: %s", kd_ctx_error(c));
  f->total = f->det;
  if (distilling) {
    KdDistillInputs *in = &f->din;
    *in = (KdDistillInputs){.c = c, .cfg = cfg, .n = b->n, .img_h = b->h, .img_w = b->w, .nlev = sout->nlev, .gt = b->gt,
                            .target_cls = tcls, .num_anchors = t->A, .num_classes = kd_model_cfg(t->student)->num_classes,
                            .A_total = t->A_total, .anchors = t->anchors};
    for (int l = 0; l < sout->nlev && l < KD_DISTILL_MAX_LEVELS; l++) {
      in->strides[l] = kd_model_stride(t->student, l);
      in->t_feat[l] = tout->feat[l], in->s_feat[l] = sout->feat[l];
      in->t_cls[l] = tout->cls[l], in->s_cls[l] = sout->cls[l];
      in->t_box[l] = tout->box[l], in->s_box[l] = sout->box[l];
    }
    KdTensor *kd_total;
    if (kd_distiller_loss(t->distiller, in, &kd_total, f->outs, f->methods, &f->nmethods, err)) return -1;
    f->total = kd_add(c, f->det, kd_total);
    if (!f->total) return kd_error(err, "distillation loss: %s", kd_ctx_error(c));
  }
  return 0;
}

int kd_trainer_step(KdTrainer *t, const KdTrainBatch *b, KdStepStats *st, KdError *err) {
  double t0 = now_s();
  memset(st, 0, sizeof *st);
  KdCtx *c = t->ctx;
  kd_ctx_reset(c);
  kd_ctx_clear_error(c);
  KdForward *f = &t->fwd;
  if (kd_trainer_forward(t, c, b, 1, f, err)) return -1;
  add_part(st, "det.cls", f->det_cls);
  add_part(st, "det.box", f->det_box);
  for (int i = 0; i < f->nmethods; i++)
    for (int p = 0; p < f->outs[i].nparts && st->nparts < KD_MAX_PARTS; p++) {
      KdLossPart *lp = &st->parts[st->nparts++];
      snprintf(lp->name, sizeof lp->name, "%s.%s", f->methods[i]->name, f->outs[i].parts[p].name);
      lp->value = f->outs[i].parts[p].value->data[0];
    }
  KdTensor *total = f->total;
  st->loss = total->data[0];
  st->num_pos = f->num_pos;
  st->lr = kd_optim_lr(t->optim);
  /* Test hook debug.inject_nan_step: this step turns non-finite. */
  int inject = !t->nan_injected && kd_config_int(t->cfg, "debug.inject_nan_step") == kd_optim_steps_done(t->optim) + 1;
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
  if (!st->skipped) {
    if (kd_backward(c, total)) return kd_error(err, "backward: %s", kd_ctx_error(c));
    if (inject_grad) kd_params_grads(kd_model_params(t->student), NULL)[0] = NAN;
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
