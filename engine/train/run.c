#include "train/run.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/gemm.h"
#include "train/control.h"
#include "train/dist.h"
#include "core/fileio.h"

typedef enum { MSG_SET, MSG_PAUSE, MSG_RESUME, MSG_STEP, MSG_STOP } MsgKind;

typedef struct Msg {
  struct Msg *next;
  MsgKind kind;
  char source[16];
  int undo; /* MSG_SET: logged as an undo */
  char key[128];
  char value[1024];
} Msg;

struct KdRun {
  /* Fixed after kd_run_new. */
  KdConfig *cfg;
  KdSession *s;
  KdRunAfterStep after_step;
  void *after_user;
  KdRunOnSet on_set;
  void *on_set_user;
  KdProgressFn progress;
  void *progress_user;
  int opening; /* progress goes to the caller while the session opens */
  int inspect;
  char dir[4096];
  int lock_fd;

  pthread_t thread;
  int started, joined;
  pthread_mutex_t mu;
  pthread_cond_t cv;

  /* Under mu. */
  Msg *head, *tail;
  int closed;          /* takes no more commands */
  KdConfig *validator; /* checks kd_run_set values without touching cfg */
  KdRunStatus st;
  KdStepStats ring[KD_RUN_RING];
  int ring_n, ring_next;

  /* Run thread only. */
  KdControlReader *ctl;
  int paused, stop, step_once, failed, last_ck;
  char stop_extra[128];
  double ema_dt;
  KdError err;
  float *bn_saved; /* BN running statistics before the step (see one_step) */
  size_t bn_n[2], bn_cap;
  char *shared;    /* data-parallel runs, rank 0: the sets applied since the last step boundary ("key\0value\0"...) */
  size_t shared_len, shared_cap;
};

