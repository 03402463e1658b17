#include "cli_common.h"

#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gemm.h"
#include "progress.h"
#include "train/session.h"
#include "train/settings.h"

const char *kd_cli_asset(const char *rel, char *buf, size_t len) {
  const char *env = getenv("KDSCOPE_ASSETS");
  if (env && *env) snprintf(buf, len, "%s/%s", env, rel);
  else snprintf(buf, len, "%s/assets/%s", KD_SOURCE_ROOT, rel);
  return buf;
}

int kd_cli_train_args(int argc, char **argv, KdTrainArgs *a, const char *verb, const char *usage) {
  memset(a, 0, sizeof *a);
  a->steps = -1;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(usage, stdout);
      return 2;
    } else if (!strcmp(o, "--config") && has) a->config = argv[++i];
    else if (!strcmp(o, "--data") && has) a->data = argv[++i];
    else if (!strcmp(o, "--out") && has) a->out = argv[++i];
    else if (!strcmp(o, "--resume") && has) a->resume = argv[++i];
    else if (!strcmp(o, "--quiet")) a->quiet = 1;
    else if (!strcmp(o, "--steps") && has) {
      char *end;
      a->steps = strtol(argv[++i], &end, 10);
      if (*end || a->steps < 1) {
        fprintf(stderr, "kdscope %s: --steps expects a positive whole number, got '%s'\n", verb, argv[i]);
        return 1;
      }
    } else if (!strcmp(o, "--set") && has) {
      if (a->nsets == 64) {
        fprintf(stderr, "kdscope %s: too many --set options\n", verb);
        return 1;
      }
      a->sets[a->nsets++] = argv[++i];
    } else {
      fprintf(stderr, "kdscope %s: unknown or incomplete option '%s' (see --help)\n", verb, o);
      return 1;
    }
  }
  if (a->out && a->resume) {
    fprintf(stderr, "kdscope %s: --out and --resume exclude each other\n", verb);
    return 1;
  }
  return 0;
}

static void resolve_relative(KdConfig *c, const char *key, const char *base_dir) {
  const char *v = kd_config_str(c, key);
  if (!*v || v[0] == '/') return;
  char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s", base_dir, v);
  char *real = realpath(buf, NULL);
  kd_config_set(c, key, real ? real : buf, NULL);
  free(real);
}

KdConfig *kd_cli_load_config(const KdTrainArgs *a, const char *default_config, int distill, const char *verb) {
  (void)distill;
  KdConfig *c = kd_config_new();
  KdError err;
  if (!c || kd_settings_register_all(c)) {
    fprintf(stderr, "kdscope %s: out of memory\n", verb);
    kd_config_free(c);
    return NULL;
  }
  char path[4096];
  const char *file = a->config;
  if (a->resume) {
    snprintf(path, sizeof path, "%s/config.json", a->resume);
    file = path;
  } else if (!file && default_config) {
    file = kd_cli_asset(default_config, path, sizeof path);
  }
  if (!file) {
    fprintf(stderr, "kdscope %s: --config FILE is required (see --help)\n", verb);
    kd_config_free(c);
    return NULL;
  }
  if (kd_config_load_file(c, file, &err)) goto fail;
  char dirbuf[4096];
  snprintf(dirbuf, sizeof dirbuf, "%s", file);
  const char *base = dirname(dirbuf);
  resolve_relative(c, "teacher.config", base);
  resolve_relative(c, "teacher.checkpoint", base);
  resolve_relative(c, "data.dir", base);
  if (a->data && kd_config_set(c, "data.dir", a->data, &err)) goto fail;
  if (a->steps > 0 && kd_config_set_num(c, "train.steps", (double)a->steps, &err)) goto fail;
  for (int i = 0; i < a->nsets; i++)
    if (kd_config_set_kv(c, a->sets[i], &err)) goto fail;
  return c;
fail:
  fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
  kd_config_free(c);
  return NULL;
}

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

