/* RPN proposals (see proposals.h). */
#include "detect/proposals.h"

#include <string.h>

#include "detect/boxes.h"
#include "detect/nms.h"
#include "detect/postprocess.h"

int kd_proposal_cfg_check(const KdProposalCfg *cfg, const char *what, KdError *err) {
  if (cfg->pre_nms_top_n < 1 || cfg->pre_nms_top_n > 1000000)
    return kd_error(err, "%s pre_nms_top_n: %d, expected 1..1000000", what, cfg->pre_nms_top_n);
  if (cfg->post_nms_top_n < 1 || cfg->post_nms_top_n > 1000000)
    return kd_error(err, "%s post_nms_top_n: %d, expected 1..1000000", what, cfg->post_nms_top_n);
  if (!(cfg->nms_thresh >= 0.0f && cfg->nms_thresh <= 1.0f))
    return kd_error(err, "%s nms_thresh: %g, expected a number in [0, 1]", what, cfg->nms_thresh);
  if (!(cfg->min_size >= 0.0f && cfg->min_size < 1e4f))
    return kd_error(err, "%s min_size: %g, expected a size in [0, 10000) px", what, cfg->min_size);
  if (!(cfg->score_thresh >= 0.0f && cfg->score_thresh < 1.0f))
    return kd_error(err, "%s score_thresh: %g, expected a number in [0, 1)", what, cfg->score_thresh);
  return 0;
}

static int check_levels(KdCtx *c, KdTensor *const *obj, KdTensor *const *deltas, int nlev, int A, KdError *err) {
  if (kd_ctx_failed(c)) return kd_error(err, "proposals: %s", kd_ctx_error(c));
  if (nlev < 1 || A < 1) return kd_error(err, "proposals: %d levels with %d anchors per location", nlev, A);
  for (int l = 0; l < nlev; l++) {
    const KdTensor *o = obj[l], *d = deltas[l];
    char a[64], b[64];
    if (!o || !d) return kd_error(err, "proposals: level %d is missing", l);
    if (o->ndim != 4 || d->ndim != 4 || o->blocked || d->blocked || o->shape[1] != A || d->shape[1] != 4 * A ||
        o->shape[0] != obj[0]->shape[0] || d->shape[0] != o->shape[0] || d->shape[2] != o->shape[2] ||
        d->shape[3] != o->shape[3])
      return kd_error(err, "proposals: level %d has objectness %s and deltas %s, expected N,%d,H,W and N,%d,H,W (plain)", l,
                      kd_tensor_shape_str(o, a, sizeof a), kd_tensor_shape_str(d, b, sizeof b), A, 4 * A);
  }
  return 0;
}

/* Scratch for one image, sized for the largest level. */
typedef struct {
  float *logit;        /* [max level anchors] */
  int *order;          /* [max level anchors] */
  float *box, *score;  /* [nlev * pre] candidates */
  int *level, *keep;   /* [nlev * pre] */
  int *from;           /* [nlev * pre] the candidate's anchor, flat in the image's A_total */
} Scratch;

/* Level l's top-k candidates of image n, decoded, clipped and filtered,
 * appended at *nc. */
static void level_candidates(const KdProposalCfg *cfg, const KdTensor *o, const KdTensor *d, int n, int l, int A,
                             const float *anchors, size_t first, const KdBoxCoder *bc, const float *wh, Scratch *s,
                             int *nc) {
  const int HW = o->shape[2] * o->shape[3], cnt = HW * A;
  const float *ob = o->data + (size_t)n * A * HW, *db = d->data + (size_t)n * 4 * A * HW;
  for (int hw = 0; hw < HW; hw++)
    for (int a = 0; a < A; a++) s->logit[hw * A + a] = ob[(size_t)a * HW + hw];
  kd_sort_by_score(s->logit, cnt, s->order);
  const int k = cnt < cfg->pre_nms_top_n ? cnt : cfg->pre_nms_top_n;
  for (int r = 0; r < k; r++) {
    int i = s->order[r], hw = i / A, a = i % A;
    float delta[4], *b = s->box + 4 * (size_t)*nc;
    for (int j = 0; j < 4; j++) delta[j] = db[(size_t)(4 * a + j) * HW + hw];
    kd_box_decode(bc, anchors + 4 * (first + (size_t)i), delta, b);
    kd_box_clip(b, wh[0], wh[1]);
    float p = kd_sigmoidf(s->logit[i]);
    if (!(b[2] - b[0] >= cfg->min_size && b[3] - b[1] >= cfg->min_size) || !(p >= cfg->score_thresh)) continue;
    s->score[*nc] = p;
    s->level[*nc] = l;
    s->from[*nc] = (int)(first + (size_t)i);
    (*nc)++;
  }
}

int kd_proposals(KdCtx *c, const KdProposalCfg *cfg, KdTensor *const *obj, KdTensor *const *deltas, int nlev, int A,
                 const float *anchors, const KdBoxCoder *bc, const float *image_wh, float *boxes, float *scores,
                 int *count, KdError *err) {
  return kd_proposals_origin(c, cfg, obj, deltas, nlev, A, anchors, bc, image_wh, boxes, scores, count, NULL, err);
}

int kd_proposals_origin(KdCtx *c, const KdProposalCfg *cfg, KdTensor *const *obj, KdTensor *const *deltas, int nlev, int A,
                        const float *anchors, const KdBoxCoder *bc, const float *image_wh, float *boxes, float *scores,
                        int *count, int *origin, KdError *err) {
  if (kd_proposal_cfg_check(cfg, "rpn", err) || check_levels(c, obj, deltas, nlev, A, err)) return -1;
  const int N = obj[0]->shape[0], post = cfg->post_nms_top_n;
  size_t most = 0, cap = 0;
  for (int l = 0; l < nlev; l++) {
    size_t m = (size_t)obj[l]->shape[2] * obj[l]->shape[3] * A;
    most = m > most ? m : most;
    cap += m < (size_t)cfg->pre_nms_top_n ? m : (size_t)cfg->pre_nms_top_n;
  }
  Scratch s = {kd_ctx_alloc(c, most * sizeof(float)), kd_ctx_alloc(c, most * sizeof(int)),
               kd_ctx_alloc(c, cap * 4 * sizeof(float)), kd_ctx_alloc(c, cap * sizeof(float)),
               kd_ctx_alloc(c, cap * sizeof(int)), kd_ctx_alloc(c, cap * sizeof(int)),
               kd_ctx_alloc(c, cap * sizeof(int))};
  if (!s.logit || !s.order || !s.box || !s.score || !s.level || !s.keep || !s.from)
    return kd_error(err, "proposals: out of memory for %zu candidates", cap);
  for (int n = 0; n < N; n++) {
    int nc = 0;
    size_t first = 0; /* the level's first anchor */
    for (int l = 0; l < nlev; l++) {
      level_candidates(cfg, obj[l], deltas[l], n, l, A, anchors, first, bc, image_wh + 2 * n, &s, &nc);
      first += (size_t)obj[l]->shape[2] * obj[l]->shape[3] * A;
    }
    int nk = kd_nms(s.box, s.score, s.level, nc, cfg->nms_thresh, post, s.keep, err);
    if (nk < 0) return -1;
    for (int k = 0; k < nk; k++) {
      memcpy(boxes + 4 * ((size_t)n * post + k), s.box + 4 * (size_t)s.keep[k], 4 * sizeof(float));
      scores[(size_t)n * post + k] = s.score[s.keep[k]];
      if (origin) origin[(size_t)n * post + k] = s.from[s.keep[k]];
    }
    count[n] = nk;
  }
  return 0;
}
