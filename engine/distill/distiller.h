/* The set of distillation methods of a run. A method gets its learnable
 * parts (and the optimizer slots for them) the first time it is listed in
 * "distill.methods", at open or by a live change; it keeps them when it
 * leaves the list, so listing it again goes on where it stopped. Only the
 * listed methods compute a loss. The config is read when a setting changed
 * (kd_distiller_configure), never by key during a step. */
#ifndef KD_DISTILLER_H
#define KD_DISTILLER_H

#include "distill/method.h"

typedef struct KdDistiller KdDistiller;

/* No method yet: kd_distiller_configure() creates the listed ones. */
KdDistiller *kd_distiller_new(const KdDistillShapes *sh, uint64_t seed, KdError *err);
void kd_distiller_free(KdDistiller *d);
/* Reads "distill.methods" (parsed here, not per step) and the settings of
 * every listed method into its params struct; creates the learnable parts
 * of a method listed for the first time. Call it at open and after a
 * setting changed (kd_config_serial). A bad list changes nothing. */
int kd_distiller_configure(KdDistiller *d, const KdConfig *cfg, KdError *err);
/* Creates the learnable parts of a method now (resume: every method whose
 * parts a checkpoint holds, in the checkpoint's order). */
int kd_distiller_ensure(KdDistiller *d, const char *method, KdError *err);
/* Methods listed at the last configure. */
int kd_distiller_active(const KdDistiller *d);
/* 1 when a method listed at the last configure reads the teacher's
 * forward under the settings then (KD_NEED_TEACHER_FWD). */
int kd_distiller_reads_teacher(const KdDistiller *d);
/* Learnable parts of the created methods ("distill.<method>...."). The
 * store grows when a method is created (core/params.h). */
KdParams *kd_distiller_params(KdDistiller *d);
/* Parses a methods list ("defeat,fgd"); unknown names are an error naming
 * them and the known ones. active: [kd_method_count()] flags. */
int kd_distill_parse_methods(const char *list, int *active, KdError *err);

/* At least the registry's size (registry.c checks): every method can be active at once. */
#define KD_DISTILL_MAX_OUT 24
/* Builds the losses of the listed methods. outs [KD_DISTILL_MAX_OUT]
 * receive each method's output; methods[i] names it. *total is their sum
 * (a zero scalar when none is listed). */
int kd_distiller_loss(KdDistiller *d, const KdDistillInputs *in, KdTensor **total, KdDistillOut *outs,
                      const KdMethod **methods, int *nout, KdError *err);

#endif
