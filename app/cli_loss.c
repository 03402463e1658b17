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
#include "detect/atss.h"
#include "distill/distiller.h"
#include "distill/pgdmask.h"
#include "distill/gk.h"
#include "distill/side.h"
#include "loss_inputs.h"
#include "model/safetensors.h"
#include "train/session.h"
#include "train/settings.h"
#include "verbs.h"

#define MAXL KD_LOSS_MAXL
enum { FEAT = KD_LOSS_FEAT, CLS = KD_LOSS_CLS, BOX = KD_LOSS_BOX, DIST = KD_LOSS_DIST, NKIND = KD_LOSS_NKIND };
typedef KdLossInputs Inputs;

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
    "  teacher.dist.P3, student.dist.P3, ... side distributions (N,4*(R+1),H,W), model.head=gfl\n"
    "  {teacher,student}.{cls,reg}_tower[0].P3  GFL head towers' last [first] features (N,C,H,W), for pgd\n"
    "  pgd.jitter (2,M,k,2), pgd.{cls,reg,bg}.P3 (N,1,H,W)  PGD's Gaussian-fit draws / precomputed masks\n"
    "  icd.instances (M,9: image, real, class, x1,y1,x2,y2, cx,cy)  ICD's queries (else sampled)\n"
    "  gt.boxes (M,5: image, x1,y1,x2,y2 in input pixels), gt.labels (M), image.size (2: H,W)\n"
    "  roi.assist.fc1, roi.assist.fc2, roi.teacher.fc1, roi.teacher.fc2 (R,D), roi.tower (R,C),\n"
    "  roi.gt (R), step (1)                   HEAD's RoI-level inputs (no levels needed)\n"
    "  inst.boxes (R,5), inst.labels (R), inst.{teacher,student}.cls (R,K), proto.{teacher,student}.P3\n"
    "  (M,C), proto.labels.P3 (M), progress (1)  gk's instance rows and prototypes\n"
    "  distill.<method>.* learnable parts (else initialised from the seed as a run would)\n"
    "Prints {\"method\", \"loss\", \"parts\", \"num_pos\", \"params_from_input\"} as JSON and\n"
    "writes grad.student.*, grad.roi.*, grad.distill.* and the method's loss maps gap.<method>.P3..\n"
    "(N,H,W; what the window's gap panel shows) to --out. Level l has stride 8*2^(l-3);\n"
    "anchors and assignment are training's (anchor.size_mult from the config; with\n"
    "model.head=gfl one anchor per location and ATSS, atss.topk).\n"
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
static int report(const char *method, const KdDistillOut *o, const Inputs *in, KdTensor *st[NKIND][MAXL],
                  const KdDistillRoiIn *ri, const KdDistillInstIn *ii, KdParams *store, const char **loaded, int nloaded,
                  int num_pos, const char *out_path) {
  printf("{\"method\": \"%s\", \"loss\": ", method);
  print_num(o->loss->data[0]);
  printf(", \"parts\": {");
  for (int i = 0; i < o->nparts; i++) {
    printf("%s\"%s.%s\": ", i ? ", " : "", method, o->parts[i].name);
    print_num(o->parts[i].value->data[0]);
  }
  printf("}");
  if (o->nstats) printf(", \"stats\": {");
  for (int i = 0; i < o->nstats; i++) {
    printf("%s\"%s.%s\": ", i ? ", " : "", method, o->stats[i].name);
    print_num(o->stats[i].value);
  }
  printf("%s, \"num_pos\": ", o->nstats ? "}" : "");
  if (num_pos >= 0) printf("%d", num_pos);
  else printf("null");
  printf(", \"params_from_input\": [");
  for (int i = 0; i < nloaded; i++) printf("%s\"%s\"", i ? ", " : "", loaded[i]);
  printf("]}\n");
  fflush(stdout);
  if (!isfinite(o->loss->data[0])) return fail("%s: the loss is not finite", in->path);
  if (!out_path) return 0;
  int cap = NKIND * MAXL + kd_params_count(store) + o->ngaps + o->nmasks + o->ntables + 4, n = 0, rc = 0;
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
      kd_loss_level_name(buf, sizeof buf, k, 1, l);
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
  /* The student-side RoI-level tensors: the assistant's fc1, fc2, the tower rows. */
  KdTensor *const rt[3] = {ri ? ri->assist_fc[0] : NULL, ri ? ri->assist_fc[1] : NULL, ri ? ri->tower : NULL};
  static const char *const rn[3] = {"grad.roi.assist.fc1", "grad.roi.assist.fc2", "grad.roi.tower"};
  for (int k = 0; k < 3; k++) {
    if (!rt[k]) continue;
    if (!(names[n] = strdup(rn[k])) || (!rt[k]->grad && !(owned[n] = calloc(rt[k]->numel, sizeof(float))))) {
      rc = fail("out of memory");
      goto done;
    }
    data[n] = rt[k]->grad ? rt[k]->grad : owned[n];
    ndims[n] = 2;
    memcpy(shapes[n], rt[k]->shape, sizeof shapes[n]);
    n++;
  }
  /* Instance rows' logits (gk), and the method's tables (whole, by name). */
  if (ii && ii->s_cls) {
    if (!(names[n] = strdup("grad.inst.student.cls")) ||
        (!ii->s_cls->grad && !(owned[n] = calloc(ii->s_cls->numel, sizeof(float))))) {
      rc = fail("out of memory");
      goto done;
    }
    data[n] = ii->s_cls->grad ? ii->s_cls->grad : owned[n];
    ndims[n] = 2;
    memcpy(shapes[n], ii->s_cls->shape, sizeof shapes[n]);
    n++;
  }
  for (int k = 0; k < o->ntables; k++) {
    const KdTensor *t = o->tables[k].rows;
    if (!t || !(names[n] = strdup(o->tables[k].name))) continue;
    data[n] = t->data;
    ndims[n] = t->ndim;
    memcpy(shapes[n], t->shape, sizeof shapes[n]);
    n++;
  }
  /* The method's loss map per level (the probe's gap.<method>): N,H,W. */
  for (int g = 0; g < o->ngaps; g++) {
    const KdTensor *m = o->gaps[g].map;
    if (!(names[n] = malloc(96))) {
      rc = fail("out of memory");
      goto done;
    }
    snprintf(names[n], 96, "gap.%s.P%d", method, o->gaps[g].level + 3);
    data[n] = m->data;
    ndims[n] = 3;
    shapes[n][0] = m->shape[0], shapes[n][1] = m->shape[2], shapes[n][2] = m->shape[3];
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
    kd_loss_shape_str(shape, nd, sf, sizeof sf);
    if (!p) return fail("%s: tensor '%s' %s is not a learnable part of any method here", in->path, name, sf);
    kd_loss_shape_str(p->shape, p->ndim, sp, sizeof sp);
    int same = nd == p->ndim;
    for (int d = 0; same && d < nd; d++) same = shape[d] == p->shape[d];
    if (!same) return fail("%s: tensor '%s' has shape %s; expected %s", in->path, name, sf, sp);
    KdError err;
    float *v = kd_loss_inputs_tensor(in, i, NULL, &err);
    if (!v) return fail("%s", err.msg);
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

/* GFL heads: their single anchors (the assigner's cache) and ATSS, as
 * head_gfl.c trains with. */
static int gfl_targets(KdAssigner *asg, KdCtx *c, const int *hw, const KdGtImage *gt, const Inputs *in, int topk,
                       KdDenseAssign *out, KdError *err) {
  int At, off[MAXL + 1] = {0};
  const float *anchors = kd_assigner_anchors(asg, hw, &At, err);
  if (!anchors) return -1;
  for (int l = 0; l < in->nlev; l++) off[l + 1] = off[l] + hw[2 * l] * hw[2 * l + 1]; /* one anchor per location */
  size_t na = (size_t)in->n * At;
  int *match = kd_ctx_alloc(c, na * sizeof *match), *cls = kd_ctx_alloc(c, na * sizeof *cls), samples;
  float *boxes = kd_ctx_alloc(c, na * 4 * sizeof *boxes);
  if (!match || !cls || !boxes) return kd_error(err, "out of memory for the targets");
  int npos = kd_atss_targets(anchors, off, in->nlev, gt, in->n, in->K, topk, match, cls, boxes, &samples, err);
  if (npos < 0) return -1;
  *out = (KdDenseAssign){.A = 1, .K = in->K, .A_total = At, .anchors = anchors, .target_cls = cls,
                         .target_boxes = boxes, .match_gt = match, .num_pos = npos};
  return 0;
}

/* What the file gives the methods (the needs the file-level checks above
 * do not cover: no teacher model to run, no RoIs). */
static void file_avail(const Inputs *in, KdDistillAvail *av) {
  memset(av, 0, sizeof *av);
  av->have = (1u << KD_NEED_COUNT) - 1;
  if (in->has[FEAT] && in->lev[FEAT][0][0].shape[1] != in->lev[FEAT][1][0].shape[1])
    kd_distill_avail_lack(av, KD_NEED_SAME_WIDTH, "%s: teacher features have %d channels, student %d", in->path,
                          in->lev[FEAT][0][0].shape[1], in->lev[FEAT][1][0].shape[1]);
  /* gk's instance rows stand for a two-stage student's positive RoIs, their logits for both RoI heads */
  if (!in->has_inst)
    kd_distill_avail_lack(av, KD_NEED_STUDENT_ROIS, "`kdscope loss` runs no student model (gk takes inst.* rows)");
  kd_distill_avail_lack(av, KD_NEED_STUDENT_RUN, "`kdscope loss` has the student's tensors, not its model");
  if (!in->has[DIST] && !in->has_pgd_mask)
    kd_distill_avail_lack(av, KD_NEED_DIST, "%s: no teacher.dist.P3 / student.dist.P3", in->path);
  if (in->has_roi || in->inst_cls[0]) return; /* the roi.* (or gk's inst.*) tensors are what those give a step */
  kd_distill_avail_lack(av, KD_NEED_TEACHER_RUN, "`kdscope loss` has the teacher's tensors, not its model (RoI-level "
                        "methods take roi.* tensors)");
  kd_distill_avail_lack(av, KD_NEED_ROIS, "`kdscope loss` reads no proposals (RoI-level methods take roi.* tensors)");
}

/* The roi.* tensors as the methods see them (student side on the tape). */
static int fill_rois(const Inputs *in, KdCtx *c, KdDistillRoiIn *ri) {
  memset(ri, 0, sizeof *ri);
  ri->nrois = in->R;
  KdTensor *t[KD_LOSS_NROI];
  for (int k = 0; k < KD_LOSS_NROI; k++) {
    const int w = k == KD_LOSS_ROI_TOWER ? in->C : in->D;
    if (!(t[k] = kd_tensor_wrap(c, in->roi[k], 2, (int[]){in->R, w}))) return fail("out of memory");
  }
  t[KD_LOSS_ROI_ASSIST_FC1]->requires_grad = t[KD_LOSS_ROI_ASSIST_FC2]->requires_grad = 1;
  t[KD_LOSS_ROI_TOWER]->requires_grad = 1;
  ri->assist_fc[0] = t[KD_LOSS_ROI_ASSIST_FC1], ri->assist_fc[1] = t[KD_LOSS_ROI_ASSIST_FC2];
  ri->teacher_fc[0] = t[KD_LOSS_ROI_TEACHER_FC1], ri->teacher_fc[1] = t[KD_LOSS_ROI_TEACHER_FC2];
  ri->tower = t[KD_LOSS_ROI_TOWER];
  int *gt = kd_ctx_alloc(c, (size_t)in->R * sizeof *gt);
  if (!gt) return fail("out of memory");
  for (int r = 0; r < in->R; r++) gt[r] = in->roi_gt[r] != 0.0f;
  ri->gt = gt;
  return 0;
}

/* gk's instance rows (the student's logits on the tape). */
static int fill_inst(const Inputs *in, KdCtx *c, KdDistillInstIn *ii) {
  memset(ii, 0, sizeof *ii);
  int *lab = kd_ctx_alloc(c, sizeof *lab * (size_t)(in->nr ? in->nr : 1));
  if (!lab) return fail("out of memory");
  for (int r = 0; r < in->nr; r++) lab[r] = (int)in->inst_labels[r];
  *ii = (KdDistillInstIn){.n = in->nr, .boxes = in->inst_boxes, .labels = lab};
  if (in->inst_cls[0] && in->nr > 0) {
    ii->t_cls = kd_tensor_wrap(c, in->inst_cls[0], 2, in->inst_cls_shape[0]);
    ii->s_cls = kd_tensor_wrap(c, in->inst_cls[1], 2, in->inst_cls_shape[1]);
    if (!ii->t_cls || !ii->s_cls) return fail("out of memory");
    ii->s_cls->requires_grad = 1;
  }
  return 0;
}

/* gk's prototypes from the file into its run state (replacing any given as distill.gk.*). */
static int set_protos(const Inputs *in, KdParams *store) {
  for (int l = 0; l < MAXL; l++) {
    if (!in->proto_t[l]) continue;
    const int m = in->proto_m[0][l];
    int *lab = malloc(sizeof *lab * (size_t)(m ? m : 1));
    if (!lab) return fail("out of memory");
    for (int j = 0; j < m; j++) lab[j] = (int)in->proto_lab[l][j];
    KdError err;
    int rc = kd_gk_set_level(store, l, in->proto_t[l], in->proto_s[l], lab, m, &err);
    free(lab);
    if (rc) return fail("%s: proto.*.P%d: %s", in->path, l + 3, err.msg);
  }
  float *e = kd_gk_epoch(store);
  if (e) e[0] = 0.0f;
  return 0;
}

/* Both sides from the file's tensors (student tensors on the tape). */
static int fill_sides(const Inputs *in, KdCtx *c, const KdLevels *lv, KdDistillInputs *din, KdTensor *stud[NKIND][MAXL]) {
  static const char *const out_name[NKIND] = {NULL, "cls", "box", "dist", "cls_tower", "reg_tower", "cls_tower0", "reg_tower0"};
  KdDistillSide *side[2] = {&din->t, &din->s};
  int slot[NKIND];
  for (int k = 0; k < NKIND; k++) slot[k] = -1;
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

/* PGD's given draws and masks (pgd_in); the draws must be the (2, M, k, 2)
 * the method takes, k its top-k setting. */
static int fill_pgd(const Inputs *in, const KdConfig *cfg, const char *method, KdCtx *c, KdDistillPgdIn *pi, int *used) {
  memset(pi, 0, sizeof *pi);
  *used = in->pgd_jitter || in->has_pgd_mask;
  if (!*used) return 0;
  const char *key = !strcmp(method, "pgd") ? "pgd.topk" : !strcmp(method, "fitnet") ? "fitnet.pgd_topk" : NULL;
  if (!key) return fail("%s: pgd.* tensors are for --method pgd or fitnet (fitnet.mask=pgd)", in->path);
  if (in->pgd_jitter) {
    const int k = (int)lrint(kd_config_num(cfg, key)), *sh = in->pgd_jitter_shape;
    if (sh[1] != in->m || sh[2] != k)
      return fail("%s: tensor 'pgd.jitter' is (2,%d,%d,2); expected (2,%d,%d,2): the gt.boxes rows and %s", in->path, sh[1],
                  sh[2], in->m, k, key);
    pi->jitter = in->pgd_jitter;
  }
  for (int j = 0; in->has_pgd_mask && j < KD_LOSS_NPGD; j++)
    for (int l = 0; l < in->nlev; l++) {
      KdTensor *t = kd_tensor_wrap(c, in->pgd_mask[j][l].data, 4, in->pgd_mask[j][l].shape);
      if (!t) return fail("out of memory");
      (j == KD_LOSS_PGD_CLS ? pi->cls : j == KD_LOSS_PGD_REG ? pi->reg : pi->bg)[l] = t;
    }
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
  Inputs in = {0};
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
  const int gfl = !strcmp(mc.head.kind, "gfl");
  KdAnchorCfg acfg = mc.head.anchors;
  if (gfl) kd_head_gfl_anchors(&mc.head, NULL, &acfg);
  if (kd_loss_inputs_read(&in, a.in_path, kd_anchors_per_loc(&acfg), a.method, needs, &err)) {
    fail("%s", err.msg);
    goto out;
  }
  KdDistillAvail avail;
  file_avail(&in, &avail);
  if (kd_distill_check(cfg, a.method, &avail, &err)) {
    fail("%s", err.msg);
    goto out;
  }
  KdLevels lv = {0};
  int hw[2 * MAXL], ref = in.has[FEAT] ? FEAT : in.has[CLS] ? CLS : in.has[BOX] ? BOX : DIST;
  for (int l = 0; l < in.nlev; l++) {
    char name[8];
    snprintf(name, sizeof name, "P%d", l + 3); /* the file's level names */
    kd_levels_add(&lv, kd_level_name_stride(name));
    acfg.strides[l] = lv.stride[l];
    hw[2 * l] = in.lev[ref][0][l].shape[2], hw[2 * l + 1] = in.lev[ref][0][l].shape[3];
  }
  acfg.nlevels = in.nlev;
  /* A file of RoI-level tensors alone has no levels, so no anchors. */
  if ((in.nlev && !(asg = kd_assigner_new(&acfg, &mc.head.assign, &err))) || !(c = kd_ctx_new(64u << 20))) {
    fail("%s", !in.nlev || asg ? "out of memory" : err.msg);
    goto out;
  }
  KdDenseAssign dense = {0};
  if (in.has_gt && asg) {
    if (!(gt = group_gt(&in, &gt_boxes, &gt_labels))) {
      fail("out of memory");
      goto out;
    }
    if (gfl ? gfl_targets(asg, c, hw, gt, &in, mc.head.gfl.topk, &dense, &err)
            : kd_assigner_targets(asg, c, hw, gt, in.n, in.K, &dense, &err)) {
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
                        .num_anchors = in.A,
                        .roi_channels = in.has_roi ? in.D : 0};
  if (in.has_roi && !in.has[FEAT]) sh.s_channels = in.C; /* HEAD's CKD adapter reads the tower rows */
  memcpy(sh.strides, lv.stride, sizeof sh.strides);
  if (!(dist = kd_distiller_new(&sh, (uint64_t)kd_config_int(cfg, "train.seed"), &err)) ||
      kd_distiller_configure(dist, cfg, &err)) {
    fail("%s", err.msg);
    goto out;
  }
  for (int i = 0; i < kd_method_count(); i++)
    if (kd_distiller_ensure(dist, kd_method_at(i)->name, &err)) {
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
  din.s.assign = in.has_gt && asg ? &dense : NULL;
  din.maps = a.out_path != NULL;
  KdDistillInstIn inst_in;
  if ((in.has_inst || in.has_proto || in.has_progress) && strcmp(a.method, "gk")) {
    fail("%s: inst.*, proto.* and progress are read by method gk only", a.in_path);
    goto out;
  }
  if (in.has_inst) {
    if (fill_inst(&in, c, &inst_in)) goto out;
    din.inst_in = &inst_in;
  }
  if (in.has_proto && set_protos(&in, store)) goto out;
  if (in.has_progress) din.progress = in.progress;
  KdDistillRoiIn roi_in;
  if (in.has_roi) {
    if (fill_rois(&in, c, &roi_in)) goto out;
    din.roi_in = &roi_in;
    din.step = in.has_step ? in.step : 1 << 30; /* no step: past any warm-up */
  }
  KdDistillPgdIn pgd_in;
  int has_pgd;
  if (fill_pgd(&in, cfg, a.method, c, &pgd_in, &has_pgd)) goto out;
  if (has_pgd) din.pgd_in = &pgd_in;
  din.icd_inst = in.icd_inst, din.icd_ninst = in.icd_ninst;
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
  rc = report(a.method, &outs[0], &in, stud, in.has_roi ? &roi_in : NULL, din.inst_in, store, loaded, nloaded, num_pos,
              a.out_path);
out:
  free(gt), free(gt_boxes), free(gt_labels);
  free(loaded);
  kd_assigner_free(asg);
  kd_ctx_free(c);
  kd_distiller_free(dist);
  kd_loss_inputs_free(&in);
  kd_config_free(cfg);
  return rc;
}
