/* The fields of a two-stage side (a head kind with KD_HEAD_HAS_ROIS):
 * the RPN's top proposals and its objectness per level, from the probe's
 * evaluation forward, and the RoI head's features of the GT boxes (its
 * roi_forward on them, no tape) on a PCA basis of their own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe/maps.h"
#include "probe/prober_impl.h"

#define OOM() kd_error(err, "probe: out of memory")

static int two_stage(const KdModel *m) {
  KdHeadInfo hi;
  if (!m) return 0;
  kd_model_head_info(m, &hi);
  return (hi.provides & KD_HEAD_HAS_ROIS) != 0;
}

/* img<i>.props.<who>: each image's best KD_PROBE_PROPOSALS (by
 * objectness) as box, objectness, -1 (no class). */
static int proposals(const KdDetOut *o, int n, const char *who, KdSnapshot *s) {
  const KdRpnProposals *pr = &o->head.rois.props;
  if (!pr->boxes || pr->n != n) return 0;
  for (int i = 0; i < n; i++) {
    int np = pr->count[i] < KD_PROBE_PROPOSALS ? pr->count[i] : KD_PROBE_PROPOSALS;
    char name[32];
    snprintf(name, sizeof name, "img%d.props.%s", i, who);
    KdSnapField *fd = kd_snapshot_add2(s, name, np, 6);
    if (!fd) return -1;
    for (int k = 0; k < np; k++) {
      const float *b = pr->boxes + 4 * ((size_t)i * pr->cap + k);
      float row[6] = {b[0], b[1], b[2], b[3], pr->scores[(size_t)i * pr->cap + k], -1.0f};
      memcpy(fd->data + 6 * k, row, sizeof row);
    }
  }
  return 0;
}

/* img<i>.<L>.<what>: max over anchors of sigmoid(objectness), at the
 * snapshot's levels the side has (paired by stride). */
static int objectness(const KdDetOut *o, int n, const char *what, KdSnapshot *s) {
  KdTensor *const *obj = kd_head_out_find(&o->head, "objectness");
  if (!obj) return 0;
  for (int l = 0; l < s->nlev; l++) {
    int k = kd_levels_find(o->levels, s->strides[l]);
    if (k < 0 || !obj[k]) continue;
    const KdTensor *t = obj[k];
    int A = t->shape[1], shape[2] = {t->shape[2], t->shape[3]}, HW = shape[0] * shape[1];
    for (int i = 0; i < n; i++) {
      float *m = kd_probe_map_field(s, i, l, what, 2, shape);
      if (!m) return -1;
      kd_map_objectness(t->data + (size_t)i * A * HW, A, HW, m);
    }
  }
  return 0;
}

/* The RoI head's output (M, R) on rois, copied to the heap; NULL with
 * err. No tape: the passes after this never reach it. */
static float *roi_rep(KdProber *p, KdModel *m, const KdDetOut *o, const float *rois, int M, int *R, KdError *err) {
  KdHeadOut ho;
  int was = kd_ctx_set_grad(p->ctx, 0);
  int rc = kd_model_roi_forward(m, p->ctx, o->feat, rois, M, &ho, err);
  kd_ctx_set_grad(p->ctx, was);
  if (rc) return kd_error_prefix(err, "probe: RoI features: "), NULL;
  const KdTensor *rep = ho.rois.rep;
  if (!rep || rep->ndim != 2 || rep->shape[0] != M)
    return kd_error(err, "probe: RoI features: the %s head gave no box-head output", kd_model_head_kind(m)->label), NULL;
  *R = rep->shape[1];
  float *x = malloc(sizeof(float) * (size_t)M * *R);
  if (!x) return OOM(), NULL;
  memcpy(x, rep->data, sizeof(float) * (size_t)M * *R);
  return x;
}

/* roi.t_xy / roi.s_xy (M, 2), rows as inst.*: the RoI features of every
 * non-crowd GT box projected on roi.pca (fitted on the teacher's when it
 * is two-stage, else the student's). */
static int roi_features(KdProber *p, const KdForward *f, const int *ts, KdSnapshot *s, KdError *err) {
  int M = 0;
  for (int i = 0; i < f->n; i++)
    for (int k = 0; k < p->gt[i].n; k++) M += !p->gt[i].crowd[k];
  if (M == 0) return 0;
  float *rois = malloc(sizeof(float) * 5 * (size_t)M), *x[2] = {NULL, NULL}, *mean = NULL;
  int R[2] = {0, 0}, rc = -1;
  if (!rois) return OOM();
  int m = 0;
  for (int i = 0; i < f->n; i++)
    for (int k = 0; k < p->gt[i].n; k++)
      if (!p->gt[i].crowd[k]) {
        rois[5 * m] = (float)i;
        memcpy(rois + 5 * m + 1, p->gt[i].boxes + 4 * k, 4 * sizeof(float));
        m++;
      }
  KdModel *models[2] = {p->student, kd_probe_teacher(p, f)};
  const KdDetOut *outs[2] = {&f->sout, &f->tout};
  for (int w = 0; w < 2; w++)
    if (ts[w] && !(x[w] = roi_rep(p, models[w], outs[w], rois, M, &R[w], err))) goto out;
  int b = x[1] ? 1 : 0, C = R[b];
  float var[3];
  if (!(mean = malloc(sizeof(float) * 3 * (size_t)C)) || kd_pca2(x[b], M, C, mean, mean + C, var)) {
    OOM();
    goto out;
  }
  for (int w = 0; w < 2; w++) {
    if (!x[w] || R[w] != C) continue;
    KdSnapField *fd = kd_snapshot_add2(s, w ? "roi.t_xy" : "roi.s_xy", M, 2);
    if (!fd) {
      OOM();
      goto out;
    }
    for (int j = 0; j < M; j++) kd_pca2_project(x[w] + (size_t)j * C, C, mean, mean + C, fd->data + 2 * j);
  }
  rc = kd_probe_pca_fields(s, "roi.pca", mean, mean + C, var, C) ? OOM() : 0;
out:
  free(rois), free(x[0]), free(x[1]), free(mean);
  return rc;
}

int kd_probe_two_stage(KdProber *p, const KdForward *f, KdSnapshot *s, KdError *err) {
  int ts[2] = {two_stage(p->student), two_stage(kd_probe_teacher(p, f))};
  static const char *const who[2] = {"s", "t"};
  for (int w = 0; w < 2; w++) {
    if (!ts[w]) continue;
    const KdDetOut *o = w ? &f->tout : &f->sout;
    char what[16];
    snprintf(what, sizeof what, "%s_obj", who[w]);
    if (proposals(o, f->n, who[w], s) || objectness(o, f->n, what, s)) return OOM();
  }
  return ts[0] || ts[1] ? roi_features(p, f, ts, s, err) : 0;
}
