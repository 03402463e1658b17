/* Element-wise loops run on OpenMP threads shared with OpenBLAS (we link
 * OpenBLAS's OpenMP build, so both use one pool and never fight). Small
 * loops stay serial: a parallel region costs a few microseconds. */
#ifndef KD_PARALLEL_H
#define KD_PARALLEL_H

#define KD_PAR_MIN 32768

#define KD_STR_(x) #x
#define KD_PRAGMA(x) _Pragma(KD_STR_(x))
/* Usage: KD_PARFOR(n) for (size_t i = 0; i < n; i++) ... */
#define KD_PARFOR(n) KD_PRAGMA(omp parallel for schedule(static) if ((size_t)(n) >= KD_PAR_MIN))

#endif
