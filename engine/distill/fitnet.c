/* FitNet-style feature imitation (Romero et al., ICLR 2015) as the HEAD
 * repository's RetinaNet baseline applies it to detectors: per FPN level a
 * trainable 1x1 conv adapter (bias, PyTorch default init) on the student,
 *   L = weight * sum_l mean_{n,c,h,w} (Adapt(S_l) - T_l)^2.
 * With fitnet.mask=frs the mean is weighted by FRS's richness mask m (the
 * teacher's max class probability per cell; masks.h):
 *   L = weight * sum_l sum m (Adapt(S_l) - T_l)^2 / (C sum_{n,h,w} m),
 * which is the plain mean when m is constant ("where" from FRS, "how far"
 * from FitNet). */
#include <stdio.h>
#include <stdlib.h>

#include "core/ops.h"
#include <string.h>

#include "distill/gapmaps.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "model/layers.h"

typedef struct {
  int nlev;
  KdConv adapt[KD_DISTILL_MAX_LEVELS];
} FitNet;

typedef struct {
  float weight;
  int mask;
} FitNetParams;

static const char *const mask_choices[] = {"none", "frs", NULL};
enum { MASK_NONE, MASK_FRS }; /* the order of mask_choices */

#define F(field, ...) KD_METHOD_FLOAT(FitNetParams, "fitnet", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "FitNet weight", 1.0, 0.0, 100.0, 0, NULL,
      "Weight of the feature MSE, summed over levels (HEAD's fitnet_retina uses 1.0)"),
    KD_METHOD_ENUM(FitNetParams, "fitnet", mask, NULL, "FitNet mask", "none", mask_choices,
                   "Where to imitate: none (every cell alike) or frs (each cell weighted by the teacher's max class "
                   "probability, FRS's feature-richness mask; needs the class logits of both sides)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  FitNet *f = calloc(1, sizeof *f);
  if (!f) return kd_error(err, "out of memory");
  inst->state = f;
  f->nlev = sh->nlev;
  return kd_distill_adapters_add(f->adapt, sh->nlev, store, "distill.fitnet.adapt", sh->s_channels, sh->t_channels, 1,
                                 err);
}

static void init_weights(KdMethodInst *inst, KdRng *r) {
  FitNet *f = inst->state;
  kd_distill_adapters_init(f->adapt, f->nlev, r); /* PyTorch's default Conv2d init */
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  FitNet *f = inst->state;
  const FitNetParams *p = inst->params;
  KdCtx *c = in->c;
  const float w = p->weight;
  KdTensor *const *tc = p->mask == MASK_FRS ? kd_side_out(&in->t, "cls") : NULL;
  if (p->mask == MASK_FRS && !tc) {
    kd_ctx_fail(c, "fitnet: fitnet.mask=frs needs the teacher's class logits \"cls\"");
    return -1;
  }
  KdTensor *sum = NULL;
  for (int k = 0; k < in->npairs && k < f->nlev; k++) {
    const KdLevelPair *p = &in->pairs[k];
    KdTensor *a = kd_conv_fwd(c, &f->adapt[k], in->s.feat[p->s]), *m = NULL, *d;
    float coef = a ? w / (float)a->numel : 0.0f; /* the mean's 1/(N*C*H*W), then the weight */
    if (tc) {
      double msum = 0.0;
      m = kd_mask_richness(c, tc[p->t], &msum);
      if (!m) return -1;
      kd_distill_mask(out, "fitnet.frs", p->s, m);
      float inv = msum > 0.0 && a ? (float)(1.0 / ((double)a->shape[1] * msum)) : 0.0f;
      coef = w * inv;
      d = kd_scale(c, kd_sum_all(c, kd_mul(c, kd_square(c, kd_sub(c, a, in->t.feat[p->t])), m)), inv);
    } else {
      d = kd_mean_all(c, kd_square(c, kd_sub(c, a, in->t.feat[p->t])));
    }
    sum = sum ? kd_add(c, sum, d) : d;
    if (in->maps && a)
      kd_distill_gap(out, p->s, kd_gapmap_sqdist(c, a, in->t.feat[p->t], NULL, m ? &m : NULL, m ? 1 : 0, &coef));
  }
  kd_distill_part(out, "feat", kd_scale(c, sum, w));
  return kd_distill_finish(c, out);
}

static unsigned needs_now(const KdConfig *cfg) {
  return strcmp(kd_config_str(cfg, "fitnet.mask"), "frs") ? 0u : KD_NEED_LOGITS;
}

const KdMethod kd_method_fitnet = {
    .name = "fitnet",
    .label = "FitNet",
    .help = "Feature MSE through a 1x1 adapter per FPN level (FitNets; HEAD's RetinaNet baseline)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(FitNetParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_FEAT,
    .needs_now = needs_now,
    .gap_label = "after adapter",
    .gap_parts = "feat",
};
