#include "core/rng.h"

#include <math.h>

void kd_rng_seed(KdRng *r, uint64_t seed, uint64_t stream) {
  r->state = 0;
  r->inc = (stream << 1u) | 1u;
  kd_rng_u32(r);
  r->state += seed;
  kd_rng_u32(r);
}

uint32_t kd_rng_u32(KdRng *r) {
  uint64_t old = r->state;
  r->state = old * 6364136223846793005ULL + r->inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

uint32_t kd_rng_below(KdRng *r, uint32_t n) {
  uint32_t threshold = (-n) % n;
  for (;;) {
    uint32_t x = kd_rng_u32(r);
    if (x >= threshold) return x % n;
  }
}

float kd_rng_uniform(KdRng *r) { return (float)(kd_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float kd_rng_range(KdRng *r, float lo, float hi) { return lo + (hi - lo) * kd_rng_uniform(r); }

float kd_rng_normal(KdRng *r) {
  float u1 = ((float)(kd_rng_u32(r) >> 8) + 0.5f) * (1.0f / 16777216.0f);
  float u2 = kd_rng_uniform(r);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}
