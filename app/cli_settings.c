/* kdscope settings [PREFIX...] [--json]: every setting key the JSON config,
 * --set, `kdscope set` and the window's controls take, with its type,
 * default, range and help, straight from the descriptors; no run needed. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numfmt.h"
#include "core/param_grid.h"
#include "train/session.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope settings [PREFIX...] [--json]\n\n"
    "Lists every setting: key, type, default, range (log: sliders move by\n"
    "decades), whether it can change while a run goes on (live), the symbol\n"
    "its paper writes, the values a slider lands on, and its help.\n"
    "PREFIX keeps the keys that start with it (e.g. `kdscope settings defeat\n"
    "train.lr`). --json prints one JSON array for scripts.\n";

static const char *type_name(const KdParamDesc *d) {
  static const char *const names[] = {"float", "int", "bool", "string", "enum"};
  return names[d->type];
}

/* The slider grid as text: "step 0.5" or "1,2,5 per decade". */
static const char *grid_text(const KdParamDesc *d, char *buf, size_t len) {
  double step, m[KD_GRID_MAX_MANTISSAS];
  int n;
  buf[0] = 0;
  if (kd_grid_resolve(d, &step, m, &n, NULL)) return buf;
  char v[40];
  if (step > 0) snprintf(buf, len, "step %s", kd_num_format(step, v, sizeof v));
  for (int i = 0; i < n; i++) {
    size_t k = strlen(buf);
    snprintf(buf + k, len - k, "%s%s", i ? "," : "", kd_num_format(m[i], v, sizeof v));
  }
  if (n) strncat(buf, " per decade", len - strlen(buf) - 1);
  return buf;
}

static int wanted(const char *key, char **prefixes, int n) {
  if (n == 0) return 1;
  for (int i = 0; i < n; i++)
    if (!strncmp(key, prefixes[i], strlen(prefixes[i]))) return 1;
  return 0;
}

static cJSON *desc_json(const KdConfig *c, const KdParamDesc *d) {
  char v[1024];
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "key", d->key);
  cJSON_AddStringToObject(o, "label", d->label);
  if (d->symbol) cJSON_AddStringToObject(o, "symbol", d->symbol);
  cJSON_AddStringToObject(o, "type", type_name(d));
  cJSON_AddStringToObject(o, "default", kd_config_format(c, d->key, v, sizeof v));
  if (d->type == KD_CFG_FLOAT || d->type == KD_CFG_INT) {
    cJSON_AddNumberToObject(o, "min", d->min);
    cJSON_AddNumberToObject(o, "max", d->max);
    cJSON_AddBoolToObject(o, "log_scale", d->log_scale);
    char g[160];
    cJSON_AddStringToObject(o, "grid", grid_text(d, g, sizeof g));
  }
  if (d->type == KD_CFG_ENUM && d->choices) {
    cJSON *ch = cJSON_AddArrayToObject(o, "choices");
    for (int k = 0; d->choices[k]; k++) cJSON_AddItemToArray(ch, cJSON_CreateString(d->choices[k]));
  }
  cJSON_AddBoolToObject(o, "live", d->live);
  cJSON_AddStringToObject(o, "help", d->help ? d->help : "");
  return o;
}

static void print_text(const KdConfig *c, const KdParamDesc *d) {
  char v[1024], range[160] = "", lo[40], hi[40], g[160] = "";
  kd_config_format(c, d->key, v, sizeof v);
  if (d->type == KD_CFG_FLOAT || d->type == KD_CFG_INT) {
    snprintf(range, sizeof range, "[%s, %s]%s", kd_num_format(d->min, lo, sizeof lo), kd_num_format(d->max, hi, sizeof hi),
             d->log_scale ? " log" : "");
    if (d->live) grid_text(d, g, sizeof g); /* the live ones have sliders */
  }
  else if (d->type == KD_CFG_ENUM && d->choices) {
    size_t n = 0;
    for (int k = 0; d->choices[k] && n + 2 < sizeof range; k++)
      n += (size_t)snprintf(range + n, sizeof range - n, "%s%s", k ? "|" : "", d->choices[k]);
  }
  printf("%-30s %-6s %-14s %-22s %s\n", d->key, type_name(d), v, range, d->live ? "live" : "");
  printf("    %s%s%s%s%s: %s\n", d->symbol ? d->symbol : "", d->symbol ? " — " : "", d->label, g[0] ? ", slider " : "", g,
         d->help ? d->help : "");
}

int kd_cli_settings(int argc, char **argv) {
  int json = 0, np = 0;
  char **prefixes = calloc((size_t)argc + 1, sizeof *prefixes);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      free(prefixes);
      return 0;
    } else if (!strcmp(argv[i], "--json")) json = 1;
    else if (argv[i][0] == '-') {
      fprintf(stderr, "kdscope settings: unknown option '%s' (see --help)\n", argv[i]);
      free(prefixes);
      return 1;
    } else prefixes[np++] = argv[i];
  }
  KdConfig *c = kd_config_new();
  if (!c || kd_settings_register_all(c)) {
    fprintf(stderr, "kdscope settings: out of memory\n");
    kd_config_free(c);
    free(prefixes);
    return 1;
  }
  cJSON *arr = json ? cJSON_CreateArray() : NULL;
  int shown = 0;
  for (int i = 0; i < kd_config_count(c); i++) {
    const KdParamDesc *d = kd_config_desc(c, i);
    if (!wanted(d->key, prefixes, np)) continue;
    shown++;
    if (arr) cJSON_AddItemToArray(arr, desc_json(c, d));
    else print_text(c, d);
  }
  int rc = 0;
  if (np && !shown) {
    fprintf(stderr, "kdscope settings: no setting starts with '%s'%s (kdscope settings lists them all)\n", prefixes[0],
            np > 1 ? " or the other prefixes" : "");
    rc = 1;
  }
  if (arr) {
    char *s = cJSON_Print(arr);
    if (s) puts(s);
    free(s);
    cJSON_Delete(arr);
  }
  kd_config_free(c);
  free(prefixes);
  return rc;
}
