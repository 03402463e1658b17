/* A checkpoint spanning several parameter stores (the student and its
 * learnable distillation parts travel in one safetensors file). */
#ifndef KD_CHECKPOINT_H
#define KD_CHECKPOINT_H

#include "core/error.h"
#include "core/params.h"

int kd_checkpoint_save(const char *path, KdParams *const *stores, int nstores, const char *const *meta_kv, KdError *err);
/* Every tensor of every store must be in the file (all problems reported
 * at once); with strict, the file may hold nothing else. */
int kd_checkpoint_load(const char *path, KdParams *const *stores, int nstores, int strict, KdError *err);

#endif
