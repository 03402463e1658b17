/* Named parameter store: parameters, their gradients and non-trainable
 * buffers (BN running statistics) live in a few contiguous blocks with
 * named views, so the optimizer, clipping and checkpoints see flat arrays.
 *
 * Use: kd_params_add() every tensor while building a model, then
 * kd_params_finalize() allocates the blocks (zeroed) and the tensors'
 * data/grad pointers become valid. Names are copied. A finalized store may
 * take more tensors (a distillation method listed mid-run): add them and
 * finalize again; the blocks grow, values and grads stay, and every
 * tensor's data/grad pointers move (the KdTensor handles stay). */
#ifndef KD_PARAMS_H
#define KD_PARAMS_H

#include <stddef.h>

#include "core/error.h"
#include "core/tensor.h"

typedef struct KdParams KdParams;

typedef enum { KD_PARAM_TRAIN = 0, KD_PARAM_BUFFER = 1 } KdParamKind;

KdParams *kd_params_new(void);
void kd_params_free(KdParams *p);
/* Returns a tensor whose data is valid after the next finalize. NULL when
 * the name is taken or the shape is bad. */
KdTensor *kd_params_add(KdParams *p, const char *name, int ndim, const int *shape, KdParamKind kind);
/* Gives storage (zeroed) to the tensors added since the last call. */
int kd_params_finalize(KdParams *p, KdError *err);
int kd_params_count(const KdParams *p);
KdTensor *kd_params_at(const KdParams *p, int i);
KdParamKind kd_params_kind(const KdParams *p, int i);
KdTensor *kd_params_find(const KdParams *p, const char *name);
/* Flat blocks: trainable values and their grads (same order), buffers. */
float *kd_params_values(const KdParams *p, size_t *count);
float *kd_params_grads(const KdParams *p, size_t *count);
float *kd_params_buffers(const KdParams *p, size_t *count);
void kd_params_zero_grad(KdParams *p);
/* Trainable elements (the count a model summary prints). */
size_t kd_params_numel(const KdParams *p);
/* Turns gradient tracking of every trainable tensor on or off (frozen
 * teacher, frozen backbone). */
void kd_params_set_requires_grad(KdParams *p, int on);
/* Copies values by name from src where names and shapes agree; returns the
 * number of tensors copied (for init_from_teacher). prefix filters names. */
int kd_params_copy_matching(KdParams *dst, const KdParams *src, const char *prefix);

#endif