const char *kd_run_state_name(KdRunState s) {
  static const char *const names[] = {"ready", "running", "paused", "stopped", "finished", "failed"};
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void esc(const char *s, char *out, size_t len) { kd_json_escape(s ? s : "", out, len); }

/* ---- status (run thread writes, anyone reads) ---- */

static void set_state(KdRun *r, KdRunState s, const char *phase) {
  pthread_mutex_lock(&r->mu);
  r->st.state = s;
  if (phase) r->st.phase = phase;
  pthread_mutex_unlock(&r->mu);
}

static void set_message(KdRun *r, const char *msg) {
  pthread_mutex_lock(&r->mu);
  snprintf(r->st.message, sizeof r->st.message, "%s", msg);
  pthread_mutex_unlock(&r->mu);
}

static KdRunState live_state(const KdRun *r) { return r->paused ? KD_RUN_PAUSED : KD_RUN_RUNNING; }

static void run_progress(void *user, const char *what, long done, long total) {
  KdRun *r = user;
  if (r->opening) {
    if (r->progress) r->progress(r->progress_user, what, done, total);
    return;
  }
  pthread_mutex_lock(&r->mu);
  r->st.phase_done = done;
  r->st.phase_total = total;
  pthread_mutex_unlock(&r->mu);
}

static void event(KdRun *r, const char *type, const char *extra) {
  KdError e;
  if (kd_session_event(r->s, type, extra, &e)) set_message(r, e.msg); /* a full disk must not end training */
}

/* ---- applying commands (run thread) ---- */

/* The trainer reads most live settings from cfg each step; these have a
 * copy elsewhere that must follow. */
static void sync_live(KdRun *r) {
  KdOptim *o = kd_trainer_optim(kd_session_trainer(r->s));
  kd_optim_set_lr(o, (float)kd_config_num(r->cfg, "train.lr"));
  kd_optim_set_clip_norm(o, (float)kd_config_num(r->cfg, "train.clip_norm"));
}

/* ---- data-parallel runs: rank 0 decides, every rank follows ---- */

/* Rank 0 keeps each set it applied for the next boundary's broadcast. */
static void share_set(KdRun *r, const char *key, const char *value) {
  if (kd_dist_size() < 2) return;
  size_t k = strlen(key) + 1, v = strlen(value) + 1;
  if (r->shared_len + k + v > r->shared_cap) {
    size_t cap = 2 * (r->shared_len + k + v) + 256;
    char *grown = realloc(r->shared, cap);
    if (!grown) {
      /* A set the other ranks never see would split the run. */
      fprintf(stderr, "kdscope: out of memory sharing a set with the other ranks\n");
      kd_dist_abort(1);
      return;
    }
    r->shared = grown, r->shared_cap = cap;
  }
  memcpy(r->shared + r->shared_len, key, k);
  memcpy(r->shared + r->shared_len + k, value, v);
  r->shared_len += k + v;
}

/* At every step boundary (and every poll while paused) rank 0 sends what
 * it applied: the sets, in order, and the run's pause/stop/step state.
 * The other ranks apply the same, so every rank changes at the same step;
 * their own queues (a signal mpirun forwarded to them) are not theirs to
 * act on. */
static void share_boundary(KdRun *r) {
  if (kd_dist_size() < 2) return;
  long head[4] = {(long)r->shared_len, r->paused, r->stop, r->step_once};
  kd_dist_bcast(head, sizeof head);
  if (kd_dist_rank() != 0) {
    if ((size_t)head[0] > r->shared_cap) {
      char *grown = realloc(r->shared, (size_t)head[0]);
      if (!grown) {
        fprintf(stderr, "kdscope: out of memory for rank 0's sets\n");
        kd_dist_abort(1);
        return;
      }
      r->shared = grown, r->shared_cap = (size_t)head[0];
    }
    r->shared_len = (size_t)head[0];
  }
  if (head[0] > 0) kd_dist_bcast(r->shared, (size_t)head[0]);
  if (kd_dist_rank() != 0) {
    for (size_t at = 0; at < r->shared_len;) {
      const char *key = r->shared + at, *value = key + strlen(key) + 1;
      at = (size_t)(value - r->shared) + strlen(value) + 1;
      KdError e;
      /* Rank 0 checked and applied it; the same config takes it here. */
      if (kd_config_set(r->cfg, key, value, &e)) {
        fprintf(stderr, "kdscope: rank %d cannot apply rank 0's set %s=%s: %s\n", kd_dist_rank(), key, value, e.msg);
        kd_dist_abort(1);
      }
    }
    if (r->shared_len) sync_live(r);
    r->paused = (int)head[1], r->stop = (int)head[2], r->step_once = (int)head[3];
    set_state(r, live_state(r), NULL);
  }
  r->shared_len = 0;
}

static void apply_set(KdRun *r, const char *key, const char *value, const char *source, long seq, int replayed, int undo) {
  char old[1024], canon[1024], k[300], v[2100], o[2100], src[40], tail[96] = "";
  kd_config_format(r->cfg, key, old, sizeof old);
  esc(key, k, sizeof k);
  esc(source, src, sizeof src);
  if (replayed) snprintf(tail, sizeof tail, ",\"replayed\":true");
  if (undo) snprintf(tail + strlen(tail), sizeof tail - strlen(tail), ",\"undo\":true");
  if (seq > 0) snprintf(tail + strlen(tail), sizeof tail - strlen(tail), ",\"seq\":%ld", seq);
  KdError e;
  char extra[6000];
  if (kd_control_check_set_avail(r->cfg, kd_session_distill_avail(r->s), key, value, canon, sizeof canon, &e)) {
    char m[2100];
    esc(value, v, sizeof v);
    esc(e.msg, m, sizeof m);
    snprintf(extra, sizeof extra, "\"key\":\"%s\",\"value\":\"%s\",\"source\":\"%s\",\"message\":\"%s\"%s", k, v, src, m, tail);
    event(r, "set_refused", extra);
    set_message(r, e.msg);
    return;
  }
  sync_live(r);
  share_set(r, key, canon);
  esc(canon, v, sizeof v);
  esc(old, o, sizeof o);
  snprintf(extra, sizeof extra, "\"key\":\"%s\",\"value\":\"%s\",\"old\":\"%s\",\"source\":\"%s\"%s", k, v, o, src, tail);
  event(r, "set", extra);
  pthread_mutex_lock(&r->mu);
  r->st.changes++;
  pthread_mutex_unlock(&r->mu);
  if (r->on_set) r->on_set(r->on_set_user, key, canon);
}

static void ignored(KdRun *r, const char *cmd, long seq, const char *reason) {
  char extra[256];
  snprintf(extra, sizeof extra, "\"cmd\":\"%s\",\"reason\":\"%s\",\"seq\":%ld", cmd, reason, seq);
  event(r, "control_ignored", extra);
}

static void do_pause(KdRun *r, const char *source, long seq) {
  char src[40], extra[128];
  if (r->paused) {
    if (seq > 0) ignored(r, "pause", seq, "already paused");
    return;
  }
  r->paused = 1;
  esc(source, src, sizeof src);
  int n = snprintf(extra, sizeof extra, "\"source\":\"%s\"", src);
  if (seq > 0) snprintf(extra + n, sizeof extra - (size_t)n, ",\"seq\":%ld", seq);
  event(r, "pause", extra);
  set_state(r, KD_RUN_PAUSED, "idle");
}

static const char inspect_refusal[] = "an inspect session does not train: it shows the models as they are";

static void do_resume(KdRun *r, const char *source, long seq) {
  char src[40], extra[128];
  if (r->inspect) {
    ignored(r, "resume", seq, inspect_refusal);
    set_message(r, inspect_refusal);
    return;
  }
  if (!r->paused) {
    if (seq > 0) ignored(r, "resume", seq, "not paused");
    return;
  }
  r->paused = 0;
  esc(source, src, sizeof src);
  int n = snprintf(extra, sizeof extra, "\"source\":\"%s\"", src);
  if (seq > 0) snprintf(extra + n, sizeof extra - (size_t)n, ",\"seq\":%ld", seq);
  event(r, "resume", extra);
  set_state(r, KD_RUN_RUNNING, NULL);
}

static void do_stop(KdRun *r, const char *source, long seq) {
  if (r->stop) return;
  char src[40];
  esc(source, src, sizeof src);
  int n = snprintf(r->stop_extra, sizeof r->stop_extra, "\"source\":\"%s\"", src);
  if (seq > 0) snprintf(r->stop_extra + n, sizeof r->stop_extra - (size_t)n, ",\"seq\":%ld", seq);
  r->stop = 1;
}

static void handle(KdRun *r, const Msg *m) {
  switch (m->kind) {
  case MSG_SET: apply_set(r, m->key, m->value, m->source, 0, 0, m->undo); break;
  case MSG_PAUSE: do_pause(r, m->source, 0); break;
  case MSG_RESUME: do_resume(r, m->source, 0); break;
  case MSG_STEP:
    if (r->inspect) {
      ignored(r, "step", 0, inspect_refusal);
      set_message(r, inspect_refusal);
    } else {
      r->step_once = r->paused;
    }
    break;
  case MSG_STOP: do_stop(r, m->source, 0); break;
  }
}

/* Takes the whole queue under the lock, applies it outside. */
static void drain(KdRun *r) {
  pthread_mutex_lock(&r->mu);
  Msg *m = r->head;
  r->head = r->tail = NULL;
  pthread_mutex_unlock(&r->mu);
  while (m) {
    Msg *next = m->next;
    if (kd_dist_rank() == 0) handle(r, m);
    free(m);
    m = next;
  }
}

static void poll_control(KdRun *r) {
  if (!r->ctl) return;
  KdControlCmd c;
  KdError e;
  int before, rc;
  while ((rc = kd_control_next(r->ctl, &c, &before, &e)) != 0) {
    if (rc < 0) {
      char m[2100], extra[2200];
      esc(e.msg, m, sizeof m);
      snprintf(extra, sizeof extra, "\"message\":\"%s\"", m);
      event(r, "control_error", extra);
      continue;
    }
    /* Pause, resume and stop written before this process started were
     * meant for a process that is gone; sets still apply (docs/RUNS.md). */
    if (c.kind != KD_CTL_SET && before) {
      ignored(r, kd_control_kind_name(c.kind), c.seq, "written before this process started");
      continue;
    }
    switch (c.kind) {
    case KD_CTL_SET: apply_set(r, c.key, c.value, "cli", c.seq, before, c.undo); break;
    case KD_CTL_PAUSE: do_pause(r, "cli", c.seq); break;
    case KD_CTL_RESUME: do_resume(r, "cli", c.seq); break;
    case KD_CTL_STOP: do_stop(r, "cli", c.seq); break;
    }
  }
}

/* ---- steps, evaluation, checkpoints (run thread) ---- */

static int fail(KdRun *r, const char *what) {
  r->failed = 1;
  if (what) kd_error_prefix(&r->err, "%s: ", what);
  set_message(r, r->err.msg);
  return -1;
}

/* Every rank evaluates its share of the batches (the BN statistics are
 * the same on every rank: each step averages them) and rank 0 gathers the
 * detections and logs the numbers; rank 0 alone writes checkpoints. */
static int evaluate(KdRun *r) {
  set_state(r, live_state(r), "eval");
  KdEvalResult er;
  int bad = kd_session_evaluate(r->s, &er, &r->err);
  kd_eval_result_free(&er); /* the counts stay */
  if (bad) return fail(r, "evaluation");
  pthread_mutex_lock(&r->mu);
  r->st.eval_step = kd_session_steps_done(r->s);
  r->st.eval_images = er.images;
  r->st.eval_left_out = er.left_out;
  memcpy(r->st.eval, er.stats, sizeof r->st.eval);
  r->st.phase = "idle";
  pthread_mutex_unlock(&r->mu);
  return 0;
}

/* FNV-1a of the weights and buffers of the student and the distiller. */
static uint64_t state_hash(KdRun *r) {
  KdDistiller *d = kd_session_distiller(r->s);
  KdParams *p[2] = {kd_model_params(kd_session_student(r->s)), d ? kd_distiller_params(d) : NULL};
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < 2; i++)
    for (int b = 0; p[i] && b < 2; b++) {
      size_t n;
      const unsigned char *v = (const unsigned char *)(b ? kd_params_buffers(p[i], &n) : kd_params_values(p[i], &n));
      for (size_t k = 0; k < n * sizeof(float); k++) h = (h ^ v[k]) * 0x100000001b3ULL;
    }
  return h;
}

