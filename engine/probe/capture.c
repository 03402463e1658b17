/* One capture: forward on the probe images, then every map of
 * snapshot.h from the tensors, then the per-source backward passes. It
 * knows no method by name: each active method adds its own loss maps and
 * masks (its loss's KdDistillOut, made with KdDistillInputs.maps on). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "probe/maps.h"
#include "probe/prober_impl.h"
#include "probe/tapecut.h"

#define OOM() kd_error(err, "probe: out of memory")

static void lvname(const KdSnapshot *s, int l, char *buf) { kd_snapshot_level_name(s, l, buf, 8); }

float *kd_probe_map_field(KdSnapshot *s, int i, int l, const char *what, int ndim, const int *shape) {
  char name[KD_SNAP_NAME], lv[8];
  lvname(s, l, lv);
  if (snprintf(name, sizeof name, "img%d.%s.%s", i, lv, what) >= (int)sizeof name) return NULL;
  KdSnapField *f = kd_snapshot_add(s, name, ndim, shape);
  return f ? f->data : NULL;
}

static float *hw_field(KdSnapshot *s, int i, int l, const char *what, const KdTensor *x) {
  int shape[2] = {x->shape[2], x->shape[3]};
  return kd_probe_map_field(s, i, l, what, 2, shape);
}

static float cfg_num(const KdConfig *c, const char *key, float def) {
  if (!kd_config_find(c, key)) return def;
  double v = kd_config_num(c, key);
  return isfinite(v) && v > 0 ? (float)v : def;
}

KdModel *kd_probe_teacher(const KdProber *p, const KdForward *f) { return f->tout.levels ? p->teacher : NULL; }

/* The teacher's features at the stride of the student's level l, or NULL. */
static KdTensor *teacher_feat(const KdProber *p, const KdForward *f, int l) {
  if (!kd_probe_teacher(p, f)) return NULL;
  int k = kd_levels_find(f->tout.levels, f->sout.levels->stride[l]);
  return k < 0 ? NULL : f->tout.feat[k];
}

/* Energy, attention and gap maps of one image at one level. */
static int image_maps(KdSnapshot *s, int i, int l, const KdTensor *S, const KdTensor *T) {
  int Cs = S->shape[1], HW = S->shape[2] * S->shape[3];
  const float *xs = S->data + (size_t)i * Cs * HW;
  float temp = s->attn_temp, *o;
  if (!(o = hw_field(s, i, l, "s_energy", S))) return -1;
  kd_map_energy(xs, Cs, HW, o);
  if (!(o = hw_field(s, i, l, "s_sattn", S))) return -1;
  kd_map_spatial_attn(xs, Cs, HW, temp, o);
  if (!(o = kd_probe_map_field(s, i, l, "s_cattn", 1, &Cs))) return -1;
  kd_map_channel_attn(xs, Cs, HW, temp, o);
  if (!T) return 0;
  int Ct = T->shape[1], HWt = T->shape[2] * T->shape[3];
  const float *xt = T->data + (size_t)i * Ct * HWt;
  if (!(o = hw_field(s, i, l, "t_energy", T))) return -1;
  kd_map_energy(xt, Ct, HWt, o);
  if (!(o = hw_field(s, i, l, "t_sattn", T))) return -1;
  kd_map_spatial_attn(xt, Ct, HWt, temp, o);
  if (!(o = kd_probe_map_field(s, i, l, "t_cattn", 1, &Ct))) return -1;
  kd_map_channel_attn(xt, Ct, HWt, temp, o);
  if (!kd_tensor_same_shape(S, T)) return 0; /* no gap between different widths */
  if (!(o = hw_field(s, i, l, "gap", S))) return -1;
  kd_map_gap(xs, xt, Cs, HW, o);
  return 0;
}

static int feature_maps(KdProber *p, const KdForward *f, KdSnapshot *s, KdError *err) {
  for (int l = 0; l < f->nlev; l++) {
    KdTensor *S = f->sout.feat[l], *T = teacher_feat(p, f, l);
    for (int i = 0; i < f->n; i++)
      if (image_maps(s, i, l, S, T)) return OOM();
  }
  return 0;
}

/* Each active method's loss map (KdDistillGap), sliced per image:
 * img<i>.<L>.gap.<method>. */
