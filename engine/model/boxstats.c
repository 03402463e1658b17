/* Box sizes and anchor coverage of a data set (boxstats.h). */
#include "model/boxstats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect/boxes.h"

const float kd_box_bin_edges[KD_BOXSTATS_BINS - 1] = {16, 24, 32, 48, 64, 96};

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static int side_bin(float side) {
  int b = 0;
  while (b < KD_BOXSTATS_BINS - 1 && side >= kd_box_bin_edges[b]) b++;
  return b;
}

static void add(KdBoxGroup *g, int level, float best, int npos, float pos_iou) {
  g->boxes++;
  g->positive += best >= pos_iou;
  g->level[level]++;
  g->best_iou_sum += best;
  g->pos_anchors_sum += npos;
}

int kd_box_stats(const KdDataset *ds, const KdImageCfg *img, const KdAnchorCfg *acfg, float pos_iou, KdBoxStats *out,
                 KdError *err) {
  memset(out, 0, sizeof *out);
  if (kd_anchor_cfg_check(acfg, err) || kd_image_cfg_check(img, err)) return -1;
  int n = kd_dataset_num_images(ds);
  KdXform t0 = kd_xform_make(img, 1, 1, 0);
  out->in_w = t0.in_w, out->in_h = t0.in_h;
  int hw[2 * KD_ANCHOR_MAX_LEVELS], lo[KD_ANCHOR_MAX_LEVELS + 1];
  for (int l = 0; l < acfg->nlevels; l++) {
    hw[2 * l] = (out->in_h + acfg->strides[l] - 1) / acfg->strides[l];
    hw[2 * l + 1] = (out->in_w + acfg->strides[l] - 1) / acfg->strides[l];
  }
  int A = kd_anchors_total(acfg, hw);
  long nbox = 0;
  for (int i = 0; i < n; i++) nbox += kd_dataset_image(ds, i).n_boxes;
  float *anchors = malloc(sizeof *anchors * 4 * (size_t)A);
  float *sides = malloc(sizeof *sides * (size_t)(nbox ? nbox : 1));
  if (!anchors || !sides) {
    free(anchors), free(sides);
    return kd_error(err, "data stats: out of memory for %d anchors and %ld boxes", A, nbox);
  }
  if (kd_anchors_generate(acfg, hw, anchors, lo, err)) {
    free(anchors), free(sides);
    return -1;
  }
  long ns = 0;
  out->images = n;
  for (int i = 0; i < n; i++) {
    KdDatasetImage im = kd_dataset_image(ds, i);
    KdXform t = kd_xform_make(img, im.width, im.height, 0);
    for (int b = 0; b < im.n_boxes; b++) {
      if (im.crowd[b]) {
        out->crowd++;
        continue;
      }
      float box[4];
      kd_xform_boxes_to_input(&t, im.boxes + 4 * b, box, 1);
      float side = sqrtf(fmaxf(0.0f, (box[2] - box[0]) * (box[3] - box[1])));
      float best = 0;
      int best_l = 0, npos = 0;
      for (int l = 0; l < acfg->nlevels; l++)
        for (int a = lo[l]; a < lo[l + 1]; a++) {
          float iou = kd_box_iou1(box, anchors + 4 * a);
          npos += iou >= pos_iou;
          if (iou > best) best = iou, best_l = l;
        }
      float area = im.areas[b];
      int range = area < 32 * 32 ? 1 : area < 96 * 96 ? 2 : 3;
      add(&out->area[0], best_l, best, npos, pos_iou);
      add(&out->area[range], best_l, best, npos, pos_iou);
      add(&out->bin[side_bin(side)], best_l, best, npos, pos_iou);
      sides[ns++] = side;
    }
  }
  if (ns) {
    qsort(sides, (size_t)ns, sizeof *sides, cmp_float);
    static const double q[5] = {0, 0.1, 0.5, 0.9, 1};
    for (int k = 0; k < 5; k++) out->side_q[k] = sides[(long)lround(q[k] * (double)(ns - 1))];
  }
  free(anchors), free(sides);
  return 0;
}
