/* TF-HEAD — HEAD's teacher-free variant (Wang et al., ECCV 2022). No
 * official code exists (the README says "coming soon") and KD-METHODS
 * §5.3 has no formulas; this is the seed's description, every choice
 * beyond it [INFERRED] (docs/METHODS-HEAD.md): N assistants (setting
 * tfhead.assistants, 1..TF_MAX), Fast R-CNN RoI heads on the student's
 * FPN over the student's own sampled proposals (as HEAD's, assist.h),
 * each trained against the GT and each distilling its detached RoI
 * feature into the student's cls-tower pixels as HEAD's CKD does:
 *   assist.cls, assist.box = a * sum_i (CE_i, smooth-L1_i)
 *   ckd = w_kd(t) * sum_i MSE_mean(Lin_i(tower pixel), detach(fc2_i))   (GT boxes left out)
 * One RoI sample for every assistant [INFERRED]; the assistants share an
 * architecture (a TwoMLPHead of TF_REP, the teacher-frcnn preset's) and
 * differ in their random init [INFERRED: the paper speaks of
 * heterogeneous heads without saying which]. Every assistant exists
 * from the start so tfhead.assistants can change live. Runs with any
 * teacher (it is never read: alone, the teacher's forward is skipped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "distill/assist.h"
#include "distill/method.h"

#define TF_MAX 3
#define TF_REP 256

typedef struct {
  float weight, assist_weight, kd_weight;
  int assistants, warmup_steps, pre_nms_top_n, post_nms_top_n;
  float nms_thresh;
} TfParams;

#define F(field, ...) KD_METHOD_FLOAT(TfParams, "tfhead", field, __VA_ARGS__)
#define I(field, ...) KD_SETTING_INT(TfParams, "tfhead", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "TF-HEAD weight", 1.0, 0.0, 100.0, 1, "1,2,5", "Overall weight of every TF-HEAD part"),
    F(assist_weight, "λ_a", "Assistant GT weight", 1.0, 0.0, 100.0, 1, "1,2,5",
      "Weight of each assistant's Fast R-CNN losses on the sampled RoIs (1 as HEAD's assistant) [INFERRED]"),
    F(kd_weight, "λ_kd", "Assistant-to-student weight", 2.0, 0.0, 100.0, 1, "1,2,5",
      "Weight of each assistant's CKD-style MSE between the adapted student cls-tower pixel and the assistant's "
      "detached fc2 (HEAD's CKD weight 2) [INFERRED]"),
    I(assistants, "N", "Assistants", 2, 1, TF_MAX, NULL, 1,
      "Number of assistant RoI heads trained on the GT, each distilling into the student [INFERRED: the paper's "
      "count is not given; 2 is the smallest 'several']"),
    KD_ASSIST_PARAMS(TfParams, "tfhead"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

typedef struct {
  KdRoiHead *a[TF_MAX];
  KdLinear ad[TF_MAX];
  KdLevels levels;
  int built;     /* 0: the student's levels suit no RoI head (why) */
  char why[160];
} Tf;

/* The assistants' config: torchvision's RoI head with the teacher-frcnn
 * preset's sampler and width, mapped onto the student's levels as HEAD's
 * assistant from that preset is (112 px at level 4 of a P2.. list). */
static void assist_cfg(const KdDistillShapes *sh, KdRoiHeadCfg *rc, KdLevels *lv) {
  kd_roi_head_cfg_default(rc);
  rc->num_classes = sh->num_classes;
  rc->representation = TF_REP;
  rc->batch_per_image = 128;
  rc->pool.canonical_scale = 112.0f;
  rc->pool.canonical_level = 4;
  KdLevels s = {0};
  if (sh->student) s = *kd_model_levels(sh->student);
  else
    for (int l = 0; l < sh->nlev; l++) kd_levels_add(&s, sh->strides[l]);
  kd_assist_levels(&s, 4, 4, rc, lv);
}

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Tf *t = calloc(1, sizeof *t);
  if (!t) return kd_error(err, "out of memory");
  inst->state = t;
  KdRoiHeadCfg rc;
  assist_cfg(sh, &rc, &t->levels);
  KdError lerr;
  if (t->levels.n == 0 || kd_roi_pool_check_strides(t->levels.stride, t->levels.n, &lerr)) {
    snprintf(t->why, sizeof t->why, "the student's levels suit no RoI head (%.100s)", t->levels.n ? lerr.msg : "none");
    return 0;
  }
  t->built = 1;
  for (int i = 0; i < TF_MAX; i++) {
    char pre[64], name[64];
    snprintf(pre, sizeof pre, "distill.tfhead.assist_%d", i);
    snprintf(name, sizeof name, "distill.tfhead.ckd_%d", i);
    if (!(t->a[i] = kd_roi_head_new_at(&rc, sh->s_channels, &t->levels, store, pre, err)))
      return kd_error_prefix(err, "tfhead: assistant %d: ", i);
    if (kd_linear_add(&t->ad[i], store, name, sh->s_channels, TF_REP))
      return kd_error(err, "tfhead: cannot register %s", name);
  }
  return 0;
}

