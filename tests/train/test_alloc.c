/* A training step in steady state performs no heap allocation: after a few
 * warm-up steps (the arena grows to the step's size, target buffers to the
 * batch), malloc & co. are counted across further steps.
 *
 * The allocator is interposed in this executable, which links the engine
 * statically: a call whose return address lies in this executable's text
 * is the engine's own and must not happen. Calls from shared libraries are
 * counted and printed but not failed: OpenBLAS 0.3.21 mallocs a job array
 * in every threaded GEMM and a buffer in its small-matrix kernel, and
 * libgomp allocates a team when a region's size changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "model/detector.h"
#include "train/settings.h"
#include "train/trainer.h"

#ifdef __SANITIZE_ADDRESS__
int main(void) {
  printf("test_alloc: skipped under AddressSanitizer (it owns the allocator)\n");
  return 77;
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
extern void *__libc_valloc(size_t);

static volatile long allocs, lib_allocs;
extern char __executable_start, etext;
static volatile int counting;

#define COUNT()                                                                          \
  do {                                                                                   \
    if (counting) {                                                                      \
      const char *ra = __builtin_return_address(0);                                      \
      __atomic_add_fetch(ra >= &__executable_start && ra < &etext ? &allocs : &lib_allocs, 1, \
                         __ATOMIC_RELAXED);                                              \
    }                                                                                    \
  } while (0)

void *malloc(size_t n) {
  COUNT();
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  COUNT();
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  COUNT();
  return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n) {
  COUNT();
  return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n) {
  COUNT();
  *out = __libc_memalign(al, n);
  return *out ? 0 : 12;
}
void *memalign(size_t al, size_t n) {
  COUNT();
  return __libc_memalign(al, n);
}
void *valloc(size_t n) {
  COUNT();
  return __libc_valloc(n);
}
void free(void *p) { __libc_free(p); }

int main(void) {
  KdError err;
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = 32;
  KdModel *m = kd_model_new(&mc, 1, &err);
  KdConfig *cfg = kd_config_new();
  CHECK(m && cfg && !kd_settings_register(cfg));
  kd_config_set(cfg, "train.warmup_steps", "2", &err);
  KdTrainer *t = kd_trainer_new(cfg, m, NULL, NULL, &err);
  CHECK(t != NULL);
  enum { N = 2, S = 64 };
  static float images[N * 3 * S * S];
  KdRng r;
  kd_rng_seed(&r, 5, 5);
  for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) images[i] = kd_rng_range(&r, -1, 1);
  float boxes[N][8] = {{4, 4, 30, 40, 20, 10, 60, 50}, {10, 12, 50, 30, 0, 0, 0, 0}};
  int labels[N][2] = {{1, 3}, {7, 0}};
  KdGtImage gt[N] = {{boxes[0], labels[0], NULL, 2}, {boxes[1], labels[1], NULL, 1}};
  KdTrainBatch b = {.n = N, .h = S, .w = S, .images = images, .gt = gt};
  KdStepStats st;
  for (int i = 0; i < 4; i++) CHECK(kd_trainer_step(t, &b, &st, &err) == 0);
  counting = 1;
  for (int i = 0; i < 5; i++) CHECK(kd_trainer_step(t, &b, &st, &err) == 0);
  counting = 0;
  CHECK_MSG(allocs == 0, "the engine made %ld heap allocations in 5 steady-state steps", (long)allocs);
  CHECK(st.step == 9 && !st.skipped && st.loss > 0);
  printf("steady-state heap allocations over 5 steps: engine %ld, shared libraries %ld (arena peak %.1f MiB)\n", (long)allocs,
         (long)lib_allocs, kd_trainer_arena_peak(t) / 1048576.0);
  kd_trainer_free(t);
  kd_config_free(cfg);
  kd_model_free(m);
  return check_status("test_alloc");
}
#endif
