/* CWD — channel-wise distillation for dense prediction (Shu et al., ICCV
 * 2021), as mmrazor's ChannelWiseDivergence defines it (KD-METHODS §7):
 * each channel of a level's map becomes a distribution over its H*W
 * positions, P = softmax_hw(X[n,c] / tau), and
 *   L = weight * sum_l tau^2 * sum_{n,c} KL(P_T || P_S) / (N * C).
 * No learnable parts; shapes must match (no resize). */
#include <stdio.h>

#include "core/ops.h"
#include "distill/gapmaps.h"
#include "distill/method.h"
#include "distill/norms.h"

typedef struct {
  float weight, tau;
} CwdParams;

#define F(field, ...) KD_METHOD_FLOAT(CwdParams, "cwd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "CWD weight", 10.0, 0.0, 100.0, 0, NULL,
      "Weight of each level's tau^2 * sum KL / (N*C), summed over levels (mmrazor's FPN configs for RetinaNet "
      "and Faster R-CNN use 10 on every level)"),
    F(tau, "τ", "CWD temperature", 1.0, 0.1, 20.0, 1, "1,1.5,2,3,5,7",
      "Temperature of the spatial softmax of each channel; the loss is scaled by tau^2 (mmrazor: 1)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const CwdParams *p = inst->params;
  KdCtx *c = in->c;
  const float w = p->weight, tau = p->tau;
  for (int k = 0; k < in->npairs; k++) {
    const char *lv = in->pairs[k].name;
    KdTensor *s = in->s.feat[in->pairs[k].s], *t = in->t.feat[in->pairs[k].t];
    if (!s || !t) {
      kd_ctx_fail(c, "cwd: level %s: no %s features", lv, s ? "teacher" : "student");
      return -1;
    }
    if (!kd_tensor_same_shape(s, t) || s->ndim != 4) {
      char ss[64], st[64];
      kd_ctx_fail(c, "cwd: level %s: student %s and teacher %s must be equal N,C,H,W shapes", lv,
                  kd_tensor_shape_str(s, ss, sizeof ss), kd_tensor_shape_str(t, st, sizeof st));
      return -1;
    }
    int rows[3] = {s->shape[0], s->shape[1], s->shape[2] * s->shape[3]};
    /* per (n, c): KL of the spatial softmaxes (kd_norm_spatial_softmax) */
    KdTensor *kl = kd_dist_kl_logits(c, kd_reshape(c, t, 3, rows), kd_reshape(c, s, 3, rows), 2, tau);
    float norm = (float)s->shape[0] * (float)s->shape[1];
    kd_distill_part(out, lv, kd_scale(c, kd_sum_all(c, kl), w * tau * tau / norm));
    if (in->maps) kd_distill_gap(out, in->pairs[k].s, kd_gapmap_kl_spatial(c, t, s, tau, w * tau * tau / norm));
  }
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_cwd = {
    .name = "cwd",
    .label = "CWD",
    .help = "Channel-wise KD: KL between per-channel spatial softmaxes of FPN maps (Shu et al., ICCV 2021; mmrazor)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(CwdParams),
    .loss = loss,
    .needs = KD_NEED_FEAT | KD_NEED_SAME_WIDTH,
    .gap_label = "channel softmax over space, KL",
};