static int checkpoint(KdRun *r) {
  /* Data-parallel ranks hold the same weights at every step; a rank that
   * went its own way (a change it missed) ends the run here rather than
   * writing a checkpoint of one rank's weights. */
  if (kd_dist_size() > 1 && !kd_dist_same(state_hash(r))) {
    kd_error(&r->err, "the ranks' weights differ at step %d", kd_session_steps_done(r->s));
    return fail(r, "checkpoint");
  }
  if (kd_dist_rank() == 0) {
    set_state(r, live_state(r), "checkpoint");
    if (kd_session_checkpoint(r->s, &r->err)) return fail(r, "checkpoint");
  }
  r->last_ck = kd_session_steps_done(r->s);
  set_state(r, live_state(r), "idle");
  return 0;
}

static void publish(KdRun *r, const KdStepStats *st, double dt) {
  r->ema_dt = r->ema_dt > 0 ? 0.9 * r->ema_dt + 0.1 * dt : dt;
  pthread_mutex_lock(&r->mu);
  r->st.last = *st;
  r->st.step = st->step;
  r->st.rate = r->ema_dt > 0 ? 1.0 / r->ema_dt : 0.0;
  r->st.phase = "idle";
  if (!st->skipped) {
    r->ring[r->ring_next] = *st;
    r->ring_next = (r->ring_next + 1) % KD_RUN_RING;
    if (r->ring_n < KD_RUN_RING) r->ring_n++;
  }
  pthread_mutex_unlock(&r->mu);
}

