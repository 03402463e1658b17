/* Global-knowledge distillation's run state (gk.c; Tang et al., ECCV 2022):
 * the prototypes PGM (pgm.h) found per FPN level and class, kept as
 * buffers of the distillation store so that checkpoints save them, a
 * resume restores them bit for bit and every rank of a data-parallel run
 * holds the same. Per paired level l:
 *
 *   distill.gk.proto_t.<l>  [K * KD_GK_MAX_PROTOS, C_t]  teacher prototypes,
 *   distill.gk.proto_s.<l>  [K * KD_GK_MAX_PROTOS, C_s]  student prototypes,
 *                           class k's in rows k*MAX .. k*MAX + count - 1;
 *   distill.gk.count.<l>    [K]  prototypes of each class (0: none);
 *   distill.gk.epoch        [1]  the epoch they were made at (-1: never).
 *
 * Prototypes are un-normalised pooled neck features of real instances;
 * a teacher row and the student row of the same index are one instance. */
#ifndef KD_DISTILL_GK_H
#define KD_DISTILL_GK_H

#include "core/error.h"
#include "core/params.h"

#define KD_GK_MAX_PROTOS 32

typedef struct KdGkLevel {
  int K, ct, cs;
  float *pt, *ps, *count; /* views into the store (they move when the store grows) */
} KdGkLevel;

/* Level l's prototypes in store; -1 when the store has no gk state or no level l. */
int kd_gk_level(const KdParams *store, int l, KdGkLevel *out);
/* The generation epoch buffer, NULL when gk has no state in store. */
float *kd_gk_epoch(const KdParams *store);
/* Replaces level l's prototypes by m rows (pt: m x C_t, ps: m x C_s,
 * labels[m] in [0, K)), a class's rows in their order; more than
 * KD_GK_MAX_PROTOS rows of one class, a bad label or a missing level is
 * an error naming it. */
int kd_gk_set_level(const KdParams *store, int l, const float *pt, const float *ps, const int *labels, int m,
                    KdError *err);

/* The pooled feature of a box at one level as the released code crops it
 * (KD-METHODS 4.2): the box clipped to the img_w x img_h input, rows
 * int(y1/s) .. int(y2/s) and columns int(x1/s) .. int(x2/s), both ends
 * included, clipped to the h x w map. Fills r0, r1, c0, c1. */
void kd_gk_crop(const float *box, int stride, int img_h, int img_w, int h, int w, int *r0, int *r1, int *c0, int *c1);

#endif