static int gap_maps(const KdForward *f, KdSnapshot *s, KdError *err) {
  for (int m = 0; m < f->nmethods; m++)
    for (int k = 0; k < f->outs[m].ngaps; k++) {
      const KdDistillGap *g = &f->outs[m].gaps[k];
      const KdTensor *t = g->map;
      if (!t || t->ndim != 4 || t->shape[0] != f->n || t->shape[1] != 1 || g->level < 0 || g->level >= f->nlev) continue;
      char what[KD_SNAP_NAME];
      snprintf(what, sizeof what, "gap.%s", f->methods[m]->name);
      int shape[2] = {t->shape[2], t->shape[3]};
      size_t per = (size_t)shape[0] * shape[1];
      for (int i = 0; i < f->n; i++) {
        float *o = kd_probe_map_field(s, i, g->level, what, 2, shape);
        if (!o) return OOM();
        memcpy(o, t->data + (size_t)i * per, per * sizeof(float));
      }
    }
  return 0;
}

/* The attention maps' temperature: the probe's own, else the setting an
 * active method names (then any registered one), else 0.5. */
static float attn_temp(const KdProber *p, const KdForward *f) {
  if (p->cfg.attn_temp > 0) return p->cfg.attn_temp;
  for (int m = 0; m < f->nmethods; m++)
    if (f->methods[m]->attn_temp_key) return cfg_num(p->cfg.settings, f->methods[m]->attn_temp_key, 0.5f);
  for (int m = 0; m < kd_method_count(); m++) {
    const char *key = kd_method_at(m)->attn_temp_key;
    if (key && kd_config_find(p->cfg.settings, key)) return cfg_num(p->cfg.settings, key, 0.5f);
  }
  return 0.5f;
}

/* Every mask the active methods exposed, sliced per image. Per-image
 * (C, H, W) masks (CSGR's standardised features) are kept only while
 * their bytes stay within KD_PROBE_FEAT_BYTES, a whole level-mask at a time. */
static int masks(const KdForward *f, KdSnapshot *s) {
  size_t feat_bytes = 0;
  for (int m = 0; m < f->nmethods; m++)
    for (int k = 0; k < f->outs[m].nmasks; k++) {
      const KdDistillMask *mk = &f->outs[m].masks[k];
      const KdTensor *t = mk->map;
      if (!t || mk->level < 0 || mk->level >= f->nlev) continue;
      int d0 = kd_dim4(t, 0), d1 = kd_dim4(t, 1), d2 = kd_dim4(t, 2), d3 = kd_dim4(t, 3);
      if (d0 != f->n && d0 != 1) continue; /* not per image: nothing we can slice */
      int shape[3], nd;
      if (d1 == 1) shape[0] = d2, shape[1] = d3, nd = 2;
      else if (d2 == 1 && d3 == 1) shape[0] = d1, nd = 1;
      else shape[0] = d1, shape[1] = d2, shape[2] = d3, nd = 3;
      size_t per = (size_t)d1 * d2 * d3;
      if (nd == 3) {
        if (feat_bytes + per * f->n * sizeof(float) > KD_PROBE_FEAT_BYTES) continue;
        feat_bytes += per * f->n * sizeof(float);
      }
      /* "mask.<method>.<name>"; names that already start with the method's keep theirs */
      const char *mn = f->methods[m]->name, *nm = mk->name ? mk->name : "mask";
      size_t ml = strlen(mn);
      char what[KD_SNAP_NAME];
      if (!strncmp(nm, mn, ml) && nm[ml] == '.') snprintf(what, sizeof what, "mask.%s", nm);
      else snprintf(what, sizeof what, "mask.%s.%s", mn, nm);
      for (int i = 0; i < f->n; i++) {
        float *o = kd_probe_map_field(s, i, mk->level, what, nd, shape);
        if (o) memcpy(o, t->data + (d0 == 1 ? 0 : (size_t)i * per), per * sizeof(float));
      }
    }
  return 0;
}

/* The methods' tables: a whole one as <name> (gk's, named gk.*); a per
 * image one as img<i>.<name>.<method>, each image's rows without the
 * image column (HEAD's sampled RoIs, distill/assist.h: box, label, GT
 * flag, the method's gaps). */
