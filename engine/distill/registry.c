/* The list of distillation methods and the shared plumbing method files
 * use. Adding a method: one file defining `const KdMethod kd_method_<x>`,
 * one name in the method list of engine/distill/meson.build (the list the
 * generated distill/method_list.h holds, in registry order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "distill/distiller.h"
#include "distill/method.h"
#include "method_list.h" /* generated (build/engine/distill/): #define KD_METHOD_LIST X(fitnet) X(defeat) ... */

#define X(name) extern const KdMethod kd_method_##name;
KD_METHOD_LIST
#undef X

static const KdMethod *const methods[] = {
#define X(name) &kd_method_##name,
    KD_METHOD_LIST
#undef X
};

_Static_assert(sizeof methods / sizeof methods[0] <= KD_DISTILL_MAX_OUT,
               "KD_DISTILL_MAX_OUT (distiller.h) must hold every registered method");

int kd_method_count(void) { return (int)(sizeof methods / sizeof methods[0]); }
const KdMethod *kd_method_at(int i) { return methods[i]; }

const KdMethod *kd_method_find(const char *name) {
  for (int i = 0; i < kd_method_count(); i++)
    if (!strcmp(methods[i]->name, name)) return methods[i];
  return NULL;
}

static const char *method_name(int i) { return methods[i]->name; }
const char *kd_method_names(char *buf, size_t len) { return kd_error_names(buf, len, kd_method_count(), method_name); }

unsigned kd_method_needs(const KdMethod *m, const KdConfig *cfg) { return m->needs | (m->needs_now ? m->needs_now(cfg) : 0); }

static const KdParamDesc common[] = {
    {"distill.methods", "Methods", KD_CFG_STRING, 0, 0, 0, 0, 1, "defeat", NULL,
     "Active distillation methods, comma-separated (e.g. defeat or defeat,fgd); empty: none", {0, 0}, NULL, NULL},
};

int kd_distill_register(KdConfig *cfg) {
  if (kd_config_register(cfg, common, 1)) return -1;
  for (int i = 0; i < kd_method_count(); i++)
    if (kd_config_register(cfg, methods[i]->params, methods[i]->nparams)) return -1;
  return 0;
}

void kd_distill_part(KdDistillOut *out, const char *name, KdTensor *value) {
  if (out->nparts >= KD_DISTILL_MAX_PARTS) return;
  out->parts[out->nparts].name = name;
  out->parts[out->nparts].value = value;
  out->nparts++;
}

void kd_distill_mask(KdDistillOut *out, const char *name, int level, KdTensor *map) {
  if (out->nmasks >= KD_DISTILL_MAX_MASKS || !map) return;
  out->masks[out->nmasks++] = (KdDistillMask){name, level, map};
}

void kd_distill_table(KdDistillOut *out, const char *name, KdTensor *rows, int per_image) {
  if (out->ntables >= KD_DISTILL_MAX_TABLES || !rows) return;
  out->tables[out->ntables].name = name;
  out->tables[out->ntables].per_image = per_image;
  out->tables[out->ntables++].rows = rows;
}

int kd_distill_adapters_add(KdConv *a, int nlev, KdParams *store, const char *prefix, int cin, int cout, int k,
                            KdError *err) {
  for (int l = 0; l < nlev; l++) {
    char name[96];
    snprintf(name, sizeof name, "%s.%d", prefix, l);
    if (kd_conv_add(&a[l], store, name, cin, cout, k, 1, k / 2, 1)) return kd_error(err, "cannot register %s", name);
  }
  return 0;
}

void kd_distill_adapters_init(KdConv *a, int nlev, KdRng *r) {
  for (int l = 0; l < nlev; l++) {
    kd_init_bias_default(a[l].w, a[l].w, r);
    kd_init_bias_default(a[l].b, a[l].w, r);
  }
}

void kd_distill_stat(KdDistillOut *out, const char *name, double value) {
  if (out->nstats >= KD_DISTILL_MAX_STATS) return;
  out->stats[out->nstats].name = name;
  out->stats[out->nstats].value = value;
  out->nstats++;
}

void kd_distill_gap(KdDistillOut *out, int level, KdTensor *map) {
  if (out->ngaps >= KD_DISTILL_MAX_GAPS || !map) return;
  out->gaps[out->ngaps++] = (KdDistillGap){level, map};
}

int kd_method_gap_part(const KdMethod *m, const char *name) {
  if (!m->gap_parts) return 1;
  size_t n = strlen(name);
  for (const char *p = m->gap_parts; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n)) return 1;
    p += len + (e != NULL);
  }
  return 0;
}

int kd_distill_finish(KdCtx *c, KdDistillOut *out) {
  KdTensor *sum = NULL;
  for (int i = 0; i < out->nparts; i++) {
    if (!out->parts[i].value) return -1;
    sum = sum ? kd_add(c, sum, out->parts[i].value) : out->parts[i].value;
  }
  if (!sum) {
    int one = 1;
    sum = kd_tensor_zeros(c, 1, &one);
  }
  out->loss = sum;
  return sum ? 0 : -1;
}

int kd_method_read_params(KdMethodInst *inst, const KdConfig *cfg, KdError *err) {
  const KdMethod *m = inst->m;
  if (!inst->params && !(inst->params = calloc(1, m->params_size ? m->params_size : 1)))
    return kd_error(err, "out of memory");
  if (kd_config_fill(cfg, m->params, m->nparams, inst->params, err)) return kd_error_prefix(err, "%s: ", m->name);
  return 0;
}

void kd_method_inst_release(KdMethodInst *inst) {
  if (inst->m && inst->m->destroy && inst->state) inst->m->destroy(inst);
  inst->state = NULL;
  free(inst->params);
  inst->params = NULL;
}
