/* kdscope loss: one distillation method on tensors from a safetensors file
 * — the parity harness. Reads teacher/student FPN maps and head outputs by
 * name, builds anchors and the assignment with the assigner training's
 * RetinaNet head uses (from the config's model and anchor settings), checks
 * the method's declared needs against what the file holds, creates the
 * method's learnable parts as a run with the same seed would (or takes them
 * from the file), evaluates the loss, prints it as JSON and writes
 * d(loss)/d(student inputs and learnable parts). The contract is in
 * docs/LOSS-CLI.md. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "detect/assigner.h"
#include "distill/distiller.h"
#include "distill/side.h"
#include "model/safetensors.h"
#include "train/session.h"
#include "train/settings.h"
#include "verbs.h"

#define MAXL KD_DISTILL_MAX_LEVELS
enum { FEAT, CLS, BOX, NKIND };

static const char *const kind_infix[NKIND] = {"", "cls.", "box."};
static const char *const who_name[2] = {"teacher", "student"};

typedef struct {
  float *data;
  int shape[4];
} Arr;

typedef struct {
  const char *path;
  KdSafetensors *st;
  int nlev, n, has[NKIND];
  Arr lev[NKIND][2][MAXL]; /* [kind][teacher, student][level] */
  float *boxes, *labels;   /* gt.boxes [m,5], gt.labels [m] */
  int m, has_gt, img_h, img_w, K, A;
} Inputs;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kdscope loss: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static void lev_name(char *buf, size_t len, int kind, int who, int l) {
  snprintf(buf, len, "%s.%sP%d", who_name[who], kind_infix[kind], l + 3);
}

/* "student.cls.P4" -> kind CLS, who 1, level 1. */
static int parse_lev_name(const char *name, int *kind, int *who, int *l) {
  for (*who = 0; *who < 2; (*who)++) {
    size_t wl = strlen(who_name[*who]);
    if (strncmp(name, who_name[*who], wl) || name[wl] != '.') continue;
    const char *r = name + wl + 1;
    for (*kind = 0; *kind < NKIND; (*kind)++) {
      size_t kl = strlen(kind_infix[*kind]);
      if (strncmp(r, kind_infix[*kind], kl)) continue;
      const char *p = r + kl;
      if (p[0] == 'P' && p[1] >= '3' && p[1] < '3' + MAXL && p[2] == 0) {
        *l = p[1] - '3';
        return 0;
      }
    }
  }
  return -1;
}

static int integral(float v) { return isfinite(v) && v == floorf(v); }

/* Reads tensor i as floats, refusing NaN/inf. */
static float *read_tensor(Inputs *in, int i, size_t *numel) {
  const char *name = kd_safetensors_name(in->st, i);
  size_t n = kd_safetensors_numel(in->st, i);
  float *d = malloc((n ? n : 1) * sizeof *d);
  KdError err;
  if (!d) return fail("out of memory reading '%s' from %s", name, in->path), NULL;
  if (kd_safetensors_read_f32(in->st, name, d, n, &err)) {
    free(d);
    return fail("%s", err.msg), NULL;
  }
  for (size_t k = 0; k < n; k++)
    if (!isfinite(d[k])) {
      fail("%s: tensor '%s' has a non-finite value (%g) at flat index %zu", in->path, name, (double)d[k], k);
      free(d);
      return NULL;
    }
  if (numel) *numel = n;
  return d;
}

static void shape_str(const int *s, int nd, char *buf, size_t len) {
  int o = snprintf(buf, len, "(");
  for (int d = 0; d < nd && o < (int)len; d++) o += snprintf(buf + o, len - (size_t)o, d ? ",%d" : "%d", s[d]);
  if (o < (int)len) snprintf(buf + o, len - (size_t)o, ")");
}

/* Reads every tensor the file holds; the names are checked here, the
 * distill.* parameters later against the store. */
