/* Settings as typed fields: descriptors bound to struct members through
 * KD_SETTING_* fill them with kd_config_fill(), the serial moves on every
 * change and on nothing else, and the config's messages stay the ones the
 * CLI, the control file and the UI show. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/config.h"

typedef struct {
  float rate;
  int count, on, mode;
} Demo;

static const char *const modes[] = {"fast", "exact", NULL};

static const KdParamDesc descs[] = {
    KD_SETTING_FLOAT(Demo, "demo", rate, "r", "Rate", 0.25, 0.0, 10.0, 1, NULL, 1, "A float"),
    KD_SETTING_INT(Demo, "demo", count, "n", "Count", 3, 1, 100, NULL, 0, "An int"),
    KD_SETTING_BOOL(Demo, "demo", on, NULL, "On", 1, 1, "A bool"),
    KD_SETTING_ENUM(Demo, "demo", mode, NULL, "Mode", "exact", modes, 1, "An enum"),
    {"demo.name", "Name", KD_CFG_STRING, 0, 0, 0, 0, 0, "x", NULL, "Read by key", {0, 0}, NULL, NULL},
};
#define NDESC (int)(sizeof descs / sizeof descs[0])

static void fill(const KdConfig *c, Demo *d) {
  KdError err;
  memset(d, 0xff, sizeof *d);
  CHECK_MSG(kd_config_fill(c, descs, NDESC, d, &err) == 0, "%s", err.msg);
}

static void expect_error(int rc, const KdError *err, const char *want) {
  CHECK(rc != 0);
  CHECK_MSG(strstr(err->msg, want) != NULL, "'%s' lacks '%s'", err->msg, want);
}

int main(void) {
  /* the key is "<prefix>.<field>"; the binding is the field's offset */
  CHECK(!strcmp(descs[0].key, "demo.rate") && !strcmp(descs[3].key, "demo.mode"));
  CHECK(descs[1].field.bound && descs[1].field.offset == offsetof(Demo, count));
  CHECK(!descs[4].field.bound);

  KdConfig *c = kd_config_new();
  KdError err;
  CHECK(c && kd_config_register(c, descs, NDESC) == 0);
  Demo d;
  fill(c, &d);
  CHECK(d.rate == 0.25f && d.count == 3 && d.on == 1 && d.mode == 1);

  /* every way of setting a value reaches the fields at the next fill */
  unsigned long s0 = kd_config_serial(c);
  CHECK(kd_config_set(c, "demo.rate", "0.1", &err) == 0);
  CHECK(kd_config_set_kv(c, "demo.mode=fast", &err) == 0);
  CHECK(kd_config_load_string(c, "{\"demo\": {\"count\": 7, \"on\": false}}", "t.json", &err) == 0);
  CHECK(kd_config_serial(c) == s0 + 4);
  fill(c, &d);
  CHECK(d.rate == (float)0.1 && d.count == 7 && d.on == 0 && d.mode == 0);
  CHECK(d.rate == (float)kd_config_num(c, "demo.rate")); /* what a lookup by key gave */

  /* a string setting takes a number as its text (settings that were numbers once); an enum does not */
  CHECK(kd_config_load_string(c, "{\"demo\": {\"name\": 4}}", "t.json", &err) == 0 && !strcmp(kd_config_str(c, "demo.name"), "4"));
  expect_error(kd_config_load_string(c, "{\"demo\": {\"mode\": 1}}", "t.json", &err), &err,
               "t.json: demo.mode: expected a string, got a number");

  /* refused values change neither the value nor the serial; messages as before */
  unsigned long s1 = kd_config_serial(c);
  expect_error(kd_config_set(c, "demo.rate", "11", &err), &err, "demo.rate: 11 is outside its range [0, 10]");
  expect_error(kd_config_set(c, "demo.count", "2.5", &err), &err, "demo.count: expected a whole number, got '2.5'");
  expect_error(kd_config_set(c, "demo.mode", "slow", &err), &err, "demo.mode: 'slow' is not one of fast, exact");
  expect_error(kd_config_set(c, "demo.on", "maybe", &err), &err, "demo.on: expected true or false, got 'maybe'");
  expect_error(kd_config_set(c, "demo.rat", "1", &err), &err, "unknown setting 'demo.rat'");
  expect_error(kd_config_set_kv(c, "demo.rate", &err), &err, "--set expects key=value, got 'demo.rate'");
  expect_error(kd_config_load_string(c, "{\"demo\": {\"rate\": \"x\"}}", "t.json", &err), &err,
               "t.json: demo.rate: expected a number, got a string");
  expect_error(kd_config_load_string(c, "{\"demo\": {\"cout\": 1}}", "t.json", &err), &err,
               "t.json: unknown setting 'demo.cout'");
  /* "did you mean": the nearest key for a typo (a dropped, swapped or
   * wrong letter), none for a key that is not near any */
  expect_error(kd_config_set(c, "demo.rat", "1", &err), &err, "(did you mean 'demo.rate'?)");
  expect_error(kd_config_load_string(c, "{\"demo\": {\"cuont\": 1}}", "t.json", &err), &err, "(did you mean 'demo.count'?)");
  expect_error(kd_config_set(c, "demo.mdoe", "fast", &err), &err, "(did you mean 'demo.mode'?)");
  expect_error(kd_config_set(c, "other.thing", "1", &err), &err, "unknown setting 'other.thing' (kdscope settings lists them)");
  CHECK(kd_config_suggest(c, "demo.nme") && !strcmp(kd_config_suggest(c, "demo.nme"), "demo.name"));
  CHECK(kd_config_suggest(c, "xyz") == NULL);
  CHECK(kd_config_serial(c) == s1);
  fill(c, &d);
  CHECK(d.rate == (float)0.1 && d.count == 7 && d.mode == 0);

  /* a bound key the config does not hold is an error, not a silent default */
  KdConfig *empty = kd_config_new();
  expect_error(kd_config_fill(empty, descs, NDESC, &d, &err), &err, "demo.rate: not a registered setting");
  kd_config_free(empty);

  /* the JSON round trip is unchanged by the bindings */
  char *json = kd_config_to_json(c);
  CHECK(json && strstr(json, "\"mode\":\t\"fast\"") && strstr(json, "\"count\":\t7"));
  free(json);
  kd_config_free(c);
  return check_status("test_config");
}
