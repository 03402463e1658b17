/* Figures of a run: the one place that turns a snapshot, the run's logs and
 * the viewer's choices into a figure spec (figure.h). The window's panels
 * and `kdscope export` both call kd_snapfig_build, so an exported figure is
 * exactly what a panel shows. GTK-free (in kdfigure); specs point into a
 * KdSnapFigStore the caller keeps alive while it draws.
 *
 * The figure kinds are the rows of one table (snapfig.c, kinds[]): name,
 * builder, what it needs, the choices it reads (its command line), whether
 * it draws one level's maps, and its cell in the window. A new kind is its
 * builder plus one row there; the window, the export dialog, `kdscope
 * export` and the command line it prints all follow the table. */
#ifndef KD_SNAPFIG_H
#define KD_SNAPFIG_H

#include <stddef.h>

#include "core/error.h"
#include "export.h"
#include "figure.h"
#include "probe/snapfile.h"
#include "probe/snapshot.h"
#include "train/runlog.h"

/* What a kind needs (checked before its builder runs). */
enum {
  KD_SNAPFIG_NEEDS_SNAPSHOT = 1,  /* view.snap */
  KD_SNAPFIG_NEEDS_LOG = 2,       /* view.log */
  KD_SNAPFIG_NEEDS_SNAPSHOTS = 4, /* view.snaps (every snapshot of the run) */
  KD_SNAPFIG_ONE_IMAGE = 8,       /* draws view.image alone (--images I) */
  KD_SNAPFIG_LEVEL = 16,          /* draws view.level (--level) */
  /* Draws the attention as the method naming its temperature computes it
   * (KdMethod.attn_temp_key: FGD's): greyed with "FGD off" when that
   * method is not active in the snapshot. */
  KD_SNAPFIG_ATTN_METHOD = 32,
  /* Draws fields only some runs have (a two-stage model's RPN objectness,
   * HEAD's RoIs): the window shows its panel only while the snapshot shown
   * has them (KdSnapFigKind.has_fields, kd_snapfig_shown). */
  KD_SNAPFIG_IF_FIELDS = 64,
  /* Redrawn as the pointer moves over it (view.hover_*). */
  KD_SNAPFIG_HOVER = 128
};

/* The view's further choices a kind reads: each is an option of its
 * `kdscope export` command line (kd_snapfig_command) when set. */
enum {
  KD_SNAPFIG_OPT_IMAGES = 1,      /* view.images: --images LIST */
  KD_SNAPFIG_OPT_ANY_LEVEL = 2,   /* --level when view.level >= 0; default every level (-1) */
  KD_SNAPFIG_OPT_COLUMNS = 4,     /* view.cols: --columns */
  KD_SNAPFIG_OPT_MASK = 8,        /* view.mask: --mask */
  KD_SNAPFIG_OPT_OVERLAY = 16,    /* view.overlay: --overlay */
  KD_SNAPFIG_OPT_INDEPENDENT = 32, /* view.independent: --independent */
  KD_SNAPFIG_OPT_PARTS = 64,      /* view.parts: --parts */
  KD_SNAPFIG_OPT_COMPARE = 128,   /* view.ref: --compare, --compare-label */
  KD_SNAPFIG_OPT_LOGY = 256,      /* view.logy: --logy / --liny */
  KD_SNAPFIG_OPT_SMOOTH = 512,    /* view.smooth: --smooth */
  KD_SNAPFIG_OPT_ALL_LEVELS = 1024, /* view.all_levels: --all-levels */
  KD_SNAPFIG_OPT_GAP = 2048,       /* view.gap: --gap */
  KD_SNAPFIG_OPT_PIXEL = 4096,     /* view.pick: --pixel Y,X (a cell of view.level) */
  KD_SNAPFIG_OPT_HIDE = 8192       /* view.hide (keys clicked off): --hide LIST; implied by _PARTS */
};
/* A kind with loss parts (the curves) also reads the view's renames,
 * hidden series, legend place and axis limits (--rename, --hide, --legend,
 * --xlim, --ylim, --aplim); one with smoothing (the gradients) the
 * renames; every kind the style's font family (--font). The command line
 * carries those whenever they are set. */