static int read_inputs(Inputs *in) {
  int cnt = kd_safetensors_count(in->st);
  for (int i = 0; i < cnt; i++) {
    const char *name = kd_safetensors_name(in->st, i);
    int shape[4], nd, kind, who, l;
    kd_safetensors_shape(in->st, i, shape, &nd);
    char ss[64];
    shape_str(shape, nd, ss, sizeof ss);
    if (!parse_lev_name(name, &kind, &who, &l)) {
      if (nd != 4 || kd_safetensors_numel(in->st, i) == 0)
        return fail("%s: tensor '%s' has shape %s; expected N,C,H,W (4 dims, none 0)", in->path, name, ss);
      Arr *a = &in->lev[kind][who][l];
      if (!(a->data = read_tensor(in, i, NULL))) return 1;
      memcpy(a->shape, shape, sizeof shape);
      in->has[kind] = 1;
      if (l + 1 > in->nlev) in->nlev = l + 1;
    } else if (!strcmp(name, "gt.boxes")) {
      if (nd != 2 || shape[1] != 5)
        return fail("%s: tensor 'gt.boxes' has shape %s; expected (M,5): image index, x1, y1, x2, y2", in->path, ss);
      in->m = shape[0];
      if (!(in->boxes = read_tensor(in, i, NULL))) return 1;
    } else if (!strcmp(name, "gt.labels")) {
      if (nd != 1) return fail("%s: tensor 'gt.labels' has shape %s; expected (M)", in->path, ss);
      if (!(in->labels = read_tensor(in, i, NULL))) return 1;
    } else if (!strcmp(name, "image.size")) {
      size_t n;
      float *v = read_tensor(in, i, &n);
      if (!v) return 1;
      int ok = nd == 1 && n == 2 && integral(v[0]) && integral(v[1]) && v[0] >= 1 && v[1] >= 1;
      in->img_h = ok ? (int)v[0] : 0, in->img_w = ok ? (int)v[1] : 0;
      free(v);
      if (!ok) return fail("%s: tensor 'image.size' must be (2): H, W as positive whole numbers", in->path);
    } else if (strncmp(name, "distill.", 8)) {
      return fail("%s: unknown tensor '%s' (expected teacher.P<l>, student.P<l>, {teacher,student}.cls.P<l>, "
                  "{teacher,student}.box.P<l> for l = 3..7, gt.boxes, gt.labels, image.size, or distill.* parameters)",
                  in->path, name);
    }
  }
  return 0;
}

/* Every level P3..P(3+nlev-1) of a kind that appears needs both sides,
 * with one batch size and one H,W per level across kinds; needs are the
 * method's KD_NEED_* bits. */
static int check_levels(Inputs *in, unsigned needs, const char *method) {
  static const char *const what[NKIND] = {"the FPN features", "the class logits", "the box outputs"};
  static const unsigned need_bit[NKIND] = {KD_NEED_FEAT | KD_NEED_SAME_WIDTH, KD_NEED_LOGITS, KD_NEED_BOXES};
  char a[64], b[64], sa[64], sb[64];
  for (int k = 0; k < NKIND; k++)
    if (need_bit[k] & needs && !in->has[k]) {
      lev_name(a, sizeof a, k, 1, 0);
      return fail("%s: missing tensor '%s' (N,C,H,W): method %s needs %s teacher.%sP<l> and student.%sP<l> of every level",
                  in->path, a, method, what[k], kind_infix[k], kind_infix[k]);
    }
  if (!in->nlev) return fail("%s: no level tensors (teacher.P3, student.P3, ...) in the file", in->path);
  const Arr *ref = NULL;
  char refname[64] = "";
  for (int k = 0; k < NKIND; k++) {
    if (!in->has[k]) continue;
    for (int l = 0; l < in->nlev; l++)
      for (int w = 0; w < 2; w++) {
        Arr *x = &in->lev[k][w][l];
        lev_name(a, sizeof a, k, w, l);
        if (!x->data)
          return fail("%s: missing tensor '%s' (N,C,H,W): levels must run from P3 to P%d without gaps, with teacher and "
                      "student tensors for each", in->path, a, in->nlev + 2);
        shape_str(x->shape, 4, sa, sizeof sa);
        if (!ref) {
          ref = x;
          snprintf(refname, sizeof refname, "%s", a);
          in->n = x->shape[0];
        }
        if (x->shape[0] != in->n)
          return fail("%s: tensor '%s' %s has batch %d but '%s' has %d", in->path, a, sa, x->shape[0], refname, in->n);
        /* The first kind present fixes each level's H,W. */
        const Arr *lr = NULL;
        for (int k2 = 0; k2 <= k && !lr; k2++)
          if (in->has[k2]) lr = &in->lev[k2][0][l];
        if (x->shape[2] != lr->shape[2] || x->shape[3] != lr->shape[3]) {
          int k2 = 0;
          while (!in->has[k2]) k2++;
          lev_name(b, sizeof b, k2, 0, l);
          shape_str(lr->shape, 4, sb, sizeof sb);
          return fail("%s: tensor '%s' %s and '%s' %s differ in H,W; a level has one size", in->path, a, sa, b, sb);
        }
        /* Channels: one width per side for features; head outputs equal on both sides. */
        const Arr *same = k == FEAT ? &in->lev[k][w][0] : &in->lev[k][0][0];
        if (x->shape[1] != same->shape[1]) {
          lev_name(b, sizeof b, k, k == FEAT ? w : 0, 0);
          return fail("%s: tensor '%s' %s has %d channels but '%s' has %d", in->path, a, sa, x->shape[1], b,
                      same->shape[1]);
        }
      }
  }
  if (in->has[CLS]) {
    int C = in->lev[CLS][1][0].shape[1];
    if (C % in->A)
      return fail("%s: tensor 'student.cls.P3' has %d channels; expected A*K with A = %d anchors per location", in->path,
                  C, in->A);
    in->K = C / in->A;
  }
  if (in->has[BOX] && in->lev[BOX][1][0].shape[1] != 4 * in->A)
    return fail("%s: tensor 'student.box.P3' has %d channels; expected A*4 = %d", in->path, in->lev[BOX][1][0].shape[1],
                4 * in->A);
  return 0;
}

