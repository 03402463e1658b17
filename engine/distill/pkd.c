/* PKD — feature distillation with the Pearson correlation coefficient
 * (Cao et al., NeurIPS 2022), as mmrazor's PKDLoss defines it
 * (KD-METHODS §3): per FPN level both maps are standardised per channel
 * over batch and space (unbiased std, eps 1e-6), then
 *   L = weight * sum_l 1/2 * mean_{n,c,h,w} (Z_S - Z_T)^2,
 * which equals weight * sum_l (m-1)/m * mean_c (1 - r_c) up to eps, r_c the
 * correlation of channel c over the m = N*H*W samples. No learnable parts.
 *
 * Levels: mmrazor's configs distil 4 of RetinaNet's 5 neck levels (P3..P6);
 * the point is to skip the coarsest, P7, which our presets do not have, so
 * every level we are given is distilled. Shapes: mmrazor bilinearly resizes
 * the student when heights differ; teacher and student here share strides
 * and FPN width, so a shape mismatch is an error (no resize). */
#include <stdio.h>

#include "core/ops.h"
#include "distill/method.h"
#include "distill/norms.h"

#define PKD_EPS 1e-6f

static const char *const level_names[KD_DISTILL_MAX_LEVELS] = {"P3", "P4", "P5", "P6", "P7"};

typedef struct {
  float weight;
} PkdParams;

#define F(field, ...) KD_METHOD_FLOAT(PkdParams, "pkd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "PKD weight", 10.0, 0.0, 100.0, 0,
      "Weight of each level's 1/2 * mean (Z_S - Z_T)^2, summed over levels (mmrazor's RetinaNet X101->R50 "
      "PKD config uses 10; its Faster R-CNN configs 6)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const PkdParams *p = inst->params;
  KdCtx *c = in->c;
  const float w = p->weight;
  for (int l = 0; l < in->nlev && l < KD_DISTILL_MAX_LEVELS; l++) {
    KdTensor *s = in->s_feat[l], *t = in->t_feat[l];
    if (!s || !t) {
      kd_ctx_fail(c, "pkd: level %s: no %s features", level_names[l], s ? "teacher" : "student");
      return -1;
    }
    if (!kd_tensor_same_shape(s, t)) {
      char ss[64], st[64];
      kd_ctx_fail(c, "pkd: level %s: student %s and teacher %s differ; PKD needs equal shapes (no resize)",
                  level_names[l], kd_tensor_shape_str(s, ss, sizeof ss), kd_tensor_shape_str(t, st, sizeof st));
      return -1;
    }
    KdTensor *d = kd_mean_all(c, kd_square(c, kd_sub(c, kd_norm_pearson(c, s, PKD_EPS), kd_norm_pearson(c, t, PKD_EPS))));
    kd_distill_part(out, level_names[l], kd_scale(c, d, 0.5f * w));
  }
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_pkd = {
    .name = "pkd",
    .label = "PKD",
    .help = "Pearson-correlation feature KD: per-channel standardised FPN maps, MSE (Cao et al., NeurIPS 2022; mmrazor)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(PkdParams),
    .loss = loss,
};