/* view.logy */
enum { KD_SNAPFIG_LOGY_AUTO = 0, KD_SNAPFIG_LOGY_LOG = 1, KD_SNAPFIG_LOGY_LINEAR = 2 };

#define KD_SNAPFIG_MAX_RENAMES 32

typedef struct KdSnapFigView KdSnapFigView;
typedef struct KdSnapFigStore KdSnapFigStore;

/* A cell of the window's panel grid (three equal columns). */
typedef struct KdSnapFigSlot {
  int col, row, span; /* span 0: no panel in the window (export only) */
} KdSnapFigSlot;

/* One figure kind: a row of the table every consumer reads (the window's
 * panels, the export dialog, `kdscope export` and its command line). */
typedef struct KdSnapFigKind {
  const char *name;  /* --figure NAME, the panel's kind, the default file name */
  int (*build)(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err);
  unsigned needs;    /* KD_SNAPFIG_NEEDS_*, _ONE_IMAGE, _LEVEL */
  unsigned options;  /* KD_SNAPFIG_OPT_* */
  int level_maps;    /* draws maps of view.level: the window outlines the linked cell on it */
  KdSnapFigSlot panel;
  int (*has_fields)(const KdSnapshot *s); /* KD_SNAPFIG_IF_FIELDS: whether s has them */
  const char *replaces; /* the kind the window hides while this one is shown (NULL: none) */
} KdSnapFigKind;

/* The kinds in export order (the export dialog's list, the CLI's list). */
int kd_snapfig_count(void);
const KdSnapFigKind *kd_snapfig_at(int i);
/* NULL for an unknown name. */
const KdSnapFigKind *kd_snapfig_find(const char *name);
/* "image, gap, masks, ..." for messages. */
const char *kd_snapfig_names(void);
/* Whether the window shows kind's panel for snapshot s (NULL: none yet):
 * always, but for KD_SNAPFIG_IF_FIELDS kinds only when s has their fields. */
int kd_snapfig_shown(const KdSnapFigKind *kind, const KdSnapshot *s);

struct KdSnapFigView {
  const KdSnapshot *snap; /* the snapshot shown; gradients: its step is the last one used */
  const KdRunLog *log;    /* curves; change markers on gradients */
  KdSnapshots *snaps;     /* gradients: the run's snapshot files */
  int image;              /* probe image of the one-image kinds */
  const int *images;      /* grid rows, images gradients averages over; NULL: all */
  int nimages;
  int level;              /* FPN level index (0 = the finest); gradients: < 0 all levels */
  double overlay;         /* > 0: maps over the image with this opacity */
  int independent;        /* teacher and student maps on separate colour ranges */
  int all_levels;         /* gap, masks: each map at every level side by side */
  KdSmooth smooth;        /* curves, gradients */
  int logy;               /* curves' loss axis */
  const KdFigCol *cols;   /* grid columns; NULL: every column the snapshot has data for */
  int ncols;
  const char *mask;       /* grid's mask column: "fg" or a method's mask ("defeat.fg");
                             NULL: the level's first method mask, else "fg" */
  const char *gap;        /* grid's gap column: "raw" or a method ("defeat": its loss map);
                             NULL: the first active method's loss map, else the raw gap */
  const char *const *parts; /* curves: loss parts to draw; NULL: all */
  int nparts;
  int no_title;           /* leave the figure's title out */
  const KdRunLog *ref;    /* curves: another run whose parts (those drawn) and AP are
                             drawn dotted in the same colours, to compare with */
  const char *ref_label;  /* its legend name (NULL: "reference") */
  const char *ref_dir;    /* its run directory, for the export command */
  KdFigMark mark;         /* a cell outlined on every map (the window's linked cursor) */
  KdFigMark pick;         /* the picked pixel (a click on a map; --pixel); off: the level's centre */
  /* charts */
  const char *const *rename_from, *const *rename_to; /* series (and marker keys) shown
                             as another label, e.g. det.cls -> L_{cls} */
  int nrename;
  const char *const *hide; /* series left out (by name, before renaming) */
  int nhide;
  KdFigLegendPos legend;
  double xmin, xmax, ymin, ymax, apmin, apmax; /* axis limits; NaN: the data's */
  int cursor_on;          /* a playhead at step cursor (the step the window shows) */
  double cursor;
  int interactive;        /* the window: hidden series keep a greyed key */
  int smooth_off;         /* the window: the raw series, smoothing clicked off */
  int hover_on;           /* KD_SNAPFIG_HOVER kinds: the pointer over the panel, in */
  double hover_x, hover_y; /* the coordinates it is painted in */
};