static int tables(const KdForward *f, KdSnapshot *s, KdError *err) {
  for (int m = 0; m < f->nmethods; m++)
    for (int k = 0; k < f->outs[m].ntables; k++) {
      const KdTensor *t = f->outs[m].tables[k].rows;
      if (t && !f->outs[m].tables[k].per_image) {
        KdSnapField *fd = kd_snapshot_add(s, f->outs[m].tables[k].name, t->ndim, t->shape);
        if (!fd) return OOM();
        memcpy(fd->data, t->data, t->numel * sizeof(float));
        continue;
      }
      if (!t || t->ndim != 2 || t->shape[1] < 2) continue;
      const int R = t->shape[0], C = t->shape[1];
      for (int i = 0; i < f->n; i++) {
        int rows = 0;
        for (int r = 0; r < R; r++) rows += (int)t->data[(size_t)r * C] == i;
        char name[KD_SNAP_NAME];
        snprintf(name, sizeof name, "img%d.%s.%s", i, f->outs[m].tables[k].name, f->methods[m]->name);
        KdSnapField *fd = rows ? kd_snapshot_add2(s, name, rows, C - 1) : NULL;
        if (rows && !fd) return OOM();
        for (int r = 0, o = 0; fd && r < R; r++)
          if ((int)t->data[(size_t)r * C] == i) memcpy(fd->data + (size_t)(o++) * (C - 1), t->data + (size_t)r * C + 1, sizeof(float) * (C - 1));
      }
    }
  return 0;
}

static int detections(KdProber *p, const KdForward *f, KdSnapshot *s, KdError *err) {
  int n = f->n, md = p->post.max_det, count[KD_PROBE_MAX_IMAGES];
  float wh[2 * KD_PROBE_MAX_IMAGES];
  KdDetection *det = malloc(sizeof *det * (size_t)n * md);
  if (!det) return OOM();
  for (int i = 0; i < n; i++) wh[2 * i] = (float)f->w, wh[2 * i + 1] = (float)f->h;
  for (int who = 0; who < (kd_probe_teacher(p, f) ? 2 : 1); who++) {
    if (kd_model_decode(who ? p->teacher : p->student, who ? &f->tout : &f->sout, &p->post, n, wh, det, count, err)) {
      free(det);
      return -1;
    }
    for (int i = 0; i < n; i++) {
      char name[32];
      snprintf(name, sizeof name, "img%d.det.%s", i, who ? "t" : "s");
      KdSnapField *fd = kd_snapshot_add2(s, name, count[i], 6);
      if (!fd) {
        free(det);
        return OOM();
      }
      for (int k = 0; k < count[i]; k++) {
        const KdDetection *d = &det[(size_t)i * md + k];
        float row[6] = {d->x1, d->y1, d->x2, d->y2, d->score, (float)d->label};
        memcpy(fd->data + 6 * k, row, sizeof row);
      }
    }
  }
  free(det);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "img%d.gt", i);
    KdSnapField *fd = kd_snapshot_add2(s, name, p->gt[i].n, 6);
    if (!fd) return OOM();
    for (int k = 0; k < p->gt[i].n; k++) {
      memcpy(fd->data + 6 * k, p->gt[i].boxes + 4 * k, 4 * sizeof(float));
      fd->data[6 * k + 4] = (float)p->gt[i].labels[k];
      fd->data[6 * k + 5] = (float)p->gt[i].crowd[k];
    }
  }
  return 0;
}

