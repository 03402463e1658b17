/* Benchmarks behind `kdscope bench`. */
#ifndef KD_APP_BENCH_H
#define KD_APP_BENCH_H

typedef struct KdBenchOpts {
  int json;
  int batch, size;
  double min_time; /* seconds per measurement */
  int steps;       /* timed steps for step benchmarks */
  double fma_peak; /* GFLOP/s of kd_bench_fma_peak, for the share printed */
} KdBenchOpts;

typedef struct KdBenchOpsResult {
  double conv_s[2], gemm_s[2], flops[2]; /* teacher, student: per pass fwd+bwd */
} KdBenchOpsResult;

int kd_bench_ops(const KdBenchOpts *o, KdBenchOpsResult *res);

typedef struct KdBenchStepsResult {
  double teacher_fwd_s, student_step_s, teacher_train_step_s, distill_step_s;
  double teacher_fwd_flops, student_flops, teacher_train_flops;
  size_t student_arena_bytes, teacher_arena_bytes, distill_arena_bytes, peak_rss_bytes;
  char distill_method[16];
  /* the two-stage teacher (assets/configs/teacher-frcnn.json) */
  double frcnn_fwd_s, frcnn_train_step_s, frcnn_fwd_flops, frcnn_train_flops;
  size_t frcnn_fwd_arena_bytes, frcnn_arena_bytes;
} KdBenchStepsResult;

int kd_bench_steps(const KdBenchOpts *o, KdBenchStepsResult *res);

/* Ceilings (bench_peak.c), GFLOP/s on all threads: cblas_sgemm 1024^3, and
 * an FMA loop on the widest vectors the CPU has (*isa names them). */
double kd_bench_sgemm_peak(void);
double kd_bench_fma_peak(const char **isa);

#endif
