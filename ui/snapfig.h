/* Figures of a run: the one place that turns a snapshot, the run's logs and
 * the viewer's choices into a figure spec (figure.h). The window's panels
 * and `kdscope export` both call kd_snapfig_build, so an exported figure is
 * exactly what a panel shows. GTK-free (in kdfigure); specs point into a
 * KdSnapFigStore the caller keeps alive while it draws.
 *
 * Figures (names as the CLI takes them):
 *   image       the probe image with GT / teacher / student boxes
 *   gap         teacher energy | student energy | gap of one level
 *   masks       GT foreground and every mask the methods use on a level
 *   attention   spatial + channel attention of teacher and student
 *   gradmaps    |dL/dS| per source on a level, fg/bg means as bars
 *   projection  instance features on the teacher's PCA axes
 *   grid        rows = probe images, columns image | teacher | student |
 *               gap | mask (any subset, any order)
 *   curves      chosen loss parts over COCO AP vs step, change markers;
 *               optionally a reference run's same parts and AP, dotted
 *   gradients   fg vs bg gradient magnitude by source over the run's
 *               snapshots (DeFeat's observation) */
#ifndef KD_SNAPFIG_H
#define KD_SNAPFIG_H

#include <stddef.h>

#include "core/error.h"
#include "export.h"
#include "figure.h"
#include "probe/snapfile.h"
#include "probe/snapshot.h"
#include "train/runlog.h"

typedef enum KdSnapFigKind {
  KD_SNAPFIG_IMAGE,
  KD_SNAPFIG_GAP,
  KD_SNAPFIG_MASKS,
  KD_SNAPFIG_ATTENTION,
  KD_SNAPFIG_GRADMAPS,
  KD_SNAPFIG_PROJECTION,
  KD_SNAPFIG_GRID,
  KD_SNAPFIG_CURVES,
  KD_SNAPFIG_GRADIENTS,
  KD_SNAPFIG_NKINDS
} KdSnapFigKind;

/* What a kind reads (kd_snapfig_needs). */
enum {
  KD_SNAPFIG_NEEDS_SNAPSHOT = 1, /* view.snap */
  KD_SNAPFIG_NEEDS_LOG = 2,      /* view.log */
  KD_SNAPFIG_NEEDS_SNAPSHOTS = 4, /* view.snaps (every snapshot of the run) */
  KD_SNAPFIG_ONE_IMAGE = 8,      /* draws view.image alone */
  KD_SNAPFIG_LEVEL = 16          /* draws view.level */
};

const char *kd_snapfig_name(KdSnapFigKind k);
/* -1 for an unknown name. */
int kd_snapfig_kind_from_name(const char *name);
unsigned kd_snapfig_needs(KdSnapFigKind k);
/* "image, gap, masks, ..." for messages. */
const char *kd_snapfig_names(void);

typedef struct KdSnapFigView {
  const KdSnapshot *snap; /* the snapshot shown; gradients: its step is the last one used */
  const KdRunLog *log;    /* curves; change markers on gradients */
  KdSnapshots *snaps;     /* gradients: the run's snapshot files */
  int image;              /* probe image of the one-image kinds */
  const int *images;      /* grid rows, images gradients averages over; NULL: all */
  int nimages;
  int level;              /* FPN level index (0 = the finest); gradients: < 0 all levels */
  double overlay;         /* > 0: maps over the image with this opacity */
  int independent;        /* teacher and student maps on separate colour ranges */
  KdSmooth smooth;        /* curves, gradients */
  int logy;               /* curves' loss axis */
  const KdFigCol *cols;   /* grid columns; NULL: every column the snapshot has data for */
  int ncols;
  const char *mask;       /* grid's mask column: "fg" or a method's mask ("defeat.fg");
                             NULL: the level's first method mask, else "fg" */
  const char *const *parts; /* curves: loss parts to draw; NULL: all */
  int nparts;
  int no_title;           /* leave the figure's title out */
  const KdRunLog *ref;    /* curves: another run whose parts (those drawn) and AP are
                             drawn dotted in the same colours, to compare with */
  const char *ref_label;  /* its legend name (NULL: "reference") */
  const char *ref_dir;    /* its run directory, for the export command */
  KdFigMark mark;         /* a cell outlined on every map (the window's linked cursor) */
} KdSnapFigView;

/* Image 0, level 0 (gradients: all), no overlay, shared ranges, no
 * smoothing, linear y, all rows/columns/parts. */
void kd_snapfig_view_default(KdSnapFigView *v);

typedef struct KdSnapFigStore KdSnapFigStore;
KdSnapFigStore *kd_snapfig_store_new(void);
void kd_snapfig_store_free(KdSnapFigStore *s);

/* Fills *out with the figure, its spec in store (valid until the next build
 * into the same store or its free; it also borrows the snapshot and the
 * log). -1 with err when the view lacks what the kind needs or asks for
 * what is not there: no snapshot yet, a level or image out of range, an
 * unknown loss part or column, a column without data. */
int kd_snapfig_build(KdSnapFigKind kind, const KdSnapFigView *view, KdSnapFigStore *store,
                     KdFigPanel *out, KdError *err);

/* ---- names shared by the CLI and the command the window prints ---- */

/* Level index of "P3" (any case) in the snapshot; -1 with err listing the
 * levels it has. */
int kd_snapfig_level_from_name(const KdSnapshot *s, const char *name, KdError *err);
/* "image", "teacher", "student", "gap", "mask"; -1 for another name. */
int kd_snapfig_col_from_name(const char *name);
const char *kd_snapfig_col_name(KdFigCol c);
/* "none", "ema:W" (0 <= W < 1), "mean:N" (N >= 1); -1 with err. */
int kd_snapfig_smooth_parse(const char *text, KdSmooth *out, KdError *err);
void kd_snapfig_smooth_format(const KdSmooth *s, char *buf, size_t len);

/* The `kdscope export` command line that renders the same figure from the
 * run directory: the view's choices as options (only those the kind
 * reads), the style's font and line sizes and letters, the export size,
 * format and dpi. -1 when it does not fit buf. */
int kd_snapfig_command(KdSnapFigKind kind, const KdSnapFigView *view, const char *run_dir,
                       const KdFigStyle *st, const KdExportOpts *o, KdExportFormat format,
                       const char *out_path, char *buf, size_t len);

#endif
