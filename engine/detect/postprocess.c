/* Detection post-processing (see postprocess.h). Scratch is malloc'd per
 * image: this runs at evaluation, not inside a training step. */
#include "detect/postprocess.h"

#include <math.h>
#include <stdlib.h>

#include "detect/boxes.h"
#include "detect/detloss.h"
#include "detect/nms.h"

void kd_post_cfg_default(KdPostCfg *cfg) {
  *cfg = (KdPostCfg){.score_thr = 0.05f, .topk_per_level = 1000, .nms_iou = 0.5f, .max_det = 100};
}

int kd_post_cfg_check(const KdPostCfg *cfg, KdError *err) {
  if (!(cfg->score_thr >= 0.0f && cfg->score_thr < 1.0f))
    return kd_error(err, "post.score_thr: %g, expected a number in [0, 1)", cfg->score_thr);
  if (cfg->topk_per_level < 1 || cfg->topk_per_level > 1000000)
    return kd_error(err, "post.topk: %d, expected 1..1000000", cfg->topk_per_level);
  if (!(cfg->nms_iou >= 0.0f && cfg->nms_iou <= 1.0f))
    return kd_error(err, "post.nms_iou: %g, expected a number in [0, 1]", cfg->nms_iou);
  if (cfg->max_det < 1 || cfg->max_det > 100000)
    return kd_error(err, "post.max_det: %d, expected 1..100000", cfg->max_det);
  return 0;
}

/* A score above the threshold and where it came from. */
typedef struct {
  float score;
  long idx; /* flat (anchor, class) index within the image, level-major */
} Cand;

static int cand_cmp(const void *pa, const void *pb) {
  const Cand *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->idx > b->idx) - (a->idx < b->idx);
}

static int post_image(KdTensor *const *cls, KdTensor *const *box, int nlev, int A, int K, const float *anchors,
                      const KdBoxCoder *bc, const KdPostCfg *cfg, const float *wh, int n, KdDetection *out) {
  size_t max_level = 0;
  for (int l = 0; l < nlev; l++) {
    size_t m = (size_t)cls[l]->shape[2] * cls[l]->shape[3] * A * K;
    if (m > max_level) max_level = m;
  }
  size_t cap = (size_t)nlev * cfg->topk_per_level;
  Cand *lv = malloc(max_level * sizeof *lv);
  float *boxes = malloc(cap * 4 * sizeof *boxes), *scores = malloc(cap * sizeof *scores);
  int *labels = malloc(cap * sizeof *labels), *keep = malloc(cap * sizeof *keep);
  int rc = -1, nall = 0;
  if (!lv || !boxes || !scores || !labels || !keep) goto done;
  long level_base = 0;        /* flat index of the level's first (anchor, class) */
  size_t anchor_base = 0;     /* first anchor of the level */
  for (int l = 0; l < nlev; l++) {
    int H = cls[l]->shape[2], W = cls[l]->shape[3];
    size_t HW = (size_t)H * W;
    const float *x = cls[l]->data + (size_t)n * A * K * HW;
    size_t m = 0;
    /* Walk channel planes (contiguous), index in torchvision's (hw, a, k) order. */
    for (int a = 0; a < A; a++)
      for (int k = 0; k < K; k++) {
        const float *xp = x + ((size_t)a * K + k) * HW;
        for (size_t i = 0; i < HW; i++) {
          float s = kd_sigmoidf(xp[i]);
          if (s > cfg->score_thr) lv[m++] = (Cand){s, level_base + (long)((i * A + a) * K + k)};
        }
      }
    qsort(lv, m, sizeof *lv, cand_cmp);
    if (m > (size_t)cfg->topk_per_level) m = (size_t)cfg->topk_per_level;
    const float *d = box[l]->data + (size_t)n * A * 4 * HW;
    for (size_t c = 0; c < m; c++) {
      long li = lv[c].idx - level_base;
      int k = (int)(li % K);
      size_t cell = (size_t)(li / K), hw = cell / A;
      int a = (int)(cell % A);
      float delta[4];
      for (int j = 0; j < 4; j++) delta[j] = d[((size_t)a * 4 + j) * HW + hw];
      float *b = boxes + 4 * (size_t)nall;
      if (bc)
        kd_box_decode(bc, anchors + 4 * (anchor_base + cell), delta, b);
      else
        for (int j = 0; j < 4; j++) b[j] = delta[j];
      if (wh) kd_box_clip(b, wh[0], wh[1]);
      scores[nall] = lv[c].score;
      labels[nall] = k;
      nall++;
    }
    level_base += (long)(HW * A * K);
    anchor_base += HW * A;
  }
  /* kd_nms breaks score ties by candidate position; candidates are in
   * level order and, within a level, by (score, idx): so by flat index. */
  int nk = kd_nms(boxes, scores, labels, nall, cfg->nms_iou, cfg->max_det, keep, NULL);
  if (nk < 0) goto done;
  for (int i = 0; i < nk; i++) {
    const float *b = boxes + 4 * (size_t)keep[i];
    out[i] = (KdDetection){b[0], b[1], b[2], b[3], scores[keep[i]], labels[keep[i]]};
  }
  rc = nk;
done:
  free(lv);
  free(boxes);
  free(scores);
  free(labels);
  free(keep);
  return rc;
}

int kd_postprocess(KdTensor *const *cls, KdTensor *const *box, int nlev, int A, const float *anchors,
                   const KdBoxCoder *bc, const KdPostCfg *cfg, const float *image_wh, KdDetection *out, int *count,
                   KdError *err) {
  if (kd_post_cfg_check(cfg, err)) return -1;
  if (nlev < 1 || nlev > KD_DET_MAX_LEVELS || A < 1)
    return kd_error(err, "postprocess: %d levels (1..%d), %d anchors per location", nlev, KD_DET_MAX_LEVELS, A);
  int N = 0, K = 0;
  for (int l = 0; l < nlev; l++) {
    const KdTensor *c = cls[l], *b = box[l];
    char s1[64], s2[64];
    if (!c || !b) return kd_error(err, "postprocess: level %d is missing", l);
    int ok = c->ndim == 4 && b->ndim == 4 && c->shape[1] % A == 0 && b->shape[1] == 4 * A &&
             c->shape[0] == b->shape[0] && c->shape[2] == b->shape[2] && c->shape[3] == b->shape[3];
    if (ok && l == 0) {
      N = c->shape[0];
      K = c->shape[1] / A;
    }
    if (!ok || K < 1 || c->shape[0] != N || c->shape[1] != A * K)
      return kd_error(err, "postprocess: level %d: logits %s and deltas %s, expected N,A*K,H,W and N,A*4,H,W with A=%d",
                      l, kd_tensor_shape_str(c, s1, sizeof s1), kd_tensor_shape_str(b, s2, sizeof s2), A);
  }
  int failed = 0;
#pragma omp parallel for schedule(dynamic) if (N > 1)
  for (int n = 0; n < N; n++) {
    int nk = post_image(cls, box, nlev, A, K, anchors, bc, cfg, image_wh ? image_wh + 2 * n : NULL, n,
                        out + (size_t)n * cfg->max_det);
    count[n] = nk < 0 ? 0 : nk;
    if (nk < 0) {
#pragma omp atomic write
      failed = 1;
    }
  }
  if (failed) return kd_error(err, "postprocess: out of memory");
  return 0;
}