/* Image 0, level 0 (gradients: all), no overlay, shared ranges, no
 * smoothing, y scale from the data, all rows/columns/parts, no limits. */
void kd_snapfig_view_default(KdSnapFigView *v);

KdSnapFigStore *kd_snapfig_store_new(void);
void kd_snapfig_store_free(KdSnapFigStore *s);

/* Fills *out with the figure, its spec in store (valid until the next build
 * into the same store or its free; it also borrows the snapshot and the
 * log). -1 with err when the view lacks what the kind needs or asks for
 * what is not there: no snapshot yet, a level or image out of range, an
 * unknown loss part or column, a column without data. */
int kd_snapfig_build(const KdSnapFigKind *kind, const KdSnapFigView *view, KdSnapFigStore *store,
                     KdFigPanel *out, KdError *err);

/* ---- names shared by the CLI and the command the window prints ---- */
/* H x W of level `level` of probe image `image` (its s_energy map); -1
 * with err when the snapshot has no such map. */
int kd_snapfig_level_size(const KdSnapshot *s, int image, int level, int *H, int *W, KdError *err);
/* The picked cell (row y, column x) of an H x W grid: the mark's cell, or
 * the centre when it is off. */
void kd_snapfig_pick_cell(KdFigMark pick, int H, int W, int *y, int *x);
/* The mark at the centre of cell (y, x) of an H x W grid. */
KdFigMark kd_snapfig_cell_mark(int y, int x, int H, int W);

/* Level index of "P3" (any case) in the snapshot; -1 with err listing the
 * levels it has. */
int kd_snapfig_level_from_name(const KdSnapshot *s, const char *name, KdError *err);
/* "image", "teacher", "student", "gap", "mask"; -1 for another name. */
int kd_snapfig_col_from_name(const char *name);
const char *kd_snapfig_col_name(KdFigCol c);
/* "none", "ema:W" (0 <= W < 1), "mean:N" (N >= 1); -1 with err. */
int kd_snapfig_smooth_parse(const char *text, KdSmooth *out, KdError *err);
void kd_snapfig_smooth_format(const KdSmooth *s, char *buf, size_t len);

/* "LO:HI" (either side may be empty: that end from the data) into lo, hi
 * (NaN for an empty side); -1 with err. */
int kd_snapfig_limits_parse(const char *opt, const char *text, double *lo, double *hi, KdError *err);
/* "OLD=NEW" into its two halves (in buf); -1 with err. */
int kd_snapfig_rename_parse(const char *text, char *buf, size_t len, const char **from, const char **to,
                            KdError *err);
/* The label series `name` shows under the view's renames (name itself when
 * none). */
const char *kd_snapfig_renamed(const KdSnapFigView *v, const char *name);

/* The `kdscope export` command line that renders the same figure from the
 * run directory: the view's choices as options (only those the kind
 * reads: its needs and options; chart choices for charts), the style's
 * font family, font and line sizes and letters, the export size, format
 * and dpi. -1 when it does not fit buf. */
int kd_snapfig_command(const KdSnapFigKind *kind, const KdSnapFigView *view, const char *run_dir,
                       const KdFigStyle *st, const KdExportOpts *o, KdExportFormat format,
                       const char *out_path, char *buf, size_t len);

#endif
