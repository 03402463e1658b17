/* Bump allocator for everything a training step creates. Reset after the
 * optimizer step; after a few steps it has grown to the step's size and a
 * step performs no heap allocation at all (kd_arena_mallocs stops moving). */
#ifndef KD_ARENA_H
#define KD_ARENA_H

#include <stddef.h>

typedef struct KdArena KdArena;

KdArena *kd_arena_new(size_t initial_bytes);
void kd_arena_free(KdArena *a);
/* 64-byte aligned, uninitialised. Returns NULL only when malloc fails. */
void *kd_arena_alloc(KdArena *a, size_t bytes);
/* Forget every allocation. If the last cycle overflowed into extra chunks,
 * they are merged into one chunk big enough for the whole cycle. */
void kd_arena_reset(KdArena *a);
/* Scratch scopes: release() frees everything allocated after mark() if
 * the arena did not move to a new chunk in between (else it is a no-op). */
typedef struct KdArenaMark {
  const void *chunk;
  size_t used, cycle_used;
} KdArenaMark;
KdArenaMark kd_arena_mark(const KdArena *a);
void kd_arena_release(KdArena *a, KdArenaMark m);
size_t kd_arena_used(const KdArena *a);
size_t kd_arena_peak(const KdArena *a);
size_t kd_arena_capacity(const KdArena *a);
/* Number of malloc calls the arena has made since it was created. */
size_t kd_arena_mallocs(const KdArena *a);

#endif
