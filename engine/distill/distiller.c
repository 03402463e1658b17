#include "distill/distiller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"

struct KdDistiller {
  KdParams *store;
  KdMethodInst *inst; /* [kd_method_count()] */
  int n;
};

KdDistiller *kd_distiller_new(const KdDistillShapes *sh, uint64_t seed, KdError *err) {
  KdDistiller *d = calloc(1, sizeof *d);
  if (!d) return kd_error(err, "out of memory"), NULL;
  d->n = kd_method_count();
  d->inst = calloc((size_t)d->n, sizeof *d->inst);
  d->store = kd_params_new();
  if (!d->inst || !d->store) goto oom;
  for (int i = 0; i < d->n; i++) {
    d->inst[i].m = kd_method_at(i);
    if (d->inst[i].m->init && d->inst[i].m->init(&d->inst[i], sh, d->store, err)) {
      kd_error_prefix(err, "%s: ", d->inst[i].m->name);
      kd_distiller_free(d);
      return NULL;
    }
  }
  if (kd_params_finalize(d->store, err)) {
    kd_distiller_free(d);
    return NULL;
  }
  KdRng r;
  kd_rng_seed(&r, seed, 11);
  for (int i = 0; i < d->n; i++)
    if (d->inst[i].m->init_weights) d->inst[i].m->init_weights(&d->inst[i], &r);
  return d;
oom:
  kd_distiller_free(d);
  return kd_error(err, "out of memory"), NULL;
}

void kd_distiller_free(KdDistiller *d) {
  if (!d) return;
  for (int i = 0; d->inst && i < d->n; i++)
    if (d->inst[i].m && d->inst[i].m->destroy && d->inst[i].state) d->inst[i].m->destroy(&d->inst[i]);
  free(d->inst);
  kd_params_free(d->store);
  free(d);
}

KdParams *kd_distiller_params(KdDistiller *d) { return d->store; }

int kd_distill_parse_methods(const char *list, int *active, KdError *err) {
  int n = kd_method_count();
  memset(active, 0, sizeof(int) * (size_t)n);
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') e++;
    char name[64];
    size_t len = (size_t)(e - p) < sizeof name - 1 ? (size_t)(e - p) : sizeof name - 1;
    memcpy(name, p, len);
    name[len] = 0;
    int found = -1;
    for (int i = 0; i < n; i++)
      if (!strcmp(kd_method_at(i)->name, name)) found = i;
    if (found < 0) {
      char known[512];
      return kd_error(err, "distill.methods: unknown method '%s' (known: %s)", name, kd_method_names(known, sizeof known));
    }
    active[found] = 1;
    p = e;
  }
  return 0;
}

int kd_distiller_loss(KdDistiller *d, const KdDistillInputs *in, KdTensor **total, KdDistillOut *outs,
                      const KdMethod **methods, int *nout, KdError *err) {
  int active[64];
  *nout = 0;
  *total = NULL;
  if (d->n > 64) return kd_error(err, "too many methods");
  if (kd_distill_parse_methods(kd_config_str(in->cfg, "distill.methods"), active, err)) return -1;
  KdCtx *c = in->c;
  for (int i = 0; i < d->n; i++) {
    if (!active[i] || *nout >= KD_DISTILL_MAX_OUT) continue;
    KdDistillOut *o = &outs[*nout];
    memset(o, 0, sizeof *o);
    if (d->inst[i].m->loss(&d->inst[i], in, o) || !o->loss)
      return kd_error(err, "%s: %s", d->inst[i].m->name, kd_ctx_failed(c) ? kd_ctx_error(c) : "no loss");
    methods[*nout] = d->inst[i].m;
    *total = *total ? kd_add(c, *total, o->loss) : o->loss;
    (*nout)++;
  }
  if (!*total) {
    int one = 1;
    *total = kd_tensor_zeros(c, 1, &one);
  }
  return *total ? 0 : kd_error(err, "%s", kd_ctx_error(c));
}