static int check_gt(Inputs *in, unsigned needs, const char *method) {
  if (!in->boxes != !in->labels)
    return fail("%s: %s given without %s; both are needed", in->path, in->boxes ? "gt.boxes" : "gt.labels",
                in->boxes ? "gt.labels" : "gt.boxes");
  in->has_gt = in->boxes != NULL;
  if (!in->has_gt) {
    if (needs & (KD_NEED_GT | KD_NEED_ASSIGN))
      return fail("%s: missing tensor 'gt.boxes' (M,5) and 'gt.labels' (M): method %s needs the ground truth", in->path,
                  method);
    return 0;
  }
  if (kd_safetensors_numel(in->st, kd_safetensors_find(in->st, "gt.labels")) != (size_t)in->m)
    return fail("%s: tensor 'gt.labels' must have M = %d values, one per row of gt.boxes", in->path, in->m);
  int maxl = -1;
  for (int j = 0; j < in->m; j++) {
    const float *b = in->boxes + 5 * j;
    if (!integral(b[0]) || b[0] < 0 || b[0] >= in->n)
      return fail("%s: gt.boxes row %d: image index %g is not a whole number in [0, %d)", in->path, j, (double)b[0], in->n);
    if (b[3] < b[1] || b[4] < b[2])
      return fail("%s: gt.boxes row %d: (%g,%g,%g,%g) needs x1 <= x2 and y1 <= y2", in->path, j, (double)b[1],
                  (double)b[2], (double)b[3], (double)b[4]);
    float lab = in->labels[j];
    if (!integral(lab) || lab < 0 || (in->K && lab >= in->K))
      return fail("%s: gt.labels[%d] = %g is not a class index in [0, %d)", in->path, j, (double)lab,
                  in->K ? in->K : 1 << 30);
    if ((int)lab > maxl) maxl = (int)lab;
  }
  if (!in->K) in->K = maxl + 1 > 0 ? maxl + 1 : 1;
  return 0;
}

/* Per-image views of the GT rows (in file order). */
static KdGtImage *group_gt(const Inputs *in, float **boxes, int **labels) {
  KdGtImage *g = calloc((size_t)in->n, sizeof *g);
  *boxes = malloc((size_t)(in->m ? in->m : 1) * 4 * sizeof(float));
  *labels = malloc((size_t)(in->m ? in->m : 1) * sizeof(int));
  if (!g || !*boxes || !*labels) return free(g), NULL;
  int k = 0;
  for (int i = 0; i < in->n; i++) {
    g[i].boxes = *boxes + 4 * k;
    g[i].labels = *labels + k;
    for (int j = 0; j < in->m; j++) {
      if ((int)in->boxes[5 * j] != i) continue;
      memcpy(*boxes + 4 * k, in->boxes + 5 * j + 1, 4 * sizeof(float));
      (*labels)[k++] = (int)in->labels[j];
      g[i].n++;
    }
  }
  return g;
}

