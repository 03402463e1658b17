/* Balanced sampling: a partial Fisher-Yates shuffle over each class of
 * candidates, so k of n draws cost O(n) and the choice depends only on r. */
#include "detect/sampler.h"

#include <stdlib.h>

#include "detect/assign.h"

/* Marks k of the n indices in idx (shuffled in place) with mark. */
static void pick(int *idx, int n, int k, KdRng *r, signed char *sel, signed char mark) {
  for (int i = 0; i < k; i++) {
    int j = i + (int)kd_rng_below(r, (uint32_t)(n - i));
    int t = idx[i];
    idx[i] = idx[j], idx[j] = t;
    sel[idx[i]] = mark;
  }
}

int kd_sample_balanced(const int *match, int A, int batch, float pos_fraction, KdRng *r, signed char *sel, int *npos,
                       KdError *err) {
  if (batch < 1 || !(pos_fraction >= 0.f && pos_fraction <= 1.f) || A < 0)
    return kd_error(err, "sampler: batch %d must be >= 1 and the positive fraction %g in [0, 1]", batch,
                    (double)pos_fraction),
           -1;
  int *idx = malloc(((size_t)A + 1) * sizeof *idx);
  if (!idx) return kd_error(err, "sampler: out of memory for %d candidates", A), -1;
  int np = 0, nn = 0;
  for (int i = 0; i < A; i++) {
    sel[i] = -1;
    if (match[i] >= 0) idx[np++] = i;
  }
  /* negatives fill idx from the end: both sets fit, np + nn <= A */
  for (int i = 0; i < A; i++)
    if (match[i] == KD_MATCH_NEG) idx[A - 1 - nn++] = i;
  int kp = (int)((float)batch * pos_fraction);
  if (kp > np) kp = np;
  int kn = batch - kp;
  if (kn > nn) kn = nn;
  pick(idx, np, kp, r, sel, 1);
  pick(idx + A - nn, nn, kn, r, sel, 0);
  free(idx);
  if (npos) *npos = kp;
  return kp + kn;
}
