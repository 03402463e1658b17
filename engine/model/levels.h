/* The level table a detector carries: for each output level of its neck,
 * in order, the stride in input pixels and the name ("P3"). Everything
 * that needs a level's stride or name reads it here (anchors, masks,
 * distillation pairing, probes); nothing derives it from the index. */
#ifndef KD_LEVELS_H
#define KD_LEVELS_H

#define KD_MAX_LEVELS 6 /* P2..P7 */

typedef struct KdLevels {
  int n;
  int stride[KD_MAX_LEVELS];
  char name[KD_MAX_LEVELS][8];
} KdLevels;

/* Appends a level of this stride named P<log2 stride> (the FPN
 * convention: P_k has stride 2^k). -1 when the table is full. */
int kd_levels_add(KdLevels *lv, int stride);
/* A table of n levels with these strides, named as kd_levels_add does
 * (for inputs that come with strides only: files, tests). */
void kd_levels_from_strides(KdLevels *lv, int n, const int *strides);
/* Index of the level with this stride, or -1. */
int kd_levels_find(const KdLevels *lv, int stride);
/* Stride of a level name "P<k>" (2^k), or -1 when it is not one. */
int kd_level_name_stride(const char *name);

#endif
