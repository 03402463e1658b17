/* Settings as data. Every setting — model, data, training, and each
 * distillation method's hyperparameters — is declared once as a descriptor
 * (key, label, type, default, range, log scale, help). The JSON config, the
 * `--set key=value` flag, the run log and the UI's sliders all read the
 * same descriptors, so a value outside its range is refused everywhere with
 * the same message.
 *
 * Keys are dotted paths ("train.lr", "defeat.alpha_bg") and map onto nested
 * JSON objects ({"train": {"lr": 0.01}}). */
#ifndef KD_CONFIG_H
#define KD_CONFIG_H

#include "core/error.h"

typedef enum { KD_CFG_FLOAT, KD_CFG_INT, KD_CFG_BOOL, KD_CFG_STRING, KD_CFG_ENUM } KdCfgType;

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
} KdParamDesc;

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

double kd_config_num(const KdConfig *c, const char *key); /* NaN if missing */
int kd_config_int(const KdConfig *c, const char *key);
const char *kd_config_str(const KdConfig *c, const char *key); /* "" if missing */
int kd_config_is_default(const KdConfig *c, const char *key);
/* Value as text ("0.01", "true", "sgd"), into buf. */
const char *kd_config_format(const KdConfig *c, const char *key, char *buf, int len);

/* The fully resolved config as pretty JSON (caller frees). */
char *kd_config_to_json(const KdConfig *c);
/* Writes it to path via temp file + rename. */
int kd_config_save(const KdConfig *c, const char *path, KdError *err);

#endif
