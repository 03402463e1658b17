/* HEAD's assistant pieces (see assist.h): the student's proposals and
 * sampled RoIs with their anchors, the assistant's levels and its copy of
 * the teacher's RoI head, and the loss pieces. */
#include "distill/assist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"

/* Per anchor, the max over the K class logits: N,A*K,H,W -> N,A,H,W. */
static KdTensor *objectness(KdCtx *c, KdTensor *cls, int A, int K) {
  KdTensor *cp = cls->blocked ? kd_to_plain(c, cls) : cls;
  if (!cp) return NULL;
  const int N = cp->shape[0], H = cp->shape[2], W = cp->shape[3], HW = H * W;
  KdTensor *o = kd_tensor4(c, N, A, H, W);
  for (int n = 0; o && n < N; n++)
    for (int a = 0; a < A; a++) {
      const float *src = cp->data + ((size_t)n * A * K + (size_t)a * K) * HW;
      float *dst = o->data + ((size_t)n * A + a) * HW;
      for (int i = 0; i < HW; i++) {
        float m = src[i];
        for (int k = 1; k < K; k++) m = src[(size_t)k * HW + i] > m ? src[(size_t)k * HW + i] : m;
        dst[i] = m;
      }
    }
  return o;
}

/* The dense outputs the proposals read, checked: cls N,A*K,H,W and box
 * N,4A,H,W on every student level, the assignment over their anchors. */
static int dense_inputs(const KdDistillInputs *in, KdTensor **obj, KdTensor **box, KdError *err) {
  const KdDenseAssign *as = in->s.assign;
  KdTensor *const *cls = kd_side_out(&in->s, "cls"), *const *del = kd_side_out(&in->s, "box");
  if (!as || !as->anchors) return kd_error(err, "the student has no dense anchor assignment (a one-stage head is needed)");
  if (!cls || !del) return kd_error(err, "the student has no dense class logits and box deltas (\"cls\", \"box\")");
  int total = 0;
  for (int l = 0; l < in->s.levels->n; l++) {
    KdTensor *s = cls[l], *b = del[l];
    char a[64], d[64];
    if (!s || !b || s->ndim != 4 || b->ndim != 4 || s->shape[0] != in->n || s->shape[1] != as->A * as->K ||
        b->shape[1] != 4 * as->A || b->shape[0] != in->n || b->shape[2] != s->shape[2] || b->shape[3] != s->shape[3])
      return kd_error(err, "level %s: class logits %s and box deltas %s, expected %d,%d,H,W and %d,%d,H,W",
                      in->s.levels->name[l], s ? kd_tensor_shape_str(s, a, 64) : "none",
                      b ? kd_tensor_shape_str(b, d, 64) : "none", in->n, as->A * as->K, in->n, 4 * as->A);
    if (!(obj[l] = objectness(in->c, s, as->A, as->K)))
      return kd_error(err, "objectness: %s", kd_ctx_error(in->c));
    box[l] = b->blocked ? kd_to_plain(in->c, b) : b;
    total += s->shape[2] * s->shape[3] * as->A;
  }
  if (total != as->A_total)
    return kd_error(err, "the levels hold %d anchors per image, the assignment %d", total, as->A_total);
  return 0;
}

/* Where each sampled RoI's anchor lies: level, y, x, anchor id. */
static void positions(const KdDistillInputs *in, KdTensor *const *obj, const int *origin, int cap, const int *nprops,
                      KdAssistRois *r) {
  const int A = in->s.assign->A, nlev = in->s.levels->n;
  r->npix = 0;
  for (int k = 0; k < r->s.nrois; k++) {
    const int img = (int)r->s.rois[5 * (size_t)k], cand = r->s.cand[k];
    r->level[k] = r->y[k] = r->x[k] = r->anchor[k] = -1;
    if (cand >= nprops[img]) continue; /* a GT box */
    int o = origin[(size_t)img * cap + cand], l = 0;
    for (int size; l < nlev - 1 && o >= (size = obj[l]->shape[2] * obj[l]->shape[3] * A); l++) o -= size;
    const int hw = o / A, W = obj[l]->shape[3];
    r->level[k] = l, r->y[k] = hw / W, r->x[k] = hw % W, r->anchor[k] = o % A;
    r->npix++;
  }
}

