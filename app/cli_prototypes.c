/* kdscope prototypes: global knowledge's Prototype Generation Module
 * (distill/pgm.h) on pooled features from a file, per level and class, with
 * the gk.* PGM settings; writes the prototypes in the form `kdscope loss
 * --method gk` reads (docs/LOSS-CLI.md), so each half can be checked on
 * its own. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/pgm.h"
#include "model/safetensors.h"
#include "train/session.h"
#include "verbs.h"

#define MAXL 5

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kdscope prototypes: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static const char usage[] =
    "usage: kdscope prototypes --in FEATURES.safetensors --out PROTOTYPES.safetensors\n"
    "                          [--set key=value]... [--config FILE]\n\n"
    "Runs global knowledge's PGM on pooled instance features, per level and class:\n"
    "  student.P3 (N,C_s), teacher.P3 (N,C_t), labels.P3 (N)  one row per instance, P3..P7\n"
    "Writes proto.teacher.P3 (M,C_t), proto.student.P3 (M,C_s), proto.labels.P3 (M) and\n"
    "proto.index.P3 (M, the chosen input rows), the form `kdscope loss --method gk` reads,\n"
    "and prints per level the instances, prototypes, candidates per class and the classes\n"
    "left without prototypes as JSON. Settings: gk.num_prototypes, gk.sigma, gk.cut,\n"
    "gk.alpha (see `kdscope settings`). See docs/LOSS-CLI.md.\n";

typedef struct {
  float *fs, *ft, *lab;
  int n, cs, ct;
} Level;

/* One level's three tensors, checked. 0 absent, 1 read, -1 error (printed). */
static int read_level(KdSafetensors *st, const char *path, int l, Level *v) {
  char name[3][32];
  snprintf(name[0], 32, "student.P%d", l + 3);
  snprintf(name[1], 32, "teacher.P%d", l + 3);
  snprintf(name[2], 32, "labels.P%d", l + 3);
  int id[3], shape[3][4], nd[3], have = 0;
  for (int k = 0; k < 3; k++) {
    id[k] = kd_safetensors_find(st, name[k]);
    if (id[k] >= 0) have++, kd_safetensors_shape(st, id[k], shape[k], &nd[k]);
  }
  if (!have) return 0;
  if (have < 3) return -fail("%s: level P%d needs %s (N,C_s), %s (N,C_t) and %s (N) together", path, l + 3, name[0], name[1], name[2]);
  if (nd[0] != 2 || nd[1] != 2 || nd[2] != 1 || shape[1][0] != shape[0][0] || shape[2][0] != shape[0][0])
    return -fail("%s: level P%d: expected %s (N,C_s), %s (N,C_t), %s (N) with one N", path, l + 3, name[0], name[1], name[2]);
  *v = (Level){.n = shape[0][0], .cs = shape[0][1], .ct = shape[1][1]};
  float **dst[3] = {&v->fs, &v->ft, &v->lab};
  KdError err;
  for (int k = 0; k < 3; k++) {
    size_t n = kd_safetensors_numel(st, id[k]);
    if (!(*dst[k] = malloc(sizeof(float) * (n ? n : 1)))) return -fail("out of memory");
    if (kd_safetensors_read_f32(st, name[k], *dst[k], n, &err)) return -fail("%s", err.msg);
    for (size_t j = 0; j < n; j++)
      if (!isfinite((*dst[k])[j]) || (k == 2 && ((*dst[k])[j] < 0 || (*dst[k])[j] != floorf((*dst[k])[j]) || (*dst[k])[j] > 1e6f)))
        return -fail("%s: tensor '%s' value %g at flat index %zu is not %s", path, name[k], (double)(*dst[k])[j], j,
                     k == 2 ? "a class index" : "finite");
  }
  return 1;
}

/* PGM on one level: the prototypes appended to the output arrays. */
static int run_level(const Level *v, const KdPgmCfg *pc, int l, float **pt, float **ps, float **lab, float **idx, int *m) {
  int K = 0;
  for (int i = 0; i < v->n; i++) K = (int)v->lab[i] + 1 > K ? (int)v->lab[i] + 1 : K;
  const int P = pc->num_prototypes;
  *pt = malloc(sizeof(float) * (size_t)(K * P + 1) * v->ct), *ps = malloc(sizeof(float) * (size_t)(K * P + 1) * v->cs);
  *lab = malloc(sizeof(float) * (size_t)(K * P + 1)), *idx = malloc(sizeof(float) * (size_t)(K * P + 1));
  float *fs = malloc(sizeof(float) * (size_t)(v->n + 1) * v->cs), *ft = malloc(sizeof(float) * (size_t)(v->n + 1) * v->ct);
  int *rows = malloc(sizeof(int) * (size_t)(v->n + 1)), *pick = malloc(sizeof(int) * (size_t)P);
  if (!*pt || !*ps || !*lab || !*idx || !fs || !ft || !rows || !pick) return fail("out of memory");
  printf("%s\"P%d\": {\"instances\": %d, \"candidates\": {", l ? ", " : "", l + 3, v->n);
  char empty[4096] = "";
  size_t eo = 0;
  *m = 0;
  int first = 1;
  for (int k = 0; k < K; k++) {
    int n = 0;
    for (int i = 0; i < v->n; i++) {
      if ((int)v->lab[i] != k) continue;
      memcpy(fs + (size_t)n * v->cs, v->fs + (size_t)i * v->cs, sizeof(float) * v->cs);
      memcpy(ft + (size_t)n * v->ct, v->ft + (size_t)i * v->ct, sizeof(float) * v->ct);
      rows[n++] = i;
    }
    if (!n) continue;
    int nc;
    KdError err;
    const int got = kd_pgm_select(fs, v->cs, ft, v->ct, n, pc, pick, &nc, &err);
    if (got < 0) return fail("%s", err.msg);
    printf("%s\"%d\": %d", first ? "" : ", ", k, nc);
    first = 0;
    if (!got && eo < sizeof empty - 16) eo += (size_t)snprintf(empty + eo, sizeof empty - eo, "%s%d", eo ? ", " : "", k);
    for (int q = 0; q < got; q++, (*m)++) {
      memcpy(*ps + (size_t)*m * v->cs, fs + (size_t)pick[q] * v->cs, sizeof(float) * v->cs);
      memcpy(*pt + (size_t)*m * v->ct, ft + (size_t)pick[q] * v->ct, sizeof(float) * v->ct);
      (*lab)[*m] = (float)k, (*idx)[*m] = (float)rows[pick[q]];
    }
  }
  printf("}, \"prototypes\": %d, \"empty\": [%s]}", *m, empty);
  free(fs), free(ft), free(rows), free(pick);
  return 0;
}

