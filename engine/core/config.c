/* The values behind the setting descriptors: registration, validation,
 * JSON and key=value io, typed fields. It knows no setting by name. */
#include "core/config.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fileio.h"
#include "core/numfmt.h"

typedef struct Value {
  const KdParamDesc *d;
  double num;
  char *str;
} Value;

struct KdConfig {
  Value *v;
  int n, cap;
  unsigned long serial;
};

KdConfig *kd_config_new(void) { return calloc(1, sizeof(KdConfig)); }

void kd_config_free(KdConfig *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++) free(c->v[i].str);
  free(c->v);
  free(c);
}

static Value *find(const KdConfig *c, const char *key) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->v[i].d->key, key)) return &c->v[i];
  return NULL;
}

/* Edit distance of two keys (insert, delete, substitute, swap of two
 * neighbours), capped at 31 so long keys cost no more than short ones. */
static int key_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 63 || lb > 63 || abs(la - lb) > 8) return 31;
  int d[64][64];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best) best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb] < 31 ? d[la][lb] : 31;
}

const char *kd_config_suggest(const KdConfig *c, const char *key) {
  const char *best = NULL;
  int bd = (int)strlen(key) / 4 + 1; /* a typo, not a different key */
  if (bd > 3) bd = 3;
  for (int i = 0; i < c->n; i++) {
    int dist = key_distance(key, c->v[i].d->key);
    if (dist <= bd && (!best || dist < key_distance(key, best))) best = c->v[i].d->key;
  }
  return best;
}

/* "unknown setting 'k'", with the nearest key when one is a likely typo. */
static int unknown_key(const KdConfig *c, KdError *err, const char *origin, const char *key) {
  const char *near = kd_config_suggest(c, key);
  return kd_error(err, "%s%sunknown setting '%s'%s%s%s", origin ? origin : "", origin ? ": " : "", key, near ? " (did you mean '" : "",
                  near ? near : "", near ? "'?)" : " (kdscope settings lists them)");
}

int kd_config_register(KdConfig *c, const KdParamDesc *descs, int n) {
  for (int i = 0; i < n; i++) {
    if (find(c, descs[i].key)) continue;
    if (c->n == c->cap) {
      int cap = c->cap ? 2 * c->cap : 128;
      Value *v = realloc(c->v, (size_t)cap * sizeof *v);
      if (!v) return -1;
      c->v = v;
      c->cap = cap;
    }
    Value *v = &c->v[c->n++];
    v->d = &descs[i];
    v->num = descs[i].def;
    v->str = NULL;
    if (descs[i].type == KD_CFG_STRING || descs[i].type == KD_CFG_ENUM) {
      v->str = strdup(descs[i].def_str ? descs[i].def_str : "");
      if (!v->str) return -1;
    }
    c->serial++;
  }
  return 0;
}

int kd_config_count(const KdConfig *c) { return c->n; }
const KdParamDesc *kd_config_desc(const KdConfig *c, int i) { return c->v[i].d; }

const KdParamDesc *kd_config_find(const KdConfig *c, const char *key) {
  Value *v = find(c, key);
  return v ? v->d : NULL;
}

static int range_error(const KdParamDesc *d, const char *value, KdError *err) {
  if (d->type == KD_CFG_INT)
    return kd_error(err, "%s: %s is outside its range [%.0f, %.0f]", d->key, value, d->min, d->max);
  return kd_error(err, "%s: %s is outside its range [%g, %g]", d->key, value, d->min, d->max);
}

static int choice_index(const KdParamDesc *d, const char *text) {
  for (int i = 0; d->choices && d->choices[i]; i++)
    if (!strcmp(d->choices[i], text)) return i;
  return -1;
}

