/* The RoI head's training side (see roi_head.h): torchvision's
 * select_training_samples and fastrcnn_loss. */
#include <string.h>

#include "core/ops.h"
#include "detect/assign.h"
#include "detect/detloss.h"
#include "detect/sampler.h"
#include "model/roi_head_impl.h"

/* One image's candidates (proposals + non-crowd GT), their matches and
 * the sampler's choice, in the arena. */
typedef struct {
  int A;
  float *cand;      /* [A*4] */
  int *match;       /* [A] */
  signed char *sel; /* [A] */
} ImageSample;

static int check_gt(const KdGtImage *g, int img, int K, KdError *err) {
  if (g->n < 0 || (g->n > 0 && (!g->boxes || !g->labels)))
    return kd_error(err, "roi sample: image %d has %d GT boxes without boxes or labels", img, g->n);
  for (int j = 0; j < g->n; j++) {
    if (g->crowd && g->crowd[j]) continue;
    if (g->labels[j] < 0 || g->labels[j] >= K)
      return kd_error(err, "roi sample: image %d box %d has label %d, expected 0..%d", img, j, g->labels[j], K - 1);
  }
  return 0;
}

static int sample_image(KdRoiHead *h, KdCtx *c, const float *props, int np, const KdGtImage *g, KdRng *r,
                        ImageSample *is, int *nsel, KdError *err) {
  int ngt = 0;
  for (int j = 0; j < g->n; j++) ngt += !(g->crowd && g->crowd[j]);
  const int A = np + ngt;
  is->A = A;
  is->cand = kd_ctx_alloc(c, ((size_t)A * 4 + 1) * sizeof(float));
  is->match = kd_ctx_alloc(c, ((size_t)A + 1) * sizeof(int));
  is->sel = kd_ctx_alloc(c, (size_t)A + 1);
  if (!is->cand || !is->match || !is->sel) return kd_error(err, "roi sample: %s", kd_ctx_error(c));
  if (np) memcpy(is->cand, props, (size_t)np * 4 * sizeof(float));
  for (int j = 0, k = np; j < g->n; j++)
    if (!(g->crowd && g->crowd[j])) memcpy(is->cand + 4 * (size_t)k++, g->boxes + 4 * (size_t)j, 4 * sizeof(float));
  const KdAssignCfg acfg = {.pos_iou = h->cfg.fg_iou, .neg_iou = h->cfg.bg_iou, .low_quality = 0, .crowd_ioa = 0.5f};
  if (kd_assign(&acfg, is->cand, A, g->boxes, g->crowd, g->n, is->match, err) < 0) return -1;
  int npos = 0;
  *nsel = kd_sample_balanced(is->match, A, h->cfg.batch_per_image, h->cfg.pos_fraction, r, is->sel, &npos, err);
  return *nsel < 0 ? -1 : 0;
}

int kd_roi_head_sample(KdRoiHead *h, KdCtx *c, const float *proposals, const int *nprops, int stride, const KdGtImage *gt,
                       int n, KdRng *r, KdRoiSample *out, KdError *err) {
  memset(out, 0, sizeof *out);
  if (n < 1 || stride < 0 || !nprops || !gt || (stride > 0 && !proposals))
    return kd_error(err, "roi sample: %d images, %d proposals per image", n, stride);
  ImageSample *is = kd_ctx_alloc(c, (size_t)n * sizeof *is);
  out->count = kd_ctx_alloc(c, (size_t)n * sizeof(int));
  if (!is || !out->count) return kd_error(err, "roi sample: %s", kd_ctx_error(c));
  int total = 0;
  for (int i = 0; i < n; i++) {
    if (nprops[i] < 0 || nprops[i] > stride)
      return kd_error(err, "roi sample: image %d has %d proposals, expected 0..%d", i, nprops[i], stride);
    if (check_gt(&gt[i], i, h->cfg.num_classes, err)) return -1;
    if (sample_image(h, c, proposals + 4 * (size_t)i * stride, nprops[i], &gt[i], r, &is[i], &out->count[i], err))
      return kd_error_prefix(err, "roi sample: image %d: ", i);
    total += out->count[i];
  }
  out->nrois = total;
  out->rois = kd_ctx_alloc(c, ((size_t)total * 5 + 1) * sizeof(float));
  out->labels = kd_ctx_alloc(c, ((size_t)total + 1) * sizeof(int));
  out->matched = kd_ctx_alloc(c, ((size_t)total + 1) * sizeof(int));
  out->targets = kd_ctx_alloc(c, ((size_t)total * 4 + 1) * sizeof(float));
  out->cand = kd_ctx_alloc(c, ((size_t)total + 1) * sizeof(int));
  if (!out->rois || !out->labels || !out->matched || !out->targets || !out->cand) return kd_error(err, "roi sample: %s", kd_ctx_error(c));
  int k = 0;
  for (int i = 0; i < n; i++)
    for (int a = 0; a < is[i].A; a++) {
      if (is[i].sel[a] < 0) continue;
      const float *b = is[i].cand + 4 * (size_t)a;
      const int m = is[i].match[a];
      float *q = out->rois + 5 * (size_t)k, *t = out->targets + 4 * (size_t)k;
      q[0] = (float)i;
      memcpy(q + 1, b, 4 * sizeof(float));
      out->matched[k] = m >= 0 ? m : -1;
      out->cand[k] = a;
      out->labels[k] = m >= 0 ? gt[i].labels[m] + 1 : 0;
      if (m >= 0) kd_box_encode(&h->bc, b, gt[i].boxes + 4 * (size_t)m, t);
      else memset(t, 0, 4 * sizeof(float));
      out->num_pos += m >= 0;
      k++;
    }
  return 0;
}

