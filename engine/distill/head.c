/* HEAD — HEtero-Assists Distillation (Wang et al., ECCV 2022), a two-stage
 * teacher into a one-stage student, as LutingWang/HEAD computes it
 * (KD-METHODS §5, §10b). The student's RetinaNet head proposes RoIs
 * (max class logit as objectness, RPN post-processing) that are sampled
 * with the GT boxes (assist.h); an assistant RoI head of the teacher's
 * architecture, initialised from the teacher's RoI head, runs on the
 * student's FPN over them and trains against the GT:
 *   assist.cls, assist.box = a * (CE, smooth-L1)      (fastrcnn_loss)
 *   akd.fc1 = w_akd(t) * MSE_mean(Lin_1(fc1_assist), fc1_teacher)
 *   akd.fc2 = w_akd(t) * MSE_mean(Lin_2(fc2_assist), fc2_teacher)
 *   ckd     = w_ckd(t) * MSE_mean(Lin_c(tower pixel), fc2_teacher)  (GT boxes left out)
 * fc1/fc2: the box head's two Linear outputs before their ReLU, the
 * teacher's from its RoI head on the same RoIs over its own features (no
 * gradient); tower pixel: the student's cls-tower last feature (after
 * ReLU) at the anchor the RoI came from; w(t) = w * min(t / warm-up, 1).
 * Every part times head.weight. The assistant and adapters live in the
 * distillation store ("distill.head."), not in the student's detector. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "distill/assist.h"
#include "distill/method.h"

#define HEAD_PREFIX "distill.head.assist"

typedef struct {
  float weight, assist_weight, akd_weight, ckd_weight;
  int warmup_steps, pre_nms_top_n, post_nms_top_n;
  float nms_thresh;
} HeadParams;

#define F(field, ...) KD_METHOD_FLOAT(HeadParams, "head", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "w", "HEAD weight", 1.0, 0.0, 100.0, 1, "1,2,5", "Overall weight of every HEAD part"),
    F(assist_weight, "λ_a", "Assistant GT weight", 1.0, 0.0, 100.0, 1, "1,2,5",
      "Weight of the assistant's own Fast R-CNN losses (CE + smooth-L1 on the sampled RoIs): 1, mmdet's default"),
    F(akd_weight, "λ_akd", "AKD weight", 2.0, 0.0, 100.0, 1, "1,2,5",
      "Weight of each AKD term, MSE of the adapted assistant fc1/fc2 against the teacher's on the same RoIs "
      "(HEAD's config: 2)"),
    F(ckd_weight, "λ_ckd", "CKD weight", 2.0, 0.0, 100.0, 1, "1,2,5",
      "Weight of CKD, MSE of the adapted student cls-tower pixel at each RoI's anchor against the teacher's fc2 "
      "(HEAD's config: 2; 0 is HEAD without CKD)"),
    KD_ASSIST_PARAMS(HeadParams, "head"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

typedef struct {
  KdRoiHead *assist; /* NULL: the run has no two-stage teacher (why) */
  KdLevels levels;   /* the student levels the assistant pools from */
  KdLinear akd[2], ckd;
  const KdModel *teacher;
  KdParams *store; /* where the assistant lives (init_weights copies into it) */
  int has_adapters;
  int copied; /* teacher tensors copied into the assistant */
  char why[200];
} Head;

/* AKD's Linear D -> D on fc1 and fc2, CKD's C (tower) -> D. */
static int adapters(Head *h, KdParams *store, int D, int C, KdError *err) {
  if (kd_linear_add(&h->akd[0], store, "distill.head.akd.fc1", D, D) ||
      kd_linear_add(&h->akd[1], store, "distill.head.akd.fc2", D, D) || kd_linear_add(&h->ckd, store, "distill.head.ckd", C, D))
    return kd_error(err, "head: cannot register the adapters");
  h->has_adapters = 1;
  return 0;
}

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Head *h = calloc(1, sizeof *h);
  if (!h) return kd_error(err, "out of memory");
  inst->state = h;
  if (!sh->teacher || !sh->student) {
    snprintf(h->why, sizeof h->why, "needs a teacher and a student model, or the RoI-level tensors (roi.*)");
    /* RoI-level tensors (`kdscope loss`): the adapters alone. */
    return sh->roi_channels > 0 ? adapters(h, store, sh->roi_channels, sh->s_channels, err) : 0;
  }
  KdHeadInfo ti;
  kd_model_head_info(sh->teacher, &ti);
  const KdModelCfg *tc = kd_model_cfg(sh->teacher);
  int t_first, t_n = kd_assist_teacher_levels(kd_model_levels(sh->teacher), &t_first);
  if (!(ti.provides & KD_HEAD_HAS_ROIS) || !t_n) {
    snprintf(h->why, sizeof h->why, "needs a two-stage teacher (an RoI head), the teacher is %s",
             kd_model_head_kind(sh->teacher)->label);
    return 0;
  }
  if (tc->head.num_classes != sh->num_classes) {
    snprintf(h->why, sizeof h->why, "the teacher has %d classes, the student %d", tc->head.num_classes, sh->num_classes);
    return 0;
  }
  KdRoiHeadCfg rc = tc->head.roi;
  rc.num_classes = tc->head.num_classes;
  kd_assist_levels(kd_model_levels(sh->student), t_first, t_n, &rc, &h->levels);
  if (!(h->assist = kd_roi_head_new_at(&rc, sh->s_channels, &h->levels, store, HEAD_PREFIX, err)))
    return kd_error_prefix(err, "head: the assistant: ");
  h->teacher = sh->teacher, h->store = store;
  return adapters(h, store, rc.representation, sh->s_channels, err);
}

