/* The progress line across phases: after an evaluation the step line
 * keeps the run's clock (its rate counts from the first step, not from
 * zero again), and the next evaluation starts a clock of its own. Drawn
 * into a memory stream (not a tty: a line per draw). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "progress.h"

static void nap(double s) {
  struct timespec ts = {0, (long)(s * 1e9)};
  nanosleep(&ts, NULL);
}

/* The rate on the last line of text that starts with `what`. */
static double last_rate(const char *text, const char *what) {
  double rate = -1;
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, what, strlen(what))) continue;
    const char *r = strstr(l, "/s ");
    if (!r || r > (strchr(l, '\n') ? strchr(l, '\n') : l + strlen(l))) continue;
    const char *b = r;
    while (b > l && b[-1] != ' ') b--;
    rate = strtod(b, NULL);
  }
  return rate;
}

int main(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  KdProgress *p = kd_progress_new(f, 0);
  kd_progress_update(p, "step", 0, 100, NULL);
  nap(0.2);
  kd_progress_update(p, "step", 10, 100, NULL); /* not drawn: within 5 s */
  kd_progress_update(p, "eval", 0, 5, NULL);
  nap(0.1);
  kd_progress_update(p, "eval", 5, 5, NULL);
  nap(0.1);
  kd_progress_update(p, "step", 11, 100, NULL); /* drawn: the phase changed */
  fflush(f);
  double r = last_rate(text, "step");
  /* 11 steps in ~0.4 s: ~27/s; a clock restarted at the switch reads 0. */
  CHECK_MSG(r > 5 && r < 60, "step rate after the evaluation: %g (text:\n%s)", r, text);
  nap(1.0);
  kd_progress_update(p, "eval", 0, 5, NULL);
  nap(0.1);
  kd_progress_update(p, "eval", 5, 5, NULL);
  fflush(f);
  r = last_rate(text, "eval");
  /* 5 images in ~0.1 s: ~50/s; the first evaluation's clock would give ~3. */
  CHECK_MSG(r > 20, "second evaluation's rate: %g (text:\n%s)", r, text);
  kd_progress_free(p);
  fclose(f);
  free(text);
  return check_status("test_progress");
}
