/* RetinaNet assignment (see assign.h). */
#include "detect/assign.h"

#include <stdlib.h>

#include "detect/boxes.h"

void kd_assign_cfg_default(KdAssignCfg *cfg) {
  *cfg = (KdAssignCfg){.pos_iou = 0.5f, .neg_iou = 0.4f, .low_quality = 1, .crowd_ioa = 0.5f};
}

int kd_assign_cfg_check(const KdAssignCfg *cfg, KdError *err) {
  if (!(cfg->pos_iou > 0.0f && cfg->pos_iou <= 1.0f))
    return kd_error(err, "assign.pos_iou: %g, expected a number in (0, 1]", cfg->pos_iou);
  if (!(cfg->neg_iou >= 0.0f && cfg->neg_iou <= cfg->pos_iou))
    return kd_error(err, "assign.neg_iou: %g, expected a number in [0, pos_iou=%g]", cfg->neg_iou, cfg->pos_iou);
  if (!(cfg->crowd_ioa > 0.0f))
    return kd_error(err, "assign.crowd_ioa: %g, expected a positive number", cfg->crowd_ioa);
  return 0;
}

/* Per GT: its best IoU so far and the anchors that reach it (ties are
 * rare; past KD_TIES_MAX the GT is rescanned over all anchors). */
#define KD_TIES_MAX 16
typedef struct {
  int nties; /* KD_TIES_MAX + 1: overflowed */
  int ties[KD_TIES_MAX];
} GtBest;

/* Non-crowd GTs as columns, so one anchor's IoUs with all of them are one
 * vectorisable loop. */
typedef struct {
  int n;
  int *index; /* column -> GT index */
  float *x1, *y1, *x2, *y2, *area;
} GtCols;

/* out[j] = IoU(box, column j), the same value as kd_box_iou1. Every IoU the
 * assignment compares comes from here, and fp-contract is off, so equal
 * inputs give bit-equal IoUs wherever this is called. */
__attribute__((noinline, optimize("fp-contract=off"))) static void iou_row(const float *b, const GtCols *c,
                                                                           float *restrict out) {
  const float *restrict x1 = c->x1, *restrict y1 = c->y1, *restrict x2 = c->x2, *restrict y2 = c->y2;
  const float *restrict area = c->area;
  const float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
  const float bw = b2 - b0, bh = b3 - b1;
  const float ba = (bw > 0.0f && bh > 0.0f) ? bw * bh : 0.0f;
  const int n = c->n;
  for (int j = 0; j < n; j++) {
    float w = (b2 < x2[j] ? b2 : x2[j]) - (b0 > x1[j] ? b0 : x1[j]);
    float h = (b3 < y2[j] ? b3 : y2[j]) - (b1 > y1[j] ? b1 : y1[j]);
    float inter = (w > 0.0f ? w : 0.0f) * (h > 0.0f ? h : 0.0f);
    float uni = ba + area[j] - inter;
    /* inter > 0 implies uni > 0; otherwise 0 / 1 (no branch: vectorises) */
    out[j] = inter / (inter > 0.0f ? uni : 1.0f);
  }
}

/* The column of the anchor's best GT (lowest on ties), from its row. */
static int row_argmax(const float *restrict row, int n) {
  float m = row[0];
  for (int j = 1; j < n; j++) m = row[j] > m ? row[j] : m;
  int arg = 0;
  while (row[arg] != m) arg++;
  return arg;
}

/* Whether the row reaches some GT's best so far (most rows do not). */
static int row_reaches(const float *restrict row, const float *restrict best, int n) {
  int hit = 0;
  for (int j = 0; j < n; j++) hit |= (row[j] >= best[j]) & (row[j] > 0.0f);
  return hit;
}