int kd_cli_run_training(KdConfig *cfg, const KdTrainArgs *a, int distill, const char *verb) {
  KdError err;
  int threads = kd_config_int(cfg, "train.threads");
  if (threads > 0) kd_set_threads(threads);
  KdProgress *prog = kd_progress_new(stderr, a->quiet);
  KdSessionOpts so = {.out_dir = a->out, .resume_dir = a->resume, .distill = distill, .progress = kd_progress_fn, .user = prog};
  KdSession *s = kd_session_open(cfg, &so, &err);
  if (!s) {
    kd_progress_free(prog);
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    return 1;
  }
  fprintf(stderr, "kdscope %s: run directory %s (step %d of %d)\n", verb, kd_rundir_path(kd_session_rundir(s)), kd_session_steps_done(s),
          kd_session_total_steps(s));
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int total = kd_session_total_steps(s), rc = 0;
  int eval_every = kd_config_int(cfg, "train.eval_every"), ck_every = kd_config_int(cfg, "train.checkpoint_every");
  double ema = NAN;
  while (kd_session_steps_done(s) < total && !stop_requested) {
    KdStepStats st;
    if (kd_session_step(s, &st, &err)) {
      fprintf(stderr, "\nkdscope %s: %s\n", verb, err.msg);
      rc = 1;
      break;
    }
    if (st.skipped) {
      fprintf(stderr, "\nkdscope %s: non-finite %s at step %d; stopping with the last good weights (checkpoint kept)\n", verb, st.bad_part,
              st.step);
      rc = 1;
      break;
    }
    ema = isnan(ema) ? st.loss : 0.95 * ema + 0.05 * st.loss;
    char msg[160];
    snprintf(msg, sizeof msg, "loss %.4f (cls %.3f box %.3f) lr %.2g", ema, st.parts[0].value, st.nparts > 1 ? st.parts[1].value : 0.0, st.lr);
    kd_progress_update(prog, "step", st.step, total, msg);
    int step = st.step;
    if (eval_every > 0 && step % eval_every == 0 && step < total) {
      KdEvalResult er;
      if (kd_session_evaluate(s, &er, &err)) {
        fprintf(stderr, "\nkdscope %s: evaluation: %s\n", verb, err.msg);
        rc = 1;
        break;
      }
      kd_progress_message(prog, "step %d: AP %.3f AP50 %.3f (%d images, %.1f s)", step, er.stats[0], er.stats[1], er.images, er.seconds);
    }
    if (step % ck_every == 0 && step < total && kd_session_checkpoint(s, &err)) {
      fprintf(stderr, "\nkdscope %s: checkpoint: %s\n", verb, err.msg);
      rc = 1;
      break;
    }
  }
  kd_progress_done(prog);
  if (rc == 0) {
    if (kd_session_checkpoint(s, &err)) {
      fprintf(stderr, "kdscope %s: checkpoint: %s\n", verb, err.msg);
      rc = 1;
    } else if (stop_requested) {
      kd_session_event(s, "stop", "\"reason\":\"signal\"", NULL);
      fprintf(stderr, "kdscope %s: stopped at step %d; continue with --resume %s\n", verb, kd_session_steps_done(s),
              kd_rundir_path(kd_session_rundir(s)));
    } else {
      KdEvalResult er;
      if (kd_session_evaluate(s, &er, &err)) {
        fprintf(stderr, "kdscope %s: evaluation: %s\n", verb, err.msg);
        rc = 1;
      } else {
        kd_session_event(s, "finish", NULL, NULL);
        printf("step %d: AP %.4f AP50 %.4f AP75 %.4f APs %.4f APm %.4f APl %.4f (%d val images)\n", kd_session_steps_done(s), er.stats[0],
               er.stats[1], er.stats[2], er.stats[3], er.stats[4], er.stats[5], er.images);
      }
    }
  }
  kd_session_free(s);
  kd_progress_free(prog);
  return rc;
}
