/* The one wrapper every GEMM in the engine goes through (row-major,
 * cblas_sgemm underneath). It also keeps counters so benchmarks can report
 * the share of time spent outside GEMM. */
#ifndef KD_GEMM_H
#define KD_GEMM_H

#include <stdint.h>

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major. */
void kd_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc);

typedef struct KdGemmStats {
  uint64_t calls;
  double flops;
  double seconds;
} KdGemmStats;

/* Counting is off by default (one clock read per call when on). */
void kd_gemm_stats_enable(int on);
void kd_gemm_stats_reset(void);
KdGemmStats kd_gemm_stats(void);

/* Call log for benchmarks: while on, each call's (m, n, k, trans) is
 * appended to a fixed buffer (further calls are dropped when it is full). */
typedef struct KdGemmCall {
  int m, n, k, ta, tb;
} KdGemmCall;
void kd_gemm_log_enable(KdGemmCall *buf, int cap);
int kd_gemm_log_disable(void); /* returns the number of calls logged */

/* Threads: OpenBLAS and our OpenMP loops share one pool. */
void kd_set_threads(int n);
int kd_threads(void);
/* "openmp" or "pthread" (the OpenBLAS build linked), and its core name. */
const char *kd_blas_info(void);

#endif
