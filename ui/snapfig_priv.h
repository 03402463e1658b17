/* The store behind kd_snapfig_build: the arrays each kind's spec points
 * into, and the builders of each file. Internal to ui/snapfig*.c. */
#ifndef KD_SNAPFIG_PRIV_H
#define KD_SNAPFIG_PRIV_H

#include "distill/method.h"
#include "snapfig.h"

#define SF_MAXB 128      /* boxes per kind on the image figure */
#define SF_ROW_MAXB 64   /* per kind on a grid row */
#define SF_MAXI 512      /* instances on the projection */
#define SF_MAXS 24       /* loss parts on the curves */
#define SF_MAXM 64       /* change markers */
#define SF_MAXSRC 8      /* gradient sources */
#define SF_PMAX 512      /* prototypes and instances on the prototypes figure */
#define SF_DIST_MAXB 65  /* bins of a side distribution (gfl.reg_max + 1) */

typedef struct SfRowBoxes {
  KdFigBox gt[SF_ROW_MAXB], t[SF_ROW_MAXB], s[SF_ROW_MAXB];
} SfRowBoxes;

struct KdSnapFigStore {
  char title[160];
  /* image */
  KdFigBox gt[SF_MAXB], t[SF_MAXB], s[SF_MAXB], props[SF_MAXB], negs[SF_MAXB];
  char props_label[48], negs_label[48];
  KdFigDetView det;
  /* gap, masks */
  KdFigMapItem items[KD_FIG_MAX_MAPS];
  KdFigMapGroup groups[KD_FIG_MAX_MAPS];
  char item_titles[KD_FIG_MAX_MAPS][64];
  char group_labels[KD_FIG_MAX_MAPS][96];
  KdFigImage under;
  KdFigMaps maps;
  /* attention */
  KdFigAttention attn;
  /* gradmaps */
  const char *sources[KD_FIG_MAX_MAPS];
  KdFigMap gmaps[KD_FIG_MAX_MAPS];
  float fg[KD_FIG_MAX_MAPS], bg[KD_FIG_MAX_MAPS];
  KdFigGradMaps grad;
  /* projection */
  int cls[SF_MAXI];
  char xl[64], yl[64];
  KdFigScatter scat;
  /* rois */
  KdFigRois rois;
  /* prototypes: gk's prototypes and instances on one level */
  struct SfProtos {
    float pt_xy[2 * SF_PMAX], ps_xy[2 * SF_PMAX], it_xy[2 * SF_PMAX], is_xy[2 * SF_PMAX];
    float iw[SF_PMAX], iqs[SF_PMAX], iqt[SF_PMAX], bbox[4 * SF_PMAX], bw[SF_PMAX];
    int pcls[SF_PMAX], icls[SF_PMAX], iimage[SF_PMAX], brow[SF_PMAX];
    char xl[80], yl[48], title[240];
    KdFigProtos fig;
  } protos;
  /* dist: LD's four side distributions at a cell, teacher and student */
  struct SfDist {
    float v[4][2][SF_DIST_MAXB];
    const float *vals[4][2];
    KdFigBars bars[4];
    char titles[4][16], marks[4][24], title[220];
    const char *title_ptr;
  } dist;
  /* grid */
  SfRowBoxes rowboxes[KD_PROBE_MAX_IMAGES];
  char rowlabels[KD_PROBE_MAX_IMAGES][32];
  KdFigGridRow rows[KD_PROBE_MAX_IMAGES];
  KdFigCol cols[2 * KD_FIG_NCOLS];
  char mask_title[64], gap_title[64];
  KdFigGrid grid;
  /* curves (markers also on gradients) */
  KdFigSeries loss[2 * SF_MAXS], ap[4]; /* the run's, then the reference's */
  KdFigSeriesExtra loss_extra[2 * SF_MAXS], ap_extra[4];
  char ref_names[SF_MAXS + 2][96];
  KdFigMarker markers[SF_MAXM];
  char marker_labels[SF_MAXM][160];
  double breaks[SF_MAXM], ref_breaks[SF_MAXM]; /* set events: smoothing restarts */
  double *ap_pct[4];                           /* AP in percent (heap, grown) */
  size_t ap_cap[4];
  KdFigCurves curves;
  /* gradients: one value per snapshot and source (heap, grown) */
  size_t cap, n;
  double *step, *fgv[SF_MAXSRC], *bgv[SF_MAXSRC];
  char src_names[SF_MAXSRC][KD_SNAP_NAME];
  const char *src_ptr[SF_MAXSRC];
  const double *fg_ptr[SF_MAXSRC], *bg_ptr[SF_MAXSRC];
  KdFigGradCurves gc;
  /* cross: the picked pixel's criss-cross relation, then the category maps */
  struct SfCross {
    float *buf; /* the maps drawn (heap, grown) */
    size_t cap;
    KdFigMapItem items[2][KD_FIG_MAX_MAPS];
    KdFigMapGroup groups[2][3];
    char titles[2][KD_FIG_MAX_MAPS][64], labels[2][3][96], sub_title[160];
    KdFigMaps maps[2];
    KdFigPanel part[2];
    int nparts;
  } cross;
  /* a figure of a method that is off: drawn greyed under a note */
  struct SfDimmed {
    KdFigPanel inner;
    char note[160];
  } dim;
};

