/* Disables tape nodes that cannot reach the chosen tensors (tapecut.h). */
#include "probe/tapecut.h"

#include <stdint.h>
#include <stdlib.h>

/* Open-addressing set of tensor pointers. */
typedef struct {
  const KdTensor **slot;
  size_t mask;
} PtrSet;

static size_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
  return (size_t)x;
}

static void set_add(PtrSet *s, const KdTensor *t) {
  size_t i = hash_ptr(t) & s->mask;
  while (s->slot[i] && s->slot[i] != t) i = (i + 1) & s->mask;
  s->slot[i] = t;
}

static int set_has(const PtrSet *s, const KdTensor *t) {
  for (size_t i = hash_ptr(t) & s->mask; s->slot[i]; i = (i + 1) & s->mask)
    if (s->slot[i] == t) return 1;
  return 0;
}

static void backward_nothing(KdCtx *c, KdNode *node) {
  (void)c, (void)node;
}

int kd_tape_cut_below(KdNode *newest, KdTensor *const *chosen, int nchosen) {
  size_t n = 0;
  for (KdNode *p = newest; p; p = p->prev) n++;
  size_t cap = 16;
  while (cap < 2 * (n + (size_t)nchosen) + 16) cap <<= 1;
  PtrSet set = {calloc(cap, sizeof *set.slot), cap - 1};
  KdNode **order = malloc(sizeof *order * (n ? n : 1));
  if (!set.slot || !order) {
    free(set.slot), free(order);
    return -1;
  }
  size_t k = n;
  for (KdNode *p = newest; p; p = p->prev) order[--k] = p; /* oldest first */
  for (int i = 0; i < nchosen; i++)
    if (chosen[i]) set_add(&set, chosen[i]);
  int cut = 0;
  for (size_t i = 0; i < n; i++) {
    KdNode *node = order[i];
    int reaches = 0;
    for (int j = 0; j < node->nin && !reaches; j++) reaches = node->in[j] && set_has(&set, node->in[j]);
    if (reaches) {
      set_add(&set, node->out);
    } else {
      node->backward = backward_nothing;
      cut++;
    }
  }
  free(set.slot), free(order);
  return cut;
}