static const char usage[] =
    "usage: kdscope loss --method NAME --in TENSORS.safetensors [--out GRADS.safetensors]\n"
    "                    [--set key=value]... [--seed N] [--config FILE]\n\n"
    "Evaluates one distillation method on named tensors (the parity harness):\n"
    "  teacher.P3, student.P3, ...           FPN maps (N,C,H,W), levels P3.. without gaps\n"
    "  teacher.cls.P3, student.cls.P3, ...   class logits (N,A*K,H,W)\n"
    "  teacher.box.P3, student.box.P3, ...   box outputs (N,A*4,H,W), optional\n"
    "  gt.boxes (M,5: image, x1,y1,x2,y2 in input pixels), gt.labels (M), image.size (2: H,W)\n"
    "  distill.<method>.* learnable parts (else initialised from the seed as a run would)\n"
    "Prints {\"method\", \"loss\", \"parts\", \"num_pos\", \"params_from_input\"} as JSON and\n"
    "writes grad.student.* and grad.distill.* to --out. Level l has stride 8*2^(l-3);\n"
    "anchors and assignment are training's (anchor.size_mult from the config).\n"
    "--seed N sets train.seed (default 1). See docs/LOSS-CLI.md.\n\nMethods and their settings:\n";

static void print_usage(void) {
  fputs(usage, stdout);
  for (int i = 0; i < kd_method_count(); i++) {
    const KdMethod *m = kd_method_at(i);
    printf("  %-8s %s\n", m->name, m->help);
    for (int j = 0; j < m->nparams; j++) {
      const KdParamDesc *d = &m->params[j];
      if (d->type == KD_CFG_ENUM || d->type == KD_CFG_STRING)
        printf("      %-20s %s\n", d->key, d->def_str);
      else
        printf("      %-20s %g [%g, %g]\n", d->key, d->def, d->min, d->max);
    }
  }
}

static void print_num(double v) {
  if (isfinite(v)) printf("%.9g", v);
  else printf("null");
}

/* Output: JSON on stdout and gradients in --out. */
static int report(const char *method, const KdDistillOut *o, const Inputs *in, KdTensor *st[NKIND][MAXL], KdParams *store,
                  const char **loaded, int nloaded, int num_pos, const char *out_path) {
  printf("{\"method\": \"%s\", \"loss\": ", method);
  print_num(o->loss->data[0]);
  printf(", \"parts\": {");
  for (int i = 0; i < o->nparts; i++) {
    printf("%s\"%s.%s\": ", i ? ", " : "", method, o->parts[i].name);
    print_num(o->parts[i].value->data[0]);
  }
  printf("}, \"num_pos\": ");
  if (num_pos >= 0) printf("%d", num_pos);
  else printf("null");
  printf(", \"params_from_input\": [");
  for (int i = 0; i < nloaded; i++) printf("%s\"%s\"", i ? ", " : "", loaded[i]);
  printf("]}\n");
  fflush(stdout);
  if (!isfinite(o->loss->data[0])) return fail("%s: the loss is not finite", in->path);
  if (!out_path) return 0;
  int cap = NKIND * MAXL + kd_params_count(store), n = 0, rc = 0;
  char **names = calloc((size_t)cap, sizeof *names);
  const float **data = calloc((size_t)cap, sizeof *data);
  float **owned = calloc((size_t)cap, sizeof *owned);
  int *ndims = calloc((size_t)cap, sizeof *ndims);
  int(*shapes)[4] = calloc((size_t)cap, sizeof *shapes);
  if (!names || !data || !owned || !ndims || !shapes) {
    rc = fail("out of memory");
    goto done;
  }
  char buf[128];
  for (int k = 0; k < NKIND; k++)
    for (int l = 0; in->has[k] && l < in->nlev; l++) {
      KdTensor *t = st[k][l];
      lev_name(buf, sizeof buf, k, 1, l);
      size_t len = strlen(buf) + 6;
      names[n] = malloc(len);
      if (names[n]) snprintf(names[n], len, "grad.%s", buf);
      if (!t->grad) owned[n] = calloc(t->numel, sizeof(float));
      data[n] = t->grad ? t->grad : owned[n];
      ndims[n] = 4;
      memcpy(shapes[n], t->shape, sizeof shapes[n]);
      if (!names[n] || !data[n]) {
        rc = fail("out of memory");
        goto done;
      }
      n++;
    }
  char prefix[64];
  snprintf(prefix, sizeof prefix, "distill.%s.", method);
  for (int i = 0; i < kd_params_count(store); i++) {
    KdTensor *p = kd_params_at(store, i);
    if (kd_params_kind(store, i) != KD_PARAM_TRAIN || strncmp(p->name, prefix, strlen(prefix))) continue;
    size_t len = strlen(p->name) + 6;
    if (!(names[n] = malloc(len))) {
      rc = fail("out of memory");
      goto done;
    }
    snprintf(names[n], len, "grad.%s", p->name);
    data[n] = p->grad;
    ndims[n] = p->ndim;
    memcpy(shapes[n], p->shape, sizeof shapes[n]);
    n++;
  }
  char lossbuf[32];
  snprintf(lossbuf, sizeof lossbuf, "%.9g", (double)o->loss->data[0]);
  const char *meta[] = {"method", method, "loss", lossbuf, NULL};
  KdError err;
  if (kd_safetensors_write(out_path, n, (const char *const *)names, data, ndims, (const int(*)[4])shapes, meta, &err))
    rc = fail("%s", err.msg);
done:
  for (int i = 0; names && i < cap; i++) free(names[i]);
  for (int i = 0; owned && i < cap; i++) free(owned[i]);
  free(names), free(data), free(owned), free(ndims), free(shapes);
  return rc;
}

