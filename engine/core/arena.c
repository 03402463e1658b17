#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>

#define KD_ALIGN 64

typedef struct Chunk {
  struct Chunk *next;
  size_t size, used;
  unsigned char *base;
} Chunk;

struct KdArena {
  Chunk *head;        /* current chunk; older chunks follow */
  size_t cycle_used;  /* bytes handed out since the last reset */
  size_t peak;
  size_t mallocs;
};

static Chunk *chunk_new(KdArena *a, size_t size) {
  Chunk *c = malloc(sizeof *c);
  if (!c) return NULL;
  c->base = aligned_alloc(KD_ALIGN, (size + KD_ALIGN - 1) / KD_ALIGN * KD_ALIGN);
  if (!c->base) {
    free(c);
    return NULL;
  }
  a->mallocs += 2;
  c->size = size;
  c->used = 0;
  c->next = NULL;
  return c;
}

static void chunks_free(Chunk *c) {
  while (c) {
    Chunk *n = c->next;
    free(c->base);
    free(c);
    c = n;
  }
}

KdArena *kd_arena_new(size_t initial_bytes) {
  KdArena *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  if (initial_bytes < 4096) initial_bytes = 4096;
  a->head = chunk_new(a, initial_bytes);
  if (!a->head) {
    free(a);
    return NULL;
  }
  return a;
}

void kd_arena_free(KdArena *a) {
  if (!a) return;
  chunks_free(a->head);
  free(a);
}

void *kd_arena_alloc(KdArena *a, size_t bytes) {
  size_t need = (bytes + KD_ALIGN - 1) / KD_ALIGN * KD_ALIGN;
  if (need == 0) need = KD_ALIGN;
  Chunk *c = a->head;
  if (c->used + need > c->size) {
    size_t size = c->size * 2;
    if (size < need) size = need;
    Chunk *n = chunk_new(a, size);
    if (!n) return NULL;
    n->next = c;
    a->head = n;
    c = n;
  }
  void *p = c->base + c->used;
  c->used += need;
  a->cycle_used += need;
  if (a->cycle_used > a->peak) a->peak = a->cycle_used;
  return p;
}

void kd_arena_reset(KdArena *a) {
  if (a->head->next) {
    /* Overflowed: replace all chunks by one that holds the whole cycle. */
    size_t total = 0;
    for (Chunk *c = a->head; c; c = c->next) total += c->size;
    Chunk *n = chunk_new(a, total);
    if (n) {
      chunks_free(a->head);
      a->head = n;
    } else {
      chunks_free(a->head->next);
      a->head->next = NULL;
    }
  }
  a->head->used = 0;
  a->cycle_used = 0;
}

KdArenaMark kd_arena_mark(const KdArena *a) {
  return (KdArenaMark){.chunk = a->head, .used = a->head->used, .cycle_used = a->cycle_used};
}

void kd_arena_release(KdArena *a, KdArenaMark m) {
  if (m.chunk != a->head || m.used > a->head->used) return;
  a->head->used = m.used;
  a->cycle_used = m.cycle_used;
}

size_t kd_arena_used(const KdArena *a) { return a->cycle_used; }
size_t kd_arena_peak(const KdArena *a) { return a->peak; }
size_t kd_arena_mallocs(const KdArena *a) { return a->mallocs; }

size_t kd_arena_capacity(const KdArena *a) {
  size_t total = 0;
  for (const Chunk *c = a->head; c; c = c->next) total += c->size;
  return total;
}