static int set_value(Value *v, const char *text, KdError *err) {
  const KdParamDesc *d = v->d;
  switch (d->type) {
  case KD_CFG_FLOAT:
  case KD_CFG_INT: {
    char *end;
    errno = 0;
    double x = strtod(text, &end);
    while (*end == ' ') end++;
    if (end == text || *end || errno || !isfinite(x))
      return kd_error(err, "%s: expected a %s, got '%s'", d->key, d->type == KD_CFG_INT ? "whole number" : "number", text);
    if (d->type == KD_CFG_INT && x != floor(x)) return kd_error(err, "%s: expected a whole number, got '%s'", d->key, text);
    if (x < d->min || x > d->max) return range_error(d, text, err);
    v->num = x;
    return 0;
  }
  case KD_CFG_BOOL:
    if (!strcasecmp(text, "true") || !strcmp(text, "1") || !strcasecmp(text, "yes") || !strcasecmp(text, "on")) v->num = 1;
    else if (!strcasecmp(text, "false") || !strcmp(text, "0") || !strcasecmp(text, "no") || !strcasecmp(text, "off")) v->num = 0;
    else return kd_error(err, "%s: expected true or false, got '%s'", d->key, text);
    return 0;
  case KD_CFG_ENUM: {
    if (choice_index(d, text) < 0) {
      char list[256] = "";
      for (const char *const *ch = d->choices; ch && *ch; ch++) {
        if (list[0]) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, *ch, sizeof list - strlen(list) - 1);
      }
      return kd_error(err, "%s: '%s' is not one of %s", d->key, text, list);
    }
  } /* fall through */
  case KD_CFG_STRING: {
    char *s = strdup(text);
    if (!s) return kd_error(err, "out of memory");
    free(v->str);
    v->str = s;
    return 0;
  }
  }
  return -1;
}

static int store(KdConfig *c, Value *v, const char *text, KdError *err) {
  if (set_value(v, text, err)) return -1;
  c->serial++;
  return 0;
}

int kd_config_set(KdConfig *c, const char *key, const char *value, KdError *err) {
  Value *v = find(c, key);
  if (!v) return unknown_key(c, err, NULL, key);
  return store(c, v, value, err);
}

int kd_config_set_num(KdConfig *c, const char *key, double x, KdError *err) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", x);
  return kd_config_set(c, key, buf, err);
}

int kd_config_set_kv(KdConfig *c, const char *kv, KdError *err) {
  const char *eq = strchr(kv, '=');
  if (!eq || eq == kv) return kd_error(err, "--set expects key=value, got '%s'", kv);
  char key[256];
  size_t n = (size_t)(eq - kv);
  if (n >= sizeof key) return kd_error(err, "--set: key too long in '%s'", kv);
  memcpy(key, kv, n);
  key[n] = 0;
  return kd_config_set(c, key, eq + 1, err);
}

double kd_config_num(const KdConfig *c, const char *key) {
  Value *v = find(c, key);
  return v ? v->num : NAN;
}

int kd_config_int(const KdConfig *c, const char *key) {
  Value *v = find(c, key);
  return v ? (int)v->num : 0;
}

const char *kd_config_str(const KdConfig *c, const char *key) {
  Value *v = find(c, key);
  return v && v->str ? v->str : "";
}

int kd_config_is_default(const KdConfig *c, const char *key) {
  Value *v = find(c, key);
  if (!v) return 1;
  if (v->str) return !strcmp(v->str, v->d->def_str ? v->d->def_str : "");
  return v->num == v->d->def;
}

unsigned long kd_config_serial(const KdConfig *c) { return c->serial; }

int kd_config_fill(const KdConfig *c, const KdParamDesc *descs, int n, void *dst, KdError *err) {
  for (int i = 0; i < n; i++) {
    const KdParamDesc *d = &descs[i];
    if (!d->field.bound) continue;
    const Value *v = find(c, d->key);
    if (!v) return kd_error(err, "%s: not a registered setting", d->key);
    char *at = (char *)dst + d->field.offset;
    float f;
    int k;
    switch (d->type) {
    case KD_CFG_FLOAT:
      f = (float)v->num;
      memcpy(at, &f, sizeof f);
      break;
    case KD_CFG_INT:
    case KD_CFG_BOOL:
      k = (int)v->num; /* within the descriptor's range, which set_value checked */
      memcpy(at, &k, sizeof k);
      break;
    case KD_CFG_ENUM:
      k = choice_index(d, v->str ? v->str : "");
      memcpy(at, &k, sizeof k);
      break;
    case KD_CFG_STRING: return kd_error(err, "%s: a string setting has no typed field", d->key);
    }
  }
  return 0;
}

const char *kd_config_format(const KdConfig *c, const char *key, char *buf, int len) {
  Value *v = find(c, key);
  if (!v) snprintf(buf, (size_t)len, "?");
  else if (v->str) snprintf(buf, (size_t)len, "%s", v->str);
  else if (v->d->type == KD_CFG_BOOL) snprintf(buf, (size_t)len, "%s", v->num != 0 ? "true" : "false");
  else if (v->d->type == KD_CFG_INT) snprintf(buf, (size_t)len, "%.0f", v->num);
  else kd_num_format(v->num, buf, (size_t)len);
  return buf;
}

/* ---- JSON ---- */

