/* kdscope bench [ops|steps|all] [--json]: op and training-step timings on
 * the reference presets (batch 8, 128x128, random weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "core/gemm.h"
#include "verbs.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_peak(void) {
  int n = 1024;
  float *a = calloc((size_t)n * n, 4), *b = calloc((size_t)n * n, 4), *c = calloc((size_t)n * n, 4);
  if (!a || !b || !c) return 0;
  int reps = 0;
  double t0 = now_s(), t;
  do {
    kd_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    reps++;
    t = now_s() - t0;
  } while (t < 0.5);
  free(a), free(b), free(c);
  return 2.0 * n * n * n * reps / t / 1e9;
}

static void usage(FILE *f) {
  fprintf(f, "usage: kdscope bench [ops|steps|all] [--json] [--batch N] [--size S] [--steps N]\n\n"
             "  ops    every conv shape of the teacher and student presets, forward and\n"
             "         backward GFLOP/s next to cblas_sgemm on the same GEMMs\n"
             "  steps  teacher forward, student forward+backward, teacher training step,\n"
             "         distillation step (median seconds, GFLOP/s, peak memory)\n"
             "  all    both (default)\n");
}

int kd_cli_bench(int argc, char **argv) {
  KdBenchOpts o = {.json = 0, .batch = 8, .size = 128, .min_time = 0.3, .steps = 20};
  const char *what = "all";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) o.json = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) o.batch = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) o.size = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc) o.steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "ops") || !strcmp(argv[i], "steps") || !strcmp(argv[i], "all")) what = argv[i];
    else {
      fprintf(stderr, "kdscope bench: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 1;
    }
  }
  if (o.batch < 1 || o.batch > 256 || o.size < 32 || o.size > 2048 || o.steps < 1) {
    fprintf(stderr, "kdscope bench: --batch 1..256, --size 32..2048, --steps >= 1\n");
    return 1;
  }
  double peak = sgemm_peak();
  if (!o.json) printf("sgemm 1024^3: %.1f GFLOP/s (%d threads, %s)\n\n", peak, kd_threads(), kd_blas_info());
  KdBenchOpsResult ops = {0};
  int do_ops = strcmp(what, "steps") != 0;
  if (do_ops && kd_bench_ops(&o, &ops)) return 1;
  KdBenchStepsResult steps = {0};
  int do_steps = strcmp(what, "ops") != 0;
  if (do_steps && kd_bench_steps(&o, &steps)) return 1;
  if (o.json) {
    printf("{\"threads\": %d, \"blas\": \"%s\", \"sgemm_1024_gflops\": %.1f", kd_threads(), kd_blas_info(), peak);
    if (do_ops) {
      const char *nm[2] = {"teacher", "student"};
      for (int i = 0; i < 2; i++)
        printf(", \"%s_conv_fwd_bwd_s\": %.6f, \"%s_conv_gflops\": %.1f, \"%s_conv_vs_sgemm\": %.3f", nm[i], ops.conv_s[i], nm[i],
               ops.flops[i] / ops.conv_s[i] / 1e9, nm[i], ops.gemm_s[i] / ops.conv_s[i]);
    }
    if (do_steps)
      printf(", \"batch\": %d, \"size\": %d, \"teacher_fwd_s\": %.6f, \"student_step_s\": %.6f, \"teacher_train_step_s\": %.6f, \"distill_step_s\": %.6f, \"distill_method\": \"%s\", "
             "\"peak_rss_bytes\": %zu, \"student_arena_bytes\": %zu, \"teacher_arena_bytes\": %zu",
             o.batch, o.size, steps.teacher_fwd_s, steps.student_step_s, steps.teacher_train_step_s, steps.distill_step_s, steps.distill_method, steps.peak_rss_bytes,
             steps.student_arena_bytes, steps.teacher_arena_bytes);
    printf("}\n");
  }
  return 0;
}
