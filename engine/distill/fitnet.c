/* FitNet-style feature imitation (Romero et al., ICLR 2015) as the HEAD
 * repository's RetinaNet baseline applies it to detectors: per FPN level a
 * trainable 1x1 conv adapter (bias, PyTorch default init) on the student,
 *   L = weight * sum_l mean_{n,c,h,w} (Adapt(S_l) - T_l)^2.
 * With fitnet.mask=<m> the mean is weighted by a "where to imitate" mask
 * m of another method (masks.h, pgdmask.h):
 *   L = weight * sum_l sum m (Adapt(S_l) - T_l)^2 / (C sum_{n,h,w} m),
 * which is the plain mean when m is constant ("where" from that method,
 * "how far" from FitNet): frs (FRS's richness: the teacher's max class
 * probability), gt (DeFeat's binary GT mask, boxes on the level of their
 * scale), fgd-scale (FGD's foreground scale mask, 1/area of the boxes), pgd
 * (PGD's prediction-guided cls mask of a GFL teacher). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ops.h"
#include <string.h>

#include "distill/gapmaps.h"
#include "distill/masks.h"
#include "distill/method.h"
#include "distill/pgdmask.h"
#include "model/layers.h"

typedef struct {
  int nlev;
  KdConv adapt[KD_DISTILL_MAX_LEVELS];
} FitNet;

typedef struct {
  float weight;
  int mask;
  float finest_scale, pgd_xi, pgd_topk;
} FitNetParams;

static const char *const mask_choices[] = {"none", "frs", "gt", "fgd-scale", "pgd", NULL};
enum { MASK_NONE, MASK_FRS, MASK_GT, MASK_FGD, MASK_PGD }; /* the order of mask_choices */
/* The mask's name in the probes ("fitnet.<this>"). */
static const char *const mask_names[] = {NULL, "fitnet.frs", "fitnet.gt", "fitnet.fgd_scale", "fitnet.pgd"};

#define F(field, ...) KD_METHOD_FLOAT(FitNetParams, "fitnet", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "FitNet weight", 1.0, 0.0, 100.0, 0, NULL,
      "Weight of the feature MSE, summed over levels (HEAD's fitnet_retina uses 1.0)"),
    KD_METHOD_ENUM(FitNetParams, "fitnet", mask, NULL, "FitNet mask", "none", mask_choices,
                   "Where to imitate: none (every cell alike); frs (each cell weighted by the teacher's max class "
                   "probability, FRS's feature-richness mask; needs the class logits of both sides); gt (DeFeat's "
                   "binary mask of the GT boxes drawn on the level of their scale, fitnet.finest_scale); fgd-scale "
                   "(FGD's foreground mask, 1/area of the box over its cells); pgd (PGD's prediction-guided mask: "
                   "a Gaussian over the teacher's top-k anchors per GT by score^(1-xi) IoU^xi; GFL teacher)"),
    F(finest_scale, "s_0", "FitNet GT-mask finest scale", 56.0, 1.0, 1024.0, 1, "step 1",
      "fitnet.mask=gt: a box of scale sqrt(wh) goes to level floor(log2(scale / this)), clamped (DeFeat's rule, as "
      "defeat.finest_scale; 56 for COCO)"),
    F(pgd_xi, "ξ", "FitNet PGD-mask IoU share", 0.8, 0.0, 1.0, 0, "step 0.05",
      "fitnet.mask=pgd: quality score^(1 - xi) IoU^xi of the teacher's predictions (PGD's cls mask: 0.8)"),
    F(pgd_topk, "k", "FitNet PGD-mask top-k", 9, 1, 32, 0, "step 1",
      "fitnet.mask=pgd: anchors per GT box whose centres the Gaussian is fitted to (PGD: 9)"),
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

/* The mask of pair k (N,1,H,W, no gradient), or NULL with the ctx error. */
static KdTensor *level_mask(const KdDistillInputs *in, const FitNetParams *p, int k, KdTensor *const *tc,
                            KdTensor *const *pgd, const KdTensor *a) {
  KdCtx *c = in->c;
  const KdLevelPair *lp = &in->pairs[k];
  KdMaskGrid g = {a->shape[0], a->shape[2], a->shape[3], lp->stride};
  KdTensor *m = NULL, *bg;
  double msum;
  switch (p->mask) {
  case MASK_FRS: m = kd_mask_richness(c, tc[lp->t], &msum); break;
  case MASK_GT: m = kd_mask_defeat(c, in->gt, g, k, in->npairs, p->finest_scale); break;
  case MASK_FGD:
    if (kd_mask_fgd(c, in->gt, g, NULL, &m, &bg)) m = NULL;
    break;
  case MASK_PGD: m = pgd[k]; break;
  }
  if (m && m->numel != (size_t)g.n * g.h * g.w) {
    kd_ctx_fail(c, "fitnet: level %s: the %s mask is not N,1,H,W of the features (%d,1,%d,%d)", lp->name,
                mask_choices[p->mask], g.n, g.h, g.w);
    return NULL;
  }
  return m;
}

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
  if ((p->mask == MASK_GT || p->mask == MASK_FGD) && !in->gt) {
    kd_ctx_fail(c, "fitnet: fitnet.mask=%s needs the ground truth", mask_choices[p->mask]);
    return -1;
  }
  KdTensor *pgd[KD_DISTILL_MAX_LEVELS] = {0};
  if (p->mask == MASK_PGD && kd_pgd_masks(in, "fitnet", p->pgd_xi, p->pgd_xi, (int)lrintf(p->pgd_topk), pgd, NULL, NULL))
    return -1;
  KdTensor *sum = NULL;
  for (int k = 0; k < in->npairs && k < f->nlev; k++) {
    const KdLevelPair *lp = &in->pairs[k];
    KdTensor *a = kd_conv_fwd(c, &f->adapt[k], in->s.feat[lp->s]), *m = NULL, *d;
    if (!a) return -1;
    float coef = w / (float)a->numel; /* the mean's 1/(N*C*H*W), then the weight */
    if (p->mask != MASK_NONE) {
      if (!(m = level_mask(in, p, k, tc, pgd, a))) return -1;
      double msum = 0.0;
      for (size_t i = 0; i < m->numel; i++) msum += m->data[i];
      kd_distill_mask(out, mask_names[p->mask], lp->s, m);
      float inv = msum > 0.0 ? (float)(1.0 / ((double)a->shape[1] * msum)) : 0.0f;
      coef = w * inv;
      d = kd_scale(c, kd_sum_all(c, kd_mul(c, kd_square(c, kd_sub(c, a, in->t.feat[lp->t])), m)), inv);
    } else {
      d = kd_mean_all(c, kd_square(c, kd_sub(c, a, in->t.feat[lp->t])));
    }
    sum = sum ? kd_add(c, sum, d) : d;
    if (in->maps)
      kd_distill_gap(out, lp->s, kd_gapmap_sqdist(c, a, in->t.feat[lp->t], NULL, m ? &m : NULL, m ? 1 : 0, &coef));
  }
  kd_distill_part(out, "feat", kd_scale(c, sum, w));
  return kd_distill_finish(c, out);
}

static unsigned needs_now(const KdConfig *cfg) {
  const char *m = kd_config_str(cfg, "fitnet.mask");
  if (!strcmp(m, "frs")) return KD_NEED_LOGITS;
  if (!strcmp(m, "gt") || !strcmp(m, "fgd-scale")) return KD_NEED_GT;
  if (!strcmp(m, "pgd")) return KD_NEED_LOGITS | KD_NEED_DIST | KD_NEED_GT;
  return 0u;
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