/* The buffers (BN running statistics) of the student and the distiller:
 * a training forward updates them before the loss is known, so a step
 * that turns out non-finite would leave NaN in them. The run saves them
 * before each step and puts them back when the trainer skips the update. */
static float *buffers(KdRun *r, int i, size_t *n) {
  KdDistiller *d = kd_session_distiller(r->s);
  KdParams *p = i == 0 ? kd_model_params(kd_session_student(r->s)) : d ? kd_distiller_params(d) : NULL;
  *n = 0;
  return p ? kd_params_buffers(p, n) : NULL;
}

/* The distiller's store may grow during the step (a method listed for the
 * first time); its saved prefix is what existed before. */
static void save_buffers(KdRun *r, int restore) {
  size_t n[2];
  float *b[2] = {buffers(r, 0, &n[0]), buffers(r, 1, &n[1])};
  if (!restore && n[0] + n[1] > r->bn_cap) {
    float *grown = realloc(r->bn_saved, (n[0] + n[1]) * sizeof *grown);
    if (grown) r->bn_saved = grown, r->bn_cap = n[0] + n[1];
  }
  size_t at = 0;
  for (int i = 0; i < 2; i++) {
    if (!restore) r->bn_n[i] = b[i] && n[0] + n[1] <= r->bn_cap ? n[i] : 0;
    size_t k = r->bn_n[i] < n[i] ? r->bn_n[i] : n[i];
    if (restore && k) memcpy(b[i], r->bn_saved + at, k * sizeof *b[i]);
    else if (k) memcpy(r->bn_saved + at, b[i], k * sizeof *b[i]);
    at += r->bn_n[i];
  }
}

