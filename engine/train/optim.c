#include "train/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct Slot {
  KdTensor *p;
  KdTensor *m, *v; /* in the state store (v: AdamW only) */
  int decay;
} Slot;

#define MAX_STORES 4

struct KdOptim {
  KdOptimCfg cfg;
  KdParams *state;
  KdParams *stores[MAX_STORES];
  int nstores, seen[MAX_STORES]; /* tensors of each store that have a slot (or are buffers) */
  Slot *slots;
  int nslots, cap;
  int steps;
};

void kd_optim_cfg_default(KdOptimCfg *cfg) {
  *cfg = (KdOptimCfg){.kind = KD_OPT_SGD, .lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f, .beta1 = 0.9f,
                      .beta2 = 0.999f, .eps = 1e-8f, .decay_norm_and_bias = 0, .clip_norm = 10.0f,
                      .schedule = KD_SCHED_COSINE, .total_steps = 1000, .warmup_steps = 100,
                      .warmup_factor = 0.001f, .min_lr_factor = 0.01f, .step_at = {0.67f, 0.89f}};
}

static int add_slot(KdOptim *o, KdTensor *p, KdError *err) {
  if (o->nslots == o->cap) {
    int cap = o->cap ? 2 * o->cap : 256;
    Slot *s = realloc(o->slots, (size_t)cap * sizeof *s);
    if (!s) return kd_error(err, "out of memory");
    o->slots = s, o->cap = cap;
  }
  const KdOptimCfg *cfg = &o->cfg;
  Slot *sl = &o->slots[o->nslots];
  char name[320];
  *sl = (Slot){.p = p, .decay = cfg->decay_norm_and_bias || p->ndim > 1};
  snprintf(name, sizeof name, "%s.%s", cfg->kind == KD_OPT_SGD ? "momentum" : "exp_avg", p->name);
  sl->m = kd_params_add(o->state, name, p->ndim, p->shape, KD_PARAM_BUFFER);
  if (cfg->kind == KD_OPT_ADAMW) {
    snprintf(name, sizeof name, "exp_avg_sq.%s", p->name);
    sl->v = kd_params_add(o->state, name, p->ndim, p->shape, KD_PARAM_BUFFER);
  }
  if (!sl->m || (cfg->kind == KD_OPT_ADAMW && !sl->v))
    return kd_error(err, "optimizer: duplicate parameter name %s", p->name);
  o->nslots++;
  return 0;
}

int kd_optim_track(KdOptim *o, KdError *err) {
  for (int s = 0; s < o->nstores; s++) {
    for (; o->seen[s] < kd_params_count(o->stores[s]); o->seen[s]++) {
      int i = o->seen[s];
      if (kd_params_kind(o->stores[s], i) == KD_PARAM_TRAIN && add_slot(o, kd_params_at(o->stores[s], i), err))
        return -1;
    }
  }
  return kd_params_finalize(o->state, err);
}

KdOptim *kd_optim_new(const KdOptimCfg *cfg, KdParams *const *stores, int nstores, KdError *err) {
  if (nstores > MAX_STORES) return kd_error(err, "optimizer: %d parameter stores, at most %d", nstores, MAX_STORES), NULL;
  KdOptim *o = calloc(1, sizeof *o);
  if (!o) return kd_error(err, "out of memory"), NULL;
  o->cfg = *cfg;
  o->state = kd_params_new();
  for (int s = 0; s < nstores; s++) o->stores[s] = stores[s];
  o->nstores = nstores;
  if (!o->state) {
    kd_optim_free(o);
    return kd_error(err, "out of memory"), NULL;
  }
  if (kd_optim_track(o, err)) {
    kd_optim_free(o);
    return NULL;
  }
  return o;
}

void kd_optim_free(KdOptim *o) {
  if (!o) return;
  kd_params_free(o->state);
  free(o->slots);
  free(o);
}