/* Takes distill.* tensors of the file as the store's values. */
static int load_params(Inputs *in, KdParams *store, const char **loaded, int *nloaded) {
  *nloaded = 0;
  for (int i = 0; i < kd_safetensors_count(in->st); i++) {
    const char *name = kd_safetensors_name(in->st, i);
    if (strncmp(name, "distill.", 8)) continue;
    KdTensor *p = kd_params_find(store, name);
    int shape[4], nd;
    kd_safetensors_shape(in->st, i, shape, &nd);
    char sf[64], sp[64];
    shape_str(shape, nd, sf, sizeof sf);
    if (!p) return fail("%s: tensor '%s' %s is not a learnable part of any method here", in->path, name, sf);
    shape_str(p->shape, p->ndim, sp, sizeof sp);
    int same = nd == p->ndim;
    for (int d = 0; same && d < nd; d++) same = shape[d] == p->shape[d];
    if (!same) return fail("%s: tensor '%s' has shape %s; expected %s", in->path, name, sf, sp);
    float *v = read_tensor(in, i, NULL);
    if (!v) return 1;
    memcpy(p->data, v, p->numel * sizeof(float));
    free(v);
    loaded[(*nloaded)++] = name;
  }
  return 0;
}

typedef struct {
  const char *method, *in_path, *out_path, *config, *seed;
  const char *sets[64];
  int nsets;
} Args;

static int parse_args(int argc, char **argv, Args *a) {
  memset(a, 0, sizeof *a);
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      print_usage();
      return 2;
    } else if (!strcmp(o, "--method") && has) a->method = argv[++i];
    else if (!strcmp(o, "--in") && has) a->in_path = argv[++i];
    else if (!strcmp(o, "--out") && has) a->out_path = argv[++i];
    else if (!strcmp(o, "--config") && has) a->config = argv[++i];
    else if (!strcmp(o, "--seed") && has) a->seed = argv[++i];
    else if (!strcmp(o, "--set") && has) {
      if (a->nsets == 64) return fail("too many --set options");
      a->sets[a->nsets++] = argv[++i];
    } else return fail("unknown or incomplete option '%s' (see --help)", o);
  }
  if (!a->method || !a->in_path) return fail("--method NAME and --in FILE are required (see --help)");
  return 0;
}

static KdConfig *load_config(const Args *a) {
  KdConfig *cfg = kd_config_new();
  KdError err;
  if (!cfg || kd_settings_register_all(cfg)) {
    fail("out of memory");
    kd_config_free(cfg);
    return NULL;
  }
  if (a->config && kd_config_load_file(cfg, a->config, &err)) goto bad;
  for (int i = 0; i < a->nsets; i++)
    if (kd_config_set_kv(cfg, a->sets[i], &err)) goto bad;
  if (a->seed && kd_config_set(cfg, "train.seed", a->seed, &err)) goto bad;
  if (kd_config_set(cfg, "distill.methods", a->method, &err)) goto bad;
  return cfg;
bad:
  fail("%s", err.msg);
  kd_config_free(cfg);
  return NULL;
}