static int one_step(KdRun *r) {
  KdSession *s = r->s;
  set_state(r, live_state(r), "step");
  KdStepStats st;
  double t0 = now_s();
  save_buffers(r, 0);
  if (kd_session_step(s, &st, &r->err)) return fail(r, NULL);
  if (st.skipped) save_buffers(r, 1);
  publish(r, &st, now_s() - t0);
  if (r->after_step) r->after_step(r->after_user, s, &st);
  if (st.skipped) {
    /* The trainer skipped the update: the weights are the last good ones.
     * Pause so that a set can fix the cause before going on. */
    char msg[256], part[120], extra[300];
    snprintf(msg, sizeof msg,
             "non-finite %s in step %d: the update was skipped and the run paused with the last good weights; "
             "change a setting and resume",
             st.bad_part, st.step + 1);
    set_message(r, msg);
    if (!r->paused) {
      r->paused = 1;
      esc(st.bad_part, part, sizeof part);
      snprintf(extra, sizeof extra, "\"source\":\"run\",\"reason\":\"nonfinite\",\"part\":\"%s\"", part);
      event(r, "pause", extra);
    }
    set_state(r, KD_RUN_PAUSED, "idle");
    return 0;
  }
  int step = st.step, total = kd_session_total_steps(s);
  int eval_every = kd_config_int(r->cfg, "train.eval_every"), ck_every = kd_config_int(r->cfg, "train.checkpoint_every");
  if (eval_every > 0 && step % eval_every == 0 && step < total && evaluate(r)) return -1;
  if (ck_every > 0 && step % ck_every == 0 && step < total && checkpoint(r)) return -1;
  return 0;
}

static void wait_paused(KdRun *r) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += 100 * 1000 * 1000; /* wake to poll the control file */
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&r->mu);
  if (!r->head) pthread_cond_timedwait(&r->cv, &r->mu, &ts);
  pthread_mutex_unlock(&r->mu);
}

static void finish(KdRun *r) {
  KdSession *s = r->s;
  pthread_mutex_lock(&r->mu);
  r->closed = 1;
  pthread_mutex_unlock(&r->mu);
  /* Changes accepted before closing are applied and logged: every
   * accepted set appears in events.jsonl. */
  drain(r);
  if (r->failed) {
    char m[2100], extra[2200];
    esc(r->err.msg, m, sizeof m);
    snprintf(extra, sizeof extra, "\"message\":\"%s\"", m);
    event(r, "error", extra);
    set_state(r, KD_RUN_FAILED, "idle");
    if (kd_dist_size() > 1) {
      /* The other ranks wait in a collective this one will not reach:
       * end them all (the run directory stays resumable). */
      fprintf(stderr, "kdscope: rank %d of %d failed: %s\n", kd_dist_rank(), kd_dist_size(), r->err.msg);
      kd_dist_abort(1);
    }
    return;
  }
  int done = kd_session_steps_done(s), finished = done >= kd_session_total_steps(s);
  if (done != r->last_ck && checkpoint(r)) {
    finish(r);
    return;
  }
  if (!finished) {
    event(r, "stop", r->stop_extra[0] ? r->stop_extra : NULL);
    set_state(r, KD_RUN_STOPPED, "idle");
    return;
  }
  if (evaluate(r)) {
    finish(r);
    return;
  }
  event(r, "finish", NULL);
  set_state(r, KD_RUN_FINISHED, "idle");
}

