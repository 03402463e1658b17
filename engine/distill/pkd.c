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
#include "distill/gapmaps.h"
#include "distill/method.h"
#include "distill/norms.h"

#define PKD_EPS 1e-6f

typedef struct {
  float weight;
} PkdParams;

#define F(field, ...) KD_METHOD_FLOAT(PkdParams, "pkd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "PKD weight", 10.0, 0.0, 100.0, 0, NULL,
      "Weight of each level's 1/2 * mean (Z_S - Z_T)^2, summed over levels (mmrazor's RetinaNet X101->R50 "
      "PKD config uses 10; its Faster R-CNN configs 6)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const PkdParams *p = inst->params;
  KdCtx *c = in->c;
  const float w = p->weight;
  for (int k = 0; k < in->npairs; k++) {
    const char *lv = in->pairs[k].name;
    KdTensor *s = in->s.feat[in->pairs[k].s], *t = in->t.feat[in->pairs[k].t];
    if (!s || !t) {
      kd_ctx_fail(c, "pkd: level %s: no %s features", lv, s ? "teacher" : "student");
      return -1;
    }
    if (!kd_tensor_same_shape(s, t)) {
      char ss[64], st[64];
      kd_ctx_fail(c, "pkd: level %s: student %s and teacher %s differ; PKD needs equal shapes (no resize)",
                  lv, kd_tensor_shape_str(s, ss, sizeof ss), kd_tensor_shape_str(t, st, sizeof st));
      return -1;
    }
    KdTensor *zs = kd_norm_pearson(c, s, PKD_EPS), *zt = kd_norm_pearson(c, t, PKD_EPS);
    KdTensor *d = kd_mean_all(c, kd_square(c, kd_sub(c, zs, zt)));
    kd_distill_part(out, lv, kd_scale(c, d, 0.5f * w));
    if (in->maps && zs) {
      const float coef = 0.5f * w / (float)zs->numel;
      kd_distill_gap(out, in->pairs[k].s, kd_gapmap_sqdist(c, zs, zt, NULL, NULL, 0, &coef));
    }
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
    .needs = KD_NEED_FEAT | KD_NEED_SAME_WIDTH,
    .gap_label = "per-channel standardised",
};
