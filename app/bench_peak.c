/* The two ceilings `kdscope bench` measures figures against: a raw
 * cblas_sgemm 1024^3 and an FMA loop on every thread (the machine's float
 * peak: independent fused multiply-adds on the widest vectors the CPU
 * runs, 16 chains so the FMA latency never stalls). */
#include <omp.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "core/gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double kd_bench_sgemm_peak(void) {
  int n = 1024;
  float *a = calloc((size_t)n * n, 4), *b = calloc((size_t)n * n, 4), *c = calloc((size_t)n * n, 4);
  int reps = 0;
  double t0 = now_s(), t = 0;
  if (a && b && c) do {
      kd_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      reps++;
      t = now_s() - t0;
    } while (t < 0.5);
  free(a), free(b), free(c);
  return reps ? 2.0 * n * n * n * reps / t / 1e9 : 0;
}

enum { CHAINS = 16 };

/* Each returns the flops done; the sum goes to *sink so nothing is dropped. */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma512(long iters, float *sink) {
  __m512 acc[CHAINS], m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(1e-4f);
  for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps((float)j);
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
  for (int j = 1; j < CHAINS; j++) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  *sink = _mm512_reduce_add_ps(acc[0]);
  return 2.0 * 16 * CHAINS * (double)iters;
}

__attribute__((target("avx2,fma"))) static double fma256(long iters, float *sink) {
  __m256 acc[CHAINS], m = _mm256_set1_ps(0.9999f), a = _mm256_set1_ps(1e-4f);
  for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_set1_ps((float)j);
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
  float out[8];
  for (int j = 1; j < CHAINS; j++) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  _mm256_storeu_ps(out, acc[0]);
  *sink = out[0] + out[7];
  return 2.0 * 8 * CHAINS * (double)iters;
}
#endif

static double fma_scalar(long iters, float *sink) {
  float acc[CHAINS];
  for (int j = 0; j < CHAINS; j++) acc[j] = (float)j;
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < CHAINS; j++) acc[j] = acc[j] * 0.9999f + 1e-4f;
  *sink = acc[0] + acc[CHAINS - 1];
  return 2.0 * CHAINS * (double)iters;
}

static double fma_run(long iters, float *sink, const char **isa) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return *isa = "AVX-512", fma512(iters, sink);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return *isa = "AVX2", fma256(iters, sink);
#endif
  return *isa = "scalar", fma_scalar(iters, sink);
}

double kd_bench_fma_peak(const char **isa) {
  static float sinks[256];
  double best = 0;
  *isa = "scalar";
  /* The best of three rounds (~0.1 s each at full speed): the first also
   * wakes the cores. */
  for (int round = 0; round < 3; round++) {
    double flops = 0, t0 = now_s();
#pragma omp parallel reduction(+ : flops)
    {
      const char *mine;
      flops += fma_run(40000000L, &sinks[omp_get_thread_num() % 256], &mine);
#pragma omp master
      *isa = mine;
    }
    double rate = flops / (now_s() - t0) / 1e9;
    if (rate > best) best = rate;
  }
  return best;
}