static void *run_main(void *arg) {
  KdRun *r = arg;
  int total = kd_session_total_steps(r->s);
  /* OpenMP's thread count is per calling thread: set it on this one. */
  int threads = kd_dist_threads(kd_config_int(r->cfg, "train.threads"));
  if (threads > 0) kd_set_threads(threads);
  if (r->inspect) {
    /* No step: the hook captures when something asked for it (the
     * start, a change, other images). */
    r->paused = 1;
    event(r, "inspect", NULL);
    while (drain(r), poll_control(r), !r->stop) {
      set_state(r, KD_RUN_PAUSED, "inspect");
      if (r->after_step) r->after_step(r->after_user, r->s, NULL);
      wait_paused(r);
    }
    finish(r);
    return NULL;
  }
  set_state(r, KD_RUN_RUNNING, "idle");
  for (;;) {
    drain(r);
    poll_control(r);
    share_boundary(r);
    if (r->stop || kd_session_steps_done(r->s) >= total) break;
    if (r->paused && !r->step_once) {
      set_state(r, KD_RUN_PAUSED, NULL);
      wait_paused(r);
      continue;
    }
    r->step_once = 0;
    if (one_step(r)) break;
  }
  finish(r);
  return NULL;
}

/* ---- public API ---- */

KdRun *kd_run_new(KdConfig *cfg, const KdRunOpts *o, KdError *err) {
  KdRun *r = calloc(1, sizeof *r);
  if (!r) return kd_error(err, "out of memory"), NULL;
  pthread_mutex_init(&r->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv, &ca);
  pthread_condattr_destroy(&ca);
  r->cfg = cfg;
  r->lock_fd = -1;
  r->after_step = o->after_step;
  r->after_user = o->after_step_user;
  r->on_set = o->on_set;
  r->on_set_user = o->on_set_user;
  r->progress = o->session.progress;
  r->progress_user = o->session.user;
  r->inspect = o->inspect;
  if (o->inspect && (o->session.resume_dir || kd_dist_size() > 1)) {
    kd_error(err, "an inspect session opens models, not a run: %s", o->session.resume_dir ? "it cannot resume one" : "it runs in one process");
    goto fail;
  }
  r->validator = kd_config_new();
  if (!r->validator) goto oom;
  for (int i = 0; i < kd_config_count(cfg); i++)
    if (kd_config_register(r->validator, kd_config_desc(cfg, i), 1)) goto oom;
  /* Rank 0 alone owns the run directory (lock, control file, logs). */
  int rank0 = kd_dist_rank() == 0;
  int locked = rank0 && o->session.resume_dir ? (r->lock_fd = kd_control_lock(o->session.resume_dir, err)) : 0;
  if (kd_dist_agree(locked < 0, err)) goto fail;
  KdSessionOpts so = o->session;
  so.progress = run_progress;
  so.user = r;
  r->opening = 1;
  r->s = kd_session_open(cfg, &so, err);
  r->opening = 0;
  if (!r->s) goto fail;
  snprintf(r->dir, sizeof r->dir, "%s", kd_rundir_path(kd_session_rundir(r->s)));
  int rc = rank0 && r->lock_fd < 0 && (r->lock_fd = kd_control_lock(r->dir, err)) < 0;
  long applied = 0;
  if (!rc && rank0 && o->session.resume_dir) {
    /* The set events that survived the cut are exactly the changes in
     * effect for the steps after the checkpoint. */
    int nsets = 0;
    rc = kd_control_replay_events(r->dir, cfg, &applied, &nsets, err);
    if (!rc && nsets) {
      char extra[64];
      snprintf(extra, sizeof extra, "\"sets\":%d", nsets);
      rc = kd_session_event(r->s, "live_restored", extra, err);
    }
  }
  if (!rc && rank0 && !o->no_control_file && !(r->ctl = kd_control_reader_new(r->dir, applied, err))) rc = -1;
  /* The live values rank 0 restored hold on every rank. */
  if (kd_dist_agree(rc, err) || (kd_dist_size() > 1 && kd_dist_share_config(cfg, err))) goto fail;
  if (o->session.resume_dir) sync_live(r);
  r->last_ck = kd_session_steps_done(r->s);
  r->st.state = KD_RUN_READY;
  r->st.step = kd_session_steps_done(r->s);
  r->st.total = kd_session_total_steps(r->s);
  r->st.eval_step = -1;
  r->st.phase = "idle";
  return r;
oom:
  kd_error(err, "out of memory");
fail:
  kd_run_free(r);
  return NULL;
}

