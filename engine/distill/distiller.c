/* The distillation methods of a run: which are listed, their params structs
 * and learnable parts. It reads the config only when a setting changed. */
#include "distill/distiller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"

struct KdDistiller {
  KdDistillShapes sh;
  uint64_t seed;
  KdParams *store;    /* learnable parts of the created methods, in creation order */
  KdMethodInst *inst; /* [kd_method_count()], registry order */
  int *created, *active, n, nactive, reads_teacher;
  /* starts[i]: the init stream where method i begins drawing (below);
   * starts[0..nstarts) are known. */
  KdRng *starts;
  int nstarts;
};

KdDistiller *kd_distiller_new(const KdDistillShapes *sh, uint64_t seed, KdError *err) {
  KdDistiller *d = calloc(1, sizeof *d);
  if (!d) return kd_error(err, "out of memory"), NULL;
  d->sh = *sh;
  d->seed = seed;
  d->n = kd_method_count();
  d->inst = calloc((size_t)d->n, sizeof *d->inst);
  d->created = calloc((size_t)d->n, sizeof *d->created);
  d->active = calloc((size_t)d->n, sizeof *d->active);
  d->starts = calloc((size_t)d->n + 1, sizeof *d->starts);
  d->store = kd_params_new();
  if (!d->inst || !d->created || !d->active || !d->starts || !d->store) {
    kd_distiller_free(d);
    return kd_error(err, "out of memory"), NULL;
  }
  for (int i = 0; i < d->n; i++) d->inst[i].m = kd_method_at(i);
  kd_rng_seed(&d->starts[0], seed, 11);
  d->nstarts = 1;
  return d;
}

void kd_distiller_free(KdDistiller *d) {
  if (!d) return;
  for (int i = 0; d->inst && i < d->n; i++) kd_method_inst_release(&d->inst[i]);
  free(d->inst);
  free(d->created);
  free(d->active);
  free(d->starts);
  kd_params_free(d->store);
  free(d);
}

KdParams *kd_distiller_params(KdDistiller *d) { return d->store; }
int kd_distiller_active(const KdDistiller *d) { return d->nactive; }
int kd_distiller_reads_teacher(const KdDistiller *d) { return d->reads_teacher; }

/* Method i's learnable parts in store, finalized and initialised from r. */
static int make_parts(KdDistiller *d, KdMethodInst *inst, KdParams *store, KdRng *r, KdError *err) {
  const KdMethod *m = inst->m;
  if (m->init && m->init(inst, &d->sh, store, err)) return kd_error_prefix(err, "%s: ", m->name);
  if (kd_params_finalize(store, err)) return -1;
  if (m->init_weights) m->init_weights(inst, r);
  return 0;
}

/* A method's initial values must not depend on which other methods are
 * listed: every method draws from one seeded stream at the point where it
 * would if every method were initialised in registry order. Reaching that
 * point for method i runs the init of the methods before it that were
 * never created on parts made and dropped at once (small adapters; only
 * when the list changes). */
static int start_of(KdDistiller *d, int i, KdError *err) {
  while (d->nstarts <= i) {
    int j = d->nstarts - 1;
    KdRng r = d->starts[j];
    KdMethodInst scratch = {.m = d->inst[j].m};
    KdParams *p = kd_params_new();
    int rc = p ? make_parts(d, &scratch, p, &r, err) : kd_error(err, "out of memory");
    kd_method_inst_release(&scratch);
    kd_params_free(p);
    if (rc) return -1;
    d->starts[d->nstarts++] = r;
  }
  return 0;
}

static int create(KdDistiller *d, int i, KdError *err) {
  if (d->created[i]) return 0;
  if (start_of(d, i, err)) return -1;
  KdRng r = d->starts[i];
  if (make_parts(d, &d->inst[i], d->store, &r, err)) return -1;
  d->created[i] = 1;
  if (d->nstarts == i + 1) d->starts[d->nstarts++] = r;
  return 0;
}

int kd_distiller_ensure(KdDistiller *d, const char *method, KdError *err) {
  for (int i = 0; i < d->n; i++)
    if (!strcmp(d->inst[i].m->name, method)) return create(d, i, err);
  return kd_error(err, "unknown distillation method '%s'", method);
}

int kd_distiller_configure(KdDistiller *d, const KdConfig *cfg, KdError *err) {
  int *active = calloc((size_t)d->n + 1, sizeof *active);
  if (!active) return kd_error(err, "out of memory");
  int rc = kd_distill_parse_methods(kd_config_str(cfg, "distill.methods"), active, err);
  for (int i = 0; !rc && i < d->n; i++)
    if (active[i]) rc = create(d, i, err) || kd_method_read_params(&d->inst[i], cfg, err) ? -1 : 0;
  if (!rc) {
    memcpy(d->active, active, sizeof *active * (size_t)d->n);
    d->nactive = d->reads_teacher = 0;
    for (int i = 0; i < d->n; i++) {
      d->nactive += active[i];
      if (active[i] && (kd_method_needs(d->inst[i].m, cfg) & KD_NEED_TEACHER_FWD)) d->reads_teacher = 1;
    }
  }
  free(active);
  return rc;
}

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
  *nout = 0;
  *total = NULL;
  KdCtx *c = in->c;
  for (int i = 0; i < d->n; i++) {
    if (!d->active[i] || *nout >= KD_DISTILL_MAX_OUT) continue;
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
