#include "cli_common.h"

#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assets.h"
#include "core/gemm.h"
#include "probe/prober.h"
#include "progress.h"
#include "train/dist.h"
#include "train/run.h"
#include "train/settings.h"

const char *kd_cli_asset(const char *rel, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", kd_assets_dir(NULL), rel);
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
  /* A data-parallel rank other than 0 takes rank 0's whole config
   * (kd_cli_shared_config): it may not see rank 0's files. */
  if (kd_dist_rank() > 0) return c;
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
  resolve_relative(c, "train.init_checkpoint", base);
  if (a->data && kd_config_set(c, "data.dir", a->data, &err)) goto fail;
  if (a->steps > 0 && kd_config_set_num(c, "train.steps", (double)a->steps, &err)) goto fail;
  for (int i = 0; i < a->nsets; i++) {
    /* Resuming, a live setting is only checked here: the run restores the
     * logged values first, then applies it as a change (requeue_live_sets),
     * so its event shows the value it replaces. */
    const char *eq = strchr(a->sets[i], '=');
    char key[256] = "";
    if (eq && (size_t)(eq - a->sets[i]) < sizeof key) memcpy(key, a->sets[i], (size_t)(eq - a->sets[i]));
    const KdParamDesc *d = kd_config_find(c, key);
    KdConfig *target = c, *check = NULL;
    if (a->resume && d && d->live) {
      if (!(check = kd_config_new()) || kd_settings_register_all(check)) {
        kd_config_free(check);
        snprintf(err.msg, sizeof err.msg, "out of memory");
        goto fail;
      }
      target = check;
    }
    int bad = kd_config_set_kv(target, a->sets[i], &err);
    kd_config_free(check);
    if (bad) goto fail;
  }
  return c;
fail:
  fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
  kd_config_free(c);
  return NULL;
}

KdConfig *kd_cli_shared_config(const KdTrainArgs *a, const char *default_config, int distill, const char *verb) {
  KdError err;
  if (kd_dist_init(&err)) {
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    return NULL;
  }
  KdConfig *c = kd_cli_load_config(a, default_config, distill, verb);
  if (kd_dist_size() > 1 && kd_dist_share_config(c, &err)) {
    if (c && kd_dist_rank() > 0) fprintf(stderr, "kdscope %s: rank %d: %s\n", verb, kd_dist_rank(), err.msg);
    kd_config_free(c);
    return NULL;
  }
  return c;
}

/* Ctrl+C (or SIGTERM) asks the run to stop cleanly; a second one quits at
 * once (the run directory stays resumable from its last checkpoint). */
