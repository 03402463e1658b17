/* libFuzzer target: the safetensors reader (engine/model/safetensors.c) on
 * arbitrary bytes, as checkpoints, snapshots and `kdscope loss` open
 * them. A file may be refused (with a message); an accepted one is walked
 * whole: names, lookup, shapes, every float tensor's data, and a load
 * into a small parameter store, strict and not. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "fuzz_file.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static KdParams *store(void) {
  static KdParams *p;
  if (p) return p;
  /* Names a fuzzer finds from the seed checkpoints. */
  const int w[4] = {2, 3, 1, 1}, b[1] = {2}, s[1] = {1};
  p = kd_params_new();
  KdError err;
  if (!p || !kd_params_add(p, "w", 4, w, KD_PARAM_TRAIN) || !kd_params_add(p, "b", 1, b, KD_PARAM_TRAIN) ||
      !kd_params_add(p, "s", 1, s, KD_PARAM_BUFFER) || kd_params_finalize(p, &err))
    abort();
  return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  if (!path) return 0;
  KdError err = {{0}};
  KdSafetensors *st = kd_safetensors_open(path, &err);
  if (!st) {
    if (!err.msg[0]) __builtin_trap(); /* every refusal says why */
  } else {
    uint64_t total = 0;
    for (int i = 0; i < kd_safetensors_count(st); i++) {
      const char *name = kd_safetensors_name(st, i), *dt = kd_safetensors_dtype(st, i);
      if (!name || !dt || kd_safetensors_find(st, name) != i) __builtin_trap();
      int shape[4], nd = -1;
      size_t n = kd_safetensors_numel(st, i), prod = 1;
      if (kd_safetensors_shape(st, i, shape, &nd) == 0) {
        if (nd < 0 || nd > 4) __builtin_trap();
        for (int d = 0; d < nd; d++) prod *= (size_t)shape[d];
        if (prod != n) __builtin_trap();
      } else if (nd <= 4) {
        __builtin_trap();
      }
      total += n;
      if (total > size) __builtin_trap(); /* shapes are bounded by the data */
      float *v = malloc((n ? n : 1) * sizeof *v);
      if (!v) continue;
      int is_float = !strcmp(dt, "F32") || !strcmp(dt, "F16") || !strcmp(dt, "BF16") || !strcmp(dt, "F64");
      int rc = kd_safetensors_read_f32(st, name, v, n, &err);
      if (is_float != (rc == 0) || (rc && !err.msg[0])) __builtin_trap();
      if (n && kd_safetensors_read_f32(st, name, v, n - 1, &err) == 0) __builtin_trap(); /* size checked */
      volatile float sink = 0;
      for (size_t k = 0; !rc && k < n; k++) sink += isnan(v[k]) ? 0.0f : 1.0f;
      if (sink < 0) __builtin_trap();
      free(v);
    }
    (void)kd_safetensors_meta(st, "format");
    if (kd_safetensors_find(st, "\x01 not a name") >= 0) __builtin_trap();
    kd_safetensors_close(st);
  }
  /* Through the checkpoint loader: it either fills every tensor or refuses. */
  for (int strict = 0; strict < 2; strict++) {
    err.msg[0] = 0;
    if (kd_safetensors_load(path, store(), strict, &err) != 0 && !err.msg[0]) __builtin_trap();
  }
  return 0;
}