int kd_assist_rois(const KdDistillInputs *in, const KdProposalCfg *pc, KdRoiHead *h, KdAssistRois *out, KdError *err) {
  KdCtx *c = in->c;
  memset(out, 0, sizeof *out);
  KdTensor *obj[KD_DISTILL_MAX_LEVELS] = {0}, *box[KD_DISTILL_MAX_LEVELS] = {0};
  if (!in->gt) return kd_error(err, "no ground-truth boxes given");
  if (dense_inputs(in, obj, box, err)) return -1;
  const int n = in->n, cap = pc->post_nms_top_n;
  float *boxes = kd_ctx_alloc(c, (size_t)n * cap * 4 * sizeof *boxes), *scores = kd_ctx_alloc(c, (size_t)n * cap * sizeof *scores);
  float *wh = kd_ctx_alloc(c, 2 * (size_t)n * sizeof *wh);
  int *count = kd_ctx_alloc(c, (size_t)n * sizeof *count), *origin = kd_ctx_alloc(c, (size_t)n * cap * sizeof *origin);
  if (!boxes || !scores || !wh || !count || !origin) return kd_error(err, "proposals: out of memory");
  for (int i = 0; i < n; i++) wh[2 * i] = (float)in->img_w, wh[2 * i + 1] = (float)in->img_h;
  const KdBoxCoder bc = kd_box_coder_default();
  if (kd_proposals_origin(c, pc, obj, box, in->s.levels->n, in->s.assign->A, in->s.assign->anchors, &bc, wh, boxes, scores,
                          count, origin, err))
    return kd_error_prefix(err, "student proposals: ");
  for (int i = 0; i < n; i++) out->nprops += count[i];
  if (kd_roi_head_sample(h, c, boxes, count, cap, in->gt, n, in->rng, &out->s, err)) return -1;
  const size_t R = (size_t)out->s.nrois + 1;
  out->level = kd_ctx_alloc(c, R * sizeof(int)), out->y = kd_ctx_alloc(c, R * sizeof(int));
  out->x = kd_ctx_alloc(c, R * sizeof(int)), out->anchor = kd_ctx_alloc(c, R * sizeof(int));
  if (!out->level || !out->y || !out->x || !out->anchor) return kd_error(err, "sampled RoIs: out of memory");
  positions(in, obj, origin, cap, count, out);
  return 0;
}

int kd_assist_step(const KdDistillInputs *in, const char *method, int warmup_steps, int pre_nms_top_n, int post_nms_top_n,
                   float nms_thresh, KdRoiHead *h, KdAssistStep *st) {
  KdCtx *c = in->c;
  KdError err = {0};
  memset(st, 0, sizeof *st);
  if (!(st->tower = kd_side_out(&in->s, "cls_tower")))
    return kd_ctx_fail(c, "%s: the student's head has no classification tower (\"cls_tower\")", method), -1;
  const KdProposalCfg pc = {.pre_nms_top_n = pre_nms_top_n, .post_nms_top_n = post_nms_top_n, .nms_thresh = nms_thresh,
                            .min_size = 1e-3f, .score_thresh = 0.0f};
  if (kd_assist_rois(in, &pc, h, &st->r, &err)) return kd_ctx_fail(c, "%s: %s", method, err.msg), -1;
  st->warm = kd_assist_warmup(in->step, warmup_steps);
  if (!(st->rows = kd_ctx_alloc(c, (size_t)(st->r.npix + 1) * sizeof *st->rows)))
    return kd_ctx_fail(c, "%s: out of memory", method), -1;
  return 0;
}

int kd_assist_teacher_levels(const KdLevels *teacher, int *first_stride) {
  int n = 0;
  *first_stride = 0;
  for (int l = 0; l < teacher->n && teacher->stride[l] <= 32; l++, n++)
    if (!n) *first_stride = teacher->stride[l];
  return n;
}

void kd_assist_levels(const KdLevels *student, int t_first_stride, int t_nlev, KdRoiHeadCfg *cfg, KdLevels *out) {
  memset(out, 0, sizeof *out);
  for (int l = 0; l < student->n && l < t_nlev; l++) kd_levels_add(out, student->stride[l]);
  int shift = 0;
  for (int s = t_first_stride; s > 0 && out->n > 0 && s < out->stride[0]; s *= 2) shift++;
  for (int s = out->n > 0 ? out->stride[0] : 0; s > 0 && s < t_first_stride; s *= 2) shift--;
  cfg->pool.canonical_level += shift;
}

int kd_assist_copy(KdParams *store, const char *prefix, const KdParams *src) {
  const size_t np = strlen(prefix);
  int copied = 0;
  for (int i = 0; i < kd_params_count(store); i++) {
    KdTensor *d = kd_params_at(store, i);
    if (strncmp(d->name, prefix, np) || d->name[np] != '.') continue;
    char name[256];
    snprintf(name, sizeof name, "roi_heads%s", d->name + np);
    const KdTensor *s = kd_params_find(src, name);
    if (!s || !kd_tensor_same_shape(s, d)) continue;
    memcpy(d->data, s->data, d->numel * sizeof *d->data);
    copied++;
  }
  return copied;
}

