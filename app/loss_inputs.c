/* Reading and validating the tensors of `kdscope loss` (loss_inputs.h). */
#include "loss_inputs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FEAT = KD_LOSS_FEAT, CLS = KD_LOSS_CLS, BOX = KD_LOSS_BOX, DIST = KD_LOSS_DIST, NKIND = KD_LOSS_NKIND };
#define MAXL KD_LOSS_MAXL
#define MAX_SIDE (1 << 20) /* image.size: far beyond any input, and 8x it still fits an int */

static const char *const kind_infix[NKIND] = {"", "cls.", "box.", "dist.", "cls_tower.", "reg_tower.", "cls_tower0.",
                                              "reg_tower0."};
static const char *const pgd_mask_names[KD_LOSS_NPGD] = {"pgd.cls.", "pgd.reg.", "pgd.bg."};
static const char *const who_name[2] = {"teacher", "student"};

void kd_loss_level_name(char *buf, size_t len, int kind, int who, int l) {
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

const char *const kd_loss_roi_names[KD_LOSS_NROI] = {"roi.assist.fc1", "roi.assist.fc2", "roi.teacher.fc1", "roi.teacher.fc2",
                                                      "roi.tower"};

/* roi.* and step; 1 when name is none of them. */
static int read_roi(KdLossInputs *in, int i, const char *name, const int *shape, int nd, const char *ss, KdError *err) {
  for (int k = 0; k < KD_LOSS_NROI; k++) {
    if (strcmp(name, kd_loss_roi_names[k])) continue;
    if (nd != 2 || shape[0] < 1 || shape[1] < 1)
      return kd_error(err, "%s: tensor '%s' has shape %s; expected (R,%s) with R >= 1", in->path, name, ss,
                      k == KD_LOSS_ROI_TOWER ? "C" : "D");
    if (in->R && shape[0] != in->R)
      return kd_error(err, "%s: tensor '%s' has %d rows; the other roi.* tensors have R = %d", in->path, name, shape[0], in->R);
    int *w = k == KD_LOSS_ROI_TOWER ? &in->C : &in->D;
    if (*w && shape[1] != *w)
      return kd_error(err, "%s: tensor '%s' has shape %s; the fc tensors are (R,D) with one D (%d)", in->path, name, ss, *w);
    in->R = shape[0], *w = shape[1], in->has_roi = 1;
    return (in->roi[k] = kd_loss_inputs_tensor(in, i, NULL, err)) ? 0 : -1;
  }
  if (!strcmp(name, "roi.gt")) {
    size_t n;
    if (nd != 1 || (in->R && shape[0] != in->R))
      return kd_error(err, "%s: tensor 'roi.gt' has shape %s; expected (R), one flag per RoI", in->path, ss);
    if (!(in->roi_gt = kd_loss_inputs_tensor(in, i, &n, err))) return -1;
    for (size_t r = 0; r < n; r++)
      if (in->roi_gt[r] != 0.0f && in->roi_gt[r] != 1.0f)
        return kd_error(err, "%s: roi.gt[%zu] = %g; expected 0 (a proposal) or 1 (a GT box)", in->path, r, (double)in->roi_gt[r]);
    in->R = shape[0], in->has_roi = 1;
    return 0;
  }
  if (!strcmp(name, "step")) {
    size_t n;
    float *v = kd_loss_inputs_tensor(in, i, &n, err);
    if (!v) return -1;
    int ok = nd == 1 && n == 1 && integral(v[0]) && v[0] >= 0 && v[0] < 1e9f;
    in->step = ok ? (int)v[0] : 0, in->has_step = 1;
    free(v);
    return ok ? 0 : kd_error(err, "%s: tensor 'step' must be (1): the steps done, a whole number >= 0", in->path);
  }
  return 1;
}

/* Every roi.* tensor when one is given. */
static int check_roi(const KdLossInputs *in, KdError *err) {
  if (!in->has_roi) return 0;
  for (int k = 0; k < KD_LOSS_NROI; k++)
    if (!in->roi[k])
      return kd_error(err, "%s: missing tensor '%s' (R,%s): the RoI-level inputs come together (roi.assist.fc1/fc2, "
                      "roi.teacher.fc1/fc2, roi.tower, roi.gt)", in->path, kd_loss_roi_names[k], k == KD_LOSS_ROI_TOWER ? "C" : "D");
  if (!in->roi_gt) return kd_error(err, "%s: missing tensor 'roi.gt' (R): which RoIs are GT boxes", in->path);
  return 0;
}

float *kd_loss_inputs_tensor(const KdLossInputs *in, int i, size_t *numel, KdError *err) {
  const char *name = kd_safetensors_name(in->st, i);
  size_t n = kd_safetensors_numel(in->st, i);
  float *d = malloc((n ? n : 1) * sizeof *d);
  if (!d) return kd_error(err, "out of memory reading '%s' from %s", name, in->path), NULL;
  if (kd_safetensors_read_f32(in->st, name, d, n, err)) {
    free(d);
    return NULL;
  }
  for (size_t k = 0; k < n; k++)
    if (!isfinite(d[k])) {
      kd_error(err, "%s: tensor '%s' has a non-finite value (%g) at flat index %zu", in->path, name, (double)d[k], k);
      free(d);
      return NULL;
    }
  if (numel) *numel = n;
  return d;
}

void kd_loss_shape_str(const int *s, int nd, char *buf, size_t len) {
  int o = snprintf(buf, len, "(");
  for (int d = 0; d < nd && o < (int)len; d++) o += snprintf(buf + o, len - (size_t)o, d ? ",%d" : "%d", s[d]);
  if (o < (int)len) snprintf(buf + o, len - (size_t)o, ")");
}

/* pgd.jitter and pgd.{cls,reg,bg}.P<l>; 1 when name is none of them. */
static int read_pgd(KdLossInputs *in, int i, const char *name, const int *shape, int nd, const char *ss, KdError *err) {
  if (!strcmp(name, "pgd.jitter")) {
    size_t n;
    if (nd != 4 || shape[0] != 2 || shape[3] != 2 || shape[2] < 1)
      return kd_error(err, "%s: tensor 'pgd.jitter' has shape %s; expected (2,M,k,2): the cls and reg masks' draws in "
                      "[0,1) per GT box, candidate, x and y", in->path, ss);
    if (!(in->pgd_jitter = kd_loss_inputs_tensor(in, i, &n, err))) return -1;
    for (size_t k = 0; k < n; k++)
      if (!(in->pgd_jitter[k] >= 0.0f && in->pgd_jitter[k] < 1.0f))
        return kd_error(err, "%s: pgd.jitter[%zu] = %g; the draws lie in [0, 1)", in->path, k, (double)in->pgd_jitter[k]);
    memcpy(in->pgd_jitter_shape, shape, sizeof in->pgd_jitter_shape);
    return 0;
  }
  for (int k = 0; k < KD_LOSS_NPGD; k++) {
    size_t pl = strlen(pgd_mask_names[k]);
    if (strncmp(name, pgd_mask_names[k], pl)) continue;
    const char *p = name + pl;
    if (!(p[0] == 'P' && p[1] >= '3' && p[1] < '3' + MAXL && p[2] == 0)) return 1;
    if (nd != 4 || shape[1] != 1 || kd_safetensors_numel(in->st, i) == 0)
      return kd_error(err, "%s: tensor '%s' has shape %s; expected N,1,H,W", in->path, name, ss);
    KdLossArr *a = &in->pgd_mask[k][p[1] - '3'];
    if (!(a->data = kd_loss_inputs_tensor(in, i, NULL, err))) return -1;
    memcpy(a->shape, shape, sizeof a->shape);
    in->has_pgd_mask = 1;
    return 0;
  }
  return 1;
}

/* Reads every tensor the file holds; the names are checked here, the
 * distill.* parameters later against the store. */
static int read_all(KdLossInputs *in, KdError *err) {
  int cnt = kd_safetensors_count(in->st);
  for (int i = 0; i < cnt; i++) {
    const char *name = kd_safetensors_name(in->st, i);
    int shape[4], nd, kind, who, l;
    kd_safetensors_shape(in->st, i, shape, &nd);
    char ss[64];
    kd_loss_shape_str(shape, nd, ss, sizeof ss);
    if (!parse_lev_name(name, &kind, &who, &l)) {
      if (nd != 4 || kd_safetensors_numel(in->st, i) == 0)
        return kd_error(err, "%s: tensor '%s' has shape %s; expected N,C,H,W (4 dims, none 0)", in->path, name, ss);
      KdLossArr *a = &in->lev[kind][who][l];
      if (!(a->data = kd_loss_inputs_tensor(in, i, NULL, err))) return -1;
      memcpy(a->shape, shape, sizeof shape);
      in->has[kind] = 1;
      if (l + 1 > in->nlev) in->nlev = l + 1;
    } else if (!strcmp(name, "gt.boxes")) {
      if (nd != 2 || shape[1] != 5)
        return kd_error(err, "%s: tensor 'gt.boxes' has shape %s; expected (M,5): image index, x1, y1, x2, y2", in->path,
                        ss);
      in->m = shape[0];
      if (!(in->boxes = kd_loss_inputs_tensor(in, i, NULL, err))) return -1;
    } else if (!strcmp(name, "gt.labels")) {
      if (nd != 1) return kd_error(err, "%s: tensor 'gt.labels' has shape %s; expected (M)", in->path, ss);
      if (!(in->labels = kd_loss_inputs_tensor(in, i, NULL, err))) return -1;
    } else if (!strcmp(name, "image.size")) {
      size_t n;
      float *v = kd_loss_inputs_tensor(in, i, &n, err);
      if (!v) return -1;
      int ok = nd == 1 && n == 2 && integral(v[0]) && integral(v[1]) && v[0] >= 1 && v[1] >= 1 && v[0] <= MAX_SIDE &&
               v[1] <= MAX_SIDE;
      in->img_h = ok ? (int)v[0] : 0, in->img_w = ok ? (int)v[1] : 0;
      free(v);
      if (!ok)
        return kd_error(err, "%s: tensor 'image.size' must be (2): H, W as whole numbers in [1, %d]", in->path, MAX_SIDE);
    } else if (!strcmp(name, "icd.instances")) {
      size_t n;
      if (nd != 2 || shape[1] != 9)
        return kd_error(err, "%s: tensor 'icd.instances' has shape %s; expected (M,9): image, real, class, x1, y1, x2, "
                        "y2, cx, cy in input pixels (docs/LOSS-CLI.md)", in->path, ss);
      if (!(in->icd_inst = kd_loss_inputs_tensor(in, i, &n, err))) return -1;
      in->icd_ninst = shape[0];
    } else if (strncmp(name, "distill.", 8)) {
      int r = kd_loss_inputs_read_gk(in, i, name, shape, nd, ss, err);
      if (r > 0) r = strncmp(name, "pgd.", 4) ? read_roi(in, i, name, shape, nd, ss, err) : read_pgd(in, i, name, shape, nd, ss, err);
      if (r < 0) return -1;
      if (r > 0)
        return kd_error(err,
                        "%s: unknown tensor '%s' (expected teacher.P<l>, student.P<l>, {teacher,student}.cls.P<l>, "
                        "{teacher,student}.{box,dist,cls_tower,reg_tower,cls_tower0,reg_tower0}.P<l> for l = 3..7, gt.boxes, gt.labels, "
                        "image.size, roi.*, step, pgd.jitter, pgd.{cls,reg,bg}.P<l>, inst.*, proto.*, progress, icd.instances, or "
                        "distill.* parameters)",
                        in->path, name);
    }
  }
  return 0;
}

/* Every level P3..P(3+nlev-1) of a kind that appears needs both sides,
 * with one batch size and one H,W per level across kinds; needs are the
 * method's KD_NEED_* bits. */
static int check_levels(KdLossInputs *in, unsigned needs, const char *method, KdError *err) {
  static const char *const what[NKIND] = {"the FPN features", "the class logits", "the box outputs",
                                          "the box-side distributions", "the cls tower features", "the reg tower features",
                                          "the cls tower's first features", "the reg tower's first features"};
  /* The towers are no need of their own: the method that reads them says so. */
  static const unsigned need_bit[NKIND] = {KD_NEED_FEAT | KD_NEED_SAME_WIDTH, KD_NEED_LOGITS, KD_NEED_BOXES, KD_NEED_DIST,
                                           0, 0, 0, 0};
  char a[64], b[64], sa[64], sb[64];
  for (int k = 0; k < NKIND; k++)
    if (need_bit[k] & needs && !in->has[k]) {
      kd_loss_level_name(a, sizeof a, k, 1, 0);
      return kd_error(err,
                      "%s: missing tensor '%s' (N,C,H,W): method %s needs %s teacher.%sP<l> and student.%sP<l> of every "
                      "level",
                      in->path, a, method, what[k], kind_infix[k], kind_infix[k]);
    }
  if (!in->nlev && !in->has_roi)
    return kd_error(err, "%s: no level tensors (teacher.P3, student.P3, ...) in the file", in->path);
  const KdLossArr *ref = NULL;
  char refname[64] = "";
  for (int k = 0; k < NKIND; k++) {
    if (!in->has[k]) continue;
    for (int l = 0; l < in->nlev; l++)
      for (int w = 0; w < 2; w++) {
        KdLossArr *x = &in->lev[k][w][l];
        kd_loss_level_name(a, sizeof a, k, w, l);
        if (!x->data)
          return kd_error(err,
                          "%s: missing tensor '%s' (N,C,H,W): levels must run from P3 to P%d without gaps, with teacher "
                          "and student tensors for each",
                          in->path, a, in->nlev + 2);
        kd_loss_shape_str(x->shape, 4, sa, sizeof sa);
        if (!ref) {
          ref = x;
          snprintf(refname, sizeof refname, "%s", a);
          in->n = x->shape[0];
        }
        if (x->shape[0] != in->n)
          return kd_error(err, "%s: tensor '%s' %s has batch %d but '%s' has %d", in->path, a, sa, x->shape[0], refname,
                          in->n);
        /* The first kind present fixes each level's H,W. */
        const KdLossArr *lr = NULL;
        for (int k2 = 0; k2 <= k && !lr; k2++)
          if (in->has[k2]) lr = &in->lev[k2][0][l];
        if (x->shape[2] != lr->shape[2] || x->shape[3] != lr->shape[3]) {
          int k2 = 0;
          while (!in->has[k2]) k2++;
          kd_loss_level_name(b, sizeof b, k2, 0, l);
          kd_loss_shape_str(lr->shape, 4, sb, sizeof sb);
          return kd_error(err, "%s: tensor '%s' %s and '%s' %s differ in H,W; a level has one size", in->path, a, sa, b,
                          sb);
        }
        /* Channels: one width per side for features; head outputs equal on both sides. */
        const KdLossArr *same = k == FEAT ? &in->lev[k][w][0] : &in->lev[k][0][0];
        if (x->shape[1] != same->shape[1]) {
          kd_loss_level_name(b, sizeof b, k, k == FEAT ? w : 0, 0);
          return kd_error(err, "%s: tensor '%s' %s has %d channels but '%s' has %d", in->path, a, sa, x->shape[1], b,
                          same->shape[1]);
        }
      }
  }
  if (in->has[CLS]) {
    int C = in->lev[CLS][1][0].shape[1];
    if (C % in->A)
      return kd_error(err, "%s: tensor 'student.cls.P3' has %d channels; expected A*K with A = %d anchors per location",
                      in->path, C, in->A);
    in->K = C / in->A;
  }
  if (in->has[DIST] && (in->A != 1 || in->lev[DIST][1][0].shape[1] % 4 || in->lev[DIST][1][0].shape[1] < 8))
    return kd_error(err, "%s: tensor 'student.dist.P3' has %d channels with %d anchors per location; expected 4*(R+1), "
                    "R >= 1, one anchor per location (model.head=gfl)", in->path, in->lev[DIST][1][0].shape[1], in->A);
  if (in->has[BOX] && in->lev[BOX][1][0].shape[1] != 4 * in->A)
    return kd_error(err, "%s: tensor 'student.box.P3' has %d channels; expected A*4 = %d", in->path,
                    in->lev[BOX][1][0].shape[1], 4 * in->A);
  return 0;
}

/* Precomputed PGD masks: all three on every level, on the levels' grids. */
static int check_pgd(const KdLossInputs *in, KdError *err) {
  if (!in->has_pgd_mask) return 0;
  int ref = 0;
  while (ref < NKIND && !in->has[ref]) ref++;
  char a[64], sa[64];
  for (int k = 0; k < KD_LOSS_NPGD; k++)
    for (int l = 0; l < MAXL; l++) {
      const KdLossArr *m = &in->pgd_mask[k][l];
      snprintf(a, sizeof a, "%sP%d", pgd_mask_names[k], l + 3);
      if (l >= in->nlev) {
        if (m->data) return kd_error(err, "%s: tensor '%s' has no level P%d to go with", in->path, a, l + 3);
        continue;
      }
      if (!m->data)
        return kd_error(err, "%s: missing tensor '%s' (N,1,H,W): precomputed PGD masks come as pgd.cls, pgd.reg and "
                        "pgd.bg on every level", in->path, a);
      kd_loss_shape_str(m->shape, 4, sa, sizeof sa);
      const KdLossArr *r = ref < NKIND ? &in->lev[ref][0][l] : m;
      if (m->shape[0] != in->n || m->shape[2] != r->shape[2] || m->shape[3] != r->shape[3])
        return kd_error(err, "%s: tensor '%s' %s must be (%d,1,H,W) on level P%d's H,W", in->path, a, sa, in->n, l + 3);
    }
  return 0;
}

static int check_gt(KdLossInputs *in, unsigned needs, const char *method, KdError *err) {
  if (!in->boxes != !in->labels)
    return kd_error(err, "%s: %s given without %s; both are needed", in->path, in->boxes ? "gt.boxes" : "gt.labels",
                    in->boxes ? "gt.labels" : "gt.boxes");
  in->has_gt = in->boxes != NULL;
  if (!in->has_gt) {
    if (needs & (KD_NEED_GT | KD_NEED_ASSIGN))
      return kd_error(err, "%s: missing tensor 'gt.boxes' (M,5) and 'gt.labels' (M): method %s needs the ground truth",
                      in->path, method);
    return 0;
  }
  if (kd_safetensors_numel(in->st, kd_safetensors_find(in->st, "gt.labels")) != (size_t)in->m)
    return kd_error(err, "%s: tensor 'gt.labels' must have M = %d values, one per row of gt.boxes", in->path, in->m);
  int maxl = -1;
  for (int j = 0; j < in->m; j++) {
    const float *b = in->boxes + 5 * j;
    if (!integral(b[0]) || b[0] < 0 || b[0] >= in->n)
      return kd_error(err, "%s: gt.boxes row %d: image index %g is not a whole number in [0, %d)", in->path, j,
                      (double)b[0], in->n);
    if (b[3] < b[1] || b[4] < b[2])
      return kd_error(err, "%s: gt.boxes row %d: (%g,%g,%g,%g) needs x1 <= x2 and y1 <= y2", in->path, j, (double)b[1],
                      (double)b[2], (double)b[3], (double)b[4]);
    float lab = in->labels[j];
    if (!integral(lab) || lab < 0 || lab >= (in->K ? in->K : 1 << 30)) /* no class logits: K = max label + 1 */
      return kd_error(err, "%s: gt.labels[%d] = %g is not a class index in [0, %d)", in->path, j, (double)lab,
                      in->K ? in->K : 1 << 30);
    if ((int)lab > maxl) maxl = (int)lab;
  }
  if (!in->K) in->K = maxl + 1 > 0 ? maxl + 1 : 1;
  return 0;
}

int kd_loss_inputs_read(KdLossInputs *in, const char *path, int A, const char *method, unsigned needs, KdError *err) {
  memset(in, 0, sizeof *in);
  in->path = path;
  in->A = A;
  if (!(in->st = kd_safetensors_open(path, err))) return -1;
  if (read_all(in, err) || check_roi(in, err)) return -1;
  if (in->has_roi) needs &= ~(unsigned)KD_LOSS_ROI_NEEDS;
  if (in->has_pgd_mask) needs &= ~(unsigned)KD_LOSS_PGD_NEEDS;
  if (in->has_inst) needs &= ~(unsigned)KD_LOSS_INST_NEEDS;
  if (check_levels(in, needs, method, err) || check_pgd(in, err) || check_gt(in, needs, method, err) || kd_loss_inputs_check_gk(in, err))
    return -1;
  if (!in->nlev) return 0;
  /* Default input size: 8 x the P3 map of the first kind present. */
  const KdLossArr *p3 = &in->lev[in->has[FEAT] ? FEAT : in->has[CLS] ? CLS : BOX][0][0];
  if (!in->img_h) in->img_h = 8 * p3->shape[2];
  if (!in->img_w) in->img_w = 8 * p3->shape[3];
  return 0;
}

void kd_loss_inputs_free(KdLossInputs *in) {
  for (int k = 0; k < NKIND; k++)
    for (int w = 0; w < 2; w++)
      for (int l = 0; l < MAXL; l++) free(in->lev[k][w][l].data);
  free(in->boxes), free(in->labels);
  for (int k = 0; k < KD_LOSS_NROI; k++) free(in->roi[k]);
  free(in->roi_gt);
  free(in->pgd_jitter);
  free(in->icd_inst);
  for (int k = 0; k < KD_LOSS_NPGD; k++)
    for (int l = 0; l < MAXL; l++) free(in->pgd_mask[k][l].data);
  kd_loss_inputs_free_gk(in);
  kd_safetensors_close(in->st);
  memset(in, 0, sizeof *in);
}