float kd_optim_lr(const KdOptim *o) {
  const KdOptimCfg *c = &o->cfg;
  int t = o->steps;
  float f = 1.0f;
  if (t < c->warmup_steps) {
    float a = (float)t / (float)c->warmup_steps;
    return c->lr * (c->warmup_factor * (1.0f - a) + a);
  }
  int span = c->total_steps - c->warmup_steps;
  float prog = span > 0 ? (float)(t - c->warmup_steps) / (float)span : 1.0f;
  if (prog > 1.0f) prog = 1.0f;
  switch (c->schedule) {
  case KD_SCHED_COSINE:
    f = c->min_lr_factor + (1.0f - c->min_lr_factor) * 0.5f * (1.0f + cosf(3.14159265358979f * prog));
    break;
  case KD_SCHED_STEP:
    for (int i = 0; i < 2; i++)
      if (c->step_at[i] > 0 && t >= (int)(c->step_at[i] * (float)c->total_steps)) f *= 0.1f;
    break;
  case KD_SCHED_CONSTANT: break;
  }
  return c->lr * f;
}

int kd_optim_steps_done(const KdOptim *o) { return o->steps; }
void kd_optim_set_steps_done(KdOptim *o, int steps) { o->steps = steps; }
KdParams *kd_optim_state(KdOptim *o) { return o->state; }
void kd_optim_set_lr(KdOptim *o, float lr) { o->cfg.lr = lr; }
void kd_optim_set_clip_norm(KdOptim *o, float clip) { o->cfg.clip_norm = clip; }

int kd_optim_step(KdOptim *o, float *grad_norm) {
  double sq = 0.0;
  /* One parallel region over every tensor: per-tensor regions would cost
   * a team wake-up for each of the hundreds of small BN/bias vectors. */
#pragma omp parallel reduction(+ : sq)
  for (int i = 0; i < o->nslots; i++) {
    const float *g = o->slots[i].p->grad;
    long n = (long)o->slots[i].p->numel;
#pragma omp for schedule(static) nowait
    for (long j = 0; j < n; j++) sq += (double)g[j] * g[j];
  }
  float norm = (float)sqrt(sq);
  if (grad_norm) *grad_norm = norm;
  if (!isfinite(norm)) {
    for (int i = 0; i < o->nslots; i++) memset(o->slots[i].p->grad, 0, o->slots[i].p->numel * sizeof(float));
    return 1;
  }
  const KdOptimCfg *c = &o->cfg;
  float scale = (c->clip_norm > 0 && norm > c->clip_norm) ? c->clip_norm / (norm + 1e-6f) : 1.0f;
  float lr = kd_optim_lr(o);
  o->steps++;
  float bc1 = 1.0f - powf(c->beta1, (float)o->steps), bc2 = 1.0f - powf(c->beta2, (float)o->steps);
#pragma omp parallel
  for (int i = 0; i < o->nslots; i++) {
    Slot *s = &o->slots[i];
    float *p = s->p->data, *g = s->p->grad, *m = s->m->data, *v = s->v ? s->v->data : NULL;
    long n = (long)s->p->numel;
    float wd = s->decay ? c->weight_decay : 0.0f;
    if (c->kind == KD_OPT_SGD) {
      /* PyTorch SGD: d = g + wd*p; buf = mu*buf + d; p -= lr*buf */
      float mu = c->momentum;
#pragma omp for schedule(static) nowait
      for (long j = 0; j < n; j++) {
        float d = g[j] * scale + wd * p[j];
        m[j] = mu * m[j] + d;
        p[j] -= lr * m[j];
        g[j] = 0.0f;
      }
    } else {
      /* AdamW: decoupled decay p *= 1 - lr*wd, then the Adam update. */
      float b1 = c->beta1, b2 = c->beta2, eps = c->eps, step = lr / bc1, sbc2 = sqrtf(bc2);
#pragma omp for schedule(static) nowait
      for (long j = 0; j < n; j++) {
        float gj = g[j] * scale;
        p[j] *= 1.0f - lr * wd;
        m[j] = b1 * m[j] + (1.0f - b1) * gj;
        v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
        p[j] -= step * m[j] / (sqrtf(v[j]) / sbc2 + eps);
        g[j] = 0.0f;
      }
    }
  }
  return 0;
}
