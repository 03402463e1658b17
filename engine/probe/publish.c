/* Latest-snapshot mailbox (publish.h). */
#include "probe/publish.h"

#include <pthread.h>
#include <stdlib.h>

struct KdProbeBox {
  pthread_mutex_t mu;
  KdSnapshot *latest;
  uint64_t gen;
  KdProbeNotify notify;
  void *notify_user;
};

KdProbeBox *kd_probe_box_new(void) {
  KdProbeBox *b = calloc(1, sizeof *b);
  if (b && pthread_mutex_init(&b->mu, NULL)) {
    free(b);
    return NULL;
  }
  return b;
}

void kd_probe_box_free(KdProbeBox *b) {
  if (!b) return;
  kd_snapshot_free(b->latest);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

void kd_probe_publish(KdProbeBox *b, KdSnapshot *s) {
  pthread_mutex_lock(&b->mu);
  KdSnapshot *old = b->latest;
  b->latest = s;
  uint64_t gen = ++b->gen;
  KdProbeNotify fn = b->notify;
  void *user = b->notify_user;
  pthread_mutex_unlock(&b->mu);
  kd_snapshot_free(old); /* outside the lock: freeing may take a moment */
  if (fn) fn(user, gen);
}

void kd_probe_box_set_notify(KdProbeBox *b, KdProbeNotify fn, void *user) {
  pthread_mutex_lock(&b->mu);
  b->notify = fn;
  b->notify_user = user;
  pthread_mutex_unlock(&b->mu);
}

KdSnapshot *kd_probe_latest(KdProbeBox *b, uint64_t *generation) {
  pthread_mutex_lock(&b->mu);
  KdSnapshot *s = kd_snapshot_ref(b->latest);
  if (generation) *generation = b->gen;
  pthread_mutex_unlock(&b->mu);
  return s;
}

uint64_t kd_probe_generation(KdProbeBox *b) {
  pthread_mutex_lock(&b->mu);
  uint64_t g = b->gen;
  pthread_mutex_unlock(&b->mu);
  return g;
}