static void init_weights(KdMethodInst *inst, KdRng *r) {
  Head *h = inst->state;
  if (!h->assist) {
    for (int i = 0; h->has_adapters && i < 3; i++) kd_linear_init(i < 2 ? &h->akd[i] : &h->ckd, r);
    return;
  }
  /* The draws of a fresh head first, so the adapters' draws do not depend
   * on how much of the teacher's head fits. */
  kd_roi_head_init(h->assist, r);
  kd_linear_init(&h->akd[0], r);
  kd_linear_init(&h->akd[1], r);
  kd_linear_init(&h->ckd, r);
  /* kd_model_params has no const form; the teacher is only read. */
  h->copied = kd_assist_copy(h->store, HEAD_PREFIX, kd_model_params((KdModel *)h->teacher));
}

static void destroy(KdMethodInst *inst) {
  Head *h = inst->state;
  if (h) kd_roi_head_free(h->assist);
  free(h);
}

/* A weighted zero part: the parts of a batch without RoIs or pixels. */
static KdTensor *zero(KdCtx *c) { return kd_tensor_zeros(c, 1, (int[]){1}); }

static KdTensor *weighted(KdCtx *c, KdTensor *x, float w) { return x ? kd_scale(c, x, w) : zero(c); }

/* The teacher's RoI head on the sampled RoIs over its own features, no
 * gradient: its fc1, fc2 before ReLU into t[2]. */
static int teacher_fc(const KdDistillInputs *in, const KdAssistRois *r, KdTensor **t, KdError *err) {
  KdHeadOut o;
  int g = kd_ctx_set_grad(in->c, 0);
  int rc = kd_distill_teacher_rois(in, in->t.feat, r->s.rois, r->s.nrois, &o, err);
  kd_ctx_set_grad(in->c, g);
  if (rc) return -1;
  if (!o.rois.fc[0] || !o.rois.fc[1]) return kd_error(err, "the teacher's RoI head gave no fc1/fc2");
  t[0] = o.rois.fc[0], t[1] = o.rois.fc[1];
  return 0;
}

/* AKD and CKD from the RoI-level tensors, whichever way they came: fa, ft
 * the assistant's and the teacher's fc1, fc2 (R,D); pix the student's
 * tower rows of the RoIs rows[m] (NULL: none). Fills akd[2], ckd (NULL
 * when its weight is 0). */
static int kd_terms(KdCtx *c, Head *h, float wk, float wc, KdTensor *const *fa, KdTensor *const *ft, KdTensor *pix,
                    const int *rows, int m, KdTensor **akd, KdTensor **ckd) {
  for (int i = 0; i < 2 && wk > 0.0f; i++)
    if (!(akd[i] = kd_assist_mse(c, &h->akd[i], fa[i], ft[i]))) return -1;
  if (pix && wc > 0.0f && !(*ckd = kd_assist_mse(c, &h->ckd, pix, kd_assist_rows(c, ft[1], rows, m)))) return -1;
  return 0;
}

/* The probe's table of the sampled RoIs: columns AKD fc1, AKD fc2 and CKD
 * (each RoI's unweighted MSE term; CKD NaN for GT boxes). */
static int roi_table(KdCtx *c, Head *h, const KdAssistRois *r, KdTensor *const *fa, KdTensor *const *ft, KdTensor *pix,
                     const int *rows, KdDistillOut *out) {
  KdTensor *tb = kd_assist_table(c, r);
  if (!tb) return kd_ctx_failed(c) ? -1 : 0;
  for (int i = 0; i < 2; i++)
    if (kd_assist_table_gaps(c, tb, i, &h->akd[i], fa[i], ft[i], NULL)) return -1;
  if (pix && kd_assist_table_gaps(c, tb, 2, &h->ckd, pix, kd_assist_rows(c, ft[1], rows, r->npix), rows)) return -1;
  kd_distill_table(out, "rois", tb, 1);
  return 0;
}