/* RoI-average-pooled features of the GT boxes, on teacher PCA axes. */
static int instances(KdProber *p, const KdForward *f, KdSnapshot *s, KdError *err) {
  int M = 0;
  for (int i = 0; i < f->n; i++)
    for (int k = 0; k < p->gt[i].n; k++) M += !p->gt[i].crowd[k];
  if (M == 0) return 0;
  int Cs = f->sout.feat[0]->shape[1], Ct = kd_probe_teacher(p, f) ? f->tout.feat[0]->shape[1] : 0;
  int C = kd_probe_teacher(p, f) ? Ct : Cs, paired = !kd_probe_teacher(p, f) || Ct == Cs;
  float *tf = malloc(sizeof(float) * (size_t)M * (Ct + 1)), *sf = malloc(sizeof(float) * (size_t)M * Cs);
  float *meta = malloc(sizeof(float) * 4 * (size_t)M);
  float *mean = malloc(sizeof(float) * 3 * (size_t)C), *axes = mean ? mean + C : NULL, var[3];
  int rc = -1;
  if (!tf || !sf || !meta || !mean) {
    OOM();
    goto out;
  }
  int m = 0;
  for (int i = 0; i < f->n; i++)
    for (int k = 0; k < p->gt[i].n; k++) {
      if (p->gt[i].crowd[k]) continue;
      const float *b = p->gt[i].boxes + 4 * k;
      int l = kd_model_box_level(p->student, b), st = s->strides[l];
      const KdTensor *S = f->sout.feat[l];
      int H = S->shape[2], W = S->shape[3];
      kd_map_roi_avg(S->data + (size_t)i * Cs * H * W, Cs, H, W, st, b, sf + (size_t)m * Cs);
      if (kd_probe_teacher(p, f)) {
        /* the teacher's level of the same stride, else the one its own head would pick */
        int lt = kd_levels_find(f->tout.levels, st), stt = st;
        if (lt < 0) lt = kd_model_box_level(p->teacher, b), stt = f->tout.levels->stride[lt];
        const KdTensor *T = f->tout.feat[lt];
        int Ht = T->shape[2], Wt = T->shape[3];
        kd_map_roi_avg(T->data + (size_t)i * Ct * Ht * Wt, Ct, Ht, Wt, stt, b, tf + (size_t)m * Ct);
      }
      float row[4] = {(float)i, (float)k, (float)l, (float)p->gt[i].labels[k]};
      memcpy(meta + 4 * m, row, sizeof row);
      m++;
    }
  if (kd_pca2(kd_probe_teacher(p, f) ? tf : sf, M, C, mean, axes, var)) {
    OOM();
    goto out;
  }
  static const char *const cols[4] = {"inst.image", "inst.gt", "inst.level", "inst.label"};
  for (int c = 0; c < 4; c++) {
    KdSnapField *fd = kd_snapshot_add1(s, cols[c], M);
    if (!fd) goto oom;
    for (int j = 0; j < M; j++) fd->data[j] = meta[4 * j + c];
  }
  for (int who = 0; who < 2; who++) {
    if (who == 0 && !kd_probe_teacher(p, f)) continue;
    if (who == 1 && !paired) continue;
    KdSnapField *fd = kd_snapshot_add2(s, who ? "inst.s_xy" : "inst.t_xy", M, 2);
    if (!fd) goto oom;
    for (int j = 0; j < M; j++) kd_pca2_project(who ? sf + (size_t)j * Cs : tf + (size_t)j * Ct, C, mean, axes, fd->data + 2 * j);
  }
  if (kd_probe_pca_fields(s, "pca", mean, axes, var, C)) goto oom;
  rc = 0;
  goto out;
oom:
  OOM();
out:
  free(tf), free(sf), free(meta), free(mean);
  return rc;
}

/* The GT foreground of every image and level (fg/bg split of gradients). */
int kd_probe_pca_fields(KdSnapshot *s, const char *prefix, const float *mean, const float *axes, const float *var, int C) {
  char name[KD_SNAP_NAME];
  snprintf(name, sizeof name, "%s.mean", prefix);
  KdSnapField *fd = kd_snapshot_add1(s, name, C);
  if (!fd) return -1;
  memcpy(fd->data, mean, sizeof(float) * (size_t)C);
  snprintf(name, sizeof name, "%s.axes", prefix);
  if (!(fd = kd_snapshot_add2(s, name, 2, C))) return -1;
  memcpy(fd->data, axes, sizeof(float) * 2 * (size_t)C);
  snprintf(name, sizeof name, "%s.var", prefix);
  if (!(fd = kd_snapshot_add1(s, name, 3))) return -1;
  memcpy(fd->data, var, 3 * sizeof(float));
  return 0;
}

static int fg_maps(KdProber *p, const KdForward *f, KdSnapshot *s, float **fg, KdError *err) {
  for (int l = 0; l < f->nlev; l++)
    for (int i = 0; i < f->n; i++) {
      const KdTensor *S = f->sout.feat[l];
      int H = S->shape[2], W = S->shape[3];
      float *o = hw_field(s, i, l, "fg", S);
      if (!o) return OOM();
      for (int k = 0; k < p->gt[i].n; k++) {
        int x0, y0, x1, y1;
        if (p->gt[i].crowd[k] || !kd_map_box_cells(p->gt[i].boxes + 4 * k, s->strides[l], H, W, &x0, &y0, &x1, &y1)) continue;
        for (int y = y0; y <= y1; y++)
          for (int x = x0; x <= x1; x++) o[y * W + x] = 1.0f;
      }
      fg[l * KD_PROBE_MAX_IMAGES + i] = o;
    }
  return 0;
}