static void init_weights(KdMethodInst *inst, KdRng *r) {
  Tf *t = inst->state;
  for (int i = 0; t->built && i < TF_MAX; i++) kd_roi_head_init(t->a[i], r), kd_linear_init(&t->ad[i], r);
}

static void destroy(KdMethodInst *inst) {
  Tf *t = inst->state;
  for (int i = 0; t && i < TF_MAX; i++) kd_roi_head_free(t->a[i]);
  free(t);
}

static KdTensor *acc(KdCtx *c, KdTensor *sum, KdTensor *x) { return sum ? kd_add(c, sum, x) : x; }

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const TfParams *p = inst->params;
  Tf *t = inst->state;
  KdCtx *c = in->c;
  KdError err = {0};
  if (in->roi_in)
    return kd_ctx_fail(c, "tfhead has no RoI-level form: its assistants run inside the step (HEAD's roi.* inputs give "
                          "the CKD formula it shares)"), -1;
  if (!t->built) return kd_ctx_fail(c, "tfhead: %s", t->why), -1;
  KdAssistStep st;
  if (kd_assist_step(in, "tfhead", p->warmup_steps, p->pre_nms_top_n, p->post_nms_top_n, p->nms_thresh, t->a[0], &st))
    return -1;
  const KdAssistRois *r = &st.r;
  const float wa = p->weight * p->assist_weight, wk = p->weight * p->kd_weight * st.warm;
  KdTensor *pix = wk > 0.0f || in->maps ? kd_assist_pixels(c, st.tower, in->s.levels->n, r, st.rows) : NULL;
  if (kd_ctx_failed(c)) return -1;
  /* The probe's table: CKD per RoI, one gap column per assistant. */
  KdTensor *tb = in->maps && pix ? kd_assist_table(c, r) : NULL;
  if (kd_ctx_failed(c)) return -1;
  KdTensor *scls = NULL, *sbox = NULL, *skd = NULL;
  for (int i = 0; i < p->assistants && i < TF_MAX; i++) {
    KdTensor *cls = NULL, *box = NULL, *fc[2] = {0}, *lc, *lb;
    if (r->s.nrois > 0 && kd_roi_head_forward_fc(t->a[i], c, in->s.feat, r->s.rois, r->s.nrois, &cls, &box, NULL, fc, &err))
      return kd_ctx_fail(c, "tfhead: assistant %d: %s", i, err.msg), -1;
    if (kd_roi_head_loss(t->a[i], c, cls, box, &r->s, &lc, &lb, &err)) return kd_ctx_fail(c, "tfhead: %s", err.msg), -1;
    scls = acc(c, scls, lc), sbox = acc(c, sbox, lb);
    if (!pix) continue;
    KdTensor *target = kd_detach(c, kd_assist_rows(c, fc[1], st.rows, r->npix));
    if (tb && i < KD_ASSIST_GAPS && kd_assist_table_gaps(c, tb, i, &t->ad[i], pix, target, st.rows)) return -1;
    if (wk <= 0.0f) continue;
    KdTensor *kd = kd_assist_mse(c, &t->ad[i], pix, target);
    if (!kd) return -1;
    skd = acc(c, skd, kd);
  }
  kd_distill_table(out, "rois", tb, 1);
  KdTensor *zero = kd_tensor_zeros(c, 1, (int[]){1});
  kd_distill_part(out, "assist.cls", kd_scale(c, scls, wa));
  kd_distill_part(out, "assist.box", kd_scale(c, sbox, wa));
  kd_distill_part(out, "ckd", skd ? kd_scale(c, skd, wk) : zero);
  kd_distill_stat(out, "rois", r->s.nrois);
  kd_distill_stat(out, "pos_rois", r->s.num_pos);
  kd_distill_stat(out, "warmup", st.warm);
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_tfhead = {
    .name = "tfhead",
    .label = "TF-HEAD",
    .help = "TF-HEAD (Wang et al., ECCV 2022), teacher-free HEAD: assistant RoI heads on the RetinaNet student's FPN "
            "trained on the GT, their RoI features distilled into the student's cls-tower pixels [INFERRED: no "
            "official code, docs/METHODS-HEAD.md]",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(TfParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_GT | KD_NEED_ASSIGN,
};
