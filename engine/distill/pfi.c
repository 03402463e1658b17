/* PFI — prediction-guided feature imitation (Li et al., AAAI 2022, the
 * paper of RM), as OpenMMLab mmrazor's third-party port computes it
 * (PredictionGuidedFeatureImitation; KD-METHODS-2 §C.3); the authors
 * released no code. Per paired level l, on the raw class logits (all
 * A*K channels) and the neck features (no adapter):
 *   P_l = mean_c (z_s - z_t)^2,   F_l = mean_c (S_l - T_l)^2     (N,1,H,W)
 *   L = weight * mean_l mean_{n,h,w} P_l * F_l
 * Neither factor is detached (mmrazor): the logits learn where the
 * features differ as the features learn where the predictions differ.
 * pfi.detach_pred makes P a constant. Levels are averaged, not summed. */
#include <stdio.h>

#include "core/ops.h"
#include "distill/method.h"

typedef struct {
  float weight;
  int detach_pred;
} PfiParams;

#define F(field, ...) KD_METHOD_FLOAT(PfiParams, "pfi", field, __VA_ARGS__)
#define B(field, ...) KD_METHOD_BOOL(PfiParams, "pfi", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "PFI weight", 1.5, 0.0, 20.0, 0, "step 0.1",
      "Weight of mean over levels of mean_{n,h,w} [mean_c (z_s - z_t)^2 * mean_c (S - T)^2] (mmrazor's RetinaNet "
      "R101->R50 config: 1.5, tuned on 5 levels; the paper's value [UNVERIFIED])"),
    B(detach_pred, NULL, "Detach prediction factor", 0,
      "Treat the logit-difference factor P as a constant, so that only the features learn; off: neither factor "
      "detached, as mmrazor's port (whether the paper detaches P is [UNVERIFIED])"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

/* mean over channels of (a - b)^2: N,C,H,W -> N,1,H,W */
static KdTensor *chan_msd(KdCtx *c, KdTensor *a, KdTensor *b) { return kd_mean(c, kd_square(c, kd_sub(c, a, b)), 1u << 1); }

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const PfiParams *p = inst->params;
  KdCtx *c = in->c;
  KdTensor *const *sc = kd_side_out(&in->s, "cls"), *const *tc = kd_side_out(&in->t, "cls");
  if (in->s.channels && in->t.channels && in->s.channels != in->t.channels) {
    kd_ctx_fail(c, "pfi: the student's neck is %d wide and the teacher's %d; PFI compares them channel by channel "
                "(no adapter) and needs one width", in->s.channels, in->t.channels);
    return -1;
  }
  const float coef = p->weight / (float)in->npairs;
  for (int k = 0; k < in->npairs; k++) {
    const char *lv = in->pairs[k].name;
    KdTensor *s = in->s.feat[in->pairs[k].s], *t = in->t.feat[in->pairs[k].t];
    KdTensor *zs = sc ? sc[in->pairs[k].s] : NULL, *zt = tc ? tc[in->pairs[k].t] : NULL;
    char a[64], b[64], f[64];
    if (!s || !t) {
      kd_ctx_fail(c, "pfi: level %s: no %s features", lv, s ? "teacher" : "student");
      return -1;
    }
    if (!zs || !zt) {
      kd_ctx_fail(c, "pfi: level %s: no %s class logits", lv, zs ? "teacher" : "student");
      return -1;
    }
    if (!kd_tensor_same_shape(s, t)) {
      kd_ctx_fail(c, "pfi: level %s: student features %s and teacher %s differ; PFI needs one shape (no adapter)", lv,
                  kd_tensor_shape_str(s, a, sizeof a), kd_tensor_shape_str(t, b, sizeof b));
      return -1;
    }
    if (!kd_tensor_same_shape(zs, zt) || zs->ndim != 4 || zs->shape[0] != s->shape[0] || zs->shape[2] != s->shape[2] ||
        zs->shape[3] != s->shape[3]) {
      kd_ctx_fail(c, "pfi: level %s: student logits %s and teacher %s must be one shape N,A*K,H,W with the features' "
                  "N, H, W (%s)", lv, kd_tensor_shape_str(zs, a, sizeof a), kd_tensor_shape_str(zt, b, sizeof b),
                  kd_tensor_shape_str(s, f, sizeof f));
      return -1;
    }
    KdTensor *P = chan_msd(c, zs, zt), *Fm = chan_msd(c, s, t);
    if (p->detach_pred) P = kd_detach(c, P);
    KdTensor *pf = kd_mul(c, P, Fm);
    kd_distill_part(out, lv, kd_scale(c, kd_mean_all(c, pf), coef));
    if (in->maps && pf) kd_distill_gap(out, in->pairs[k].s, kd_detach(c, kd_scale(c, pf, coef / (float)pf->numel)));
  }
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_pfi = {
    .name = "pfi",
    .label = "PFI",
    .help = "Prediction-guided feature imitation: the neck-feature gap weighted per cell by the class-logit gap, "
            "neither detached (Li et al., AAAI 2022) as mmrazor's third-party port computes it, not the authors' code",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(PfiParams),
    .loss = loss,
    .needs = KD_NEED_FEAT | KD_NEED_SAME_WIDTH | KD_NEED_LOGITS,
    .gap_label = "feature gap x logit gap",
};
