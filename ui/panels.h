/* The panel kinds, one widget type each (see panel.h for the base). Each
 * kind's build is one call to kd_snapfig_build (snapfig.h), the builder
 * `kdscope export` uses, so a panel and an exported figure are the same. */
#ifndef KDS_PANELS_H
#define KDS_PANELS_H

#include "panel.h"
#include "snapfig.h"

G_BEGIN_DECLS

#define KDS_TYPE_IMAGE_PANEL (kds_image_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsImagePanel, kds_image_panel, KDS, IMAGE_PANEL, KdsPanel)
#define KDS_TYPE_GAP_PANEL (kds_gap_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsGapPanel, kds_gap_panel, KDS, GAP_PANEL, KdsPanel)
#define KDS_TYPE_MASK_PANEL (kds_mask_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsMaskPanel, kds_mask_panel, KDS, MASK_PANEL, KdsPanel)
#define KDS_TYPE_ATTENTION_PANEL (kds_attention_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsAttentionPanel, kds_attention_panel, KDS, ATTENTION_PANEL, KdsPanel)
#define KDS_TYPE_GRADIENT_PANEL (kds_gradient_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsGradientPanel, kds_gradient_panel, KDS, GRADIENT_PANEL, KdsPanel)
#define KDS_TYPE_PROJECTION_PANEL (kds_projection_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsProjectionPanel, kds_projection_panel, KDS, PROJECTION_PANEL, KdsPanel)
#define KDS_TYPE_CURVES_PANEL (kds_curves_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsCurvesPanel, kds_curves_panel, KDS, CURVES_PANEL, KdsPanel)

/* The view as the shared builder takes it. */
static inline void kds_view_snapfig(const KdsView *v, KdSnapFigView *out) {
  kd_snapfig_view_default(out);
  out->snap = v->snap;
  out->log = v->bridge ? kds_bridge_log(v->bridge) : NULL;
  out->image = v->image;
  out->level = v->level;
  out->overlay = v->overlay;
  out->independent = v->independent;
  out->smooth = v->smooth;
  out->logy = v->logy;
  out->mark = v->mark;
  out->ref = v->ref;
  out->ref_dir = v->ref_dir;
  out->ref_label = v->ref_label;
}

/* Whether the panel draws the maps of one level (the ones a linked cell
 * is outlined on): the kind's own flag, not a list of names. */
static inline gboolean kds_panel_draws_level_maps(KdsPanel *p) {
  int k = kd_snapfig_kind_from_name(kds_panel_kind(p));
  return k >= 0 && (kd_snapfig_needs((KdSnapFigKind)k) & KD_SNAPFIG_LEVEL);
}

/* A panel's build: the figure of `kind` for the view, into store. */
static inline gboolean kds_panel_build_snapfig(KdSnapFigKind kind, const KdsView *v, KdSnapFigStore *store,
                                               KdFigPanel *out) {
  KdSnapFigView sv;
  kds_view_snapfig(v, &sv);
  return store && kd_snapfig_build(kind, &sv, store, out, NULL) == 0;
}

G_END_DECLS

#endif