/* Stores the per-pixel norm of one source's gradient (g: the level's
 * N,C,H,W grad or NULL for none) and its fg/bg means. */
static int grad_maps(KdSnapshot *s, const KdForward *f, int l, const char *src, const float *g, float *const *fg,
                     float *fgbg, float *counts) {
  const KdTensor *S = f->sout.feat[l];
  int C = S->shape[1], HW = S->shape[2] * S->shape[3];
  char what[KD_SNAP_NAME];
  snprintf(what, sizeof what, "grad.%s", src);
  for (int i = 0; i < f->n; i++) {
    float *o = hw_field(s, i, l, what, S);
    if (!o) return -1;
    if (g) kd_map_norm(g + (size_t)i * C * HW, C, HW, o);
    const float *m = fg[l * KD_PROBE_MAX_IMAGES + i];
    double a[2] = {0, 0}, n[2] = {0, 0};
    for (int q = 0; q < HW; q++) {
      int k = m[q] > 0.5f ? 0 : 1;
      a[k] += o[q], n[k] += 1;
    }
    float *dst = fgbg + ((size_t)i * f->nlev + l) * 2, *cnt = counts + ((size_t)i * f->nlev + l) * 2;
    for (int k = 0; k < 2; k++) dst[k] = n[k] > 0 ? (float)(a[k] / n[k]) : 0.0f, cnt[k] = (float)n[k];
  }
  return 0;
}

/* Turns gradient tracking of a store's tensors off (on = 0, saving the
 * flags in saved) or back (on = 1, from saved). */
static unsigned char *param_flags(KdParams *st, unsigned char *saved, int on) {
  for (int i = 0; st && i < kd_params_count(st); i++) {
    KdTensor *t = kd_params_at(st, i);
    if (on) t->requires_grad = *saved++;
    else *saved++ = t->requires_grad, t->requires_grad = 0;
  }
  return saved;
}

/* One backward pass per source, reading dL/dS at every level. Parameter
 * gradients are not wanted: with the parameters' flags off for the
 * passes, ops skip their weight gradients (the tape was recorded already). */
static int grad_passes(KdProber *p, const KdForward *f, KdSnapshot *s, float *const *fg, KdError *err);

static int gradients(KdProber *p, const KdForward *f, KdSnapshot *s, KdError *err) {
  float *fg[KD_MAX_LEVELS * KD_PROBE_MAX_IMAGES];
  if (fg_maps(p, f, s, fg, err)) return -1;
  if (p->cfg.cut_backward && f->total && f->total->node &&
      kd_tape_cut_below(f->total->node, f->sout.feat, f->nlev) < 0)
    return OOM();
  for (int l = 0; l < f->nlev; l++) {
    size_t need = f->sout.feat[l]->numel;
    if (p->gsum_n[l] < need) {
      free(p->gsum[l]);
      if (!(p->gsum[l] = malloc(sizeof(float) * need))) return p->gsum_n[l] = 0, OOM();
      p->gsum_n[l] = need;
    }
    memset(p->gsum[l], 0, sizeof(float) * need);
  }
  KdParams *st_s = kd_model_params(p->student), *st_d = p->distiller ? kd_distiller_params(p->distiller) : NULL;
  unsigned char *flags = malloc((size_t)kd_params_count(st_s) + (st_d ? (size_t)kd_params_count(st_d) : 0) + 1);
  if (!flags) return OOM();
  param_flags(st_d, param_flags(st_s, flags, 0), 0);
  int rc = grad_passes(p, f, s, fg, err);
  param_flags(st_d, param_flags(st_s, flags, 1), 1);
  free(flags);
  return rc;
}