/* What the file gives the methods (the needs the file-level checks above
 * do not cover: no teacher model to run, no RoIs). */
static void file_avail(const Inputs *in, KdDistillAvail *av) {
  memset(av, 0, sizeof *av);
  av->have = (1u << KD_NEED_COUNT) - 1;
  if (in->has[FEAT] && in->lev[FEAT][0][0].shape[1] != in->lev[FEAT][1][0].shape[1])
    kd_distill_avail_lack(av, KD_NEED_SAME_WIDTH, "%s: teacher features have %d channels, student %d", in->path,
                          in->lev[FEAT][0][0].shape[1], in->lev[FEAT][1][0].shape[1]);
  kd_distill_avail_lack(av, KD_NEED_TEACHER_RUN, "`kdscope loss` has the teacher's tensors, not its model");
  kd_distill_avail_lack(av, KD_NEED_ROIS, "`kdscope loss` reads no proposals");
}

/* Both sides from the file's tensors (student tensors on the tape). */
static int fill_sides(const Inputs *in, KdCtx *c, const KdLevels *lv, KdDistillInputs *din, KdTensor *stud[NKIND][MAXL]) {
  static const char *const out_name[NKIND] = {NULL, "cls", "box"};
  KdDistillSide *side[2] = {&din->t, &din->s};
  int slot[NKIND] = {-1, -1, -1};
  for (int w = 0; w < 2; w++) {
    side[w]->channels = in->has[FEAT] ? in->lev[FEAT][w][0].shape[1] : 0;
    side[w]->nout = 0;
    for (int k = CLS; k < NKIND; k++)
      if (in->has[k]) slot[k] = side[w]->nout, side[w]->out[side[w]->nout++].name = out_name[k];
  }
  for (int l = 0; l < in->nlev; l++)
    for (int k = 0; k < NKIND; k++) {
      if (!in->has[k]) continue;
      for (int w = 0; w < 2; w++) {
        KdTensor *t = kd_tensor_wrap(c, in->lev[k][w][l].data, 4, in->lev[k][w][l].shape);
        if (!t) return fail("out of memory");
        if (w) t->requires_grad = 1, stud[k][l] = t;
        if (k == FEAT) side[w]->feat[l] = t;
        else side[w]->out[slot[k]].lv[l] = t;
      }
    }
  kd_distill_same_levels(din, lv);
  return 0;
}

