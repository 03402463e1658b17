/* The two sides as methods see them: a side from a forward, the stride
 * pairing, the teacher-run hooks. No method's loss, no needs checks. */
#include <stdio.h>
#include <string.h>

#include "core/tensor.h"
#include "distill/side.h"

void kd_distill_side_from(KdDistillSide *side, KdModel *model, const KdDetOut *o, const KdDenseAssign *assign) {
  memset(side, 0, sizeof *side);
  side->levels = o->levels;
  side->model = model;
  side->channels = model ? kd_model_channels(model) : (o->feat[0] ? o->feat[0]->shape[1] : 0);
  for (int l = 0; l < o->nlev && l < KD_DISTILL_MAX_LEVELS; l++) side->feat[l] = o->feat[l];
  side->nout = o->head.nout < KD_HEAD_MAX_OUT ? o->head.nout : KD_HEAD_MAX_OUT;
  for (int i = 0; i < side->nout; i++) {
    side->out[i].name = o->head.names[i];
    memcpy(side->out[i].lv, o->head.lv[i], sizeof side->out[i].lv);
  }
  side->assign = assign;
  side->props = o->head.rois.props.n > 0 && o->head.rois.props.boxes ? &o->head.rois.props : NULL;
}

void kd_distill_pair(KdDistillInputs *in) {
  in->npairs = 0;
  if (!in->s.levels || !in->t.levels) return;
  for (int l = 0; l < in->s.levels->n && in->npairs < KD_DISTILL_MAX_LEVELS; l++) {
    int k = kd_levels_find(in->t.levels, in->s.levels->stride[l]);
    if (k >= 0)
      in->pairs[in->npairs++] = (KdLevelPair){in->s.levels->stride[l], l, k, in->s.levels->name[l]};
  }
}

void kd_distill_same_levels(KdDistillInputs *in, const KdLevels *lv) {
  in->s.levels = in->t.levels = lv;
  kd_distill_pair(in);
}

void kd_distill_shapes(KdDistillShapes *sh, const KdModel *student, const KdModel *teacher) {
  const KdLevels *s = kd_model_levels(student), *t = kd_model_levels(teacher);
  KdHeadInfo hi;
  kd_model_head_info(student, &hi);
  memset(sh, 0, sizeof *sh);
  for (int l = 0; l < s->n; l++)
    if (kd_levels_find(t, s->stride[l]) >= 0) sh->strides[sh->nlev++] = s->stride[l];
  sh->t_channels = kd_model_channels(teacher), sh->s_channels = kd_model_channels(student);
  sh->num_classes = hi.K, sh->num_anchors = hi.A;
  sh->student = student, sh->teacher = teacher;
}

KdTensor *const *kd_side_out(const KdDistillSide *s, const char *name) {
  for (int i = 0; i < s->nout; i++)
    if (s->out[i].name && !strcmp(s->out[i].name, name)) return s->out[i].lv;
  return NULL;
}

int kd_distill_teacher_head(const KdDistillInputs *in, KdTensor *const *feat, KdDetOut *out) {
  if (!in->t.model) {
    kd_ctx_fail(in->c, "no teacher model to run (the teacher came as tensors)");
    return -1;
  }
  return kd_model_head_forward(in->t.model, in->c, feat, out);
}

int kd_distill_teacher_rois(const KdDistillInputs *in, KdTensor *const *feat, const float *rois, int nrois, KdHeadOut *out,
                            KdError *err) {
  if (!in->t.model) return kd_error(err, "no teacher model to run (the teacher came as tensors)");
  return kd_model_roi_forward(in->t.model, in->c, feat, rois, nrois, out, err);
}

/* Dense logits of one layout on both sides, every student level paired,
 * and the assignment over the same anchors (the needs KD_NEED_LOGITS |
 * KD_NEED_ASSIGN). */
int kd_distill_dense_levels(const KdDistillInputs *in, const char *method, int *off) {
  KdCtx *c = in->c;
  const KdDenseAssign *as = in->s.assign;
  if (!as || !as->target_cls) {
    kd_ctx_fail(c, "%s: no anchor assignment (target_cls) given", method);
    return -1;
  }
  KdTensor *const *sc = kd_side_out(&in->s, "cls"), *const *tc = kd_side_out(&in->t, "cls");
  const int A = as->A, K = as->K;
  off[0] = 0;
  if (in->npairs != in->s.levels->n) {
    kd_ctx_fail(c, "%s: %d of the student's %d levels have a teacher level of their stride", method, in->npairs, in->s.levels->n);
    return -1;
  }
  for (int l = 0; l < in->npairs; l++) {
    const char *lv = in->pairs[l].name;
    KdTensor *s = sc ? sc[in->pairs[l].s] : NULL, *t = tc ? tc[in->pairs[l].t] : NULL;
    char ss[64], st[64];
    if (!s || !t) {
      kd_ctx_fail(c, "%s: level %s: no %s class logits", method, lv, s ? "teacher" : "student");
      return -1;
    }
    if (!kd_tensor_same_shape(s, t) || s->ndim != 4 || s->shape[1] != A * K || s->shape[0] != in->n) {
      kd_ctx_fail(c, "%s: level %s: student %s and teacher %s must both be %d,%d,H,W (A=%d anchors x K=%d classes)", method,
                  lv, kd_tensor_shape_str(s, ss, sizeof ss), kd_tensor_shape_str(t, st, sizeof st), in->n,
                  A * K, A, K);
      return -1;
    }
    off[l + 1] = off[l] + s->shape[2] * s->shape[3] * A;
  }
  if (off[in->npairs] != as->A_total) {
    kd_ctx_fail(c, "%s: the levels hold %d anchors per image but the assignment has %d", method, off[in->npairs], as->A_total);
    return -1;
  }
  return 0;
}
