/* kdscope bench [ops|steps|all] [--json]: op and training-step timings on
 * the reference presets (batch 8, 128x128, random weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "verbs.h"

/* "NAME<suffix>": seconds, then NAME_gflops and NAME_peak_share. */
static void json_figure(const char *name, const char *suffix, double s, double flops, double peak) {
  double gf = s > 0 ? flops / s / 1e9 : 0;
  printf(", \"%s%s\": %.6f, \"%s_gflops\": %.1f, \"%s_peak_share\": %.3f", name, suffix, s, name, gf, name, peak > 0 ? gf / peak : 0);
}

static void usage(FILE *f) {
  fprintf(f, "usage: kdscope bench [ops|steps|all] [--json] [--batch N] [--size S] [--steps N]\n\n"
             "  ops    every conv shape of the teacher and student presets, forward and\n"
             "         backward GFLOP/s next to cblas_sgemm on the same GEMMs\n"
             "  steps  teacher forward, student forward+backward, teacher training step,\n"
             "         distillation step, the two-stage teacher preset's forward and\n"
             "         training step (median seconds, GFLOP/s, peak memory)\n"
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
  const char *isa;
  o.fma_peak = kd_bench_fma_peak(&isa);
  double peak = kd_bench_sgemm_peak();
  if (!o.json)
    printf("FMA peak %.1f GFLOP/s (%s), sgemm 1024^3: %.1f GFLOP/s (%d threads, %s); convolutions: %s\n\n", o.fma_peak, isa, peak,
           kd_threads(), kd_blas_info(), kd_conv_backend_name());
  KdBenchOpsResult ops = {0};
  int do_ops = strcmp(what, "steps") != 0;
  if (do_ops && kd_bench_ops(&o, &ops)) return 1;
  KdBenchStepsResult steps = {0};
  int do_steps = strcmp(what, "ops") != 0;
  if (do_steps && kd_bench_steps(&o, &steps)) return 1;
  if (o.json) {
    printf("{\"threads\": %d, \"blas\": \"%s\", \"conv\": \"%s\", \"sgemm_1024_gflops\": %.1f, \"fma_peak_gflops\": %.1f, \"fma_isa\": \"%s\"",
           kd_threads(), kd_blas_info(), kd_conv_backend_name(), peak, o.fma_peak, isa);
    if (do_ops) {
      const char *nm[2] = {"teacher", "student"};
      for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_conv", nm[i]);
        json_figure(key, "_fwd_bwd_s", ops.conv_s[i], ops.flops[i], o.fma_peak);
        printf(", \"%s_conv_vs_sgemm\": %.3f", nm[i], ops.gemm_s[i] / ops.conv_s[i]);
      }
    }
    if (do_steps) {
      printf(", \"batch\": %d, \"size\": %d", o.batch, o.size);
      json_figure("teacher_fwd", "_s", steps.teacher_fwd_s, steps.teacher_fwd_flops, o.fma_peak);
      json_figure("student_step", "_s", steps.student_step_s, steps.student_flops, o.fma_peak);
      json_figure("teacher_train_step", "_s", steps.teacher_train_step_s, steps.teacher_train_flops, o.fma_peak);
      json_figure("distill_step", "_s", steps.distill_step_s, steps.teacher_fwd_flops + steps.student_flops, o.fma_peak);
      json_figure("frcnn_fwd", "_s", steps.frcnn_fwd_s, steps.frcnn_fwd_flops, o.fma_peak);
      json_figure("frcnn_train_step", "_s", steps.frcnn_train_step_s, steps.frcnn_train_flops, o.fma_peak);
      printf(", \"frcnn_fwd_arena_bytes\": %zu, \"frcnn_arena_bytes\": %zu", steps.frcnn_fwd_arena_bytes, steps.frcnn_arena_bytes);
      printf(", \"distill_method\": \"%s\", \"peak_rss_bytes\": %zu, \"student_arena_bytes\": %zu, \"teacher_arena_bytes\": %zu, "
             "\"distill_arena_bytes\": %zu",
             steps.distill_method, steps.peak_rss_bytes, steps.student_arena_bytes, steps.teacher_arena_bytes, steps.distill_arena_bytes);
    }
    printf("}\n");
  }
  return 0;
}
