/* Seed mixing for the data layer's RNG streams (splitmix64 finaliser):
 * turns (seed, split, index)-style tuples into well-spread PCG seeds. */
#ifndef KD_DATA_HASH_H
#define KD_DATA_HASH_H

#include <stdint.h>

static inline uint64_t kd_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

#endif
