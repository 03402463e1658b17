/* Safetensors files: checkpoints of a parameter store, and named float
 * arrays for tools (`kdscope loss` reads tensors by name).
 *
 * Format: 8-byte little-endian header length, a JSON header mapping each
 * name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into
 * the data that follows the header) plus an optional "__metadata__"
 * string->string map, then the raw little-endian data.
 *
 * We write F32 only, with contiguous offsets in the given order, the
 * header padded with spaces to a multiple of 8 bytes (as the reference
 * writer does, so the data is aligned), to `<path>.tmp`, fsynced, then
 * renamed over `<path>`: a crash leaves the old file or the new one.
 * We read F32, F16, BF16 and F64 (converted to float). Every header is
 * validated before use; a corrupt file yields an error naming the file,
 * never a crash. */
#ifndef KD_SAFETENSORS_H
#define KD_SAFETENSORS_H

#include <stddef.h>

#include "core/error.h"
#include "core/params.h"

/* ---- checkpoints of a parameter store ---- */

/* Writes every tensor of the store (trainable and buffers) as F32.
 * meta_kv: NULL-terminated key, value, key, value, ..., NULL list or NULL. */
int kd_safetensors_save(const char *path, const KdParams *p, const char *const *meta_kv, KdError *err);
/* Fills every tensor of the store from the file. First checks everything
 * and reports all problems in one message: names the file lacks, names the
 * store lacks (only when strict), shape mismatches (both shapes) and dtypes
 * that are not floats; then nothing is modified. A scalar in the file
 * matches a one-element tensor. */
int kd_safetensors_load(const char *path, KdParams *p, int strict, KdError *err);

/* ---- reading any file ---- */

typedef struct KdSafetensors KdSafetensors;

/* Reads and validates the header; the data is read on demand. */
KdSafetensors *kd_safetensors_open(const char *path, KdError *err);
void kd_safetensors_close(KdSafetensors *st);
int kd_safetensors_count(const KdSafetensors *st);
/* Tensors are numbered in header order. */
const char *kd_safetensors_name(const KdSafetensors *st, int i);
/* Index of a name, or -1. */
int kd_safetensors_find(const KdSafetensors *st, const char *name);
/* shape[4], ndim (0 for a scalar). Returns -1 when i is out of range or the
 * tensor has more than 4 dims (*ndim is still set then). */
int kd_safetensors_shape(const KdSafetensors *st, int i, int *shape, int *ndim);
/* "F32", "F16", ... as written in the file. */
const char *kd_safetensors_dtype(const KdSafetensors *st, int i);
size_t kd_safetensors_numel(const KdSafetensors *st, int i);
/* Reads the named tensor converted to float; n must equal its element count. */
int kd_safetensors_read_f32(KdSafetensors *st, const char *name, float *dst, size_t n, KdError *err);
/* A "__metadata__" value, or NULL. */
const char *kd_safetensors_meta(const KdSafetensors *st, const char *key);

/* ---- writing named float arrays ---- */

/* n tensors; ndims[i] in 0..4 (0 = scalar, one value); shapes[i][d] >= 1
 * for d < ndims[i]. Names must be unique and not "__metadata__". */
int kd_safetensors_write(const char *path, int n, const char *const *names, const float *const *data, const int *ndims,
                         const int (*shapes)[4], const char *const *meta_kv, KdError *err);

#endif