/* Checks view->image and view->level against the snapshot. */
int kd_snapfig_check_image(const KdSnapshot *s, int image, KdError *err);
int kd_snapfig_check_level(const KdSnapshot *s, int level, KdError *err);
/* Whether the view hides the series (or legend key) named name. */
int kd_snapfig_hidden(const KdSnapFigView *v, const char *name);
/* The title unless the view leaves titles out. */
const char *kd_snapfig_title(const KdSnapFigView *v, const char *t);

int kd_snapfig_build_grid(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out,
                          KdError *err);
/* *out drawn greyed under `note` (a figure whose data is absent or unused). */
void kd_snapfig_dim(KdSnapFigStore *st, const char *note, KdFigPanel *out);
int kd_snapfig_build_cross(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err);
int kd_snapfig_build_curves(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out,
                            KdError *err);
int kd_snapfig_build_gradients(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out,
                               KdError *err);
/* The loss maps (gap.<method>) present at a level of image `image`,
 * registry order: the methods into out (capacity max); returns the count. */
int kd_snapfig_method_gaps(const KdSnapshot *s, int image, int level, const KdMethod **out, int max);
/* "DeFeat gap" and "after adapter, fg/bg weighted" of a method's loss map. */
void kd_snapfig_gap_title(const KdMethod *m, char *buf, size_t len);

/* A map kind drawn at every level: the field, its cell title stem, its
 * colour map and its colorbar label. */
typedef struct {
  char what[96], title[64], label[96];
  KdCmap cmap;
  KdFigRange range;
} SfMapKind;
/* Each kind at every level side by side, one colour range per kind, into
 * st->maps (what: the title's tail); returns the maps placed. */
int kd_snapfig_levels_spec(const KdSnapFigView *v, KdSnapFigStore *st, const SfMapKind *kinds, int nk, const char *what);
/* st->maps from st->items[0..n) and st->groups[0..ngroups), the title in st->title. */
void kd_snapfig_maps_spec(const KdSnapFigView *v, KdSnapFigStore *st, int n, int ngroups);
/* snapfig_rpn.c: a two-stage model's RPN objectness per level. */
int kd_snapfig_build_objectness(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err);
/* Whether s has an RPN's objectness maps (a two-stage side). */
int kd_snapfig_has_objectness(const KdSnapshot *s);
/* snapfig_icd.c: ICD's attention of a GT's query and fake queries. */
int kd_snapfig_build_icd(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err);
int kd_snapfig_has_icd(const KdSnapshot *s);
/* snapfig_protos.c: global knowledge's prototypes and instances. */
int kd_snapfig_build_protos(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err);
int kd_snapfig_has_protos(const KdSnapshot *s);
/* snapfig_dist.c: LD's side distributions at the picked cell. */
int kd_snapfig_build_dist(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err);
int kd_snapfig_has_dist(const KdSnapshot *s);
/* snapfig_rois.c: HEAD's / TF-HEAD's sampled RoIs and their per-RoI gaps. */
int kd_snapfig_build_rois(const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out, KdError *err);
/* Whether s has a method's sampled RoIs (img<i>.rois.<method>). */
int kd_snapfig_has_rois(const KdSnapshot *s);
/* Image image's sampled RoIs into d's proposals (positives) and negatives;
 * 0 when the snapshot has none. */
int kd_snapfig_rois_boxes(const KdSnapshot *s, int image, KdSnapFigStore *st, KdFigDetView *d);

/* The run's "set" and "nonfinite" events as markers in st->markers (keys
 * under the view's renames). */
int kd_snapfig_markers(const KdSnapFigView *v, const KdRunLog *log, KdSnapFigStore *st);

#endif
