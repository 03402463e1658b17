/* Deterministic random numbers (PCG32). Same seed, same stream, on every
 * machine: data building, augmentation and init depend on it. */
#ifndef KD_RNG_H
#define KD_RNG_H

#include <stdint.h>

typedef struct KdRng {
  uint64_t state, inc;
} KdRng;

void kd_rng_seed(KdRng *r, uint64_t seed, uint64_t stream);
uint32_t kd_rng_u32(KdRng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint32_t kd_rng_below(KdRng *r, uint32_t n);
/* Uniform float in [0, 1). */
float kd_rng_uniform(KdRng *r);
/* Uniform float in [lo, hi). */
float kd_rng_range(KdRng *r, float lo, float hi);
/* Standard normal (Box-Muller, no cached second value so state is simple). */
float kd_rng_normal(KdRng *r);

#endif