int kd_assign(const KdAssignCfg *cfg, const float *anchors, int A, const float *gt, const int *crowd, int M,
              int *match, KdError *err) {
  if (kd_assign_cfg_check(cfg, err)) return -1;
  if (A < 0 || M < 0) return kd_error(err, "assign: %d anchors and %d boxes", A, M);
  /* scratch: GtBest[M], 5 float columns + index + one IoU row + best IoUs */
  enum { STACK_M = 64 };
  GtBest stack_gb[STACK_M];
  float stack_f[7 * STACK_M];
  int stack_i[STACK_M];
  int big = M > STACK_M;
  GtBest *gb = big ? malloc((size_t)M * sizeof *gb) : stack_gb;
  float *fbuf = big ? malloc((size_t)M * 7 * sizeof *fbuf) : stack_f;
  int *ibuf = big ? malloc((size_t)M * sizeof *ibuf) : stack_i;
  if (!gb || !fbuf || !ibuf) {
    if (big) free(gb), free(fbuf), free(ibuf);
    return kd_error(err, "assign: out of memory for %d boxes", M);
  }
  GtCols cols = {0, ibuf, fbuf, fbuf + M, fbuf + 2 * M, fbuf + 3 * M, fbuf + 4 * M};
  float *row = fbuf + 5 * M, *gbest = fbuf + 6 * M;
  int ncrowd = 0;
  for (int g = 0; g < M; g++) {
    if (crowd && crowd[g]) {
      ncrowd++;
      continue;
    }
    const float *q = gt + 4 * (size_t)g;
    int j = cols.n++;
    cols.index[j] = g;
    cols.x1[j] = q[0], cols.y1[j] = q[1], cols.x2[j] = q[2], cols.y2[j] = q[3];
    cols.area[j] = kd_box_area(q);
    gbest[j] = 0.0f;
    gb[j].nties = 0;
  }
  const int n = cols.n;

  /* Pass 1: each anchor's best GT, each GT's best IoU and who reaches it. */
  for (int a = 0; a < A; a++) {
    if (n == 0) {
      match[a] = KD_MATCH_NEG;
      continue;
    }
    iou_row(anchors + 4 * (size_t)a, &cols, row);
    int arg = row_argmax(row, n);
    float best = row[arg];
    if (best >= cfg->pos_iou) match[a] = cols.index[arg];
    else if (best < cfg->neg_iou) match[a] = KD_MATCH_NEG;
    else match[a] = KD_MATCH_IGNORE;
    if (!row_reaches(row, gbest, n)) continue;
    for (int j = 0; j < n; j++) {
      float v = row[j];
      GtBest *b = &gb[j];
      if (v < gbest[j] || v <= 0.0f) continue;
      if (v > gbest[j]) {
        gbest[j] = v;
        b->nties = 1;
        b->ties[0] = a;
      } else if (b->nties <= KD_TIES_MAX) {
        if (b->nties < KD_TIES_MAX) b->ties[b->nties] = a;
        b->nties++;
      }
    }
  }

  /* Pass 2: low-quality matches; an anchor gets its own best GT. */
  if (cfg->low_quality) {
    for (int j = 0; j < n; j++) {
      const GtBest *b = &gb[j];
      if (gbest[j] <= 0.0f) continue;
      if (b->nties <= KD_TIES_MAX) {
        for (int t = 0; t < b->nties; t++) {
          int a = b->ties[t];
          if (match[a] >= 0) continue;
          iou_row(anchors + 4 * (size_t)a, &cols, row);
          match[a] = cols.index[row_argmax(row, n)];
        }
        continue;
      }
      /* many anchors tied: rescan this GT's column alone (one column of
       * the same function gives the same values) */
      GtCols one = {1, cols.index + j, cols.x1 + j, cols.y1 + j, cols.x2 + j, cols.y2 + j, cols.area + j};
      for (int a = 0; a < A; a++) {
        if (match[a] >= 0) continue;
        float v;
        iou_row(anchors + 4 * (size_t)a, &one, &v);
        if (v != gbest[j]) continue;
        iou_row(anchors + 4 * (size_t)a, &cols, row);
        match[a] = cols.index[row_argmax(row, n)];
      }
    }
  }

  /* Pass 3: negatives inside crowd regions are ignored. */
  if (ncrowd) {
    for (int a = 0; a < A; a++) {
      if (match[a] != KD_MATCH_NEG) continue;
      const float *ab = anchors + 4 * (size_t)a;
      float area = kd_box_area(ab);
      if (area <= 0.0f) continue;
      for (int g = 0; g < M; g++) {
        if (!crowd[g]) continue;
        if (kd_box_inter(ab, gt + 4 * (size_t)g) >= cfg->crowd_ioa * area) {
          match[a] = KD_MATCH_IGNORE;
          break;
        }
      }
    }
  }

  int npos = 0;
  for (int a = 0; a < A; a++) npos += match[a] >= 0;
  if (big) free(gb), free(fbuf), free(ibuf);
  return npos;
}
