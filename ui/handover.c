/* Run thread -> main loop hand-over: at most one pending idle; stale snapshot generations dropped.
 * Must not touch GTK, the run or the window, nor block the run thread: it moves data, calls back. */
#include "handover.h"

struct KdsHandover {
  KdProbeBox *box;
  KdsHandoverFn fn;
  gpointer user;
  uint64_t delivered; /* generation of the last snapshot handed on (main thread) */
  guint callbacks;    /* main thread */
  GMutex mu;          /* guards what follows */
  guint idle;         /* the pending callback's source, 0 when none */
  GPtrArray *sets;    /* key, value, ... applied since the last callback */
  guint coalesced;
};

static gboolean deliver(gpointer data) {
  KdsHandover *h = data;
  g_mutex_lock(&h->mu);
  h->idle = 0;
  GPtrArray *sets = h->sets;
  h->sets = g_ptr_array_new();
  g_mutex_unlock(&h->mu);
  g_ptr_array_add(sets, NULL);
  uint64_t gen = 0;
  KdSnapshot *snap = h->box ? kd_probe_latest(h->box, &gen) : NULL;
  if (snap && gen <= h->delivered) kd_snapshot_free(snap), snap = NULL; /* seen already */
  if (snap) h->delivered = gen;
  h->callbacks++;
  h->fn(h->user, snap, (char **)g_ptr_array_free(sets, FALSE));
  return G_SOURCE_REMOVE;
}

/* Under h->mu: one callback pending at most. Default priority: ahead of
 * the frame clock's redraw, so the panels paint it in the next frame. */
static void post_locked(KdsHandover *h) {
  if (h->idle) {
    h->coalesced++;
    return;
  }
  h->idle = g_idle_add_full(G_PRIORITY_DEFAULT, deliver, h, NULL);
}

void kds_handover_snapshot(void *handover, uint64_t generation) {
  KdsHandover *h = handover;
  (void)generation; /* the callback reads the latest generation itself */
  g_mutex_lock(&h->mu);
  post_locked(h);
  g_mutex_unlock(&h->mu);
}

void kds_handover_set(void *handover, const char *key, const char *value) {
  KdsHandover *h = handover;
  g_mutex_lock(&h->mu);
  g_ptr_array_add(h->sets, g_strdup(key));
  g_ptr_array_add(h->sets, g_strdup(value));
  post_locked(h);
  g_mutex_unlock(&h->mu);
}

KdsHandover *kds_handover_new(KdProbeBox *box, KdsHandoverFn fn, gpointer user) {
  KdsHandover *h = g_new0(KdsHandover, 1);
  h->box = box;
  h->fn = fn;
  h->user = user;
  g_mutex_init(&h->mu);
  h->sets = g_ptr_array_new();
  return h;
}

void kds_handover_free(KdsHandover *h) {
  if (!h) return;
  if (h->idle) g_source_remove(h->idle);
  for (guint i = 0; i < h->sets->len; i++) g_free(g_ptr_array_index(h->sets, i));
  g_ptr_array_free(h->sets, TRUE);
  g_mutex_clear(&h->mu);
  g_free(h);
}

void kds_handover_counts(KdsHandover *h, guint *callbacks, guint *coalesced) {
  *callbacks = h->callbacks;
  g_mutex_lock(&h->mu);
  *coalesced = h->coalesced;
  g_mutex_unlock(&h->mu);
}