int kd_cli_loss(int argc, char **argv) {
  Args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc == 2 ? 0 : 1;
  const KdMethod *method = kd_method_find(a.method);
  if (!method) {
    char known[512];
    return fail("--method: unknown method '%s' (known: %s)", a.method, kd_method_names(known, sizeof known));
  }
  KdConfig *cfg = load_config(&a);
  if (!cfg) return 1;
  unsigned needs = kd_method_needs(method, cfg);
  KdError err;
  Inputs in = {.path = a.in_path};
  KdDistiller *dist = NULL;
  KdAssigner *asg = NULL;
  KdCtx *c = NULL;
  KdGtImage *gt = NULL;
  float *gt_boxes = NULL;
  int *gt_labels = NULL, num_pos = -1;
  const char **loaded = NULL;
  rc = 1;

  /* Anchors and assignment as the student's head would make them: the
   * config's model and anchor settings on the file's levels. */
  KdModelCfg mc;
  if (kd_settings_model(cfg, &mc, &err)) {
    fail("%s", err.msg);
    goto out;
  }
  KdAnchorCfg acfg = mc.head.anchors;
  in.A = kd_anchors_per_loc(&acfg);
  if (!(in.st = kd_safetensors_open(a.in_path, &err))) {
    fail("%s", err.msg);
    goto out;
  }
  if (read_inputs(&in) || check_levels(&in, needs, a.method) || check_gt(&in, needs, a.method)) goto out;
  KdDistillAvail avail;
  file_avail(&in, &avail);
  if (kd_distill_check(cfg, a.method, &avail, &err)) {
    fail("%s", err.msg);
    goto out;
  }
  KdLevels lv = {0};
  int hw[2 * MAXL], ref = in.has[FEAT] ? FEAT : in.has[CLS] ? CLS : BOX;
  for (int l = 0; l < in.nlev; l++) {
    char name[8];
    snprintf(name, sizeof name, "P%d", l + 3); /* the file's level names */
    kd_levels_add(&lv, kd_level_name_stride(name));
    acfg.strides[l] = lv.stride[l];
    hw[2 * l] = in.lev[ref][0][l].shape[2], hw[2 * l + 1] = in.lev[ref][0][l].shape[3];
  }
  acfg.nlevels = in.nlev;
  if (!in.img_h) in.img_h = lv.stride[0] * in.lev[ref][0][0].shape[2];
  if (!in.img_w) in.img_w = lv.stride[0] * in.lev[ref][0][0].shape[3];
  if (!(asg = kd_assigner_new(&acfg, &mc.head.assign, &err)) || !(c = kd_ctx_new(64u << 20))) {
    fail("%s", asg ? "out of memory" : err.msg);
    goto out;
  }
  KdDenseAssign dense = {0};
  if (in.has_gt) {
    if (!(gt = group_gt(&in, &gt_boxes, &gt_labels))) {
      fail("out of memory");
      goto out;
    }
    if (kd_assigner_targets(asg, c, hw, gt, in.n, in.K, &dense, &err)) {
      fail("%s: %s", a.in_path, err.msg);
      goto out;
    }
    num_pos = dense.num_pos;
  }

  /* Learnable parts: as a run with this seed creates them, then the file's.
   * Every method gets its parts; without features their widths are a
   * placeholder (8) that no feature method will ever read. */
  KdDistillShapes sh = {.nlev = in.nlev,
                        .t_channels = in.has[FEAT] ? in.lev[FEAT][0][0].shape[1] : 8,
                        .s_channels = in.has[FEAT] ? in.lev[FEAT][1][0].shape[1] : 8,
                        .num_classes = in.K ? in.K : 1,
                        .num_anchors = in.A};
  memcpy(sh.strides, lv.stride, sizeof sh.strides);
  if (!(dist = kd_distiller_new(&sh, (uint64_t)kd_config_int(cfg, "train.seed"), &err))) {
    fail("%s", err.msg);
    goto out;
  }
  KdParams *store = kd_distiller_params(dist);
  int nloaded = 0;
  loaded = calloc((size_t)kd_safetensors_count(in.st) + 1, sizeof *loaded);
  if (!loaded) {
    fail("out of memory");
    goto out;
  }
  if (load_params(&in, store, loaded, &nloaded)) goto out;
  kd_params_zero_grad(store);

  KdDistillInputs din = {.c = c, .cfg = cfg, .n = in.n, .img_h = in.img_h, .img_w = in.img_w, .gt = gt};
  KdTensor *stud[NKIND][MAXL] = {{0}};
  if (fill_sides(&in, c, &lv, &din, stud)) goto out;
  din.s.assign = in.has_gt ? &dense : NULL;
  KdTensor *total;
  KdDistillOut outs[KD_DISTILL_MAX_OUT];
  const KdMethod *ms[KD_DISTILL_MAX_OUT];
  int nout = 0;
  if (kd_distiller_loss(dist, &din, &total, outs, ms, &nout, &err)) {
    fail("%s: %s", a.in_path, err.msg);
    goto out;
  }
  if (nout != 1 || kd_backward(c, outs[0].loss)) {
    fail("%s: backward: %s", a.in_path, kd_ctx_failed(c) ? kd_ctx_error(c) : "no loss");
    goto out;
  }
  rc = report(a.method, &outs[0], &in, stud, store, loaded, nloaded, num_pos, a.out_path);
out:
  for (int k = 0; k < NKIND; k++)
    for (int w = 0; w < 2; w++)
      for (int l = 0; l < MAXL; l++) free(in.lev[k][w][l].data);
  free(in.boxes), free(in.labels), free(gt), free(gt_boxes), free(gt_labels);
  free(loaded);
  kd_assigner_free(asg);
  kd_ctx_free(c);
  kd_distiller_free(dist);
  kd_safetensors_close(in.st);
  kd_config_free(cfg);
  return rc;
}
