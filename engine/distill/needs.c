/* What a run gives the methods; refusing one whose needs it cannot meet.
 * No method names here: each declares its needs (KdMethod.needs). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/distiller.h"
#include "distill/side.h"

static const char *const need_names[KD_NEED_COUNT] = {
    "the neck features of both sides on levels of one stride",
    "neck features of one width on both sides",
    "dense class logits of one layout on both sides, on every student level",
    "dense box outputs of one layout on both sides",
    "the ground-truth boxes",
    "the student's dense anchor assignment",
    "a teacher model to run (its head on given features)",
    "the teacher's proposals (RoIs)",
    "an RoI head on the student (a two-stage student)",
    "box-side distributions of one layout on both sides (GFL heads)",
    "a student model to run (its head and loss on other features)",
};

const char *kd_distill_need_name(unsigned bit) {
  for (int i = 0; i < KD_NEED_COUNT; i++)
    if (bit == 1u << i) return need_names[i];
  return "?";
}

void kd_distill_avail_lack(KdDistillAvail *a, unsigned bit, const char *fmt, ...) {
  for (int i = 0; i < KD_NEED_COUNT; i++) {
    if (bit != 1u << i) continue;
    a->have &= ~bit;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->why[i], sizeof a->why[i], fmt, ap);
    va_end(ap);
  }
}

/* Dense outputs compare anchor by anchor: the same shapes on both sides. */
static int same_anchors(const KdAnchorCfg *x, const KdAnchorCfg *y) {
  if (x->size_mult != y->size_mult || x->nscales != y->nscales || x->nratios != y->nratios) return 0;
  for (int i = 0; i < x->nscales; i++)
    if (x->scales[i] != y->scales[i]) return 0;
  for (int i = 0; i < x->nratios; i++)
    if (x->ratios[i] != y->ratios[i]) return 0;
  return 1;
}

void kd_distill_avail_models(KdDistillAvail *a, const KdModel *student, const KdModel *teacher) {
  memset(a, 0, sizeof *a);
  a->have = (1u << KD_NEED_COUNT) - 1;
  const KdLevels *sl = kd_model_levels(student), *tl = kd_model_levels(teacher);
  KdHeadInfo si, ti;
  kd_model_head_info(student, &si);
  kd_model_head_info(teacher, &ti);
  const char *sk = kd_model_head_kind(student)->label, *tk = kd_model_head_kind(teacher)->label;
  int paired = 0;
  for (int l = 0; l < sl->n; l++) paired += kd_levels_find(tl, sl->stride[l]) >= 0;
  if (!paired) kd_distill_avail_lack(a, KD_NEED_FEAT, "no teacher level has the stride of a student level");
  if (kd_model_channels(student) != kd_model_channels(teacher))
    kd_distill_avail_lack(a, KD_NEED_SAME_WIDTH, "the teacher's neck is %d wide, the student's %d", kd_model_channels(teacher),
                          kd_model_channels(student));
  for (int k = 0; k < 2; k++) {
    unsigned need = k ? KD_NEED_BOXES : KD_NEED_LOGITS, has = k ? KD_HEAD_HAS_BOXES : KD_HEAD_HAS_LOGITS;
    if (!(ti.provides & has)) kd_distill_avail_lack(a, need, "the teacher's %s head has none", tk);
    else if (!(si.provides & has)) kd_distill_avail_lack(a, need, "the student's %s head has none", sk);
    else if (ti.A != si.A || (!k && ti.K != si.K))
      kd_distill_avail_lack(a, need, "the teacher has %d anchors x %d classes per location, the student %d x %d", ti.A, ti.K,
                            si.A, si.K);
    else if (paired < sl->n) kd_distill_avail_lack(a, need, "only %d of the student's %d levels have a teacher level of their stride",
                                                   paired, sl->n);
    else if (!same_anchors(&kd_model_cfg(teacher)->head.anchors, &kd_model_cfg(student)->head.anchors))
      kd_distill_avail_lack(a, need, "the teacher's anchors are %g x stride, the student's %g x stride, or their scales or ratios differ "
                            "(set anchor.size_mult alike)", kd_model_cfg(teacher)->head.anchors.size_mult,
                            kd_model_cfg(student)->head.anchors.size_mult);
  }
  if (!(si.provides & KD_HEAD_HAS_ASSIGN)) kd_distill_avail_lack(a, KD_NEED_ASSIGN, "the student's %s head has none", sk);
  if (!(ti.provides & KD_HEAD_HAS_ROIS)) kd_distill_avail_lack(a, KD_NEED_ROIS, "the teacher's %s head makes none", tk);
  if (!(si.provides & KD_HEAD_HAS_ROIS)) kd_distill_avail_lack(a, KD_NEED_STUDENT_ROIS, "the student's %s head has none", sk);
  if (!(ti.provides & KD_HEAD_HAS_DIST)) kd_distill_avail_lack(a, KD_NEED_DIST, "the teacher's %s head has none", tk);
  else if (!(si.provides & KD_HEAD_HAS_DIST)) kd_distill_avail_lack(a, KD_NEED_DIST, "the student's %s head has none", sk);
  else if (ti.reg_max != si.reg_max)
    kd_distill_avail_lack(a, KD_NEED_DIST, "the teacher's sides have %d bins, the student's %d (set gfl.reg_max alike)", ti.reg_max + 1,
                          si.reg_max + 1);
}

int kd_distill_check(const KdConfig *cfg, const char *methods, const KdDistillAvail *a, KdError *err) {
  int n = kd_method_count();
  int *active = calloc((size_t)(n > 0 ? n : 1), sizeof *active);
  if (!active) return kd_error(err, "out of memory");
  int rc = kd_distill_parse_methods(methods, active, err);
  for (int i = 0; !rc && i < n; i++) {
    if (!active[i]) continue;
    const KdMethod *m = kd_method_at(i);
    unsigned miss = kd_method_needs(m, cfg) & ~a->have;
    for (int b = 0; miss && b < KD_NEED_COUNT; b++)
      if (miss & (1u << b)) {
        rc = kd_error(err, "distill.methods: method %s needs %s, which this run does not have%s%s", m->name, need_names[b],
                      a->why[b][0] ? ": " : "", a->why[b]);
        break;
      }
  }
  free(active);
  return rc;
}
