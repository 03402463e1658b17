/* The distiller: every method setting bound to a params field, learnable
 * parts only for listed methods (initial values independent of the list),
 * settings read at configure and never during a step. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "distill/distiller.h"
#include "distill/side.h"

static const KdDistillShapes SH = {.nlev = 3, .strides = {8, 16, 32}, .t_channels = 16, .s_channels = 8,
                                   .num_classes = 3, .num_anchors = 9};

static void set(KdConfig *c, const char *key, const char *value) {
  KdError err;
  CHECK_MSG(kd_config_set(c, key, value, &err) == 0, "%s", err.msg);
}

/* Every descriptor of every method names a field inside its params struct
 * and reads back what the config holds. */
static void test_bindings(KdConfig *cfg) {
  KdError err;
  for (int i = 0; i < kd_method_count(); i++) {
    const KdMethod *m = kd_method_at(i);
    size_t plen = strlen(m->name);
    CHECK_MSG(m->nparams > 0 && m->params_size > 0, "%s has no params struct", m->name);
    for (int k = 0; k < m->nparams; k++) {
      const KdParamDesc *d = &m->params[k];
      CHECK_MSG(!strncmp(d->key, m->name, plen) && d->key[plen] == '.', "%s: key %s", m->name, d->key);
      CHECK_MSG(d->field.bound && d->field.offset + sizeof(float) <= m->params_size && d->live, "%s unbound", d->key);
      char top[64];
      snprintf(top, sizeof top, "%.17g", d->max);
      if (d->type == KD_CFG_FLOAT) set(cfg, d->key, top);
    }
    KdMethodInst inst = {m, NULL, NULL};
    CHECK_MSG(kd_method_read_params(&inst, cfg, &err) == 0, "%s", err.msg);
    for (int k = 0; inst.params && k < m->nparams; k++) {
      const KdParamDesc *d = &m->params[k];
      const char *at = (const char *)inst.params + d->field.offset;
      float f;
      int v;
      memcpy(&f, at, sizeof f), memcpy(&v, at, sizeof v);
      if (d->type == KD_CFG_FLOAT) CHECK_MSG(f == (float)d->max, "%s read %g", d->key, f);
      if (d->type == KD_CFG_BOOL) CHECK_MSG(v == (int)d->def, "%s read %d", d->key, v);
      if (d->type == KD_CFG_ENUM) CHECK_MSG(v == 0 && !strcmp(d->choices[0], d->def_str), "%s read %d", d->key, v);
    }
    kd_method_inst_release(&inst);
    for (int k = 0; k < m->nparams; k++) {
      char def[64];
      snprintf(def, sizeof def, "%.17g", m->params[k].def);
      if (m->params[k].type == KD_CFG_FLOAT) set(cfg, m->params[k].key, def);
    }
  }
}

static KdDistiller *configured(KdConfig *cfg, const char *methods) {
  KdError err;
  set(cfg, "distill.methods", methods);
  KdDistiller *d = kd_distiller_new(&SH, 7, &err);
  CHECK_MSG(d && kd_distiller_configure(d, cfg, &err) == 0, "%s: %s", methods, err.msg);
  return d;
}

/* Tensors of store whose names start with prefix; *numel their size. */
static int count(KdParams *p, const char *prefix, size_t *numel) {
  int n = 0;
  *numel = 0;
  for (int i = 0; i < kd_params_count(p); i++)
    if (!strncmp(kd_params_at(p, i)->name, prefix, strlen(prefix))) n++, *numel += kd_params_at(p, i)->numel;
  return n;
}

/* Every tensor of a under prefix has the same values in b. */
static int same(KdParams *a, KdParams *b, const char *prefix) {
  int n = 0;
  for (int i = 0; i < kd_params_count(a); i++) {
    const KdTensor *x = kd_params_at(a, i), *y = kd_params_find(b, x->name);
    if (strncmp(x->name, prefix, strlen(prefix))) continue;
    if (!y || y->numel != x->numel || memcmp(x->data, y->data, x->numel * sizeof(float))) return 0;
    n++;
  }
  return n > 0;
}

