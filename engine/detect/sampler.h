/* Balanced positive/negative sampling of one image's matches, as
 * torchvision's BalancedPositiveNegativeSampler (the RPN's 256 anchors at
 * half positives, the RoI head's 512 RoIs at a quarter): up to
 * floor(batch * pos_fraction) positives, then negatives up to batch minus
 * the positives taken, each uniformly without replacement from r. The
 * draws differ from torch's randperm, so parity tests compare losses on
 * given samples. */
#ifndef KD_DET_SAMPLER_H
#define KD_DET_SAMPLER_H

#include "core/error.h"
#include "core/rng.h"

/* match: [A] from kd_assign (>= 0 positive, KD_MATCH_NEG, KD_MATCH_IGNORE).
 * sel: [A] out, 1 sampled positive, 0 sampled negative, -1 not sampled.
 * Returns the number sampled (*npos of them positive), or -1 with err on a
 * bad batch/fraction. Allocates O(A) scratch. */
int kd_sample_balanced(const int *match, int A, int batch, float pos_fraction, KdRng *r, signed char *sel, int *npos,
                       KdError *err);

#endif
