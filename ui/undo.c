#include "undo.h"

#include <string.h>

static void count(const KdRunLog *log, int *sets, int *undos) {
  *sets = *undos = 0;
  for (int i = 0; log && i < kd_runlog_nevents(log); i++) {
    KdRunEvent e = kd_runlog_event(log, i);
    if (strcmp(e.type, "set") && strcmp(e.type, "set_refused")) continue;
    if (e.undo) (*undos)++;
    else (*sets)++;
  }
}

void kds_undo_reset(KdsUndo *u, KdsBridge *b) {
  memset(u, 0, sizeof *u);
  if (b) count(kds_bridge_log(b), &u->sets_seen, &u->undos_seen);
}

void kds_undo_note_set(KdsUndo *u) { u->sets_sent++; }

gboolean kds_undo_peek(const KdRunLog *log, int skip, char *key, size_t klen, char *value, size_t vlen, int *step) {
  int n = log ? kd_runlog_nevents(log) : 0, top = 0;
  int *stack = g_new(int, n > 0 ? n : 1);
  for (int i = 0; i < n; i++) {
    KdRunEvent e = kd_runlog_event(log, i);
    if (strcmp(e.type, "set")) continue;
    if (!e.undo) stack[top++] = i;
    else if (top > 0) top--;
  }
  gboolean ok = skip >= 0 && top - skip > 0;
  if (ok) {
    KdRunEvent e = kd_runlog_event(log, stack[top - 1 - skip]);
    g_strlcpy(key, e.key, klen);
    g_strlcpy(value, e.old, vlen);
    if (step) *step = e.step;
  }
  g_free(stack);
  return ok;
}

/* Sent minus seen, the seen count moved on to the log's (never below
 * zero: events from elsewhere count as seen). */
static int in_flight(int *sent, int *seen, int now) {
  *sent -= now - *seen;
  *seen = now;
  if (*sent < 0) *sent = 0;
  return *sent;
}

gboolean kds_undo_last(KdsUndo *u, KdsBridge *b, char *msg, size_t len) {
  const KdRunLog *log = b ? kds_bridge_log(b) : NULL;
  int sets, undos;
  count(log, &sets, &undos);
  if (in_flight(&u->sets_sent, &u->sets_seen, sets) > 0) {
    g_snprintf(msg, len, "the last change has not reached the run yet (it applies at the next step): undo it then");
    return FALSE;
  }
  int skip = in_flight(&u->undos_sent, &u->undos_seen, undos);
  char key[128], value[1024];
  int step;
  if (!kds_undo_peek(log, skip, key, sizeof key, value, sizeof value, &step)) {
    g_snprintf(msg, len, "nothing to undo: the run has no live change%s", skip ? " left (undos still applying)" : "");
    return FALSE;
  }
  GError *e = NULL;
  if (!kds_bridge_undo(b, key, value, &e)) {
    g_snprintf(msg, len, "undo: %s", e->message);
    g_error_free(e);
    return FALSE;
  }
  u->undos_sent++;
  g_snprintf(msg, len, "undo: %s back to %s (the change at step %d; applies at the next step)", key, value, step);
  return TRUE;
}