static int load_obj(KdConfig *c, const cJSON *obj, const char *prefix, const char *origin, KdError *err) {
  for (const cJSON *it = obj->child; it; it = it->next) {
    if (!it->string) continue;
    if (it->string[0] == '_') continue;
    char key[256];
    snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", it->string);
    Value *v = find(c, key);
    if (cJSON_IsObject(it) && !v) {
      if (load_obj(c, it, key, origin, err)) return -1;
      continue;
    }
    if (!v) return unknown_key(c, err, origin, key);
    char text[1024];
    const KdParamDesc *d = v->d;
    if (cJSON_IsBool(it)) {
      if (d->type != KD_CFG_BOOL) return kd_error(err, "%s: %s: expected %s, got a boolean", origin, key, d->type == KD_CFG_STRING || d->type == KD_CFG_ENUM ? "a string" : "a number");
      snprintf(text, sizeof text, "%s", cJSON_IsTrue(it) ? "true" : "false");
    } else if (cJSON_IsNumber(it)) {
      /* A string setting takes a number as its text: settings that were
       * numbers once (probe.images) still load from old config files. */
      if (d->type != KD_CFG_FLOAT && d->type != KD_CFG_INT && d->type != KD_CFG_STRING)
        return kd_error(err, "%s: %s: expected %s, got a number", origin, key, d->type == KD_CFG_BOOL ? "true or false" : "a string");
      snprintf(text, sizeof text, "%.17g", it->valuedouble);
    } else if (cJSON_IsString(it)) {
      if (d->type != KD_CFG_STRING && d->type != KD_CFG_ENUM) return kd_error(err, "%s: %s: expected %s, got a string", origin, key, d->type == KD_CFG_BOOL ? "true or false" : "a number");
      snprintf(text, sizeof text, "%s", it->valuestring);
    } else {
      return kd_error(err, "%s: %s: expected a %s value", origin, key, d->type == KD_CFG_STRING || d->type == KD_CFG_ENUM ? "string" : d->type == KD_CFG_BOOL ? "boolean" : "number");
    }
    if (store(c, v, text, err)) return kd_error_prefix(err, "%s: ", origin);
  }
  return 0;
}

int kd_config_load_string(KdConfig *c, const char *json, const char *origin, KdError *err) {
  cJSON *root = cJSON_Parse(json);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    int line = 1;
    for (const char *p = json; at && p < at && *p; p++) line += *p == '\n';
    return kd_error(err, "%s: malformed JSON near line %d", origin, line);
  }
  int rc = 0;
  if (!cJSON_IsObject(root)) rc = kd_error(err, "%s: expected a JSON object at the top level", origin);
  else rc = load_obj(c, root, "", origin, err);
  cJSON_Delete(root);
  return rc;
}

int kd_config_load_file(KdConfig *c, const char *path, KdError *err) {
  size_t len;
  char *text = kd_read_text(path, &len, 16u << 20, err);
  if (!text) return -1;
  int rc = kd_config_load_string(c, text, path, err);
  free(text);
  return rc;
}

static cJSON *ensure_path(cJSON *root, const char *key, char *leaf, size_t leaflen) {
  cJSON *obj = root;
  const char *p = key;
  for (;;) {
    const char *dot = strchr(p, '.');
    if (!dot) break;
    char part[128];
    size_t n = (size_t)(dot - p);
    if (n >= sizeof part) n = sizeof part - 1;
    memcpy(part, p, n);
    part[n] = 0;
    cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, part);
    if (!next) next = cJSON_AddObjectToObject(obj, part);
    obj = next;
    p = dot + 1;
  }
  snprintf(leaf, leaflen, "%s", p);
  return obj;
}

char *kd_config_to_json(const KdConfig *c) {
  cJSON *root = cJSON_CreateObject();
  for (int i = 0; i < c->n; i++) {
    const Value *v = &c->v[i];
    char leaf[128];
    cJSON *obj = ensure_path(root, v->d->key, leaf, sizeof leaf);
    if (!obj) continue;
    switch (v->d->type) {
    case KD_CFG_FLOAT:
    case KD_CFG_INT: cJSON_AddNumberToObject(obj, leaf, v->num); break;
    case KD_CFG_BOOL: cJSON_AddBoolToObject(obj, leaf, v->num != 0); break;
    default: cJSON_AddStringToObject(obj, leaf, v->str ? v->str : ""); break;
    }
  }
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  return s;
}

int kd_config_save(const KdConfig *c, const char *path, KdError *err) {
  char *s = kd_config_to_json(c);
  if (!s) return kd_error(err, "out of memory writing %s", path);
  size_t n = strlen(s);
  s[n] = '\n';
  int rc = kd_write_file_atomic(path, s, n + 1, err);
  free(s);
  return rc;
}
