/* libFuzzer target: the config loader (engine/core/config.c) with every
 * setting registered, as `--config FILE`, a run's config.json and
 * `--set key=value` reach it. Inputs starting with '{' (or whitespace) are
 * JSON; others are --set lines. Refusals must say why; an accepted config
 * holds only in-range values, converts to the engine's structs or says
 * why not, and survives a round trip through its own JSON unchanged. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/session.h"
#include "train/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static KdConfig *fresh(void) {
  KdConfig *c = kd_config_new();
  if (!c || kd_settings_register_all(c)) abort();
  return c;
}

static void check_values(const KdConfig *c) {
  for (int i = 0; i < kd_config_count(c); i++) {
    const KdParamDesc *d = kd_config_desc(c, i);
    if (d->type == KD_CFG_FLOAT || d->type == KD_CFG_INT) {
      double v = kd_config_num(c, d->key);
      if (!isfinite(v) || v < d->min || v > d->max) __builtin_trap();
      if (d->type == KD_CFG_INT && v != floor(v)) __builtin_trap();
    } else if (d->type == KD_CFG_ENUM) {
      int ok = 0;
      for (const char *const *ch = d->choices; ch && *ch; ch++) ok |= !strcmp(*ch, kd_config_str(c, d->key));
      if (!ok) __builtin_trap();
    }
    char buf[64];
    if (!kd_config_format(c, d->key, buf, sizeof buf)) __builtin_trap();
  }
}

/* Conversions may refuse combinations (a bad depth); never silently. */
static void convert(const KdConfig *c) {
  KdError err = {{0}};
  KdModelCfg m;
  KdOptimCfg o;
  KdPostCfg p;
  KdImageCfg im;
  if (kd_settings_model(c, &m, &err) && !err.msg[0]) __builtin_trap();
  err.msg[0] = 0;
  if (kd_settings_optim(c, &o, &err) && !err.msg[0]) __builtin_trap();
  err.msg[0] = 0;
  if (kd_settings_post(c, &p, &err) && !err.msg[0]) __builtin_trap();
  err.msg[0] = 0;
  if (kd_settings_image(c, &im, &err) && !err.msg[0]) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  KdConfig *c = fresh();
  KdError err = {{0}};
  int rc = 0;
  if (size && (text[0] == '{' || text[0] == ' ' || text[0] == '\n')) {
    rc = kd_config_load_string(c, text, "fuzz.json", &err);
  } else {
    for (char *line = text, *next; line && !rc; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      rc = kd_config_set_kv(c, line, &err);
    }
  }
  if (rc && !err.msg[0]) __builtin_trap();
  /* Even after a refusal the config holds valid values (a partial load). */
  check_values(c);
  if (rc == 0) {
    convert(c);
    char *j1 = kd_config_to_json(c);
    KdConfig *c2 = fresh();
    if (!j1 || kd_config_load_string(c2, j1, "round trip", &err)) __builtin_trap();
    char *j2 = kd_config_to_json(c2);
    if (!j2 || strcmp(j1, j2)) __builtin_trap();
    free(j1), free(j2);
    kd_config_free(c2);
  }
  kd_config_free(c);
  free(text);
  return 0;
}
