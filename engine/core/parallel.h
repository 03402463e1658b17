/* Element-wise loops run on OpenMP threads shared with OpenBLAS (we link
 * OpenBLAS's OpenMP build, so both use one pool and never fight).
 *
 * Every parallel region uses the full team: no `if` clauses or varying
 * num_threads. libgomp caches one team and reuses it only while the team
 * size stays the same; alternating sizes (an `if` that is sometimes false)
 * makes it free and malloc a team per region, which breaks the engine's
 * "no heap allocation in a steady-state step" rule. A region costs a few
 * microseconds; loops too small to be worth that stay plain serial code.
 * OpenBLAS only opens regions (full team) for GEMMs big enough to thread. */
#ifndef KD_PARALLEL_H
#define KD_PARALLEL_H

#define KD_PAR_MIN 32768

#define KD_STR_(x) #x
#define KD_PRAGMA(x) _Pragma(KD_STR_(x))
/* Usage: KD_PARFOR(n) for (size_t i = 0; i < n; i++) ...   (n is only
 * documentation now; see above.) */
#define KD_PARFOR(n) KD_PRAGMA(omp parallel for schedule(static))

#endif