static int grad_passes(KdProber *p, const KdForward *f, KdSnapshot *s, float *const *fg, KdError *err) {
  KdCtx *c = p->ctx;
  KdTensor *src[1 + KD_DISTILL_MAX_OUT];
  const char *names[2 + KD_DISTILL_MAX_OUT];
  int nsrc = 0;
  src[nsrc] = f->det.total, names[nsrc++] = "det";
  for (int m = 0; m < f->nmethods; m++) src[nsrc] = f->outs[m].loss, names[nsrc++] = f->methods[m]->name;
  names[nsrc] = "total";
  int shape[3] = {f->n, f->nlev, 2};
  KdSnapField *fc = kd_snapshot_add(s, "fgbg_count", 3, shape);
  if (!fc) return OOM();
  float *counts = fc->data; /* field pointers move as fields are added; data does not */
  for (int k = 0; k <= nsrc; k++) {
    if (k < nsrc) {
      kd_ctx_clear_step_grads(c);
      if (kd_backward(c, src[k])) return kd_error(err, "probe backward (%s): %s", names[k], kd_ctx_error(c));
    }
    char fname[KD_SNAP_NAME];
    snprintf(fname, sizeof fname, "grad_fgbg.%s", names[k]);
    KdSnapField *ff = kd_snapshot_add(s, fname, 3, shape);
    if (!ff) return OOM();
    float *fgbg = ff->data;
    for (int l = 0; l < f->nlev; l++) {
      const float *g = k < nsrc ? f->sout.feat[l]->grad : p->gsum[l];
      if (g && k < nsrc)
        for (size_t q = 0; q < f->sout.feat[l]->numel; q++) p->gsum[l][q] += g[q];
      if (grad_maps(s, f, l, names[k], g, fg, fgbg, counts)) return OOM();
    }
  }
  kd_ctx_clear_step_grads(c);
  return 0;
}

int kd_probe_fill(KdProber *p, KdSnapshot *s, KdError *err) {
  KdForward f;
  KdTrainBatch b = {.n = p->n, .h = p->size, .w = p->size, .images = p->images, .gt = p->gt, .maps = 1};
  if (kd_trainer_forward(p->trainer, p->ctx, &b, 0, &f, err)) return kd_error_prefix(err, "probe: ");
  s->nimages = p->n, s->img_h = p->size, s->img_w = p->size;
  memcpy(s->image_index, p->image_index, sizeof s->image_index);
  memcpy(s->image_id, p->image_id, sizeof s->image_id);
  s->nlev = f.nlev;
  for (int l = 0; l < f.nlev; l++) s->strides[l] = kd_model_stride(p->student, l);
  s->s_channels = f.sout.feat[0]->shape[1];
  s->t_channels = kd_probe_teacher(p, &f) ? f.tout.feat[0]->shape[1] : 0;
  s->attn_temp = attn_temp(p, &f);
  for (int m = 0; m < f.nmethods; m++) {
    size_t o = strlen(s->methods);
    snprintf(s->methods + o, sizeof s->methods - o, "%s%s", m ? "," : "", f.methods[m]->name);
  }
  KdLossPart *pp = s->probe_parts;
  s->nprobe_parts = 0;
  for (int k = 0; k < f.det.nparts; k++, s->nprobe_parts++)
    snprintf(pp[k].name, sizeof pp[k].name, "det.%s", f.det.parts[k].name), pp[k].value = f.det.parts[k].value->data[0];
  for (int m = 0; m < f.nmethods; m++)
    for (int k = 0; k < f.outs[m].nparts && s->nprobe_parts < KD_MAX_PARTS; k++) {
      KdLossPart *q = &pp[s->nprobe_parts++];
      snprintf(q->name, sizeof q->name, "%s.%s", f.methods[m]->name, f.outs[m].parts[k].name);
      q->value = f.outs[m].parts[k].value->data[0];
    }
  const char *cls[256];
  int nc = kd_dataset_num_classes(p->val);
  nc = nc > 256 ? 256 : nc;
  for (int k = 0; k < nc; k++) cls[k] = kd_dataset_class_name(p->val, k);
  if (kd_snapshot_set_classes(s, nc, cls)) return OOM();
  size_t img = (size_t)p->n * p->size * p->size * 3;
  if (!(s->rgb = malloc(img))) return OOM();
  memcpy(s->rgb, p->rgb, img);
  if (feature_maps(p, &f, s, err) || gap_maps(&f, s, err) || masks(&f, s) || tables(&f, s, err) || detections(p, &f, s, err) || instances(p, &f, s, err) ||
      kd_probe_two_stage(p, &f, s, err))
    return -1;
  return gradients(p, &f, s, err);
}