/* Constant zeros {1}: the losses of a batch without RoIs. */
static KdTensor *zero_loss(KdCtx *c) { return kd_tensor_zeros(c, 1, (int[]){1}); }

int kd_roi_head_loss(KdRoiHead *h, KdCtx *c, KdTensor *cls, KdTensor *box, const KdRoiSample *s, KdTensor **loss_cls,
                     KdTensor **loss_box, KdError *err) {
  *loss_cls = *loss_box = NULL;
  const int R = s->nrois, K1 = h->cfg.num_classes + 1;
  if (R == 0) {
    *loss_cls = zero_loss(c), *loss_box = zero_loss(c);
    return *loss_cls && *loss_box ? 0 : kd_error(err, "roi loss: %s", kd_ctx_error(c));
  }
  char sc[64], sb[64];
  if (!cls || !box || cls->ndim != 2 || box->ndim != 2 || cls->shape[0] != R || box->shape[0] != R ||
      cls->shape[1] != K1 || box->shape[1] != 4 * K1)
    return kd_error(err, "roi loss: outputs %s and %s for %d sampled RoIs, expected %d,%d and %d,%d",
                    cls ? kd_tensor_shape_str(cls, sc, 64) : "none", box ? kd_tensor_shape_str(box, sb, 64) : "none", R,
                    R, K1, R, 4 * K1);
  int *idx = kd_ctx_alloc(c, (size_t)R * sizeof *idx);
  /* the GT class's deltas as a dense target over (RoI, class) pairs */
  int *tcls = kd_ctx_alloc(c, (size_t)R * K1 * sizeof *tcls);
  float *tdel = kd_ctx_alloc(c, (size_t)R * K1 * 4 * sizeof *tdel);
  if (!idx || !tcls || !tdel) return kd_error(err, "roi loss: %s", kd_ctx_error(c));
  memset(tdel, 0, (size_t)R * K1 * 4 * sizeof *tdel);
  for (int i = 0; i < R * K1; i++) tcls[i] = KD_MATCH_NEG;
  for (int r = 0; r < R; r++) {
    const int l = s->labels[r];
    if (l < 0 || l >= K1) return kd_error(err, "roi loss: RoI %d has label %d, expected 0..%d", r, l, K1 - 1);
    idx[r] = r * K1 + l;
    if (l == 0) continue;
    tcls[r * K1 + l] = l;
    memcpy(tdel + 4 * ((size_t)r * K1 + l), s->targets + 4 * (size_t)r, 4 * sizeof(float));
  }
  KdTensor *picked = kd_gather(c, kd_log_softmax(c, cls, 1), idx, R);
  *loss_cls = kd_scale(c, kd_mean_all(c, picked), -1.0f);
  KdTensor *b4 = kd_reshape(c, box, 4, (int[]){R, 4 * K1, 1, 1});
  *loss_box = kd_smooth_l1_loss(c, &b4, 1, K1, tdel, tcls, 1.0f / 9.0f, (float)R);
  if (!*loss_cls || !*loss_box) return kd_error(err, "roi loss: %s", kd_ctx_error(c));
  return 0;
}
