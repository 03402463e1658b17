#include "core/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

/* Declared by OpenBLAS; not in every cblas.h. */
extern char *openblas_get_corename(void);
extern int openblas_get_parallel(void);
extern void openblas_set_num_threads(int);

static int stats_on;
static KdGemmCall *log_buf;
static int log_cap, log_n;
static KdGemmStats stats;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kd_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (log_buf && log_n < log_cap) log_buf[log_n++] = (KdGemmCall){m, n, k, trans_a, trans_b};
  double t0 = stats_on ? now_s() : 0.0;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m,
              n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (stats_on) {
    stats.calls++;
    stats.flops += 2.0 * m * n * k;
    stats.seconds += now_s() - t0;
  }
}

void kd_gemm_log_enable(KdGemmCall *buf, int cap) {
  log_buf = buf;
  log_cap = cap;
  log_n = 0;
}

int kd_gemm_log_disable(void) {
  log_buf = NULL;
  return log_n;
}

void kd_gemm_stats_enable(int on) { stats_on = on; }
void kd_gemm_stats_reset(void) { stats = (KdGemmStats){0}; }
KdGemmStats kd_gemm_stats(void) { return stats; }

void kd_set_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int kd_threads(void) { return omp_get_max_threads(); }

const char *kd_blas_info(void) {
  static char buf[128];
  snprintf(buf, sizeof buf, "OpenBLAS %s, core %s", openblas_get_parallel() == 2 ? "openmp" : "pthread",
           openblas_get_corename());
  return buf;
}
