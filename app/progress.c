#include "progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Where each phase ("step", "eval"...) began: switching back to a phase
 * that continues its count keeps its clock, so the step line's elapsed
 * time and rate span the whole run (evaluations included) instead of
 * restarting after each one; a phase that counts from the start again (the
 * next evaluation) starts a new clock. */
#define MAX_PHASES 4
typedef struct Phase {
  char what[64];
  long start_done, last_done;
  double start;
} Phase;

struct KdProgress {
  FILE *out;
  int tty, quiet, drawn;
  char what[64];
  long start_done;
  double start, last_draw;
  Phase phases[MAX_PHASES];
  int nphases;
  Phase *cur; /* the phase drawn */
};

/* The phase's record, its clock restarted when it is new or counts anew. */
static Phase *phase_of(KdProgress *p, const char *what, long done, double t) {
  Phase *ph = NULL;
  for (int i = 0; i < p->nphases && !ph; i++)
    if (!strncmp(p->phases[i].what, what, sizeof p->phases[i].what - 1)) ph = &p->phases[i];
  if (!ph) {
    ph = &p->phases[p->nphases < MAX_PHASES ? p->nphases++ : MAX_PHASES - 1];
    snprintf(ph->what, sizeof ph->what, "%s", what);
  } else if (done > ph->last_done) {
    return ph;
  }
  ph->start = t;
  ph->start_done = ph->last_done = done;
  return ph;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

KdProgress *kd_progress_new(FILE *out, int quiet) {
  KdProgress *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->out = out;
  p->tty = isatty(fileno(out));
  p->quiet = quiet;
  p->last_draw = -1e9;
  return p;
}

void kd_progress_free(KdProgress *p) { free(p); }

static void fmt_time(double s, char *buf, size_t len) {
  if (s < 0 || s > 1e7) snprintf(buf, len, "--:--");
  else if (s >= 3600) snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
  else snprintf(buf, len, "%d:%02d", (int)s / 60, (int)s % 60);
}

void kd_progress_update(KdProgress *p, const char *what, long done, long total, const char *msg) {
  if (!p || p->quiet) return;
  double t = now_s();
  if (strncmp(p->what, what, sizeof p->what - 1)) {
    if (p->drawn && p->tty) fputc('\n', p->out);
    snprintf(p->what, sizeof p->what, "%s", what);
    p->cur = phase_of(p, what, done, t);
    p->start = p->cur->start;
    p->start_done = p->cur->start_done;
    p->drawn = 0;
    p->last_draw = -1e9;
  }
  if (p->cur) p->cur->last_done = done;
  int last = total > 0 && done >= total;
  double every = p->tty ? 0.1 : 5.0;
  if (!last && t - p->last_draw < every) return;
  p->last_draw = t;
  double el = t - p->start, rate = el > 0 ? (double)(done - p->start_done) / el : 0.0;
  char eta[32], elapsed[32];
  fmt_time(total > 0 && rate > 0 ? (double)(total - done) / rate : -1, eta, sizeof eta);
  fmt_time(el, elapsed, sizeof elapsed);
  char bar[32] = "";
  if (total > 0) {
    int w = 24, f = (int)((double)w * (double)done / (double)total);
    if (f > w) f = w;
    for (int i = 0; i < w; i++) bar[i] = i < f ? '#' : '.';
    bar[w] = 0;
  }
  if (p->tty) fputs("\r\033[K", p->out);
  if (total > 0)
    fprintf(p->out, "%s [%s] %ld/%ld %.1f/s %s eta %s%s%s", what, bar, done, total, rate, elapsed, eta, msg ? "  " : "", msg ? msg : "");
  else
    fprintf(p->out, "%s %ld %.1f/s %s%s%s", what, done, rate, elapsed, msg ? "  " : "", msg ? msg : "");
  if (!p->tty) fputc('\n', p->out);
  fflush(p->out);
  p->drawn = 1;
}

void kd_progress_message(KdProgress *p, const char *fmt, ...) {
  if (!p) return;
  if (p->tty && p->drawn) fputs("\r\033[K", p->out);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(p->out, fmt, ap);
  va_end(ap);
  fputc('\n', p->out);
  p->last_draw = -1e9; /* redraw the bar on the next update */
  fflush(p->out);
}

void kd_progress_done(KdProgress *p) {
  if (!p || p->quiet) return;
  if (p->tty && p->drawn) fputc('\n', p->out);
  p->drawn = 0;
  p->what[0] = 0;
  fflush(p->out);
}

void kd_progress_fn(void *user, const char *what, long done, long total) {
  kd_progress_update(user, what, done, total, NULL);
}