int kd_cli_prototypes(int argc, char **argv) {
  const char *in_path = NULL, *out_path = NULL, *config = NULL, *sets[64];
  int nsets = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    const int has = i + 1 < argc;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) return fputs(usage, stdout), 0;
    if (!strcmp(o, "--in") && has) in_path = argv[++i];
    else if (!strcmp(o, "--out") && has) out_path = argv[++i];
    else if (!strcmp(o, "--config") && has) config = argv[++i];
    else if (!strcmp(o, "--set") && has && nsets < 64) sets[nsets++] = argv[++i];
    else return fail("unknown or incomplete option '%s' (see --help)", o);
  }
  if (!in_path || !out_path) return fail("--in FILE and --out FILE are required (see --help)");
  KdConfig *cfg = kd_config_new();
  KdError err;
  if (!cfg || kd_settings_register_all(cfg)) return kd_config_free(cfg), fail("out of memory");
  int rc = 1;
  KdSafetensors *st = NULL;
  Level lv[MAXL] = {{0}};
  float *out[MAXL][4] = {{0}};
  int m[MAXL] = {0}, present[MAXL] = {0};
  if (config && kd_config_load_file(cfg, config, &err)) goto bad;
  for (int i = 0; i < nsets; i++)
    if (kd_config_set_kv(cfg, sets[i], &err)) goto bad;
  if (!(st = kd_safetensors_open(in_path, &err))) goto bad;
  for (int i = 0; i < kd_safetensors_count(st); i++) {
    const char *nm = kd_safetensors_name(st, i);
    int known = 0;
    for (int l = 3; l <= 7; l++)
      for (int k = 0; k < 3; k++) {
        static const char *const pre[3] = {"student", "teacher", "labels"};
        char want[32];
        snprintf(want, sizeof want, "%s.P%d", pre[k], l);
        known |= !strcmp(nm, want);
      }
    if (known) continue;
    fail("%s: unknown tensor '%s' (expected student.P<l>, teacher.P<l>, labels.P<l> for l = 3..7)", in_path, nm);
    goto out;
  }
  KdPgmCfg pc = {.num_prototypes = (int)kd_config_num(cfg, "gk.num_prototypes"), .sigma = kd_config_num(cfg, "gk.sigma"),
                 .cut = kd_config_num(cfg, "gk.cut"), .alpha = kd_config_num(cfg, "gk.alpha")};
  int nlev = 0;
  for (int l = 0; l < MAXL; l++) {
    int r = read_level(st, in_path, l, &lv[l]);
    if (r < 0) goto out;
    present[l] = r, nlev += r;
  }
  if (!nlev) {
    fail("%s: no level (student.P3, teacher.P3, labels.P3, ...)", in_path);
    goto out;
  }
  printf("{\"levels\": {");
  int printed = 0;
  for (int l = 0; l < MAXL; l++) {
    if (!present[l]) continue;
    if (printed++) printf(" ");
    if (run_level(&lv[l], &pc, printed - 1, &out[l][0], &out[l][1], &out[l][2], &out[l][3], &m[l])) goto out;
  }
  printf("}, \"num_prototypes\": %d}\n", pc.num_prototypes);
  const char *names[MAXL * 4];
  const float *data[MAXL * 4];
  int ndims[MAXL * 4], shapes[MAXL * 4][4], n = 0;
  char nb[MAXL * 4][32];
  static const char *const stem[4] = {"proto.teacher", "proto.student", "proto.labels", "proto.index"};
  for (int l = 0; l < MAXL; l++)
    for (int k = 0; present[l] && m[l] > 0 && k < 4; k++) { /* a level without prototypes writes none */
      snprintf(nb[n], 32, "%s.P%d", stem[k], l + 3);
      names[n] = nb[n], data[n] = out[l][k];
      ndims[n] = k < 2 ? 2 : 1;
      shapes[n][0] = m[l], shapes[n][1] = k == 0 ? lv[l].ct : k == 1 ? lv[l].cs : 0, shapes[n][2] = shapes[n][3] = 0;
      n++;
    }
  const char *meta[] = {"verb", "prototypes", NULL};
  if (kd_safetensors_write(out_path, n, names, data, ndims, (const int(*)[4])shapes, meta, &err)) goto bad;
  rc = 0;
  goto out;
bad:
  fail("%s", err.msg);
out:
  for (int l = 0; l < MAXL; l++) {
    free(lv[l].fs), free(lv[l].ft), free(lv[l].lab);
    for (int k = 0; k < 4; k++) free(out[l][k]);
  }
  kd_safetensors_close(st);
  kd_config_free(cfg);
  return rc;
}