static void test_parts(KdConfig *cfg) {
  KdError err;
  size_t ne;
  KdDistiller *a = configured(cfg, "defeat"), *b = configured(cfg, "fitnet,defeat,fgd"), *p = configured(cfg, "pkd");
  KdDistiller *c = configured(cfg, "fgd");
  if (!a || !b || !c || !p) return;
  KdParams *pa = kd_distiller_params(a), *pb = kd_distiller_params(b), *pc = kd_distiller_params(c);
  /* only the listed methods' parts exist */
  CHECK(count(pa, "distill.defeat.", &ne) == 6 && count(pa, "", &ne) == 6 && kd_distiller_active(a) == 1);
  CHECK(count(pb, "distill.fitnet.", &ne) == 6 && count(pb, "distill.fgd.", &ne) > 0 && kd_distiller_active(b) == 3);
  CHECK(kd_params_count(kd_distiller_params(p)) == 0 && kd_distiller_active(p) == 1);
  /* and their initial values do not depend on what else is listed */
  CHECK(same(pa, pb, "distill.defeat."));
  CHECK(same(pc, pb, "distill.fgd."));
  /* a method listed later grows the store; the others keep their values */
  KdTensor *fgd0 = kd_params_at(pc, 0);
  float before = fgd0->data[0];
  fgd0->data[0] = 42.0f;
  set(cfg, "distill.methods", "fgd,defeat");
  CHECK(kd_distiller_configure(c, cfg, &err) == 0 && kd_distiller_active(c) == 2);
  CHECK(fgd0->data[0] == 42.0f && kd_params_at(pc, 0) == fgd0);
  fgd0->data[0] = before;
  CHECK(same(pa, pc, "distill.defeat.") && same(pc, pb, "distill.fgd."));
  /* leaving the list keeps the parts; a bad list changes nothing */
  set(cfg, "distill.methods", "defeat");
  CHECK(kd_distiller_configure(c, cfg, &err) == 0 && kd_distiller_active(c) == 1 && count(pc, "distill.fgd.", &ne) > 0);
  set(cfg, "distill.methods", "defeat,pdk");
  CHECK(kd_distiller_configure(c, cfg, &err) != 0 && strstr(err.msg, "unknown method 'pdk'"));
  CHECK(kd_distiller_active(c) == 1);
  /* resume: a method's parts on request */
  CHECK(kd_distiller_ensure(a, "fitnet", &err) == 0 && same(pa, pb, "distill.fitnet.") && kd_distiller_active(a) == 1);
  CHECK(kd_distiller_ensure(a, "nope", &err) != 0 && strstr(err.msg, "'nope'"));
  kd_distiller_free(a), kd_distiller_free(b), kd_distiller_free(c), kd_distiller_free(p);
}

/* DeFeat's neck_bg through the distiller: the loss sees a changed
 * setting only after configure. */
static double neck_bg(KdDistiller *d, KdCtx *c) {
  static float s[3][8 * 16], t[3][16 * 16];
  kd_ctx_reset(c);
  const float box[4] = {2, 2, 14, 20};
  KdGtImage gt = {box, (const int[]){1}, NULL, 1};
  KdDistillInputs in = {.c = c, .n = 1, .img_h = 32, .img_w = 32, .gt = &gt};
  static KdLevels lv; /* the part names point into it */
  kd_levels_from_strides(&lv, 3, (int[]){8, 16, 32});
  kd_distill_same_levels(&in, &lv);
  for (int l = 0; l < 3; l++) {
    int hw = 4 >> l;
    for (int i = 0; i < 16 * hw * hw; i++) t[l][i] = (float)((i * 7 + l) % 11) * 0.1f;
    for (int i = 0; i < 8 * hw * hw; i++) s[l][i] = (float)((i * 3 + l) % 5) * 0.2f;
    in.t.feat[l] = kd_tensor_wrap(c, t[l], 4, (int[]){1, 16, hw, hw});
    in.s.feat[l] = kd_tensor_wrap(c, s[l], 4, (int[]){1, 8, hw, hw});
  }
  KdTensor *total;
  KdDistillOut outs[KD_DISTILL_MAX_OUT];
  const KdMethod *ms[KD_DISTILL_MAX_OUT];
  int n;
  KdError err;
  if (kd_distiller_loss(d, &in, &total, outs, ms, &n, &err) || n != 1) return NAN;
  for (int p = 0; p < outs[0].nparts; p++)
    if (!strcmp(outs[0].parts[p].name, "neck_bg")) return outs[0].parts[p].value->data[0];
  return NAN;
}

static void test_refresh(KdConfig *cfg) {
  set(cfg, "defeat.beta_obj", "0");
  set(cfg, "defeat.beta_bg", "0");
  KdDistiller *d = configured(cfg, "defeat");
  KdCtx *c = kd_ctx_new(1 << 20);
  KdError err;
  double bg16 = neck_bg(d, c);
  set(cfg, "defeat.alpha_bg", "0");
  double stale = neck_bg(d, c);
  CHECK(kd_distiller_configure(d, cfg, &err) == 0);
  double bg0 = neck_bg(d, c);
  CHECK_MSG(bg16 > 0 && stale == bg16 && bg0 == 0.0, "neck_bg %g, %g before configure, %g after", bg16, stale, bg0);
  set(cfg, "defeat.alpha_bg", "16");
  kd_ctx_free(c);
  kd_distiller_free(d);
}

int main(void) {
  KdConfig *cfg = kd_config_new();
  if (!cfg || kd_distill_register(cfg)) return 1;
  test_bindings(cfg);
  test_parts(cfg);
  test_refresh(cfg);
  kd_config_free(cfg);
  return check_status("test_distiller");
}