static volatile sig_atomic_t signals_seen;
static void on_signal(int sig) {
  if (signals_seen++) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

/* --set values of live settings given with --resume must win over the
 * values the run restores from its events: they are queued as changes. */
static int requeue_live_sets(KdRun *run, KdConfig *cfg, const KdTrainArgs *a, KdError *err) {
  for (int i = 0; i < a->nsets; i++) {
    const char *eq = strchr(a->sets[i], '=');
    char key[256];
    if (!eq || (size_t)(eq - a->sets[i]) >= sizeof key) continue;
    memcpy(key, a->sets[i], (size_t)(eq - a->sets[i]));
    key[eq - a->sets[i]] = 0;
    const KdParamDesc *d = kd_config_find(cfg, key);
    if (d && d->live && kd_run_set(run, key, eq + 1, "cli", err)) return -1;
  }
  return 0;
}

static void show_steps(KdRun *run, KdProgress *prog, int *seen, double *ema, int total) {
  KdStepStats recent[16];
  int n = kd_run_recent(run, *seen, recent, 16);
  for (int i = 0; i < n; i++) *ema = isnan(*ema) ? recent[i].loss : 0.95 * *ema + 0.05 * recent[i].loss;
  if (!n) return;
  const KdStepStats *st = &recent[n - 1];
  *seen = st->step;
  /* "loss 0.61 (cls 0.32 box 0.29) lr 0.001": the detection loss's parts by name */
  char msg[200];
  int len = snprintf(msg, sizeof msg, "loss %.4f (", *ema);
  for (int i = 0, k = 0; i < st->nparts && len < (int)sizeof msg - 40; i++)
    if (!strncmp(st->parts[i].name, "det.", 4))
      len += snprintf(msg + len, sizeof msg - len, "%s%s %.3f", k++ ? " " : "", st->parts[i].name + 4, st->parts[i].value);
  snprintf(msg + len, sizeof msg - len, ") lr %.2g", st->lr);
  kd_progress_update(prog, "step", st->step, total, msg);
}

/* ", 2 left out (named in RUN/events.jsonl)" when images failed to load. */
static const char *left_out_note(const KdRunStatus *st, char *buf, size_t len) {
  if (!st->eval_left_out) return "";
  snprintf(buf, len, ", %d left out with no detections (named in events.jsonl)", st->eval_left_out);
  return buf;
}

KdProber *kd_cli_prober(const KdConfig *cfg, KdError *err) {
  err->msg[0] = 0;
  if (kd_config_num(cfg, "probe.budget") <= 0) return NULL;
  KdProbeCfg pc;
  if (kd_probe_cfg_from_settings(&pc, cfg, err)) return NULL;
  return kd_prober_new(NULL, &pc, err);
}

int kd_cli_run_training(KdConfig *cfg, const KdTrainArgs *a, int distill, const char *verb) {
  KdError err;
  int threads = kd_dist_threads(kd_config_int(cfg, "train.threads"));
  if (threads > 0) kd_set_threads(threads);
  int rank0 = kd_dist_rank() == 0; /* the others of a data-parallel run print only their errors */
  KdProgress *prog = kd_progress_new(stderr, a->quiet || !rank0);
  KdRunOpts ro = {.session = {.out_dir = a->out, .resume_dir = a->resume, .distill = distill, .progress = kd_progress_fn, .user = prog}};
  /* Headless runs write snapshots too, so the window can follow or replay
   * them and `kdscope export` can draw their figures. */
  err.msg[0] = 0;
  KdProber *prober = rank0 ? kd_cli_prober(cfg, &err) : NULL;
  if (kd_dist_agree(!prober && err.msg[0], &err)) {
    kd_progress_free(prog);
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    return 1;
  }
  if (prober) ro.after_step = kd_prober_run_hook, ro.after_step_user = prober;
  KdRun *run = kd_run_new(cfg, &ro, &err);
  /* Binding now checks the probe images against the validation split
   * before the first step. */
  if (!run || kd_dist_agree((prober && kd_prober_bind(prober, kd_run_session(run), &err)) ||
                                (rank0 && a->resume && requeue_live_sets(run, cfg, a, &err)), &err)) {
    kd_run_free(run);
    kd_prober_free(prober);
    kd_progress_free(prog);
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    return 1;
  }
  KdRunStatus st;
  kd_run_status(run, &st);
  const char *dir = kd_run_dir(run);
  if (rank0)
    fprintf(stderr, "kdscope %s: run directory %s (step %d of %d%s); control it with kdscope set|pause|resume|stop %s\n", verb, dir,
            st.step, st.total, kd_dist_size() > 1 ? ", data-parallel" : "", dir);
  signals_seen = 0;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (kd_run_start(run, &err)) {
    kd_run_free(run);
    kd_prober_free(prober);
    kd_progress_free(prog);
    fprintf(stderr, "kdscope %s: %s\n", verb, err.msg);
    return 1;
  }
  int stop_sent = 0, last_eval = st.eval_step, seen = st.step, paused_shown = 0;
  char note[160];
  double ema = NAN;
  /* The main thread only watches: it polls the status, never the session. */
  for (;;) {
    if (signals_seen && !stop_sent) {
      kd_run_stop(run, "signal", NULL);
      stop_sent = 1;
      kd_progress_message(prog, "stopping after the current step (Ctrl+C again quits at once; the last checkpoint stays)");
    }
    kd_run_status(run, &st);
    show_steps(run, prog, &seen, &ema, st.total);
    if (st.eval_step > last_eval) {
      last_eval = st.eval_step;
      if (st.eval_step < st.total) /* the final one is printed below */
        kd_progress_message(prog, "step %d: AP %.3f AP50 %.3f (%d images%s)", st.eval_step, st.eval[0], st.eval[1], st.eval_images,
                            left_out_note(&st, note, sizeof note));
    }
    if (st.state == KD_RUN_PAUSED && !paused_shown) {
      paused_shown = 1;
      kd_progress_message(prog, "paused at step %d%s%s (kdscope resume %s continues; Ctrl+C stops)", st.step, st.last.skipped ? ": " : "",
                          st.last.skipped ? st.message : "", dir);
    } else if (st.state == KD_RUN_RUNNING) {
      paused_shown = 0;
    }
    if (st.state == KD_RUN_STOPPED || st.state == KD_RUN_FINISHED || st.state == KD_RUN_FAILED) break;
    if (!strcmp(st.phase, "eval")) kd_progress_update(prog, "eval", st.phase_done, st.phase_total, NULL);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kd_run_wait(run);
  kd_progress_done(prog);
  kd_run_status(run, &st);
  int rc = 0;
  if (st.state == KD_RUN_FAILED) {
    fprintf(stderr, "kdscope %s: %s\n", verb, st.message);
    rc = 1;
  } else if (!rank0) {
    /* rank 0 reports the run */
  } else if (st.state == KD_RUN_STOPPED) {
    fprintf(stderr, "kdscope %s: stopped at step %d; continue with --resume %s\n", verb, st.step, dir);
  } else {
    printf("step %d: AP %.4f AP50 %.4f AP75 %.4f APs %.4f APm %.4f APl %.4f (%d %s images%s)\n", st.step, st.eval[0], st.eval[1],
           st.eval[2], st.eval[3], st.eval[4], st.eval[5], st.eval_images,
           kd_config_int(cfg, "data.holdout") > 0 ? "held-out training" : "val", left_out_note(&st, note, sizeof note));
  }
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  kd_run_free(run);
  kd_prober_free(prober);
  kd_progress_free(prog);
  return rc;
}
