/* The level table: strides and names of a neck's output levels, built as
 * the neck is, then only read. It holds no tensors and no layer code. */
#include "model/levels.h"

#include <stdio.h>
#include <stdlib.h>

int kd_levels_add(KdLevels *lv, int stride) {
  if (lv->n >= KD_MAX_LEVELS || stride < 1) return -1;
  int k = 0;
  while (k < 30 && (1 << (k + 1)) <= stride) k++;
  lv->stride[lv->n] = stride;
  snprintf(lv->name[lv->n], sizeof lv->name[0], "P%d", k % 100);
  lv->n++;
  return 0;
}

void kd_levels_from_strides(KdLevels *lv, int n, const int *strides) {
  lv->n = 0;
  for (int l = 0; l < n && l < KD_MAX_LEVELS; l++) kd_levels_add(lv, strides[l]);
}

int kd_levels_find(const KdLevels *lv, int stride) {
  for (int l = 0; l < lv->n; l++)
    if (lv->stride[l] == stride) return l;
  return -1;
}

int kd_level_name_stride(const char *name) {
  if (name[0] != 'P' || name[1] < '0' || name[1] > '9') return -1;
  char *end;
  long k = strtol(name + 1, &end, 10);
  return *end || k > 20 ? -1 : 1 << k;
}