static int finish(KdCtx *c, KdDistillOut *out, KdTensor *const *gt_loss, float wa, KdTensor *const *akd, float wk,
                  KdTensor *ckd, float wc) {
  kd_distill_part(out, "assist.cls", weighted(c, gt_loss[0], wa));
  kd_distill_part(out, "assist.box", weighted(c, gt_loss[1], wa));
  kd_distill_part(out, "akd.fc1", weighted(c, akd[0], wk));
  kd_distill_part(out, "akd.fc2", weighted(c, akd[1], wk));
  kd_distill_part(out, "ckd", weighted(c, ckd, wc));
  return kd_distill_finish(c, out);
}

/* `kdscope loss`: the RoI-level tensors as given; no assistant GT loss. */
static int loss_given(const HeadParams *p, Head *h, const KdDistillInputs *in, KdDistillOut *out) {
  KdCtx *c = in->c;
  const KdDistillRoiIn *ri = in->roi_in;
  if (!h->has_adapters) return kd_ctx_fail(c, "head: no adapters for the RoI-level tensors"), -1;
  const float warm = kd_assist_warmup(in->step, p->warmup_steps);
  const float wk = p->weight * p->akd_weight * warm, wc = p->weight * p->ckd_weight * warm;
  int *rows = kd_ctx_alloc(c, (size_t)(ri->nrois + 1) * sizeof *rows), m = 0;
  if (!rows) return kd_ctx_fail(c, "head: out of memory"), -1;
  for (int r = 0; r < ri->nrois; r++)
    if (!ri->gt[r]) rows[m++] = r;
  KdTensor *pix = m ? kd_assist_rows(c, ri->tower, rows, m) : NULL, *akd[2] = {0}, *ckd = NULL, *none[2] = {0};
  if (kd_terms(c, h, wk, wc, ri->assist_fc, ri->teacher_fc, pix, rows, m, akd, &ckd)) return -1;
  kd_distill_stat(out, "rois", ri->nrois);
  kd_distill_stat(out, "warmup", warm);
  return finish(c, out, none, 0.0f, akd, wk, ckd, wc);
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const HeadParams *p = inst->params;
  Head *h = inst->state;
  KdCtx *c = in->c;
  KdError err = {0};
  if (in->roi_in) return loss_given(p, h, in, out);
  if (!h->assist) return kd_ctx_fail(c, "head: %s", h->why), -1;
  KdAssistStep st;
  if (kd_assist_step(in, "head", p->warmup_steps, p->pre_nms_top_n, p->post_nms_top_n, p->nms_thresh, h->assist, &st))
    return -1;
  const KdAssistRois *r = &st.r;
  const float wa = p->weight * p->assist_weight, wk = p->weight * p->akd_weight * st.warm,
              wc = p->weight * p->ckd_weight * st.warm;
  KdTensor *cls = NULL, *box = NULL, *fc[2] = {0}, *gl[2], *akd[2] = {0}, *ckd = NULL;
  if (r->s.nrois > 0 && kd_roi_head_forward_fc(h->assist, c, in->s.feat, r->s.rois, r->s.nrois, &cls, &box, NULL, fc, &err))
    return kd_ctx_fail(c, "head: the assistant: %s", err.msg), -1;
  if (kd_roi_head_loss(h->assist, c, cls, box, &r->s, &gl[0], &gl[1], &err)) return kd_ctx_fail(c, "head: %s", err.msg), -1;
  /* The probe asks for the per-RoI gaps even while the warm-up holds the weights at 0. */
  if (r->s.nrois > 0 && (wk > 0.0f || wc > 0.0f || in->maps)) {
    KdTensor *t[2];
    if (teacher_fc(in, r, t, &err)) return kd_ctx_fail(c, "head: the teacher: %s", err.msg), -1;
    KdTensor *pix = wc > 0.0f || in->maps ? kd_assist_pixels(c, st.tower, in->s.levels->n, r, st.rows) : NULL;
    if (kd_ctx_failed(c) || kd_terms(c, h, wk, wc, fc, t, wc > 0.0f ? pix : NULL, st.rows, r->npix, akd, &ckd)) return -1;
    if (in->maps && roi_table(c, h, r, fc, t, pix, st.rows, out)) return -1;
  }
  kd_distill_stat(out, "rois", r->s.nrois);
  kd_distill_stat(out, "pos_rois", r->s.num_pos);
  kd_distill_stat(out, "proposals", r->nprops);
  kd_distill_stat(out, "warmup", st.warm);
  return finish(c, out, gl, wa, akd, wk, ckd, wc);
}

const KdMethod kd_method_head = {
    .name = "head",
    .label = "HEAD",
    .help = "HEAD (Wang et al., ECCV 2022): a two-stage teacher into a RetinaNet student through an assistant RoI head "
            "on the student's FPN over the student's own proposals (assistant GT loss, AKD, CKD)",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(HeadParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_GT | KD_NEED_ASSIGN | KD_NEED_TEACHER_RUN | KD_NEED_ROIS,
};
