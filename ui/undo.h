/* Undo of live changes (Ctrl+Z): the run's own set events are the
 * history, whoever made them (this window, another one, `kdscope set`).
 * An undo puts back the value the newest change not yet undone replaced,
 * as a set event of its own marked "undo":true, so the curves and the
 * exported figures show it as an undo; an undo event takes its change off
 * the history, so Ctrl+Z again walks further back. GTK main thread only. */
#ifndef KDS_UNDO_H
#define KDS_UNDO_H

#include <glib.h>

#include "bridge.h"

/* What this window sent that the run's log does not show yet. */
typedef struct KdsUndo {
  int sets_sent, undos_sent;
  int sets_seen, undos_seen; /* set / undo events in the log when counting began, plus those seen since */
} KdsUndo;

/* Starts counting over the run's log as it is now. */
void kds_undo_reset(KdsUndo *u, KdsBridge *b);
/* This window sent a (non-undo) change. */
void kds_undo_note_set(KdsUndo *u);
/* The change an undo would take back now, skipping `skip` more recent
 * ones: its key, the value it replaced, its step. FALSE when there is
 * none. */
gboolean kds_undo_peek(const KdRunLog *log, int skip, char *key, size_t klen, char *value, size_t vlen, int *step);
/* Undoes the newest change not undone (counting the undos already sent
 * but not yet applied). TRUE when an undo was sent; msg always says what
 * happened ("nothing to undo", an error, or what is put back). */
gboolean kds_undo_last(KdsUndo *u, KdsBridge *b, char *msg, size_t len);

#endif
