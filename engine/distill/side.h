/* Building what methods see: a side from a model's forward, the
 * stride-pairing table between the two sides, and what a pair of models
 * (or a file of tensors) can give the methods' needs. */
#ifndef KD_DISTILL_SIDE_H
#define KD_DISTILL_SIDE_H

#include "distill/method.h"

/* A side from a model's forward (features, head outputs by name) and,
 * when known, its dense assignment. model may be NULL. */
void kd_distill_side_from(KdDistillSide *side, KdModel *model, const KdDetOut *o, const KdDenseAssign *assign);
/* Pairs every student level with the teacher level of the same stride
 * (in->s.levels, in->t.levels); student levels without one are left out. */
void kd_distill_pair(KdDistillInputs *in);
/* Both sides on one level table, paired (sides given as tensors of one
 * layout: files, tests). */
void kd_distill_same_levels(KdDistillInputs *in, const KdLevels *lv);
/* The learnable parts' shapes of a student/teacher pair (paired levels). */
void kd_distill_shapes(KdDistillShapes *sh, const KdModel *student, const KdModel *teacher);

/* What a run can give: KD_NEED_* bits, and for each one it cannot, why. */
typedef struct KdDistillAvail {
  unsigned have;
  char why[KD_NEED_COUNT][200];
} KdDistillAvail;

/* A training run of student distilled from teacher. */
void kd_distill_avail_models(KdDistillAvail *a, const KdModel *student, const KdModel *teacher);
/* Marks bit as missing with a reason (printf-style). */
void kd_distill_avail_lack(KdDistillAvail *a, unsigned bit, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* What a KD_NEED_* bit means, for messages ("the class logits of both sides"). */
const char *kd_distill_need_name(unsigned bit);
/* Refuses (-1, err) when a method of the list `methods` needs what a
 * lacks, naming the method and the input: the check at open and on a live
 * set (cfg gives the settings the needs may depend on). */
int kd_distill_check(const KdConfig *cfg, const char *methods, const KdDistillAvail *a, KdError *err);

#endif