int kd_run_start(KdRun *r, KdError *err) {
  if (r->started) return kd_error(err, "the run is already started");
  if (pthread_create(&r->thread, NULL, run_main, r)) return kd_error(err, "cannot start the run thread");
  r->started = 1;
  return 0;
}

static int enqueue(KdRun *r, MsgKind kind, const char *source, const char *key, const char *value, int undo, KdError *err) {
  Msg *m = calloc(1, sizeof *m);
  if (!m) return kd_error(err, "out of memory");
  m->kind = kind;
  m->undo = undo;
  snprintf(m->source, sizeof m->source, "%s", source ? source : "ui");
  pthread_mutex_lock(&r->mu);
  if (r->closed) {
    KdRunState s = r->st.state;
    pthread_mutex_unlock(&r->mu);
    free(m);
    return kd_error(err, "the run has ended (%s)", s == KD_RUN_RUNNING || s == KD_RUN_PAUSED ? "closing" : kd_run_state_name(s));
  }
  if (kind == MSG_SET && kd_control_check_set_avail(r->validator, r->s ? kd_session_distill_avail(r->s) : NULL, key, value,
                                                     m->value, sizeof m->value, err)) {
    pthread_mutex_unlock(&r->mu);
    free(m);
    return -1;
  }
  if (key) snprintf(m->key, sizeof m->key, "%s", key);
  if (r->tail) r->tail->next = m;
  else r->head = m;
  r->tail = m;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

int kd_run_pause(KdRun *r, const char *source, KdError *err) { return enqueue(r, MSG_PAUSE, source, NULL, NULL, 0, err); }
int kd_run_resume(KdRun *r, const char *source, KdError *err) { return enqueue(r, MSG_RESUME, source, NULL, NULL, 0, err); }
int kd_run_step_once(KdRun *r, KdError *err) { return enqueue(r, MSG_STEP, NULL, NULL, NULL, 0, err); }
int kd_run_stop(KdRun *r, const char *source, KdError *err) { return enqueue(r, MSG_STOP, source, NULL, NULL, 0, err); }

int kd_run_set(KdRun *r, const char *key, const char *value, const char *source, KdError *err) {
  if (!key || !value) return kd_error(err, "kd_run_set: key and value are required");
  return enqueue(r, MSG_SET, source, key, value, 0, err);
}

int kd_run_undo(KdRun *r, const char *key, const char *value, const char *source, KdError *err) {
  if (!key || !value) return kd_error(err, "kd_run_undo: key and value are required");
  return enqueue(r, MSG_SET, source, key, value, 1, err);
}

void kd_run_status(KdRun *r, KdRunStatus *out) {
  pthread_mutex_lock(&r->mu);
  *out = r->st;
  pthread_mutex_unlock(&r->mu);
}

int kd_run_recent(KdRun *r, int after_step, KdStepStats *out, int max) {
  int n = 0;
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < r->ring_n && n < max; i++) {
    const KdStepStats *st = &r->ring[(r->ring_next - r->ring_n + i + KD_RUN_RING) % KD_RUN_RING];
    if (st->step > after_step) out[n++] = *st;
  }
  pthread_mutex_unlock(&r->mu);
  return n;
}

KdSession *kd_run_session(KdRun *r) { return r->s; }

const char *kd_run_dir(const KdRun *r) { return r->dir; }

int kd_run_wait(KdRun *r) {
  if (r->started && !r->joined) {
    pthread_join(r->thread, NULL);
    r->joined = 1;
  }
  return r->failed ? -1 : 0;
}

void kd_run_free(KdRun *r) {
  if (!r) return;
  if (r->started && !r->joined) {
    kd_run_stop(r, "ui", NULL);
    kd_run_wait(r);
  }
  for (Msg *m = r->head; m;) {
    Msg *next = m->next;
    free(m);
    m = next;
  }
  kd_control_reader_free(r->ctl);
  kd_session_free(r->s);
  kd_control_unlock(r->lock_fd);
  kd_config_free(r->validator);
  free(r->bn_saved);
  free(r->shared);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}
