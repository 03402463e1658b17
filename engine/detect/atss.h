/* ATSS assignment (Zhang et al., CVPR 2020, as mmdetection's ATSSAssigner
 * that GFL and LD train with) and LD's valuable localization region, for
 * heads with one anchor per location. Per image, per non-crowd GT g:
 *   candidates: on every level the topk anchors whose centres lie nearest
 *     g's centre (Euclidean; ties to the lower index);
 *   t_g = mean + unbiased std of the candidates' IoUs with g;
 *   positive: a candidate with IoU >= t_g whose centre lies inside g by
 *     more than 0.01 px on each side;
 *   an anchor positive for several GTs takes the one of highest IoU
 *   (ties: the lower GT index). Every other anchor is negative.
 * Crowd GTs are never targets (nothing ignores). Anchors are in the flat
 * order of anchors.h (level-major); level_off[nlev + 1] gives each level's
 * first anchor. Thread-safe; allocates O(topk * nlev + A) per call. */
#ifndef KD_DET_ATSS_H
#define KD_DET_ATSS_H

#include "core/error.h"
#include "detect/targets.h"

#define KD_ATSS_MAX_TOPK 64

/* match[A]: GT index or KD_MATCH_NEG; iou[A] (or NULL): the IoU with the
 * matched GT (0 for negatives); thr[M] (or NULL): t_g (0 for crowd GTs
 * and when no level has an anchor). Returns the number of positives, or
 * -1 with err. M may be 0. */
int kd_atss_assign(const float *anchors, const int *level_off, int nlev, const float *gt, const int *crowd, int M,
                   int topk, int *match, float *iou, float *thr, KdError *err);

/* A batch of n images (gt[n]) with K classes: match [n*A] (GT index in
 * its image or KD_MATCH_NEG), target_cls [n*A] (the GT's label or
 * KD_MATCH_NEG), target_boxes [n*A*4] (the GT box, 0 elsewhere), A =
 * level_off[nlev]. *samples gets GFL's QFL normaliser, the sum over images
 * of max(positives, 1). Returns the positives, or -1 with err naming the
 * image (a label outside 0..K-1). */
int kd_atss_targets(const float *anchors, const int *level_off, int nlev, const KdGtImage *gt, int n, int K, int topk,
                    int *match, int *target_cls, float *target_boxes, int *samples, KdError *err);

/* The overlap LD's released code calls "DIoU" (10b of KD-METHODS.md): the
 * intersection over the *anchor's* area minus DIoU's centre-distance term
 * (squared centre distance over the squared diagonal of the enclosing
 * box). */
double kd_ld_overlap(const float *anchor, const float *gt);

/* LD's valuable localization region for one image: an anchor (any anchor
 * of any level, no inside-GT test) is in the VLR of g when
 * vlr_lo * t_g <= kd_ld_overlap(anchor, g) < t_g, with t_g as above (thr
 * from kd_atss_assign); its weight vlr[a] is the highest IoU with the
 * qualifying GTs, 0 elsewhere. An image without GTs has no VLR. Returns
 * the number of VLR anchors. */
int kd_ld_vlr(const float *anchors, int A, const float *gt, const int *crowd, const float *thr, int M, float vlr_lo,
              float *vlr);

#endif
