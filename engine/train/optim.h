/* Optimizers over one or more parameter stores: SGD with momentum and
 * AdamW, with PyTorch's update rules, global gradient-norm clipping and a
 * learning-rate schedule (linear warm-up, then cosine, step or constant).
 * The state (momentum / Adam moments) is itself a KdParams store named
 * "<slot>.<param name>", so it is checkpointed like weights. */
#ifndef KD_OPTIM_H
#define KD_OPTIM_H

#include "core/error.h"
#include "core/params.h"

typedef enum { KD_OPT_SGD = 0, KD_OPT_ADAMW = 1 } KdOptKind;
typedef enum { KD_SCHED_COSINE = 0, KD_SCHED_STEP = 1, KD_SCHED_CONSTANT = 2 } KdSchedKind;

typedef struct KdOptimCfg {
  KdOptKind kind;
  float lr, momentum, weight_decay;
  float beta1, beta2, eps;
  int decay_norm_and_bias; /* 0: no weight decay on 1-D tensors (norms, biases) */
  float clip_norm;         /* 0: off */
  KdSchedKind schedule;
  int total_steps, warmup_steps;
  float warmup_factor;     /* lr multiplier at step 0 */
  float min_lr_factor;     /* cosine floor */
  float step_at[2];        /* step schedule: fractions of total where lr *= 0.1 */
} KdOptimCfg;

void kd_optim_cfg_default(KdOptimCfg *cfg);

typedef struct KdOptim KdOptim;

/* Keeps the stores (at most 4): kd_optim_track() finds tensors added to
 * them later. */
KdOptim *kd_optim_new(const KdOptimCfg *cfg, KdParams *const *stores, int nstores, KdError *err);
/* Gives a slot (state starting at zero) to every trainable tensor added to
 * the stores since the last call: the learnable parts of a distillation
 * method listed mid-run. */
int kd_optim_track(KdOptim *o, KdError *err);
void kd_optim_free(KdOptim *o);
/* One update from the accumulated grads (then zeroes them). Returns the
 * pre-clip global grad norm via *grad_norm if non-NULL. A non-finite
 * gradient skips the update and returns 1 (the caller decides). */
int kd_optim_step(KdOptim *o, float *grad_norm);
float kd_optim_lr(const KdOptim *o); /* lr the next step will use */
int kd_optim_steps_done(const KdOptim *o);
void kd_optim_set_steps_done(KdOptim *o, int steps);
KdParams *kd_optim_state(KdOptim *o);
/* Live change of the base learning rate (the schedule keeps its shape). */
void kd_optim_set_lr(KdOptim *o, float lr);
/* Live change of the gradient-norm clip (0: off). */
void kd_optim_set_clip_norm(KdOptim *o, float clip);

#endif
