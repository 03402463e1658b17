/* Probe cost at the reference size: teacher and student presets (random
 * weights), 128x128, batch 8, 4 probe images. Prints the step time, the
 * capture cost (with and without the tape cut), the snapshot size (F32 and
 * F16 maps), and the probe share of a budgeted run; asserts the budget
 * holds (share well under 2x the 10% asked). KD_PROBE_METHODS picks the
 * methods (default: fitnet, then every registered one). Suite 'slow'. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fixture.h"
#include "probe/prober.h"
#include "probe/snapfile.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench(const FxModels *m, const char *methods, const char *run) {
  KdConfig *c = fx_config(m, methods);
  KdSession *s = c ? fx_session(c, run) : NULL;
  if (!s) {
    CHECK(0);
    kd_config_free(c);
    return;
  }
  KdError e;
  KdStepStats st;
  for (int k = 0; k < 2; k++) CHECK(kd_session_step(s, &st, &e) == 0); /* warm-up */
  double t0 = now();
  int nsteps = 6;
  for (int k = 0; k < nsteps; k++) CHECK(kd_session_step(s, &st, &e) == 0);
  double step_s = (now() - t0) / nsteps;
  double cost[2] = {0, 0};
  size_t bytes[2] = {0, 0};
  for (int cut = 1; cut >= 0; cut--) {
    KdProbeCfg pc;
    kd_probe_cfg_default(&pc);
    pc.settings = c, pc.cut_backward = cut, pc.write_files = 0;
    KdProber *p = kd_prober_new(s, &pc, &e);
    CHECK_MSG(p != NULL, "%s", e.msg);
    if (!p) break;
    KdSnapshot *snap;
    CHECK(kd_prober_capture(p, 0, &snap, &e) == 0); /* warm-up: arena growth */
    kd_snapshot_free(snap);
    double best = INFINITY;
    for (int k = 0; k < 3; k++) {
      CHECK(kd_prober_capture(p, 0, &snap, &e) == 0);
      best = fmin(best, snap->capture_s);
      if (k == 2 && cut)
        for (int h = 0; h < 2; h++) {
          char path[1100];
          snprintf(path, sizeof path, "%s/size%d.safetensors", fx_path(run), h);
          CHECK(kd_snapshot_write_file(path, snap, h, &bytes[h], &e) == 0);
        }
      kd_snapshot_free(snap);
    }
    cost[cut] = best;
    if (cut)
      printf("  arena peak: prober %.1f MB, trainer %.1f MB\n", kd_prober_stats(p).arena_peak / 1048576.0,
             kd_trainer_arena_peak(kd_session_trainer(s)) / 1048576.0);
    kd_prober_free(p);
  }
  /* a budgeted run: the prober decides when */
  KdProbeCfg pc;
  kd_probe_cfg_default(&pc);
  pc.settings = c, pc.min_interval = 1;
  KdProber *p = kd_prober_new(s, &pc, &e);
  double train = 0, probe = 0;
  int captures = 0, steps = 40;
  for (int k = 0; p && k < steps; k++) {
    double a = now();
    CHECK(kd_session_step(s, &st, &e) == 0);
    double b = now();
    int rc = kd_prober_after_step(p, s, &st, &e);
    CHECK_MSG(rc >= 0, "%s", e.msg);
    captures += rc == 1;
    train += b - a, probe += now() - b;
  }
  double share = probe / train;
  printf("%-34s step %6.1f ms | capture %6.1f ms (cut) %6.1f ms (no cut) = %.2f / %.2f steps | "
         "snapshot %zu B (F32) %zu B (F16 maps) | budgeted run: %d captures in %d steps, probe share %.1f%%\n",
         methods, 1e3 * step_s, 1e3 * cost[1], 1e3 * cost[0], cost[1] / step_s, cost[0] / step_s, bytes[0], bytes[1], captures,
         steps, 100 * share);
  CHECK_MSG(share < 0.2, "probing took %.1f%% of training time with a 10%% budget", 100 * share);
  /* DeFeat's observation on the last snapshot: gradient per fg vs bg cell */
  KdSnapshot *last;
  if (p && kd_prober_capture(p, steps, &last, &e) == 0) {
    printf("  fg/bg mean gradient ratio (P3..P5 pooled over images):");
    for (int k = 0; k < last->nfields; k++) {
      const KdSnapField *f = &last->fields[k];
      if (strncmp(f->name, "grad_fgbg.", 10)) continue;
      double fg = 0, bg = 0;
      for (size_t q = 0; q < f->numel; q += 2) fg += f->data[q], bg += f->data[q + 1];
      printf(" %s %.2f", f->name + 10, bg > 0 ? fg / bg : NAN);
    }
    printf("\n");
    kd_snapshot_free(last);
  }
  kd_prober_free(p);
  kd_session_free(s);
  kd_config_free(c);
}

int main(void) {
  FxModels ref = {18, 32, 10, 16, 64, 4, 128, 8};
  fx_tmpdir("probebench");
  int rc = fx_build_data(64, 8, ref.size);
  if (rc) return rc;
  if (fx_write_teacher(&ref)) return 1;
  const char *env = getenv("KD_PROBE_METHODS");
  if (env) {
    bench(&ref, env, "run-env");
  } else {
    bench(&ref, "fitnet", "run-fitnet");
    bench(&ref, fx_all_methods(), "run-all");
  }
  return check_status("bench_probe");
}
