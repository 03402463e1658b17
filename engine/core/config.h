/* Settings as data. Every setting — model, data, training, and each
 * distillation method's hyperparameters — is declared once as a descriptor
 * (key, label, type, default, range, log scale, help). The JSON config, the
 * `--set key=value` flag, the run log and the UI's sliders all read the
 * same descriptors, so a value outside its range is refused everywhere with
 * the same message.
 *
 * Keys are dotted paths ("train.lr", "defeat.alpha_bg") and map onto nested
 * JSON objects ({"train": {"lr": 0.01}}).
 *
 * Code that reads settings often (every step) reads them as fields of its
 * own struct: a descriptor may name the field it fills (KD_SETTING_*
 * below, through offsetof), and kd_config_fill() copies the values in
 * when they change. A misspelt field, or one of the wrong C type, does not
 * compile. This is the engine's lowest layer: every other layer may use it. */
#ifndef KD_CONFIG_H
#define KD_CONFIG_H

#include <stddef.h>

#include "core/error.h"

typedef enum { KD_CFG_FLOAT, KD_CFG_INT, KD_CFG_BOOL, KD_CFG_STRING, KD_CFG_ENUM } KdCfgType;

/* The field of a typed settings struct a descriptor fills: float for
 * KD_CFG_FLOAT, int for KD_CFG_INT and KD_CFG_BOOL (0/1), int for
 * KD_CFG_ENUM (the index of the choice). Strings have no field. */
typedef struct KdField {
  int bound;
  size_t offset;
} KdField;

typedef struct KdParamDesc {
  const char *key;
  const char *label;
  KdCfgType type;
  double def, min, max;          /* numbers and bools (0/1) */
  int log_scale;                 /* sliders move in log space */
  int live;                      /* may change while a run goes on */
  const char *def_str;           /* strings and enums */
  const char *const *choices;    /* enums: NULL-terminated */
  const char *help;
  KdField field;                 /* {0}: read by key only */
  /* The papers' symbol, UTF-8, "_x" a subscript ("α_bg", "T_obj");
   * NULL: none (the key stands for it). */
  const char *symbol;
  /* Numbers: the values a slider may land on (core/param_grid.h).
   * "step 0.5": the multiples of 0.5; "1,2,5": on a log slider, these
   * mantissas in every decade (...0.5, 1, 2, 5, 10...). NULL: by kind,
   * ints "step 1", linear floats a 1-2-5 step near a hundredth of the
   * range, log floats "1,2,5". */
  const char *grid;
} KdParamDesc;

/* {bound, offsetof(T, f)}, compiled only when T has a member f of C type
 * ctype. */
#define KD_FIELD(T, f, ctype) {1, _Generic(((T *)0)->f, ctype: offsetof(T, f))}
/* A descriptor "<prefix>.<f>" bound to the member f of T: the key is the
 * field's name, so the two cannot drift apart. */
#define KD_SETTING_FLOAT(T, prefix, f, symbol, label, def, lo, hi, log_scale, grid, live, help) \
  {prefix "." #f, label, KD_CFG_FLOAT, def, lo, hi, log_scale, live, NULL, NULL, help, KD_FIELD(T, f, float), symbol, grid}
#define KD_SETTING_INT(T, prefix, f, symbol, label, def, lo, hi, grid, live, help) \
  {prefix "." #f, label, KD_CFG_INT, def, lo, hi, 0, live, NULL, NULL, help, KD_FIELD(T, f, int), symbol, grid}
#define KD_SETTING_BOOL(T, prefix, f, symbol, label, def, live, help) \
  {prefix "." #f, label, KD_CFG_BOOL, def, 0, 1, 0, live, NULL, NULL, help, KD_FIELD(T, f, int), symbol, NULL}
#define KD_SETTING_ENUM(T, prefix, f, symbol, label, def, choices, live, help) \
  {prefix "." #f, label, KD_CFG_ENUM, 0, 0, 0, 0, live, def, choices, help, KD_FIELD(T, f, int), symbol, NULL}

typedef struct KdConfig KdConfig;

KdConfig *kd_config_new(void);
void kd_config_free(KdConfig *c);
/* Registers a table of descriptors (n entries; static storage); values
 * start at their defaults. Re-registering the same table is a no-op. */
int kd_config_register(KdConfig *c, const KdParamDesc *descs, int n);
int kd_config_count(const KdConfig *c);
const KdParamDesc *kd_config_desc(const KdConfig *c, int i);
const KdParamDesc *kd_config_find(const KdConfig *c, const char *key);

/* Loads a JSON file over the current values. Unknown keys are errors (a
 * typo must not be silently ignored); errors name the file, the key and
 * what was expected. Keys starting with "_" are comments and skipped. */
int kd_config_load_file(KdConfig *c, const char *path, KdError *err);
int kd_config_load_string(KdConfig *c, const char *json, const char *origin, KdError *err);
/* "key=value" as given to --set. */
int kd_config_set_kv(KdConfig *c, const char *kv, KdError *err);
/* Validates value text against the descriptor and stores it. */
int kd_config_set(KdConfig *c, const char *key, const char *value, KdError *err);
int kd_config_set_num(KdConfig *c, const char *key, double v, KdError *err);

/* The registered key nearest to key when it looks like a typo of it
 * (a few edits away), else NULL; used in "did you mean" messages. */
const char *kd_config_suggest(const KdConfig *c, const char *key);

double kd_config_num(const KdConfig *c, const char *key); /* NaN if missing */
int kd_config_int(const KdConfig *c, const char *key);
const char *kd_config_str(const KdConfig *c, const char *key); /* "" if missing */
int kd_config_is_default(const KdConfig *c, const char *key);
/* Counts the changes of any value (sets, loads, registrations): a reader
 * of typed fields refills them when it moved. */
unsigned long kd_config_serial(const KdConfig *c);
/* Copies the current values of the bound descriptors among descs[0..n)
 * into the fields of dst they name. Every bound key must be registered. */
int kd_config_fill(const KdConfig *c, const KdParamDesc *descs, int n, void *dst, KdError *err);

/* Value as text ("0.01", "5e-6", "true", "sgd"), into buf: numbers in
 * the shortest form that reads back as the same double (core/numfmt.h). */
const char *kd_config_format(const KdConfig *c, const char *key, char *buf, int len);

/* The fully resolved config as pretty JSON (caller frees). */
char *kd_config_to_json(const KdConfig *c);
/* Writes it to path via temp file + rename. */
int kd_config_save(const KdConfig *c, const char *path, KdError *err);

#endif