KdTensor *kd_assist_mse(KdCtx *c, const KdLinear *ad, KdTensor *x, KdTensor *t) {
  KdTensor *y = kd_linear_fwd(c, ad, x);
  if (!y || !t) return NULL;
  if (!kd_tensor_same_shape(y, t)) {
    char a[64], b[64];
    kd_ctx_fail(c, "adapted feature %s against target %s", kd_tensor_shape_str(y, a, 64), kd_tensor_shape_str(t, b, 64));
    return NULL;
  }
  return kd_mean_all(c, kd_square(c, kd_sub(c, y, t)));
}

KdTensor *kd_assist_rows(KdCtx *c, KdTensor *x, const int *rows, int m) {
  if (!x || x->ndim != 2 || m < 1) return kd_ctx_fail(c, "rows: a 2-D tensor and at least one row expected"), NULL;
  const int D = x->shape[1];
  int *idx = kd_ctx_alloc(c, (size_t)m * D * sizeof *idx);
  if (!idx) return NULL;
  for (int r = 0; r < m; r++)
    for (int d = 0; d < D; d++) idx[(size_t)r * D + d] = rows[r] * D + d;
  return kd_reshape(c, kd_gather(c, x, idx, m * D), 2, (int[]){m, D});
}

KdTensor *kd_assist_pixels(KdCtx *c, KdTensor *const *tower, int nlev, const KdAssistRois *r, int *rows) {
  if (r->npix < 1) return NULL;
  KdTensor *parts[KD_DISTILL_MAX_LEVELS];
  int np = 0, m = 0;
  for (int l = 0; l < nlev; l++) {
    int ml = 0;
    for (int k = 0; k < r->s.nrois; k++) ml += r->level[k] == l;
    if (!ml) continue;
    KdTensor *t = tower[l] && tower[l]->blocked ? kd_to_plain(c, tower[l]) : tower[l];
    if (!t || t->ndim != 4) return kd_ctx_fail(c, "tower pixels: level %d is missing", l), NULL;
    const int C = t->shape[1], H = t->shape[2], W = t->shape[3];
    int *idx = kd_ctx_alloc(c, (size_t)ml * C * sizeof *idx), j = 0;
    if (!idx) return NULL;
    for (int k = 0; k < r->s.nrois; k++) {
      if (r->level[k] != l) continue;
      const int img = (int)r->s.rois[5 * (size_t)k];
      if (img >= t->shape[0] || r->y[k] >= H || r->x[k] >= W)
        return kd_ctx_fail(c, "tower pixels: RoI %d at image %d (%d, %d) outside level %d", k, img, r->y[k], r->x[k], l), NULL;
      for (int ch = 0; ch < C; ch++) idx[(size_t)j * C + ch] = ((img * C + ch) * H + r->y[k]) * W + r->x[k];
      rows[m++] = k, j++;
    }
    parts[np++] = kd_reshape(c, kd_gather(c, t, idx, ml * C), 2, (int[]){ml, C});
  }
  return np == 1 ? parts[0] : kd_concat(c, parts, np, 0);
}

float kd_assist_warmup(int step, int steps) {
  if (steps <= 0) return 1.0f;
  return step >= steps ? 1.0f : (float)step / (float)steps;
}

KdTensor *kd_assist_table(KdCtx *c, const KdAssistRois *r) {
  const int R = r->s.nrois;
  KdTensor *t = R > 0 ? kd_tensor_zeros(c, 2, (int[]){R, KD_ASSIST_COLS}) : NULL;
  if (!t) return NULL;
  for (int i = 0; i < R; i++) {
    float *row = t->data + (size_t)i * KD_ASSIST_COLS;
    for (int k = 0; k < 5; k++) row[k] = r->s.rois[5 * i + k];
    row[KD_ASSIST_COL_LABEL] = (float)r->s.labels[i];
    row[KD_ASSIST_COL_GT] = r->level[i] < 0 ? 1.0f : 0.0f;
    for (int k = 0; k < KD_ASSIST_GAPS; k++) row[KD_ASSIST_COL_GAP + k] = NAN;
  }
  return t;
}

int kd_assist_table_gaps(KdCtx *c, KdTensor *table, int col, const KdLinear *ad, KdTensor *x, const KdTensor *t,
                         const int *rows) {
  int was = kd_ctx_set_grad(c, 0);
  KdTensor *y = x && t ? kd_linear_fwd(c, ad, x) : NULL;
  kd_ctx_set_grad(c, was);
  if (!y || !kd_tensor_same_shape(y, t)) return -1;
  const int M = y->shape[0], D = y->shape[1];
  for (int m = 0; m < M; m++) {
    double sum = 0;
    for (int d = 0; d < D; d++) {
      double e = (double)y->data[(size_t)m * D + d] - t->data[(size_t)m * D + d];
      sum += e * e;
    }
    int r = rows ? rows[m] : m;
    if (r >= 0 && r < table->shape[0]) table->data[(size_t)r * KD_ASSIST_COLS + KD_ASSIST_COL_GAP + col] = (float)(sum / D);
  }
  return 0;
}
