/* The set of distillation methods of a run. Every registered method gets
 * an instance (and its learnable parts) up front, so switching or adding
 * methods mid-run ("distill.methods" is a live setting) needs no new
 * optimizer slots; only the active ones compute a loss. */
#ifndef KD_DISTILLER_H
#define KD_DISTILLER_H

#include "distill/method.h"

typedef struct KdDistiller KdDistiller;

KdDistiller *kd_distiller_new(const KdDistillShapes *sh, uint64_t seed, KdError *err);
void kd_distiller_free(KdDistiller *d);
/* Learnable parts of every method ("distill.<method>....") */
KdParams *kd_distiller_params(KdDistiller *d);
/* Parses a methods list ("defeat,fgd"); unknown names are an error naming
 * them and the known ones. active: [kd_method_count()] flags. */
int kd_distill_parse_methods(const char *list, int *active, KdError *err);

#define KD_DISTILL_MAX_OUT 8
/* Builds the losses of the active methods (cfg "distill.methods"). outs
 * [KD_DISTILL_MAX_OUT] receive each method's output; methods[i] names it.
 * *total is their sum (a zero scalar when none is active). */
int kd_distiller_loss(KdDistiller *d, const KdDistillInputs *in, KdTensor **total, KdDistillOut *outs,
                      const KdMethod **methods, int *nout, KdError *err);

#endif
