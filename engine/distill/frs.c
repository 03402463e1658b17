/* FRS, feature-richness score distillation (Du et al., NeurIPS 2021), as
 * the released code computes it (duzhixing/FRS, Distilling_FRS_Single;
 * KD-METHODS §9.1 and 10b). Per level l, the mask is the teacher's own
 * richness there, m[n,h,w] = max over the A*K class channels of
 * sigmoid(teacher logits) (detached, no cross-level alignment):
 *   feat: sum_{n,c,h,w} m (T_l - Adap_l(S_l))^2 / sum_{n,h,w} m
 *   cls:  sum_{n,k,h,w} m BCE(sigmoid(s), sigmoid(t)) / sum_{n,h,w} m
 * summed over levels, times frs.feat (0.005) and frs.cls (0.02, the
 * RetinaNet config), and both ramped linearly over the first frs.warm
 * steps (factor step / warm, 0 at the first step). Adap_l: a 3x3 conv with
 * bias, PyTorch's default init, no ReLU (the code's ADAP), trained with
 * the student. The class term is BCE between *probabilities*, as
 * F.binary_cross_entropy: its logs clamp at -100 and its gradient is
 * (p - q) / max(p (1 - p), 1e-12) * p (1 - p) with p in float, so it
 * vanishes once a student logit saturates (about +-17): kept, it is what
 * the released code trains with. Neither term divides by C or N. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ops.h"
#include "detect/postprocess.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "model/layers.h"

typedef struct {
  int nlev;
  KdConv adap[KD_DISTILL_MAX_LEVELS];
} Frs;

typedef struct {
  float feat, cls, warm;
} FrsParams;

#define F(field, ...) KD_METHOD_FLOAT(FrsParams, "frs", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(feat, "λ_feat", "FRS feature weight", 0.005, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "Weight of the richness-masked feature MSE through a 3x3 adapter (FRS RetinaNet: 0.005; GFL 0.1; FCOS 0.01)"),
    F(cls, "λ_cls", "FRS class weight", 0.02, 0.0, 10.0, 1, "1,1.6,2,2.5,5,8",
      "Weight of the richness-masked BCE between student and teacher class probabilities (RetinaNet 0.02; GFL, FCOS 0.05)"),
    F(warm, "t_w", "FRS warm-up steps", 500, 0, 100000, 0, "step 50",
      "Both terms ramp linearly from 0 over this many steps (the code's distill_warm_step: 500)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Frs *f = calloc(1, sizeof *f);
  if (!f) return kd_error(err, "out of memory");
  inst->state = f;
  f->nlev = sh->nlev;
  return kd_distill_adapters_add(f->adap, sh->nlev, store, "distill.frs.adap", sh->s_channels, sh->t_channels, 3, err);
}

static void init_weights(KdMethodInst *inst, KdRng *r) {
  Frs *f = inst->state;
  kd_distill_adapters_init(f->adap, f->nlev, r); /* PyTorch's default Conv2d init, as the code's ADAP */
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

/* ---- the class term: sum m * BCE(sigmoid(s), sigmoid(t)) as one op ---- */

typedef struct {
  float *g;
} BceSaved;

static void bce_backward(KdCtx *c, KdNode *node) {
  BceSaved *sv = node->saved;
  KdTensor *s = node->in[0];
  float *gs = kd_grad(c, s);
  if (!gs) return;
  const float go = node->out->grad[0];
  for (size_t i = 0; i < s->numel; i++) gs[i] += go * sv->g[i];
}

