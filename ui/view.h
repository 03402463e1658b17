/* What the panels look at: the bridge, the snapshot on screen and the
 * viewer's choices. Owned by the window; panels hold a pointer and are
 * redrawn when it changes. GTK main thread only. */
#ifndef KDS_VIEW_H
#define KDS_VIEW_H

#include "bridge.h"
#include "figure.h"
#include "series.h"

typedef struct KdsView {
  KdsBridge *bridge;
  KdSnapshot *snap;   /* the snapshot shown (a reference), or NULL */
  int image;          /* probe image index */
  int level;          /* FPN level index (0 = P3) */
  int independent;    /* teacher and student maps on separate colour ranges */
  int all_levels;     /* gap, masks: every level side by side */
  double overlay;     /* > 0: maps over the image with this opacity */
  KdSmooth smooth;    /* curves */
  int logy;           /* curves */
  KdFigMark mark;     /* the map cell under the pointer, outlined on every map */
  KdFigMark pick;     /* the picked pixel (a click on a map, moved by the arrow keys) */
  const KdRunLog *ref;   /* curves: a run to compare with (drawn dotted), or NULL */
  const char *ref_dir, *ref_label;
  unsigned long generation; /* bumped on every change */
  double watch_since;       /* wall clock (s) the window began showing the run: snapshots
                               captured after it count in the capture-to-paint latency */
} KdsView;

#endif
