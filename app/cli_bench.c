/* kdscope bench: GEMM and op timings (training-step timings join as the
 * model lands). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/gemm.h"
#include "verbs.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kd_cli_bench(int argc, char **argv) {
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--help")) {
      printf("usage: kdscope bench [--json]\n");
      return 0;
    } else {
      fprintf(stderr, "kdscope bench: unknown option '%s'\n", argv[i]);
      return 1;
    }
  }
  int n = 1024;
  float *a = calloc((size_t)n * n, 4), *b = calloc((size_t)n * n, 4), *c = calloc((size_t)n * n, 4);
  if (!a || !b || !c) return 1;
  int reps = 0;
  double t0 = now_s(), t;
  do {
    kd_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    reps++;
    t = now_s() - t0;
  } while (t < 0.5);
  double gf = 2.0 * n * n * n * reps / t / 1e9;
  if (json) printf("{\"sgemm_1024_gflops\": %.1f, \"threads\": %d}\n", gf, kd_threads());
  else printf("sgemm 1024^3: %.1f GFLOP/s (%d threads, %s)\n", gf, kd_threads(), kd_blas_info());
  free(a), free(b), free(c);
  return 0;
}