/* s, t: N, C, H, W logits; m: N, 1, H, W (constant). */
static KdTensor *masked_prob_bce(KdCtx *c, KdTensor *s, KdTensor *t, const KdTensor *m) {
  if (kd_ctx_failed(c)) return NULL;
  const int N = s->shape[0], C = s->shape[1];
  const size_t HW = (size_t)s->shape[2] * s->shape[3];
  int one = 1;
  KdTensor *y = kd_tensor_new(c, 1, &one);
  float *g = kd_ctx_grad_enabled(c) && s->requires_grad ? kd_ctx_alloc(c, s->numel * sizeof *g) : NULL;
  if (!y || (kd_ctx_grad_enabled(c) && s->requires_grad && !g)) return NULL;
  double sum = 0.0;
  for (int n = 0; n < N; n++)
    for (int k = 0; k < C; k++)
      for (size_t i = 0; i < HW; i++) {
        size_t e = ((size_t)n * C + k) * HW + i;
        double w = m->data[(size_t)n * HW + i];
        /* float probabilities, as torch's sigmoid in float32 */
        float p = kd_sigmoidf(s->data[e]), q = kd_sigmoidf(t->data[e]);
        double lp = p > 0.0f ? fmax(log((double)p), -100.0) : -100.0;
        double lq = p < 1.0f ? fmax(log1p(-(double)p), -100.0) : -100.0;
        sum += -w * (q * lp + (1.0 - q) * lq);
        if (g) {
          double d = (double)p * (1.0 - (double)p);
          g[e] = (float)(w * ((double)p - q) / fmax(d, 1e-12) * d);
        }
      }
  y->data[0] = (float)sum;
  BceSaved *sv = kd_record(c, "frs_prob_bce", y, &s, 1, bce_backward, sizeof *sv);
  if (sv) sv->g = g;
  return y;
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  Frs *f = inst->state;
  const FrsParams *p = inst->params;
  KdCtx *c = in->c;
  KdTensor *const *sc = kd_side_out(&in->s, "cls"), *const *tc = kd_side_out(&in->t, "cls");
  if (!sc || !tc) {
    kd_ctx_fail(c, "frs: needs the class logits \"cls\" of both sides");
    return -1;
  }
  const float ramp = p->warm > 0.0f && (float)in->step < p->warm ? (float)in->step / p->warm : 1.0f;
  KdTensor *feat = NULL, *cls = NULL;
  for (int k = 0; k < in->npairs && k < f->nlev; k++) {
    const KdLevelPair *lp = &in->pairs[k];
    KdTensor *s = sc[lp->s], *t = tc[lp->t];
    char a[64], b[64];
    if (!s || !t || !kd_tensor_same_shape(s, t) || s->ndim != 4) {
      kd_ctx_fail(c, "frs: level %s: student cls %s and teacher cls %s must be of one shape N,C,H,W", lp->name,
                  s ? kd_tensor_shape_str(s, a, sizeof a) : "none", t ? kd_tensor_shape_str(t, b, sizeof b) : "none");
      return -1;
    }
    double msum;
    KdTensor *m = kd_mask_richness(c, t, &msum);
    if (!m) return -1;
    kd_distill_mask(out, "frs.richness", lp->s, m);
    const float inv = msum > 0.0 ? (float)(1.0 / msum) : 0.0f;
    KdTensor *d = kd_sub(c, in->t.feat[lp->t], kd_conv_fwd(c, &f->adap[k], in->s.feat[lp->s]));
    KdTensor *fl = kd_scale(c, kd_sum_all(c, kd_mul(c, kd_square(c, d), m)), inv);
    KdTensor *cl = kd_scale(c, masked_prob_bce(c, s, t, m), inv);
    feat = feat ? kd_add(c, feat, fl) : fl;
    cls = cls ? kd_add(c, cls, cl) : cl;
  }
  kd_distill_part(out, "feat", kd_scale(c, feat, p->feat * ramp));
  kd_distill_part(out, "cls", kd_scale(c, cls, p->cls * ramp));
  kd_distill_stat(out, "ramp", ramp);
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_frs = {
    .name = "frs",
    .label = "FRS",
    .help = "Feature-richness score distillation (Du et al., NeurIPS 2021): feature MSE through a 3x3 adapter and "
            "probability BCE on the class logits, both weighted by the teacher's max class probability per location",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(FrsParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_FEAT | KD_NEED_LOGITS,
};
