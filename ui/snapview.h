/* Snapshot fields as figure inputs: the small conversions every panel and
 * the exporter share (maps of a level, the probe image, boxes). */
#ifndef KDS_SNAPVIEW_H
#define KDS_SNAPVIEW_H

#include "figure.h"
#include "probe/snapshot.h"

/* The (H, W) map "img<i>.<L>.<what>"; v = NULL when absent. */
KdFigMap kd_snapview_map(const KdSnapshot *s, int image, int level, const char *what);
/* A 1-D field "img<i>.<L>.<what>" (channel attention); *n = 0 when absent. */
const float *kd_snapview_vec(const KdSnapshot *s, int image, int level, const char *what, int *n);
KdFigImage kd_snapview_image(const KdSnapshot *s, int image);
/* Boxes of "img<i>.gt" (scores -1) or "img<i>.det.t"/".det.s" into out
 * (capacity max); returns the count. */
int kd_snapview_boxes(const KdSnapshot *s, int image, const char *which, KdFigBox *out, int max);
/* The names of every mask of a level ("defeat.fg", ...) with (H, W) shape,
 * into names (capacity max, pointers into the snapshot); returns count. */
int kd_snapview_masks(const KdSnapshot *s, int image, int level, const char **names, int max);
/* Gradient sources present for a level ("det", methods..., not "total"). */
int kd_snapview_grad_sources(const KdSnapshot *s, int image, int level, const char **names, int max);

#endif
