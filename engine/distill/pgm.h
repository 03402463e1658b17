/* The Prototype Generation Module of global-knowledge distillation (Tang et
 * al., ECCV 2022; KD-METHODS section 4.1 and 10b) as a pure function: the
 * instances of one class at one FPN level, as pooled student and teacher
 * feature vectors, in; the indices of the instances chosen as prototypes
 * out. What the released code does, step by step:
 *
 *   1. rows L2-normalised on each side (f / |f|; a zero row stays zero);
 *   2. density rho_i = sum_j exp(-((1 - f_i.f_j) / sigma)^2) on each side;
 *      theta = the ascending-sorted densities at index floor(n * cut);
 *      candidates = rho_s > theta_s and rho_t > theta_t (strictly);
 *   3. exactly num_prototypes joint greedy matching-pursuit steps: residuals
 *      start at the normalised features; for candidate k and instance j,
 *      a = f_s,k . R_s,j, b = f_t,k . R_t,j,
 *      w_s = ((1+alpha) a + alpha b) / (1+2 alpha), w_t symmetric, energy
 *      |f_s,k w_s^T - R_s|^2 + |f_t,k w_t^T - R_t|^2 + alpha |w_s - w_t|^2;
 *      the argmin (first on ties) is recorded and its part subtracted from
 *      the residuals. The same instance may be picked again.
 *
 * No stopping rule, no randomness: deterministic. Computed in double. A
 * class with no candidate (2 or fewer instances, or features so separated
 * that every density is 1) yields no prototypes; the released code crashes
 * there.
 *
 * The energy is evaluated through the Gram matrices rather than the D x N
 * residuals: with a_j = f_k . R_j, |f_k w_j - R_j|^2 = |f_k|^2 w_j^2 -
 * 2 w_j a_j + |R_j|^2, the last term the same for every k; and after a pick
 * k*, a_j for every candidate moves by -(f_c . f_k*) w_j(k*). The same
 * numbers as the literal computation up to rounding, in O(cand x n) per
 * step instead of O(cand x n x D). */
#ifndef KD_DISTILL_PGM_H
#define KD_DISTILL_PGM_H

#include "core/error.h"

typedef struct KdPgmCfg {
  int num_prototypes; /* greedy steps (released: 10) */
  double sigma;       /* density bandwidth (0.1) */
  double cut;         /* the density quantile a candidate must exceed (0.4) */
  double alpha;       /* coupling of the two sides' coefficients (10) */
} KdPgmCfg;

/* The released code's values. */
void kd_pgm_cfg_default(KdPgmCfg *c);

/* fs: n rows of ds floats (student), ft: n rows of dt floats (teacher),
 * the same instances in the same order. Writes the chosen instance of each
 * step into idx[num_prototypes] and returns num_prototypes, or 0 when no
 * instance is a candidate (idx untouched). *ncand (may be NULL): the
 * number of candidates. -1 with err: bad arguments or out of memory. */
int kd_pgm_select(const float *fs, int ds, const float *ft, int dt, int n, const KdPgmCfg *cfg, int *idx, int *ncand,
                  KdError *err);

#endif
